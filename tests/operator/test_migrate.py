"""The bridge from the in-hub mode: each example's configuration, converted, gives the same objects.

For every example hub configuration in ``examples/`` the bridge either produces a
NotebookTemplate, or refuses with the reason. When it produces one, two simulated
clusters run side by side: on one the in-hub ``KubeSpawner`` starts servers, on the other
the operator (in-process, as in the operator's own tests) provisions the same servers
from the converted template, asked by an ``OperatorSpawner`` with the settings the bridge
printed. The pod, PVC and Service each creates are compared as stored by the API server,
after :func:`normalise_pair` removes exactly these differences (and nothing else):

1. ownership: ``ownerReferences`` (the pod in-hub, the NotebookServer in operator mode);
   the operator's labels and annotations (``notebooks.async-kubespawner.io/*``) and its
   value of ``app.kubernetes.io/managed-by`` (also in the Service's selector);
2. token handling: the API token and the hub's environment are in the container's
   ``env`` in-hub (the token inline, or from the pod's Secret with ``secretKeyRef``), in
   the hub's Secret through ``envFrom`` in operator mode; the *effective* environments
   are compared, every token variable as a marker;
3. the operator's identity label ``hub.jupyter.org/servername`` on the PVC and the
   Service (in-hub only the pod has it); the ``hub.jupyter.org/servername`` annotation of a default server: absent in-hub, empty
   in operator mode;
4. the in-hub create-id annotation (how the in-hub spawner finds its pod on the watch) and
   its ownership record ``hub.jupyter.org/async-kubespawner-owner``, which the converted
   template leaves out on purpose (an in-hub spawner or orphan sweep of the same hub
   would otherwise take the operator's children for its own);
5. what the API server and the cluster fill in: uid, resourceVersion, timestamps,
   status, ``spec.nodeName``, a Service's cluster IPs, a PVC's bound volume.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.testing import run_cluster
from traitlets.config import Config

from async_kubespawner import KubeSpawner
from async_kubespawner.kube.client import close_shared_apis
from async_kubespawner.kube.reflector import stop_reflectors
from async_kubespawner.objects.manifests import API_TOKEN_ENV_NAMES
from async_kubespawner.operator import migrate as bridge
from async_kubespawner.operator.migrate import (
    BridgeRefused,
    convert,
    first_difference,
    load_hub_config,
    normalise_pair,
)
from async_kubespawner.operator.models import LABEL_MANAGED_BY
from async_kubespawner.operator.spawner import OperatorSpawner, stop_operator_reflectors
from async_kubespawner.testing import build_spawner

from .conftest import OperatorHarness

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: What the bridge does with each example: None converts, a string is the refusal's
#: reason (a fragment of the message). Every example directory must be listed here.
EXPECTED: dict[str, str | None] = {
    "local": None,
    "cluster": None,
    "hardened": None,
    "named-servers-pvc": None,
    "user-namespaces": "c.KubeSpawner.enable_user_namespaces cannot be expressed in operator "
                       "mode: a server's objects are owned by its NotebookServer, and "
                       "Kubernetes honours an ownerReference only within one namespace",
    "internal-ssl": "c.JupyterHub.internal_ssl cannot be expressed in operator mode: the hub "
                    "issues each server's certificate before the server exists",
}

#: The servers compared on the clusters, per example (named ones where the hub allows them).
IDENTITIES: dict[str, list[tuple[str, str]]] = {
    "local": [("alice", ""), ("alice", "work"), ("Bob.Smith@example.org", "")],
    "cluster": [("alice", ""), ("alice", "work"), ("Bob.Smith@example.org", "Analysis.2")],
    "hardened": [("alice", ""), ("Bob.Smith@example.org", "")],
    # {servername} in a PVC label: names the 'safe' scheme keeps, and names it slugs
    # (capitals, a dot, non-ASCII, its own "--" separator)
    "named-servers-pvc": [("alice", ""), ("alice", "analysis"), ("alice", "Work"),
                          ("alice", "a.b"), ("Zoë", "données-été"), ("alice", "x--y"),
                          ("Bob.Smith@example.org", "Analysis.2")],
}

KIND_PLURALS = {"pod": "pods", "pvc": "persistentvolumeclaims", "service": "services"}


def example_dirs() -> list[str]:
    return sorted(p.parent.name for p in EXAMPLES.glob("*/jupyterhub_config.py")
                  if p.parent.name != "operator")


def test_every_example_has_an_expectation() -> None:
    found = example_dirs()
    assert {"local", "cluster", "hardened", "named-servers-pvc", "user-namespaces"} <= set(found)
    missing = set(found) - EXPECTED.keys()
    assert not missing, f"examples the bridge test does not cover: {sorted(missing)}"


@pytest.mark.parametrize("example", [e for e in example_dirs() if EXPECTED.get(e)])
async def test_refused_examples_say_why(example: str) -> None:
    config = load_hub_config(EXAMPLES / example / "jupyterhub_config.py")
    with pytest.raises(BridgeRefused) as refused:
        await convert(config)
    reason = EXPECTED[example]
    assert reason is not None and reason in str(refused.value)
    # and it says what to do instead, pointing at the example that keeps the in-hub mode
    assert "Keep the in-hub mode for" in str(refused.value)
    assert f"(examples/{example})" in str(refused.value)


def test_command_line_refuses_with_exit_code_and_message(capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    code = bridge.main(["--config", str(EXAMPLES / "user-namespaces" / "jupyterhub_config.py")])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "enable_user_namespaces cannot be expressed" in captured.err


def test_internal_ssl_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    # The internal-SSL example is checked above when present; this config pins the refusal.
    path = tmp_path / "jupyterhub_config.py"
    path.write_text("c = get_config()\nc.JupyterHub.internal_ssl = True\n"
                    "c.KubeSpawner.api_token_in_secret = True\n")
    with pytest.raises(BridgeRefused, match="internal_ssl cannot be expressed"):
        bridge.check_expressible(load_hub_config(path))


def test_operator_mode_config_and_hooks_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text('c = get_config()\nc.JupyterHub.spawner_class = "async-kubernetes-operator"\n')
    with pytest.raises(BridgeRefused, match="spawner_class"):
        bridge.check_expressible(load_hub_config(path))
    path.write_text("c = get_config()\nc.KubeSpawner.modify_pod_hook = lambda s, p: p\n")
    with pytest.raises(BridgeRefused, match="modify_pod_hook is a callable"):
        bridge.check_expressible(load_hub_config(path))


async def test_userid_converts_and_unexpressible_forms_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text('c = get_config()\nc.KubeSpawner.extra_labels = {"uid": "u{userid}"}\n')
    conversion = await convert(load_hub_config(path))
    assert conversion.template["spec"]["pods"][0]["labels"]["uid"] == "u{user.id}"
    path.write_text('c = get_config()\nc.KubeSpawner.extra_labels = {"srv": "{servername}"}\n')
    conversion = await convert(load_hub_config(path))
    assert conversion.template["spec"]["pods"][0]["labels"]["srv"] == "{server.name.slug}"
    path.write_text('c = get_config()\nc.KubeSpawner.environment = {"X": "awk {{print}}"}\n')
    with pytest.raises(BridgeRefused, match="would read as a placeholder"):
        await convert(load_hub_config(path))
    # the legacy 'escape' slugs have no built-in either: named, not silently approximated
    path.write_text('c = get_config()\nc.KubeSpawner.slug_scheme = "escape"\n')
    with pytest.raises(BridgeRefused, match=r"pod metadata.name \(c.KubeSpawner.pod_name_template\)"):
        await convert(load_hub_config(path))


async def test_hostile_user_names_stay_data(tmp_path: Path) -> None:
    """A user name full of template and YAML syntax renders into values, never structure."""
    conversion = await convert(load_hub_config(EXAMPLES / "cluster" / "jupyterhub_config.py"))
    hostile = 'eve"}\n- {user.name}: {pvcs.home.name} ${HOME}'
    got = bridge.rendered_objects(conversion, hostile, "", "default")
    pod = got["pod"]
    assert pod["metadata"]["annotations"]["hub.jupyter.org/username"] == hostile
    assert [c["name"] for c in pod["spec"]["containers"]] == ["notebook"]
    assert "hub.jupyter.org/async-kubespawner-owner" not in pod["metadata"]["annotations"]
    # and the in-hub spawner builds the very same objects for that user
    await bridge.verify_identity(load_hub_config(EXAMPLES / "cluster" / "jupyterhub_config.py"),
                                 conversion, hostile, "", None)


def test_normalisation_does_not_hide_real_differences() -> None:
    pod = {"metadata": {"name": "p", "labels": {"a": "1"}},
           "spec": {"containers": [{"name": "c", "env": [{"name": "X", "value": "1"}]}]}}
    other = {"metadata": {"name": "p", "labels": {"a": "2"}},
             "spec": {"containers": [{"name": "c", "env": [{"name": "X", "value": "2"}]}]}}
    a, b = normalise_pair(pod, other, "pod", API_TOKEN_ENV_NAMES, None, "s")
    assert first_difference(a, b) == ".metadata.labels.a: '1' in-hub, '2' in operator mode"
    b["metadata"]["labels"]["a"] = "1"
    assert "env.X" in (first_difference(a, b) or "")


# -- the objects, created on two clusters ------------------------------------------------------


@pytest_asyncio.fixture
async def clusters() -> AsyncIterator[tuple[Any, Any]]:
    async with run_cluster(ClusterConfig.fast()) as in_hub, run_cluster(ClusterConfig.fast()) as op:
        try:
            yield in_hub, op
        finally:
            await stop_operator_reflectors()
            await stop_reflectors()
            await close_shared_apis()


def stored(sim: Any, plural: str, namespace: str) -> dict[str, dict[str, Any]]:
    items, _ = sim.store.list(sim.store.resource(plural), namespace)
    return {item["metadata"]["name"]: item for item in items}


def secret_env(secret: dict[str, Any]) -> dict[str, str]:
    env = dict(secret.get("stringData") or {})
    for key, value in (secret.get("data") or {}).items():
        env[key] = base64.b64decode(value).decode()
    return env


async def ensure_namespace(sim: Any, namespace: str) -> None:
    with contextlib.suppress(Exception):
        await sim.store.create(sim.store.resource("namespaces"), None,
                               {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": namespace}})


@pytest.mark.parametrize("example", [e for e in example_dirs() if EXPECTED.get(e, "") is None])
async def test_operator_creates_what_the_in_hub_spawner_creates(
    example: str, clusters: tuple[Any, Any]
) -> None:
    in_hub_sim, op_sim = clusters
    config = load_hub_config(EXAMPLES / example / "jupyterhub_config.py")
    conversion = await convert(config)
    settings = conversion.hub_settings
    namespace = settings.get("namespace") or "default"
    for sim in clusters:
        await ensure_namespace(sim, namespace)

    harness = OperatorHarness(op_sim, namespace=namespace)
    template = dict(conversion.template)
    template["metadata"] = {**template["metadata"], "namespace": namespace}
    await harness.setup(template)
    await harness.start_operator()
    try:
        compared = 0
        for username, servername in IDENTITIES[example]:
            in_hub_config = load_hub_config(EXAMPLES / example / "jupyterhub_config.py")
            in_hub_config.KubeSpawner.k8s_api_host = in_hub_sim.url
            in_hub = build_spawner(KubeSpawner, username, config=in_hub_config,
                                   servername=servername)
            await in_hub.start()

            hub_config = Config()
            hub_config.OperatorSpawner = Config({**settings, "k8s_api_host": op_sim.url,
                                                 "namespace": namespace})
            op_spawner = build_spawner(OperatorSpawner, username, config=hub_config,
                                       servername=servername)
            await op_spawner.start()
            server = await harness.server(op_spawner.object_name)
            assert server is not None and server["status"]["phase"] == "Ready"
            children = {c["kind"]: c["name"] for c in server["status"]["children"]}
            secret = stored(op_sim, "secrets", namespace)[op_spawner.secret_name]

            expected_kinds = {"pod"} | ({"pvc"} if in_hub.storage_pvc_ensure else set()) | (
                {"service"} if in_hub.needs_service else set())
            names = {"pod": in_hub.pod_name, "pvc": in_hub.pvc_name, "service": in_hub.pod_name}
            kind_names = {"pod": "Pod", "pvc": "PersistentVolumeClaim", "service": "Service"}
            assert set(children) == {kind_names[k] for k in expected_kinds}
            for kind in expected_kinds:
                # the same name ...
                assert children[kind_names[kind]] == names[kind]
                mine = stored(in_hub_sim, KIND_PLURALS[kind], namespace)[names[kind]]
                theirs = stored(op_sim, KIND_PLURALS[kind], namespace)[names[kind]]
                # ... owned by the NotebookServer ...
                assert theirs["metadata"]["ownerReferences"][0]["uid"] == server["metadata"]["uid"]
                # ... and, but for the listed differences, the same object
                a, b = normalise_pair(mine, theirs, kind, API_TOKEN_ENV_NAMES,
                                      secret_env(secret), op_spawner.secret_name)
                assert first_difference(a, b) is None, (example, username, servername, kind)
                assert a == b
                compared += 1
            # the effective environment really carries the token, from the hub's Secret
            assert secret_env(secret)["JUPYTERHUB_API_TOKEN"] == op_spawner.api_token
            if "service" in expected_kinds:
                service = stored(op_sim, "services", namespace)[in_hub.pod_name]
                pod = stored(op_sim, "pods", namespace)[in_hub.pod_name]
                selector = service["spec"]["selector"]
                assert selector.items() <= pod["metadata"]["labels"].items()
                assert selector[LABEL_MANAGED_BY] == pod["metadata"]["labels"][LABEL_MANAGED_BY]
            await asyncio.gather(in_hub.stop(), op_spawner.stop())
        assert compared >= len(IDENTITIES[example])
    finally:
        await harness.close()


async def test_profiles_convert_one_template_each() -> None:
    config = load_hub_config(EXAMPLES / "local" / "jupyterhub_config.py")
    small = await convert(config)
    large = await convert(config, user_options={"profile": "large", "image": "previous"})
    image = lambda c: c.template["spec"]["pods"][0]["spec"]["containers"][0]["image"]  # noqa: E731
    assert image(small) == "quay.io/jupyterhub/singleuser:5"
    assert image(large) == "quay.io/jupyterhub/singleuser:4.1"
    text = small.yaml()
    assert yaml.safe_load(text) == small.template  # the comments are comments
    assert "c.OperatorSpawner.template = 'default'" in text


async def test_in_hub_volume_is_adopted_after_the_printed_patch(
    clusters: tuple[Any, Any],
) -> None:
    """The in-hub user's claim (and so their data) survives the switch to operator mode."""
    sim = clusters[0]
    path = EXAMPLES / "cluster" / "jupyterhub_config.py"
    in_hub_config = load_hub_config(path)
    in_hub_config.KubeSpawner.k8s_api_host = sim.url
    in_hub = build_spawner(KubeSpawner, "alice", config=in_hub_config)
    await in_hub.start()
    await in_hub.stop()
    claim = stored(sim, "persistentvolumeclaims", "default")["claim-alice"]

    conversion = await convert(load_hub_config(path))
    harness = OperatorHarness(sim, namespace="default")
    await harness.setup(conversion.template)
    await harness.start_operator()
    try:
        hub_config = Config()
        hub_config.OperatorSpawner = Config({**conversion.hub_settings, "k8s_api_host": sim.url,
                                             "namespace": "default"})
        # unmarked, the in-hub claim is not the operator's to take
        refused = build_spawner(OperatorSpawner, "alice", config=hub_config)
        with pytest.raises(Exception, match="already exists and does not belong"):
            await refused.start()
        await harness.wait_server("jupyter-alice", lambda s: s is None)

        namespace, name, patch = bridge.adoption_patch(load_hub_config(path), "alice")
        assert (namespace, name) == ("default", "claim-alice")
        from async_kubespawner.kube.client import PVCS
        from async_kubespawner.operator.kubeio import merge_patch

        await merge_patch(harness.api, PVCS, namespace, name, patch)
        spawner = build_spawner(OperatorSpawner, "alice", config=hub_config)
        await spawner.start()
        adopted = stored(sim, "persistentvolumeclaims", "default")["claim-alice"]
        assert adopted["metadata"]["uid"] == claim["metadata"]["uid"]  # the same claim
        server = await harness.server("jupyter-alice")
        assert server is not None
        assert adopted["metadata"]["ownerReferences"][0]["uid"] == server["metadata"]["uid"]
        pod = stored(sim, "pods", "default")["jupyter-alice"]
        assert {"name": "volume-alice", "persistentVolumeClaim": {"claimName": "claim-alice"}} in (
            pod["spec"]["volumes"])
        await spawner.stop()
    finally:
        await harness.close()


def test_adoption_command_quotes_what_it_prints(capsys: pytest.CaptureFixture[str]) -> None:
    import shlex

    code = bridge.main(["--config", str(EXAMPLES / "cluster" / "jupyterhub_config.py"),
                        "--adopt-pvc", "O'Brien $(rm -rf /)", "--server", "work"])
    assert code == 0
    words = shlex.split(capsys.readouterr().out)
    assert words[:3] == ["kubectl", "patch", "pvc"]
    patch = __import__("json").loads(words[-1])
    assert patch["metadata"]["annotations"]["notebooks.async-kubespawner.io/user"] == (
        "O'Brien $(rm -rf /)")


async def test_servername_converts_and_renders_the_in_hub_slug(tmp_path: Path) -> None:
    """``{servername}`` becomes ``{server.name.slug}``, which renders exactly the in-hub
    value, also for server names the 'safe' scheme slugs (checked against the in-hub
    spawner here, beyond the bridge's own verification)."""
    config = load_hub_config(EXAMPLES / "named-servers-pvc" / "jupyterhub_config.py")
    conversion = await convert(config)
    pvc = conversion.template["spec"]["pvcs"][0]
    assert pvc["labels"]["hub.jupyter.org/server"] == "{server.name.slug}"
    for servername in ("", "work", "Work", "a.b", "données-été", "x--y", 'q"}\n- {user.name}'):
        got = bridge.rendered_objects(conversion, "alice", servername, "default")
        in_hub = build_spawner(KubeSpawner, "alice", config=config, servername=servername)
        expected = in_hub.get_pvc_manifest().metadata.labels["hub.jupyter.org/server"]
        assert got["pvc"]["metadata"]["labels"]["hub.jupyter.org/server"] == expected
        if servername not in ("", "work"):
            assert expected != servername  # slugged: the case the built-in exists for
        await bridge.verify_identity(config, conversion, "alice", servername, None)


async def test_servername_where_the_in_hub_expansion_drops_a_dash(tmp_path: Path) -> None:
    """In-hub, a template whose fields leave a trailing '-' (``srv-{servername}`` for the
    default server gives ``srv``) loses it; a NotebookTemplate has no such rule, so the
    bridge's own check refuses rather than produce ``srv-`` for the default server."""
    path = tmp_path / "jupyterhub_config.py"
    path.write_text('c = get_config()\nc.KubeSpawner.extra_labels = {"srv": "srv-{servername}"}\n')
    with pytest.raises(BridgeRefused, match=r"would not reproduce the in-hub pod for user "
                       r"'alice', server '': pod.metadata.labels.srv: 'srv' in-hub"):
        await convert(load_hub_config(path))
    # the legacy scheme's {servername} has no built-in: refused, naming the setting
    path.write_text('c = get_config()\nc.KubeSpawner.slug_scheme = "escape"\n'
                    'c.KubeSpawner.pod_name_template = "jupyter-{safe_username}"\n'
                    'c.KubeSpawner.pvc_name_template = "claim-{safe_username}"\n'
                    'c.KubeSpawner.extra_labels = {"srv": "{servername}"}\n')
    with pytest.raises(BridgeRefused, match=r"the in-hub spawner refuses this configuration: "
                       r"c.KubeSpawner.pod_name_template"):
        await convert(load_hub_config(path))
    path.write_text('c = get_config()\nc.KubeSpawner.slug_scheme = "escape"\n'
                    'c.KubeSpawner.extra_labels = {"srv": "{servername}"}\n')
    with pytest.raises(BridgeRefused, match=r"depends on the user or server in a form operator "
                       r"templates cannot express .* not the legacy 'escape' slugs"):
        await convert(load_hub_config(path))


async def test_remember_pvc_name_is_a_printed_note() -> None:
    """The one in-hub storage behaviour a template cannot carry is said, not dropped."""
    config = load_hub_config(EXAMPLES / "named-servers-pvc" / "jupyterhub_config.py")
    conversion = await convert(config)
    assert any(n.startswith("remember_pvc_name:") for n in conversion.notes)
    assert "# remember_pvc_name: operator mode names each claim" in conversion.yaml()
    assert yaml.safe_load(conversion.yaml()) == conversion.template
    config.KubeSpawner.remember_pvc_name = False
    assert not any(n.startswith("remember_pvc_name:") for n in (await convert(config)).notes)
    local = await convert(load_hub_config(EXAMPLES / "local" / "jupyterhub_config.py"))
    assert "pvcs" not in local.template["spec"]
    assert not any(n.startswith("remember_pvc_name:") for n in local.notes)
