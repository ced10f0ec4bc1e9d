"""Replay watch lines through the full parse and through the sinks' typed decoders.

Shared by the unit tests (recorded and generated lines) and the lifecycle tests (lines a
simulator sent during real spawns): both compare the two paths the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from async_kubespawner.kube.cache import EventIndex, ObjectCache
from async_kubespawner.kube.errors import ApiError
from async_kubespawner.kube.reflector import Reflector, WatchGone

Sink = ObjectCache | EventIndex


class _Source:
    """Only what ``Reflector.apply`` reads of its source (no list, no watch here)."""

    name = "pods@test"
    resource = "pods"
    namespace = "test"


def _state(reflector: Reflector[Any]) -> Any:
    sink = reflector.sink
    if isinstance(sink, ObjectCache):
        held: Any = dict(sink._objects)
    else:
        held = (
            {key: list(bucket.items()) for key, bucket in sink._by_object.items()},
            list(sink._order.items()),
        )
    return held, reflector.resource_version


def _outcome(reflector: Reflector[Any], decode: Callable[[bytes], Any], raw: bytes) -> Any:
    try:
        reflector.apply(decode(raw))
    except WatchGone:
        return "410"
    except ApiError as e:
        return (type(e).__name__, e.status, str(e))
    except Exception as e:  # an odd shape the trim cannot read: same failure both ways
        return type(e).__name__
    return None


def replay(lines: list[bytes], make_sink: Callable[[], Sink]) -> tuple[Any, Any]:
    """(old, new): outcomes per line and the final state of both paths."""
    old = Reflector(_Source(), make_sink())  # type: ignore[arg-type]
    new = Reflector(_Source(), make_sink())  # type: ignore[arg-type]
    old_outcomes, new_outcomes = [], []
    for raw in lines:
        old_outcomes.append(_outcome(old, orjson.loads, raw))
        new_outcomes.append(_outcome(new, new.sink.decode_event, raw))
    return (old_outcomes, _state(old)), (new_outcomes, _state(new))


def assert_same(lines: list[bytes], make_sink: Callable[[], Sink]) -> None:
    old, new = replay(lines, make_sink)
    assert new == old


