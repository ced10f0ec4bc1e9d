"""Fit predicates and the FailedScheduling message (pure, no store)."""

from decimal import Decimal

import pytest
from kubesim.cluster.fit import (
    UNBOUND_PVC_MESSAGE,
    filter_node,
    fit_error_message,
    matches_node_affinity,
    pod_requests,
)
from kubesim.cluster.nodes import NodeConfigError, NodePoolSpec, Taint, build_nodes


def make_pod(cpu="100m", memory="128Mi", **spec):
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "x",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}},
                }
            ],
            **spec,
        },
    }


def node(**pool):
    return build_nodes([NodePoolSpec(count=1, **pool)])[0]


def test_pod_requests_sum_containers_max_init_and_limits_default_requests():
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
            "overhead": {"memory": "10Mi"},
        }
    }
    req = pod_requests(pod)
    assert req["cpu"] == Decimal(2)  # init container's 2 > 1.5
    assert req["memory"] == Decimal(2**30 + 10 * 2**20)


def test_bad_quantity_names_the_container():
    with pytest.raises(ValueError, match="container 'main' resources\\[cpu\\]"):
        pod_requests(make_pod(cpu="lots"))


def test_insufficient_cpu_and_memory_both_reported_for_one_node():
    n = node(cpu="1", memory="1Gi")
    rej = filter_node(
        make_pod(cpu="2", memory="2Gi"), pod_requests(make_pod(cpu="2", memory="2Gi")), n, {}, 0
    )
    assert rej is not None and rej.resolvable
    assert rej.reasons == ["Insufficient cpu", "Insufficient memory"]


def test_used_capacity_counts():
    n = node(cpu="1")
    pod = make_pod(cpu="600m")
    assert filter_node(pod, pod_requests(pod), n, {}, 0) is None
    rej = filter_node(pod, pod_requests(pod), n, {"cpu": Decimal("0.5")}, 1)
    assert rej is not None and rej.reasons == ["Insufficient cpu"]


def test_too_many_pods():
    n = node(pods=2)
    pod = make_pod()
    assert filter_node(pod, pod_requests(pod), n, {}, 2).reasons == ["Too many pods"]


def test_extended_resource_gpu():
    gpu_node = node(extended={"nvidia.com/gpu": "1"})
    plain = node(name_prefix="plain")
    pod = make_pod()
    pod["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "1"}
    assert filter_node(pod, pod_requests(pod), gpu_node, {}, 0) is None
    assert filter_node(pod, pod_requests(pod), plain, {}, 0).reasons == [
        "Insufficient nvidia.com/gpu"
    ]


def test_taints_and_tolerations():
    tainted = node(taints=[Taint.parse("hub.jupyter.org/dedicated=user:NoSchedule")])
    pod = make_pod()
    rej = filter_node(pod, pod_requests(pod), tainted, {}, 0)
    assert rej.reasons == ["node(s) had untolerated taint {hub.jupyter.org/dedicated: user}"]
    assert not rej.resolvable
    for tol in (
        {
            "key": "hub.jupyter.org/dedicated",
            "operator": "Equal",
            "value": "user",
            "effect": "NoSchedule",
        },
        {"key": "hub.jupyter.org/dedicated", "operator": "Exists"},
        {"operator": "Exists"},
    ):
        ok = make_pod(tolerations=[tol])
        assert filter_node(ok, pod_requests(ok), tainted, {}, 0) is None, tol
    wrong = make_pod(tolerations=[{"key": "hub.jupyter.org/dedicated", "value": "other"}])
    assert filter_node(wrong, pod_requests(wrong), tainted, {}, 0) is not None
    soft = node(taints=[Taint.parse("soft:PreferNoSchedule")])
    assert filter_node(pod, pod_requests(pod), soft, {}, 0) is None


def test_taint_parse_errors_are_specific():
    with pytest.raises(NodeConfigError, match="key=value:Effect"):
        Taint.parse("novalue")
    with pytest.raises(NodeConfigError, match="effect 'Sometimes'"):
        Taint.parse("k=v:Sometimes")


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("In", ["a", "b"], True),
        ("In", ["c"], False),
        ("NotIn", ["c"], True),
        ("NotIn", ["a"], False),
        ("Exists", None, True),
        ("DoesNotExist", None, False),
        ("Gt", ["3"], True),
        ("Gt", ["4"], False),
        ("Lt", ["5"], True),
        ("Lt", ["4"], False),
    ],
)
def test_required_node_affinity_operators(operator, values, expected):
    n = node(labels={"tier": "a", "cores": "4"})
    key = "cores" if operator in ("Gt", "Lt") else "tier"
    expr = {"key": key, "operator": operator, **({"values": values} if values else {})}
    pod = make_pod(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [expr]}]
                }
            }
        }
    )
    assert matches_node_affinity(pod, n) is expected


def test_node_selector_and_empty_affinity_term():
    n = node(labels={"disk": "ssd"})
    assert matches_node_affinity(make_pod(nodeSelector={"disk": "ssd"}), n)
    assert not matches_node_affinity(make_pod(nodeSelector={"disk": "hdd"}), n)
    empty = make_pod(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}
            }
        }
    )
    assert not matches_node_affinity(empty, n)
    by_name = make_pod(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [n.name]}
                            ]
                        }
                    ]
                }
            }
        }
    )
    assert matches_node_affinity(by_name, n)


def test_fit_error_message_insufficient_cpu_everywhere():
    nodes = build_nodes([NodePoolSpec(count=3, cpu="1")])
    pod = make_pod(cpu="2")
    rejections = {n.name: filter_node(pod, pod_requests(pod), n, {}, 0) for n in nodes}
    assert fit_error_message(3, rejections) == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )


def test_fit_error_message_mixed_reasons_sorted():
    nodes = build_nodes(
        [
            NodePoolSpec(count=2, cpu="1", name_prefix="small"),
            NodePoolSpec(count=1, name_prefix="gpu", taints=[Taint.parse("gpu=true:NoSchedule")]),
        ]
    )
    pod = make_pod(cpu="2")
    rejections = {n.name: filter_node(pod, pod_requests(pod), n, {}, 0) for n in nodes}
    assert fit_error_message(3, rejections) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )


def test_fit_error_message_unbound_pvc_and_no_nodes():
    assert fit_error_message(1, {}, UNBOUND_PVC_MESSAGE) == (
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    assert fit_error_message(0, {}) == "no nodes available to schedule pods"


def test_build_nodes_names_ips_and_duplicates():
    nodes = build_nodes([NodePoolSpec(count=2), NodePoolSpec(count=1, name_prefix="big")])
    assert [n.name for n in nodes] == ["sim-node-0", "sim-node-1", "big"]
    assert len({n.internal_ip for n in nodes}) == 3
    api = nodes[0].to_api("2026-01-01T00:00:00Z")
    assert api["status"]["allocatable"]["cpu"] == "4"
    assert {c["type"]: c["status"] for c in api["status"]["conditions"]}["Ready"] == "True"
    with pytest.raises(NodeConfigError, match="different name_prefix"):
        build_nodes(
            [NodePoolSpec(count=1, name_prefix="a"), NodePoolSpec(count=1, name_prefix="a")]
        )
    with pytest.raises(NodeConfigError, match="cpu"):
        build_nodes([NodePoolSpec(cpu="many")])
