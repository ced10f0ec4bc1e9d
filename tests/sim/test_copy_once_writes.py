"""Writes copy only what they change: the stored object is never modified in place and the
written object equals what a full deep copy gives.

The store shares untouched parts of the previous version with the new one instead of
deep-copying every object on every write; these pin that sharing to the copying
behaviour for the writes that take the shortcut (status merge patches, schema defaults
of custom resources).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.store import Store

GROUP = "example.com"


def _crd() -> dict[str, Any]:
    """A CRD whose status (and spec) schemas have nested defaults."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gizmos.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "default": {}, "properties": {
                            "size": {"type": "integer", "default": 1},
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "extra": {"type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True},
                        }},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string", "default": "Pending"},
                            "ready": {"type": "boolean"},
                            "counts": {"type": "object", "default": {}, "properties": {
                                "seen": {"type": "integer", "default": 0},
                                "lost": {"type": "integer"},
                            }},
                            "notes": {"type": "array", "items": {
                                "type": "object", "properties": {
                                    "text": {"type": "string"},
                                    "level": {"type": "string", "default": "info"},
                                }}},
                        }},
                    },
                }},
            }],
        },
    }


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store()
    await s.create(s.resource("customresourcedefinitions", "apiextensions.k8s.io"), None, _crd())
    yield s
    await s.close()


async def test_custom_resource_status_patch_defaults_a_private_copy(store: Store) -> None:
    gizmos = store.registry.lookup("gizmos", GROUP)
    await store.create(gizmos, "default", {"metadata": {"name": "g"}, "spec": {"tags": ["a"]}})
    await store.patch(gizmos, "default", "g", {"status": {"ready": False}}, "merge",
                      subresource="status", manager="m")
    before = store.get_ref(gizmos, "default", "g")
    snapshot = copy.deepcopy(before)
    patch = {"status": {"ready": True, "notes": [{"text": "x"}], "counts": {"lost": 2}}}
    patch_snapshot = copy.deepcopy(patch)
    after = await store.patch(gizmos, "default", "g", patch, "merge", subresource="status",
                              manager="m")
    assert before == snapshot  # the previous version (history, watchers) is untouched
    assert patch == patch_snapshot
    assert after["status"] == {
        "phase": "Pending", "ready": True,
        "counts": {"seen": 0, "lost": 2},
        "notes": [{"text": "x", "level": "info"}],
    }
    assert after["spec"] == snapshot["spec"]
    assert after["status"]["notes"] is not patch["status"]["notes"]
    assert int(after["metadata"]["resourceVersion"]) > int(snapshot["metadata"]["resourceVersion"])


async def test_default_added_to_the_schema_later_lands_in_the_new_version_only(
    store: Store,
) -> None:
    """Stored versions predate the new default: the write fills it into its own copy."""
    gizmos = store.registry.lookup("gizmos", GROUP)
    crds = store.resource("customresourcedefinitions", "apiextensions.k8s.io")
    await store.create(gizmos, "default", {"metadata": {"name": "g"}})
    await store.patch(gizmos, "default", "g", {"status": {"counts": {"lost": 1}}}, "merge",
                      subresource="status")
    crd = store.get(crds, None, f"gizmos.{GROUP}")
    status_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    status_schema["properties"]["counts"]["properties"]["total"] = {"type": "integer", "default": 9}
    await store.replace(crds, None, f"gizmos.{GROUP}", crd)
    before = store.get_ref(gizmos, "default", "g")
    snapshot = copy.deepcopy(before)
    after = await store.patch(gizmos, "default", "g", {"status": {"ready": True}}, "merge",
                              subresource="status")
    assert before == snapshot
    assert "total" not in before["status"]["counts"]
    assert after["status"]["counts"] == {"seen": 0, "lost": 1, "total": 9}


async def test_status_patch_that_changes_nothing_is_a_no_op(store: Store) -> None:
    gizmos = store.registry.lookup("gizmos", GROUP)
    await store.create(gizmos, "default", {"metadata": {"name": "g"}})
    first = await store.patch(gizmos, "default", "g", {"status": {"ready": True}}, "merge",
                              subresource="status")
    again = await store.patch(gizmos, "default", "g", {"status": {"phase": "Pending"}}, "merge",
                              subresource="status")
    assert again is first  # defaults already there: no new resourceVersion, no event


STATUS_VALUES = st.fixed_dictionaries({}, optional={
    "phase": st.sampled_from(["Pending", "Running"]) | st.none(),
    "ready": st.booleans() | st.none(),
    "counts": st.none() | st.fixed_dictionaries({}, optional={
        "seen": st.integers(0, 5) | st.none(), "lost": st.integers(0, 5) | st.none()}),
    "notes": st.none() | st.lists(st.fixed_dictionaries(
        {"text": st.sampled_from(["a", "b"])}, optional={"level": st.sampled_from(["warn"])}),
        max_size=2),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(STATUS_VALUES, min_size=1, max_size=4))
def test_status_patches_never_touch_earlier_versions(patches: list[dict[str, Any]]) -> None:
    asyncio.run(_patch_in_turn(patches))


async def _patch_in_turn(patches: list[dict[str, Any]]) -> None:
    store = Store()
    try:
        await store.create(store.resource("customresourcedefinitions", "apiextensions.k8s.io"), None, _crd())
        gizmos = store.registry.lookup("gizmos", GROUP)
        await store.create(gizmos, "default", {"metadata": {"name": "g"}})
        versions: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for n, body in enumerate(patches):
            spec = {"extra": {"n": n, "deep": {"list": [n, {"k": n}]}}, "tags": [str(n)]}
            obj = await store.patch(gizmos, "default", "g", {"spec": spec}, "merge", manager="s")
            versions.append((obj, copy.deepcopy(obj)))
            assert obj["spec"]["extra"] == spec["extra"]
            obj = await store.patch(gizmos, "default", "g", {"status": body}, "merge",
                                    subresource="status", manager="m")
            versions.append((obj, copy.deepcopy(obj)))
            status = obj["status"]
            for key in ("phase", "ready"):
                if body.get(key) is not None:
                    assert status[key] == body[key]
            assert status["phase"] in ("Pending", "Running")  # defaulted when deleted
            assert isinstance(status["counts"]["seen"], int)
            for note in status.get("notes") or []:
                assert note["level"] in ("info", "warn")
        for obj, snapshot in versions:
            assert obj == snapshot
    finally:
        await store.close()


def test_prune_sharing_gives_the_copying_result() -> None:
    from kubesim.structural_schema import prune_unknown

    schema = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj: dict[str, Any] = {
        "apiVersion": "v", "kind": "Gizmo",
        "metadata": {"name": "g", "labels": {"a": "b"}, "managedFields": [{"f": {"x": {}}}]},
        "spec": {"size": 2, "bogus": 1, "extra": {"free": [1, {"form": True}]}},
        "status": {"phase": "Running", "unknown": {"x": 1}}, "top": 3,
    }
    snapshot = copy.deepcopy(obj)
    copied = prune_unknown(schema, obj)
    shared = prune_unknown(schema, obj, share=True)
    assert shared == copied
    assert obj == snapshot
    assert shared["metadata"] is obj["metadata"]
    assert copied["metadata"] is not obj["metadata"]
    assert shared["spec"]["extra"]["free"] is obj["spec"]["extra"]["free"]
    assert shared["spec"] is not obj["spec"]  # pruned containers are always new
