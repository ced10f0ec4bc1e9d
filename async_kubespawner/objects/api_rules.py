"""The API server's validation rules for the fields this package sets, checked locally.

A pod the API server refuses with a 422 is refused *after* the PVC (and perhaps a
namespace) was created for it, and the user sees the server's terse field error. Checking
the final objects here first means bad configuration fails before anything exists, with
an error that names the field. The rules and their wording follow the API server's
(``Invalid value: "x": must be between 1 and 65535, inclusive``); only the fields a
spawner's objects carry are covered, not the whole API.

Pure: JSON in (the camelCase shape that is sent), a list of ``FieldError`` out.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..kube.quantity import QUANTITY_FORMAT_HINT, QuantityError, parse_quantity

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
PORT_RANGE = "must be between 1 and 65535, inclusive"
ID_RANGE = "must be between 0 and 2147483647, inclusive"
MAX_ID = 2147483647
ANNOTATIONS_SIZE_LIMIT = 256 * 1024
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo",
    "secret", "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume",
    "cinder", "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)  # fmt: skip
_SOURCE_NAME_FIELD = {
    "persistentVolumeClaim": "claimName",
    "secret": "secretName",
    "configMap": "name",
    "nfs": "server",
    "hostPath": "path",
}


@dataclass(frozen=True)
class FieldError:
    """One refused field: its path in the object and the server's kind of complaint."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(field, f"Invalid value: {_shown(value)}: {detail}")


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(field, "Required value" + (f": {detail}" if detail else ""))


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(field, f"Duplicate value: {_shown(value)}")


def not_supported(field: str, value: Any, supported: Iterable[str]) -> FieldError:
    values = ", ".join(f'"{v}"' for v in supported)
    return FieldError(field, f"Unsupported value: {_shown(value)}: supported values: {values}")


def not_found(field: str, value: Any) -> FieldError:
    return FieldError(field, f"Not found: {_shown(value)}")


# --------------------------------------------------------------------------- grammars


def _remembered(rule: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """A pure string rule with its answers for recent values kept: every pod of a hub
    carries the same label keys, annotation keys and container names, checked at
    every spawn. Each caller gets its own list."""
    answers = functools.lru_cache(maxsize=4096)(lambda value: tuple(rule(value)))

    @functools.wraps(rule)
    def check(value: str) -> list[str]:
        return list(answers(value))

    return check



@_remembered
def dns1123_label_errors(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 bytes")
    if not DNS1123_LABEL.match(value):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
            "or '-', and must start and end with an alphanumeric character"
        )
    return errors


def dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 253:
        errors.append("must be no more than 253 bytes")
    if not DNS1123_SUBDOMAIN.match(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    return errors


def dns1035_label_errors(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 bytes")
    if not DNS1035_LABEL.match(value):
        errors.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character"
        )
    return errors


@_remembered
def qualified_name_errors(value: str) -> list[str]:
    """Label/annotation keys: an optional DNS-subdomain prefix and '/', then a name."""
    prefix, slash, name = value.rpartition("/")
    errors: list[str] = []
    if slash and value.count("/") > 1:
        return ["a qualified name may contain at most one '/'"]
    if slash:
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 bytes")
    if name and not _QUALIFIED_NAME.match(name):
        errors.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character"
        )
    return errors


@_remembered
def label_value_errors(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 bytes")
    if not _LABEL_VALUE.match(value):
        errors.append(
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return errors


def port_name_errors(name: str) -> list[str]:
    """IANA service names, as container port names must be."""
    errors = []
    if len(name) > 15:
        errors.append("must be no more than 15 bytes")
    if not re.match(r"^[-a-z0-9]+$", name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        errors.append("must contain at least one letter (a-z)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


#: Printable ASCII (32-126) except '=' (61), at least one character.
_ENV_NAME = re.compile(r"[\x20-\x3c\x3e-\x7e]+")


def env_name_errors(name: str) -> list[str]:
    if _ENV_NAME.fullmatch(name):
        return []
    return [
        "a valid environment variable name must consist only of printable ASCII characters "
        "other than '='"
    ]


def is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v for v in value if type(v) is dict or isinstance(v, Mapping)]


def _map(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # the JSON checked is plain dicts: skip the ABC check
        return value
    return value if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------- metadata


def metadata_errors(meta: Any, name_rule: Any = dns1123_subdomain_errors) -> Iterator[FieldError]:
    meta = _map(meta)
    name = meta.get("name") or ""
    if not name:
        yield required("metadata.name", "name or generateName is required")
    else:
        for message in name_rule(str(name)):
            yield invalid("metadata.name", name, message)
    for key, value in _map(meta.get("labels")).items():
        for message in qualified_name_errors(str(key)):
            yield invalid("metadata.labels", key, message)
        for message in label_value_errors(value if isinstance(value, str) else str(value)):
            yield invalid("metadata.labels", value, message)
    total = 0
    for key, value in _map(meta.get("annotations")).items():
        for message in qualified_name_errors(str(key).lower()):
            yield invalid("metadata.annotations", key, message)
        total += len(str(key).encode()) + len(str(value).encode())
    if total > ANNOTATIONS_SIZE_LIMIT:
        yield FieldError(
            "metadata.annotations", f"Too long: must have at most {ANNOTATIONS_SIZE_LIMIT} bytes"
        )


# --------------------------------------------------------------------------- pods


def _is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_extended_resource(name: str) -> bool:
    """A device plugin's resource (``nvidia.com/gpu``): counted in whole units."""
    return not _is_native_resource(name) and not name.startswith("requests.")


def _overcommit_allowed(name: str) -> bool:
    """Extended resources and huge pages: a request must equal its limit."""
    return _is_native_resource(name) and not name.startswith("hugepages-")


def resources_errors(path: str, resources: Any) -> Iterator[FieldError]:
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        for name, raw in _map(_map(resources).get(section)).items():
            where = f"{path}.{section}[{name}]"
            try:
                value = parse_quantity(raw)
            except QuantityError:
                yield invalid(where, raw, QUANTITY_FORMAT_HINT)
                continue
            if value < 0:
                yield invalid(where, raw, "must be greater than or equal to 0")
            elif name == "cpu" and value != 0 and value < Decimal("0.001"):
                yield invalid(where, raw, "must be a valid CPU quantity (at least 1m)")
            if _is_extended_resource(str(name)) and value != value.to_integral_value():
                yield invalid(where, str(raw), "must be an integer")
            parsed[section][name] = value
    limits = _map(_map(resources).get("limits"))
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if not _overcommit_allowed(str(name)):
            # A GPU is never shared: its request, if any, is its limit.
            if limit is None:
                yield required(
                    f"{path}.limits", "Limit must be set for non overcommitable resources"
                )
            elif request != limit:
                yield invalid(
                    f"{path}.requests",
                    str(_map(_map(resources).get("requests")).get(name)),
                    f"must be equal to {name} limit of {limits.get(name)}",
                )
            continue
        if limit is not None and request > limit:
            yield invalid(
                f"{path}.requests",
                str(_map(_map(resources).get("requests")).get(name)),
                f"must be less than or equal to {name} limit of {limits.get(name)}",
            )


def security_context_errors(path: str, context: Any) -> Iterator[FieldError]:
    context = _map(context)
    for name in ("runAsUser", "runAsGroup", "fsGroup"):
        value = context.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_ID:
            yield invalid(f"{path}.{name}", value, ID_RANGE)
    for index, gid in enumerate(context.get("supplementalGroups") or []):
        if isinstance(gid, int) and not 0 <= gid <= MAX_ID:
            yield invalid(f"{path}.supplementalGroups[{index}]", gid, ID_RANGE)


def container_errors(
    path: str, container: Mapping[str, Any], volumes: set[str] | None
) -> Iterator[FieldError]:
    """One container's fields; ``volumes`` (the pod's volume names) checks the mounts."""
    name = container.get("name") or ""
    if not name:
        yield required(f"{path}.name")
    else:
        for message in dns1123_label_errors(str(name)):
            yield invalid(f"{path}.name", name, message)
    image = container.get("image") or ""
    if not image:
        yield required(f"{path}.image")
    elif image != str(image).strip():
        yield invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    policy = container.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        yield not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES)
    port_names: set[str] = set()
    for index, port in enumerate(_dicts(container.get("ports"))):
        where = f"{path}.ports[{index}]"
        port_name = port.get("name")
        if port_name:
            for message in port_name_errors(str(port_name)):
                yield invalid(f"{where}.name", port_name, message)
            if port_name in port_names:
                yield duplicate(f"{where}.name", port_name)
            port_names.add(port_name)
        if not port.get("containerPort"):
            yield required(f"{where}.containerPort")
        elif not is_port(port["containerPort"]):
            yield invalid(f"{where}.containerPort", port["containerPort"], PORT_RANGE)
        host_port = port.get("hostPort")
        if host_port not in (None, 0) and not is_port(host_port):
            yield invalid(f"{where}.hostPort", host_port, PORT_RANGE)
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            yield not_supported(f"{where}.protocol", protocol, PROTOCOLS)
    for index, env in enumerate(_dicts(container.get("env"))):
        env_name = env.get("name") or ""
        if not env_name:
            yield required(f"{path}.env[{index}].name")
        else:
            for message in env_name_errors(str(env_name)):
                yield invalid(f"{path}.env[{index}].name", env_name, message)
        if env.get("valueFrom") is not None and env.get("value"):
            # As the API server words it: "" in place of the value, which may be secret.
            yield invalid(
                f"{path}.env[{index}].valueFrom", "", "may not be specified when `value` is not empty"
            )
    mount_paths: set[str] = set()
    for index, mount in enumerate(_dicts(container.get("volumeMounts"))):
        where = f"{path}.volumeMounts[{index}]"
        mount_name = mount.get("name") or ""
        if not mount_name:
            yield required(f"{where}.name")
        elif volumes is not None and mount_name not in volumes:
            yield not_found(f"{where}.name", mount_name)
        sub_path = str(mount.get("subPath") or "")
        if sub_path.startswith("/"):
            yield invalid(f"{where}.subPath", sub_path, "must be a relative path")
        elif ".." in sub_path.split("/"):
            yield invalid(f"{where}.subPath", sub_path, "must not contain '..'")
        mount_path = mount.get("mountPath") or ""
        if not mount_path:
            yield required(f"{where}.mountPath")
        elif mount_path in mount_paths:
            yield invalid(f"{where}.mountPath", mount_path, "must be unique")
        mount_paths.add(mount_path)
    yield from resources_errors(f"{path}.resources", container.get("resources"))
    yield from security_context_errors(f"{path}.securityContext", container.get("securityContext"))


def volume_errors(path: str, volume: Mapping[str, Any]) -> Iterator[FieldError]:
    """A volume's name and its one source."""
    name = volume.get("name") or ""
    if not name:
        yield required(f"{path}.name")
    else:
        for message in dns1123_label_errors(str(name)):
            yield invalid(f"{path}.name", name, message)
    sources = [s for s in VOLUME_SOURCES if volume.get(s) is not None]
    if not sources:
        yield required(path, "must specify a volume type")
        return
    for extra in sources[1:]:
        yield FieldError(f"{path}.{extra}", "Forbidden: may not specify more than 1 volume type")
    needed = _SOURCE_NAME_FIELD.get(sources[0])
    body = volume[sources[0]]
    if needed and isinstance(body, Mapping) and not body.get(needed):
        yield required(f"{path}.{sources[0]}.{needed}")
    if sources[0] == "emptyDir" and isinstance(body, Mapping):
        size = body.get("sizeLimit")
        try:
            negative = size is not None and parse_quantity(size) < 0
        except QuantityError:
            negative = False  # the format is checked where quantities are parsed
        if negative:
            yield FieldError(
                f"{path}.emptyDir.sizeLimit",
                "Forbidden: SizeLimit field must be a valid resource quantity",
            )


def toleration_errors(path: str, toleration: Mapping[str, Any]) -> Iterator[FieldError]:
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key:
        for message in qualified_name_errors(str(key)):
            yield invalid(f"{path}.key", key, message)
    elif operator != "Exists":
        yield invalid(
            f"{path}.operator",
            operator,
            'operator must be Exists when `key` is empty, which means "match all values and '
            'all keys"',
        )
    if operator not in TOLERATION_OPERATORS:
        yield not_supported(f"{path}.operator", operator, TOLERATION_OPERATORS)
    elif operator == "Exists" and toleration.get("value"):
        yield invalid(
            f"{path}.operator",
            toleration["value"],
            "value must be empty when `operator` is 'Exists'",
        )
    effect = toleration.get("effect") or ""
    if effect and effect not in TAINT_EFFECTS:
        yield not_supported(f"{path}.effect", effect, TAINT_EFFECTS)
    if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
        yield invalid(
            f"{path}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"
        )


def pod_errors(pod: Mapping[str, Any]) -> list[FieldError]:
    """Everything the API server would refuse in a pod's metadata and spec."""
    errors = list(metadata_errors(pod.get("metadata")))
    spec = _map(pod.get("spec"))
    volumes: set[str] = set()
    for index, volume in enumerate(_dicts(spec.get("volumes"))):
        errors.extend(volume_errors(f"spec.volumes[{index}]", volume))
        name = volume.get("name")
        if name and name in volumes:
            errors.append(duplicate(f"spec.volumes[{index}].name", name))
        if name:
            volumes.add(name)
    if not _dicts(spec.get("containers")):
        errors.append(required("spec.containers"))
    seen: set[str] = set()
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(_dicts(spec.get(list_name))):
            path = f"spec.{list_name}[{index}]"
            errors.extend(container_errors(path, container, volumes))
            name = container.get("name")
            if name and name in seen:
                errors.append(duplicate(f"{path}.name", name))
            if name:
                seen.add(name)
    for field_name, allowed in (("restartPolicy", RESTART_POLICIES), ("dnsPolicy", DNS_POLICIES)):
        value = spec.get(field_name)
        if value is not None and value not in allowed:
            errors.append(not_supported(f"spec.{field_name}", value, allowed))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        errors.append(
            invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
        )
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or grace < 0):
        errors.append(
            invalid(
                "spec.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"
            )
        )
    for index, secret in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(secret, Mapping) and not secret.get("name"):
            errors.append(required(f"spec.imagePullSecrets[{index}].name"))
    for index, toleration in enumerate(_dicts(spec.get("tolerations"))):
        errors.extend(toleration_errors(f"spec.tolerations[{index}]", toleration))
    errors.extend(node_affinity_errors(spec.get("affinity")))
    for key, value in _map(spec.get("nodeSelector")).items():
        for message in qualified_name_errors(str(key)):
            errors.append(invalid("spec.nodeSelector", key, message))
        for message in label_value_errors(str(value)):
            errors.append(invalid("spec.nodeSelector", value, message))
    for field_name in ("hostname", "subdomain"):
        value = spec.get(field_name)
        if value:
            for message in dns1123_label_errors(str(value)):
                errors.append(invalid(f"spec.{field_name}", value, message))
    for field_name in ("serviceAccountName", "priorityClassName", "schedulerName"):
        value = spec.get(field_name)
        if value:
            for message in dns1123_subdomain_errors(str(value)):
                errors.append(invalid(f"spec.{field_name}", value, message))
    errors.extend(security_context_errors("spec.securityContext", spec.get("securityContext")))
    return errors


def node_selector_term_errors(path: str, term: Any) -> Iterator[FieldError]:
    """A node selector term's requirements (operators and their values, keys)."""
    for index, requirement in enumerate(_dicts(_map(term).get("matchExpressions"))):
        where = f"{path}.matchExpressions[{index}]"
        operator = requirement.get("operator")
        values = requirement.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                yield required(
                    f"{where}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                yield FieldError(
                    f"{where}.values",
                    "Forbidden: may not be specified when `operator` is 'Exists' or "
                    "'DoesNotExist'",
                )
        elif operator in ("Gt", "Lt"):
            if len(values) != 1:
                yield required(
                    f"{where}.values",
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )
        else:
            yield invalid(f"{where}.operator", operator, "not a valid selector operator")
        for message in qualified_name_errors(str(requirement.get("key") or "")):
            yield invalid(f"{where}.key", requirement.get("key") or "", message)


def node_affinity_errors(affinity: Any) -> list[FieldError]:
    """``node_affinity_required`` / ``node_affinity_preferred`` as the API server checks
    them (pod affinity's label selectors are left to the server)."""
    node = _map(_map(affinity).get("nodeAffinity"))
    errors: list[FieldError] = []
    base = "spec.affinity.nodeAffinity"
    required_terms = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required_terms, Mapping):
        path = f"{base}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        terms = _dicts(required_terms.get("nodeSelectorTerms"))
        if not terms:
            errors.append(required(path, "must have at least one node selector term"))
        for index, term in enumerate(terms):
            errors.extend(node_selector_term_errors(f"{path}[{index}]", term))
    path = f"{base}.preferredDuringSchedulingIgnoredDuringExecution"
    for index, preferred in enumerate(
        _dicts(node.get("preferredDuringSchedulingIgnoredDuringExecution"))
    ):
        weight = preferred.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
            errors.append(invalid(f"{path}[{index}].weight", weight, "must be in the range 1-100"))
        errors.extend(
            node_selector_term_errors(f"{path}[{index}].preference", preferred.get("preference"))
        )
    return errors


# --------------------------------------------------------------------------- other kinds


def label_selector_errors(path: str, selector: Any) -> Iterator[FieldError]:
    selector = _map(selector)
    for key, value in _map(selector.get("matchLabels")).items():
        for message in qualified_name_errors(str(key)):
            yield invalid(f"{path}.matchLabels", key, message)
        for message in label_value_errors(str(value)):
            yield invalid(f"{path}.matchLabels", value, message)
    for index, expression in enumerate(_dicts(selector.get("matchExpressions"))):
        where = f"{path}.matchExpressions[{index}]"
        operator = expression.get("operator")
        values = expression.get("values") or []
        if operator not in SELECTOR_OPERATORS:
            yield not_supported(f"{where}.operator", operator, SELECTOR_OPERATORS)
        elif operator in ("In", "NotIn") and not values:
            yield required(
                f"{where}.values", "must be specified when `operator` is 'In' or 'NotIn'"
            )
        elif operator in ("Exists", "DoesNotExist") and values:
            yield FieldError(
                f"{where}.values",
                "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )
        for message in qualified_name_errors(str(expression.get("key") or "")):
            yield invalid(f"{where}.key", expression.get("key") or "", message)


def pvc_errors(pvc: Mapping[str, Any]) -> list[FieldError]:
    errors = list(metadata_errors(pvc.get("metadata")))
    spec = _map(pvc.get("spec"))
    modes = spec.get("accessModes") or []
    if not modes:
        errors.append(required("spec.accessModes", "at least 1 access mode is required"))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errors.append(not_supported("spec.accessModes", mode, ACCESS_MODES))
    storage_class = spec.get("storageClassName")
    if storage_class:
        for message in dns1123_subdomain_errors(str(storage_class)):
            errors.append(invalid("spec.storageClassName", storage_class, message))
    requests = _map(_map(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        errors.append(required("spec.resources[storage]"))
    else:
        try:
            if parse_quantity(requests["storage"]) <= 0:
                errors.append(
                    invalid(
                        "spec.resources[storage]", requests["storage"], "must be greater than zero"
                    )
                )
        except QuantityError:
            errors.append(
                invalid("spec.resources[storage]", requests["storage"], QUANTITY_FORMAT_HINT)
            )
    errors.extend(label_selector_errors("spec.selector", spec.get("selector")))
    return errors


def service_errors(service: Mapping[str, Any]) -> list[FieldError]:
    errors = list(metadata_errors(service.get("metadata"), dns1035_label_errors))
    spec = _map(service.get("spec"))
    for index, port in enumerate(_dicts(spec.get("ports"))):
        if not is_port(port.get("port")):
            errors.append(invalid(f"spec.ports[{index}].port", port.get("port"), PORT_RANGE))
        target = port.get("targetPort")
        if isinstance(target, int) and target != 0 and not is_port(target):
            errors.append(invalid(f"spec.ports[{index}].targetPort", target, PORT_RANGE))
    for value in _map(spec.get("selector")).values():
        for message in label_value_errors(str(value)):
            errors.append(invalid("spec.selector", value, message))
    return errors


def secret_errors(secret: Mapping[str, Any]) -> list[FieldError]:
    errors = list(metadata_errors(secret.get("metadata")))
    for key in _map(secret.get("data")):
        if not _SECRET_KEY.match(str(key)) or len(str(key)) > 253:
            errors.append(
                invalid(
                    f"data[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
    return errors


def namespace_errors(namespace: Mapping[str, Any]) -> list[FieldError]:
    return list(metadata_errors(namespace.get("metadata"), dns1123_label_errors))
