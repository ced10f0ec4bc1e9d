"""PVC, Service, Secret and Namespace builders, and the spawner methods around them."""

from __future__ import annotations

import base64
import json

from async_kubespawner.objects.manifests import (
    NamespaceSettings,
    PVCSettings,
    SecretSettings,
    ServiceSettings,
    api_token_env,
    build_namespace_manifest,
    build_pvc_manifest,
    build_secret_manifest,
    build_service_manifest,
    to_dict,
)
from tests.unit.spawner_fakes import make_spawner

OWNER = {
    "apiVersion": "v1",
    "kind": "Pod",
    "name": "jupyter-alice",
    "uid": "1234",
    "blockOwnerDeletion": True,
}


def test_pvc_builder() -> None:
    pvc = to_dict(
        build_pvc_manifest(
            PVCSettings(
                name="claim-a",
                storage="1Gi",
                storage_class="fast",
                selector={"matchLabels": {"a": "b"}},
            )
        )
    )
    assert pvc["kind"] == "PersistentVolumeClaim"
    assert pvc["metadata"]["annotations"] == {"volume.beta.kubernetes.io/storage-class": "fast"}
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "fast",
        "selector": {"matchLabels": {"a": "b"}},
    }
    plain = to_dict(build_pvc_manifest(PVCSettings(name="c")))
    assert "storageClassName" not in plain["spec"]
    assert plain["metadata"]["annotations"] == {}


def test_service_builder() -> None:
    svc = to_dict(
        build_service_manifest(
            ServiceSettings(
                name="jupyter-a", port=8888, selector={"x": "y"}, owner_references=[OWNER]
            )
        )
    )
    assert svc["spec"] == {
        "type": "ClusterIP",
        "selector": {"x": "y"},
        "ports": [{"name": "http", "port": 8888, "targetPort": 8888}],
    }
    assert svc["metadata"]["ownerReferences"] == [OWNER]


def test_secret_builder() -> None:
    secret = to_dict(
        build_secret_manifest(SecretSettings(name="s", files={"ssl.key": "KEY"}, api_token="tok"))
    )
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["ssl.key"]) == b"KEY"
    assert base64.b64decode(secret["data"]["jupyterhub-api-token"]) == b"tok"
    assert api_token_env("s")["JUPYTERHUB_API_TOKEN"] == {
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "jupyterhub-api-token"}}
    }


def test_namespace_builder() -> None:
    ns = to_dict(build_namespace_manifest(NamespaceSettings(name="user-a", labels={"a": "b"})))
    assert ns == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "user-a", "labels": {"a": "b"}, "annotations": {}},
    }


def test_pvc_from_the_spawner() -> None:
    spawner = make_spawner(
        "alice",
        "lab",
        config={
            "storage_capacity": "10Gi",
            "storage_class": "standard",
            "storage_access_modes": ["ReadWriteMany"],
            "storage_selector": {"matchLabels": {"owner": "{username}"}},
            "storage_extra_labels": {"user": "{username}"},
            "storage_extra_annotations": {"note": "{unescaped_servername}"},
            "pvc_name_template": "home-{username}-{servername}",
        },
    )
    pvc = to_dict(spawner.get_pvc_manifest())
    assert pvc["metadata"]["name"] == "home-alice-lab"
    assert pvc["metadata"]["labels"] == {
        "hub.jupyter.org/username": "alice",
        "user": "alice",
        "app.kubernetes.io/name": "jupyterhub",
        "app.kubernetes.io/managed-by": "kubespawner",
        "app": "jupyterhub",
        "heritage": "jupyterhub",
        "component": "singleuser-storage",
        # as upstream: the modern label ties the claim to the user servers
        "app.kubernetes.io/component": "singleuser-server",
    }
    annotations = pvc["metadata"]["annotations"]
    versions = {k: annotations.pop(k) for k in list(annotations) if k.endswith("-version")}
    assert set(versions) == {
        "hub.jupyter.org/kubespawner-version",
        "hub.jupyter.org/jupyterhub-version",
    }
    owner = json.loads(annotations.pop("hub.jupyter.org/async-kubespawner-owner"))
    # per server: the template names the user and the server
    assert owner == {
        "v": 1,
        "hub": "default/singleuser-server",
        "user": "alice",
        "server": "lab",
        "scope": "server",
    }
    assert annotations == {
        "hub.jupyter.org/username": "alice",
        "hub.jupyter.org/servername": "lab",
        "note": "lab",
        "volume.beta.kubernetes.io/storage-class": "standard",
    }
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "10Gi"}},
        "storageClassName": "standard",
        "selector": {"matchLabels": {"owner": "alice"}},
    }


def test_service_from_the_spawner() -> None:
    spawner = make_spawner(
        "alice",
        config={
            "services_enabled": True,
            "extra_labels": {"t": "x"},
            "extra_annotations": {"a": "{username}"},
        },
    )
    svc = to_dict(spawner.get_service_manifest(OWNER))
    assert svc["metadata"]["name"] == "jupyter-alice"
    assert svc["metadata"]["ownerReferences"] == [OWNER]
    assert svc["metadata"]["labels"]["t"] == "x"
    assert "component" not in svc["metadata"]["labels"]
    annotations = svc["metadata"]["annotations"]
    assert annotations["hub.jupyter.org/username"] == "alice" and annotations["a"] == "alice"
    assert "hub.jupyter.org/kubespawner-version" in annotations
    assert svc["spec"]["selector"]["component"] == "singleuser-server"
    assert svc["spec"]["selector"]["hub.jupyter.org/username"] == "alice"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8888, "targetPort": 8888}]


def test_secret_from_the_spawner_with_internal_ssl(tmp_path) -> None:
    for name, text in {"key": "KEY", "crt": "CRT", "ca": "CA\n", "hubca": "HUBCA\n"}.items():
        (tmp_path / name).write_text(text)
    spawner = make_spawner(config={"secret_name_template": "certs-{username}"})
    spawner.internal_ssl = True
    spawner.cert_paths = {
        "keyfile": str(tmp_path / "key"),
        "certfile": str(tmp_path / "crt"),
        "cafile": str(tmp_path / "ca"),
    }
    spawner.internal_trust_bundles = {"hub-ca": str(tmp_path / "hubca")}
    secret = to_dict(spawner.get_secret_manifest(OWNER))
    assert secret["metadata"]["name"] == "certs-alice"
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"ssl.key": "KEY", "ssl.crt": "CRT", "notebooks-ca_trust.crt": "CA\nHUBCA\n"}
    assert spawner.internal_ssl_pod_paths() == {
        "keyfile": "/etc/jupyterhub/ssl/ssl.key",
        "certfile": "/etc/jupyterhub/ssl/ssl.crt",
        "cafile": "/etc/jupyterhub/ssl/notebooks-ca_trust.crt",
    }
    assert spawner.needs_secret
    assert spawner.needs_service  # upstream also fronts internal-SSL pods with a Service
    assert not make_spawner().needs_service
    assert make_spawner(config={"services_enabled": True}).needs_service


def test_namespace_from_the_spawner() -> None:
    spawner = make_spawner(
        "alice",
        config={
            "enable_user_namespaces": True,
            "user_namespace_template": "hub-{username}",
            "user_namespace_labels": {"owner": "{username}"},
            "user_namespace_annotations": {"who": "{unescaped_username}"},
        },
    )
    ns = to_dict(spawner.get_namespace_manifest())
    assert ns["metadata"] == {
        "name": "hub-alice",
        "labels": {"owner": "alice"},
        "annotations": {"who": "alice"},
    }
    assert spawner.namespace == "hub-alice"
    assert spawner.dns_name == "jupyter-alice.hub-alice.svc.cluster.local"
