"""What operator mode cannot honour is refused by the hub-side spawner before anything exists.

The reasons are the converter's (``async-kubespawner-migrate``), worded once in
``operator.limits``; these tests pin that both say the same, unchanged, and that a hub
refusing a configuration leaves the cluster exactly as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from traitlets.config import Config

from async_kubespawner.operator import limits
from async_kubespawner.operator.limits import OperatorModeRefused
from async_kubespawner.operator.migrate import BridgeRefused, check_expressible
from async_kubespawner.operator.models import GROUP
from async_kubespawner.operator.spawner import OperatorSpawner
from async_kubespawner.profiles import ProfileOverrideError
from async_kubespawner.testing import build_spawner

from .conftest import NAMESPACE, OperatorHarness, make_spawner

#: The converter's refusals as users have seen them: moving the wording must not change it.
USER_NAMESPACES_TEXT = (
    "c.KubeSpawner.enable_user_namespaces cannot be expressed in operator mode: a server's "
    "objects are owned by its NotebookServer, and Kubernetes honours an ownerReference only "
    "within one namespace (a pod in the user's namespace owned by a NotebookServer in the "
    "hub's would be garbage-collected as an orphan). Moving each NotebookServer and its Secret "
    "into the user's namespace instead would need a hub that creates namespaces, "
    "NotebookServers and Secrets anywhere in the cluster (a ClusterRole), the rights operator "
    "mode exists to take away from the hub. Keep the in-hub mode for per-user namespaces "
    "(examples/user-namespaces), or drop the setting and run every server in "
    "c.OperatorSpawner.namespace, capped per server by the template's resource limits."
)
INTERNAL_SSL_TEXT = (
    "c.JupyterHub.internal_ssl cannot be expressed in operator mode: the hub issues each "
    "server's certificate before the server exists, for the names it will connect to, but in "
    "operator mode the hub connects to the pod's IP, which the operator reports only once the "
    "pod runs, so no certificate can name it; and the only object the hub hands the server, "
    "its Secret, reaches the container as environment variables (envFrom), where a private key "
    "does not belong (in-hub it is a mounted file). Keep the in-hub mode for internal SSL "
    "(examples/internal-ssl), or in operator mode leave hub-to-server traffic to the network "
    "layer (a service mesh's mutual TLS) and restrict it with a NetworkPolicy in the "
    "template's otherResources."
)
REASON = USER_NAMESPACES_TEXT.split(": ", 1)[1]

KINDS = (("notebookservers", GROUP), ("secrets", ""), ("pods", ""),
         ("persistentvolumeclaims", ""), ("services", ""))


def snapshot(harness: OperatorHarness) -> dict[str, set[tuple[str, str, str]]]:
    """Every object of the kinds a spawn creates, in any namespace, by name and uid."""
    store = harness.sim.store
    result = {}
    for plural, group in KINDS:
        items, _ = store.list(store.resource(plural, group), None)
        result[plural] = {(o["metadata"].get("namespace", ""), o["metadata"]["name"],
                           o["metadata"]["uid"]) for o in items}
    return result


def test_the_converter_refuses_with_the_same_words() -> None:
    assert limits.USER_NAMESPACES_REFUSAL == USER_NAMESPACES_TEXT
    assert limits.INTERNAL_SSL_REFUSAL == INTERNAL_SSL_TEXT
    config = Config()
    config.JupyterHub.spawner_class = "async-kubernetes"
    config.KubeSpawner.enable_user_namespaces = True
    with pytest.raises(BridgeRefused) as refused:
        check_expressible(config)
    assert str(refused.value) == USER_NAMESPACES_TEXT
    config = Config()
    config.JupyterHub.spawner_class = "async-kubernetes"
    config.JupyterHub.internal_ssl = True
    with pytest.raises(BridgeRefused) as refused:
        check_expressible(config)
    assert str(refused.value) == INTERNAL_SSL_TEXT


def test_the_hub_side_does_not_import_the_converter() -> None:
    """A hub has no PyYAML: the spawner must get its refusals without importing migrate."""
    code = ("import sys, async_kubespawner.operator.spawner\n"
            "assert 'async_kubespawner.operator.migrate' not in sys.modules, 'migrate imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


async def test_internal_ssl_is_refused_before_anything_is_created(
    harness: OperatorHarness,
) -> None:
    await harness.start_operator()
    before = snapshot(harness)
    spawner = make_spawner(harness.sim)
    spawner.internal_ssl = True  # what JupyterHub sets on every spawner of such a hub
    with pytest.raises(OperatorModeRefused) as refused:
        await spawner.start()
    assert str(refused.value) == INTERNAL_SSL_TEXT
    assert snapshot(harness) == before
    assert await harness.server(spawner.object_name) is None


@pytest.mark.parametrize("section", ["OperatorSpawner", "Spawner"])
async def test_user_namespaces_are_refused_naming_the_setting(
    harness: OperatorHarness, section: str,
) -> None:
    await harness.start_operator()
    before = snapshot(harness)
    config = Config()
    config.OperatorSpawner = Config({"k8s_api_host": harness.sim.url, "namespace": NAMESPACE})
    config[section]["enable_user_namespaces"] = True
    spawner = build_spawner(OperatorSpawner, "alice", config=config)
    with pytest.raises(OperatorModeRefused) as refused:
        await spawner.start()
    assert str(refused.value) == (
        f"c.{section}.enable_user_namespaces cannot be expressed in operator mode: {REASON}")
    assert snapshot(harness) == before


async def test_a_profile_asking_for_user_namespaces_is_refused_with_the_reason(
    harness: OperatorHarness,
) -> None:
    await harness.start_operator()
    before = snapshot(harness)
    profiles = [{"display_name": "Own namespace", "slug": "own", "default": True,
                 "kubespawner_override": {"enable_user_namespaces": True}}]
    spawner = make_spawner(harness.sim, profile_list=profiles)
    with pytest.raises(ProfileOverrideError) as refused:
        await spawner.start()
    assert str(refused.value) == ("profile 'own': kubespawner_override enable_user_namespaces "
                                  f"cannot be expressed in operator mode: {REASON}")
    assert snapshot(harness) == before


async def test_what_does_not_ask_for_user_namespaces_starts(harness: OperatorHarness) -> None:
    """``c.KubeSpawner`` does not reach this class (a hub may wrap both spawners and give
    its in-hub servers their own namespaces), a profile may say "off", and a command line's
    "false" is off."""
    await harness.start_operator()
    config = Config()
    config.OperatorSpawner = Config({
        "k8s_api_host": harness.sim.url, "namespace": NAMESPACE,
        "profile_list": [{"display_name": "Shared", "slug": "shared", "default": True,
                          "kubespawner_override": {"enable_user_namespaces": False,
                                                   "variables": {"memory": "2Gi"}}}],
    })
    config.KubeSpawner.enable_user_namespaces = True
    config.Spawner.enable_user_namespaces = "false"
    spawner: Any = build_spawner(OperatorSpawner, "alice", config=config)
    url = await spawner.start()
    assert url.startswith("http://")
    pod = harness.store_items("pods")[0]
    assert pod["metadata"]["namespace"] == NAMESPACE
    assert pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2Gi"
    await spawner.stop()
