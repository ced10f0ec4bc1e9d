"""The decoder-stage type check (pure)."""

from __future__ import annotations

import pytest

from async_kubespawner.sim.decoding import decode
from async_kubespawner.sim.errors import StatusError


def pod(**spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


def test_a_well_typed_object_is_returned_as_is():
    obj = pod(nodeSelector={"disk": "ssd"})
    assert decode("Pod", "", "v1", obj) is obj


def test_nulls_are_dropped_but_times_keep_null():
    obj = pod(nodeName=None)
    obj["metadata"]["annotations"] = None
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                                     "reason": None}]}
    out = decode("Pod", "", "v1", obj)
    assert "nodeName" not in out["spec"] and "annotations" not in out["metadata"]
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True", "lastProbeTime": None}]
    assert out["metadata"]["labels"] == {"a": "b"}


@pytest.mark.parametrize(("spec", "where", "go_type"), [
    ({"containers": [{"name": 1}]}, "Pod.spec.containers.name", "string"),
    ({"terminationGracePeriodSeconds": 1.5}, "Pod.spec.terminationGracePeriodSeconds", "int64"),
    ({"hostNetwork": "yes"}, "Pod.spec.hostNetwork", "bool"),
    ({"priority": True}, "Pod.spec.priority", "int32"),
    ({"nodeSelector": {"a": 1}}, "Pod.spec.nodeSelector", "string"),
    ({"volumes": {}}, "Pod.spec.volumes", "[]v1.Volume"),
])
def test_type_mismatches_name_the_field_and_go_type(spec, where, go_type):
    with pytest.raises(StatusError) as info:
        decode("Pod", "", "v1", {"metadata": {"name": "p"}, "spec": spec})
    assert info.value.code == 400
    message = info.value.status["message"]
    assert f"Go struct field {where} of type {go_type}" in message, message


def test_unknown_kinds_check_metadata_only():
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"anything": [1, "two"]}}
    assert decode("Widget", "example.com", "v1", obj) is obj
    with pytest.raises(StatusError):
        decode("Widget", "example.com", "v1", {"metadata": {"finalizers": "x"}})
