"""Deletion semantics: graceful pods, finalizers, ownerReference GC, namespace termination."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubesim.store import Store

CONTAINERS = {"containers": [{"name": "main", "image": "registry.example/nb:1"}]}


def pod(name: str, **meta) -> dict:
    return {"metadata": {"name": name, **meta}, "spec": dict(CONTAINERS)}


def owner_ref(obj: dict, **extra) -> dict:
    return {
        "apiVersion": "v1",
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        **extra,
    }


@pytest.fixture
async def store():
    s = Store()
    yield s
    await s.close()


def exists(store: Store, plural: str, ns: str | None, name: str) -> bool:
    return store._bucket(store.resource(plural)).get((ns or "", name)) is not None


async def test_pod_on_a_node_waits_for_its_kubelet(store):
    pods = store.resource("pods")
    await store.create(pods, "default", pod("bound"))
    await store.bind("default", "bound", "node-1")
    marked = await store.delete(pods, "default", "bound")
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert marked["metadata"]["deletionTimestamp"]
    assert exists(store, "pods", "default", "bound")
    # a second delete with a shorter grace period shortens it
    shorter = await store.delete(pods, "default", "bound", grace_period_seconds=5)
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 5
    # the kubelet finishes it with grace 0
    await store.delete(pods, "default", "bound", grace_period_seconds=0)
    assert not exists(store, "pods", "default", "bound")


async def test_finalizers_hold_deletion_until_removed(store):
    cms = store.resource("configmaps")
    await store.create(
        cms, "default", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    marked = await store.delete(cms, "default", "held")
    assert marked["metadata"]["deletionTimestamp"]
    assert exists(store, "configmaps", "default", "held")
    await store.patch(cms, "default", "held", {"metadata": {"finalizers": None}}, "merge")
    assert not exists(store, "configmaps", "default", "held")


async def test_delete_preconditions(store):
    cms = store.resource("configmaps")
    obj = await store.create(cms, "default", {"metadata": {"name": "pre"}})
    with pytest.raises(Exception) as info:
        await store.delete(cms, "default", "pre", preconditions={"uid": "wrong"})
    assert info.value.code == 409
    assert "Precondition failed: UID in precondition: wrong" in info.value.status["message"]
    with pytest.raises(Exception) as info:
        await store.delete(cms, "default", "pre", preconditions={"resourceVersion": "1"})
    assert info.value.code == 409
    await store.delete(cms, "default", "pre", preconditions={"uid": obj["metadata"]["uid"]})
    assert not exists(store, "configmaps", "default", "pre")


async def test_background_gc_removes_services_and_secrets_owned_by_a_pod(store):
    pods, svcs, secrets = (store.resource(p) for p in ("pods", "services", "secrets"))
    owner = await store.create(pods, "default", pod("jupyter-alice"))
    ref = owner_ref(owner)
    await store.create(
        svcs,
        "default",
        {
            "metadata": {"name": "jupyter-alice", "ownerReferences": [ref]},
            "spec": {"ports": [{"port": 8888}]},
        },
    )
    await store.create(
        secrets, "default", {"metadata": {"name": "jupyter-alice", "ownerReferences": [ref]}}
    )
    await store.create(secrets, "default", {"metadata": {"name": "unowned"}})
    await store.delete(pods, "default", "jupyter-alice")
    await store.wait_gc_idle()
    assert not exists(store, "services", "default", "jupyter-alice")
    assert not exists(store, "secrets", "default", "jupyter-alice")
    assert exists(store, "secrets", "default", "unowned")


async def test_gc_keeps_a_dependent_with_another_live_owner(store):
    cms = store.resource("configmaps")
    a = await store.create(cms, "default", {"metadata": {"name": "a"}})
    b = await store.create(cms, "default", {"metadata": {"name": "b"}})
    await store.create(
        cms,
        "default",
        {"metadata": {"name": "dep", "ownerReferences": [owner_ref(a), owner_ref(b)]}},
    )
    await store.delete(cms, "default", "a")
    await store.wait_gc_idle()
    dep = store.get(cms, "default", "dep")
    assert [r["name"] for r in dep["metadata"]["ownerReferences"]] == ["b"]


async def test_orphan_propagation_keeps_dependents_and_strips_refs(store):
    cms = store.resource("configmaps")
    owner = await store.create(cms, "default", {"metadata": {"name": "owner"}})
    await store.create(
        cms, "default", {"metadata": {"name": "dep", "ownerReferences": [owner_ref(owner)]}}
    )
    await store.delete(cms, "default", "owner", propagation_policy="Orphan")
    await store.wait_gc_idle()
    assert not exists(store, "configmaps", "default", "owner")
    assert "ownerReferences" not in store.get(cms, "default", "dep")["metadata"]


async def test_foreground_owner_goes_after_its_dependents(store):
    pods, cms = store.resource("pods"), store.resource("configmaps")
    owner = await store.create(cms, "default", {"metadata": {"name": "owner"}})
    await store.create(
        pods, "default", pod("dep", ownerReferences=[owner_ref(owner, blockOwnerDeletion=True)])
    )
    await store.bind("default", "dep", "node-1")
    marked = await store.delete(cms, "default", "owner", propagation_policy="Foreground")
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    await store.wait_gc_idle()
    # the dependent pod is on a node: it is terminating, and the owner waits for it
    assert store.get(pods, "default", "dep")["metadata"]["deletionTimestamp"]
    assert exists(store, "configmaps", "default", "owner")
    await store.delete(pods, "default", "dep", grace_period_seconds=0)  # the kubelet is done
    await store.wait_gc_idle()
    assert not exists(store, "pods", "default", "dep")
    assert not exists(store, "configmaps", "default", "owner")


async def test_namespace_deletion_terminates_then_removes(store):
    nss, pods, cms = (
        store.resource("namespaces"),
        store.resource("pods"),
        store.resource("configmaps"),
    )
    await store.create(nss, None, {"metadata": {"name": "doomed"}})
    await store.create(cms, "doomed", {"metadata": {"name": "c"}})
    await store.create(pods, "doomed", pod("p"))
    await store.bind("doomed", "p", "node-1")
    ns = await store.delete(nss, None, "doomed")
    assert ns["status"]["phase"] == "Terminating"
    with pytest.raises(Exception) as info:
        await store.create(cms, "doomed", {"metadata": {"name": "late"}})
    assert info.value.code == 403
    assert info.value.status["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace doomed '
        "because it is being terminated"
    )
    await store.wait_gc_idle()
    assert not exists(store, "configmaps", "doomed", "c")
    assert exists(store, "namespaces", None, "doomed")  # the bound pod is still terminating
    await store.delete(pods, "doomed", "p", grace_period_seconds=0)
    await store.wait_gc_idle()
    assert not exists(store, "namespaces", None, "doomed")


async def test_delete_options_body_wins_over_query(simulator, api_client):
    """The real server reads DeleteOptions from the body when there is one, else the query."""
    import aiohttp

    v1 = client.CoreV1Api(api_client)
    await v1.create_namespaced_pod("default", pod("p"))
    await simulator.store.bind("default", "p", "node-1")
    async with aiohttp.ClientSession() as http:
        async with http.delete(
            f"{simulator.url}/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0",
            data=json.dumps({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 7}),
            headers={"Content-Type": "application/json"},
        ) as resp:
            body = await resp.json()
    assert resp.status == 200
    assert body["metadata"]["deletionGracePeriodSeconds"] == 7
    # no body: the query parameter applies
    async with aiohttp.ClientSession() as http:
        async with http.delete(
            f"{simulator.url}/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0"
        ) as resp:
            assert resp.status == 200
    with pytest.raises(ApiException) as info:
        await v1.read_namespaced_pod("p", "default")
    assert info.value.status == 404


@pytest.mark.simulator_options(root_ca_configmaps=False)  # counts configmaps
async def test_deletecollection_with_label_selector(api_client):
    v1 = client.CoreV1Api(api_client)
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        await v1.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": {"team": team}}}
        )
    await v1.delete_collection_namespaced_config_map("default", label_selector="team=x")
    left = await v1.list_namespaced_config_map("default")
    assert [c.metadata.name for c in left.items] == ["c"]


async def test_propagation_policy_through_client(api_client, simulator):
    v1 = client.CoreV1Api(api_client)
    owner = await v1.create_namespaced_pod("default", pod("owner"))
    ref = client.V1OwnerReference(
        api_version="v1", kind="Pod", name="owner", uid=owner.metadata.uid
    )
    await v1.create_namespaced_secret(
        "default", client.V1Secret(metadata=client.V1ObjectMeta(name="s", owner_references=[ref]))
    )
    await v1.delete_namespaced_pod(
        "owner", "default", body=client.V1DeleteOptions(propagation_policy="Orphan")
    )
    await simulator.store.wait_gc_idle()
    kept = await v1.read_namespaced_secret("s", "default")
    assert kept.metadata.owner_references is None


async def test_pvc_protection_holds_a_claim_while_a_pod_uses_it(store):
    pvcs, pods = store.resource("persistentvolumeclaims"), store.resource("pods")
    claim = {"metadata": {"name": "home"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Gi"}}}}
    created = await store.create(pvcs, "default", claim)
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    user = pod("user")
    user["spec"]["volumes"] = [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}]
    await store.create(pods, "default", user)
    await store.bind("default", "user", "node-1")
    await store.delete(pvcs, "default", "home")
    await store.wait_gc_idle()
    assert store.get(pvcs, "default", "home")["metadata"]["deletionTimestamp"]
    await store.delete(pods, "default", "user", grace_period_seconds=0)
    await store.wait_gc_idle()
    assert not exists(store, "persistentvolumeclaims", "default", "home")


async def test_unused_claim_is_released_at_once(store):
    pvcs = store.resource("persistentvolumeclaims")
    await store.create(pvcs, "default", {"metadata": {"name": "free"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    await store.delete(pvcs, "default", "free")
    await store.wait_gc_idle()
    assert not exists(store, "persistentvolumeclaims", "default", "free")
