"""The shared hub stand-ins build spawners the way the hub does."""

from __future__ import annotations

from jupyterhub.spawner import Spawner

from async_kubespawner import KubeSpawner
from async_kubespawner.testing import (
    build_spawner,
    kubespawner_config,
    stand_in_hub,
)


def test_a_kubespawner_reads_the_stand_ins_as_it_reads_the_hub() -> None:
    spawner = build_spawner(
        KubeSpawner, "Alice", 42, config=kubespawner_config({"image": "lab:1"}), servername="gpu"
    )
    assert spawner.user.spawners == {"gpu": spawner}
    assert spawner.image == "lab:1"  # config applied as c.KubeSpawner.*
    assert spawner.pod_name.startswith("jupyter-alice---") and spawner.pod_name.endswith("--gpu")
    env = spawner.get_env()
    assert env["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
    assert env["JUPYTERHUB_API_TOKEN"] == "token-of-Alice"
    assert env["JUPYTERHUB_CLIENT_ID"] == "jupyterhub-user-Alice"
    assert env["JUPYTERHUB_SERVER_NAME"] == "gpu"
    assert spawner.user.progress_url("gpu") == "/hub/api/users/Alice/server/gpu/progress"


def test_any_spawner_class_with_its_own_token_and_hub() -> None:
    spawner = build_spawner(Spawner, "bob", api_token="t0", hub=stand_in_hub("hub.ns.svc", 8000))
    env = spawner.get_env()
    assert env["JUPYTERHUB_API_URL"] == "http://hub.ns.svc:8000/hub/api"
    assert env["JUPYTERHUB_API_TOKEN"] == "t0"
    assert spawner.orm_spawner.server is None and spawner.name == ""


def test_constructor_keywords_reach_the_spawner() -> None:
    spawner = build_spawner(KubeSpawner, "carol", internal_ssl=True)
    assert spawner.internal_ssl is True
    assert spawner.get_env()["JUPYTERHUB_SERVICE_URL"].startswith("https://")
