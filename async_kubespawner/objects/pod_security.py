"""The Kubernetes Pod Security Standards, checked on a pod before it is created.

``security_profile = "restricted"`` (or ``"baseline"``) is a promise about the pod that
reaches the API server, not about the settings that produced it: ``extra_pod_config``,
``extra_container_config``, sidecars, init containers, profile overrides and
``modify_pod_hook`` can all undo what the profile sets. So the check runs on the final
pod, in the API's JSON shape (camelCase, what is actually sent), and reports every
control it breaks with the field, the value and the fix.

The controls and their allowed values are those of the Pod Security Standards as the
built-in PodSecurity admission plugin enforces them at ``latest`` (Kubernetes 1.34+),
including the values that admission accepts beyond older wording of the standard
(``image`` volumes under restricted; the ``container_engine_t`` SELinux type; the
keepalive sysctls) and its 1.34 control on the host of probes and lifecycle hooks.
Seccomp annotations count as the empty field the API server copies them into. Windows
pods (``spec.os.name: windows``) are exempt from the restricted seccomp, capabilities
and privilege-escalation controls, as in the standard.

Pure: JSON in, violations out; no I/O, no settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("baseline", "restricted")

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
#: Seccomp annotations: deprecated, but the API server still copies them into the empty
#: ``seccompProfile`` field they stand for when it creates a pod (its version-skew rule),
#: so the kubelet applies them. They count as that field wherever the field is unset.
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
#: Probe and lifecycle handlers whose ``host`` the 1.34 baseline forbids.
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_HANDLERS = ("postStart", "preStop")
_HOST_ACTIONS = ("httpGet", "tcpSocket")
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Violation:
    """One field of the pod that breaks one control."""

    control: str
    level: str
    field: str
    value: Any
    fix: str

    def describe(self) -> str:
        return f'control "{self.control}" ({self.level}): {self.field} = {self.value!r}'


@dataclass(frozen=True)
class Control:
    """A control of the standard: its name, the level that introduces it, and its check."""

    name: str
    level: str
    fix: str
    check: Callable[[Mapping[str, Any]], Iterator[tuple[str, Any]]]


def _dict(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # the JSON checked is plain dicts: skip the ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    spec = _dict(pod.get("spec"))
    for list_name in _CONTAINER_LISTS:
        for index, container in enumerate(_list(spec.get(list_name))):
            yield f"spec.{list_name}[{index}]", _dict(container)


def _contexts(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The pod's security context then every container's, with their paths."""
    spec = _dict(pod.get("spec"))
    yield "spec.securityContext", _dict(spec.get("securityContext"))
    for path, container in _containers(pod):
        yield f"{path}.securityContext", _dict(container.get("securityContext"))


def _seccomp_for_annotation(value: Any) -> str | None:
    """The ``seccompProfile.type`` the API server derives from an annotation value."""
    if value == "unconfined":
        return "Unconfined"
    if value in ("runtime/default", "docker/default"):
        return "RuntimeDefault"
    if isinstance(value, str) and value.startswith("localhost/"):
        return "Localhost"
    return None


def _seccomp_types(pod: Mapping[str, Any]) -> Iterator[tuple[str, str | None, Any]]:
    """Every security context's effective seccomp type: ``(path, type, shown value)``,
    the pod's first. The field when it is set, otherwise the annotation the API server
    copies into it (reported under the annotation's own path)."""
    spec = _dict(pod.get("spec"))
    annotations = _dict(_dict(pod.get("metadata")).get("annotations"))
    kind = _dict(_dict(spec.get("securityContext")).get("seccompProfile")).get("type")
    if kind is not None:
        yield "spec.securityContext.seccompProfile.type", kind, kind
    elif SECCOMP_POD_ANNOTATION in annotations:
        value = annotations[SECCOMP_POD_ANNOTATION]
        yield f"metadata.annotations[{SECCOMP_POD_ANNOTATION!r}]", _seccomp_for_annotation(
            value
        ), value
    else:
        yield "spec.securityContext.seccompProfile.type", None, None
    for path, container in _containers(pod):
        kind = _dict(_dict(container.get("securityContext")).get("seccompProfile")).get("type")
        key = SECCOMP_CONTAINER_ANNOTATION_PREFIX + str(container.get("name"))
        if kind is None and key in annotations:
            value = annotations[key]
            yield f"metadata.annotations[{key!r}]", _seccomp_for_annotation(value), value
        else:
            yield f"{path}.securityContext.seccompProfile.type", kind, kind


def _is_windows(pod: Mapping[str, Any]) -> bool:
    return _dict(_dict(pod.get("spec")).get("os")).get("name") == "windows"


# --------------------------------------------------------------------------- baseline


def _host_process(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, context in _contexts(pod):
        value = _dict(context.get("windowsOptions")).get("hostProcess")
        if value not in (None, False):
            yield f"{path}.windowsOptions.hostProcess", value


def _host_namespaces(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    spec = _dict(pod.get("spec"))
    for name in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(name) not in (None, False):
            yield f"spec.{name}", spec.get(name)


def _privileged(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, container in _containers(pod):
        value = _dict(container.get("securityContext")).get("privileged")
        if value not in (None, False):
            yield f"{path}.securityContext.privileged", value


def _baseline_capabilities(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, container in _containers(pod):
        added = _list(_dict(_dict(container.get("securityContext")).get("capabilities")).get("add"))
        extra = [c for c in added if c not in BASELINE_CAPABILITIES]
        if extra:
            yield f"{path}.securityContext.capabilities.add", extra


def _host_path_volumes(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for index, volume in enumerate(_list(_dict(pod.get("spec")).get("volumes"))):
        if _dict(volume).get("hostPath") is not None:
            yield f"spec.volumes[{index}].hostPath", _dict(volume).get("hostPath")


def _host_ports(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, container in _containers(pod):
        for index, port in enumerate(_list(container.get("ports"))):
            value = _dict(port).get("hostPort")
            if value not in (None, 0):
                yield f"{path}.ports[{index}].hostPort", value


def _app_armor(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, context in _contexts(pod):
        kind = _dict(context.get("appArmorProfile")).get("type")
        if kind not in (None, "RuntimeDefault", "Localhost"):
            yield f"{path}.appArmorProfile.type", kind
    annotations = _dict(_dict(pod.get("metadata")).get("annotations"))
    for key, value in annotations.items():
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX):
            if not (value == "runtime/default" or str(value).startswith("localhost/")):
                yield f"metadata.annotations[{key!r}]", value


def _selinux(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, context in _contexts(pod):
        options = _dict(context.get("seLinuxOptions"))
        if options.get("type") not in (None, *SELINUX_TYPES):
            yield f"{path}.seLinuxOptions.type", options.get("type")
        for name in ("user", "role"):
            if options.get(name) not in (None, ""):
                yield f"{path}.seLinuxOptions.{name}", options.get(name)


def _proc_mount(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, container in _containers(pod):
        value = _dict(container.get("securityContext")).get("procMount")
        if value not in (None, "Default"):
            yield f"{path}.securityContext.procMount", value


def _baseline_seccomp(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, kind, shown in _seccomp_types(pod):
        if kind == "Unconfined":
            yield path, shown


def _sysctls(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    context = _dict(_dict(pod.get("spec")).get("securityContext"))
    for index, sysctl in enumerate(_list(context.get("sysctls"))):
        name = _dict(sysctl).get("name")
        if name not in SAFE_SYSCTLS:
            yield f"spec.securityContext.sysctls[{index}].name", name


def _host_probes(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Probes and lifecycle hooks run by the kubelet, from the node: a ``host`` makes it
    send requests wherever the pod's author chose (the node's own services, a cloud
    metadata endpoint). Only the host is reported: headers can carry credentials."""
    for path, container in _containers(pod):
        handlers = [(name, _dict(container.get(name))) for name in _PROBES]
        lifecycle = _dict(container.get("lifecycle"))
        handlers += [(f"lifecycle.{name}", _dict(lifecycle.get(name))) for name in _LIFECYCLE_HANDLERS]
        for where, handler in handlers:
            for action in _HOST_ACTIONS:
                host = _dict(handler.get(action)).get("host")
                if host not in (None, ""):
                    yield f"{path}.{where}.{action}.host", host


# --------------------------------------------------------------------------- restricted


def _volume_types(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for index, volume in enumerate(_list(_dict(pod.get("spec")).get("volumes"))):
        sources = [k for k, v in _dict(volume).items() if k != "name" and v is not None]
        bad = [s for s in sources if s not in RESTRICTED_VOLUME_SOURCES]
        if bad:
            yield f"spec.volumes[{index}]", bad[0]


def _privilege_escalation(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if _is_windows(pod):
        return
    for path, container in _containers(pod):
        value = _dict(container.get("securityContext")).get("allowPrivilegeEscalation")
        if value is not False:
            yield f"{path}.securityContext.allowPrivilegeEscalation", value


def _run_as_non_root(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    pod_value = _dict(_dict(pod.get("spec")).get("securityContext")).get("runAsNonRoot")
    if pod_value is False:
        yield "spec.securityContext.runAsNonRoot", False
    for path, container in _containers(pod):
        value = _dict(container.get("securityContext")).get("runAsNonRoot")
        if value is False or (value is None and pod_value is not True):
            yield f"{path}.securityContext.runAsNonRoot", value


def _run_as_user(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, context in _contexts(pod):
        value = context.get("runAsUser")
        if value == 0 and not isinstance(value, bool):
            yield f"{path}.runAsUser", 0


def _restricted_seccomp(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if _is_windows(pod):
        return
    allowed = ("RuntimeDefault", "Localhost")
    types = _seccomp_types(pod)
    path, pod_kind, shown = next(types)
    if pod_kind is not None and pod_kind not in allowed:
        yield path, shown
    for path, kind, shown in types:
        if kind is None and pod_kind in allowed:
            continue
        if kind not in allowed:
            yield path, shown


def _restricted_capabilities(pod: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if _is_windows(pod):
        return
    for path, container in _containers(pod):
        capabilities = _dict(_dict(container.get("securityContext")).get("capabilities"))
        dropped = _list(capabilities.get("drop"))
        if "ALL" not in dropped:
            yield f"{path}.securityContext.capabilities.drop", dropped or None
        extra = [c for c in _list(capabilities.get("add")) if c != "NET_BIND_SERVICE"]
        if extra:
            yield f"{path}.securityContext.capabilities.add", extra


CONTROLS: tuple[Control, ...] = (
    Control(
        "HostProcess",
        "baseline",
        "Remove windowsOptions.hostProcess (or set it to false).",
        _host_process,
    ),
    Control(
        "Host Namespaces",
        "baseline",
        "Remove hostNetwork, hostPID and hostIPC (or set them to false).",
        _host_namespaces,
    ),
    Control(
        "Privileged Containers",
        "baseline",
        "Remove securityContext.privileged (or set it to false).",
        _privileged,
    ),
    Control(
        "Capabilities",
        "baseline",
        "Add only capabilities of the default set: "
        + ", ".join(sorted(BASELINE_CAPABILITIES))
        + ".",
        _baseline_capabilities,
    ),
    Control(
        "HostPath Volumes",
        "baseline",
        "Use a PVC, configMap or secret volume instead of hostPath.",
        _host_path_volumes,
    ),
    Control("Host Ports", "baseline", "Remove hostPort from the container's ports.", _host_ports),
    Control(
        "AppArmor",
        "baseline",
        "Use the RuntimeDefault or a Localhost AppArmor profile (annotation values "
        "runtime/default or localhost/<profile>), or leave it unset.",
        _app_armor,
    ),
    Control(
        "SELinux",
        "baseline",
        "Leave seLinuxOptions.user and role unset, and use type container_t, "
        "container_init_t, container_kvm_t or container_engine_t (or none).",
        _selinux,
    ),
    Control(
        "/proc Mount Type", "baseline", "Remove procMount (or set it to Default).", _proc_mount
    ),
    Control(
        "Seccomp",
        "baseline",
        "Use seccompProfile type RuntimeDefault or Localhost, not Unconfined.",
        _baseline_seccomp,
    ),
    Control(
        "Sysctls",
        "baseline",
        "Set only the safe sysctls: " + ", ".join(sorted(SAFE_SYSCTLS)) + ".",
        _sysctls,
    ),
    Control(
        "Host Probes / Lifecycle Hooks",
        "baseline",
        "Remove host from the probes' and lifecycle hooks' httpGet and tcpSocket (they then "
        "reach the pod itself).",
        _host_probes,
    ),
    Control(
        "Volume Types",
        "restricted",
        "Use only volumes of type " + ", ".join(sorted(RESTRICTED_VOLUME_SOURCES)) + ".",
        _volume_types,
    ),
    Control(
        "Privilege Escalation",
        "restricted",
        "Set securityContext.allowPrivilegeEscalation to false in every container.",
        _privilege_escalation,
    ),
    Control(
        "Running as Non-root",
        "restricted",
        "Set runAsNonRoot: true in the pod's securityContext (or in every container's) "
        "and never false.",
        _run_as_non_root,
    ),
    Control(
        "Running as Non-root user",
        "restricted",
        "Run as a non-zero uid: remove runAsUser: 0.",
        _run_as_user,
    ),
    Control(
        "Seccomp",
        "restricted",
        "Set seccompProfile type RuntimeDefault (or Localhost) in the pod's "
        "securityContext, or in every container's.",
        _restricted_seccomp,
    ),
    Control(
        "Capabilities",
        "restricted",
        "Drop ALL capabilities in every container and add at most NET_BIND_SERVICE.",
        _restricted_capabilities,
    ),
)


def controls_for(level: str) -> tuple[Control, ...]:
    """The controls a pod must pass at ``level`` (restricted includes baseline)."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security Standard level {level!r}")
    if level == "baseline":
        return tuple(c for c in CONTROLS if c.level == "baseline")
    return CONTROLS


def check_pod(pod: Mapping[str, Any], level: str) -> list[Violation]:
    """Every violation of the ``level`` standard in ``pod`` (its JSON form), in the order
    of the standard's controls; empty when the pod passes."""
    violations: list[Violation] = []
    for control in controls_for(level):
        for path, value in control.check(pod):
            violations.append(Violation(control.name, control.level, path, value, control.fix))
    return violations
