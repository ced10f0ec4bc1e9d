"""start() fails fast, with an actionable message, when the API already reports a failure,
and cleans up what it created. (Each of these would wait the whole start_timeout upstream;
here start_timeout is 300 s, so a test that finishes at all proves the fast path.)"""

import asyncio

import pytest

from async_kubespawner.spawner import SpawnFailed
from async_kubespawner.traits import SpawnerConfigError

from . import conftest
from .conftest import NAMESPACE, store_pods

SLOW_TIMEOUT = {"start_timeout": 300}


async def expect_failure(spawner, *fragments: str) -> str:
    with pytest.raises(SpawnFailed) as info:
        await spawner.start()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


async def test_image_pull_error(sim, make_spawner, kubelet):
    kubelet.default_fate = conftest.image_pull_fails
    spawner = make_spawner(**SLOW_TIMEOUT)
    await expect_failure(
        spawner, "cannot be pulled", "ErrImagePull", "jupyter/nope:404", "image_pull_secrets"
    )
    assert store_pods(sim) == []  # cleaned up


async def test_image_pull_tolerance_lets_a_transient_error_heal(sim, make_spawner, kubelet):
    async def pull_error_then_ready(kubelet_, pod):
        await conftest.image_pull_fails(kubelet_, pod)
        await conftest.become_ready(kubelet_, pod)

    kubelet.default_fate = pull_error_then_ready
    spawner = make_spawner(image_pull_error_tolerance=30, **SLOW_TIMEOUT)
    assert (await spawner.start()).startswith("http://10.")
    await spawner.stop()


async def test_config_error_past_the_tolerance(sim, make_spawner, kubelet):
    kubelet.default_fate = conftest.config_error
    spawner = make_spawner(config_error_tolerance=0.3, **SLOW_TIMEOUT)
    await expect_failure(
        spawner, "cannot be created", 'secret "user-settings" not found', "Secret or ConfigMap"
    )
    assert store_pods(sim) == []


async def test_config_error_that_heals_within_the_default_tolerance(sim, make_spawner, kubelet):
    """The Secret start() creates after the pod arrives a moment late: normal, not fatal."""
    healed = asyncio.Event()

    async def config_error_then_ready(kubelet_, pod):
        await conftest.config_error(kubelet_, pod)
        await healed.wait()
        await conftest.become_ready(kubelet_, pod)

    kubelet.default_fate = config_error_then_ready
    spawner = make_spawner(**SLOW_TIMEOUT)
    assert spawner.config_error_tolerance == 10
    start = asyncio.ensure_future(spawner.start())
    cache = (await spawner._pod_reflector()).sink
    await cache.wait_for(
        spawner._pod_key,
        lambda p: p is not None and "CreateContainerConfigError" in str(p.get("status")),
        10,
    )
    assert not start.done()
    healed.set()
    assert (await start).startswith("http://10.")
    await spawner.stop()


@pytest.mark.parametrize(
    "setting", ["config_error_tolerance", "image_pull_error_tolerance", "unschedulable_tolerance"]
)
async def test_a_negative_tolerance_is_refused(sim, make_spawner, setting):
    spawner = make_spawner(**{setting: -1.0})  # the hub can still build it (poll, stop)
    with pytest.raises(
        SpawnerConfigError, match=f"{setting} = -1.0: a tolerance cannot be negative"
    ):
        await spawner.start()
    assert store_pods(sim) == []


async def test_crash_loop(sim, make_spawner, kubelet):
    kubelet.default_fate = conftest.crash_loops
    await expect_failure(
        make_spawner(**SLOW_TIMEOUT), "keeps crashing", "exit code 3", "restarted 2 times"
    )
    assert store_pods(sim) == []


async def test_notebook_container_terminated(sim, make_spawner, kubelet):
    kubelet.default_fate = conftest.notebook_exits
    await expect_failure(make_spawner(**SLOW_TIMEOUT), "exited with code 127")
    assert store_pods(sim) == []


async def test_pod_evicted(sim, make_spawner, kubelet):
    kubelet.default_fate = conftest.evicted
    await expect_failure(make_spawner(**SLOW_TIMEOUT), "evicted", "low on resource: memory")
    assert store_pods(sim) == []


async def test_unschedulable_past_the_tolerance(sim, make_spawner, kubelet):
    kubelet.default_fate = conftest.unschedulable
    await expect_failure(
        make_spawner(unschedulable_tolerance=0.3, **SLOW_TIMEOUT),
        "No node can run this server",
        "Insufficient memory",
    )
    assert store_pods(sim) == []


async def test_unschedulable_that_gets_scheduled_within_the_tolerance(sim, make_spawner, kubelet):
    async def briefly_unschedulable(kubelet_, pod):
        await conftest.unschedulable(kubelet_, pod)
        await conftest.become_ready(kubelet_, pod)

    kubelet.default_fate = briefly_unschedulable
    spawner = make_spawner(unschedulable_tolerance=30, **SLOW_TIMEOUT)
    assert await spawner.start()
    await spawner.stop()


async def test_pvc_that_cannot_be_provisioned(sim, make_spawner, kubelet):
    kubelet.default_fate = conftest.pvc_cannot_bind
    spawner = make_spawner(
        storage_pvc_ensure=True, storage_capacity="1Gi", storage_class="fast", **SLOW_TIMEOUT
    )
    await expect_failure(
        spawner,
        "storage volume 'claim-alice' cannot be provisioned",
        'storageclass.storage.k8s.io "fast" not found',
    )
    assert store_pods(sim) == []
    pvcs = sim.store.list(sim.store.resource("persistentvolumeclaims"), NAMESPACE)[0]
    # The claim this start created is deleted too (else a fixed storage class would never
    # apply to it); pvc-protection may keep it visible while being deleted.
    assert all(p["metadata"].get("deletionTimestamp") for p in pvcs)


async def test_pod_deleted_while_starting(sim, make_spawner, kubelet):
    release = kubelet.hold("jupyter-alice")
    spawner = make_spawner(**SLOW_TIMEOUT)
    start = asyncio.ensure_future(spawner.start())
    cache = (await spawner._pod_reflector()).sink
    await cache.wait_for(
        spawner._pod_key, lambda p: p is not None and p["spec"].get("nodeName"), 10
    )
    await sim.store.delete(
        sim.store.resource("pods"), NAMESPACE, "jupyter-alice", grace_period_seconds=0
    )
    with pytest.raises(SpawnFailed, match="deleted before it became ready"):
        await start
    release.set()


async def test_start_timeout_still_applies(sim, make_spawner, kubelet):
    release = kubelet.hold("jupyter-alice")
    spawner = make_spawner(start_timeout=1)
    with pytest.raises(TimeoutError, match="did not become ready within 1 seconds"):
        await spawner.start()
    assert store_pods(sim) == []
    release.set()


async def test_kubernetes_refusing_the_pod_is_reported_without_the_manifest(
    sim, make_spawner, caplog
):
    # A rule the local pre-create checks do not repeat (they cover the fields the
    # spawner's settings usually set), so the API server's own refusal is exercised.
    spawner = make_spawner(extra_pod_config={"schedulingGates": [{"name": "not a name"}]})
    with caplog.at_level("DEBUG"):
        message = await expect_failure(spawner, "Kubernetes refused the pod", "schedulingGates")
    assert "token-of-alice" not in message
    assert "token-of-alice" not in caplog.text


async def test_notebook_exit_quotes_the_end_of_its_termination_message(sim, make_spawner, kubelet):
    # With terminationMessagePolicy FallbackToLogsOnError the kubelet puts the log tail in
    # the terminated state's message; the user sees its end on the spawn page.
    tail = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'jupyterhub'"
    noise = "x" * 5000

    async def exits_with_output(kubelet_, pod):
        await kubelet_.status(
            pod,
            {
                "phase": "Running",
                "podIP": "10.9.9.8",
                "containerStatuses": [
                    conftest.container_status(
                        {"terminated": {"exitCode": 1, "reason": "Error", "message": noise + tail}}
                    )
                ],
            },
        )

    kubelet.default_fate = exits_with_output
    message = await expect_failure(
        make_spawner(**SLOW_TIMEOUT), "exited with code 1", "No module named 'jupyterhub'"
    )
    assert "x" * 1000 not in message  # only the end is quoted
    assert store_pods(sim) == []


def test_spawn_failed_reaches_the_user_verbatim_through_jupyterhub() -> None:
    # JupyterHub passes HTTPErrors raised in the spawn form's first second through to the
    # page (anything else becomes "Unhandled error starting server"), and shows
    # jupyterhub_message as the text.
    from jupyterhub.utils import format_exception
    from tornado import web

    text = "The image of container 'notebook' cannot be pulled (ErrImagePull): 100% wrong"
    error = SpawnFailed(text)
    assert isinstance(error, web.HTTPError)
    assert str(error) == text
    assert format_exception(error) == (text, None)
