"""start/stop/poll/progress/state against the simulator with a scripted kubelet."""

import asyncio

from async_kubespawner.kube.cache import ObjectCache
from async_kubespawner.kube.client import CREATE_ID_ANNOTATION

from .conftest import NAMESPACE, store_pods


async def pod_cache(spawner) -> ObjectCache:
    return (await spawner._pod_reflector()).sink


async def test_default_server_start_poll_stop(sim, make_spawner):
    spawner = make_spawner()
    url = await spawner.start()
    [pod] = store_pods(sim)
    assert pod["metadata"]["name"] == spawner.pod_name == "jupyter-alice"
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert pod["metadata"]["labels"]["component"] == "singleuser-server"
    assert await spawner.poll() is None
    await spawner.stop()
    assert store_pods(sim) == []
    assert await spawner.poll() == 1
    # stop is idempotent: the pod is already gone (404 is success)
    await spawner.stop()


async def test_named_server(sim, make_spawner):
    spawner = make_spawner("alice", "gpu")
    url = await spawner.start()
    [pod] = store_pods(sim)
    assert pod["metadata"]["name"] == spawner.pod_name
    assert "gpu" in spawner.pod_name
    assert pod["metadata"]["annotations"]["hub.jupyter.org/servername"] == "gpu"
    assert url.startswith("http://10.")
    await spawner.stop(now=True)
    assert store_pods(sim) == []


async def test_hub_restart_from_saved_state(sim, make_spawner):
    first = make_spawner()
    await first.start()
    state = first.get_state()
    assert state["pod_name"] == "jupyter-alice"
    # A new hub process: new spawner objects, loaded from the database's state.
    second = make_spawner()
    second.load_state(state)
    assert await second.poll() is None
    assert len(store_pods(sim)) == 1  # nothing was recreated
    await second.stop()
    assert store_pods(sim) == []
    assert await second.poll() == 1


async def test_poll_notices_a_pod_deleted_out_of_band(sim, make_spawner):
    spawner = make_spawner()
    await spawner.start()
    await sim.store.delete(
        sim.store.resource("pods"), NAMESPACE, spawner.pod_name, grace_period_seconds=0
    )
    cache = await pod_cache(spawner)
    await cache.wait_for(spawner._pod_key, lambda p: p is None, 10)
    assert await spawner.poll() == 1


async def test_poll_reports_the_exit_code_and_deletes_the_stopped_pod(sim, make_spawner, kubelet):
    spawner = make_spawner()
    await spawner.start()
    [pod] = store_pods(sim)
    await kubelet.status(
        pod,
        {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "notebook",
                    "ready": False,
                    "restartCount": 0,
                    "image": "x",
                    "imageID": "",
                    "state": {"terminated": {"exitCode": 4, "reason": "Error"}},
                }
            ],
        },
    )
    cache = await pod_cache(spawner)
    await cache.wait_for(
        spawner._pod_key, lambda p: p and not p["status"]["containerStatuses"][0]["ready"], 10
    )
    assert await spawner.poll() == 4
    assert store_pods(sim) == []


async def test_poll_before_the_first_list_never_says_stopped(sim, make_spawner):
    """Upstream could answer from a half-built reflector and orphan running pods."""
    spawner = make_spawner(first_list_timeout=0.2)
    await spawner.start()
    await spawner.stop()
    sim.faults.fail(503, verb="list", resource="pods")
    from async_kubespawner.kube.reflector import stop_reflectors

    await stop_reflectors()  # as in a fresh hub process whose API server is down
    restarted = make_spawner(first_list_timeout=0.2)
    assert await restarted.poll() is None  # unknown is "running", never "gone"
    sim.faults.clear()
    reflector = await restarted._pod_reflector()
    assert await reflector.wait_synced(10)
    assert await restarted.poll() == 1


async def test_progress_two_listeners_and_a_late_joiner(sim, make_spawner, kubelet):
    spawner = make_spawner()
    release = kubelet.hold("jupyter-alice")
    start = asyncio.ensure_future(spawner.start())

    async def listen():
        return [m async for m in spawner.progress()]

    # Listeners attach while the spawn is pending (even before start() ran a line).
    first = asyncio.create_task(listen())
    second = asyncio.create_task(listen())
    async for message in spawner.progress():  # a third listener, to sequence the test
        if "Successfully assigned default/jupyter-alice to node-1" in message["message"]:
            break
    spawner.progress_log.push("Hook says hello")
    release.set()
    await start
    late = await listen()
    a, b = await first, await second
    assert a == b == late
    texts = [m["message"] for m in a]
    assigned = next(i for i, t in enumerate(texts) if "Successfully assigned" in t)
    hook = next(i for i, t in enumerate(texts) if "Hook says hello" in t)
    assert assigned < hook
    progress = [m["progress"] for m in a]
    assert progress == sorted(progress) and progress[-1] < 100
    assert all("raw_event" in m for m in a if "Hook" not in m["message"])


async def test_progress_hides_events_of_an_earlier_pod_with_the_same_name(
    sim, make_spawner, kubelet
):
    spawner = make_spawner()
    await spawner.start()
    await spawner.stop()
    old_events = sim.store.list(sim.store.resource("events"), NAMESPACE)[0]
    assert old_events
    release = kubelet.hold(spawner.pod_name)
    start = asyncio.ensure_future(spawner.start())
    listener = spawner.progress()
    first = await anext(listener)  # woken by the new pod's first event
    release.set()
    await start
    messages = [first] + [m async for m in listener]
    uid = store_pods(sim)[0]["metadata"]["uid"]
    old_uids = {e["involvedObject"]["uid"] for e in old_events}
    assert uid not in old_uids
    assert all(m["raw_event"]["involvedObject"]["uid"] == uid for m in messages)
    await spawner.stop()


async def test_409_for_our_own_leftover_pod_replaces_it(sim, make_spawner):
    spawner = make_spawner()
    await spawner.start()
    old_uid = store_pods(sim)[0]["metadata"]["uid"]
    # The hub lost track of it (e.g. crashed before saving state): start again.
    again = make_spawner()
    await again.start()
    [pod] = store_pods(sim)
    assert pod["metadata"]["uid"] != old_uid
    await again.stop()


async def test_409_for_someone_elses_pod_fails_clearly(sim, make_spawner):
    from async_kubespawner.spawner import SpawnFailed

    await sim.store.create(
        sim.store.resource("pods"),
        NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "jupyter-alice",
                "annotations": {"hub.jupyter.org/username": "mallory"},
                "labels": {"app": "other"},
            },
            "spec": {"containers": [{"name": "x", "image": "busybox"}]},
        },
    )
    spawner = make_spawner()
    try:
        await spawner.start()
        raise AssertionError("start() should have failed")
    except SpawnFailed as e:
        # The user is told the name is taken, never by whom.
        assert "already exists" in str(e) and "mallory" not in str(e)
    [pod] = store_pods(sim)
    assert pod["metadata"]["annotations"]["hub.jupyter.org/username"] == "mallory"


async def test_create_carries_a_create_id_and_no_secret_in_logs(sim, make_spawner, caplog):
    spawner = make_spawner()
    with caplog.at_level("DEBUG"):
        await spawner.start()
    [pod] = store_pods(sim)
    assert CREATE_ID_ANNOTATION in pod["metadata"]["annotations"]
    assert "token-of-alice" not in caplog.text
    assert "state=ready" in caplog.text and "state=created" in caplog.text
    await spawner.stop()


async def test_delete_forever_follows_upstream_pvc_rules(sim, make_spawner):
    pvcs = sim.store.resource("persistentvolumeclaims")

    async def make_pvc(name, server=None):
        """A claim as upstream KubeSpawner makes it: owner annotations with raw names."""
        annotations = {"hub.jupyter.org/username": "alice"}
        if server:
            annotations["hub.jupyter.org/servername"] = server
        await sim.store.create(
            pvcs,
            NAMESPACE,
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "annotations": annotations},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )

    def names():
        """PVCs not being deleted (the pvc-protection finalizer keeps deleted ones around
        until a controller releases them)."""
        return sorted(
            p["metadata"]["name"]
            for p in sim.store.list(pvcs, NAMESPACE)[0]
            if not p["metadata"].get("deletionTimestamp")
        )

    await make_pvc("claim-alice")
    await make_pvc("shared-home")
    await make_pvc("claim-alice--gpu", "gpu")
    # A named server whose PVC name does not mention the server shares the default's PVC.
    await make_spawner("alice", "gpu", pvc_name_template="claim-{username}").delete_forever()
    # A PVC name without the user is shared by everyone.
    await make_spawner("alice", pvc_name_template="shared-home").delete_forever()
    # delete_pvc off
    await make_spawner("alice", delete_pvc=False).delete_forever()
    assert names() == ["claim-alice", "claim-alice--gpu", "shared-home"]
    await make_spawner("alice", "gpu").delete_forever()
    await make_spawner("alice").delete_forever()
    assert names() == ["shared-home"]


async def test_start_does_not_wait_for_a_slow_create_response(sim, make_spawner):
    """The watch shows the new pod (with our create id) before the create response
    arrives: progress and readiness proceed from the watch."""
    spawner = make_spawner()
    api = await spawner._get_api()
    never = asyncio.Event()
    real_create = api.create
    responses_held = []

    async def create_with_lost_response(rk, namespace, body, **kw):
        result = await real_create(rk, namespace, body, **kw)
        if rk.plural == "pods":
            responses_held.append(result)
            await never.wait()  # the response never comes back
        return result

    api.create = create_with_lost_response
    try:
        url = await spawner.start()
    finally:
        api.create = real_create
    [pod] = store_pods(sim)
    assert responses_held and responses_held[0]["metadata"]["uid"] == pod["metadata"]["uid"]
    assert url == f"http://{pod['status']['podIP']}:8888"
    messages = [m async for m in spawner.progress()]
    assert all(m["raw_event"]["involvedObject"]["uid"] == pod["metadata"]["uid"] for m in messages)
    await spawner.stop()
