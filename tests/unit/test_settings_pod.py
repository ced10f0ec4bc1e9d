"""Each pod-related setting, configured as a hub would, and what it changes in the pod."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from async_kubespawner.objects.manifests import to_dict
from tests.unit.spawner_fakes import make_spawner


async def pod_of(
    config: dict | None = None, user: str = "alice", server: str = "", **traits: Any
) -> dict:
    spawner = make_spawner(user, server, config=config, **traits)
    return to_dict(await spawner.get_pod_manifest())


def notebook(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def env_of(pod: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in notebook(pod)["env"]}


# (config, where to look in the pod, expected)
SIMPLE_EFFECTS = [
    ({"image": "example.org/lab:2"}, lambda p: notebook(p)["image"], "example.org/lab:2"),
    ({"image_pull_policy": "Always"}, lambda p: notebook(p)["imagePullPolicy"], "Always"),
    ({}, lambda p: "imagePullPolicy" in notebook(p), False),
    (
        {"image_pull_secrets": ["a", {"name": "b"}]},
        lambda p: p["spec"]["imagePullSecrets"],
        [{"name": "a"}, {"name": "b"}],
    ),
    (
        {"cmd": ["jupyterhub-singleuser"], "args": ["--debug"]},
        lambda p: notebook(p)["args"],
        ["jupyterhub-singleuser", "--debug"],
    ),
    # JupyterHub's Command trait: a string is one word (split only on the command line)
    ({"cmd": "start-notebook.sh"}, lambda p: notebook(p)["args"], ["start-notebook.sh"]),
    ({"working_dir": "/home/{username}"}, lambda p: notebook(p)["workingDir"], "/home/alice"),
    ({"node_selector": {"pool": "users"}}, lambda p: p["spec"]["nodeSelector"], {"pool": "users"}),
    (
        {
            "tolerations": {
                "b": {"key": "b", "operator": "Exists"},
                "a": {"key": "a", "operator": "Exists"},
            }
        },
        lambda p: [t["key"] for t in p["spec"]["tolerations"]],
        ["a", "b"],
    ),
    (
        {"node_affinity_required": [{"matchExpressions": [{"key": "k", "operator": "Exists"}]}]},
        lambda p: p["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"][0]["key"],
        "k",
    ),
    (
        {
            "node_affinity_preferred": [
                {
                    "weight": 5,
                    "preference": {"matchExpressions": [{"key": "k", "operator": "Exists"}]},
                }
            ]
        },
        lambda p: p["spec"]["affinity"]["nodeAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ][0]["weight"],
        5,
    ),
    (
        {"pod_affinity_required": [{"topologyKey": "zone"}]},
        lambda p: p["spec"]["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ],
        [{"topologyKey": "zone"}],
    ),
    (
        {
            "pod_affinity_preferred": {
                "x": {"weight": 7, "podAffinityTerm": {"topologyKey": "zone"}}
            }
        },
        lambda p: p["spec"]["affinity"]["podAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ][0]["weight"],
        7,
    ),
    (
        {"pod_anti_affinity_required": [{"topologyKey": "host"}]},
        lambda p: p["spec"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ],
        [{"topologyKey": "host"}],
    ),
    (
        {
            "pod_anti_affinity_preferred": [
                {"weight": 9, "podAffinityTerm": {"topologyKey": "host"}}
            ]
        },
        lambda p: p["spec"]["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ][0]["weight"],
        9,
    ),
    ({"scheduler_name": "binpack"}, lambda p: p["spec"]["schedulerName"], "binpack"),
    ({"priority_class_name": "users"}, lambda p: p["spec"]["priorityClassName"], "users"),
    ({}, lambda p: "priorityClassName" in p["spec"], False),
    (
        {"lifecycle_hooks": {"preStop": {"exec": {"command": ["stop"]}}}},
        lambda p: notebook(p)["lifecycle"],
        {"preStop": {"exec": {"command": ["stop"]}}},
    ),
    (
        {"init_containers": [{"name": "chown", "image": "busybox", "args": ["{username}"]}]},
        lambda p: p["spec"]["initContainers"],
        [{"name": "chown", "image": "busybox", "args": ["alice"]}],
    ),
    (
        {"extra_containers": {"z": {"name": "side", "image": "s:{username}"}}},
        lambda p: p["spec"]["containers"][1],
        {"name": "side", "image": "s:alice"},
    ),
    (
        {"extra_container_config": {"stdin": True, "tty": True}},
        lambda p: (notebook(p)["stdin"], notebook(p)["tty"]),
        (True, True),
    ),
    (
        {"extra_pod_config": {"hostname": "{username}", "dns_policy": "ClusterFirst"}},
        lambda p: (p["spec"]["hostname"], p["spec"]["dnsPolicy"]),
        ("alice", "ClusterFirst"),
    ),
    (
        {"uid": 1000, "gid": 100},
        lambda p: notebook(p)["securityContext"],
        {"runAsUser": 1000, "runAsGroup": 100, "allowPrivilegeEscalation": False},
    ),
    (
        {"fs_gid": 100, "supplemental_gids": [5, 6]},
        lambda p: p["spec"]["securityContext"],
        {"fsGroup": 100, "supplementalGroups": [5, 6]},
    ),
    ({"privileged": True}, lambda p: notebook(p)["securityContext"]["privileged"], True),
    ({"allow_privilege_escalation": None}, lambda p: "securityContext" in notebook(p), False),
    (
        {"allow_privilege_escalation": True},
        lambda p: notebook(p)["securityContext"]["allowPrivilegeEscalation"],
        True,
    ),
    (
        {
            "uid": 1000,
            "container_security_context": {
                "runAsUser": 2000,
                "capabilities": {"add": ["NET_ADMIN"]},
            },
        },
        lambda p: notebook(p)["securityContext"],
        {
            "runAsUser": 2000,
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN"]},
        },
    ),
    (
        {
            "fs_gid": 100,
            "pod_security_context": {"fsGroup": 200, "sysctls": [{"name": "a", "value": "1"}]},
        },
        lambda p: p["spec"]["securityContext"],
        {"fsGroup": 200, "sysctls": [{"name": "a", "value": "1"}]},
    ),
    (
        {"service_account": "sa-{username}"},
        lambda p: (p["spec"]["serviceAccountName"], "automountServiceAccountToken" in p["spec"]),
        ("sa-alice", False),
    ),
    ({}, lambda p: p["spec"]["automountServiceAccountToken"], False),
    (
        {"automount_service_account_token": True},
        lambda p: p["spec"]["automountServiceAccountToken"],
        True,
    ),
    (
        {"cpu_limit": 2.0, "cpu_guarantee": 0.5, "mem_limit": "2G", "mem_guarantee": "1G"},
        lambda p: notebook(p)["resources"],
        {
            "limits": {"cpu": 2.0, "memory": 2 * 1024**3},
            "requests": {"cpu": 0.5, "memory": 1024**3},
        },
    ),
    (
        {
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
            "extra_resource_guarantees": {"nvidia.com/gpu": "1"},
        },
        lambda p: notebook(p)["resources"],
        {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}},
    ),
    (
        {
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
            "volume_mounts": {"home": {"name": "home", "mountPath": "/home/{username}"}},
        },
        lambda p: (p["spec"]["volumes"], notebook(p)["volumeMounts"]),
        (
            [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
            [{"name": "home", "mountPath": "/home/alice"}],
        ),
    ),
    (
        {"pod_name_template": "nb-{username}-{userid}"},
        lambda p: p["metadata"]["name"],
        "nb-alice-7",
    ),
    (
        {"component_label": "lab"},
        lambda p: (
            p["metadata"]["labels"]["component"],
            p["metadata"]["labels"]["app.kubernetes.io/component"],
        ),
        ("lab", "lab"),
    ),
    (
        {"common_labels": {"team": "x"}},
        lambda p: sorted(p["metadata"]["labels"]),
        [
            "app.kubernetes.io/component",
            "component",
            "hub.jupyter.org/servername",
            "hub.jupyter.org/username",
            "team",
        ],
    ),
    ({"extra_labels": {"user": "{username}"}}, lambda p: p["metadata"]["labels"]["user"], "alice"),
    (
        {"extra_annotations": {"user": "{unescaped_username}"}},
        lambda p: p["metadata"]["annotations"]["user"],
        "alice",
    ),
    ({"ip": "127.0.0.2"}, lambda p: env_of(p)["JUPYTERHUB_SERVICE_URL"], "http://127.0.0.2:8888/"),
    (
        {"port": 9999},
        lambda p: (notebook(p)["ports"][0]["containerPort"], env_of(p)["JUPYTERHUB_SERVICE_URL"]),
        (9999, "http://0.0.0.0:9999/"),
    ),
    (
        {
            "environment": {
                "HOME_DIR": "/home/{username}",
                "FROM": {"valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            }
        },
        lambda p: (env_of(p)["HOME_DIR"], env_of(p)["FROM"]),
        ("/home/alice", {"fieldRef": {"fieldPath": "spec.nodeName"}}),
    ),
    (
        {"environment": {"SIZE": lambda spawner: "big-" + spawner.user.name}},
        lambda p: env_of(p)["SIZE"],
        "big-alice",
    ),
    ({"env_keep": ["PATH"]}, lambda p: "PATH" in env_of(p), True),
    ({}, lambda p: "PATH" in env_of(p), False),
    (
        {"image": "img:3"},
        lambda p: (env_of(p)["JUPYTER_IMAGE"], env_of(p)["JUPYTER_IMAGE_SPEC"]),
        ("img:3", "img:3"),
    ),
    ({"default_url": "/lab"}, lambda p: env_of(p)["JUPYTERHUB_DEFAULT_URL"], "/lab"),
]


@pytest.mark.parametrize(("config", "look", "expected"), SIMPLE_EFFECTS)
async def test_setting_changes_the_pod(config: dict, look, expected) -> None:
    assert look(await pod_of(config)) == expected


async def test_defaults_give_the_upstream_pod() -> None:
    pod = await pod_of()
    assert pod["metadata"]["name"] == "jupyter-alice"
    assert pod["metadata"]["labels"] == {
        "hub.jupyter.org/username": "alice",
        "app.kubernetes.io/name": "jupyterhub",
        "app.kubernetes.io/managed-by": "kubespawner",
        "app": "jupyterhub",
        "heritage": "jupyterhub",
        "component": "singleuser-server",
        "app.kubernetes.io/component": "singleuser-server",
        "hub.jupyter.org/servername": "",
    }
    annotations = pod["metadata"]["annotations"]
    assert annotations["hub.jupyter.org/username"] == "alice"
    assert "hub.jupyter.org/servername" not in annotations
    assert {"hub.jupyter.org/kubespawner-version", "hub.jupyter.org/jupyterhub-version"} <= set(
        annotations
    )
    c = notebook(pod)
    assert c["image"] == "quay.io/jupyterhub/singleuser:latest"
    assert "args" not in c and "workingDir" not in c
    assert pod["spec"]["restartPolicy"] == "OnFailure"


async def test_named_server_labels_and_annotations() -> None:
    pod = await pod_of(user="alice", server="Big Lab")
    assert pod["metadata"]["annotations"]["hub.jupyter.org/servername"] == "Big Lab"
    assert pod["metadata"]["labels"]["hub.jupyter.org/servername"].startswith("big-lab---")


async def test_args_without_cmd_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        pod = await pod_of({"args": ["--debug"]})
    assert "args" not in notebook(pod)
    assert "cmd is None" in caplog.text


@pytest.mark.parametrize("style", ["value", "sync", "async"])
async def test_id_callables_sync_or_async(style: str) -> None:
    values = {
        "uid": 1001,
        "gid": 1002,
        "fs_gid": 1003,
        "supplemental_gids": [1004],
        "container_security_context": {"readOnlyRootFilesystem": True},
        "pod_security_context": {"runAsNonRoot": True},
    }

    def wrap(value):
        if style == "value":
            return value
        if style == "sync":
            return lambda spawner: value

        async def produce(spawner):
            return value

        return produce

    pod = await pod_of({k: wrap(v) for k, v in values.items()})
    assert notebook(pod)["securityContext"] == {
        "runAsUser": 1001,
        "runAsGroup": 1002,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
    }
    assert pod["spec"]["securityContext"] == {
        "fsGroup": 1003,
        "supplementalGroups": [1004],
        "runAsNonRoot": True,
    }


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_modify_pod_hook_sync_or_async(style: str) -> None:
    seen = {}

    def modify(spawner, pod):
        seen["name"] = pod.metadata.name
        pod.metadata.labels["hooked"] = spawner.user.name
        return pod

    async def modify_async(spawner, pod):
        return modify(spawner, pod)

    spawner = make_spawner(config={"modify_pod_hook": modify if style == "sync" else modify_async})
    pod = await spawner.prepare_pod()
    assert seen["name"] == "jupyter-alice"
    assert pod.metadata.labels["hooked"] == "alice"


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_after_pod_created_hook_sync_or_async(style: str) -> None:
    calls = []

    def hook(spawner, pod):
        calls.append(pod["metadata"]["uid"])

    async def hook_async(spawner, pod):
        hook(spawner, pod)

    spawner = make_spawner(
        config={"after_pod_created_hook": hook if style == "sync" else hook_async}
    )
    await spawner.run_after_pod_created_hook({"metadata": {"uid": "u-1"}})
    assert calls == ["u-1"]


async def test_security_profile_restricted() -> None:
    pod = await pod_of({"security_profile": "restricted", "uid": 1000})
    assert notebook(pod)["securityContext"] == {
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


async def test_api_token_in_secret_keeps_the_token_out_of_the_pod() -> None:
    spawner = make_spawner(
        config={"api_token_in_secret": True, "secret_name_template": "tok-{username}"}
    )
    pod = to_dict(await spawner.get_pod_manifest())
    assert "secret-token-value" not in repr(pod)
    reference = {"secretKeyRef": {"name": "tok-alice", "key": "jupyterhub-api-token"}}
    assert env_of(pod)["JUPYTERHUB_API_TOKEN"] == reference
    assert env_of(pod)["JPY_API_TOKEN"] == reference
    assert spawner.needs_secret
    secret = to_dict(
        spawner.get_secret_manifest({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"})
    )
    import base64

    assert base64.b64decode(secret["data"]["jupyterhub-api-token"]) == b"secret-token-value"
    # without the option the token is a literal env value, as upstream does
    plain = await pod_of()
    assert env_of(plain)["JUPYTERHUB_API_TOKEN"] == "secret-token-value"
    assert not make_spawner().needs_secret


async def test_internal_ssl_mounts_the_secret() -> None:
    spawner = make_spawner(config={"secret_mount_path": "/certs/"})
    spawner.internal_ssl = True
    pod = to_dict(await spawner.get_pod_manifest())
    assert {
        "name": "jupyterhub-internal-certs",
        "secret": {"secretName": "jupyter-alice", "defaultMode": 511},
    } in pod["spec"]["volumes"]
    assert {"name": "jupyterhub-internal-certs", "mountPath": "/certs/"} in notebook(pod)[
        "volumeMounts"
    ]


def test_pod_url() -> None:
    pod = {"status": {"podIP": "10.0.0.5"}}
    assert make_spawner()._get_pod_url(pod) == "http://10.0.0.5:8888"
    assert make_spawner()._get_pod_url({"status": {"podIP": "fd00::1"}}) == "http://[fd00::1]:8888"
    assert make_spawner(config={"services_enabled": True})._get_pod_url(pod) == (
        "http://jupyter-alice.default.svc.cluster.local:8888"
    )
    assert (
        make_spawner(config={"pod_connect_ip": "{username}.pods"})._get_pod_url(pod)
        == "http://alice.pods:8888"
    )
    assert make_spawner(
        config={"dns_name_template": "{name}.{namespace}", "services_enabled": True}
    )._get_pod_url(pod) == ("http://jupyter-alice.default:8888")
    custom = make_spawner(config={"get_pod_url": lambda spawner, pod: "http://x:1"})
    assert custom._get_pod_url(pod) == "http://x:1"
    ssl = make_spawner()
    ssl.internal_ssl = True
    assert ssl._get_pod_url(pod) == "https://jupyter-alice.default.svc.cluster.local:8888"


@pytest.mark.parametrize(
    ("pod", "running"),
    [
        (None, False),
        ({"status": {"phase": "Pending"}, "metadata": {}}, False),
        (
            {
                "status": {
                    "phase": "Running",
                    "podIP": "1.2.3.4",
                    "containerStatuses": [{"ready": True}],
                },
                "metadata": {},
            },
            True,
        ),
        ({"status": {"phase": "Running", "podIP": None}, "metadata": {}}, False),
        (
            {
                "status": {
                    "phase": "Running",
                    "podIP": "1.2.3.4",
                    "containerStatuses": [{"ready": False}],
                },
                "metadata": {},
            },
            False,
        ),
        (
            {
                "status": {"phase": "Running", "podIP": "1.2.3.4"},
                "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
            },
            False,
        ),
    ],
)
def test_is_pod_running(pod, running: bool) -> None:
    assert make_spawner().is_pod_running(pod) is running


async def test_image_pull_secrets_as_a_string_is_deprecated_but_works() -> None:
    with pytest.warns(DeprecationWarning, match=r"image_pull_secrets = \[\{'name': 'regcred'\}\]"):
        spawner = make_spawner(config={"image_pull_secrets": "regcred"})
    # upstream's documented reading of a single name: one LocalObjectReference dict
    assert spawner.image_pull_secrets == [{"name": "regcred"}]
    pod = to_dict(await spawner.get_pod_manifest())
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


async def test_template_fields_in_pod_settings_follow_the_slug_scheme() -> None:
    safe = await pod_of(
        {"working_dir": "/home/{username}", "extra_labels": {"u": "{safe_username}"}}, user="Ann"
    )
    escape = await pod_of(
        {
            "working_dir": "/home/{username}",
            "slug_scheme": "escape",
            "extra_labels": {"u": "{safe_username}"},
        },
        user="Ann",
    )
    assert notebook(safe)["workingDir"].startswith("/home/ann---")
    assert notebook(escape)["workingDir"] == "/home/-41nn"
    assert safe["metadata"]["labels"]["u"] == escape["metadata"]["labels"]["u"]
