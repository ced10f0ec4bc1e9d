"""The config bridge: for the examples, the operator makes what the in-hub spawner makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jupyterhub.spawner import Spawner

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import to_json
from async_kubespawner.operator.bridge import BridgeError, build_template, load_config, main
from async_kubespawner.operator.models import parse_template_spec
from async_kubespawner.operator.render import ServerContext, render
from async_kubespawner.testing import build_spawner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONVERTIBLE = ["local", "cluster", "named-servers-pvc", "hardened"]


def in_hub_objects(spawner: Any, pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What KubeSpawner creates, minus what operator mode does differently on purpose:
    the hub's environment (from the Secret instead), owner references, namespace and the
    create id."""
    hub_env = set(Spawner.get_env(spawner))
    objects = {"Pod": pod}
    if spawner.storage_pvc_ensure:
        objects["PersistentVolumeClaim"] = to_json(spawner.get_pvc_manifest())
    if spawner.needs_service:
        objects["Service"] = to_json(spawner.get_service_manifest(
            {"apiVersion": "v1", "kind": "Pod", "name": "x", "uid": "x"}))
    for obj in objects.values():
        meta = obj["metadata"]
        for key in ("namespace", "ownerReferences"):
            meta.pop(key, None)
        if not meta.get("annotations"):
            meta.pop("annotations", None)
    for container in pod["spec"]["containers"]:
        if container["name"] == "notebook":
            container["env"] = [e for e in container.get("env") or ()
                                if e["name"] not in hub_env]
            if not container["env"]:
                container.pop("env")
    return {k: {"metadata": v["metadata"], "spec": v["spec"]} for k, v in objects.items()}


def operator_objects(children: list[Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for child in children:
        manifest = child.manifest
        if child.kind == "Pod":
            for container in manifest["spec"]["containers"]:
                if container["name"] == "notebook":
                    assert container.pop("envFrom") == [{"secretRef": {"name": "the-env"}}]
        out[child.kind] = {"metadata": manifest["metadata"], "spec": manifest["spec"]}
    return out


@pytest.mark.parametrize("example", CONVERTIBLE)
@pytest.mark.parametrize(("user", "server"), [("alice", ""), ("alice", "work"),
                                              ("bob.smith", "")])
async def test_operator_makes_what_the_in_hub_spawner_makes(
    example: str, user: str, server: str
) -> None:
    config = load_config(str(EXAMPLES / example / "jupyterhub_config.py"))
    template = parse_template_spec(await build_template(config))
    spawner: Any = build_spawner(KubeSpawner, user, 7, config=config, servername=server,
                                 api_token="hub-token")
    expected = in_hub_objects(spawner, to_json(await spawner.get_pod_manifest()))
    context = ServerContext(user=user, server=server, namespace=spawner.namespace,
                            object_name="o", secret_name="the-env", user_id="7")
    assert operator_objects(render(template, {}, context)) == expected


async def test_user_namespaces_and_hooks_are_refused() -> None:
    with pytest.raises(BridgeError, match="enable_user_namespaces"):
        await build_template(load_config(str(EXAMPLES / "user-namespaces" /
                                             "jupyterhub_config.py")))
    from traitlets.config import Config

    config = Config()
    config.KubeSpawner.modify_pod_hook = lambda spawner, pod: pod
    with pytest.raises(BridgeError, match="modify_pod_hook"):
        await build_template(config)


def test_command_writes_a_template(tmp_path: Path) -> None:
    out = tmp_path / "template.yaml"
    assert main([str(EXAMPLES / "named-servers-pvc" / "jupyterhub_config.py"),
                 "-o", str(out), "--name", "migrated"]) == 0
    written = yaml.safe_load(out.read_text())
    assert written["metadata"]["name"] == "migrated"
    assert written["spec"]["pvcRetention"] == {"whenStopped": "Retain", "whenDeleted": "Delete"}
    assert written["spec"]["pvcs"][0]["name"] == "claim-{server.slug}"
    assert "usr0sentinel" not in out.read_text() and "tkn0" not in out.read_text()
