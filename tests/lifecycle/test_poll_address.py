"""poll() follows a pod that listens somewhere else now, as upstream KubeSpawner does:
when the running pod's address differs from the hub's record of the server, the
server's ip and port are updated and the database committed, so the proxy route
follows it."""

from __future__ import annotations

from typing import Any

from jupyterhub import orm

from async_kubespawner import KubeSpawner

from .conftest import NAMESPACE


class RecordingDatabase:
    """The hub's ORM session as far as poll() uses it."""

    def __init__(self) -> None:
        self.commits = 0

    def commit(self) -> None:
        self.commits += 1


def record_server(spawner: KubeSpawner, url: str) -> RecordingDatabase:
    """What JupyterHub does with the URL start() returned."""
    proto, rest = url.split("://")
    ip, port = rest.rsplit(":", 1)
    spawner.orm_spawner.server = orm.Server(
        proto=proto,
        ip=ip,
        port=int(port),
        base_url="/user/alice/",
        cookie_name="jupyterhub-user-alice",
    )
    db = RecordingDatabase()
    spawner.db = db
    return db


async def move_pod(sim: Any, spawner: KubeSpawner, ip: str) -> None:
    pods = sim.store.resource("pods")
    await sim.store.patch(
        pods, NAMESPACE, spawner.pod_name, {"status": {"podIP": ip}}, "merge", subresource="status"
    )
    cache = (await spawner._pod_reflector()).sink

    def moved(pod: dict[str, Any] | None) -> bool:
        assert pod is not None  # the pod was just patched: it exists
        return pod["status"].get("podIP") == ip

    await cache.wait_for(spawner._pod_key, moved, 10)


async def test_poll_updates_a_stale_server_address(sim, make_spawner):
    spawner = make_spawner()
    url = await spawner.start()
    db = record_server(spawner, url)
    assert await spawner.poll() is None
    assert db.commits == 0  # nothing changed: nothing written

    await move_pod(sim, spawner, "10.250.0.9")
    assert await spawner.poll() is None
    assert (spawner.server.ip, spawner.server.port) == ("10.250.0.9", 8888)
    assert spawner.orm_spawner.server.ip == "10.250.0.9"
    assert spawner.server.url.startswith("http://10.250.0.9:8888/")
    assert db.commits == 1
    assert await spawner.poll() is None
    assert db.commits == 1
    await spawner.stop()


async def test_poll_leaves_the_address_alone_without_a_running_pod_or_a_server(sim, make_spawner):
    spawner = make_spawner()
    await spawner.start()
    # not started through a hub: no server record, nothing to repair
    await move_pod(sim, spawner, "10.250.0.10")
    assert spawner.server is None
    assert await spawner.poll() is None

    db = record_server(spawner, "http://10.1.1.1:8888")
    pods = sim.store.resource("pods")
    await sim.store.patch(
        pods,
        NAMESPACE,
        spawner.pod_name,
        {"status": {"phase": "Pending"}},
        "merge",
        subresource="status",
    )
    cache = (await spawner._pod_reflector()).sink
    await cache.wait_for(spawner._pod_key, lambda p: p["status"]["phase"] == "Pending", 10)
    assert await spawner.poll() is None
    assert spawner.server.ip == "10.1.1.1" and db.commits == 0
    await spawner.stop()


async def test_a_dns_name_url_is_compared_by_host_and_port(sim, make_spawner):
    """With services_enabled the URL names the Service; the default port of the
    scheme counts as that port."""
    spawner = make_spawner(services_enabled=True)
    url = await spawner.start()
    assert url == f"http://{spawner.dns_name}:8888"
    db = record_server(spawner, url)
    await move_pod(sim, spawner, "10.250.0.11")
    assert await spawner.poll() is None
    assert db.commits == 0 and spawner.server.ip == spawner.dns_name
    await spawner.stop()


def test_urls_are_compared_by_host_and_port_with_default_ports() -> None:
    from async_kubespawner.spawner import _host_port

    assert _host_port("http://h.example") == _host_port("http://h.example:80/user/a/")
    assert _host_port("https://h.example") == ("h.example", 443)
    assert _host_port("http://[fd00::5]:8888") == ("fd00::5", 8888)
    assert _host_port("http://10.0.0.1:8888") != _host_port("http://10.0.0.2:8888")
