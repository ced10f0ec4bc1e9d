"""Label and field selectors: the real server's grammar, matching rules and 400 wording."""

from __future__ import annotations

import pytest
from kubesim.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {
    "app": "jupyterhub",
    "component": "singleuser-server",
    "hub.jupyter.org/username": "alice",
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("   ", True),
        ("app=jupyterhub", True),
        ("app==jupyterhub", True),
        ("app=other", False),
        ("app!=other", True),
        ("app!=jupyterhub", False),
        ("missing!=x", True),  # != matches objects without the label
        ("component in (singleuser-server, hub)", True),
        ("component in (hub)", False),
        ("component notin (hub)", True),
        ("missing notin (hub)", True),
        ("missing in (hub)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=jupyterhub,component=singleuser-server", True),
        ("app=jupyterhub, component=hub", False),
        ("hub.jupyter.org/username=alice", True),
        ("app in (in, notin)", False),  # keywords are plain words in value position
    ],
)
def test_label_selector_matching(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is expected


def test_label_selector_empty_value_and_none_labels() -> None:
    assert parse_label_selector("app=").matches({"app": ""})
    assert not parse_label_selector("app=").matches({})
    assert parse_label_selector("!app").matches(None)
    assert parse_label_selector("").empty
    assert not parse_label_selector("a").empty


def test_label_selector_gt_lt() -> None:
    assert parse_label_selector("n>3").matches({"n": "4"})
    assert not parse_label_selector("n<3").matches({"n": "4"})
    assert not parse_label_selector("n>3").matches({})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a in", "unable to parse requirement: found '' expected: '('"),
        ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt, exists, !",
        ),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        (
            "k<x",
            'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
    ],
)
def test_label_selector_syntax_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(selector)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_label_selector_invalid_key_and_value_wording() -> None:
    with pytest.raises(
        SelectorError,
        match=r'^unable to parse requirement: <nil>: Invalid value: "a/b/c": '
        r"a qualified name must consist of alphanumeric characters",
    ):
        parse_label_selector("a/b/c=d")
    with pytest.raises(SelectorError) as info:
        parse_label_selector("k=" + "v" * 64)
    assert str(info.value) == (
        f'unable to parse requirement: values[0][k]: Invalid value: "{"v" * 64}": '
        "must be no more than 63 bytes"
    )
    with pytest.raises(SelectorError) as info:
        parse_label_selector("k=-bad")
    assert (
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
        "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')" in str(info.value)
    )


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "jupyter-alice", "namespace": "hub"},
    "spec": {
        "nodeName": "node-1",
        "restartPolicy": "OnFailure",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
    },
    "status": {"phase": "Running", "podIP": "10.0.0.5"},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("metadata.name=jupyter-alice", True),
        ("metadata.name==jupyter-alice", True),
        ("metadata.name!=jupyter-alice", False),
        ("metadata.namespace=hub,status.phase=Running", True),
        ("status.phase=Pending", False),
        ("status.phase!=Succeeded,status.phase!=Failed", True),
        ("spec.nodeName=node-1", True),
        ("spec.nodeName=", False),
        ("spec.restartPolicy=OnFailure", True),
        ("spec.schedulerName=default-scheduler", True),
        ("spec.serviceAccountName=default", True),
        ("status.podIP=10.0.0.5", True),
        ("status.nominatedNodeName=", True),  # absent fields read as ""
    ],
)
def test_pod_field_selector(selector: str, expected: bool) -> None:
    assert parse_field_selector(selector, "Pod").matches(POD) is expected


def test_unbound_pod_matches_empty_node_name() -> None:
    assert parse_field_selector("spec.nodeName=", "Pod").matches({"metadata": {"name": "p"}})


def test_event_field_selectors_core_and_events_k8s_io() -> None:
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1", "namespace": "hub"},
        "involvedObject": {
            "kind": "Pod",
            "name": "jupyter-alice",
            "namespace": "hub",
            "uid": "u1",
            "apiVersion": "v1",
            "resourceVersion": "7",
            "fieldPath": "spec.containers{n}",
        },
        "reason": "Scheduled",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "reportingComponent": "default-scheduler",
    }
    sel = parse_field_selector(
        "involvedObject.kind=Pod,involvedObject.name=jupyter-alice,involvedObject.namespace=hub,"
        "involvedObject.uid=u1,involvedObject.apiVersion=v1,involvedObject.resourceVersion=7,"
        "involvedObject.fieldPath=spec.containers{n},reason=Scheduled,type=Normal,"
        "source=default-scheduler,reportingComponent=default-scheduler",
        "Event",
    )
    assert sel.matches(core)
    assert not parse_field_selector("type=Warning", "Event").matches(core)
    new = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e2"},
        "regarding": {"kind": "Pod", "name": "jupyter-alice"},
        "reason": "Pulled",
        "type": "Normal",
        "reportingController": "kubelet",
        "deprecatedSource": {"component": "kubelet"},
    }
    assert parse_field_selector("involvedObject.name=jupyter-alice,reason=Pulled", "Event").matches(
        new
    )
    assert parse_field_selector("regarding.kind=Pod,reportingController=kubelet", "Event").matches(
        new
    )
    assert parse_field_selector("source=kubelet", "Event").matches(new)


def test_other_kinds_field_selectors() -> None:
    assert parse_field_selector("type=kubernetes.io/tls", "Secret").matches(
        {"type": "kubernetes.io/tls"}
    )
    assert parse_field_selector("status.phase=Terminating", "Namespace").matches(
        {"status": {"phase": "Terminating"}}
    )
    assert parse_field_selector("spec.unschedulable=false", "Node").matches({"spec": {}})
    assert parse_field_selector("spec.unschedulable=true", "Node").matches(
        {"spec": {"unschedulable": True}}
    )
    assert parse_field_selector("metadata.name=x", "ConfigMap").matches({"metadata": {"name": "x"}})


@pytest.mark.parametrize(
    ("selector", "kind", "message"),
    [
        ("status.phse=Running", "Pod", "field label not supported: status.phse"),
        (
            "status.phase=Active",
            "ConfigMap",
            '"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        ("metadata.namespace=x", "Node", "field label not supported: metadata.namespace"),
        ("metadata.namespace=x", "Namespace", "field label not supported: metadata.namespace"),
        ("spec.nodeName=x", "Service", "field label not supported: spec.nodeName"),
        ("type=Opaque", "Pod", "field label not supported: type"),
        ("a", "Pod", "invalid selector: 'a'; can't understand 'a'"),
        ("metadata.name=a=b", "Pod", "invalid field selector: unescaped character in value: 61"),
        ("metadata.name=a\\x", "Pod", "invalid field selector: invalid escape sequence: \\x"),
    ],
)
def test_field_selector_errors(selector: str, kind: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(selector, kind)
    assert str(info.value) == message


def test_service_and_legacy_pod_fields() -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}}
    assert parse_field_selector("spec.clusterIP=None,spec.type=ClusterIP", "Service").matches(svc)
    assert parse_field_selector("spec.host=node-1", "Pod").matches(POD)
    pod = {"status": {"podIPs": [{"ip": "10.0.0.5"}]}}
    assert parse_field_selector("status.podIPs=10.0.0.5", "Pod").matches(pod)


def test_field_selector_escapes_and_empty_terms() -> None:
    sel = parse_field_selector("metadata.name=a\\,b,", "Pod")
    assert sel.matches({"metadata": {"name": "a,b"}})
    assert not sel.matches({"metadata": {"name": "a"}})
