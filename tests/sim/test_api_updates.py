"""Updates (replace and patch) through the unmodified client: defaults the real server
applies only on create stay off, and values it allocated on create stay put."""

from __future__ import annotations

from kubernetes_asyncio import client

PVC_PROTECTION = "kubernetes.io/pvc-protection"
CLAIM = {"metadata": {"name": "home"}, "spec": {
    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


async def test_removed_pvc_protection_finalizer_stays_removed(api_client):
    v1 = client.CoreV1Api(api_client)
    created = await v1.create_namespaced_persistent_volume_claim("default", CLAIM)
    assert created.metadata.finalizers == [PVC_PROTECTION]
    patched = await v1.patch_namespaced_persistent_volume_claim(
        "home", "default", [{"op": "remove", "path": "/metadata/finalizers"}])
    assert patched.metadata.finalizers is None
    # a later, unrelated update does not bring it back either
    relabelled = await v1.patch_namespaced_persistent_volume_claim(
        "home", "default", {"metadata": {"labels": {"user": "alice"}}})
    assert relabelled.metadata.finalizers is None
    stored = await v1.read_namespaced_persistent_volume_claim("home", "default")
    assert stored.metadata.finalizers is None
    assert stored.metadata.labels == {"user": "alice"}
    # and without the finalizer a delete is immediate
    await v1.delete_namespaced_persistent_volume_claim("home", "default")
    remaining = await v1.list_namespaced_persistent_volume_claim("default")
    assert remaining.items == []


async def test_replaced_service_keeps_its_cluster_ip_and_node_ports(api_client):
    v1 = client.CoreV1Api(api_client)
    created = await v1.create_namespaced_service("default", {
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}]}})
    ip = created.spec.cluster_ip
    node_ports = {p.port: p.node_port for p in created.spec.ports}
    assert ip and all(node_ports.values())
    replacement = {  # what a client that never read the allocated values would send
        "metadata": {"name": "web", "resourceVersion": created.metadata.resource_version,
                     "labels": {"tier": "front"}},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "name": "http"},
                                               {"port": 443, "name": "tls"}]}}
    replaced = await v1.replace_namespaced_service("web", "default", replacement)
    assert replaced.spec.cluster_ip == ip
    assert replaced.spec.cluster_ips == [ip]
    assert {p.port: p.node_port for p in replaced.spec.ports} == node_ports
    assert replaced.metadata.labels == {"tier": "front"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)


async def test_replaced_pod_gets_no_second_token_volume(api_client):
    v1 = client.CoreV1Api(api_client)
    created = await v1.create_namespaced_pod("default", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "img:1"}]}})
    token_volumes = [v.name for v in created.spec.volumes if v.name.startswith("kube-api-access-")]
    assert len(token_volumes) == 1
    body = api_client.sanitize_for_serialization(created)
    body["metadata"]["labels"] = {"a": "b"}
    replaced = await v1.replace_namespaced_pod("p", "default", body)
    assert [v.name for v in replaced.spec.volumes] == [v.name for v in created.spec.volumes]
    assert replaced.spec.tolerations == created.spec.tolerations
