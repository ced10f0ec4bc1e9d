"""Cost of the profile machinery per spawn-page view and per spawn request.

Run: ``PYTHONPATH=. python benchmarks/profiles_form.py`` (prints JSON). Everything here
is CPU-only and in-process: rendering the options form, normalising ``profile_list``
(done on every view and spawn, since it may be a callable) and validating
``user_options``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from async_kubespawner.profiles import normalize_profile_list, select_profile
from tests.unit.profiles_support import PROFILES, ProfileTestSpawner


def per_call(fn: Callable[[], Any], repeat: int) -> float:
    """Best of three runs, in microseconds per call (best: the machine is shared)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - started) / repeat)
    return round(best * 1e6, 1)


async def main() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    spawner.user_options = {"profile": "small-cpu", "image": "base"}
    loop = asyncio.get_running_loop()
    await spawner.get_options_form()  # first render compiles the template

    async def render_many(n: int) -> float:
        started = loop.time()
        for _ in range(n):
            await spawner.get_options_form()
        return (loop.time() - started) / n

    render = min([await render_many(200) for _ in range(3)])
    profiles = normalize_profile_list(PROFILES)
    options = {"profile": "small-cpu", "image--unlisted-choice": "pangeo/ml:1"}
    print(
        json.dumps(
            {
                "profiles": len(PROFILES),
                "render_options_form_us": round(render * 1e6, 1),
                "normalize_profile_list_us": per_call(
                    lambda: normalize_profile_list(PROFILES), 2000
                ),
                "select_profile_us": per_call(lambda: select_profile(profiles, options), 5000),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
