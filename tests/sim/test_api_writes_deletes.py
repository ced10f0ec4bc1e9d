"""Writes and deletes as a real server answers them: preconditions, graceful pod
deletion without a kubelet, PVC immutability, orphan GC, namespace controller output."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from .support import call

NS = "/api/v1/namespaces/default"


def conflict(plural: str, name: str, detail: str) -> dict[str, Any]:
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Operation cannot be fulfilled on {plural} "{name}": {detail}',
        "reason": "Conflict", "details": {"name": name, "kind": plural}, "code": 409,
    }


async def test_put_with_another_uid_is_a_precondition_conflict(simulator):
    _, cm = await call(simulator, "POST", NS + "/configmaps", {"metadata": {"name": "u"}})
    real_uid = cm["metadata"]["uid"]
    cm["metadata"]["uid"] = "0b9a5c1e-0000-4000-8000-000000000000"
    status, body = await call(simulator, "PUT", NS + "/configmaps/u", cm)
    assert status == 409
    assert body == conflict("configmaps", "u", "Precondition failed: UID in precondition: "
                            f"0b9a5c1e-0000-4000-8000-000000000000, UID in object meta: {real_uid}")
    cm["metadata"]["uid"] = real_uid
    cm["metadata"]["resourceVersion"] = "not-a-number"
    status, body = await call(simulator, "PUT", NS + "/configmaps/u", cm)
    assert status == 409
    assert body == conflict("configmaps", "u", "the object has been modified; please apply your "
                            "changes to the latest version and try again")


async def test_delete_precondition_failure_names_the_plural(simulator):
    await call(simulator, "POST", NS + "/configmaps", {"metadata": {"name": "d"}})
    status, body = await call(simulator, "DELETE", NS + "/configmaps/d",
                              {"preconditions": {"resourceVersion": "1"}})
    assert status == 409
    assert body["details"] == {"name": "d", "kind": "configmaps"}
    assert body["message"].startswith(
        'Operation cannot be fulfilled on configmaps "d": Precondition failed: '
        "ResourceVersion in precondition: 1, ResourceVersion in object meta: "
    )


async def test_graceful_deletion_of_a_bound_pod_without_a_kubelet(simulator):
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "node-1",
                                                "containers": [{"name": "m", "image": "x"}]}}
    await call(simulator, "POST", NS + "/pods", pod)
    status, first = await call(simulator, "DELETE", NS + "/pods/p", {"gracePeriodSeconds": 10})
    assert status == 200
    assert first["metadata"]["deletionGracePeriodSeconds"] == 10
    # still there, terminating: nobody (no kubelet) finishes the deletion
    await simulator.store.wait_gc_idle()
    status, still = await call(simulator, "GET", NS + "/pods/p")
    assert status == 200 and still["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    # a longer grace period is answered 200 and changes nothing
    status, again = await call(simulator, "DELETE", NS + "/pods/p", {"gracePeriodSeconds": 60})
    assert status == 200
    assert again["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    assert again["metadata"]["deletionGracePeriodSeconds"] == 10
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    # grace 0 removes it at once
    status, gone = await call(simulator, "DELETE", NS + "/pods/p", {"gracePeriodSeconds": 0})
    assert status == 200 and gone["metadata"]["deletionGracePeriodSeconds"] == 0
    status, _ = await call(simulator, "GET", NS + "/pods/p")
    assert status == 404


async def test_deletecollection_of_bound_pods_is_graceful(simulator):
    for name in ("a", "b"):
        await call(simulator, "POST", NS + "/pods", {
            "metadata": {"name": name, "labels": {"app": "x"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "m", "image": "x"}]}})
    status, listed = await call(simulator, "DELETE", NS + "/pods?labelSelector=app%3Dx")
    assert status == 200
    assert [(p["metadata"]["name"], p["metadata"]["deletionGracePeriodSeconds"]) for p in listed["items"]] == [
        ("a", 30), ("b", 30)]
    status, left = await call(simulator, "GET", NS + "/pods")
    assert len(left["items"]) == 2


async def test_pvc_spec_is_immutable_while_pending(simulator):
    claim = {"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                  "resources": {"requests": {"storage": "1Gi"}}}}
    _, created = await call(simulator, "POST", NS + "/persistentvolumeclaims", claim)
    created["spec"]["resources"]["requests"]["storage"] = "2Gi"
    status, body = await call(simulator, "PUT", NS + "/persistentvolumeclaims/c", created)
    assert status == 422
    assert body["details"]["causes"] == [{
        "reason": "FieldValueForbidden",
        "message": "Forbidden: spec is immutable after creation except resources.requests and "
                   "volumeAttributesClassName for bound claims",
        "field": "spec"}]


async def test_dependents_of_owners_that_never_existed_are_collected(simulator):
    owner_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
                 "uid": "6f1c3c1e-0000-4000-8000-000000000000"}
    status, _ = await call(simulator, "POST", NS + "/secrets",
                           {"metadata": {"name": "orphan", "ownerReferences": [owner_ref]}})
    assert status == 201
    _, owner = await call(simulator, "POST", NS + "/configmaps", {"metadata": {"name": "real"}})
    live_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "real", "uid": owner["metadata"]["uid"]}
    await call(simulator, "POST", NS + "/secrets", {"metadata": {"name": "kept", "ownerReferences": [live_ref]}})
    await simulator.store.wait_gc_idle()
    status, _ = await call(simulator, "GET", NS + "/secrets/orphan")
    assert status == 404
    status, _ = await call(simulator, "GET", NS + "/secrets/kept")
    assert status == 200


async def test_every_namespace_gets_the_root_ca_configmap(simulator):
    await call(simulator, "POST", "/api/v1/namespaces", {"metadata": {"name": "fresh"}})
    status, cm = await call(simulator, "GET", "/api/v1/namespaces/fresh/configmaps/kube-root-ca.crt")
    assert status == 200
    assert cm["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----\n")
    assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver")
    assert [e["manager"] for e in cm["metadata"]["managedFields"]] == ["kube-controller-manager"]
    status, _ = await call(simulator, "GET", NS + "/configmaps/kube-root-ca.crt")
    assert status == 200


async def test_terminating_namespace_reports_the_controller_conditions(simulator):
    await call(simulator, "POST", "/api/v1/namespaces", {"metadata": {"name": "going"}})
    await call(simulator, "POST", "/api/v1/namespaces/going/pods", {
        "metadata": {"name": "p"}, "spec": {"nodeName": "node-1", "containers": [{"name": "m", "image": "x"}]}})
    await call(simulator, "POST", "/api/v1/namespaces/going/configmaps",
               {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    status, _ = await call(simulator, "DELETE", "/api/v1/namespaces/going")
    assert status == 200
    await simulator.store.wait_gc_idle()
    _, ns = await call(simulator, "GET", "/api/v1/namespaces/going")
    assert ns["status"]["phase"] == "Terminating"
    summary = [(c["type"], c["status"], c["reason"], c["message"]) for c in ns["status"]["conditions"]]
    assert summary == [
        ("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
         "All resources successfully discovered"),
        ("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
         "All legacy kube types successfully parsed"),
        ("NamespaceDeletionContentFailure", "False", "ContentDeleted",
         "All content successfully deleted, may be waiting on finalization"),
        ("NamespaceContentRemaining", "True", "SomeResourcesRemain",
         "Some resources are remaining: configmaps has 1 resource instances, pods has 1 resource instances"),
        ("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
         "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"),
    ]
    # once the content is gone, so is the namespace: watched from here until DELETED
    _, namespaces = await call(simulator, "GET", "/api/v1/namespaces")
    since = namespaces["metadata"]["resourceVersion"]
    await call(simulator, "DELETE", "/api/v1/namespaces/going/pods/p", {"gracePeriodSeconds": 0})
    await call(simulator, "PATCH", "/api/v1/namespaces/going/configmaps/held", None)
    async with aiohttp.ClientSession() as http:
        async with http.patch(
            simulator.url + "/api/v1/namespaces/going/configmaps/held",
            data=json.dumps({"metadata": {"finalizers": None}}),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as resp:
            assert resp.status == 200
        watch = (
            f"{simulator.url}/api/v1/namespaces?watch=1&resourceVersion={since}"
            "&fieldSelector=metadata.name%3Dgoing&timeoutSeconds=20"
        )
        async with http.get(watch) as stream:
            kinds = []
            async for line in stream.content:
                kinds.append(json.loads(line)["type"])
                if kinds[-1] == "DELETED":
                    break
    assert kinds[-1] == "DELETED"
    status, _ = await call(simulator, "GET", "/api/v1/namespaces/going")
    assert status == 404
