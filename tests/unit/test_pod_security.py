"""The Pod Security Standards checker, control by control, on pods in the API's JSON shape.
Each control has a pod that breaks only it, and the restricted pod the spawner builds
passes every control."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from async_kubespawner.objects.manifests import to_dict
from async_kubespawner.objects.pod_security import CONTROLS, check_pod, controls_for
from tests.unit.restricted_pods import compliant
from tests.unit.spawner_fakes import make_spawner


def side(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][1]["securityContext"]


def init(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["initContainers"][0]["securityContext"]


# control -> ways to break it (each a mutation of the compliant pod)
BREAKERS = {
    ("HostProcess", "baseline"): [
        lambda p: p["spec"]["securityContext"].update(windowsOptions={"hostProcess": True}),
        lambda p: init(p).update(windowsOptions={"hostProcess": True}),
    ],
    ("Host Namespaces", "baseline"): [
        lambda p: p["spec"].update(hostNetwork=True),
        lambda p: p["spec"].update(hostPID=True),
        lambda p: p["spec"].update(hostIPC=True),
    ],
    ("Privileged Containers", "baseline"): [lambda p: side(p).update(privileged=True)],
    ("Capabilities", "baseline"): [
        lambda p: side(p)["capabilities"].update(add=["SYS_ADMIN"]),
    ],
    ("HostPath Volumes", "baseline"): [
        lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}})
    ],
    ("Host Ports", "baseline"): [
        lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}])
    ],
    ("AppArmor", "baseline"): [
        lambda p: side(p).update(appArmorProfile={"type": "Unconfined"}),
        lambda p: p["metadata"]["annotations"].update(
            {"container.apparmor.security.beta.kubernetes.io/side": "unconfined"}
        ),
    ],
    ("SELinux", "baseline"): [
        lambda p: p["spec"]["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
        lambda p: side(p).update(seLinuxOptions={"user": "u"}),
        lambda p: init(p).update(seLinuxOptions={"role": "r"}),
    ],
    ("/proc Mount Type", "baseline"): [lambda p: init(p).update(procMount="Unmasked")],
    ("Seccomp", "baseline"): [
        lambda p: side(p).update(seccompProfile={"type": "Unconfined"}),
        lambda p: (
            side(p).pop("seccompProfile"),
            p["metadata"]["annotations"].update(
                {"container.seccomp.security.alpha.kubernetes.io/side": "unconfined"}
            ),
        ),
    ],
    ("Sysctls", "baseline"): [
        lambda p: p["spec"]["securityContext"].update(
            sysctls=[{"name": "kernel.msgmax", "value": "1"}]
        )
    ],
    ("Host Probes / Lifecycle Hooks", "baseline"): [
        lambda p: p["spec"]["containers"][1].update(
            readinessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}
        ),
        lambda p: p["spec"]["initContainers"][0].update(
            lifecycle={"preStop": {"tcpSocket": {"host": "node", "port": 22}}}
        ),
    ],
    ("Volume Types", "restricted"): [
        lambda p: p["spec"]["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}),
        lambda p: p["spec"]["volumes"].append({"name": "g", "gitRepo": {"repository": "r"}}),
    ],
    ("Privilege Escalation", "restricted"): [
        lambda p: side(p).pop("allowPrivilegeEscalation"),
        lambda p: init(p).update(allowPrivilegeEscalation=True),
    ],
    ("Running as Non-root", "restricted"): [
        lambda p: side(p).update(runAsNonRoot=False),
        lambda p: (
            p["spec"]["securityContext"].pop("runAsNonRoot"),
            init(p).pop("runAsNonRoot"),
        ),
    ],
    ("Running as Non-root user", "restricted"): [
        lambda p: p["spec"]["securityContext"].update(runAsUser=0),
        lambda p: init(p).update(runAsUser=0),
    ],
    ("Seccomp", "restricted"): [
        lambda p: (
            p["spec"]["securityContext"].pop("seccompProfile"),
            side(p).pop("seccompProfile"),
        ),
    ],
    ("Capabilities", "restricted"): [
        lambda p: side(p)["capabilities"].update(drop=["NET_RAW"]),
        lambda p: init(p)["capabilities"].update(add=["CHOWN"]),
    ],
}


def test_every_control_is_counted_and_broken_by_a_case() -> None:
    assert len(CONTROLS) == 18
    assert len(controls_for("baseline")) == 12
    assert {(c.name, c.level) for c in CONTROLS} == set(BREAKERS)


def test_the_compliant_pod_passes() -> None:
    assert check_pod(compliant(), "restricted") == []


@pytest.mark.parametrize(
    ("control", "level", "index"),
    [(c, lv, i) for (c, lv), fns in BREAKERS.items() for i in range(len(fns))],
)
def test_each_breach_is_reported_by_its_control(control: str, level: str, index: int) -> None:
    pod = compliant()
    BREAKERS[(control, level)][index](pod)
    violations = check_pod(pod, "restricted")
    assert (control, level) in {(v.control, v.level) for v in violations}, violations
    if level == "restricted":
        assert check_pod(pod, "baseline") == []
    else:
        assert {(v.control, v.level) for v in check_pod(pod, "baseline")} == {(control, level)}


def test_allowed_values_pass() -> None:
    pod = compliant()
    pod["spec"]["securityContext"]["sysctls"] = [
        {"name": "net.ipv4.tcp_keepalive_time", "value": "1"}
    ]
    pod["spec"]["securityContext"]["seLinuxOptions"] = {"type": "container_engine_t", "level": "s0"}
    side(pod)["appArmorProfile"] = {"type": "Localhost", "localhostProfile": "p"}
    side(pod)["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p"}
    side(pod)["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    init(pod)["procMount"] = "Default"
    pod["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/x"] = (
        "localhost/p"
    )
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 0}]
    pod["spec"]["volumes"].append({"name": "i", "image": {"reference": "r"}})
    # container-level seccomp may be left out when the pod sets it
    init(pod).pop("seccompProfile")
    assert check_pod(pod, "restricted") == []


def test_windows_pods_are_exempt_from_linux_only_controls() -> None:
    pod = compliant()
    pod["spec"]["os"] = {"name": "windows"}
    for context in (side(pod), init(pod)):
        context.pop("allowPrivilegeEscalation")
        context.pop("capabilities")
        context.pop("seccompProfile")
    pod["spec"]["securityContext"].pop("seccompProfile")
    assert check_pod(pod, "restricted") == []


@pytest.mark.parametrize("profile", ["restricted", "baseline"])
def test_the_spawners_own_pod_passes_its_profile(profile: str) -> None:
    spawner = make_spawner(
        config={
            "security_profile": profile,
            "extra_containers": [{"name": "side", "image": "busybox"}],
            "init_containers": [{"name": "init", "image": "busybox"}],
        }
    )
    pod = to_dict(asyncio.run(spawner.get_pod_manifest()))
    assert check_pod(pod, profile) == []


def test_an_unprofiled_pod_does_not_pass_restricted() -> None:
    """The default pod sets nothing: restricted requires explicit fields."""
    pod = to_dict(asyncio.run(make_spawner().get_pod_manifest()))
    controls = {v.control for v in check_pod(pod, "restricted")}
    assert {"Running as Non-root", "Seccomp", "Capabilities"} <= controls
    assert check_pod(pod, "baseline") == []


def test_baseline_refuses_a_privileged_notebook_at_build() -> None:
    from async_kubespawner.traits import SpawnerConfigError

    spawner = make_spawner(config={"security_profile": "baseline", "privileged": True})
    with pytest.raises(SpawnerConfigError, match="contradicts security_profile 'baseline'"):
        asyncio.run(spawner.get_pod_manifest())
