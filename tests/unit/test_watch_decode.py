"""Watch lines decoded into only the kept keys leave the caches exactly as a full parse did.

The pod and Event reflectors parse each watch line with a typed decoder that skips every
key their trim drops (kube/watch_decode.py). What must not change: the bytes each cache
keeps, the resourceVersion the reflector resumes from, and what a line that is not an
object change (ERROR, a Status, an odd shape) makes the reflector do. Each test replays
the same lines through the old path (``orjson.loads``, then ``Reflector.apply``) and the
new one (the sink's ``decode_event``, then ``apply``) and compares everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_generic, trim_pod
from async_kubespawner.kube.entry import KNOWN_KEYS
from async_kubespawner.kube.pod_list import (
    decode_created_uid,
    decode_event_list,
    decode_event_watch_line,
    decode_pod_watch_line,
)
from async_kubespawner.objects.identity import IDENTITY_ANNOTATION, ServerIdentity

from .watch_replay import assert_same, replay

SAMPLES = Path(__file__).parents[1] / "sim" / "samples"  # recorded from kube-apiserver 1.36

def pods() -> ObjectCache:
    return ObjectCache(trim_pod)


def line(kind: str, obj: Any) -> bytes:
    return orjson.dumps({"type": kind, "object": obj})


def lifecycle(obj: dict[str, Any]) -> list[bytes]:
    """ADDED, MODIFIED (being deleted) and DELETED lines of one object."""
    deleting = json.loads(json.dumps(obj))
    deleting.setdefault("metadata", {})["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return [line("ADDED", obj), line("MODIFIED", deleting), line("DELETED", deleting)]


def _sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return loaded


# -- recorded API server responses ---------------------------------------------------


def recorded_pods() -> list[dict[str, Any]]:
    return [
        entry["response"]["body"]
        for key, entry in _sample("pod-defaulted.json").items()
        if isinstance(entry, dict) and "response" in entry
    ]


def recorded_watch_lines() -> list[bytes]:
    sample = _sample("watch-events.json")
    lines = [line(k, sample[k]["object"]) for k in ("ADDED", "MODIFIED", "DELETED")]
    lines += [orjson.dumps(e) for e in sample["pod_delete_sequence"]["events"]]
    lines.append(orjson.dumps(sample["BOOKMARK_initial_events_end"]["event"]))
    lines.append(orjson.dumps(sample["BOOKMARK_periodic"]["event"]))
    return lines


def test_recorded_pods_are_cached_exactly_as_before() -> None:
    lines = [ln for pod in recorded_pods() for ln in lifecycle(pod)]
    assert len(lines) == 9
    old, new = replay(lines[:1], pods)
    assert new == old and len(new[1][0]) == 1  # the first pod is held, the same bytes
    assert_same(lines, pods)
    assert_same(lines[:-1], pods)  # and with the last pod still there


def test_recorded_watch_lines_and_bookmarks_keep_the_same_resource_versions() -> None:
    lines = recorded_watch_lines()
    old, new = replay(lines, pods)
    assert new == old
    assert new[1][1] == "<rv>"  # the bookmark's resourceVersion is resumed from


@pytest.mark.parametrize("code", [410, 500, 403, None])
def test_error_events_raise_what_they_raised(code: int | None) -> None:
    """ERROR carries a Status: 410 relists, any other code is the error it names. Its
    object never reaches the typed decoder's result."""
    status = _sample("watch-events.json")["ERROR_expired"]["event"]["object"]
    status = {**status, "code": code}
    for obj in (status, {k: v for k, v in status.items() if k != "status"}):
        error_line = line("ERROR", obj)
        assert decode_pod_watch_line(error_line) == orjson.loads(error_line)
        old, new = replay([error_line], pods)
        assert new == old
        if code == 410:
            assert new[0] == ["410"]
        else:
            assert isinstance(new[0][0], tuple)  # the ApiError of that code
            assert "too old resource version" in new[0][0][2]


def test_a_pod_line_is_parsed_into_the_kept_keys_only() -> None:
    full = recorded_pods()[2]
    decoded = decode_pod_watch_line(line("MODIFIED", full))
    text = json.dumps(decoded)
    for dropped in ("managedFields", "env", "tolerations", "volumes", "dnsPolicy"):
        assert dropped in json.dumps(full)
        assert dropped not in text
    assert decoded["object"]["metadata"]["uid"] == full["metadata"]["uid"]


def every_kept_field() -> dict[str, Any]:
    """A pod in which every key ``trim_pod`` reads holds a value it keeps."""
    terminated = {"exitCode": 2, "signal": 9, "reason": "Error", "message": "boom",
                  "startedAt": "t", "containerID": "c"}
    statuses = [{"name": "notebook", "ready": True, "restartCount": 4, "image": "i",
                 "state": {"terminated": terminated}, "lastState": {"waiting": {
                     "reason": "CrashLoopBackOff", "message": "back-off"}}}]
    return {
        "kind": "Pod",
        "metadata": {
            "name": "jupyter-a", "namespace": "jhub", "uid": "u-1", "resourceVersion": "42",
            "deletionTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"component": "singleuser-server", "release": "r"},
            "annotations": {"hub.jupyter.org/username": "a",
                            IDENTITY_ANNOTATION: ServerIdentity("h", "a", "").annotation()},
        },
        "spec": {"nodeName": "node-1", "containers": [
            {"name": "notebook", "ports": [{"name": "notebook-port", "containerPort": 8888}]}
        ]},
        "status": {
            "phase": "Failed", "podIP": "10.0.0.1", "reason": "Evicted", "message": "memory",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes"},
                {"type": "Ready", "status": "Unknown", "reason": "R", "message": "M"},
            ],
            "containerStatuses": statuses,
            "initContainerStatuses": [{**statuses[0], "name": "init"}],
        },
    }


def test_every_field_the_trim_keeps_survives_the_typed_decoder() -> None:
    """Deterministic: each key the trim reads is in the decoder's shape (a key missing
    from it would silently drop a value from the cache)."""
    pod = every_kept_field()
    decoded = decode_pod_watch_line(line("ADDED", pod))
    assert trim_pod(decoded["object"]) == trim_pod(pod)
    kept = json.dumps(trim_pod(pod))
    for value in ("node-1", "8888", "10.0.0.1", "Evicted", "memory", "Unschedulable",
                  "0/3 nodes", '"M"', "boom", "CrashLoopBackOff", '"signal": 9',
                  '"restartCount": 4', '"init"', "2026-01-01", "singleuser-server", '"u-1"'):
        assert value in kept
    assert_same(lifecycle(pod), pods)


# -- odd shapes: parsed whole, handled as before ----------------------------------------


def _misfits() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    return [
        ("labels-list", lambda p: p["metadata"].__setitem__("labels", ["not", "a", "map"])),
        ("statuses-str", lambda p: p["status"].__setitem__("containerStatuses", "oops")),
        ("container-none", lambda p: p["spec"].__setitem__("containers", [None])),
        ("state-list", lambda p: p["status"]["containerStatuses"][0].__setitem__("state", [1])),
        ("spec-str", lambda p: p.__setitem__("spec", "x")),
        ("conditions-map", lambda p: p["status"].__setitem__("conditions", {"a": 1})),
    ]


@pytest.mark.parametrize("name, misfit", _misfits(), ids=[n for n, _ in _misfits()])
def test_a_line_that_does_not_fit_the_shape_is_parsed_whole(
    name: str, misfit: Callable[[dict[str, Any]], None]
) -> None:
    pod = json.loads(json.dumps(recorded_pods()[2]))
    pod["status"]["containerStatuses"] = [{"name": "notebook", "state": {"running": {}}}]
    misfit(pod)
    raw = line("MODIFIED", pod)
    assert decode_pod_watch_line(raw) == orjson.loads(raw)
    assert_same([line("ADDED", recorded_pods()[0]), raw], pods)


@pytest.mark.parametrize(
    "raw",
    [
        b'["ADDED", {}]',
        b'{"type": "ADDED", "object": "a pod"}',
        b'{"type": "ADDED"}',
        b'{"type": "ADDED", "object": null}',
        b'{"type": 7, "object": {"metadata": {"resourceVersion": "9"}}}',
        b'{"type": "SOMETHING-NEW", "object": {"metadata": {"resourceVersion": "9"}}}',
        b'{"type": "ADDED", "object": {"metadata": null, "spec": null, "status": null}}',
        b'{"type": "ADDED", "object": {"metadata": {"name": "p"}}} trailing',
    ],
)
def test_odd_lines_end_as_they_did(raw: bytes) -> None:
    """Whatever a full parse made of a line (an error the supervisor retries, or an odd
    entry), the typed decoder makes the same of it: it never raises where orjson did not."""
    old, new = replay([raw], pods)
    assert new == old
    old_events, new_events = replay([raw], lambda: EventIndex())
    assert new_events == old_events


def test_broken_json_is_the_same_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        decode_pod_watch_line(b'{"type": "ADDED", "object": {')
    with pytest.raises(orjson.JSONDecodeError):
        decode_event_watch_line(b"nope")


def test_caches_without_a_typed_decoder_parse_lines_whole() -> None:
    raw = line("ADDED", recorded_pods()[0])
    assert ObjectCache(trim_generic).decode_event(raw) == orjson.loads(raw)
    assert "managedFields" not in json.dumps(ObjectCache(trim_pod).decode_event(raw))


# -- generated pods ------------------------------------------------------------------

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
owners = st.builds(
    lambda user, server: ServerIdentity("jhub", user, server).annotation(), text, text
) | text
label_maps = st.dictionaries(
    st.sampled_from(KNOWN_KEYS) | st.sampled_from(["hub.jupyter.org/x", "componentx"]) | text,
    text | st.none() | st.integers(0, 9),
    max_size=5,
)
annotation_maps = st.builds(
    lambda extra, owner, last: {
        **extra,
        IDENTITY_ANNOTATION: owner,
        "kubectl.kubernetes.io/last-applied-configuration": last,
    },
    label_maps,
    owners,
    text,
)
maybe_text = text | st.none() | st.just("")


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of ``fields``, or all of them (so that every key, and
    every pair of keys the trim reads together, shows up often)."""
    return st.fixed_dictionaries(fields) | st.fixed_dictionaries({}, optional=fields)


metadata = _optional(
    name=maybe_text,
    namespace=maybe_text,
    uid=maybe_text,
    resourceVersion=st.integers(1, 10**6).map(str) | st.none(),
    deletionTimestamp=maybe_text,
    labels=label_maps | st.none(),
    annotations=annotation_maps | st.none(),
    managedFields=junk,
    creationTimestamp=text,
    ownerReferences=junk,
)
ports = _optional(name=maybe_text, containerPort=st.integers(0, 65535) | st.none(), protocol=text)
containers = _optional(
    name=maybe_text, ports=st.lists(ports, max_size=2) | st.none(), env=junk, image=text
)
spec = _optional(
    containers=st.lists(containers, max_size=3) | st.none(),
    nodeName=maybe_text,
    volumes=junk,
    tolerations=junk,
)
conditions = _optional(
    type=st.sampled_from(["PodScheduled", "Ready", "Initialized", "ContainersReady", ""]),
    status=st.sampled_from(["True", "False", "Unknown", None]),
    reason=maybe_text,
    message=maybe_text,
    lastTransitionTime=text,
)
state_detail = _optional(
    reason=maybe_text,
    message=maybe_text,
    exitCode=st.integers(-1, 255),
    signal=st.integers(0, 64) | st.none(),
    startedAt=text,
    containerID=text,
) | st.none()
states = st.dictionaries(
    st.sampled_from(["waiting", "running", "terminated"]) | text, state_detail, max_size=2
) | st.none()
container_statuses = _optional(
    name=maybe_text,
    ready=st.booleans() | st.none(),
    restartCount=st.integers(0, 99) | st.none(),
    state=states,
    lastState=states,
    image=text,
    imageID=text,
    started=st.booleans(),
)
status = _optional(
    phase=st.sampled_from(["Pending", "Running", "Succeeded", "Failed"]) | maybe_text,
    podIP=maybe_text,
    reason=maybe_text,
    message=maybe_text,
    hostIP=text,
    conditions=st.lists(conditions, max_size=4) | st.none(),
    containerStatuses=st.lists(container_statuses, max_size=2) | st.none(),
    initContainerStatuses=st.lists(container_statuses, max_size=1) | st.none(),
    qosClass=text,
)
api_pods = _optional(
    kind=st.just("Pod"), apiVersion=st.just("v1"), metadata=metadata | st.none(), spec=spec,
    status=status,
)
event_types = st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK"])
#: Now and then a kept key holds a value of another type (or the whole object is junk):
#: the typed decoder refuses the line and the full parse decides, as before.
_KEPT_PATHS = [
    ("metadata",), ("metadata", "labels"), ("metadata", "annotations"), ("spec",),
    ("spec", "containers"), ("status",), ("status", "conditions"),
    ("status", "containerStatuses"),
]


@st.composite
def pod_lines(draw: st.DrawFn) -> bytes:
    pod = draw(api_pods)
    if draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from(_KEPT_PATHS))
        parent = pod
        for key in path[:-1]:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        parent[path[-1]] = draw(junk)
    return line(draw(event_types), pod)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pod_lines(), min_size=1, max_size=6))
def test_generated_pod_events_leave_the_same_cache(lines: list[bytes]) -> None:
    assert_same(lines, pods)


# -- Kubernetes Events (progress) -----------------------------------------------------

involved = _optional(
    kind=st.sampled_from(["Pod", "PersistentVolumeClaim", "Node"]) | text,
    name=maybe_text,
    namespace=maybe_text,
    uid=maybe_text,
    apiVersion=text,
    resourceVersion=text,
)
kube_events = _optional(
    kind=st.just("Event"),
    metadata=_optional(
        name=maybe_text,
        namespace=maybe_text,
        uid=st.sampled_from(["e1", "e2", "e3"]) | maybe_text,
        resourceVersion=st.integers(1, 99).map(str) | st.none(),
        creationTimestamp=maybe_text,
        managedFields=junk,
    ),
    involvedObject=involved | st.none(),
    reason=maybe_text,
    message=maybe_text,
    type=st.sampled_from(["Normal", "Warning"]) | maybe_text,
    count=st.integers(0, 9) | st.none(),
    firstTimestamp=maybe_text,
    lastTimestamp=maybe_text,
    eventTime=maybe_text,
    source=junk,
    reportingComponent=text,
    series=junk,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(event_types, kube_events), min_size=1, max_size=8))
def test_generated_kubernetes_events_leave_the_same_index(
    changes: list[tuple[str, dict[str, Any]]],
) -> None:
    lines = [line(kind, event) for kind, event in changes]
    assert_same(lines, lambda: EventIndex(per_object_limit=2, total_limit=4))


def test_an_event_line_is_parsed_into_the_kept_keys_only() -> None:
    event = {
        "kind": "Event",
        "metadata": {"name": "e", "namespace": "n", "uid": "u", "resourceVersion": "5",
                     "managedFields": [{"manager": "kubelet"}]},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "n", "uid": "pu",
                           "fieldPath": "spec.containers{notebook}"},
        "reason": "Pulled", "message": "ok", "source": {"component": "kubelet"},
    }
    decoded = decode_event_watch_line(line("ADDED", event))
    assert "managedFields" not in json.dumps(decoded)
    assert "fieldPath" not in json.dumps(decoded)
    assert_same([line("ADDED", event)], EventIndex)


def test_every_field_of_an_event_the_trim_keeps_survives_the_typed_decoder() -> None:
    event = {
        "metadata": {"name": "e", "namespace": "n", "uid": "u", "resourceVersion": "5",
                     "creationTimestamp": "t0"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "n2", "uid": "pu"},
        "reason": "Failed", "message": "m", "type": "Warning", "count": 3,
        "firstTimestamp": "t1", "lastTimestamp": "t2", "eventTime": "t3",
    }
    decoded = decode_event_watch_line(line("ADDED", event))
    assert decoded["object"] == event
    assert_same([line("ADDED", event), line("MODIFIED", event), line("DELETED", event)],
                EventIndex)


def test_an_event_list_page_keeps_what_the_trim_reads() -> None:
    items = [
        {"metadata": {"name": f"e{i}", "uid": f"u{i}", "resourceVersion": str(i),
                      "managedFields": [{"m": 1}]},
         "involvedObject": {"kind": "Pod", "name": "p", "namespace": "n", "uid": "pu"},
         "reason": "Started", "source": {"host": "node-1"}}
        for i in range(3)
    ]
    raw = orjson.dumps({"kind": "EventList", "metadata": {"resourceVersion": "9",
                                                        "continue": "c"}, "items": items})
    page = decode_event_list(raw)
    full = orjson.loads(raw)
    assert page["metadata"] == full["metadata"]
    index = EventIndex()
    assert [index.trim(e) for e in page["items"]] == [index.trim(e) for e in full["items"]]
    assert "managedFields" not in json.dumps(page)
    misfit = orjson.dumps({"items": [{"metadata": ["x"]}]})
    assert decode_event_list(misfit) == orjson.loads(misfit)


# -- the create response ----------------------------------------------------------------


def test_a_create_response_is_read_for_its_uid_only() -> None:
    for pod in recorded_pods():
        raw = orjson.dumps(pod)
        assert decode_created_uid(raw) == {"metadata": {"uid": pod["metadata"]["uid"]}}
    odd = orjson.dumps({"metadata": ["not", "metadata"]})
    assert decode_created_uid(odd) == orjson.loads(odd)
