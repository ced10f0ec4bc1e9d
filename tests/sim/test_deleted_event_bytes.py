"""A DELETED right after its grace-0 MODIFIED reuses that event's JSON, byte for byte.

Why: the two events of a pod's end differ in ``metadata.resourceVersion`` only, so the
store makes the second from the first by swapping that field (``_with_resource_version``).
What a client reads must be exactly what serialising the object gives; these tests pin
that, and that every case where the field cannot be found for certain (a look-alike in a
string, a nested object first, another key order) falls back to serialising in full.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.store import Store, WatchEvent, _with_resource_version, dumps


def pod(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **metadata},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
    }


async def test_the_deleted_event_of_a_grace_zero_delete_is_its_own_object_serialised() -> None:
    store = Store()
    pods = store.resource("pods")
    annotations = {
        # look-alikes of the field in strings: escaped quotes never match the field itself
        "note": '"resourceVersion":"1"',
        "brace": "{[",
    }
    await store.create(pods, "default", pod("p", annotations=annotations))
    await store.create(pods, "default", pod("q", labels={"a": "b"}))
    watch = store.watch(pods, "default", resource_version=str(store.resource_version))
    await store.delete(pods, "default", "p", grace_period_seconds=30)
    await store.delete(pods, "default", "p", grace_period_seconds=0)
    await store.delete(pods, "default", "q", grace_period_seconds=0)
    events = [await watch.next_event() for _ in range(5)]
    kinds = [(e.type, e.object["metadata"]["name"]) for e in events if e is not None]
    assert kinds == [("MODIFIED", "p"), ("MODIFIED", "p"), ("DELETED", "p"),
                     ("MODIFIED", "q"), ("DELETED", "q")]
    # the DELETED events are made from the MODIFIED before them (the path under test)
    assert [e._like is not None for e in events if e is not None] == [
        False, False, True, False, True
    ]
    for before, after in ((events[1], events[2]), (events[3], events[4])):
        assert before is not None and after is not None
        assert _with_resource_version(  # found for certain in a stored pod
            before.object_json(), before.object["metadata"]["resourceVersion"],
            after.object["metadata"]["resourceVersion"],
        ) == orjson.dumps(after.object)
    for event in events:
        assert event is not None
        assert event.object_json() == orjson.dumps(event.object)
        assert event.line() == (
            b'{"type":"' + event.type.encode() + b'","object":' + orjson.dumps(event.object)
            + b"}\n"
        )
    deleted = events[2]
    assert deleted is not None and deleted.object["metadata"]["resourceVersion"] != (
        events[1].object["metadata"]["resourceVersion"]  # type: ignore[union-attr]
    )
    watch.close()


def test_an_uncertain_field_is_left_to_full_serialisation() -> None:
    meta_first = {"kind": "Pod", "apiVersion": "v1",
                  "metadata": {"name": "p", "resourceVersion": "7"}}
    assert _with_resource_version(dumps(meta_first), "7", "8") == dumps(
        {**meta_first, "metadata": {"name": "p", "resourceVersion": "8"}}
    )
    # another version there: not found
    assert _with_resource_version(dumps(meta_first), "6", "8") is None
    # spec before metadata holding the same key: not certain
    spec_first = {"kind": "X", "apiVersion": "v1", "spec": {"resourceVersion": "7"},
                  "metadata": {"name": "p", "resourceVersion": "7"}}
    assert _with_resource_version(dumps(spec_first), "7", "8") is None
    # a nested object opens in metadata before the field: not certain
    nested = {"kind": "Pod", "apiVersion": "v1",
              "metadata": {"labels": {"resourceVersion": "7"}, "resourceVersion": "7"}}
    assert _with_resource_version(dumps(nested), "7", "8") is None
    # no kind first: not certain
    assert _with_resource_version(dumps({"metadata": {"resourceVersion": "7"}}), "7", "8") is None


names = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(name=names, kind=names, extra=st.dictionaries(names, names, max_size=3),
       old=st.integers(1, 10**12), new=st.integers(1, 10**12))
def test_a_swap_is_exactly_what_serialising_gives(
    name: str, kind: str, extra: dict[str, str], old: int, new: int
) -> None:
    obj = {"kind": kind, "apiVersion": "v1",
           "metadata": {"name": name, **extra, "resourceVersion": str(old)}}
    swapped = _with_resource_version(dumps(obj), str(old), str(new))
    if swapped is not None:  # when it answers, it is the truth
        expected = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(new)}}
        assert swapped == dumps(expected)


def test_an_event_without_a_like_serialises_its_object() -> None:
    event = WatchEvent("ADDED", pod("r"))
    assert event.object_json() == orjson.dumps(pod("r"))
