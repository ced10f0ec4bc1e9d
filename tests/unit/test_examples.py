"""Every example under examples/ loads, uses only real settings, and its RBAC covers what the spawner does.

An example that a newcomer copies must not carry a misspelt setting (traitlets would only
warn, and the hub would silently run without it) nor RBAC that forgets a verb (the spawn
would fail with a 403 in production, never in a demo).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = ["local", "cluster", "named-servers-pvc", "user-namespaces", "hardened"]


def load_example(name: str) -> Config:
    loader = PyFileConfigLoader("jupyterhub_config.py", path=str(EXAMPLES / name))
    return loader.load_config()


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_example_directory_is_tested() -> None:
    found = sorted(p.name for p in EXAMPLES.iterdir() if (p / "jupyterhub_config.py").exists())
    assert found == sorted(EXAMPLE_NAMES)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_loads_and_selects_this_spawner(name: str) -> None:
    config = load_example(name)
    assert config.JupyterHub.spawner_class == "async-kubernetes"
    assert config.KubeSpawner, f"{name} configures no KubeSpawner setting"


def test_the_spawner_entry_point_is_this_package() -> None:
    (entry,) = [ep for ep in entry_points(group="jupyterhub.spawners") if ep.name == "async-kubernetes"]
    assert entry.value == "async_kubespawner:KubeSpawner"


def test_local_example_matches_what_the_demo_promises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    config = load_example("local")
    assert config.DummyAuthenticator.password == "demo"
    assert "password ``demo``" in (EXAMPLES / "local" / "jupyterhub_config.py").read_text()
    assert config.JupyterHub.allow_named_servers is True
    assert config.JupyterHub.hub_ip == "127.0.0.1"
    profiles = config.KubeSpawner.profile_list
    assert [p["slug"] for p in profiles] == ["small", "large"]
    assert sum(bool(p.get("default")) for p in profiles) == 1
    choices = profiles[1]["profile_options"]["image"]["choices"]
    images = {c["kubespawner_override"]["image"] for c in choices.values()}
    assert len(images) == 2, "each choice of the option must pick a different image"
    assert config.KubeSpawner.events_enabled is True


def test_local_example_password_can_be_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "s3cret")
    assert load_example("local").DummyAuthenticator.password == "s3cret"


def test_hardened_example_turns_on_both_protections() -> None:
    config = load_example("hardened")
    assert config.KubeSpawner.security_profile == "restricted"
    assert config.KubeSpawner.api_token_in_secret is True
    (namespace,) = [
        d for d in load_yaml_documents(EXAMPLES / "hardened" / "users-namespace.yaml") if d["kind"] == "Namespace"
    ]
    assert namespace["metadata"]["name"] == config.KubeSpawner.namespace
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- RBAC -------------------------------------------------------------------------------------

#: What the spawner calls on the API, per resource (see the comments in the rbac files).
SPAWNER_NEEDS = {
    "pods": {"get", "list", "watch", "create", "delete"},
    "pods/log": {"get"},
    "events": {"list", "watch"},
    "persistentvolumeclaims": {"get", "create", "delete"},
    "services": {"create", "delete"},
    "secrets": {"create", "delete"},
}


def granted(rules: list[dict[str, Any]]) -> dict[str, set[str]]:
    allowed: dict[str, set[str]] = {}
    for rule in rules:
        assert rule["apiGroups"] == [""], "the spawner only uses the core API group"
        for resource in rule["resources"]:
            allowed.setdefault(resource, set()).update(rule["verbs"])
    return allowed


def missing_permissions(rules: list[dict[str, Any]], needs: dict[str, set[str]]) -> dict[str, set[str]]:
    allowed = granted(rules)
    return {
        resource: verbs - allowed.get(resource, set())
        for resource, verbs in needs.items()
        if verbs - allowed.get(resource, set())
    }


@pytest.mark.parametrize(
    ("path", "role_kind", "needs"),
    [
        ("cluster/rbac.yaml", "Role", SPAWNER_NEEDS),
        ("hardened/users-namespace.yaml", "Role", SPAWNER_NEEDS),
        (
            "user-namespaces/rbac.yaml",
            "ClusterRole",
            {**SPAWNER_NEEDS, "namespaces": {"get", "create"}},
        ),
    ],
)
def test_rbac_grants_what_the_spawner_does(path: str, role_kind: str, needs: dict[str, set[str]]) -> None:
    docs = load_yaml_documents(EXAMPLES / path)
    (role,) = [d for d in docs if d["kind"] == role_kind]
    assert missing_permissions(role["rules"], needs) == {}
    (binding,) = [d for d in docs if d["kind"] == f"{role_kind}Binding"]
    assert binding["roleRef"] == {
        "kind": role_kind,
        "name": role["metadata"]["name"],
        "apiGroup": "rbac.authorization.k8s.io",
    }
    (subject,) = binding["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "hub", "namespace": "jhub"}


def test_rbac_check_notices_a_missing_verb() -> None:
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create"]}]
    assert missing_permissions(rules, {"pods": {"create", "delete"}}) == {"pods": {"delete"}}


def test_user_namespaces_example_has_no_namespaced_role() -> None:
    """A Role would not let the reflectors watch across namespaces: only a ClusterRole works."""
    kinds = {d["kind"] for d in load_yaml_documents(EXAMPLES / "user-namespaces" / "rbac.yaml")}
    assert "Role" not in kinds
    assert load_example("user-namespaces").KubeSpawner.enable_user_namespaces is True
