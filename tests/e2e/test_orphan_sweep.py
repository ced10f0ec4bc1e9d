"""The orphan sweep in a real hub: a pod whose server the hub database records as stopped
(its deletion was lost while the hub restarted) is deleted by the restarted hub, and
nothing else is.

Driven through the REST API and the simulator (no browser): the hub's own database, its
real ``User`` objects and its start-up ``poll()`` of running servers are what is tested.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from .browser_steps import PASSWORD, pod_of
from .hub_stack import KEEP_SERVERS, HubStack, eventually, http_json, local_stack_in_process_mode

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    overrides = f"c.DummyAuthenticator.password = {PASSWORD!r}\n{KEEP_SERVERS}"
    yield from local_stack_in_process_mode(tmp_path_factory, "test_orphan_sweep", overrides)


def hub_post(stack: HubStack, path: str, body: object = None) -> int:
    status, answer = http_json("POST", f"{stack.hub_api}{path}", token=stack.api_token, body=body)
    assert status in (201, 202), f"POST {path}: {status} {answer}"
    return status


def server_ready(stack: HubStack, user: str, server: str = "") -> bool:
    entry = (stack.user_model(user).get("servers") or {}).get(server) or {}
    return bool(entry.get("ready"))


def test_restarted_hub_deletes_the_pod_of_a_server_it_recorded_stopped(stack: HubStack) -> None:
    hub_post(stack, "/users/grace")
    hub_post(stack, "/users/grace/server", {"profile": "small"})
    hub_post(stack, "/users/grace/servers/lab", {"profile": "small"})
    eventually(lambda: server_ready(stack, "grace"), 90, "grace's server ready")
    eventually(lambda: server_ready(stack, "grace", "lab"), 90, "grace's lab server ready")
    orphan = pod_of(stack, "grace")
    running = pod_of(stack, "grace", "lab")

    stack.stop_hub()
    # What a stop whose deletion was lost with the hub leaves behind: the database says
    # stopped, the pod still runs.
    db = sqlite3.connect(stack.state_dir / "jupyterhub.sqlite")
    with db:
        (server_id,) = db.execute(
            "SELECT s.server_id FROM spawners s JOIN users u ON s.user_id = u.id "
            "WHERE u.name = 'grace' AND s.name = ''"
        ).fetchone()
        db.execute("UPDATE spawners SET server_id = NULL WHERE server_id = ?", (server_id,))
        db.execute("DELETE FROM servers WHERE id = ?", (server_id,))
    db.close()
    assert stack.pod(orphan["metadata"]["name"]) is not None

    stack.start_hub()
    eventually(
        lambda: stack.pod(orphan["metadata"]["name"]) is None, 60, "the orphaned pod deleted"
    )
    # The running server was polled, kept and is still served.
    assert pod_of(stack, "grace", "lab")["metadata"]["uid"] == running["metadata"]["uid"]
    eventually(lambda: server_ready(stack, "grace", "lab"), 30, "lab still ready")
    status, _ = http_json(
        "DELETE", f"{stack.hub_api}/users/grace/servers/lab", token=stack.api_token
    )
    assert status in (202, 204)
    eventually(lambda: stack.pod(running["metadata"]["name"]) is None, 60, "lab stopped")
