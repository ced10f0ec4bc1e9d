"""Scheduling through the API: capacity, taints, node selectors, gates, PVCs, retries on change."""

from kubernetes_asyncio import client
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.nodes import NodePoolSpec, Taint
from kubesim.cluster.pvc import PersistentVolumeSpec, StorageClassSpec

from .podwatch import condition, create_and_follow, follow, pod_events, pod_manifest, wait_for_event


def scheduled(_t, pod):
    return condition(pod, "PodScheduled") == "True"


def unschedulable(_t, pod):
    return any(c.reason == "Unschedulable" for c in pod.status.conditions or [])


async def api(cluster_factory, **config):
    sim = await cluster_factory(ClusterConfig.fast(**config))
    api_client = sim.api_client()
    return client.CoreV1Api(api_client), api_client


async def test_insufficient_cpu_then_capacity_freed(cluster_factory):
    core, api_client = await api(cluster_factory, nodes=[NodePoolSpec(count=3, cpu="2")])
    try:
        for i in range(3):
            await create_and_follow(core, pod_manifest(f"big-{i}", cpu="1500m"), scheduled)
        seen = await create_and_follow(core, pod_manifest("late", cpu="1500m"), unschedulable)
        message = (
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
            "available: 3 No preemption victims found for incoming pod."
        )
        cond = next(c for c in seen[-1][1].status.conditions if c.type == "PodScheduled")
        assert (cond.status, cond.reason, cond.message) == ("False", "Unschedulable", message)
        failed = await wait_for_event(core, "late", "FailedScheduling")
        assert (failed.type, failed.message) == ("Warning", message)
        assert failed.reporting_component == "default-scheduler"
        # freeing one node's cpu lets the waiting pod in, without anyone poking the scheduler
        before = (await core.list_namespaced_pod("default")).metadata.resource_version
        victim = await core.read_namespaced_pod("big-1", "default")
        await core.delete_namespaced_pod("big-1", "default")
        seen = await follow(core, "late", scheduled, resource_version=before)
        assert seen[-1][1].spec.node_name == victim.spec.node_name
        assert [e.reason for e in await pod_events(core, "late")][:2] == [
            "FailedScheduling",
            "Scheduled",
        ]
    finally:
        await api_client.close()


async def test_taints_and_node_selector(cluster_factory):
    core, api_client = await api(
        cluster_factory,
        nodes=[
            NodePoolSpec(count=2, name_prefix="user", labels={"pool": "user"}),
            NodePoolSpec(
                count=1,
                name_prefix="gpu",
                labels={"pool": "gpu"},
                extended={"nvidia.com/gpu": "1"},
                taints=[Taint.parse("nvidia.com/gpu=present:NoSchedule")],
            ),
        ],
    )
    try:
        seen = await create_and_follow(
            core, pod_manifest("wants-gpu-pool", nodeSelector={"pool": "gpu"}), unschedulable
        )
        message = next(c.message for c in seen[-1][1].status.conditions if c.type == "PodScheduled")
        assert message == (
            "0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, "
            "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are "
            "available: 3 Preemption is not helpful for scheduling."
        )
        tolerating = pod_manifest(
            "gpu-user",
            nodeSelector={"pool": "gpu"},
            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        )
        tolerating["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
        seen = await create_and_follow(core, tolerating, scheduled)
        assert seen[-1][1].spec.node_name == "gpu"
        affinity = pod_manifest(
            "by-affinity",
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "pool", "operator": "NotIn", "values": ["gpu"]}
                                ]
                            }
                        ]
                    }
                }
            },
        )
        seen = await create_and_follow(core, affinity, scheduled)
        assert seen[-1][1].spec.node_name.startswith("user-")
    finally:
        await api_client.close()


async def test_scheduling_gate_holds_until_removed(core: client.CoreV1Api):
    manifest = pod_manifest("gated", schedulingGates=[{"name": "example.com/hold"}])
    seen = await create_and_follow(
        core,
        manifest,
        lambda _t, p: any(c.reason == "SchedulingGated" for c in p.status.conditions or []),
    )
    assert seen[-1][1].spec.node_name is None
    before = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.patch_namespaced_pod(
        "gated", "default", [{"op": "remove", "path": "/spec/schedulingGates"}]
    )
    seen = await follow(core, "gated", scheduled, resource_version=before)
    assert seen[-1][1].spec.node_name


async def test_unschedulable_scenario(core: client.CoreV1Api):
    seen = await create_and_follow(
        core, pod_manifest("never", scenario="unschedulable"), unschedulable
    )
    assert seen[-1][1].status.phase == "Pending"
    event = await wait_for_event(core, "never", "FailedScheduling")
    assert event.message.startswith("0/3 nodes are available: 3 Insufficient cpu.")


def pvc_manifest(name, storage_class=None):
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    if storage_class is not None:
        body["spec"]["storageClassName"] = storage_class
    return body


async def test_pvc_binds_and_pod_waits_for_it(cluster_factory):
    core, api_client = await api(
        cluster_factory,
        storage_classes=[StorageClassSpec(name="standard", default=True, bind_delay=5)],
    )
    try:
        manifest = pod_manifest(
            "with-home",
            volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
        )
        seen = await create_and_follow(core, manifest, unschedulable)
        message = next(c.message for c in seen[-1][1].status.conditions if c.type == "PodScheduled")
        assert message == (
            '0/3 nodes are available: persistentvolumeclaim "claim-alice" not found. '
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful "
            "for scheduling."
        )
        await core.create_namespaced_persistent_volume_claim("default", pvc_manifest("claim-alice"))
        seen = await follow(core, "with-home", scheduled)
        pvc = await core.read_namespaced_persistent_volume_claim("claim-alice", "default")
        assert pvc.status.phase == "Bound" and pvc.spec.volume_name == f"pvc-{pvc.metadata.uid}"
        assert pvc.status.capacity == {"storage": "1Gi"}
        assert pvc.metadata.annotations["pv.kubernetes.io/bind-completed"] == "yes"
        reasons = [e.reason for e in await pod_events(core, "claim-alice")]
        assert reasons == ["ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"]
        pod_reasons = [
            e.message for e in await pod_events(core, "with-home") if e.reason == "FailedScheduling"
        ]
        assert any("pod has unbound immediate PersistentVolumeClaims" in m for m in pod_reasons)
    finally:
        await api_client.close()


async def test_pvc_failures(cluster_factory):
    core, api_client = await api(
        cluster_factory,
        storage_classes=[],
        persistent_volumes=[PersistentVolumeSpec(name="pv-small", capacity="500Mi")],
    )
    try:
        await core.create_namespaced_persistent_volume_claim(
            "default", pvc_manifest("missing-class", "fast-ssd")
        )
        event = await wait_for_event(core, "missing-class", "ProvisioningFailed")
        assert (event.type, event.message) == (
            "Warning",
            'storageclass.storage.k8s.io "fast-ssd" not found',
        )
        await core.create_namespaced_persistent_volume_claim("default", pvc_manifest("no-class"))
        event = await wait_for_event(core, "no-class", "FailedBinding")
        assert (
            event.message
            == "no persistent volumes available for this claim and no storage class is set"
        )
        pvc = await core.read_namespaced_persistent_volume_claim("no-class", "default")
        assert pvc.status.phase == "Pending"
        # a claim the static volume can hold binds to it
        small = pvc_manifest("small", "")
        small["spec"]["resources"]["requests"]["storage"] = "100Mi"
        await core.create_namespaced_persistent_volume_claim("default", small)
        pod = pod_manifest(
            "uses-small", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "small"}}]
        )
        await create_and_follow(core, pod, scheduled)
        pvc = await core.read_namespaced_persistent_volume_claim("small", "default")
        assert (pvc.status.phase, pvc.spec.volume_name) == ("Bound", "pv-small")
    finally:
        await api_client.close()


async def test_cordon_and_taint_edits_on_nodes_are_followed(cluster_factory):
    core, api_client = await api(cluster_factory, nodes=[NodePoolSpec(count=1, name_prefix="only")])
    try:
        await core.patch_node("only", {"spec": {"unschedulable": True}})  # kubectl cordon
        seen = await create_and_follow(core, pod_manifest("waits"), unschedulable)
        message = next(c.message for c in seen[-1][1].status.conditions if c.type == "PodScheduled")
        assert message.startswith("0/1 nodes are available: 1 node(s) were unschedulable.")
        before = (await core.list_namespaced_pod("default")).metadata.resource_version
        await core.patch_node("only", {"spec": {"unschedulable": False}})  # kubectl uncordon
        seen = await follow(core, "waits", scheduled, resource_version=before)
        assert seen[-1][1].spec.node_name == "only"
    finally:
        await api_client.close()


async def test_wait_for_first_consumer_provisions_on_the_chosen_node(cluster_factory):
    core, api_client = await api(
        cluster_factory,
        storage_classes=[
            StorageClassSpec(name="cloud", default=True, volume_binding_mode="WaitForFirstConsumer")
        ],
    )
    try:
        await core.create_namespaced_persistent_volume_claim("default", pvc_manifest("home-bob"))
        waiting = await wait_for_event(core, "home-bob", "WaitForFirstConsumer")
        assert waiting.message == "waiting for first consumer to be created before binding"
        pvc = await core.read_namespaced_persistent_volume_claim("home-bob", "default")
        assert pvc.status.phase == "Pending"  # nobody uses it yet: nothing is provisioned
        manifest = pod_manifest(
            "bob", volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "home-bob"}}]
        )
        seen = await create_and_follow(core, manifest, scheduled)
        node = seen[-1][1].spec.node_name
        pvc = await core.read_namespaced_persistent_volume_claim("home-bob", "default")
        assert pvc.status.phase == "Bound"
        assert pvc.metadata.annotations["volume.kubernetes.io/selected-node"] == node
        # no FailedScheduling: the claim did not block scheduling, it delayed the binding
        assert "FailedScheduling" not in [e.reason for e in await pod_events(core, "bob")]
        assert [e.reason for e in await pod_events(core, "home-bob")] == [
            "WaitForFirstConsumer",
            "ExternalProvisioning",
            "Provisioning",
            "ProvisioningSucceeded",
        ]
    finally:
        await api_client.close()
