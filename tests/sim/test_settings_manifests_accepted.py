"""The objects the settings build are accepted by the API server (the simulator
validates like the real one): no 422 halfway through a spawn for any setting."""

from __future__ import annotations

import base64

import kubernetes_asyncio.client as k8s
import pytest

from async_kubespawner.traits import SpawnerConfigError
from tests.unit.spawner_fakes import make_spawner

# Many settings at once, each producing a field the server validates.
BUSY_CONFIG = {
    "image": "registry.example/lab:1.0",
    "image_pull_policy": "IfNotPresent",
    "image_pull_secrets": ["regcred"],
    "cmd": ["jupyterhub-singleuser"],
    "args": ["--debug"],
    "working_dir": "/home/{username}",
    "node_selector": {"pool": "users"},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "node_affinity_required": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["users"]}]}
    ],
    "pod_anti_affinity_preferred": [
        {
            "weight": 10,
            "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"component": "singleuser-server"}},
            },
        }
    ],
    "lifecycle_hooks": {"postStart": {"exec": {"command": ["sh", "-c", "true"]}}},
    "init_containers": [{"name": "setup", "image": "busybox:1", "command": ["true"]}],
    "extra_containers": [{"name": "sidecar", "image": "busybox:1", "args": ["sleep", "infinity"]}],
    "extra_container_config": {"stdin": True},
    "extra_pod_config": {"terminationGracePeriodSeconds": 5},
    "uid": 1000,
    "gid": 100,
    "fs_gid": 100,
    "supplemental_gids": [5],
    "cpu_limit": 2.0,
    "cpu_guarantee": 0.5,
    "mem_limit": "2G",
    "mem_guarantee": "1G",
    "extra_resource_limits": {"nvidia.com/gpu": "1"},
    "extra_resource_guarantees": {"nvidia.com/gpu": "1"},
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/{username}"}],
    "extra_labels": {"user": "{safe_username}"},
    "extra_annotations": {"who": "{unescaped_username}"},
    "environment": {"A": "$(B)/x", "B": "/data"},
    "storage_capacity": "1Gi",
    "storage_class": "standard",
    "security_profile": "restricted",
    "api_token_in_secret": True,
}


@pytest.mark.parametrize("scheme", ["safe", "escape"])
@pytest.mark.parametrize(
    ("user", "server"), [("alice", ""), ("Alice@Example.org", "GPU Lab"), ("9" * 70, "s" * 70)]
)
async def test_objects_are_accepted(api_client, user: str, server: str, scheme: str) -> None:
    spawner = make_spawner(user, server, config={**BUSY_CONFIG, "slug_scheme": scheme})
    core = k8s.CoreV1Api(api_client)
    ns = spawner.namespace
    await core.create_namespaced_persistent_volume_claim(ns, spawner.get_pvc_manifest())
    created = await core.create_namespaced_pod(ns, await spawner.prepare_pod())
    assert created.metadata.name == spawner.pod_name
    assert created.spec.containers[0].name == "notebook"
    env = {e.name: e for e in created.spec.containers[0].env}
    assert env["JUPYTERHUB_API_TOKEN"].value is None
    assert env["JUPYTERHUB_API_TOKEN"].value_from.secret_key_ref.name == spawner.secret_name
    names = [e.name for e in created.spec.containers[0].env]
    assert names.index("B") < names.index("A")
    owner = k8s.V1OwnerReference(
        api_version="v1",
        kind="Pod",
        name=created.metadata.name,
        uid=created.metadata.uid,
        block_owner_deletion=True,
    )
    secret = await core.create_namespaced_secret(ns, spawner.get_secret_manifest(owner))
    assert base64.b64decode(secret.data["jupyterhub-api-token"]) == b"secret-token-value"
    if len(spawner.pod_name) <= 63:
        service = await core.create_namespaced_service(ns, spawner.get_service_manifest(owner))
        assert service.spec.ports[0].target_port == 8888
    else:  # only the escape scheme makes such names; refused before the API sees them
        assert scheme == "escape"
        with pytest.raises(SpawnerConfigError, match="not a valid Service name"):
            spawner.get_service_manifest(owner)


async def test_user_namespace_is_accepted(api_client) -> None:
    spawner = make_spawner(
        "Bob.Smith",
        config={"enable_user_namespaces": True, "user_namespace_labels": {"owner": "{username}"}},
    )
    created = await k8s.CoreV1Api(api_client).create_namespace(spawner.get_namespace_manifest())
    assert created.metadata.name == spawner.namespace
    assert created.metadata.labels["owner"] == spawner.namespace.removeprefix("user-")
