"""Converting a Jupyternetes template: same objects, our placeholders, no secret in the template."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from async_kubespawner.kube.client import PODS
from async_kubespawner.operator.convert import ConversionError, convert_jupyternetes, main
from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES
from async_kubespawner.operator.models import parse_template_spec
from async_kubespawner.operator.render import ServerContext, render

from .conftest import NAMESPACE, OperatorHarness
from .test_reconcile import create_server, phase

SOURCE = Path(__file__).parent / "data" / "jupyternetes-template.yaml"


def source() -> dict[str, Any]:
    return yaml.safe_load(SOURCE.read_text())


def test_converted_template_renders_the_same_objects() -> None:
    converted = convert_jupyternetes(source())
    assert converted["kind"] == "NotebookTemplate"
    assert "{jupyter" not in json.dumps(converted)  # every placeholder mapped
    template = parse_template_spec(converted)
    ctx = ServerContext(user="alice", server="", namespace="jhub", object_name="jupyter-alice",
                        secret_name="jupyter-alice-env", user_id="7")
    children = {c.id: c for c in render(template, {}, ctx)}
    assert [c.kind for c in children.values()] == [
        "PersistentVolumeClaim", "Service", "Pod"]
    pvc, pod = children["workspace"], children["notebook"]
    assert pvc.name == "jupyter-alice-workspace"
    assert pvc.manifest["metadata"]["labels"] == {"jupyternetes.kadense.io/userId": "7"}
    spec = pod.manifest["spec"]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == pvc.name
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    for name, key in (("JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN"),
                      ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_TOKEN"),
                      ("JUPYTERHUB_CLIENT_ID", "JUPYTERHUB_CLIENT_ID")):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {
            "name": "jupyter-alice-env", "key": key}}}
    assert env["JUPYTERHUB_API_URL"]["value"] == "http://hub.jhub.svc.cluster.local:8081/hub/api"
    assert env["JUPYTERHUB_OAUTH_SCOPES"]["value"] == (
        '["access:servers!server=alice/", "access:servers!user=alice"]')
    assert env["INSTANCE"]["value"] == "jupyter-alice.jhub"
    assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/home/alice/work"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda s: s["spec"]["pods"][0]["spec"]["containers"][0]["env"].append(
        {"name": "URL", "value": "http://x/?token={jupyterhub.api_token}"}), "secret"),
    (lambda s: s["spec"]["pods"][0].update(condition="user.name == 'bob'"), "condition"),
    (lambda s: s["spec"]["pods"][0]["labels"].update(x="{jupyterhub.secret}"), "not a Jupyternetes"),
    (lambda s: s["spec"]["pods"][0]["spec"]["volumes"][0]["persistentVolumeClaim"].update(
        claimName="{jupyternetes.pvcs.nothing}"), "no PVC"),
    (lambda s: s.update(kind="Pod"), "expected kadense.io/v1"),
])
def test_unfaithful_conversions_are_refused(mutate: Any, message: str) -> None:
    changed = copy.deepcopy(source())
    mutate(changed)
    with pytest.raises(ConversionError, match=message):
        convert_jupyternetes(changed)


def test_command_writes_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "template.yaml"
    assert main(["jupyternetes", str(SOURCE), "-o", str(out), "--name", "default"]) == 0
    written = yaml.safe_load(out.read_text())
    assert written["metadata"] == {"name": "default"}
    assert written == {**convert_jupyternetes(source()), "metadata": {"name": "default"}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\n")
    assert main(["jupyternetes", str(bad)]) == 2
    assert "expected kadense.io/v1" in capsys.readouterr().err


async def test_operator_provisions_the_converted_template(harness: OperatorHarness) -> None:
    converted = convert_jupyternetes(source())
    await harness.api.create(NOTEBOOK_TEMPLATES, NAMESPACE, converted)
    await harness.start_operator()
    await create_server(harness, template="default-template")
    await harness.wait_server("alice", lambda s: phase(s) == "Ready")
    pod = await harness.api.get(PODS, NAMESPACE, "alice-notebook")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "alice-workspace"
