"""How long building a user's objects takes (no I/O): the CPU cost every spawn pays.

    PYTHONPATH=. python benchmarks/settings_manifest_build.py [--rounds N] [--json out.json]

Builds the pod (busy configuration: volumes, affinities, sidecars, restricted
profile...), the PVC and the Secret for distinct users and reports per-object
timings; writes JSON when asked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from async_kubespawner import KubeSpawner
from async_kubespawner.testing import build_spawner, kubespawner_config

BUSY = {
    "image": "registry.example/lab:1.0",
    "cmd": ["jupyterhub-singleuser"],
    "working_dir": "/home/{username}",
    "node_selector": {"pool": "users"},
    "tolerations": {"gpu": {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}},
    "node_affinity_required": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["users"]}]}
    ],
    "init_containers": [{"name": "setup", "image": "busybox:1", "command": ["true"]}],
    "extra_containers": [{"name": "sidecar", "image": "busybox:1"}],
    "uid": 1000,
    "fs_gid": 100,
    "mem_limit": "2G",
    "cpu_limit": 2.0,
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/{username}"}],
    "extra_labels": {"user": "{safe_username}"},
    "environment": {"A": "$(B)/x", "B": "/data", "USER_DIR": "/home/{username}"},
    "storage_capacity": "10Gi",
    "security_profile": "restricted",
    "api_token_in_secret": True,
}
OWNER = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}


def make_spawner(username: str, servername: str = "") -> KubeSpawner:
    return build_spawner(
        KubeSpawner, username, config=kubespawner_config(BUSY), servername=servername
    )


async def measure(rounds: int) -> dict[str, float]:
    spawners = [make_spawner(f"user{i}@example.org", "lab") for i in range(rounds)]
    timings: dict[str, list[float]] = {"spawner_init": [], "pod": [], "pvc": [], "secret": []}
    for i in range(rounds):
        t0 = time.perf_counter()
        make_spawner(f"other{i}")
        timings["spawner_init"].append(time.perf_counter() - t0)
    for spawner in spawners:
        t0 = time.perf_counter()
        await spawner.prepare_pod()
        t1 = time.perf_counter()
        spawner.get_pvc_manifest()
        t2 = time.perf_counter()
        spawner.get_secret_manifest(OWNER)
        t3 = time.perf_counter()
        timings["pod"].append(t1 - t0)
        timings["pvc"].append(t2 - t1)
        timings["secret"].append(t3 - t2)
    result: dict[str, float] = {"rounds": rounds}
    for name, values in timings.items():
        result[f"{name}_median_ms"] = round(statistics.median(values) * 1000, 3)
        result[f"{name}_p95_ms"] = round(sorted(values)[int(len(values) * 0.95) - 1] * 1000, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = asyncio.run(measure(args.rounds))
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
