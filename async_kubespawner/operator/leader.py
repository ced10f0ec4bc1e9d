"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Several replicas of the operator run; one holds the Lease and reconciles, the others keep
their caches warm and take over when the holder stops renewing. The rules:

* The holder renews ``spec.renewTime`` every ``retry_period``; every write is a PUT with
  the Lease's ``resourceVersion``, so two candidates can never both win a race (one gets
  409 and stays a candidate).
* A candidate considers the Lease expired when it has *observed* no change of the
  Lease's record for ``lease_duration`` seconds, timed on its own monotonic clock: no
  comparison of wall clocks across machines, so clock skew cannot make two leaders.
* A holder that cannot renew for ``renew_deadline`` (< ``lease_duration``) stops leading
  before any other replica may start, so the old and the new leader never overlap.
* On a clean shutdown the holder releases the Lease (empty holder), so the next replica
  takes over at once instead of after ``lease_duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..kube.client import ApiError, KubeApi, Priority
from .kubeio import LEASES, replace

log = logging.getLogger("async_kubespawner.operator.leader")

#: Lease reads and writes go before everything else the replica sends: a renewal stuck
#: behind a burst of the replica's own work would make it step down for nothing.
_LEASE = Priority.CRITICAL


@dataclass(frozen=True)
class LeaseSettings:
    name: str = "async-kubespawner-operator"
    #: A standby takes over after seeing no renewal for this long; with a 2 s retry it
    #: leads within 14 s of the leader's death (it may see the last renewal 2 s late and
    #: look again 2 s after expiry).
    lease_duration: float = 10.0
    renew_deadline: float = 7.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry_period < renew_deadline < lease_duration, got "
                f"{self.retry_period}, {self.renew_deadline}, {self.lease_duration}"
            )


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for the Lease and runs ``lead()`` while holding it."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        identity: str,
        settings: LeaseSettings = LeaseSettings(),
        *,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.identity = identity
        self.settings = settings
        self.is_leader = False
        self.transitions = 0
        self._on_change = on_change
        #: more ``listener(is_leader)`` callbacks, called after ``on_change`` at each
        #: transition: observers (tests, metrics) attach here without owning the elector
        self.change_listeners: list[Callable[[bool], None]] = []
        self._observed_record: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._lease: dict[str, Any] | None = None
        self._clock = time.monotonic

    def _set_leader(self, value: bool) -> None:
        if value != self.is_leader:
            self.is_leader = value
            log.info("%s %s the lease %s", self.identity,
                     "acquired" if value else "lost", self.settings.name)
            if self._on_change is not None:
                self._on_change(value)
            for listener in self.change_listeners:
                listener(value)

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign forever; while leading, run ``lead()`` (cancelled when leadership ends)."""
        try:
            while True:
                await self._acquire()
                self._set_leader(True)
                leading = asyncio.ensure_future(lead())
                renewing = asyncio.ensure_future(self._keep_renewing())
                try:
                    await asyncio.wait({leading, renewing}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (leading, renewing):
                        task.cancel()
                        with contextlib.suppress(BaseException):
                            await task
                    self._set_leader(False)
                if leading.done() and not leading.cancelled() and leading.exception() is None:
                    return  # lead() ended on its own: we are shutting down
        finally:
            if self.is_leader:
                self._set_leader(False)

    async def release(self) -> None:
        """Give the Lease up (clean shutdown): the next candidate need not wait it out.

        The copy we hold may be one write behind: a renewal cancelled by the shutdown after
        its PUT was sent has moved the resourceVersion on. A conflict is therefore answered
        by reading the Lease again and releasing it if it is still ours (a few tries), not
        by giving up, which would leave every standby waiting out the whole lease.
        """
        lease = self._lease
        for _attempt in range(3):
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                break
            body = dict(lease)
            body["spec"] = dict(lease["spec"], holderIdentity="", leaseDurationSeconds=1,
                                renewTime=_micro_time())
            try:
                await replace(self.api, LEASES, self.namespace, self.settings.name, body,
                              priority=_LEASE)
                break
            except ApiError as e:
                if e.status != 409:
                    break
            try:
                lease = await self.api.get_or_none(LEASES, self.namespace, self.settings.name,
                                            priority=_LEASE)
            except ApiError:
                break
        self._lease = None

    # -- one attempt ----------------------------------------------------------------

    async def _acquire(self) -> None:
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except ApiError as e:
                log.warning("%s: lease %s not reachable: %s", self.identity,
                            self.settings.name, e)
            await asyncio.sleep(self.settings.retry_period)

    async def _keep_renewing(self) -> None:
        last_renewed = self._clock()
        while True:
            await asyncio.sleep(self.settings.retry_period)
            try:
                if await self.try_acquire_or_renew():
                    last_renewed = self._clock()
                    continue
                log.warning("%s: lease %s taken by another replica", self.identity,
                            self.settings.name)
                return
            except ApiError as e:
                log.warning("%s: renewing lease %s failed: %s", self.identity,
                            self.settings.name, e)
            if self._clock() - last_renewed >= self.settings.renew_deadline:
                log.error("%s: could not renew lease %s for %.0fs; stepping down",
                          self.identity, self.settings.name, self.settings.renew_deadline)
                return

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this replica holds the Lease afterwards."""
        now = _micro_time()
        mine = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.settings.lease_duration)),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        lease = await self.api.get_or_none(LEASES, self.namespace, self.settings.name,
                                            priority=_LEASE)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.settings.name, "namespace": self.namespace},
                "spec": mine,
            }
            try:
                self._lease = await self.api.request(
                    "create", LEASES.plural, "POST", LEASES.path(self.namespace), body=body,
                    priority=_LEASE,
                )
            except ApiError as e:
                if e.status == 409:
                    return False
                raise
            self._observe(self._lease)
            return True
        spec = lease.get("spec") or {}
        self._observe(lease)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_duration)
        if holder and holder != self.identity and not self._expired(duration):
            self._lease = lease
            return False
        if holder == self.identity:
            mine["acquireTime"] = spec.get("acquireTime") or now
            mine["leaseTransitions"] = spec.get("leaseTransitions") or 0
        else:
            mine["leaseTransitions"] = (spec.get("leaseTransitions") or 0) + 1
        body = dict(lease)
        body["spec"] = mine
        try:
            self._lease = await replace(self.api, LEASES, self.namespace, self.settings.name, body,
                              priority=_LEASE)
        except ApiError as e:
            if e.status == 409:
                return False  # somebody else wrote it first
            raise
        if holder != self.identity:
            self.transitions += 1
        self._observe(self._lease)
        return True

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        record = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("acquireTime"),
            spec.get("leaseTransitions"),
        )
        if record != self._observed_record:
            self._observed_record = record
            self._observed_at = self._clock()

    def _expired(self, duration: float) -> bool:
        """No change of the record observed for ``duration`` seconds (our own clock)."""
        return self._clock() - self._observed_at >= duration
