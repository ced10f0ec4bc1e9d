"""The spawner's local copy of the API server's field rules agrees with the simulator's
(which follows the real server's, message for message), field by field.

The spawner cannot import the simulator (another distribution), so it carries its own
small validator (``async_kubespawner.objects.api_rules``). For random pods built from
the fields the spawner sets, both must refuse the same fields: the local check neither
misses a 422 the server would give nor refuses a pod the server would take.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubesim.validation import validate_object

from async_kubespawner.objects.api_rules import pod_errors, pvc_errors


def mostly(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
    """Valid values most of the time, so that whole pods are often valid too and a
    false refusal would show."""
    return st.sampled_from(valid * 40 + invalid)


NAMES = mostly(["home", "data", "x-1"], ["Bad_Name", "", "a" * 64, "x.y"])
PORTS = mostly([None, 8888, 1, 65535], [0, 65536, -1])
PORT_NAMES = mostly(
    [None, "http", "notebook-port"], ["a-very-long-port-name", "8080", "a--b", "UP"]
)
QUANTITIES = mostly(["1", "500m", "2Gi", 0.5, 2, "1e3", "0"], ["0.0001", "-1", "lots"])
ENV_NAMES = mostly(["A", "JUPYTERHUB_API_TOKEN", "with space"], ["A=B", "", "é"])
PULL = mostly([None, "Always", "IfNotPresent", "Never"], ["Sometimes"])
OPERATORS = mostly([None, "Equal", "Exists"], ["Maybe"])
EFFECTS = mostly([None, "", "NoSchedule", "NoExecute", "PreferNoSchedule"], ["Sometimes"])
RESTART = mostly([None, "Always", "OnFailure", "Never"], ["Sometimes"])
IDS = mostly([None, 0, 1000], [-1, 2**31])
AFFINITY_OPERATORS = mostly(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"], ["Bogus"])


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    volumes = [{"name": draw(NAMES), "emptyDir": {}} for _ in range(draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        volumes.append(
            {
                "name": "claim",
                "persistentVolumeClaim": {"claimName": draw(mostly(["c"], [""]))},
            }
        )

    def container(name: str) -> dict[str, Any]:
        port: dict[str, Any] = {}
        number = draw(PORTS)
        if number is not None:
            port["containerPort"] = number
        port_name = draw(PORT_NAMES)
        if port_name is not None:
            port["name"] = port_name
        resources: dict[str, Any] = {}
        for section in ("requests", "limits"):
            if draw(st.booleans()):
                resources[section] = {
                    draw(st.sampled_from(["cpu", "memory", "nvidia.com/gpu"])): draw(QUANTITIES)
                }
        c: dict[str, Any] = {
            "name": name,
            "image": draw(mostly(["busybox"], ["", " busybox"])),
            "ports": [port],
            "env": [
                {
                    "name": draw(ENV_NAMES),
                    **draw(
                        mostly(
                            [
                                {"value": "v"},
                                {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            ],
                            [{"value": "v", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                        )
                    ),
                }
            ],
            "resources": resources,
            "volumeMounts": [
                {"name": draw(NAMES), "mountPath": draw(mostly(["/a", "/b"], ["/a", ""]))}
                for _ in range(draw(st.integers(0, 2)))
            ],
            "securityContext": {"runAsUser": draw(IDS)} if draw(st.booleans()) else {},
        }
        policy = draw(PULL)
        if policy is not None:
            c["imagePullPolicy"] = policy
        return {k: v for k, v in c.items() if v not in ({}, [{}])}

    toleration: dict[str, Any] = {}
    for key, strategy in (
        ("key", mostly(["gpu"], ["", "bad key"])),
        ("operator", OPERATORS),
        ("effect", EFFECTS),
    ):
        value = draw(strategy)
        if value is not None:
            toleration[key] = value
    if draw(st.integers(0, 5)) == 0:
        toleration["value"] = "v"
    if draw(st.integers(0, 5)) == 0:
        toleration["tolerationSeconds"] = 5
    spec: dict[str, Any] = {
        "containers": [container("notebook")]
        + [
            container(draw(mostly(["side"], ["notebook", "Side"])))
            for _ in range(draw(st.integers(0, 1)))
        ],
        "volumes": volumes,
        "tolerations": [toleration],
        "nodeSelector": {
            draw(mostly(["pool"], ["bad key"])): draw(mostly(["users"], ["not a label"]))
        },
    }
    if draw(st.booleans()):
        requirement = {
            "key": draw(mostly(["pool"], ["bad key"])),
            "operator": draw(AFFINITY_OPERATORS),
        }
        values = draw(mostly([["a"], None], [["1", "2"]]))
        if values is not None:
            requirement["values"] = values
        term = {"matchExpressions": [requirement]}
        node: dict[str, Any]
        if draw(st.booleans()):
            node = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        else:
            weight = draw(mostly([1, 100], [0, 101]))
            node = {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": weight, "preference": term}
                ]
            }
        spec["affinity"] = {"nodeAffinity": node}
    restart = draw(RESTART)
    if restart is not None:
        spec["restartPolicy"] = restart
    if draw(st.booleans()):
        spec["serviceAccountName"] = draw(mostly(["notebooks"], ["Bad_Account"]))
    if draw(st.booleans()):
        spec["securityContext"] = {"fsGroup": draw(IDS), "supplementalGroups": [draw(IDS)]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": draw(mostly(["jupyter-alice"], ["Jupyter_Alice", "a" * 254])),
            "labels": {draw(mostly(["app"], ["bad key"])): draw(mostly(["x"], ["not a label"]))},
        },
        "spec": _drop_none(spec),
    }


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _fields(causes: list[dict[str, str]]) -> set[str]:
    return {c["field"] for c in causes}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods())
def test_pod_rules_agree_with_the_api_server(pod: dict[str, Any]) -> None:
    ours = {e.field for e in pod_errors(copy.deepcopy(pod))}
    server = _fields(validate_object("Pod", copy.deepcopy(pod)))
    if "" in server:
        # A quantity the server cannot even decode: the whole body is refused (400)
        # before field validation; the local check names the quantity.
        assert any("resources" in field for field in ours), (ours, pod)
        return
    assert ours == server, (ours ^ server, pod)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["ReadWriteOnce", "ReadWriteMany", "ReadSometimes"]), max_size=2),
    st.sampled_from(["10Gi", "0", "-1Gi", "lots", None]),
    st.sampled_from(["claim-alice", "Claim_Alice"]),
)
def test_pvc_rules_agree_with_the_api_server(
    modes: list[str], storage: str | None, name: str
) -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": modes,
            "resources": {"requests": {"storage": storage} if storage is not None else {}},
        },
    }
    ours = {e.field for e in pvc_errors(copy.deepcopy(pvc))}
    server = _fields(validate_object("PersistentVolumeClaim", copy.deepcopy(pvc)))
    if "" in server:  # undecodable quantity: refused whole
        assert "spec.resources[storage]" in ours
        return
    assert ours == server, (ours ^ server, pvc)
