"""Minimal stand-ins for the hub objects a spawner reads, to build a KubeSpawner
in unit tests without a running hub or database."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from traitlets.config import Config

from async_kubespawner import KubeSpawner


class FakeUser:
    """What Spawner reads from ``spawner.user``."""

    def __init__(self, name: str = "alice", id: int = 7) -> None:
        self.name = name
        self.id = id
        self.url = f"/user/{name}/"
        self.escaped_name = name
        self.settings: dict[str, Any] = {}

    def progress_url(self, server_name: str = "") -> str:
        return f"/hub/api/users/{self.name}/server/progress"


def fake_hub() -> SimpleNamespace:
    return SimpleNamespace(
        public_host="",
        api_url="http://hub:8081/hub/api",
        base_url="/hub/",
        connect_ip="",
        connect_port=0,
        url="http://hub:8081/hub/",
    )


class FakeOrmSpawner:
    def __init__(self, name: str) -> None:
        self.name = name
        self.display_name = name
        self.server = None


def make_spawner(
    username: str = "alice",
    servername: str = "",
    *,
    config: Config | dict | None = None,
    userid: int = 7,
    **traits: Any,
) -> KubeSpawner:
    """A KubeSpawner for ``username``'s server ``servername`` (``""`` = default).

    ``config`` is applied as ``c.KubeSpawner.*`` (so validators and aliases run as
    when a hub loads its config); ``traits`` are set as constructor keywords.
    """
    cfg = Config()
    if config:
        cfg.KubeSpawner = Config(dict(config))
    return KubeSpawner(
        user=FakeUser(username, userid),
        hub=fake_hub(),
        orm_spawner=FakeOrmSpawner(servername),
        config=cfg,
        api_token="secret-token-value",
        oauth_client_id="jupyterhub-user-" + username,
        **traits,
    )
