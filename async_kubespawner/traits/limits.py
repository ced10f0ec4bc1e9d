"""Ranges of the numeric settings, checked when the hub loads its configuration.

A number outside its range does not fail loudly on its own: ``reflector_backoff_max = 0``
is a hot loop of thousands of requests a second, ``events_total_limit = -1`` a crash loop
of the event reflector, a negative ``stop_timeout`` a failed start that never cleans up,
``k8s_api_request_timeout = 0`` requests without any timeout, and a CPU request above its
limit a 422 after the PVC already exists. Each is refused here, naming the setting and the
range, before any spawner runs.

The validators live on this mixin (placed in ``KubeSpawnerSettings``' bases) rather than
beside each trait, so that settings declared on the base ``Spawner`` (``port``,
``start_timeout``, ``cpu_limit``...) and on ``KubeSpawner`` itself are covered by one table.
"""

from __future__ import annotations

import math
from typing import Any

from traitlets import validate
from traitlets.config import LoggingConfigurable

from .errors import SpawnerConfigError

MAX_LINUX_ID = 2147483647

#: setting -> (lowest allowed, lowest is exclusive, highest allowed or None, the fix)
NUMERIC_RANGES: dict[str, tuple[float, bool, float | None, str]] = {
    "port": (0, False, 65535, "Use a TCP port (1-65535), or 0 for the default 8888."),
    "start_timeout": (0, True, None, "Give the seconds a start may take, e.g. 300."),
    "http_timeout": (0, True, None, "Give the seconds the hub waits for the server, e.g. 30."),
    "stop_timeout": (0, True, None, "Give the seconds a stop may take, e.g. 60."),
    "cpu_limit": (0, False, None, "Give a number of cores such as 0.5 or 2, or None."),
    "cpu_guarantee": (0, False, None, "Give a number of cores such as 0.5 or 2, or None."),
    "mem_limit": (0, False, None, "Give a size such as '2G', or None."),
    "mem_guarantee": (0, False, None, "Give a size such as '2G', or None."),
    "uid": (0, False, MAX_LINUX_ID, "Give a Linux user id (0-2147483647), or None."),
    "gid": (0, False, MAX_LINUX_ID, "Give a Linux group id (0-2147483647), or None."),
    "fs_gid": (0, False, MAX_LINUX_ID, "Give a Linux group id (0-2147483647), or None."),
    "delete_grace_period": (0, False, None, "Give the seconds a pod gets to shut down, e.g. 1."),
    "k8s_api_request_timeout": (0, True, None, "Give the seconds one request may take, e.g. 3."),
    "k8s_api_request_retry_timeout": (
        0,
        False,
        None,
        "Give the seconds retries of one operation may take, e.g. 30 (0: no retries).",
    ),
    "reflector_backoff_max": (
        0,
        True,
        None,
        "Give the longest pause between reflector attempts in seconds, e.g. 30.",
    ),
    "reflector_watch_timeout": (0, True, None, "Give the seconds a watch is held, e.g. 300."),
    "reflector_idle_timeout": (
        0,
        True,
        None,
        "Give the seconds of silence after which a watch is reopened, or None.",
    ),
    "reflector_list_page_size": (0, True, None, "Give the objects per list page, e.g. 200."),
    "first_list_timeout": (0, False, None, "Give the seconds poll() waits, e.g. 10."),
    "reflector_release_delay": (
        0,
        False,
        None,
        "Give the seconds a namespace's reflectors outlive its last server, e.g. 30.",
    ),
    "reflector_stale_after": (
        0,
        False,
        None,
        "Give the seconds poll() trusts a cut-off cache, e.g. 5 (0: never).",
    ),
    "events_per_object_limit": (
        0,
        True,
        None,
        "Keep at least 1 event per object (set events_enabled = False to keep none).",
    ),
    "events_total_limit": (
        0,
        True,
        None,
        "Keep at least 1 event (set events_enabled = False to keep none).",
    ),
    "slow_spawn_message_threshold": (0, False, None, "Give seconds, or 0 to disable."),
    "slow_spawn_message_frequency": (0, True, None, "Give the seconds between messages, e.g. 5."),
    "poll_interval": (0, False, None, "Give the seconds between polls, e.g. 30."),
    "poll_jitter": (0, False, 1, "Give a fraction between 0 and 1, e.g. 0.1."),
    "consecutive_failure_limit": (0, False, None, "Give a number of failures, or 0 for no limit."),
    "hub_connect_port": (0, False, 65535, "Use a TCP port (1-65535), or 0 for the hub's own."),
    "gc_young_threshold": (
        100,
        False,
        None,
        "Give a number of allocations such as 10000, or None to leave the collector alone.",
    ),
}

#: Numeric settings whose range is checked by a validator of their own.
CHECKED_ELSEWHERE = frozenset(
    {
        "image_pull_error_tolerance",
        "config_error_tolerance",
        "unschedulable_tolerance",
        "k8s_api_max_concurrent_requests",
        "k8s_api_threadpool_workers",  # deprecated and ignored
    }
)


def check_range(setting: str, value: Any) -> None:
    """Raise SpawnerConfigError unless ``value`` is in ``setting``'s range (None and
    callables pass: they are checked when resolved)."""
    if value is None or callable(value) or isinstance(value, bool):
        return
    if not isinstance(value, int | float):
        return  # the trait's own type check reports it
    low, exclusive, high, fix = NUMERIC_RANGES[setting]
    if value != value:  # NaN compares false with everything
        raise SpawnerConfigError(setting, value, "it is not a number", fix)
    if value in (math.inf, -math.inf):
        # Rendered as null in a manifest (a 422 after the PVC exists), and an endless
        # wait or backoff where it is a duration.
        raise SpawnerConfigError(setting, value, "it is not a finite number", fix)
    if (value <= low) if exclusive else (value < low):
        bound = f"greater than {low:g}" if exclusive else f"at least {low:g}"
        raise SpawnerConfigError(setting, value, f"it must be {bound}", fix)
    if high is not None and value > high:
        raise SpawnerConfigError(setting, value, f"it must be at most {high:g}", fix)


class NumericLimits(LoggingConfigurable):
    """Range validators for the numeric settings of the spawner and its base class."""

    @validate("supplemental_gids")
    def _check_supplemental_gids(self, proposal: Any) -> Any:
        value = proposal.value
        if isinstance(value, list):
            for gid in value:
                if isinstance(gid, int) and not 0 <= gid <= MAX_LINUX_ID:
                    raise SpawnerConfigError(
                        "supplemental_gids",
                        value,
                        f"{gid} is not a Linux group id",
                        "Give group ids between 0 and 2147483647.",
                    )
        return value

    @validate(*NUMERIC_RANGES)
    def _check_numeric_range(self, proposal: Any) -> Any:
        check_range(proposal.trait.name, proposal.value)
        return proposal.value
