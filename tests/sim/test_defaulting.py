"""Defaulting reproduces the recorded responses of a real API server field for field."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from kubesim.defaulting import SERVICE_ACCOUNT_MOUNT_PATH, default_object

SAMPLES = Path(__file__).parent / "samples"  # recorded from a real kube-apiserver 1.36

KINDS = {
    "pod-defaulted.json": "Pod",
    "service-defaulted.json": "Service",
    "secret-defaulted.json": "Secret",
    "pvc-defaulted.json": "PersistentVolumeClaim",
}


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for file_name, kind in KINDS.items():
        for name, entry in json.loads((SAMPLES / file_name).read_text()).items():
            if isinstance(entry, dict) and "request" in entry:
                cases.append((file_name, name, kind))
    return cases


def _normalise(value: Any) -> Any:
    """Replace what the server makes up (token volume suffix, IPs, times) by the samples' placeholders."""
    text = json.dumps(value)
    text = re.sub(
        r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", "kube-api-access-<gen>", text
    )
    text = re.sub(r'"\d+\.\d+\.\d+\.\d+"', '"<ip>"', text)
    text = re.sub(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', '"<time>"', text)
    return json.loads(text)


def _allocate() -> str:
    return "10.96.12.34"


@pytest.mark.parametrize(("file_name", "case", "kind"), _cases())
def test_defaulting_matches_recorded_response(file_name: str, case: str, kind: str) -> None:
    entry = json.loads((SAMPLES / file_name).read_text())[case]
    obj = copy.deepcopy(entry["request"]["body"])
    default_object(kind, obj, allocate_cluster_ip=_allocate)
    expected = entry["response"]["body"]
    got = _normalise(obj)
    # metadata identity (uid, resourceVersion, timestamps, managedFields) belongs to the store
    for key in set(expected) | set(got):
        if key == "metadata":
            continue
        assert got.get(key) == expected.get(key), f"{case}: {key} differs"
    for key in ("finalizers", "labels", "annotations"):
        assert got["metadata"].get(key) == expected["metadata"].get(key), f"{case}: metadata.{key}"


def _pod(**spec: Any) -> dict:
    base = {"containers": [{"name": "main", "image": "registry.example/nb:1.0"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": base}


def test_token_volume_is_appended_and_mounted_in_every_container() -> None:
    pod = _pod(
        initContainers=[{"name": "init", "image": "i:1"}],
        volumes=[{"name": "home", "emptyDir": {}}],
        containers=[
            {"name": "a", "image": "a:1"},
            {
                "name": "b",
                "image": "b:1",
                "volumeMounts": [{"name": "own", "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}],
            },
        ],
    )
    default_object("Pod", pod, allocate_cluster_ip=_allocate)
    spec = pod["spec"]
    token = spec["volumes"][-1]["name"]
    assert spec["volumes"][0]["name"] == "home"
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", token)
    assert spec["initContainers"][0]["volumeMounts"][-1]["name"] == token
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": token, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}
    ]
    # a container that mounts something there already keeps its own mount only
    assert spec["containers"][1]["volumeMounts"] == [
        {"name": "own", "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}
    ]


def test_no_token_volume_when_automount_is_false() -> None:
    pod = _pod(automountServiceAccountToken=False)
    default_object("Pod", pod, allocate_cluster_ip=_allocate)
    assert "volumes" not in pod["spec"]
    assert "volumeMounts" not in pod["spec"]["containers"][0]


def test_image_pull_policy_and_probes_and_limits_as_requests() -> None:
    pod = _pod(
        containers=[
            {"name": "a", "image": "nb"},
            {"name": "b", "image": "nb:latest"},
            {"name": "c", "image": "registry:5000/nb"},
            {"name": "d", "image": "nb@sha256:abc"},
            {
                "name": "e",
                "image": "nb:2",
                "imagePullPolicy": "Never",
                "readinessProbe": {"httpGet": {"port": 8888}},
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            },
        ]
    )
    default_object("Pod", pod, allocate_cluster_ip=_allocate)
    policies = [c["imagePullPolicy"] for c in pod["spec"]["containers"]]
    assert policies == ["Always", "Always", "Always", "IfNotPresent", "Never"]
    probe = pod["spec"]["containers"][4]["readinessProbe"]
    assert probe == {
        "httpGet": {"port": 8888, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert pod["spec"]["containers"][4]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "1"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
        (
            [
                {
                    "limits": {"cpu": "1", "memory": "1Gi"},
                    "requests": {"cpu": "1000m", "memory": "1Gi"},
                }
            ],
            "Guaranteed",
        ),
    ],
)
def test_qos_class(resources: list[dict], qos: str) -> None:
    pod = _pod(
        containers=[
            {"name": f"c{i}", "image": "x:1", "resources": r} for i, r in enumerate(resources)
        ]
    )
    default_object("Pod", pod, allocate_cluster_ip=_allocate)
    assert pod["status"]["qosClass"] == qos


def test_existing_tolerations_are_kept_and_not_duplicated() -> None:
    mine = {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 5,
    }
    pod = _pod(tolerations=[mine])
    default_object("Pod", pod, allocate_cluster_ip=_allocate)
    assert pod["spec"]["tolerations"] == [
        mine,
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]


def test_service_allocation_only_when_needed() -> None:
    calls: list[int] = []

    def allocate() -> str:
        calls.append(1)
        return "10.96.0.7"

    svc = {"spec": {"ports": [{"port": 80}]}}
    default_object("Service", svc, allocate_cluster_ip=allocate)
    assert svc["spec"]["clusterIP"] == "10.96.0.7"
    assert svc["spec"]["clusterIPs"] == ["10.96.0.7"]
    external = {"spec": {"type": "ExternalName", "externalName": "example.com"}}
    default_object("Service", external, allocate_cluster_ip=allocate)
    assert "clusterIP" not in external["spec"]
    fixed = {"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80}]}}
    default_object("Service", fixed, allocate_cluster_ip=allocate)
    assert fixed["spec"]["clusterIPs"] == ["10.96.0.9"]
    assert len(calls) == 1
    node_port: dict[str, Any] = {"spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    default_object("Service", node_port, allocate_cluster_ip=allocate)
    assert 30000 <= node_port["spec"]["ports"][0]["nodePort"] <= 32767
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"


def test_secret_string_data_wins_over_data() -> None:
    secret = {"data": {"k": "b2xk"}, "stringData": {"k": "new"}}
    default_object("Secret", secret, allocate_cluster_ip=_allocate)
    assert secret == {"data": {"k": "bmV3"}, "type": "Opaque"}


def test_namespace_defaults() -> None:
    ns = {"metadata": {"name": "hub"}}
    default_object("Namespace", ns, allocate_cluster_ip=_allocate)
    assert ns == {
        "metadata": {"name": "hub", "labels": {"kubernetes.io/metadata.name": "hub"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def test_unknown_kinds_are_left_alone() -> None:
    cm = {"metadata": {"name": "c"}, "data": {"a": "b"}}
    default_object("ConfigMap", cm, allocate_cluster_ip=_allocate)
    assert cm == {"metadata": {"name": "c"}, "data": {"a": "b"}}


def test_updates_get_type_defaults_but_not_admission_defaults() -> None:
    pvc = {"metadata": {"name": "c", "uid": "u1", "finalizers": []}, "spec": {}}
    default_object("PersistentVolumeClaim", pvc, allocate_cluster_ip=_allocate)
    assert pvc["metadata"]["finalizers"] == []  # a controller removed it; it stays removed
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    old_pod = _pod()
    default_object("Pod", old_pod, allocate_cluster_ip=_allocate)
    new_pod = _pod(containers=[{"name": "main", "image": "registry.example/nb:2.0"}])
    default_object("Pod", new_pod, allocate_cluster_ip=_allocate, old=old_pod)
    assert "volumes" not in new_pod["spec"]
    assert "tolerations" not in new_pod["spec"]
    assert new_pod["spec"]["containers"][0]["terminationMessagePolicy"] == "File"
    secret = {"metadata": {"name": "s", "uid": "u2"}, "stringData": {"a": "b"}}
    default_object("Secret", secret, allocate_cluster_ip=_allocate)
    assert secret["data"] == {"a": "Yg=="}  # stringData is folded on update too
    created = {"metadata": {"name": "c2"}, "spec": {}}
    default_object("PersistentVolumeClaim", created, allocate_cluster_ip=_allocate)
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]


def test_create_discards_client_status() -> None:
    pod = _pod()
    pod["status"] = {"phase": "Running", "podIP": "1.2.3.4"}
    default_object("Pod", pod, allocate_cluster_ip=_allocate)
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    pvc = {"metadata": {"name": "c"}, "spec": {}, "status": {"phase": "Bound"}}
    default_object("PersistentVolumeClaim", pvc, allocate_cluster_ip=_allocate)
    assert pvc["status"] == {"phase": "Pending"}
    svc = {
        "spec": {"ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}},
    }
    default_object("Service", svc, allocate_cluster_ip=_allocate)
    assert svc["status"] == {"loadBalancer": {}}


def test_core_event_defaults() -> None:
    event = {"apiVersion": "v1", "metadata": {"name": "e"}, "reason": "Started"}
    default_object("Event", event, allocate_cluster_ip=_allocate)
    assert event == {
        "apiVersion": "v1",
        "metadata": {"name": "e"},
        "reason": "Started",
        "involvedObject": {},
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    }


def test_nested_small_type_defaults_everywhere() -> None:
    pod = _pod(
        containers=[
            {
                "name": "main",
                "image": "nb:1",
                "env": [
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {
                        "name": "MEM",
                        "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}},
                    },
                ],
                "lifecycle": {"preStop": {"httpGet": {"port": 8888}}},
                "livenessProbe": {"httpGet": {"port": 8888, "path": "/api"}},
            }
        ],
        volumes=[
            {
                "name": "info",
                "projected": {
                    "sources": [
                        {
                            "downwardAPI": {
                                "items": [
                                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
                                ]
                            }
                        }
                    ]
                },
            },
        ],
    )
    default_object("Pod", pod, allocate_cluster_ip=_allocate)
    container = pod["spec"]["containers"][0]
    assert container["env"][0]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.namespace",
        "apiVersion": "v1",
    }
    assert container["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"
    assert container["lifecycle"]["preStop"]["httpGet"] == {
        "port": 8888,
        "path": "/",
        "scheme": "HTTP",
    }
    assert container["livenessProbe"]["httpGet"] == {"port": 8888, "path": "/api", "scheme": "HTTP"}
    assert container["livenessProbe"]["periodSeconds"] == 10
    projected = pod["spec"]["volumes"][0]["projected"]
    assert projected["defaultMode"] == 420
    assert projected["sources"][0]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"


def test_service_update_keeps_allocated_ip_and_node_ports() -> None:
    old: dict[str, Any] = {
        "metadata": {"name": "s", "uid": "u"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }
    default_object("Service", old, allocate_cluster_ip=lambda: "10.96.0.5")
    new: dict[str, Any] = {
        "metadata": {"name": "s", "uid": "u"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }

    def must_not_allocate() -> str:
        raise AssertionError("an update must not allocate a new cluster IP")

    default_object("Service", new, allocate_cluster_ip=must_not_allocate, old=old)
    assert new["spec"]["clusterIP"] == "10.96.0.5"
    assert new["spec"]["clusterIPs"] == ["10.96.0.5"]
    assert new["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
