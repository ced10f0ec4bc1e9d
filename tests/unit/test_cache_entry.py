"""The pod cache's entry format is lossless, and its list-page parser keeps what the trim reads.

Every reader of the cache (poll, stop, start's waits, progress, the orphan sweep, the
``get_pod_url`` / ``is_pod_running`` hooks, the operator) must get exactly the trimmed dict
it got when entries were plain JSON: above all the owner annotation, whose string the
ownership checks parse. These tests hold the format to that, for hostile inputs too.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from async_kubespawner.kube.cache import ObjectCache, trim_generic, trim_pod
from async_kubespawner.kube.entry import (
    KNOWN_KEYS,
    canonical_identity,
    entry_version,
    pack_entry,
    unpack_entry,
)
from async_kubespawner.kube.pod_list import decode_pod_list
from async_kubespawner.objects.identity import (
    IDENTITY_ANNOTATION,
    Scope,
    ServerIdentity,
    pod_ownership,
    read_owner,
)

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
plain_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
scopes = st.sampled_from([s.value for s in Scope])


def _owner_values() -> st.SearchStrategy[Any]:
    """Owner annotations as a hub, an upstream hub, an attacker or a careless admin
    might write them: canonical, canonical with odd characters, reordered, spaced,
    ``"v": true``, extra keys, truncated, not JSON, not a string."""
    canonical = st.builds(
        lambda h, u, s, sc: ServerIdentity(h, u, s).annotation(Scope(sc)),
        text | plain_text, text | plain_text, text | plain_text, scopes,
    )
    variants = st.builds(
        lambda h, u, s, sc, how: {
            "reordered": json.dumps({"v": 1, "user": u, "server": s, "scope": sc, "hub": h}),
            "spaced": json.dumps({"hub": h, "scope": sc, "server": s, "user": u, "v": 1},
                                 sort_keys=True),
            "v-true": canonical_identity(h, u, s, sc).replace('"v":1', '"v":true'),
            "unicode": json.dumps({"hub": h, "scope": sc, "server": s, "user": u, "v": 1},
                                  sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            "extra": json.dumps({"hub": h, "scope": sc, "server": s, "user": u, "v": 1,
                                 "x": 1}, sort_keys=True, separators=(",", ":")),
            "truncated": canonical_identity(h, u, s, sc)[:-1],
            "bad-scope": canonical_identity(h, u, s, "server").replace('"server",', '"nope",', 1),
        }[how],
        text, text, text, scopes,
        st.sampled_from(["reordered", "spaced", "v-true", "unicode", "extra", "truncated",
                         "bad-scope"]),
    )
    return canonical | variants | text | st.none() | st.integers(-(2**63), 2**63 - 1) | st.lists(text, max_size=2)


label_keys = st.sampled_from(KNOWN_KEYS) | text
label_maps = st.dictionaries(label_keys, text | st.none() | st.integers(-(2**63), 2**63 - 1), max_size=6)
annotation_maps = st.builds(
    lambda extra, owner, has_owner: {**extra, IDENTITY_ANNOTATION: owner} if has_owner else extra,
    label_maps, _owner_values(), st.booleans(),
)


@st.composite
def trimmed_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Trimmed-object shapes, including ones no trim function makes (None names, odd
    types): the format must round-trip whatever it is given."""
    meta: dict[str, Any] = {
        "name": draw(text | st.none()),
        "namespace": draw(text | st.just("")),
        "uid": draw(text | st.none()),
        "resourceVersion": draw(st.text(max_size=300) | st.none() | st.just("")),
    }
    if draw(st.booleans()):
        meta["deletionTimestamp"] = draw(text)
    if draw(st.booleans()):
        meta["labels"] = draw(label_maps | st.none() | st.lists(text, max_size=2))
    if draw(st.booleans()):
        meta["annotations"] = draw(annotation_maps | st.none())
    obj: dict[str, Any] = {"kind": "Pod", "metadata": meta}
    if draw(st.booleans()):
        obj["status"] = {"phase": draw(text), "podIP": draw(text)}
    return obj


def _round_trip(trimmed: dict[str, Any]) -> dict[str, Any]:
    meta = trimmed["metadata"]
    key = (meta.get("namespace") or "", meta.get("name") or "")
    rv = meta.get("resourceVersion") or ""
    entry = pack_entry(key, rv, trimmed)
    assert entry_version(entry) == rv
    # a list page's trims are packed in place: the same bytes
    assert pack_entry(key, rv, copy.deepcopy(trimmed), reuse=True) == entry
    return unpack_entry(key, entry)


@settings(max_examples=600, deadline=None)
@given(trimmed_objects())
def test_every_entry_unpacks_to_exactly_the_trimmed_object(trimmed: dict[str, Any]) -> None:
    assert _round_trip(copy.deepcopy(trimmed)) == trimmed


@settings(max_examples=400, deadline=None)
@given(annotation_maps, label_maps, text, text, text)
def test_ownership_verdicts_are_those_of_the_api_objects(
    annotations: dict[str, Any], labels: dict[str, Any], hub: str, user: str, server: str
) -> None:
    """Whatever a pod's labels and annotations say, a cached pod gets the verdict the pod
    as the API returned it gets (for the server named in it and for another)."""
    labels = {**labels, "component": "singleuser-server"}
    pod: dict[str, Any] = {
        "metadata": {"name": "jupyter-x", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                     "labels": labels, "annotations": annotations},
        "status": {"phase": "Running"},
    }
    cache = ObjectCache(trim_pod)
    cache.upsert(copy.deepcopy(pod))
    cached = cache.get(("ns", "jupyter-x"))
    assert cached is not None
    owner = read_owner(pod["metadata"])
    assert read_owner(cached["metadata"]) == owner
    candidates = [ServerIdentity(hub, user, server)]
    if owner is not None and owner.user is not None:
        candidates.append(ServerIdentity(owner.hub or hub, owner.user, owner.server))
    for identity in candidates:
        assert pod_ownership(identity, cached["metadata"], "singleuser-server") is pod_ownership(
            identity, pod["metadata"], "singleuser-server"
        )


@settings(max_examples=300, deadline=None)
@given(text, text, text, scopes)
def test_canonical_identity_is_the_annotation_the_spawner_writes(
    hub: str, user: str, server: str, scope: str
) -> None:
    assert canonical_identity(hub, user, server, scope) == ServerIdentity(
        hub, user, server
    ).annotation(Scope(scope))


def test_a_canonical_owner_is_kept_as_its_fields_and_read_back_exactly() -> None:
    owner = ServerIdentity("jhub/singleuser-server", "alice", "").annotation()
    trimmed = {"kind": "Pod", "metadata": {
        "name": "jupyter-alice", "namespace": "jhub", "uid": "u1", "resourceVersion": "42",
        "annotations": {IDENTITY_ANNOTATION: owner, "hub.jupyter.org/username": "alice"}}}
    entry = pack_entry(("jhub", "jupyter-alice"), "42", trimmed)
    assert IDENTITY_ANNOTATION.encode() not in entry  # a key index, not the 40-byte key
    assert b'["jhub/singleuser-server","alice","","server"]' in entry
    assert b"jupyter-alice" not in entry  # the name is the cache key
    assert unpack_entry(("jhub", "jupyter-alice"), entry) == trimmed


def test_a_forged_owner_spelling_is_kept_verbatim() -> None:
    """An owner annotation that parses to the same owner but is not what the spawner
    writes (another hand) is cached as the exact string, not normalised."""
    forged = '{"hub": "jhub/singleuser-server", "scope": "server", "server": "", "user": "alice", "v": 1}'
    trimmed = {"metadata": {"name": "p", "namespace": "n", "resourceVersion": "1",
                            "annotations": {IDENTITY_ANNOTATION: forged}}}
    entry = pack_entry(("n", "p"), "1", trimmed)
    assert unpack_entry(("n", "p"), entry)["metadata"]["annotations"][IDENTITY_ANNOTATION] == forged


def test_a_long_resource_version_is_kept_whole() -> None:
    rv = "9" * 70_000
    trimmed = {"metadata": {"name": "p", "namespace": "n", "resourceVersion": rv}}
    entry = pack_entry(("n", "p"), rv, trimmed)
    assert entry_version(entry) == rv
    assert unpack_entry(("n", "p"), entry) == trimmed


def test_objects_without_metadata_are_kept_as_plain_json() -> None:
    trimmed: dict[str, Any] = {"kind": "Thing", "metadata": None}
    assert unpack_entry(("", ""), pack_entry(("", ""), "", trimmed)) == trimmed


def test_the_cache_shares_one_namespace_string_between_keys() -> None:
    cache = ObjectCache(trim_generic)
    for i in range(3):
        cache.upsert({"metadata": {"name": f"p{i}", "namespace": "".join(["n", "s"]),
                                   "resourceVersion": str(i)}})
    namespaces = {id(key[0]) for key in cache.keys()}
    assert len(namespaces) == 1
    assert cache.version(("ns", "p2")) == "2"


# -- list pages ------------------------------------------------------------------------


def _api_pod(i: int, **status: Any) -> dict[str, Any]:
    """A pod as the API lists it, with the fields trim_pod drops and those it keeps."""
    container = {"name": "notebook", "image": "quay.io/jupyterhub/singleuser:5",
                 "env": [{"name": "JUPYTERHUB_API_TOKEN", "value": "secret-token"}],
                 "ports": [{"name": "notebook-port", "containerPort": 8888, "protocol": "TCP"}],
                 "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}]}
    return {
        "metadata": {
            "name": f"jupyter-user{i}", "namespace": "jhub", "uid": f"uid-{i}",
            "resourceVersion": str(100 + i), "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"component": "singleuser-server", "release": "jhub",
                       "hub.jupyter.org/username": f"user{i}"},
            "annotations": {
                "hub.jupyter.org/username": f"user{i}",
                "kubectl.kubernetes.io/last-applied-configuration": "x" * 400,
                IDENTITY_ANNOTATION: ServerIdentity("jhub", f"user{i}", "").annotation(),
            },
            "managedFields": [{"manager": "hub", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"nodeName": "node-1", "containers": [container],
                 "volumes": [{"name": "home", "emptyDir": {}}]},
        "status": {"phase": "Running", "podIP": "10.0.0.7", "hostIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "notebook", "ready": True, "restartCount": 0,
                                          "imageID": "sha256:aa",
                                          "state": {"running": {"startedAt": "t"}}}],
                   **status},
    }


def _page(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"kind": "PodList", "apiVersion": "v1",
                         "metadata": {"resourceVersion": "900", "continue": "tok"},
                         "items": items})


def test_a_pod_list_page_parses_to_the_same_trimmed_pods() -> None:
    terminated = {"state": {"terminated": {"exitCode": 3, "reason": "Error", "signal": 9,
                                           "message": "boom", "startedAt": "t"}}}
    pods = [
        _api_pod(0),
        _api_pod(1, phase="Pending", reason="Unschedulable", message="no nodes",
                 conditions=[{"type": "PodScheduled", "status": "False", "reason": "R",
                              "message": "m", "lastTransitionTime": "t"}]),
        _api_pod(2, containerStatuses=[{"name": "notebook", "ready": False, "restartCount": 2,
                                        **terminated, "lastState": terminated["state"]}],
                 initContainerStatuses=[{"name": "init", "ready": None,
                                         "state": {"waiting": None}}]),
    ]
    pods[0]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    pods[1]["spec"]["containers"].append({"name": "sidecar", "ports": None})
    raw = _page(pods)
    fast = decode_pod_list(raw)
    full = orjson.loads(raw)
    assert fast["metadata"] == full["metadata"]
    assert [trim_pod(p) for p in fast["items"]] == [trim_pod(p) for p in full["items"]]
    assert "env" not in json.dumps(fast["items"])  # the parse skipped what the trim drops


@pytest.mark.parametrize(
    "misfit",
    [
        lambda pod: pod["metadata"].__setitem__("labels", ["not", "a", "map"]),
        lambda pod: pod["status"].__setitem__("containerStatuses", "oops"),
        lambda pod: pod["spec"].__setitem__("containers", [None]),
    ],
)
def test_a_page_that_does_not_fit_the_schema_is_parsed_whole(misfit: Any) -> None:
    pod = _api_pod(0)
    misfit(pod)
    raw = _page([pod])
    assert decode_pod_list(raw) == orjson.loads(raw)


def test_the_pod_cache_parses_pages_with_the_pod_schema_only() -> None:
    raw = _page([_api_pod(0)])
    assert "env" not in json.dumps(ObjectCache(trim_pod).decode_page(raw))
    assert "env" in json.dumps(ObjectCache(trim_generic).decode_page(raw))


@pytest.mark.parametrize(
    "raw",
    [
        '{"hub":","scope":"server","server":"","user":"u","v":1}',  # separator in the head
        '{"hub":"a","user":"x","scope":"server","server":"","user":"b","v":1}',
        '{"hub":"a"b","scope":"server","server":"","user":"u","v":1}',
        '{"hub":"a","scope":"server","server":"","user":"","v":1}',
        '{"hub":"a","scope":"server","server":"","user":","v":1}',
        '{"hub":"a","scope":"server","server":"\\u00e9","user":"u","v":1}',
        '{"hub":"a","scope":"server","server":"","user":"u","v":1} ',
    ],
)
def test_owner_strings_near_the_canonical_form_round_trip(raw: str) -> None:
    trimmed = {"metadata": {"name": "p", "namespace": "n", "resourceVersion": "1",
                            "annotations": {IDENTITY_ANNOTATION: raw}}}
    entry = pack_entry(("n", "p"), "1", copy.deepcopy(trimmed))
    assert unpack_entry(("n", "p"), entry) == trimmed
    assert entry_version(entry) == "1"
