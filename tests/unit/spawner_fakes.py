"""``make_spawner`` for unit tests: a KubeSpawner built on the shared hub stand-ins
(``async_kubespawner.testing``), with no running hub, database or API server."""

from __future__ import annotations

from typing import Any

from traitlets.config import Config

from async_kubespawner import KubeSpawner
from async_kubespawner.testing import build_spawner, kubespawner_config


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
    return build_spawner(
        KubeSpawner,
        username,
        userid,
        config=kubespawner_config(config),
        servername=servername,
        api_token="secret-token-value",
        **traits,
    )
