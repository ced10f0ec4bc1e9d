"""The pure pod builder, with plain asserts on plain dataclasses."""

from __future__ import annotations

import kubernetes_asyncio.client as k8s
import pytest

from async_kubespawner.objects.manifests import (
    ManifestError,
    PodSettings,
    build_env,
    build_pod_manifest,
    order_env,
    ordered_items,
    to_dict,
    to_model,
)


def pod(**overrides) -> dict:
    return to_dict(build_pod_manifest(PodSettings(name="jupyter-a", image="img:1", **overrides)))


def test_fixed_layout() -> None:
    p = pod()
    assert p["apiVersion"] == "v1" and p["kind"] == "Pod"
    assert p["metadata"]["name"] == "jupyter-a"
    spec = p["spec"]
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["volumes"] == []
    [container] = spec["containers"]
    assert container["name"] == "notebook"
    assert container["ports"] == [{"name": "notebook-port", "containerPort": 8888}]
    assert container["image"] == "img:1"
    assert "args" not in container  # the image's own command
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}


@pytest.mark.parametrize(
    ("service_account", "automount", "expected_automount", "expected_sa"),
    [
        (None, None, False, None),  # no account named: no token for user code
        ("nb", None, None, "nb"),  # account named: Kubernetes' default (mounted)
        (None, True, True, None),
        ("nb", False, False, "nb"),
    ],
)
def test_automount_rules(service_account, automount, expected_automount, expected_sa) -> None:
    spec = pod(service_account=service_account, automount_service_account_token=automount)["spec"]
    assert spec.get("automountServiceAccountToken") == expected_automount
    assert spec.get("serviceAccountName") == expected_sa


def test_env_is_ordered_so_references_resolve() -> None:
    env = {
        "URL": "$(HOST):$(PORT)",
        "PORT": "80",
        "HOST": "$(NAME).svc",
        "NAME": "x",
        "LIT": "$$(URL)",
    }
    # upstream's order: rounds of "all references placed", alphabetical in a round
    # (like upstream, "$$(URL)" also counts as a reference to URL)
    assert order_env(env) == ["NAME", "PORT", "HOST", "URL", "LIT"]
    assert order_env({"B": "2", "A": "1"}) == ["A", "B"]  # no references: alphabetical
    assert order_env({"A": "$(A)"}) == ["A"]  # a self-reference is ignored
    # what can never be satisfied comes last, alphabetically
    assert order_env({"Z": "$(NOPE)", "B": "$(A)", "A": "$(B)", "C": "1"}) == ["C", "A", "B", "Z"]
    # valueFrom entries reference nothing
    assert order_env({"B": {"valueFrom": {"fieldRef": {"fieldPath": "x"}}}, "A": "$(B)"}) == [
        "B",
        "A",
    ]


def test_env_values() -> None:
    env = build_env(
        {"A": "1", "N": 5, "S": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}}
    )
    assert [to_dict(e) for e in env] == [
        {"name": "A", "value": "1"},
        {"name": "N", "value": "5"},
        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]


def test_resources() -> None:
    c = pod(
        cpu_limit=2.0,
        cpu_guarantee=0.5,
        mem_limit=2**30,
        mem_guarantee=2**29,
        extra_resource_limits={"nvidia.com/gpu": "1"},
        extra_resource_guarantees={"ephemeral-storage": "1Gi"},
    )["spec"]["containers"][0]
    assert c["resources"] == {
        "limits": {"cpu": 2.0, "memory": 2**30, "nvidia.com/gpu": "1"},
        "requests": {"cpu": 0.5, "memory": 2**29, "ephemeral-storage": "1Gi"},
    }


def test_security_contexts_merge_in_order() -> None:
    p = pod(
        uid=1000,
        gid=100,
        privileged=True,
        allow_privilege_escalation=None,
        container_security_context={"runAsUser": 2000, "readOnlyRootFilesystem": True},
        fs_gid=100,
        supplemental_gids=[5],
        pod_security_context={"supplementalGroups": [6]},
    )
    c = p["spec"]["containers"][0]
    assert c["securityContext"] == {
        "runAsUser": 2000,
        "runAsGroup": 100,
        "privileged": True,
        "readOnlyRootFilesystem": True,
    }
    assert p["spec"]["securityContext"] == {"fsGroup": 100, "supplementalGroups": [6]}


def test_restricted_profile_covers_every_container() -> None:
    p = pod(
        security_profile="restricted",
        uid=1000,
        extra_containers=[{"name": "side", "image": "b"}],
        init_containers=[{"name": "init", "image": "b", "securityContext": {"runAsUser": 5}}],
    )
    restricted = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    notebook, side = p["spec"]["containers"]
    assert notebook["securityContext"] == {"runAsUser": 1000, **restricted}
    assert side["securityContext"] == restricted
    assert p["spec"]["initContainers"][0]["securityContext"] == {"runAsUser": 5, **restricted}
    assert p["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_extra_container_and_pod_config_accept_both_spellings() -> None:
    p = pod(
        extra_container_config={"imagePullPolicy": "Always", "termination_message_path": "/t"},
        extra_pod_config={
            "dnsPolicy": "None",
            "host_aliases": [{"ip": "1.2.3.4", "hostnames": ["h"]}],
            "restartPolicy": "Never",
        },
    )
    c = p["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "Always" and c["terminationMessagePath"] == "/t"
    assert p["spec"]["dnsPolicy"] == "None"
    assert p["spec"]["hostAliases"] == [{"ip": "1.2.3.4", "hostnames": ["h"]}]
    assert p["spec"]["restartPolicy"] == "Never"  # extra_pod_config has the last word


def test_unknown_field_in_a_fragment_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"volumes\[0\].*unknown field 'emptydir'"):
        pod(volumes=[{"name": "v", "emptydir": {}}])
    with pytest.raises(ManifestError, match=r"extra_container_config.*'imagee'"):
        pod(extra_container_config={"imagee": "x"})


def test_scheduling() -> None:
    spec = pod(
        node_selector={"pool": "u"},
        tolerations=[{"key": "k", "operator": "Exists"}],
        node_affinity_required=[
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}
        ],
        node_affinity_preferred=[
            {"weight": 1, "preference": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}
        ],
        pod_affinity_required=[
            {"topologyKey": "zone", "labelSelector": {"matchLabels": {"x": "y"}}}
        ],
        pod_affinity_preferred=[{"weight": 2, "podAffinityTerm": {"topologyKey": "zone"}}],
        pod_anti_affinity_required=[{"topologyKey": "host"}],
        pod_anti_affinity_preferred=[{"weight": 3, "podAffinityTerm": {"topologyKey": "host"}}],
        priority_class_name="user",
        scheduler_name="custom",
    )["spec"]
    assert spec["nodeSelector"] == {"pool": "u"}
    assert spec["tolerations"] == [{"key": "k", "operator": "Exists"}]
    affinity = spec["affinity"]
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}
        ]
    }
    assert (
        affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"]
        == 1
    )
    assert (
        affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"]
        == "zone"
    )
    assert (
        affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 2
    )
    assert affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [
        {"topologyKey": "host"}
    ]
    assert (
        affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"]
        == 3
    )
    assert spec["priorityClassName"] == "user" and spec["schedulerName"] == "custom"
    assert "affinity" not in pod()["spec"]


def test_internal_ssl_volume() -> None:
    p = pod(ssl_secret_name="jupyter-a", ssl_secret_mount_path="/certs/")
    assert p["spec"]["volumes"] == [
        {
            "name": "jupyterhub-internal-certs",
            "secret": {"secretName": "jupyter-a", "defaultMode": 511},
        }
    ]
    assert p["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "jupyterhub-internal-certs", "mountPath": "/certs/"}
    ]
    env = {e["name"]: e["value"] for e in p["spec"]["containers"][0]["env"]}
    assert env == {
        "JUPYTERHUB_SSL_KEYFILE": "/certs/ssl.key",
        "JUPYTERHUB_SSL_CERTFILE": "/certs/ssl.crt",
        "JUPYTERHUB_SSL_CLIENT_CA": "/certs/notebooks-ca_trust.crt",
    }


def test_ordered_items_and_to_model() -> None:
    assert ordered_items({"b": 2, "a": 1}) == [1, 2]
    assert ordered_items([3, 1]) == [3, 1]
    assert ordered_items(None) == []
    mount = to_model(k8s.V1VolumeMount, {"name": "h", "mount_path": "/h", "readOnly": True})
    assert (mount.name, mount.mount_path, mount.read_only) == ("h", "/h", True)
