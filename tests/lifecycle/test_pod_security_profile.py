"""``security_profile`` holds for the pod that reaches the API server: every way the final
pod can break the Pod Security Standard (settings, merges, sidecars, init containers,
profile overrides, modify_pod_hook) is refused before anything is created, with the
control's name and the fix; compliant configurations still spawn."""

from __future__ import annotations

from typing import Any

import pytest

from async_kubespawner.traits import SpawnerConfigError

from .conftest import NAMESPACE, store_pods

PVC_VOLUME = {
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
    "storage_pvc_ensure": True,
    "storage_capacity": "1Gi",
}


def store_pvcs(sim: Any) -> list[dict[str, Any]]:
    items, _ = sim.store.list(sim.store.resource("persistentvolumeclaims"), NAMESPACE)
    return items


def add_host_network(spawner: Any, pod: Any) -> Any:
    pod.spec.host_network = True
    return pod


SIDE = {"name": "side", "image": "busybox"}

# (config, control named in the error, setting named in the error)
NON_COMPLIANT: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "hostpath-volume",
        {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
        "HostPath Volumes",
        "volumes",
    ),
    (
        "host-network",
        {"extra_pod_config": {"hostNetwork": True}},
        "Host Namespaces",
        "extra_pod_config",
    ),
    ("host-pid", {"extra_pod_config": {"hostPID": True}}, "Host Namespaces", "extra_pod_config"),
    ("host-ipc", {"extra_pod_config": {"host_ipc": True}}, "Host Namespaces", "extra_pod_config"),
    (
        "replaced-context-privileged",
        {"extra_container_config": {"securityContext": {"privileged": True}}},
        "Privileged Containers",
        "extra_container_config",
    ),
    (
        "replaced-context-root",
        {"extra_container_config": {"securityContext": {"runAsUser": 0}}},
        "Privilege Escalation",
        "extra_container_config",
    ),
    (
        "host-port",
        {
            "extra_container_config": {
                "ports": [{"name": "notebook-port", "containerPort": 8888, "hostPort": 8888}]
            }
        },
        "Host Ports",
        "extra_container_config",
    ),
    (
        "proc-mount",
        {"container_security_context": {"procMount": "Unmasked"}},
        "/proc Mount Type",
        "container_security_context",
    ),
    (
        "selinux-type",
        {"pod_security_context": {"seLinuxOptions": {"type": "spc_t"}}},
        "SELinux",
        "pod_security_context",
    ),
    (
        "selinux-user",
        {"container_security_context": {"seLinuxOptions": {"user": "root"}}},
        "SELinux",
        "container_security_context",
    ),
    (
        "apparmor-field",
        {"container_security_context": {"appArmorProfile": {"type": "Unconfined"}}},
        "AppArmor",
        "container_security_context",
    ),
    (
        "apparmor-annotation",
        {
            "extra_annotations": {
                "container.apparmor.security.beta.kubernetes.io/notebook": "unconfined"
            }
        },
        "AppArmor",
        "extra_annotations",
    ),
    (
        "windows-host-process",
        {"pod_security_context": {"windowsOptions": {"hostProcess": True}}},
        "HostProcess",
        "pod_security_context",
    ),
    (
        "unsafe-sysctl",
        {"pod_security_context": {"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}},
        "Sysctls",
        "pod_security_context",
    ),
    (
        "privileged-sidecar",
        {"extra_containers": [{**SIDE, "securityContext": {"privileged": True}}]},
        "Privileged Containers",
        "extra_containers",
    ),
    (
        "root-init-container",
        {"init_containers": [{**SIDE, "name": "init", "securityContext": {"runAsUser": 0}}]},
        "Running as Non-root user",
        "init_containers",
    ),
    (
        "sys-admin-sidecar",
        {
            "extra_containers": [
                {**SIDE, "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
            ]
        },
        "Capabilities",
        "extra_containers",
    ),
    (
        "unconfined-seccomp",
        {"extra_pod_config": {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}},
        "Seccomp",
        "extra_pod_config",
    ),
    (
        "nfs-volume",
        {"volumes": [{"name": "n", "nfs": {"server": "nfs", "path": "/x"}}]},
        "Volume Types",
        "volumes",
    ),
    (
        "modify-pod-hook",
        {"modify_pod_hook": add_host_network},
        "Host Namespaces",
        "modify_pod_hook",
    ),
]


@pytest.mark.parametrize(
    ("config", "control", "setting"),
    [pytest.param(c, ctl, s, id=i) for i, c, ctl, s in NON_COMPLIANT],
)
async def test_restricted_refuses_before_anything_is_created(
    sim: Any, make_spawner: Any, config: dict[str, Any], control: str, setting: str
) -> None:
    spawner = make_spawner(security_profile="restricted", **{**PVC_VOLUME, **config})
    with pytest.raises(SpawnerConfigError) as info:
        await spawner.start()
    message = str(info.value)
    assert f'control "{control}"' in message, message
    assert "'restricted' Pod Security Standard" in message
    assert setting in message, message
    assert "nothing was created" in message
    assert store_pods(sim) == []
    assert store_pvcs(sim) == []


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"container_security_context": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}},
            id="net-bind",
        ),
        pytest.param(
            {"extra_containers": [SIDE], "init_containers": [{**SIDE, "name": "init"}]},
            id="sidecars",
        ),
        pytest.param(
            {
                "uid": 1000,
                "fs_gid": 100,
                "pod_security_context": {
                    "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]
                },
            },
            id="safe-sysctl",
        ),
        pytest.param(
            {
                "container_security_context": {
                    "seLinuxOptions": {"type": "container_t"},
                    "appArmorProfile": {"type": "RuntimeDefault"},
                }
            },
            id="allowed-lsm",
        ),
    ],
)
async def test_restricted_compliant_configurations_spawn(
    sim: Any, make_spawner: Any, config: dict[str, Any]
) -> None:
    spawner = make_spawner(security_profile="restricted", **{**PVC_VOLUME, **config})
    assert (await spawner.start()).startswith("http://")
    (pod,) = store_pods(sim)
    assert len(store_pvcs(sim)) == 1
    for container in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    await spawner.stop()


async def test_baseline_refuses_host_namespaces_but_allows_root(
    sim: Any, make_spawner: Any
) -> None:
    spawner = make_spawner(
        security_profile="baseline", extra_pod_config={"hostNetwork": True}, **PVC_VOLUME
    )
    with pytest.raises(SpawnerConfigError, match="'baseline' Pod Security Standard"):
        await spawner.start()
    assert store_pvcs(sim) == []
    spawner = make_spawner(security_profile="baseline", uid=0, **PVC_VOLUME)
    assert (await spawner.start()).startswith("http://")
    await spawner.stop()


async def test_profile_override_is_checked(sim: Any, make_spawner: Any) -> None:
    spawner = make_spawner(
        security_profile="restricted",
        profile_list=[
            {"display_name": "Plain", "slug": "plain", "default": True},
            {
                "display_name": "Host",
                "slug": "host",
                "kubespawner_override": {"extra_pod_config": {"hostNetwork": True}},
            },
        ],
        **PVC_VOLUME,
    )
    spawner.user_options = {"profile": "host"}
    with pytest.raises(SpawnerConfigError, match='control "Host Namespaces"'):
        await spawner.start()
    assert store_pods(sim) == [] and store_pvcs(sim) == []


async def test_modify_pod_hook_runs_once_per_start(sim: Any, make_spawner: Any) -> None:
    calls: list[str] = []

    def hook(spawner: Any, pod: Any) -> Any:
        calls.append(pod.metadata.name)
        return pod

    spawner = make_spawner(security_profile="restricted", modify_pod_hook=hook)
    await spawner.start()
    assert calls == ["jupyter-alice"]
    await spawner.stop()
