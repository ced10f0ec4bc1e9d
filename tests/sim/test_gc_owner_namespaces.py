"""Owner references across namespaces, as the real garbage collector treats them.

An ownerReference has no namespace: a namespaced owner is looked for in the dependent's
namespace, so one in another namespace counts as absent (the dependent is collected when
no valid owner is left), and a cluster-scoped dependent cannot name a namespaced kind at
all (unresolvable: never collected). Both are reported with a Warning Event
``OwnerRefInvalidNamespace`` about the dependent (Kubernetes docs, "Owners and
Dependents"). The simulator keeps objects by uid across namespaces; without these rules
it would honour references a cluster ignores.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from kubernetes_asyncio import client
from kubesim.owner_refs import OwnerState, Verdict, classify
from kubesim.store import Store

RBAC = "rbac.authorization.k8s.io"


def ref(obj: dict[str, Any], api_version: str = "v1", **extra: Any) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": api_version, "kind": obj["kind"], "name": meta["name"],
            "uid": meta["uid"], **extra}


@pytest.fixture
async def store() -> Any:
    s = Store()
    await s.create(s.resource("namespaces"), None, {"metadata": {"name": "team"}})
    yield s
    await s.close()


def get(store: Store, plural: str, ns: str | None, name: str, group: str = "") -> Any:
    return store._bucket(store.resource(plural, group)).get((ns or "", name))


def gc_events(store: Store) -> list[dict[str, Any]]:
    events, _ = store.list(store.resource("events"), None)
    return [e for e in events if e["reason"] == "OwnerRefInvalidNamespace"]


def expected_message(owner_ref: dict[str, Any], namespace: str) -> str:
    return (f"ownerRef [{owner_ref['apiVersion']}/{owner_ref['kind']}, namespace: {namespace}, "
            f"name: {owner_ref['name']}, uid: {owner_ref['uid']}] does not exist in namespace "
            f'"{namespace}"')


async def cluster_role(store: Store, name: str, **meta: Any) -> dict[str, Any]:
    return await store.create(store.resource("clusterroles", RBAC), None,
                              {"metadata": {"name": name, **meta}, "rules": []})


async def test_an_owner_in_another_namespace_counts_as_absent(store: Store) -> None:
    cms = store.resource("configmaps")
    owner = await store.create(cms, "default", {"metadata": {"name": "owner"}})
    owner_ref = ref(owner)
    dep = await store.create(cms, "team", {"metadata": {"name": "dep",
                                                        "ownerReferences": [owner_ref]}})
    await store.wait_gc_idle()
    assert get(store, "configmaps", "team", "dep") is None  # collected as an orphan
    assert get(store, "configmaps", "default", "owner") is not None
    [event] = gc_events(store)
    assert event["metadata"]["namespace"] == "team"
    assert event["type"] == "Warning"
    assert event["source"] == {"component": "garbage-collector-controller"}
    assert event["involvedObject"] == {"kind": "ConfigMap", "apiVersion": "v1",
                                       "namespace": "team", "name": "dep",
                                       "uid": dep["metadata"]["uid"]}
    assert event["message"] == expected_message(owner_ref, "team")


async def test_a_dependent_with_a_valid_owner_loses_only_the_foreign_reference(
    store: Store,
) -> None:
    cms = store.resource("configmaps")
    foreign = await store.create(cms, "default", {"metadata": {"name": "foreign"}})
    local = await store.create(cms, "team", {"metadata": {"name": "local"}})
    await store.create(cms, "team", {"metadata": {
        "name": "dep", "ownerReferences": [ref(foreign), ref(local)]}})
    await store.wait_gc_idle()
    kept = get(store, "configmaps", "team", "dep")
    assert [r["name"] for r in kept["metadata"]["ownerReferences"]] == ["local"]
    assert [e["involvedObject"]["name"] for e in gc_events(store)] == ["dep"]
    # the foreign owner's deletion does not reach it; the valid owner's does
    await store.delete(cms, "default", "foreign")
    await store.wait_gc_idle()
    assert get(store, "configmaps", "team", "dep") is not None
    await store.delete(cms, "team", "local")
    await store.wait_gc_idle()
    assert get(store, "configmaps", "team", "dep") is None


async def test_a_cluster_scoped_owner_is_valid_from_any_namespace(store: Store) -> None:
    cms = store.resource("configmaps")
    owner = await cluster_role(store, "owner")
    await store.create(cms, "team", {"metadata": {
        "name": "dep", "ownerReferences": [ref(owner, f"{RBAC}/v1")]}})
    await store.wait_gc_idle()
    assert get(store, "configmaps", "team", "dep") is not None
    assert gc_events(store) == []
    await store.delete(store.resource("clusterroles", RBAC), None, "owner")
    await store.wait_gc_idle()
    assert get(store, "configmaps", "team", "dep") is None


async def test_a_cluster_scoped_dependent_of_a_namespaced_kind_is_never_collected(
    store: Store,
) -> None:
    cms = store.resource("configmaps")
    owner = await store.create(cms, "default", {"metadata": {"name": "owner"}})
    also = await cluster_role(store, "also-owner")
    owner_ref = ref(owner)
    dep = await cluster_role(store, "dep", ownerReferences=[owner_ref, ref(also, f"{RBAC}/v1")])
    await store.wait_gc_idle()
    [event] = gc_events(store)
    assert event["metadata"]["namespace"] == "default"  # where events about cluster objects go
    assert event["involvedObject"] == {"kind": "ClusterRole", "apiVersion": f"{RBAC}/v1",
                                       "name": "dep", "uid": dep["metadata"]["uid"]}
    assert event["message"] == expected_message(owner_ref, "")
    # the reference cannot be resolved: neither owner's deletion collects the dependent
    await store.delete(store.resource("clusterroles", RBAC), None, "also-owner")
    await store.delete(cms, "default", "owner")
    await store.wait_gc_idle()
    assert get(store, "clusterroles", None, "dep", RBAC) is not None


async def test_foreground_deletion_does_not_wait_for_an_invalid_dependent(store: Store) -> None:
    cms = store.resource("configmaps")
    owner = await store.create(cms, "default", {"metadata": {"name": "owner"}})
    await cluster_role(store, "dep", ownerReferences=[ref(owner)])
    await store.delete(cms, "default", "owner", propagation_policy="Foreground")
    await store.wait_gc_idle()
    assert get(store, "configmaps", "default", "owner") is None
    assert get(store, "clusterroles", None, "dep", RBAC) is not None


async def test_a_reference_that_becomes_foreign_by_update_is_collected(store: Store) -> None:
    cms = store.resource("configmaps")
    await store.create(cms, "team", {"metadata": {"name": "dep"}})
    owner = await store.create(cms, "default", {"metadata": {"name": "owner"}})
    await store.patch(cms, "team", "dep", {"metadata": {"ownerReferences": [ref(owner)]}},
                      "merge")
    await store.wait_gc_idle()
    assert get(store, "configmaps", "team", "dep") is None
    assert len(gc_events(store)) == 1


async def test_the_event_is_found_as_the_docs_say(simulator: Any, api_client: Any) -> None:
    """``kubectl get events -A --field-selector=reason=OwnerRefInvalidNamespace``."""
    core = client.CoreV1Api(api_client)
    owner = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await core.create_namespaced_config_map("kube-public", cast(Any, {"metadata": {
        "name": "dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                            "name": "owner", "uid": owner.metadata.uid}]}}))
    await simulator.store.wait_gc_idle()
    events = await core.list_event_for_all_namespaces(
        field_selector="reason=OwnerRefInvalidNamespace")
    assert [(e.metadata.namespace, e.involved_object.name) for e in events.items] == [
        ("kube-public", "dep")]
    assert (await core.list_namespaced_config_map(
        "kube-public", field_selector="metadata.name=dep")).items == []


@pytest.mark.parametrize(
    ("dependent_ns", "kind_namespaced", "live_ns", "expected"),
    [
        ("team", None, None, Verdict(OwnerState.UNRESOLVABLE)),  # kind not served
        ("team", True, None, Verdict(OwnerState.ABSENT)),
        ("team", True, "team", Verdict(OwnerState.SOLID)),
        ("team", True, "other", Verdict(OwnerState.ABSENT, invalid_namespace=True)),
        ("team", False, "", Verdict(OwnerState.SOLID)),
        ("team", False, None, Verdict(OwnerState.ABSENT)),
        ("", False, "", Verdict(OwnerState.SOLID)),
        ("", False, None, Verdict(OwnerState.ABSENT)),
        ("", True, "team", Verdict(OwnerState.UNRESOLVABLE, invalid_namespace=True)),
        ("", True, None, Verdict(OwnerState.UNRESOLVABLE, invalid_namespace=True)),
    ],
)
def test_classification(dependent_ns: str, kind_namespaced: bool | None, live_ns: str | None,
                        expected: Verdict) -> None:
    assert classify(dependent_ns, kind_namespaced, live_ns) == expected
