"""KubeSpawner against the simulated cluster: the events and statuses this cluster writes
are the ones the spawner's fail-fast and progress logic were written for.

(The spawner's own tests script the kubelet per case; these run the real scheduler,
kubelet and PVC binder, so a drift between the two sides shows up here.)
"""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.nodes import NodePoolSpec
from kubesim.cluster.testing import run_cluster

from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from async_kubespawner.spawner import SpawnFailed
from async_kubespawner.testing import build_spawner, kubespawner_config, stand_in_hub
from tests.local_http import serve

SLOW_TIMEOUT = 300  # a test that finishes at all proves the fail-fast path


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Any]:
    config = ClusterConfig.fast(nodes=[NodePoolSpec(count=2, cpu="2", memory="4Gi")])
    async with run_cluster(config) as simulator:
        yield simulator
        await stop_reflectors()
        await close_shared_apis()


@pytest.fixture
def make_spawner(sim: Any) -> Callable[..., Any]:
    def make(username: str = "alice", **config: Any) -> Any:
        from async_kubespawner import KubeSpawner

        settings = {
            "k8s_api_host": sim.url,
            "namespace": "default",
            "start_timeout": SLOW_TIMEOUT,
            **config,
        }
        return build_spawner(KubeSpawner, username, config=kubespawner_config(settings))

    return make


def pods(sim: Any) -> list[dict]:
    return sim.store.list(sim.store.resource("pods"), "default")[0]


async def test_start_progress_poll_stop(sim, make_spawner):
    spawner = make_spawner(cpu_guarantee=0.5)
    url = await spawner.start()
    [pod] = pods(sim)
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert pod["status"]["phase"] == "Running"
    messages = [e["message"] async for e in spawner.progress()]
    joined = "\n".join(messages)
    for fragment in (
        "Successfully assigned default/jupyter-alice",
        "Pulling image",
        "Successfully pulled image",
        "Started container",
    ):
        assert fragment in joined, joined
    assert await spawner.poll() is None
    await spawner.stop()
    assert pods(sim) == []
    assert await spawner.poll() is not None


async def test_image_that_cannot_be_pulled_fails_fast(sim, make_spawner):
    spawner = make_spawner(
        image="registry.example/nope:404",
        extra_annotations={"sim.async-kubespawner/scenario": "image-pull-failure"},
    )
    with pytest.raises(SpawnFailed) as info:
        await spawner.start()
    assert "registry.example/nope:404" in str(info.value) and "ErrImagePull" in str(info.value)
    assert pods(sim) == []


async def test_server_too_big_for_any_node_fails_fast(sim, make_spawner):
    spawner = make_spawner(cpu_guarantee=3, unschedulable_tolerance=0.2)
    with pytest.raises(SpawnFailed) as info:
        await spawner.start()
    assert "0/2 nodes are available: 2 Insufficient cpu." in str(info.value)
    assert pods(sim) == []


async def test_crash_before_ready_fails_fast(sim, make_spawner):
    spawner = make_spawner(
        extra_annotations={
            "sim.async-kubespawner/scenario": "crash,exit-after=0.2,exit-code=3,ready-after=5"
        }
    )
    with pytest.raises(SpawnFailed) as info:
        await spawner.start()
    # On the fast clock the kubelet's immediate first restart (restartPolicy OnFailure)
    # comes within a millisecond of the exit, so the spawner may see the exited state or
    # the second crash first; either way it must fail fast and name the exit code.
    message = str(info.value)
    assert (
        "exited with code 3 (Error) before it became ready" in message
        or "keeps crashing (exit code 3, Error" in message
    ), message
    assert pods(sim) == []


@pytest_asyncio.fixture
async def hub_api() -> AsyncIterator[str]:
    """The one hub endpoint a single-user server calls on start-up (its version check)."""
    import jupyterhub
    from aiohttp import web

    async def version(_request: web.Request) -> web.Response:
        return web.json_response({"version": jupyterhub.__version__})

    app = web.Application()
    app.router.add_get("/hub/api", version)
    app.router.add_get("/hub/api/", version)
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}/hub/api"


@pytest.mark.slow
async def test_real_singleuser_server_in_process_mode(tmp_path, hub_api):
    """The demo's path: a real jupyterhub-singleuser as the pod, reached on its pod IP."""
    import aiohttp

    hub = stand_in_hub()
    hub.api_url = hub_api
    hub.url = hub_api.removesuffix("api")
    config = ClusterConfig(clock=0.05, process_mode=True, process_root=str(tmp_path))
    async with run_cluster(config) as simulator:
        try:
            from async_kubespawner import KubeSpawner

            settings = {
                "k8s_api_host": simulator.url,
                "namespace": "default",
                "image": "quay.io/jupyterhub/singleuser:5",
                "cmd": ["jupyterhub-singleuser"],
                "args": ["--allow-root"],  # process mode runs as this user, often root
                "start_timeout": 60,
            }
            spawner = build_spawner(
                KubeSpawner, "alice", config=kubespawner_config(settings), hub=hub
            )
            url = await spawner.start()
            assert url.startswith("http://127.1.")
            [pod] = pods(simulator)
            env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
            prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{url}{prefix}api") as response,
            ):
                assert response.status == 200
                assert "version" in await response.json()
            await spawner.stop()
            assert pods(simulator) == []
        finally:
            await stop_reflectors()
            await close_shared_apis()
