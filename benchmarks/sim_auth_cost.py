"""What authentication and RBAC add to each simulator request, in CPU microseconds.

``sim_load --auth off|admin|serviceaccount`` measures the whole server, where a busy
machine's noise is larger than this cost; this measures the check itself, in process:
``Auth.admit`` (bearer token → user → request attributes → decision) for the admin
(``system:masters``, allowed before RBAC), for a ServiceAccount whose decision is
cached, and for the same request with the decision cache dropped before each call (what
the first request after an RBAC change pays: the index is rebuilt from 20 roles and
bindings plus the defaults).

    PYTHONPATH=.:simulator python -m benchmarks.sim_auth_cost [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import make_mocked_request
from kubesim.auth.testing import grant
from kubesim.testing import run_simulator

RULES = [{"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch", "create"]}]


def per_call_us(call: Any, rounds: int) -> float:
    call()
    started = time.perf_counter()
    for _ in range(rounds):
        call()
    return (time.perf_counter() - started) / rounds * 1e6


async def measure(rounds: int) -> dict[str, float]:
    async with run_simulator(auth=True) as sim:
        assert sim.auth is not None and sim.token is not None
        for i in range(20):  # other tenants' RBAC, so the index is not trivially small
            await grant(sim, f"tenant-{i}", "hub", RULES)
        await grant(sim, "bench", "load", RULES)
        sa_token = sim.auth.token_for("bench", "load")

        def request(token: str) -> Any:
            return make_mocked_request(
                "POST",
                "/api/v1/namespaces/bench/pods",
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": "bench",
                },
            )

        admin_request, sa_request = request(sim.token), request(sa_token)
        auth = sim.auth

        def uncached() -> None:
            auth.authorizer.rbac_changed()
            auth.admit(sa_request)

        return {
            "admin_us": per_call_us(lambda: auth.admit(admin_request), rounds),
            "serviceaccount_cached_us": per_call_us(lambda: auth.admit(sa_request), rounds),
            "serviceaccount_after_rbac_change_us": per_call_us(uncached, max(1, rounds // 20)),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.rounds))
    for name, value in figures.items():
        print(f"{name:40s} {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
