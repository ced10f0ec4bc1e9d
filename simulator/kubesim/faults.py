"""Scriptable API-server misbehaviour, and the request counters tests and benchmarks read.

What breaks spawners in production is rarely a wrong answer; it is a slow, flaky or
restarting API server: latency, 5xx and 429 answers, connections cut mid-response,
watch streams that end, resourceVersions that expire, outages. ``Faults`` lets a test
(or an operator, through ``/_sim/faults``) switch each of these on while the simulator
runs, and ``RequestCounters`` records what the clients actually asked for, so a test
can assert "the reflector relisted once" rather than guess.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors

if TYPE_CHECKING:
    from .store import Store

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
ERROR_CODES = (400, 401, 403, 404, 409, 410, 429, 500, 503, 504)
_rule_ids = itertools.count(1)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a request is, in API terms (the same words the counters use)."""

    verb: (
        str  # get | list | watch | create | update | patch | delete | deletecollection | discovery
    )
    resource: str  # plural, with "/subresource" when there is one ("pods/status")
    namespace: str | None = None
    name: str | None = None
    group: str = ""


@dataclass
class FaultRule:
    """One scripted fault; ``None`` filters match everything."""

    action: str  # latency | error | reset | expire | hold
    verb: str | None = None
    resource: str | None = None
    name: str | None = None
    namespace: str | None = None
    fraction: float = 1.0
    count: int | None = None  # stop after this many hits
    code: int = 500
    retry_after: int = 1
    delay: float = 0.0
    delay_max: float | None = None  # random latency in [delay, delay_max]
    id: int = field(default_factory=lambda: next(_rule_ids))
    hits: int = 0

    def matches(self, info: RequestInfo) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.verb is not None and self.verb != info.verb:
            return False
        # "pods" matches pods and its subresources; "pods/status" only that subresource
        if self.resource is not None and self.resource not in (
            info.resource,
            info.resource.split("/", 1)[0],
        ):
            return False
        if self.name is not None and self.name != info.name:
            return False
        if self.namespace is not None and self.namespace != info.namespace:
            return False
        return self.fraction >= 1.0 or random.random() < self.fraction

    def describe(self) -> dict[str, Any]:
        return asdict(self)


class Hold:
    """Matching requests wait here until the test lets them through, one by one.

    For tests that must observe a client between two requests (a paged list between its
    pages) without sleeping: :meth:`release` lets ``n`` more requests pass,
    :meth:`wait_arrived` returns once ``n`` requests in all have reached the hold.
    """

    def __init__(self) -> None:
        self._passes = 0
        self._opened = False
        self.arrived = 0
        self._changed = asyncio.Event()

    def release(self, n: int = 1) -> None:
        self._passes += n
        self._wake()

    def open(self) -> None:
        """Let every request pass from now on (also done by :meth:`Faults.clear`)."""
        self._opened = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_arrived(self, n: int) -> None:
        while self.arrived < n:
            await self._changed.wait()

    async def pass_through(self) -> None:
        self.arrived += 1
        self._wake()
        while not self._opened and self._passes <= 0:
            await self._changed.wait()
        if not self._opened:
            self._passes -= 1


class Faults:
    """The fault script of one simulator. All methods are safe to call while it serves."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        #: the monotonic clock outages are timed on; public so a test can end an outage
        #: without waiting (assign a fake clock before calling :meth:`outage`)
        self.clock = clock
        self.rules: list[FaultRule] = []
        self._outage_until = 0.0
        self.outage_mode = "reset"
        self._holds: dict[int, Hold] = {}

    # -- scripting ------------------------------------------------------------
    def add_latency(
        self,
        seconds: float,
        *,
        up_to: float | None = None,
        verb: str | None = None,
        resource: str | None = None,
        count: int | None = None,
    ) -> FaultRule:
        """Delay matching requests by ``seconds`` (or a random time up to ``up_to``)."""
        if seconds < 0 or (up_to is not None and up_to < seconds):
            raise ValueError(
                f"latency must be >= 0 and up_to >= seconds; got seconds={seconds}, up_to={up_to}"
            )
        return self._add(
            FaultRule("latency", verb, resource, delay=seconds, delay_max=up_to, count=count)
        )

    def fail(
        self,
        code: int,
        *,
        fraction: float = 1.0,
        verb: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        count: int | None = None,
        retry_after: int = 1,
    ) -> FaultRule:
        """Answer matching requests with a real-looking error ``code`` (429 adds Retry-After)."""
        if code not in ERROR_CODES:
            raise ValueError(f"unsupported fault status code {code}; choose one of {ERROR_CODES}")
        return self._add(
            FaultRule(
                "error",
                verb,
                resource,
                name,
                namespace,
                fraction=fraction,
                count=count,
                code=code,
                retry_after=retry_after,
            )
        )

    def reset_connections(
        self,
        *,
        fraction: float = 1.0,
        verb: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        count: int | None = None,
    ) -> FaultRule:
        """Cut matching connections after sending part of the response."""
        return self._add(FaultRule("reset", verb, resource, name, fraction=fraction, count=count))

    def expire_next(
        self, count: int = 1, *, verb: str | None = None, resource: str | None = None
    ) -> FaultRule:
        """The next ``count`` list/watch requests get 410 Expired, as after a compaction."""
        if verb not in (None, "list", "watch"):
            raise ValueError(f"expire_next applies to list or watch, not {verb!r}")
        return self._add(FaultRule("expire", verb, resource, count=count))

    def hold(self, *, verb: str | None = None, resource: str | None = None) -> Hold:
        """Hold matching requests until released (Python API only: a test's gate)."""
        rule = self._add(FaultRule("hold", verb, resource))
        gate = self._holds[rule.id] = Hold()
        return gate

    def close_watches(self, after_events: int | None = None) -> int:
        """End every open watch now, or after each delivers ``after_events`` more events."""
        if after_events is not None and (not _is_int(after_events) or after_events < 0):
            raise ValueError(f"after_events must be a whole number >= 0, got {after_events!r}")
        return self._store.close_watches(after_events)

    def outage(self, seconds: float, *, mode: str = "reset") -> None:
        """For ``seconds``, every API request fails: connection reset or 503 (``mode``)."""
        if mode not in ("reset", "503"):
            raise ValueError(f'outage mode must be "reset" or "503", not {mode!r}')
        if not _is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"outage seconds must be a finite number >= 0, got {seconds!r}")
        self.outage_mode = mode
        self._outage_until = self.clock() + seconds
        if mode == "reset":
            self._store.close_watches()

    def restart(self) -> None:
        """An API server restart: history compacted, every watch dropped, objects kept."""
        self._store.restart()

    def remove(self, rule_id: int) -> None:
        gate = self._holds.pop(rule_id, None)
        if gate is not None:
            gate.open()
        self.rules = [r for r in self.rules if r.id != rule_id]

    def clear(self) -> None:
        for gate in self._holds.values():
            gate.open()
        self._holds.clear()
        self.rules.clear()
        self._outage_until = 0.0

    def _add(self, rule: FaultRule) -> FaultRule:
        """Check a rule completely before it is live: a bad value found later, while a
        request is being matched, would turn that request into a 500."""
        if not _is_number(rule.fraction) or not 0.0 <= rule.fraction <= 1.0:
            raise ValueError(f"fraction must be a number between 0 and 1, got {rule.fraction!r}")
        if rule.verb is not None and rule.verb not in VERBS:
            raise ValueError(f"unknown verb {rule.verb!r}; valid verbs: {', '.join(VERBS)}")
        for name in ("resource", "name", "namespace"):
            value = getattr(rule, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
        if rule.count is not None and (not _is_int(rule.count) or rule.count < 0):
            raise ValueError(f"count must be a whole number >= 0, got {rule.count!r}")
        if not _is_int(rule.retry_after) or rule.retry_after < 0:
            raise ValueError(
                f"retry_after must be a whole number of seconds >= 0, got {rule.retry_after!r}"
            )
        for name in ("delay", "delay_max"):
            value = getattr(rule, name)
            if value is not None and (not _is_number(value) or not math.isfinite(value)):
                raise ValueError(f"latency must be a finite number of seconds, got {value!r}")
        self.rules.append(rule)
        return rule

    @property
    def in_outage(self) -> bool:
        return self.clock() < self._outage_until

    def describe(self) -> dict[str, Any]:
        return {
            "rules": [r.describe() for r in self.rules],
            "outage_remaining_seconds": max(0.0, self._outage_until - self.clock()),
            "outage_mode": self.outage_mode,
        }

    # -- applied by the HTTP layer ---------------------------------------------
    async def before(self, info: RequestInfo) -> str | None:
        """Apply latency and errors for a request; returns "reset" or "expire" when the
        HTTP layer must act itself, raises ``StatusError`` for an injected error."""
        if self.in_outage:
            if self.outage_mode == "reset":
                return "reset"
            raise errors.service_unavailable()
        outcome: str | None = None
        for rule in list(self.rules):
            if not rule.matches(info):
                continue
            if rule.action == "latency":
                rule.hits += 1
                delay = (
                    rule.delay
                    if rule.delay_max is None
                    else random.uniform(rule.delay, rule.delay_max)
                )
                await asyncio.sleep(delay)
            elif rule.action == "hold":
                rule.hits += 1
                gate = self._holds.get(rule.id)
                if gate is not None:
                    await gate.pass_through()
            elif rule.action == "error":
                rule.hits += 1
                raise errors.error_for_code(rule.code, rule.retry_after)
            elif rule.action == "reset" and outcome is None:
                rule.hits += 1
                outcome = "reset"
            elif rule.action == "expire" and info.verb in ("list", "watch") and outcome is None:
                rule.hits += 1
                outcome = "expire"
        self.rules = [r for r in self.rules if r.count is None or r.hits < r.count]
        return outcome

    def apply_admin(self, command: dict[str, Any]) -> Any:
        """The ``POST /_sim/faults`` body: ``{"action": ..., options...}``."""
        if not isinstance(command, dict) or "action" not in command:
            raise errors.bad_request(
                'fault command must be a JSON object with an "action" '
                "(latency, error, reset, expire, close_watches, outage, restart, clear)"
            )
        args = dict(command)
        action = args.pop("action")
        try:
            match action:
                case "latency":
                    return self.add_latency(float(args.pop("seconds")), **args).describe()
                case "error":
                    return self.fail(int(args.pop("code")), **args).describe()
                case "reset":
                    return self.reset_connections(**args).describe()
                case "expire":
                    return self.expire_next(**args).describe()
                case "close_watches":
                    return {"closed": self.close_watches(args.get("after_events"))}
                case "outage":
                    self.outage(float(args["seconds"]), mode=args.get("mode", "reset"))
                    return self.describe()
                case "restart":
                    self.restart()
                    return {"restarted": True}
                case "clear":
                    self.clear()
                    return self.describe()
                case "remove":
                    self.remove(int(args["id"]))
                    return self.describe()
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise errors.bad_request(f"invalid {action!r} fault command: {exc}") from None
        raise errors.bad_request(
            f"unknown fault action {action!r}; valid: latency, error, reset, expire, "
            "close_watches, outage, restart, clear, remove"
        )


@dataclass(slots=True)
class LoggedRequest:
    at: float
    method: str
    path: str
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    status: int
    duration: float


class RequestCounters:
    """Counts of requests by verb, resource and status, plus a bounded request log."""

    def __init__(self, log_size: int = 10_000) -> None:
        self.by_key: Counter[tuple[str, str, int]] = Counter()
        self.log: collections.deque[LoggedRequest] = collections.deque(maxlen=log_size)

    def record(
        self, method: str, path: str, info: RequestInfo, status: int, duration: float
    ) -> None:
        self.by_key[(info.verb, info.resource, status)] += 1
        self.log.append(
            LoggedRequest(
                time.time(),
                method,
                path,
                info.verb,
                info.resource,
                info.namespace,
                info.name,
                status,
                duration,
            )
        )

    def count(
        self, verb: str | None = None, resource: str | None = None, status: int | None = None
    ) -> int:
        """How many requests matched (``None`` = any)."""
        return sum(
            n
            for (v, r, s), n in self.by_key.items()
            if (verb is None or v == verb)
            and (resource is None or r == resource)
            and (status is None or s == status)
        )

    def reset(self) -> None:
        self.by_key.clear()
        self.log.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": sum(self.by_key.values()),
            "counts": [
                {"verb": v, "resource": r, "status": s, "count": n}
                for (v, r, s), n in sorted(self.by_key.items())
            ],
        }

    def requests(self, limit: int = 1000) -> list[dict[str, Any]]:
        return [asdict(r) for r in list(self.log)[-limit:]]
