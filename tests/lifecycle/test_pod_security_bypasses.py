"""Through the spawner: a seccomp annotation and a probe or hook that names a host are
refused before anything is created, under the profile that forbids them, and the error
names the setting they come from."""

from __future__ import annotations

from typing import Any

import pytest

from async_kubespawner.traits import SpawnerConfigError

from .conftest import NAMESPACE, store_pods

PVC = {"storage_pvc_ensure": True, "storage_capacity": "1Gi"}


def drop_sidecar_seccomp(spawner: Any, pod: Any) -> Any:
    """A hook that leaves the sidecar to the pod-level profile, and an annotation that
    the API server would then copy into the sidecar's empty field."""
    for container in pod.spec.containers:
        if container.name == "side":  # its securityContext is a dict, as upstream's
            container.security_context.pop("seccompProfile")
    pod.metadata.annotations["container.seccomp.security.alpha.kubernetes.io/side"] = (
        "unconfined"
    )
    return pod


CASES = [
    (
        "baseline",
        {"extra_annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
        "Seccomp",
        "extra_annotations",
    ),
    (
        "restricted",
        {
            "extra_containers": [{"name": "side", "image": "busybox"}],
            "modify_pod_hook": drop_sidecar_seccomp,
        },
        "Seccomp",
        "modify_pod_hook",
    ),
    (
        "baseline",
        {"lifecycle_hooks": {"postStart": {"httpGet": {"host": "169.254.169.254", "port": 80}}}},
        "Host Probes / Lifecycle Hooks",
        "lifecycle_hooks",
    ),
    (
        "restricted",
        {
            "extra_containers": [
                {
                    "name": "side",
                    "image": "busybox",
                    "livenessProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 22}},
                }
            ]
        },
        "Host Probes / Lifecycle Hooks",
        "extra_containers",
    ),
]


@pytest.mark.parametrize(("level", "config", "control", "setting"), CASES)
async def test_refused_before_anything_is_created(
    sim: Any, make_spawner: Any, level: str, config: dict[str, Any], control: str, setting: str
) -> None:
    spawner = make_spawner(security_profile=level, **PVC, **config)
    with pytest.raises(SpawnerConfigError) as info:
        await spawner.start()
    message = str(info.value)
    assert f'control "{control}"' in message, message
    assert setting in message, message
    assert store_pods(sim) == []
    pvcs, _ = sim.store.list(sim.store.resource("persistentvolumeclaims"), NAMESPACE)
    assert pvcs == []


async def test_a_runtime_default_annotation_is_accepted_under_baseline(
    sim: Any, make_spawner: Any
) -> None:
    spawner = make_spawner(
        security_profile="baseline",
        extra_annotations={"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"},
    )
    assert (await spawner.start()).startswith("http://")
    await spawner.stop()
