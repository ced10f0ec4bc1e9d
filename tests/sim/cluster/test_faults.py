"""The cluster keeps working when the API server drops every watch or "restarts".

The spawner's resilience tests script these faults on the simulator; the scheduler and
kubelet watch the same store, so they must resume (or relist) like an informer does.
"""

from typing import Any, cast

from kubernetes_asyncio import client

from .podwatch import create_and_follow, follow, pod_manifest, ready


async def test_closed_watches_and_restart_do_not_stop_the_cluster(
    cluster: Any, core: client.CoreV1Api
):
    await create_and_follow(core, pod_manifest("before"), ready)
    assert cluster.faults.close_watches() >= 3  # scheduler, kubelet, binder watches included
    await create_and_follow(core, pod_manifest("after-close"), ready)
    cluster.faults.restart()  # history compacted: the controllers' next watch gets 410 and relists
    seen = await create_and_follow(core, pod_manifest("after-restart"), ready)
    assert seen[-1][1].status.phase == "Running"
    # graceful deletion still goes through the kubelet
    before = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.delete_namespaced_pod("before", "default")
    gone = await follow(core, "before", lambda t, _p: t == "DELETED", resource_version=before)
    assert gone[-1][1].status.container_statuses[0].state.terminated.reason == "Completed"


async def test_namespace_deletion_with_a_running_pod_does_not_crash_the_kubelet(
    cluster: Any, core: client.CoreV1Api
):
    # Events for the dying pod are refused (403: the namespace is terminating); the
    # kubelet records events best effort, so the pod still terminates and the namespace goes.
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await core.create_namespace(cast(Any, {"metadata": {"name": "leaving"}}))
    await create_and_follow(core, pod_manifest("p"), ready, namespace="leaving")
    before = (await core.list_namespaced_pod("leaving")).metadata.resource_version
    await core.delete_namespace("leaving")
    gone = await follow(core, "p", lambda t, _p: t == "DELETED", "leaving", before)
    assert gone[-1][0] == "DELETED"
    # The kubelet survived: a pod elsewhere still starts.
    await create_and_follow(core, pod_manifest("after"), ready)
