"""Converting Jupyternetes templates: the one in its documentation, and hostile ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from async_kubespawner.operator import jupyternetes
from async_kubespawner.operator.jupyternetes import ConversionRefused, convert, convert_file
from async_kubespawner.operator.kubeio import NOTEBOOK_TEMPLATES
from async_kubespawner.operator.models import parse_template_spec
from async_kubespawner.operator.render import ServerContext, render
from async_kubespawner.operator.spawner import OperatorSpawner
from async_kubespawner.testing import build_spawner

from .conftest import NAMESPACE, OperatorHarness

FIXTURE = Path(__file__).parent / "fixtures" / "jupyternetes-default-template.yaml"


def source() -> dict[str, Any]:
    return yaml.safe_load(FIXTURE.read_text())


def test_documented_template_converts() -> None:
    (template,), notes = convert_file(FIXTURE)
    assert template["kind"] == "NotebookTemplate"
    assert template["metadata"]["name"] == "default-template"
    assert template["metadata"]["annotations"][
        "notebooks.async-kubespawner.io/converted-from"
    ] == "kadense.io/v1 JupyterNotebookTemplate kadense/default-template"
    spec = template["spec"]
    (pvc,) = spec["pvcs"]
    (pod,) = spec["pods"]
    assert pvc["id"] == "workspace" and pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    (container,) = pod["spec"]["containers"]
    # the hub's environment (token included) comes from the hub's Secret, not the template
    names = [e["name"] for e in container["env"]]
    assert names == ["JUPYTER_IMAGE", "JUPYTER_IMAGE_SPEC", "MEM_GUARANTEE"]
    assert container["envFrom"] == [{"secretRef": {"name": "{secret.name}"}}]
    assert "api_token" not in json.dumps(template) and "oauth_client_id" not in json.dumps(template)
    assert container["volumeMounts"][0]["mountPath"] == "/home/{user.name}/work"
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == (
        "{pvcs.workspace.name}")
    assert pod["labels"] == {"jupyternetes.kadense.io/userId": "{user.id}"}
    assert any("JUPYTERHUB_API_TOKEN" in n for n in notes)
    parse_template_spec(template)  # valid against the CRD's model


def test_converted_template_renders_cross_references_for_a_user() -> None:
    (template,), _ = convert_file(FIXTURE)
    context = ServerContext(user="Bob.Smith@example.org", server="", namespace="jhub",
                            object_name="jupyter-x", secret_name="jupyter-x-env")
    children = {c.kind: c for c in render(parse_template_spec(template), {}, context)}
    pvc, pod = children["PersistentVolumeClaim"], children["Pod"]
    assert pvc.name == "jupyter-x-workspace" and pod.name == "jupyter-x-notebook"
    volume = pod.manifest["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc.name
    container = pod.manifest["spec"]["containers"][0]
    assert container["volumeMounts"][0]["mountPath"] == "/home/Bob.Smith@example.org/work"
    assert container["envFrom"][0]["secretRef"]["name"] == "jupyter-x-env"


async def test_converted_template_spawns_with_the_operator(harness: OperatorHarness) -> None:
    (template,), _ = convert_file(FIXTURE)
    template["metadata"]["namespace"] = NAMESPACE
    await harness.api.create(NOTEBOOK_TEMPLATES, NAMESPACE, template)
    await harness.start_operator()
    config = Config()
    config.OperatorSpawner = Config({"k8s_api_host": harness.sim.url, "namespace": NAMESPACE,
                                     "template": "default-template"})
    spawner = build_spawner(OperatorSpawner, "alice", config=config)
    url = await spawner.start()
    assert url.endswith(":8888")
    pods = {p["metadata"]["name"]: p for p in harness.store_items("pods")}
    pvcs = {p["metadata"]["name"] for p in harness.store_items("persistentvolumeclaims")}
    pod = pods["jupyter-alice-notebook"]
    assert pvcs == {"jupyter-alice-workspace"}
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == (
        "jupyter-alice-workspace")
    assert pod["metadata"]["labels"]["jupyternetes.kadense.io/userId"] == str(spawner.user.id)
    assert spawner.api_token not in json.dumps(pod)
    await spawner.stop()


def mutated(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(source())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


CONTAINER = ["spec", "pods", 0, "spec", "containers", 0]


@pytest.mark.parametrize(("doc", "message"), [
    (mutated([*CONTAINER, "image"], "registry/{jupyterhub.user.secret}:1"),
     "unknown placeholder {jupyterhub.user.secret}"),
    (mutated([*CONTAINER, "image"], "{image}"), "unknown placeholder {image}"),
    (mutated(["spec", "pods", 0, "spec", "volumes", 0, "persistentVolumeClaim", "claimName"],
             "{jupyternetes.pvcs.scratch}"),
     "{jupyternetes.pvcs.scratch} refers to no PVC of the template (its PVCs: workspace)"),
    (mutated(["spec", "pods", 0, "annotations"], {"token": "{jupyterhub.api_token}"}),
     "{jupyterhub.api_token} is part of the hub's environment"),
    (mutated([*CONTAINER, "workingDir"], "{jupyterhub.oauth_client_id}"),
     "{jupyterhub.oauth_client_id} is part of the hub's environment"),
    (mutated(["spec", "otherResources"], [{"name": "svc", "apiVersion": "v1",
                                           "kind": "{jupyterhub.user.name}"}]),
     "placeholders in apiVersion or kind are refused"),
    (mutated(["spec", "pods", 0, "labels"], {"{jupyterhub.user.name}": "x"}),
     "keys are never substituted"),
    (mutated(["apiVersion"], "kadense.io/v2"), "not a kadense.io/v1 JupyterNotebookTemplate"),
    (mutated(["spec", "pods"], []), "the template has no pods"),
    (mutated(["spec", "pvcs", 0, "name"], "!!"), "cannot be made a child id"),
])
def test_hostile_templates_are_refused_with_the_reason(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConversionRefused) as refused:
        convert(doc)
    assert message in str(refused.value)


def test_other_resources_and_values_that_look_like_yaml_stay_data() -> None:
    doc = mutated(["spec", "otherResources"], [{
        "name": "settings", "apiVersion": "v1", "kind": "ConfigMap",
        "data": {"owner": "{jupyterhub.user.name}", "shell": "echo ${HOME}",
                 "json": '{"a": 1}'},
    }])
    template, _ = convert(doc)
    (other,) = template["spec"]["otherResources"]
    assert other["data"] == {"owner": "{user.name}", "shell": "echo ${HOME}", "json": '{"a": 1}'}
    context = ServerContext(user='x"\n- y: {user.name}', server="", namespace="ns",
                            object_name="o", secret_name="s")
    children = {c.kind: c for c in render(parse_template_spec(template), {}, context)}
    assert children["ConfigMap"].manifest["data"]["owner"] == 'x"\n- y: {user.name}'


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "converted.yaml"
    assert jupyternetes.main([str(FIXTURE), "-o", str(out)]) == 0
    (converted,) = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert converted["metadata"]["name"] == "default-template"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(mutated([*CONTAINER, "image"], "{nope}")))
    assert jupyternetes.main([str(bad)]) == 2
    captured = capsys.readouterr()
    assert "unknown placeholder {nope}" in captured.err and captured.out == ""
