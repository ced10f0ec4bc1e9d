"""What ``get_pod_manifest()`` / ``get_pvc_manifest()`` hand to hooks has upstream
KubeSpawner's shape, and what is sent to the API server is unchanged.

Upstream converts each configured dict (a volume, a container, a toleration...) into its
model at the top level only and leaves the dicts inside as given; security contexts and
the PVC's selector stay plain dicts. ``modify_pod_hook`` functions written for upstream
index into those dicts (``pod.spec.volumes[0].persistent_volume_claim["claimName"]``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import kubernetes_asyncio.client as k8s

from async_kubespawner.objects.manifests import (
    ManifestError,
    build_pod_manifest,
    build_pvc_manifest,
    to_dict,
    to_model,
)
from tests.unit.manifest_shapes import pod_json, rich_pod_settings, rich_pvc_settings
from tests.unit.spawner_fakes import make_spawner

SENT = json.loads((Path(__file__).parent / "data" / "manifests_sent.json").read_text())


def test_what_is_sent_is_unchanged() -> None:
    """The JSON recorded from the fully converted models before the shape changed."""
    assert pod_json(build_pod_manifest(rich_pod_settings())) == SENT["pod"]
    assert pod_json(build_pvc_manifest(rich_pvc_settings())) == SENT["pvc"]


def test_sent_json_equals_a_full_conversion() -> None:
    pod = build_pod_manifest(rich_pod_settings())
    assert pod_json(pod) == pod_json(to_model(k8s.V1Pod, to_dict(pod)))


def test_nested_fields_are_plain_dicts_at_upstreams_places() -> None:
    # The casts: these fields hold plain dicts, whatever model the client's types name.
    pod = build_pod_manifest(rich_pod_settings())
    spec = pod.spec
    assert isinstance(spec.volumes[0], k8s.V1Volume)
    claim = cast(dict[str, Any], spec.volumes[0].persistent_volume_claim)
    assert claim["claimName"] == "claim-alice"
    assert spec.volumes[1].config_map == {"name": "cfg", "defaultMode": 420}
    assert isinstance(spec.containers[0].volume_mounts[1], k8s.V1VolumeMount)
    notebook = spec.containers[0]
    assert notebook.lifecycle.post_start == {"exec": {"command": ["true"]}}
    assert cast(dict[str, Any], notebook.security_context)["readOnlyRootFilesystem"] is True
    assert cast(dict[str, Any], spec.security_context)["fsGroup"] == 100
    side = spec.containers[1]
    assert isinstance(side, k8s.V1Container)
    assert side.ports == [{"containerPort": 9000, "name": "side-port"}]
    assert cast(dict[str, Any], side.env[0])["valueFrom"] == {
        "fieldRef": {"fieldPath": "spec.nodeName"}
    }
    assert spec.init_containers[0].security_context == {"runAsUser": 1000}
    assert isinstance(spec.tolerations[0], k8s.V1Toleration)
    term = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    requirement = cast(dict[str, Any], term.node_selector_terms[0].match_expressions[0])
    assert requirement["operator"] == "In"
    preferred = spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
    assert cast(dict[str, Any], preferred[0].preference)["matchExpressions"][0]["key"] == "z"
    # extra_*_config values are set as given (camelCase), like upstream's update
    assert notebook.env_from == [{"configMapRef": {"name": "e"}}]
    assert spec.dns_config == {"nameservers": ["1.1.1.1"]}
    env = {e.name: e for e in notebook.env}
    assert env["FROM_SECRET"].value_from == {"secretKeyRef": {"name": "s", "key": "k"}}


def test_pvc_selector_is_a_plain_dict() -> None:
    pvc = build_pvc_manifest(rich_pvc_settings())
    assert cast(dict[str, Any], pvc.spec.selector)["matchLabels"] == {"disk": "x"}


def test_a_hook_written_for_upstream_works_and_is_sent() -> None:
    def hook(spawner: Any, pod: Any) -> Any:
        pod.spec.volumes[0].persistent_volume_claim["readOnly"] = True
        pod.spec.containers[0].security_context["runAsGroup"] = 7
        return pod

    spawner = make_spawner(
        config={
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
            "uid": 1000,
            "modify_pod_hook": hook,
        }
    )
    pod = pod_json(asyncio.run(spawner.prepare_pod()))
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "claim-alice",
        "readOnly": True,
    }
    assert pod["spec"]["containers"][0]["securityContext"]["runAsGroup"] == 7


def test_every_level_is_still_validated() -> None:
    settings = rich_pod_settings()
    settings.volumes = [{"name": "a", "persistentVolumeClaim": {"claimNam": "typo"}}]
    try:
        build_pod_manifest(settings)
    except ManifestError as exc:
        assert exc.setting == "volumes"
        assert exc.path == "volumes[0].persistentVolumeClaim.claimNam"
    else:
        raise AssertionError("a typo deep in a volume was accepted")


def test_service_and_secret_manifests_take_upstreams_owner_reference() -> None:
    spawner = make_spawner(config={"services_enabled": True, "api_token_in_secret": True})
    owner = k8s.V1OwnerReference(
        api_version="v1", kind="Pod", name="jupyter-alice", uid="u-1", block_owner_deletion=True
    )
    service = spawner.get_service_manifest(owner)
    secret = spawner.get_secret_manifest(owner_reference=owner)
    for obj in (service, secret):
        assert obj.metadata.owner_references[0].uid == "u-1"
    # as upstream: one port named "http" (service meshes read the protocol from it),
    # which a subclass may extend
    assert [(p.name, p.port, p.target_port) for p in service.spec.ports] == [("http", 8888, 8888)]
    service.spec.ports.append(k8s.V1ServicePort(name="rdp", port=3389, target_port=3389))
    assert len(pod_json(service)["spec"]["ports"]) == 2
