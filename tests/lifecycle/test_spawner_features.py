"""start() with the optional pieces: user namespaces, PVCs, Services, Secrets, hooks, URLs."""

from async_kubespawner.kube.reflector import reflectors


def objects(sim, plural: str, namespace: str) -> list[dict]:
    return sim.store.list(sim.store.resource(plural), namespace)[0]


async def test_user_namespaces_are_created_once_and_watched_cluster_wide(sim, make_spawner):
    alice = make_spawner(
        "alice", enable_user_namespaces=True, user_namespace_labels={"owner": "{username}"}
    )
    await alice.start()
    namespace = alice.namespace
    assert namespace != "default"
    [ns] = [n for n in objects(sim, "namespaces", None) if n["metadata"]["name"] == namespace]
    assert ns["metadata"]["labels"]["owner"] == "alice"
    assert [p["metadata"]["name"] for p in objects(sim, "pods", namespace)] == [alice.pod_name]
    gpu = make_spawner("alice", "gpu", enable_user_namespaces=True)
    await gpu.start()  # same namespace: no second create
    assert sim.counters.count("create", "namespaces") == 1
    pod_reflectors = [r for r in reflectors() if r.kind.plural == "pods"]
    assert [r.namespace for r in pod_reflectors] == [None]  # one cluster-wide reflector
    assert await alice.poll() is None and await gpu.poll() is None
    await alice.stop()
    await gpu.stop()
    assert objects(sim, "pods", namespace) == []


async def test_per_namespace_reflectors_when_cluster_wide_is_off(sim, make_spawner):
    spawner = make_spawner("alice", enable_user_namespaces=True, reflector_cluster_wide=False)
    await spawner.start()
    assert {r.namespace for r in reflectors()} == {spawner.namespace}
    await spawner.stop()


async def test_pvc_is_ensured_and_remembered(sim, make_spawner):
    spawner = make_spawner(storage_pvc_ensure=True, storage_capacity="1Gi")
    await spawner.start()
    [pvc] = objects(sim, "persistentvolumeclaims", "default")
    assert pvc["metadata"]["name"] == "claim-alice"
    state = spawner.get_state()
    assert state["pvc_name"] == "claim-alice"
    await spawner.stop()
    # A later start (new hub process, the template changed meanwhile) reuses the PVC.
    again = make_spawner(
        storage_pvc_ensure=True, storage_capacity="1Gi", pvc_name_template="home-{username}"
    )
    again.load_state(state)
    await again.start()
    assert [p["metadata"]["name"] for p in objects(sim, "persistentvolumeclaims", "default")] == [
        "claim-alice"
    ]
    await again.stop()


async def test_service_and_secret_are_owned_by_the_pod_and_the_url_uses_dns(sim, make_spawner):
    spawner = make_spawner(services_enabled=True, api_token_in_secret=True)
    url = await spawner.start()
    [pod] = objects(sim, "pods", "default")
    uid = pod["metadata"]["uid"]
    [service] = objects(sim, "services", "default")
    assert service["metadata"]["ownerReferences"][0]["uid"] == uid
    secrets = [
        s
        for s in objects(sim, "secrets", "default")
        if s["metadata"]["name"] == spawner.secret_name
    ]
    assert secrets and secrets[0]["metadata"]["ownerReferences"][0]["uid"] == uid
    assert url == f"http://{spawner.dns_name}:8888"
    await spawner.stop()
    assert objects(sim, "services", "default") == []


async def test_hooks_and_pod_connect_ip(sim, make_spawner):
    seen = {}

    async def after_created(spawner, pod):
        seen["uid"] = pod["metadata"]["uid"]
        spawner.progress_log.push("hook ran")

    spawner = make_spawner(
        after_pod_created_hook=after_created, pod_connect_ip="{username}.pods.example"
    )
    url = await spawner.start()
    assert seen["uid"] == objects(sim, "pods", "default")[0]["metadata"]["uid"]
    assert url == "http://alice.pods.example:8888"
    assert any("hook ran" in m["message"] for m in spawner.progress_log.messages)
    await spawner.stop()
    custom = make_spawner(
        "bob", get_pod_url=lambda s, pod: f"http://custom/{pod['status']['podIP']}"
    )
    url = await custom.start()
    assert url.startswith("http://custom/10.")
    await custom.stop()


async def test_url_port_is_the_pods_notebook_port(sim, make_spawner):
    def move_port(spawner, pod):
        pod.spec.containers[0].ports[0].container_port = 9999
        return pod

    spawner = make_spawner(modify_pod_hook=move_port)
    url = await spawner.start()
    [pod] = objects(sim, "pods", "default")
    assert url == f"http://{pod['status']['podIP']}:9999"
    await spawner.stop()


async def _make_pvc(sim, name: str, owner: str = "al.ice") -> None:
    """A claim as KubeSpawner (any version since 0.8) made it: its owner annotation holds
    the raw user name, which is how a later hub recognises the user's claim."""
    await sim.store.create(
        sim.store.resource("persistentvolumeclaims"),
        "default",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "annotations": {"hub.jupyter.org/username": owner}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )


async def test_pre7_state_adopts_the_legacy_pvc_name(sim, make_spawner):
    # A pre-7 KubeSpawner wrote no kubespawner_version and named the PVC with 'escape'.
    spawner = make_spawner("al.ice", storage_pvc_ensure=True, storage_capacity="1Gi")
    legacy = spawner.legacy_pvc_name()
    assert legacy != spawner.pvc_name
    await _make_pvc(sim, legacy)
    spawner.load_state({"pod_name": "jupyter-al-2eice"})
    await spawner.start()
    names = [p["metadata"]["name"] for p in objects(sim, "persistentvolumeclaims", "default")]
    assert names == [legacy]
    assert spawner.get_state()["pvc_name"] == legacy
    await spawner.stop()


async def test_pre7_legacy_pvc_of_another_user_is_not_adopted(sim, make_spawner):
    """A legacy name that collides with another user's claim: not this user's volume."""
    spawner = make_spawner("al.ice", storage_pvc_ensure=True, storage_capacity="1Gi")
    legacy = spawner.legacy_pvc_name()
    await _make_pvc(sim, legacy, owner="somebody else")
    spawner.load_state({"pod_name": "jupyter-al-2eice"})
    await spawner.start()
    names = sorted(p["metadata"]["name"] for p in objects(sim, "persistentvolumeclaims", "default"))
    assert names == sorted([legacy, spawner.pvc_name])
    assert spawner.get_state()["pvc_name"] == spawner.pvc_name != legacy
    await spawner.stop()


async def test_pre7_state_prefers_the_current_pvc_name_when_both_exist(sim, make_spawner):
    spawner = make_spawner("al.ice", storage_pvc_ensure=True, storage_capacity="1Gi")
    current, legacy = spawner.pvc_name, spawner.legacy_pvc_name()
    await _make_pvc(sim, legacy)
    await _make_pvc(sim, current)
    spawner.load_state({"pod_name": "jupyter-al-2eice"})
    await spawner.start()
    assert spawner.get_state()["pvc_name"] == current
    await spawner.stop()
