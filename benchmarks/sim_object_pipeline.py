"""Per-object cost of the simulator's pure steps: defaulting, validation, patching, selectors.

The simulator must sustain >= 1,000 pod creates/s with watchers attached on one core,
so the pure work done for each write has to stay a small slice of a millisecond. Run:

    PYTHONPATH=. python benchmarks/sim_object_pipeline.py [--iterations N]

It prints one line per step (microseconds per call) and a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesim.defaulting import default_object
from kubesim.json_values import clone_json
from kubesim.patching import (
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from kubesim.selectors import parse_field_selector, parse_label_selector
from kubesim.store import Store
from kubesim.validation import validate_object

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "sim" / "samples" / "pod-defaulted.json"


def _per_call_us(step: Callable[[], Any], iterations: int) -> float:
    """CPU time per call: on a shared machine, wall time mostly measures the neighbours."""
    start = time.process_time()
    for _ in range(iterations):
        step()
    return (time.process_time() - start) / iterations * 1e6


def _store_writes_us(body: dict[str, Any], iterations: int) -> dict[str, float]:
    """CPU time per in-process store write (decode, default, validate, commit; no HTTP).

    This is the path every API write takes, so it is where a second type-check pass
    over the object would show; the pure steps above are its parts, measured alone.
    """
    store = Store(history_size=iterations * 3)
    pods = store.resource("pods")
    names = (f"bench-{n}" for n in itertools.count())

    async def creates() -> None:
        for _ in range(iterations):
            obj = clone_json(body)
            obj["metadata"]["name"] = next(names)
            await store.create(pods, "default", obj, owned=True)

    async def patches() -> None:
        for n in range(iterations):
            labels = {"metadata": {"labels": {"round": str(n)}}}
            await store.patch(pods, "default", "bench-0", labels, "strategic")

    async def replaces() -> None:
        for n in range(iterations):
            obj = clone_json(store.get_ref(pods, "default", "bench-1"))
            obj["metadata"]["labels"] = {"round": str(n)}
            await store.replace(pods, "default", "bench-1", obj, owned=True)

    figures = {}
    for name, work in (
        ("store.create pod", creates),
        ("store.patch pod (strategic, labels)", patches),
        ("store.replace pod (labels)", replaces),
    ):
        start = time.process_time()
        asyncio.run(work())
        figures[name] = (time.process_time() - start) / iterations * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args()
    body = json.loads(SAMPLE.read_text())["spawner_like_gated"]["request"]["body"]
    stored = clone_json(body)
    default_object("Pod", stored, allocate_cluster_ip=lambda: "10.96.0.1")
    labels = parse_label_selector("app=probe,component in (singleuser-server)")
    fields = parse_field_selector("status.phase=Pending,spec.nodeName=", "Pod")

    def create() -> None:
        obj = clone_json(body)
        default_object("Pod", obj, allocate_cluster_ip=lambda: "10.96.0.1")
        validate_object("Pod", obj)

    steps: dict[str, Callable[[], Any]] = {
        "pod create (clone+default+validate)": create,
        "pod update validation": lambda: validate_object("Pod", stored, stored),
        "strategic merge patch (labels)": lambda: apply_strategic_merge_patch(
            stored, {"metadata": {"labels": {"a": "b"}}}, "Pod"
        ),
        "merge patch (status)": lambda: apply_merge_patch(stored, {"status": {"phase": "Running"}}),
        "json patch (replace image)": lambda: apply_json_patch(
            stored, [{"op": "replace", "path": "/spec/containers/0/image", "value": "x:2"}]
        ),
        "label+field selector match": lambda: (
            labels.matches(stored["metadata"]["labels"]) and fields.matches(stored)
        ),
    }
    results = {name: round(_per_call_us(step, args.iterations), 2) for name, step in steps.items()}
    for name, micros in _store_writes_us(body, args.iterations).items():
        results[name] = round(micros, 2)
    for name, micros in results.items():
        print(f"{name:40s} {micros:9.2f} us/call")
    print(json.dumps({"iterations": args.iterations, "us_per_call": results}))


if __name__ == "__main__":
    main()
