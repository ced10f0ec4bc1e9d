"""Hub memory and CPU while users submit hostile ``user_options``.

Run: ``python -m benchmarks.hostile_options [--submissions 10000] [--json FILE]`` (prints
JSON). A user controls ``user_options`` (REST body or spawn form) and the free text of
an unlisted choice. This submits a stream of hostile ones to a pool of real
``KubeSpawner`` objects (one per server, reused, as a hub reuses them), through the two
doors JupyterHub uses: ``options_from_form`` for the form and ``load_user_options``
(what JupyterHub's first pre-spawn step runs) for both; an accepted submission also
builds its pod manifest, where templates are expanded. No API server is needed: a
refusal happens before any request, and an accepted pod is only built.

The hostile mix: format specs with huge widths and attribute lookups in free text that
the operator's regex accepts (``quay.io/jupyter/{userid:>50000000}:1``), unknown
profiles and choices, wrong types, deep nesting, 20,000-key objects, newlines in keys,
long strings. Figures: RSS and traced heap after a warm-up and at the end (the
difference is what the stream left behind), CPU seconds in total and per submission,
the slowest submission, and the longest environment value any pod got (a template
expanded from user text would show here as megabytes).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import os
import random
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from tornado import web

from async_kubespawner import KubeSpawner
from async_kubespawner.testing import build_spawner, kubespawner_config

#: The docs' example of a free-text image option, with its (permissive) regex.
PROFILE_LIST: list[dict[str, Any]] = [
    {"display_name": "Small", "slug": "small", "default": True},
    {
        "display_name": "Custom image",
        "slug": "custom",
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {"base": {"kubespawner_override": {"image": "quay.io/jupyter/base:1"}}},
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": r"^quay\.io/jupyter/.+:[\w.-]+$",
                    "kubespawner_override": {
                        "image": "{value}",
                        "environment": {"CUSTOM_IMAGE": "{value}", "OWNER": "{username}"},
                        "extra_annotations": {"example.org/image": "{value}"},
                    },
                },
            }
        },
    },
]

HOSTILE_TEXT = [
    "quay.io/jupyter/{userid:>50000000}:1",
    "quay.io/jupyter/{userid.__class__.__mro__}:1",
    "quay.io/jupyter/{pvc_name}{unescaped_username}:1",
    "quay.io/jupyter/{{x}}:1",
    "quay.io/jupyter/{0}{}:1",
    "quay.io/jupyter/" + "{" * 500 + ":1",
    "quay.io/jupyter/x\n[I hub] forged:1",
]


def hostile_options(rng: random.Random) -> Iterator[tuple[str, Any]]:
    """(door, payload) pairs: ``rest`` payloads are user_options, ``form`` form data."""
    while True:
        kind = rng.randrange(9)
        text = rng.choice(HOSTILE_TEXT)
        if kind == 0:
            yield "rest", {"profile": "custom", "image--unlisted-choice": text}
        elif kind == 1:
            yield "form", {
                "profile": ["custom"],
                "profile-option-custom--image": ["unlisted-choice"],
                "profile-option-custom--image--unlisted-choice": [text],
            }
        elif kind == 2:
            yield "rest", {"profile": "x" * rng.randrange(1, 100_000)}
        elif kind == 3:
            yield "rest", {"profile": ["custom"], "image": {"nested": [1, 2, {"a": None}]}}
        elif kind == 4:
            yield "rest", {f"key{i}\nforged": i for i in range(rng.choice([10, 20_000]))}
        elif kind == 5:
            nested: Any = "deep"
            for _ in range(200):
                nested = {"d": nested}
            yield "rest", {"profile": "custom", "image": nested}
        elif kind == 6:
            yield "rest", {"profile": "custom", "image": "{userid:>50000000}"}
        elif kind == 7:
            yield "form", {"profile": ["custom", "small"], "profile-option-custom--image": ["a"]}
        else:
            yield "rest", {"user_options": {"profile": "custom"}, "size": 10**30}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Stream:
    """Submits payloads round-robin to a pool of spawners and keeps the tallies."""

    def __init__(self, servers: int, seed: int) -> None:
        config = kubespawner_config({"profile_list": PROFILE_LIST})
        self.spawners: list[KubeSpawner] = [
            build_spawner(KubeSpawner, f"user{i}", i, config=config, api_token="t")
            for i in range(servers)
        ]
        self.payloads = hostile_options(random.Random(seed))
        self.accepted = 0
        self.refused = 0
        self.slowest_s = 0.0
        self.longest_env_value = 0
        self.longest_image = 0
        self.count = 0

    async def submit(self) -> None:
        spawner = self.spawners[self.count % len(self.spawners)]
        self.count += 1
        door, payload = next(self.payloads)
        started = time.perf_counter()
        try:
            options = spawner.options_from_form(payload) if door == "form" else payload
            if inspect.isawaitable(options):  # releases whose options_from_form was async
                options = await options
            spawner.user_options = options
            await spawner.load_user_options()
            pod = await spawner.get_pod_manifest()
        except web.HTTPError as exc:
            if exc.status_code != 400:
                raise
            self.refused += 1
        else:
            self.accepted += 1
            container = pod.spec.containers[0]
            self.longest_image = max(self.longest_image, len(container.image))
            for env in container.env or []:
                self.longest_env_value = max(self.longest_env_value, len(env.value or ""))
        finally:
            spawner.clear_state()
            self.slowest_s = max(self.slowest_s, time.perf_counter() - started)

    async def run(self, n: int) -> None:
        for _ in range(n):
            await self.submit()


async def measure(submissions: int, warmup: int, servers: int, seed: int) -> dict[str, Any]:
    stream = Stream(servers, seed)
    await stream.run(warmup)  # caches, compiled templates, first-use allocations
    stream.accepted = stream.refused = 0
    gc.collect()
    rss_before = rss_bytes()
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    await stream.run(submissions)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    accepted, refused = stream.accepted, stream.refused
    gc.collect()
    rss_after = rss_bytes()

    # The heap, traced in a second pass (tracemalloc slows every allocation). A traced
    # warm-up first, so that what each spawner holds from its last submission (its
    # user_options, as in a hub) is traced when it is replaced and freed.
    tracemalloc.start()
    await stream.run(warmup)
    gc.collect()
    heap_before = tracemalloc.get_traced_memory()[0]
    await stream.run(submissions)
    gc.collect()
    heap_after, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "submissions": submissions,
        "warmup": warmup,
        "servers": servers,
        "accepted": accepted,
        "refused": refused,
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 2**20, 2),
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
        "heap_growth_kb": round((heap_after - heap_before) / 1024, 1),
        "heap_peak_during_kb": round((heap_peak - heap_before) / 1024, 1),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_submission": round(cpu / submissions * 1e6, 1),
        "wall_s": round(wall, 3),
        "slowest_submission_ms": round(stream.slowest_s * 1e3, 2),
        "longest_env_value_chars": stream.longest_env_value,
        "longest_image_chars": stream.longest_image,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.submissions, args.warmup, args.servers, args.seed))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
