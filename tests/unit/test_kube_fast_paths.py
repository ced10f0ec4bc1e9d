"""The client's and the cache's per-request and per-event shortcuts change nothing observable.

Each shortcut is held against the behaviour it replaced: the owner-annotation memos of
the cache entry (a cold and a warm memo pack the same bytes and read back the same
object, whatever the annotation; the memos stay bounded and their shared results cannot
be changed), the watch lines handed to the decoder as views of the stream's chunk (the
same lines as the splitting loop decoded, wherever the chunks are cut), the retry budget that makes its deadline only when a retry is considered
(the same timeouts and verdicts as a deadline made at the first attempt), the slot taken
without a coroutine (never ahead of a waiter), and the latency histogram child looked up
once (the same series counted).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from async_kubespawner.kube import entry
from async_kubespawner.kube.admission import Admission, Priority
from async_kubespawner.kube.cache import ObjectCache, _Waiter, trim_pod
from async_kubespawner.kube.client import _RetryBudget, _Target
from async_kubespawner.kube.deadline import Deadline
from async_kubespawner.kube.entry import pack_entry, unpack_entry
from async_kubespawner.kube.reflector import Reflector
from async_kubespawner.metrics import API_REQUEST_DURATION
from async_kubespawner.objects.identity import IDENTITY_ANNOTATION, Scope, ServerIdentity
from async_kubespawner.testing import ReplayedWatch

from .test_cache_entry import _owner_values, trimmed_objects


def _cold() -> None:
    entry._compacted.clear()
    entry._expanded.clear()


# -- the owner memos of the cache entry -------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(trimmed_objects())
def test_a_warm_memo_packs_and_reads_exactly_what_a_cold_one_does(trimmed: dict[str, Any]) -> None:
    meta = trimmed["metadata"]
    key = (meta.get("namespace") or "", meta.get("name") or "")
    rv = meta.get("resourceVersion") or ""
    _cold()
    cold = pack_entry(key, rv, trimmed)
    cold_read = unpack_entry(key, cold)
    warm = pack_entry(key, rv, trimmed)  # every owner string is now remembered
    assert warm == cold
    assert unpack_entry(key, warm) == cold_read == trimmed
    _cold()
    assert unpack_entry(key, warm) == cold_read  # a cold read of a warm entry


@settings(max_examples=200, deadline=None)
@given(_owner_values())
def test_every_owner_value_reads_back_verbatim_through_the_memos(owner: Any) -> None:
    trimmed = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                                           "resourceVersion": "1",
                                           "annotations": {IDENTITY_ANNOTATION: owner}}}
    for _ in range(2):  # a miss, then a hit
        packed = pack_entry(("ns", "p"), "1", trimmed)
        assert unpack_entry(("ns", "p"), packed)["metadata"]["annotations"] == {
            IDENTITY_ANNOTATION: owner
        }


def test_the_memos_stay_bounded() -> None:
    _cold()
    for i in range(entry._OWNER_MEMO_SIZE * 2 + 7):
        raw = ServerIdentity("hub", f"user-{i}", "").annotation(Scope.SERVER)
        packed = pack_entry(("ns", "p"), "1", {"metadata": {"annotations": {
            IDENTITY_ANNOTATION: raw}}})
        assert unpack_entry(("ns", "p"), packed)["metadata"]["annotations"][
            IDENTITY_ANNOTATION] == raw
    assert len(entry._compacted) <= entry._OWNER_MEMO_SIZE
    assert len(entry._expanded) <= entry._OWNER_MEMO_SIZE


def test_a_remembered_owner_cannot_be_changed_by_whoever_got_it() -> None:
    raw = ServerIdentity("hub", "alice", "").annotation(Scope.SERVER)
    first = entry._compact_owner(raw)
    assert isinstance(first, tuple)  # immutable: shared by every entry packed with it
    assert entry._compact_owner(raw) is first
    with pytest.raises(TypeError):
        first[1] = "mallory"


def _api_pod(name: str, rv: int, owner: str, phase: str, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                     "resourceVersion": str(rv),
                     "labels": {"component": "singleuser-server", "app": "jupyterhub"},
                     "annotations": {IDENTITY_ANNOTATION: owner, "other": "x"}},
        "spec": {"containers": [{"name": "notebook", "ports": [{"containerPort": 8888}]}]},
        "status": {"phase": phase, "containerStatuses": [
            {"name": "notebook", "ready": ready, "restartCount": 0,
             "state": {"running": {}} if ready else {"waiting": {"reason": "Pulling"}}}]},
    }


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["ADDED", "MODIFIED", "DELETED"]),
                          st.sampled_from(["Pending", "Running", "Failed"]), st.booleans(),
                          st.sampled_from(["alice", "bob", "carol\u00e9", 'x"y'])),
                max_size=40))
def test_random_pod_event_sequences_leave_the_cache_a_plain_trim_would(
    steps: list[tuple[int, str, str, bool, str]],
) -> None:
    """Events applied to the cache (memos warm or cold) leave, per key, exactly the
    trim of the last object seen, and every waiter sees exactly that trim."""
    cache = ObjectCache(trim_pod)
    expected: dict[tuple[str, str], Any] = {}
    seen: list[Any] = []

    class _Pending:
        """A future that never resolves: its waiter sees every change of its key."""

        def done(self) -> bool:
            return False

    for i, (n, kind, phase, ready, user) in enumerate(steps):
        if i % 7 == 0:
            _cold()
        name = f"pod-{n}"
        owner = ServerIdentity("hub", user, "").annotation(Scope.SERVER)
        pod = _api_pod(name, i + 1, owner, phase, ready)
        key = ("ns", name)
        cache._waiters[key] = [_Waiter(seen.append, _Pending())]  # type: ignore[arg-type]
        before = len(seen)
        if kind == "DELETED":
            present = key in cache
            cache.remove(pod)
            expected.pop(key, None)
            assert seen[before:] == ([None] if present else [])
        else:
            cache.upsert(pod)
            expected[key] = trim_pod(pod)
            assert seen[before:] == [expected[key]]
    assert {k: cache.get(k) for k in cache.keys()} == expected


# -- the request path ---------------------------------------------------------------------


class _DeadlineFirstBudget:
    """The retry budget as it was: a Deadline made at the first attempt."""

    def __init__(self, budget: float, request_timeout: float, clock: Any) -> None:
        self.budget, self.request_timeout, self.clock = budget, request_timeout, clock
        self.deadline: Deadline | None = None

    def attempt_timeout(self) -> float:
        if self.deadline is None:
            self.deadline = Deadline(self.budget, "the API request did not succeed",
                                     clock=self.clock)
            return self.request_timeout
        return max(0.05, self.deadline.timeout(self.request_timeout))

    def allows(self, delay: float) -> bool:
        return self.deadline is not None and self.deadline.allows(delay)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 100) | st.just(math.inf),
    st.floats(0.01, 10),
    st.lists(st.tuples(st.sampled_from(["attempt", "allows"]), st.floats(0, 20),
                       st.floats(0, 20)), max_size=12),
)
def test_the_lazy_retry_budget_decides_as_the_eager_one(
    budget: float, request_timeout: float, steps: list[tuple[str, float, float]]
) -> None:
    now = [0.0]
    lazy = _RetryBudget(budget, request_timeout, lambda: now[0])
    eager = _DeadlineFirstBudget(budget, request_timeout, lambda: now[0])
    for what, advance, delay in steps:
        now[0] += advance
        if what == "attempt":
            assert lazy.attempt_timeout() == eager.attempt_timeout()
        else:
            assert lazy.allows(delay) == eager.allows(delay)


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_a_bad_budget_is_refused_at_the_first_attempt_as_before(bad: float) -> None:
    with pytest.raises(ValueError, match="seconds >= 0"):
        _DeadlineFirstBudget(bad, 1.0, lambda: 0.0).attempt_timeout()
    with pytest.raises(ValueError, match="seconds >= 0"):
        _RetryBudget(bad, 1.0, lambda: 0.0).attempt_timeout()


async def test_a_slot_taken_at_once_never_jumps_a_waiter() -> None:
    admission = Admission(1)
    assert admission.try_acquire(Priority.NORMAL)
    assert not admission.try_acquire(Priority.NORMAL)  # full
    waiter = asyncio.ensure_future(admission.acquire(Priority.NORMAL))
    await asyncio.sleep(0)
    admission.release(Priority.NORMAL)  # handed to the waiter, not left free
    assert not admission.try_acquire(Priority.NORMAL)
    await waiter
    assert admission.in_flight == 1
    admission.release(Priority.NORMAL)
    assert admission.try_acquire(Priority.BULK) and admission.in_flight == 1


async def test_a_slot_taken_at_once_respects_caps_and_the_reserve() -> None:
    admission = Admission(3, {Priority.BULK: 1}, reserve=1)
    assert admission.try_acquire(Priority.BULK)
    assert not admission.try_acquire(Priority.BULK)  # its cap
    assert admission.try_acquire(Priority.NORMAL)
    assert not admission.try_acquire(Priority.NORMAL)  # the last slot is CRITICAL's
    assert admission.try_acquire(Priority.CRITICAL)


def test_the_remembered_latency_child_is_the_metric_series() -> None:
    target = _Target("get", "pods", "ns", "p")
    assert target.duration is API_REQUEST_DURATION.labels("get", "pods")
    before = API_REQUEST_DURATION.labels("get", "pods")._sum.get()
    target.duration.observe(0.25)
    assert API_REQUEST_DURATION.labels("get", "pods")._sum.get() == pytest.approx(before + 0.25)


# -- the watch stream's lines ---------------------------------------------------------------


def _lines_as_before(chunks: list[bytes]) -> list[bytes]:
    """The lines the watch loop decoded when it split its buffer into bytes objects."""
    seen: list[bytes] = []
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        if b"\n" not in chunk:
            continue
        *lines, buffer = buffer.split(b"\n")
        seen.extend(line for line in lines if line.strip())
    if buffer.strip():
        seen.append(buffer)
    return seen


class _RecordingSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.upserts: list[Any] = []

    def decode_event(self, line: Any) -> dict[str, Any]:
        self.lines.append(bytes(line))
        decoded: dict[str, Any] = orjson.loads(line)
        return decoded

    def trim(self, obj: dict[str, Any]) -> Any:
        return obj

    def upsert(self, obj: dict[str, Any]) -> None:
        self.upserts.append(obj)

    def remove(self, obj: dict[str, Any]) -> None:
        self.upserts.append(None)

    def replace_all(self, objects: list[Any], *, trimmed: bool = False) -> None:
        pass

    def __len__(self) -> int:
        return 0


def _event_line(i: int, pad: int) -> bytes:
    return b" " * pad + orjson.dumps({"type": "ADDED", "object": {"metadata": {
        "name": f"p{i}", "namespace": "ns", "resourceVersion": str(i + 2)}}})


_filler = st.sampled_from([b"", b" ", b"\r", b"  \t ", b" " * 40, b"\t" * 17])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("event"), st.integers(0, 3)),
                          st.tuples(st.just("blank"), _filler)), max_size=25),
       st.sampled_from([b"", b"\n", b"\r\n"]),
       st.lists(st.integers(0, 2000), max_size=8))
def test_watch_lines_are_the_lines_the_byte_splitting_loop_decoded(
    parts: list[tuple[str, Any]], ending: bytes, cuts: list[int],
) -> None:
    """Lines handed over as views of the chunk: the same lines, in the same order, as
    when the buffer was split into bytes objects, wherever the chunks are cut, with
    blank and whitespace-only lines (short and long) and a last line without newline."""
    lines = [_event_line(i, v) if kind == "event" else v for i, (kind, v) in enumerate(parts)]
    stream = b"\n".join(lines) + ending
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    sink = _RecordingSink()
    reflector = Reflector(ReplayedWatch("pods", chunks, "ns"), sink)  # type: ignore[arg-type]
    reflector.resource_version = "1"
    asyncio.run(reflector._watch())
    expected = _lines_as_before(chunks)
    assert sink.lines == expected
    assert len(sink.upserts) == len(expected)


def test_a_line_begun_in_the_last_chunk_is_joined_alone() -> None:
    """The lines after it are views of the new chunk itself: a backlog's chunk (megabytes)
    is not copied to prepend the few bytes the last chunk left."""
    lines = [_event_line(i, 0) for i in range(4)]
    stream = b"\n".join(lines) + b"\n"
    cut = len(lines[0]) // 2
    first, second = stream[:cut], stream[cut:]
    seen: list[tuple[bytes, object]] = []

    class _Sink(_RecordingSink):
        def decode_event(self, line: Any) -> dict[str, Any]:
            seen.append((bytes(line), line.obj))
            return super().decode_event(line)

    reflector = Reflector(ReplayedWatch("pods", [first, second], "ns"), _Sink())  # type: ignore[arg-type]
    reflector.resource_version = "1"
    asyncio.run(reflector._watch())
    assert [line for line, _ in seen] == lines
    assert seen[0][1] is not second  # the joined line: its own small buffer
    assert all(owner is second for _, owner in seen[1:])
