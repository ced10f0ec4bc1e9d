"""A failed start's NotebookServer is deleted in the background when the cleanup stop fails,
bounded, and nothing that is not provably the server's is ever deleted.

The hub starvation seen in a whole-hub storm is reproduced with the simulator's faults: a
held create gets no answer within the client's timeout but lands afterwards, and the
cleanup's DELETEs answer 503. Tests wait on the cluster (watches), never on sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from async_kubespawner.kube.client import CREATE_ID_ANNOTATION, KubeApi
from async_kubespawner.kube.errors import Conflict, NoResponse, ServerError
from async_kubespawner.operator.cleanup import CleanupRetry, CleanupTarget, clean_up
from async_kubespawner.operator.kubeio import NOTEBOOK_SERVERS
from async_kubespawner.operator.models import GROUP
from async_kubespawner.operator.spawner import OperatorSpawner

from .conftest import NAMESPACE, OperatorHarness, make_spawner, notebook_server

FAST = CleanupRetry(first=0.05, cap=0.2, budget=60.0, settle=60.0)


def starved_spawner(harness: OperatorHarness) -> OperatorSpawner:
    """A spawner whose every API attempt gets 1 s and no retry: a starved hub's view."""
    spawner = make_spawner(
        harness.sim, k8s_api_request_timeout=1, k8s_api_request_retry_timeout=0
    )
    spawner.cleanup_retry = FAST
    return spawner


def being_deleted(server: dict[str, Any] | None) -> bool:
    # No operator runs in most tests: the finalizer keeps a deleted object, marked.
    return server is not None and bool(server["metadata"].get("deletionTimestamp"))


async def land_the_lost_create(harness: OperatorHarness, spawner: OperatorSpawner) -> dict[str, Any]:
    """The create that got no answer is applied by the API server after all: the object
    the spawner sent, with the create id it sent. (The simulator reads a held request's
    body only after the hold, by when the client has hung up, so the test applies it.)"""
    assert spawner._create_id is not None
    harness.sim.faults.clear()  # the held create goes on (and fails: its client hung up)
    try:
        return await harness.api.create(
            NOTEBOOK_SERVERS, NAMESPACE, spawner._server_manifest(),
            create_id=spawner._create_id,
        )
    except Conflict:  # the held one made it after all: the same object, the same id
        return await harness.api.get(NOTEBOOK_SERVERS, NAMESPACE, spawner.object_name)


async def fail_a_start_whose_create_lands_late(
    harness: OperatorHarness, spawner: OperatorSpawner
) -> dict[str, Any]:
    """start() gives up on a create that the API server then applies; returns the object."""
    harness.sim.faults.hold(verb="create", resource="notebookservers")
    with pytest.raises(NoResponse):
        await spawner.start()
    return await land_the_lost_create(harness, spawner)


async def test_a_failed_cleanup_stop_is_retried_in_the_background(
    harness: OperatorHarness,
) -> None:
    spawner = starved_spawner(harness)
    server = await fail_a_start_whose_create_lands_late(harness, spawner)
    assert server["metadata"]["annotations"][CREATE_ID_ANNOTATION] == spawner._create_id
    # JupyterHub's cleanup stop fails too, and so do the first background attempts.
    rule = harness.sim.faults.fail(503, verb="delete", resource="notebookservers", count=3)
    with pytest.raises(ServerError):
        await spawner.stop()
    deleted = await harness.wait_server(spawner.object_name, being_deleted)
    assert deleted is not None and deleted["metadata"]["uid"] == server["metadata"]["uid"]
    assert rule.hits == 3  # the stop's DELETE, then two background retries failed
    assert spawner._cleanup_task is not None
    await spawner._cleanup_task


async def test_a_create_landing_after_a_successful_stop_is_deleted(
    harness: OperatorHarness,
) -> None:
    spawner = starved_spawner(harness)
    harness.sim.faults.hold(verb="create", resource="notebookservers")
    with pytest.raises(NoResponse):
        await spawner.start()
    await spawner.stop()  # nothing there yet: the stop succeeds
    assert await harness.server(spawner.object_name) is None
    await land_the_lost_create(harness, spawner)  # then the create lands
    deleted = await harness.wait_server(spawner.object_name, being_deleted)
    assert deleted is not None
    assert deleted["metadata"]["annotations"][CREATE_ID_ANNOTATION] == spawner._create_id


async def test_a_new_start_supersedes_a_pending_cleanup(harness: OperatorHarness) -> None:
    await harness.start_operator()
    spawner = starved_spawner(harness)
    old = await fail_a_start_whose_create_lands_late(harness, spawner)
    harness.sim.faults.fail(503, verb="delete", resource="notebookservers")  # for good
    with pytest.raises(ServerError):
        await spawner.stop()
    pending = spawner._cleanup_task
    assert pending is not None and not pending.done()
    harness.sim.faults.clear()
    spawner.k8s_api_request_retry_timeout = 30
    await spawner.start()  # removes the leftover itself and makes a new server
    assert pending.cancelled()
    new = await harness.server(spawner.object_name)
    assert new is not None and new["metadata"]["uid"] != old["metadata"]["uid"]
    assert not being_deleted(new)
    await spawner.stop()


@pytest.mark.parametrize(
    "target",
    [
        # made by another start (another create id): a newer server of the same name
        CleanupTarget(NAMESPACE, "jupyter-alice", "alice", "", create_id="another-start"),
        # another object of that name (the uid this spawner knew is gone)
        CleanupTarget(NAMESPACE, "jupyter-alice", "alice", "", uid="a-uid-long-gone"),
        # the right create id on an object naming another server
        CleanupTarget(NAMESPACE, "jupyter-alice", "mallory", "", create_id="ours"),
        # nothing to prove anything with
        CleanupTarget(NAMESPACE, "jupyter-alice", "alice", ""),
    ],
    ids=["other-create-id", "other-uid", "other-identity", "unprovable"],
)
async def test_nothing_unprovable_is_deleted(
    harness: OperatorHarness, target: CleanupTarget
) -> None:
    await harness.api.create(NOTEBOOK_SERVERS, NAMESPACE, notebook_server("jupyter-alice"), create_id="ours")
    outcome = await clean_up(harness.api, None, target, FAST)
    assert outcome in ("not-ours", "unprovable")
    server = await harness.server("jupyter-alice")
    assert server is not None and not being_deleted(server)


async def test_the_background_cleanup_is_bounded(harness: OperatorHarness) -> None:
    created = await harness.api.create(
        NOTEBOOK_SERVERS, NAMESPACE, notebook_server("jupyter-alice"), create_id="ours"
    )
    rule = harness.sim.faults.fail(503, verb="delete", resource="notebookservers")
    now = [0.0]

    async def advance(seconds: float) -> None:  # the backoff, on a fake clock
        now[0] += seconds

    target = CleanupTarget(NAMESPACE, "jupyter-alice", "alice", "",
                           uid=created["metadata"]["uid"])
    retry = CleanupRetry(first=1.0, cap=30.0, budget=300.0)
    outcome = await clean_up(harness.api, None, target, retry,
                             clock=lambda: now[0], sleep=advance)
    assert outcome == "gave-up"
    assert now[0] <= retry.budget
    # 1, 2, 4, 8, 16 s, then 30 s pauses (+-20 %): a bounded number of tries.
    assert 6 <= rule.hits <= 16
    server = await harness.server("jupyter-alice")
    assert server is not None and not being_deleted(server)


async def test_a_refusal_is_not_retried(harness: OperatorHarness) -> None:
    created = await harness.api.create(
        NOTEBOOK_SERVERS, NAMESPACE, notebook_server("jupyter-alice"), create_id="ours"
    )
    rule = harness.sim.faults.fail(403, verb="delete", resource="notebookservers")
    target = CleanupTarget(NAMESPACE, "jupyter-alice", "alice", "",
                           uid=created["metadata"]["uid"])
    assert await clean_up(harness.api, None, target, FAST) == "gave-up"
    assert rule.hits == 1


async def test_cleanup_pins_the_uid_it_deletes(harness: OperatorHarness) -> None:
    """Between the read and the delete the object is replaced: the uid precondition
    keeps the new one, and the cleanup reads again and leaves it alone."""
    api: KubeApi = harness.api
    first = await api.create(NOTEBOOK_SERVERS, NAMESPACE, notebook_server("jupyter-alice"), create_id="ours")
    target = CleanupTarget(NAMESPACE, "jupyter-alice", "alice", "", create_id="ours")
    held = harness.sim.faults.hold(verb="delete", resource="notebookservers")
    cleanup = asyncio.create_task(clean_up(api, None, target, FAST))
    await held.wait_arrived(1)
    # Replace the object under the cleanup's feet (finalizers off so it really goes).
    await api.request(
        "patch", "notebookservers", "PATCH",
        NOTEBOOK_SERVERS.path(NAMESPACE, "jupyter-alice"),
        body={"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    store = harness.sim.store  # directly: the API's deletes are held
    await store.delete(store.resource("notebookservers", GROUP), NAMESPACE, "jupyter-alice")
    second = await api.create(NOTEBOOK_SERVERS, NAMESPACE, notebook_server("jupyter-alice"),
                              create_id="a-newer-start")
    held.release()
    harness.sim.faults.clear()
    assert await cleanup == "not-ours"
    server = await harness.server("jupyter-alice")
    assert server is not None and server["metadata"]["uid"] == second["metadata"]["uid"]
    assert server["metadata"]["uid"] != first["metadata"]["uid"]
    assert not being_deleted(server)
