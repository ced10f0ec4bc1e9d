"""examples/operator/: the hub config, the default template, the RBAC and the Deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from traitlets.config.loader import PyFileConfigLoader

from async_kubespawner.operator.models import parse_template_spec
from async_kubespawner.operator.render import ServerContext, render
from async_kubespawner.operator.spawner import OperatorSpawner
from async_kubespawner.profiles import normalize_profile_list, select_profile

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "operator"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLE / name).read_text()) if d]


def config() -> Any:
    return PyFileConfigLoader("jupyterhub_config.py", path=str(EXAMPLE)).load_config()


def test_hub_config_selects_operator_mode_with_real_settings() -> None:
    c = config()
    assert c.JupyterHub.spawner_class == "async-kubernetes-operator"
    traits = OperatorSpawner.class_trait_names(config=True)
    assert set(c.OperatorSpawner) <= set(traits)


def test_every_profile_choice_renders_with_the_default_template() -> None:
    template = parse_template_spec(docs("template.yaml")[0])
    profiles = normalize_profile_list(config().OperatorSpawner.profile_list)
    ctx = ServerContext(user="alice", server="", namespace="jhub", object_name="jupyter-alice",
                        secret_name="jupyter-alice-env")
    tried = 0
    for profile in profiles:
        options = profile["profile_options"] or {"": {"choices": {"": {}}}}
        for option, spec in options.items():
            for choice in spec["choices"]:
                user_options = {"profile": profile["slug"]}
                if option:
                    user_options[option] = choice
                selection = select_profile(profiles, user_options)
                variables: dict[str, str] = {}
                for _, override, _ in selection.overrides():
                    variables.update(override.get("variables") or {})
                children = render(template, variables, ctx)  # raises if refused
                assert children[-1].kind == "Pod"
                tried += 1
    assert tried == 3


def test_hub_role_grants_exactly_the_hubs_needs() -> None:
    (role,) = [d for d in docs("hub-role.yaml") if d["kind"] == "Role"]
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {
        *{("notebooks.async-kubespawner.io", "notebookservers", v)
          for v in ("create", "delete", "get", "list", "watch")},
        ("", "secrets", "create"), ("", "secrets", "delete"),
        ("", "events", "get"), ("", "events", "list"), ("", "events", "watch"),
    }


def test_operator_runs_two_replicas_of_the_module() -> None:
    (deployment,) = [d for d in docs("operator.yaml") if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python3", "-m", "async_kubespawner.operator"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == account
               for d in docs("operator.yaml"))
