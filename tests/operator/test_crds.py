"""The CRDs: generated from the typed models, committed as YAML, served by the API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from async_kubespawner.operator import crds
from async_kubespawner.operator.models import (
    API_VERSION,
    GROUP,
    VERSION,
    NotebookServerSpec,
    NotebookServerStatus,
    NotebookTemplateSpec,
    parse_server_spec,
    parse_server_status,
    parse_template_spec,
)
from async_kubespawner.operator.schema import ModelError, from_json, to_json

ROOT = Path(__file__).resolve().parents[2]
MERGE = "application/merge-patch+json"
#: the client's keyword for a patch's content type, which its stubs leave out
AS_MERGE_PATCH: dict[str, Any] = {"_content_type": MERGE}


def test_committed_crds_equal_the_generated_ones() -> None:
    committed = (ROOT / "examples/operator/crds.yaml").read_text()
    assert committed == crds.render_yaml(), (
        "examples/operator/crds.yaml is stale: run python -m async_kubespawner.operator.crds"
    )


def test_generator_command_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "crds.yaml"
    assert crds.main([str(target)]) == 0
    docs = list(yaml.safe_load_all(target.read_text()))
    assert [d["spec"]["names"]["kind"] for d in docs] == [
        "NotebookTemplate", "ClusterNotebookTemplate", "NotebookServer"]
    server = docs[2]["spec"]["versions"][0]
    assert server["subresources"] == {"status": {}}
    status = server["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == [
        "Pending", "Provisioning", "Starting", "Ready", "Failed", "Terminating"]
    spec = server["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # nothing in the server's spec can hold a token: only a Secret reference
    assert set(spec["properties"]) == {
        "templateRef", "identity", "variables", "envSecretRef", "purgeStorage"}
    assert docs[1]["spec"]["scope"] == "Cluster"


def sample_template() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "NotebookTemplate", "metadata": {"name": "default"},
        "spec": {
            "variables": [{"name": "image", "default": "jupyter/base:1",
                           "pattern": "^jupyter/[a-z]+:[0-9]+$"}],
            "pvcs": [{"id": "home", "name": "claim-{server.slug}", "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}],
            "pods": [{"id": "notebook", "name": "jupyter-{server.slug}",
                      "labels": {"component": "singleuser-server"},
                      "spec": {"containers": [{"name": "notebook", "image": "{image}"}]}}],
            "otherResources": [{"id": "svc", "apiVersion": "v1", "kind": "Service",
                                "name": "jupyter-{server.slug}",
                                "spec": {"ports": [{"port": 8888}]}}],
        },
    }


def sample_server(name: str = "alice") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "NotebookServer", "metadata": {"name": name},
        "spec": {"templateRef": {"name": "default"}, "identity": {"user": "alice"},
                 "variables": {"image": "jupyter/base:2"}, "envSecretRef": {"name": "s"}},
    }


def test_models_round_trip() -> None:
    template = parse_template_spec(sample_template())
    assert template.pvc_retention.when_stopped == "Retain"
    assert template.pods[0].spec["containers"][0]["image"] == "{image}"
    assert from_json(NotebookTemplateSpec, to_json(template)) == template
    server = parse_server_spec(sample_server())
    assert server.template_ref.kind == "NotebookTemplate" and server.identity.server == ""
    assert from_json(NotebookServerSpec, to_json(server)) == server
    status = parse_server_status({"status": {"phase": "Ready", "port": 8888,
                                              "conditions": [{"type": "Ready", "status": "True"}]}})
    assert from_json(NotebookServerStatus, to_json(status)) == status


@pytest.mark.parametrize(("spec", "where"), [
    ({"identity": {"user": "a"}}, "spec.templateRef: required"),
    ({"templateRef": {"name": "t"}, "identity": {"user": 3}}, "spec.identity.user: must be"),
    ({"templateRef": {"name": "t"}, "identity": {"user": "a"}, "variables": {"x": []}},
     "spec.variables.x: must be"),
])
def test_models_refuse_misshapen_objects_with_the_path(spec: dict, where: str) -> None:
    with pytest.raises(ModelError, match=where):
        parse_server_spec({"spec": spec})


async def install(api_client: Any) -> client.CustomObjectsApi:
    ext = client.ApiextensionsV1Api(api_client)
    for manifest in crds.all_crds():
        # cast: the client sends a plain dict as it is; its stubs ask for the model
        await ext.create_custom_resource_definition(cast(Any, manifest))
    return client.CustomObjectsApi(api_client)


async def test_api_server_accepts_the_crds_and_validates_objects(api_client: Any) -> None:
    co = await install(api_client)
    created = await co.create_namespaced_custom_object(
        GROUP, VERSION, "default", "notebooktemplates", sample_template())
    # the server's defaulting fills the retention policy from the generated schema
    assert created["spec"]["pvcRetention"] == {"whenStopped": "Retain", "whenDeleted": "Delete"}
    server = await co.create_namespaced_custom_object(
        GROUP, VERSION, "default", "notebookservers", sample_server())
    assert server["spec"]["templateRef"]["kind"] == "NotebookTemplate"  # schema default
    status = {"status": {"phase": "Ready", "address": "10.0.0.1", "port": 8888}}
    patched = await co.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", "notebookservers", "alice", status, **AS_MERGE_PATCH)
    assert patched["status"]["phase"] == "Ready"
    assert parse_server_status(patched).address == "10.0.0.1"
    bad = sample_server("bob")
    bad["spec"]["templateRef"]["kind"] = "Pod"
    with pytest.raises(ApiException) as info:
        await co.create_namespaced_custom_object(GROUP, VERSION, "default", "notebookservers", bad)
    assert info.value.status == 422
    with pytest.raises(ApiException) as info:
        await co.patch_namespaced_custom_object_status(
            GROUP, VERSION, "default", "notebookservers", "alice",
            {"status": {"phase": "Exploded"}}, **AS_MERGE_PATCH)
    assert info.value.status == 422
    # a token smuggled into the spec is pruned, never stored
    sneaky = sample_server("carol")
    sneaky["spec"]["token"] = "secret-value"
    stored = await co.create_namespaced_custom_object(
        GROUP, VERSION, "default", "notebookservers", sneaky)
    assert "token" not in stored["spec"]


async def test_template_with_placeholder_in_kind_is_refused_by_the_schema(api_client: Any) -> None:
    co = await install(api_client)
    template = sample_template()
    template["spec"]["otherResources"][0]["kind"] = "{kind}"
    with pytest.raises(ApiException) as info:
        await co.create_namespaced_custom_object(
            GROUP, VERSION, "default", "notebooktemplates", template)
    assert info.value.status == 422
