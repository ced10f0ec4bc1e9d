"""Drive a Spawner without a hub: stand-ins for the hub objects a spawner reads.

A spawner is built by JupyterHub with its ``User``, its database row (``orm_spawner``),
the ``Hub`` it reports to, an API token and an OAuth client id, and reads attributes of
each while it builds its pod and environment. Tests, benchmarks and demos that exercise
a spawner (ours, upstream's or any other ``Spawner`` subclass) need the same objects but
not a hub's database, proxy or HTTP handlers; this module is the one place they come
from, so every caller drives spawners the same way the hub does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, TypeVar

from jupyterhub import orm
from jupyterhub.spawner import Spawner
from traitlets.config import Config

SpawnerT = TypeVar("SpawnerT", bound=Spawner)


class StandInUser:
    """What a spawner reads from ``spawner.user``: name, id, URL, groups, settings and
    auth state (none), and the user's spawners by server name."""

    def __init__(self, name: str = "alice", id: int = 7) -> None:
        self.name = name
        self.id = id
        self.escaped_name = name
        self.url = f"/user/{name}/"
        self.base_url = "/"
        self.groups: list[Any] = []
        self.settings: dict[str, Any] = {}
        self.spawners: dict[str, Any] = {}

    def progress_url(self, server_name: str = "") -> str:
        suffix = f"/{server_name}" if server_name else ""
        return f"/hub/api/users/{self.name}/server{suffix}/progress"

    async def get_auth_state(self) -> dict[str, Any] | None:
        return None


class StandInOrmSpawner:
    """The database row of a server: its name, saved state and user options, and its
    ``orm.Server`` (None until the hub records where the server listens)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.display_name = name
        self.server: orm.Server | None = None
        self.state: dict[str, Any] = {}
        self.user_options: dict[str, Any] = {}


def stand_in_hub(host: str = "hub", port: int = 8081) -> SimpleNamespace:
    """The hub's addresses as a spawner reads them (the API URL reaches the pod's env)."""
    return SimpleNamespace(
        public_host="",
        api_url=f"http://{host}:{port}/hub/api",
        base_url="/hub/",
        connect_ip="",
        connect_port=0,
        url=f"http://{host}:{port}/hub/",
        ip="0.0.0.0",
        port=port,
    )


class StandInDatabase:
    """The hub's ORM session, for spawners that commit their own state changes
    (upstream KubeSpawner's ``poll()`` does). Nothing is stored: callers keep their
    spawner objects alive, so there is no state to reload."""

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None


def build_spawner(
    spawner_class: type[SpawnerT],
    username: str = "alice",
    user_id: int = 7,
    *,
    config: Config | None = None,
    servername: str = "",
    api_token: str | None = None,
    hub: SimpleNamespace | None = None,
    **traits: Any,
) -> SpawnerT:
    """A spawner for ``username``'s server ``servername`` (``""``: the default server),
    configured as the hub configures it: ``config`` is the hub's whole traitlets config
    (so validators and deprecated aliases run as when a hub loads it); ``traits`` are
    constructor keywords, as the hub passes ``internal_ssl`` and the like. The API token
    defaults to ``token-of-<username>``."""
    user = StandInUser(username, user_id)
    spawner = spawner_class(
        user=user,
        hub=hub if hub is not None else stand_in_hub(),
        orm_spawner=StandInOrmSpawner(servername),
        config=config if config is not None else Config(),
        api_token=api_token if api_token is not None else f"token-of-{username}",
        oauth_client_id=f"jupyterhub-user-{username}",
        **traits,
    )
    user.spawners[servername] = spawner
    return spawner


def kubespawner_config(settings: dict[str, Any] | Config | None = None) -> Config:
    """A hub config whose ``c.KubeSpawner`` section is ``settings``."""
    config = Config()
    config.KubeSpawner = Config(dict(settings or {}))
    return config


class ReplayedWatch:
    """A reflector's source whose one watch delivers ``chunks`` as recorded, then ends.

    Feeds ``Reflector._watch`` the bytes a watch stream delivered (or generated ones)
    without a server: the line splitting, decoding and caching run exactly as on a live
    stream. Benchmarks of the watch path and tests of the line splitting use it.
    """

    def __init__(self, resource: str, chunks: list[bytes], namespace: str = "default") -> None:
        self.resource = resource
        self.namespace = namespace
        self.name = f"{resource}@{namespace}"
        self.chunks = chunks

    @contextlib.asynccontextmanager
    async def watch(
        self, *, resource_version: str, timeout_seconds: int, read_timeout: float | None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                yield chunk

        yield chunks()
