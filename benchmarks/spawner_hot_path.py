"""The spawner's own Python per spawn and per stop, with no API server and no cache.

    PYTHONPATH=. python -m benchmarks.spawner_hot_path [--spawners N] [--json out.json]

A storm's hub CPU is the client (HTTP, JSON), the reflectors (watch decoding) and the
spawner's own work: reading settings, building and checking the pod before anything is
created, and, per stop, finding the pod, proving it this server's and deleting it. This
measures the last part alone, on fresh spawners (a storm starts each server once), for
the default configuration (what ``spawn_storm`` runs) and a busy one
(``settings_manifest_build.BUSY``):

- ``prepare``: what ``start()`` does before its first request: ``load_user_options``,
  the start plan (names, configuration check), the pre-create checks (the pod built,
  ``modify_pod_hook`` applied, checked against the API server's rules) and its encoding;
- ``stop``: ``stop()`` itself against an API and a pod cache that answer at once (the
  cache holds this server's pod, the delete succeeds, the pod is then gone).

Reports the median and mean microseconds per call over ``--spawners`` fresh spawners,
best of ``--repeat`` runs (the machine is shared: the best run is the least disturbed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from async_kubespawner import KubeSpawner
from async_kubespawner import spawner as spawner_module
from async_kubespawner.kube.client import encode_create, new_create_id
from async_kubespawner.lifecycle.preflight import check_before_create, take_checked_pod
from async_kubespawner.testing import build_spawner, kubespawner_config

from .settings_manifest_build import BUSY

CONFIGS: dict[str, dict[str, Any]] = {"default": {}, "busy": dict(BUSY)}


class _InstantApi:
    """Answers the few calls a prepared start and a stop make, at once."""

    async def get_or_none(self, kind: Any, *_args: Any, **_kwargs: Any) -> dict[str, Any] | None:
        if kind.kind == "ServiceAccount":
            return {"metadata": {"name": "account"}}  # exists
        return None  # a stopped server's Secret and Service: gone with the pod

    async def delete(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return {}


class _InstantCache:
    """A synced pod cache holding each server's pod until it is deleted."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        return self.pods.get(key)

    async def wait_for(
        self, key: tuple[str, str], predicate: Callable[[Any], bool], _timeout: float
    ) -> None:
        self.pods.pop(key, None)  # deleted: gone on the next event
        assert predicate(None)


class _InstantReflector:
    synced = True

    def __init__(self) -> None:
        self.sink = _InstantCache()

    async def wait_synced(self, _timeout: float) -> bool:
        return True


@contextmanager
def _instant_kubernetes(reflector: _InstantReflector) -> Iterator[None]:
    api = _InstantApi()

    async def shared_api(_settings: Any) -> _InstantApi:
        return api

    with (
        mock.patch.object(spawner_module, "shared_api", shared_api),
        mock.patch.object(spawner_module, "get_reflector", lambda *a, **k: reflector),
    ):
        yield


async def _prepare(spawner: KubeSpawner, api: _InstantApi) -> bytes:
    """The spawner's work in start() before its first create request."""
    await spawner.load_user_options()
    spawner._start_plan()
    spawner._configuration_checked = True
    try:
        await check_before_create(spawner, api)  # type: ignore[arg-type]
        pod = take_checked_pod(spawner)
        return encode_create(pod, new_create_id()).data
    finally:
        spawner._configuration_checked = False


async def measure(config: dict[str, Any], count: int) -> dict[str, Any]:
    hub_config = kubespawner_config(config)
    spawners = [
        build_spawner(KubeSpawner, f"user{i:05d}", i + 1, config=hub_config) for i in range(count)
    ]
    reflector = _InstantReflector()
    api = _InstantApi()
    prepare: list[float] = []
    stop: list[float] = []
    gc.collect()
    gc.disable()
    try:
        with _instant_kubernetes(reflector):
            for spawner in spawners:
                t0 = time.perf_counter()
                await _prepare(spawner, api)
                prepare.append(time.perf_counter() - t0)
            for i, spawner in enumerate(spawners):
                uid = f"uid-{i}"
                spawner.pod_uid = uid  # the uid its start recorded: provably its pod
                reflector.sink.pods[spawner._pod_key] = {"metadata": {"uid": uid}}
            for spawner in spawners:
                t0 = time.perf_counter()
                await spawner.stop()
                stop.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return {
        "prepare_us": _summary(prepare),
        "stop_us": _summary(stop),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values) * 1e6, 1),
        "mean": round(statistics.fmean(values) * 1e6, 1),
    }


async def run(count: int, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, config in CONFIGS.items():
        runs = [await measure(config, count) for _ in range(repeat)]
        results[name] = {
            part: min((r[part] for r in runs), key=lambda s: s["median"])
            for part in ("prepare_us", "stop_us")
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawners", type=int, default=500, help="fresh spawners per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    results = asyncio.run(run(args.spawners, args.repeat))
    for name, parts in results.items():
        print(
            f"{name:8s} prepare median {parts['prepare_us']['median']:8.1f} us "
            f"mean {parts['prepare_us']['mean']:8.1f} us | "
            f"stop median {parts['stop_us']['median']:8.1f} us "
            f"mean {parts['stop_us']['mean']:8.1f} us"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
