"""The reflector's store: trimming, waits woken by changes, the bounded event index."""

import asyncio
import gc
import json
import tracemalloc

import pytest

from async_kubespawner.kube.cache import EventIndex, ObjectCache, trim_event, trim_pod


def big_pod(name: str = "jupyter-alice", *, rv: str = "1", phase: str = "Pending") -> dict:
    """A pod as a real API server returns it: managedFields, a long env with a token."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {
                "app": "jupyterhub",
                "app.kubernetes.io/component": "singleuser-server",
                "app.kubernetes.io/instance": "jhub",
                "app.kubernetes.io/managed-by": "kubespawner",
                "app.kubernetes.io/name": "jupyterhub",
                "chart": "jupyterhub-4.0.0",
                "component": "singleuser-server",
                "heritage": "jupyterhub",
                "hub.jupyter.org/network-access-hub": "true",
                "hub.jupyter.org/servername": "",
                "hub.jupyter.org/username": "alice",
                "release": "jhub",
            },
            "annotations": {
                "hub.jupyter.org/username": "alice",
                "kubectl.kubernetes.io/last-applied-configuration": "x" * 4000,
            },
            "managedFields": [{"manager": "hub", "fieldsV1": {"f:spec": {"x": "y" * 3000}}}],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyterhub/singleuser:5",
                    "env": [{"name": "JUPYTERHUB_API_TOKEN", "value": "secret-token"}]
                    + [{"name": f"VAR_{i}", "value": "v" * 100} for i in range(40)],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
                }
            ],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
        },
        "status": {
            "phase": phase,
            "podIP": "10.0.0.7",
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "lastProbeTime": None,
                }
                for t in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ],
            "containerStatuses": [
                {
                    "name": "notebook",
                    "ready": True,
                    "restartCount": 0,
                    "image": "quay.io/jupyterhub/singleuser:5",
                    "imageID": "sha256:" + "a" * 64,
                    "containerID": "containerd://" + "b" * 64,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                }
            ],
        },
    }


def test_trim_pod_keeps_what_the_spawner_reads_and_drops_secrets():
    pod = trim_pod(big_pod(phase="Running"))
    assert pod["metadata"]["uid"] == "uid-jupyter-alice"
    assert pod["metadata"]["labels"]["hub.jupyter.org/username"] == "alice"
    assert "managedFields" not in pod["metadata"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in pod["metadata"]["annotations"]
    assert pod["spec"]["containers"] == [
        {"name": "notebook", "ports": [{"name": "notebook-port", "containerPort": 8888}]}
    ]
    assert pod["status"]["podIP"] == "10.0.0.7"
    assert pod["status"]["containerStatuses"][0]["state"] == {"running": {}}
    assert "conditions" not in pod["status"]  # all met: nothing to explain
    assert "secret-token" not in json.dumps(pod)


def test_cached_pod_heap_is_under_3kb():
    """The memory target is <= 3 KB of heap per cached pod; measured as the hub would hold them
    (each pod parsed from its own watch line, then trimmed)."""
    raw = [json.dumps(big_pod(f"jupyter-user{i}", phase="Running")) for i in range(1000)]
    assert len(raw[0]) > 10_000
    cache = ObjectCache(trim_pod)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for line in raw:
            cache.upsert(json.loads(line))
        per_pod = (tracemalloc.get_traced_memory()[0] - before) / len(raw)
    finally:
        tracemalloc.stop()
    assert len(cache) == 1000
    assert per_pod < 3_000, per_pod


async def test_wait_for_returns_at_once_when_predicate_already_holds():
    cache = ObjectCache(trim_pod)
    cache.upsert(big_pod(phase="Running"))
    pod = await cache.wait_for(
        ("ns", "jupyter-alice"), lambda p: p and p["status"]["phase"] == "Running", 0
    )
    assert pod["metadata"]["name"] == "jupyter-alice"


async def test_wait_for_is_woken_by_the_matching_change():
    cache = ObjectCache(trim_pod)
    cache.upsert(big_pod(phase="Pending"))
    key = ("ns", "jupyter-alice")
    waiter = asyncio.create_task(
        cache.wait_for(key, lambda p: p is not None and p["status"]["phase"] == "Running", 5)
    )
    await asyncio.sleep(0)
    cache.upsert(big_pod(rv="2", phase="Pending"))
    await asyncio.sleep(0)
    assert not waiter.done()
    cache.upsert(big_pod(rv="3", phase="Running"))
    pod = await waiter
    assert pod["metadata"]["resourceVersion"] == "3"
    assert cache._waiters == {}


async def test_wait_for_gone_and_timeout():
    cache = ObjectCache(trim_pod)
    cache.upsert(big_pod())
    key = ("ns", "jupyter-alice")
    with pytest.raises(TimeoutError):
        await cache.wait_for(key, lambda p: p is None, 0.01)
    assert cache._waiters == {}
    gone = asyncio.create_task(cache.wait_for(key, lambda p: p is None, 5))
    await asyncio.sleep(0)
    cache.remove(big_pod())
    assert await gone is None


async def test_predicate_error_reaches_the_waiter():
    cache = ObjectCache(trim_pod)
    key = ("ns", "jupyter-alice")

    def predicate(p):
        if p is not None:
            raise ValueError("bad predicate")
        return False

    waiter = asyncio.create_task(cache.wait_for(key, predicate, 5))
    await asyncio.sleep(0)
    cache.upsert(big_pod())
    with pytest.raises(ValueError, match="bad predicate"):
        await waiter


async def test_replace_all_reports_deletions_and_changes_only():
    cache = ObjectCache(trim_pod)
    cache.upsert(big_pod("a"))
    cache.upsert(big_pod("b"))
    seen = []
    cache.listen(("ns", "a"), lambda p: seen.append(("a", p and p["metadata"]["resourceVersion"])))
    cache.listen(("ns", "b"), lambda p: seen.append(("b", p)))
    cache.listen(("ns", "c"), lambda p: seen.append(("c", p["metadata"]["name"])))
    cache.replace_all([big_pod("a", rv="1"), big_pod("c")])
    await cache.listeners_idle()
    assert sorted(seen, key=str) == sorted([("b", None), ("c", "c")], key=str)
    assert cache.get(("ns", "b")) is None
    assert len(cache) == 2


def event(uid: str, pod: str = "jupyter-alice", pod_uid: str = "uid-1", rv: str = "1", **kw):
    return {
        "metadata": {"name": f"{pod}.{uid}", "namespace": "ns", "uid": uid, "resourceVersion": rv},
        "involvedObject": {
            "kind": kw.pop("kind", "Pod"),
            "name": pod,
            "namespace": "ns",
            "uid": pod_uid,
        },
        "reason": kw.pop("reason", "Scheduled"),
        "message": kw.pop("message", "Successfully assigned"),
        "type": "Normal",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        **kw,
    }


def test_event_index_by_object_and_uid():
    index = EventIndex()
    index.upsert(event("e1", pod_uid="old"))
    index.upsert(event("e2", pod_uid="new"))
    index.upsert(event("e3", pod="jupyter-bob"))
    index.upsert(event("e4", kind="ReplicaSet"))  # not a kind the spawner reads
    assert [e["metadata"]["uid"] for e in index.for_object("ns", "jupyter-alice")] == ["e1", "e2"]
    assert [e["metadata"]["uid"] for e in index.for_object("ns", "jupyter-alice", uid="new")] == [
        "e2"
    ]
    assert len(index) == 3
    index.remove(event("e1"))
    assert len(index) == 2
    assert trim_event(event("x"))["involvedObject"]["uid"] == "uid-1"


def test_event_index_bounds():
    index = EventIndex(per_object_limit=3, total_limit=5)
    for i in range(5):
        index.upsert(event(f"a{i}", pod="a"))
    assert [e["metadata"]["uid"] for e in index.for_object("ns", "a")] == ["a2", "a3", "a4"]
    for i in range(3):
        index.upsert(event(f"b{i}", pod="b"))
    assert len(index) == 5
    assert [e["metadata"]["uid"] for e in index.for_object("ns", "a")] == ["a3", "a4"]
    assert len(index.for_object("ns", "b")) == 3


def test_event_listeners_hear_new_and_changed_events_once():
    index = EventIndex()
    heard = []
    unsubscribe = index.listen("ns", "jupyter-alice", lambda e: heard.append(e["metadata"]["uid"]))
    index.upsert(event("e1"))
    index.upsert(event("e1"))  # same resourceVersion: a relist repeating it
    index.upsert(event("e1", rv="2", count=2))
    index.replace_all([event("e1", rv="2", count=2), event("e2")])
    assert heard == ["e1", "e1", "e2"]
    unsubscribe()
    index.upsert(event("e3"))
    assert heard == ["e1", "e1", "e2"]


def test_unsubscribing_leaves_no_entry_behind_and_is_idempotent():
    """A spawn subscribes for its pod and events and unsubscribes when it ends: thousands
    of finished spawns must not leave a listener list each."""
    cache, index = ObjectCache(trim_pod), EventIndex()
    heard = []
    offs = [
        cache.listen(("ns", "a"), lambda p: heard.append(("first", p))),
        cache.listen(("ns", "a"), lambda p: heard.append(("second", p))),
        index.listen("ns", "jupyter-alice", lambda e: heard.append(("event", e))),
    ]
    offs[0]()
    offs[0]()  # a second call removes nothing more
    cache.upsert(big_pod("a"))
    assert [who for who, _ in heard] == ["second"]  # the other listener of the key hears
    for off in offs:
        off()
    cache.upsert(big_pod("a", rv="9"))
    index.upsert(event("e1"))
    assert len(heard) == 1
    assert cache._listeners == {} and index._listeners == {}


def test_kept_events_add_nothing_for_the_garbage_collector_to_walk():
    """20,000 kept events as dicts were 60,000 more objects in every full collection."""
    index = EventIndex(per_object_limit=5000)
    arriving = [event(f"e{i}") for i in range(1000)]
    gc.collect()
    before = len(gc.get_objects())
    for e in arriving:
        index.upsert(e)
    gc.collect()  # untracks tuples that hold only strings and bytes
    assert len(gc.get_objects()) - before < 50
    assert len(index.for_object("ns", "jupyter-alice")) == 1000


def test_event_reads_are_copies():
    index = EventIndex()
    index.upsert(event("e1"))
    index.for_object("ns", "jupyter-alice")[0]["message"] = "changed by a reader"
    assert index.for_object("ns", "jupyter-alice")[0]["message"] != "changed by a reader"
