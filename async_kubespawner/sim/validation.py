"""Object validation with the real API server's 422 causes, field paths and wording.

The spawner turns a 422 into the message a hub user sees, and its tests assert on
those messages, so the simulator refuses exactly what the real server refuses, field
by field, in the same words (``spec.containers[0].image: Required value``). Causes are
plain dicts ``{"reason", "message", "field"}``; ``invalid_status`` wraps them into the
``Status`` body the real server returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from async_kubespawner.kube.quantity import QUANTITY_FORMAT_HINT, QuantityError, parse_quantity
from async_kubespawner.sim.names import (
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    qualified_name_errors,
    regex_error,
)

Cause = dict[str, str]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
SECRET_DATA_SIZE_LIMIT = 1024 * 1024


# --------------------------------------------------------------------------- causes


def go_value(value: Any) -> str:
    """Render a bad value the way the real server's field errors do (%q, %d, %t)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return '"null"'
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def invalid(field: str, value: Any, detail: str) -> Cause:
    """FieldValueInvalid: the value is present but wrong."""
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {go_value(value)}: {detail}",
        "field": field,
    }


def required(field: str, detail: str = "") -> Cause:
    """FieldValueRequired: the field is missing or empty."""
    message = "Required value" + (f": {detail}" if detail else "")
    return {"reason": "FieldValueRequired", "message": message, "field": field}


def duplicate(field: str, value: Any) -> Cause:
    """FieldValueDuplicate: a name that must be unique in its list is repeated."""
    return {
        "reason": "FieldValueDuplicate",
        "message": f"Duplicate value: {go_value(value)}",
        "field": field,
    }


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    """FieldValueNotSupported: the value is not one of an enumeration."""
    listed = ", ".join(json.dumps(s) for s in supported)
    return {
        "reason": "FieldValueNotSupported",
        "message": f"Unsupported value: {go_value(value)}: supported values: {listed}",
        "field": field,
    }


def not_found(field: str, value: Any) -> Cause:
    """FieldValueNotFound: a reference to something that does not exist in the object."""
    return {
        "reason": "FieldValueNotFound",
        "message": f"Not found: {go_value(value)}",
        "field": field,
    }


def too_long(field: str, limit: int) -> Cause:
    """FieldValueTooLong: a size limit in bytes is exceeded."""
    unit = "byte" if limit == 1 else "bytes"
    return {
        "reason": "FieldValueTooLong",
        "message": f"Too long: may not be more than {limit} {unit}",
        "field": field,
    }


def forbidden(field: str, detail: str) -> Cause:
    """FieldValueForbidden: the change is not allowed at all (mostly immutable fields)."""
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    """FieldValueTypeInvalid: a CRD schema type mismatch."""
    return {
        "reason": "FieldValueTypeInvalid",
        "message": f"Invalid value: {go_value(value)}: {detail}",
        "field": field,
    }


def invalid_status(kind: str, name: str, causes: list[Cause], group: str = "") -> dict[str, Any]:
    """The 422 ``Status`` body, built like apimachinery's NewInvalid (message dedups causes)."""
    qualified = f"{kind}.{group}" if group else kind
    seen: list[str] = []
    for cause in causes:
        text = f"{cause['field']}: {cause['message']}"
        if text not in seen:
            seen.append(text)
    if not seen:
        message = f"{qualified} {json.dumps(name)} is invalid"
    elif len(seen) == 1:
        message = f"{qualified} {json.dumps(name)} is invalid: {seen[0]}"
    else:
        message = f"{qualified} {json.dumps(name)} is invalid: [{', '.join(seen)}]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [dict(c) for c in causes]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": details,
        "code": 422,
    }


# --------------------------------------------------------------------------- decoding


def decode_error(kind: str, obj: dict) -> str | None:
    """The 400 message for values the real server cannot even decode, or None.

    Resource quantities are parsed while the JSON is decoded, so ``memory: lots`` is a
    400 BadRequest there, not a 422; the HTTP layer should ask this before validating.
    """
    for _, quantity in _all_quantities(kind, obj):
        try:
            parse_quantity(quantity)
        except QuantityError:
            return f'{kind} in version "v1" cannot be handled as a {kind}: {QUANTITY_FORMAT_HINT}'
    return None


def _all_quantities(kind: str, obj: dict) -> Iterable[tuple[str, Any]]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if kind == "Pod":
        for list_name in ("initContainers", "containers"):
            for index, container in enumerate(_dicts(spec.get(list_name))):
                resources = container.get("resources") or {}
                for section in ("limits", "requests"):
                    for name, value in (resources.get(section) or {}).items():
                        yield f"spec.{list_name}[{index}].resources.{section}[{name}]", value
    elif kind == "PersistentVolumeClaim":
        resources = spec.get("resources") or {}
        for section in ("limits", "requests"):
            for name, value in (resources.get(section) or {}).items():
                yield f"spec.resources.{section}[{name}]", value


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- metadata

_NAME_RULES = {
    "Namespace": dns1123_label_errors,
    "Service": dns1035_label_errors,
}
_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}


def _name_errors(kind: str, name: str, prefix: bool) -> list[str]:
    rule = _NAME_RULES.get(kind, dns1123_subdomain_errors)
    if prefix and name.endswith("-"):
        name = name[:-1] + "a"  # the real server masks the trailing dash of a generateName
    return rule(name)


def validate_metadata(kind: str, meta: Any, old_meta: dict | None = None) -> list[Cause]:
    """ObjectMeta rules shared by every kind: names, labels, annotations, owners, finalizers."""
    causes: list[Cause] = []
    if not isinstance(meta, dict):
        return [required("metadata.name", "name or generateName is required")]
    name = meta.get("name") or ""
    generate_name = meta.get("generateName") or ""
    if generate_name:
        for msg in _name_errors(kind, generate_name, prefix=True):
            causes.append(invalid("metadata.generateName", generate_name, msg))
    if not name and not generate_name:
        causes.append(required("metadata.name", "name or generateName is required"))
    elif name:
        for msg in _name_errors(kind, name, prefix=False):
            causes.append(invalid("metadata.name", name, msg))
    labels = meta.get("labels") or {}
    for key, value in labels.items():
        for msg in qualified_name_errors(key):
            causes.append(invalid("metadata.labels", key, msg))
        for msg in label_value_errors(value if isinstance(value, str) else str(value)):
            causes.append(invalid("metadata.labels", value, msg))
    annotations = meta.get("annotations") or {}
    total = 0
    for key, value in annotations.items():
        for msg in qualified_name_errors(key.lower()):
            causes.append(invalid("metadata.annotations", key, msg))
        total += len(key.encode()) + len(str(value).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT))
    controllers = []
    for index, ref in enumerate(_dicts(meta.get("ownerReferences"))):
        path = f"metadata.ownerReferences[{index}]"
        api_version = ref.get("apiVersion") or ""
        if not api_version or api_version.endswith("/"):
            causes.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for field_name in ("kind", "name", "uid"):
            if not ref.get(field_name):
                causes.append(
                    invalid(f"{path}.{field_name}", ref.get(field_name) or "", "must not be empty")
                )
        if ref.get("controller"):
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        causes.append(
            invalid(
                "metadata.ownerReferences",
                meta.get("ownerReferences"),
                'Only one reference can have Controller set to true. Found "true" '
                f"in references for {controllers[0]} and {controllers[1]}",
            )
        )
    for finalizer in meta.get("finalizers") or []:
        errors = qualified_name_errors(finalizer)
        for msg in errors:
            causes.append(invalid("metadata.finalizers", finalizer, msg))
        if not errors and "/" not in finalizer and finalizer not in _STANDARD_FINALIZERS:
            causes.append(
                invalid(
                    "metadata.finalizers",
                    finalizer,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    if old_meta is not None:
        for field_name in ("name", "namespace", "uid", "creationTimestamp"):
            before, after = old_meta.get(field_name), meta.get(field_name)
            if before is not None and after is not None and before != after:
                causes.append(invalid(f"metadata.{field_name}", after, "field is immutable"))
    return causes


# --------------------------------------------------------------------------- pods

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_PORT_RANGE = "must be between 1 and 65535, inclusive"
_IANA_LETTER = re.compile(r"[a-z]")
_IANA_CHARS = re.compile(r"^[-a-z0-9]+$")


def _port_name_errors(name: str) -> list[str]:
    """IANA service names, as container port names and named targetPorts must be."""
    errors = []
    if len(name) > 15:
        errors.append("must be no more than 15 characters")
    if not _IANA_CHARS.match(name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens")
    if not _IANA_LETTER.search(name):
        errors.append("must contain at least one letter (a-z)")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _env_name_errors(name: str) -> list[str]:
    if name and "=" not in name and all(32 <= ord(ch) < 127 for ch in name):
        return []
    return [
        "a valid environment variable name must consist only of printable ASCII characters "
        "other than '='"
    ]


def _validate_resources(path: str, resources: Any) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(resources, dict):
        return causes
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        for name, raw in (resources.get(section) or {}).items():
            field = f"{path}.{section}[{name}]"
            try:
                value = parse_quantity(raw)
            except QuantityError:
                causes.append(invalid(field, raw, QUANTITY_FORMAT_HINT))
                continue
            if value < 0:
                causes.append(invalid(field, raw, "must be greater than or equal to 0"))
            if name == "cpu" and value != 0 and value < Decimal("0.001"):
                causes.append(invalid(field, raw, "must be a valid CPU quantity (at least 1m)"))
            parsed[section][name] = value
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            causes.append(
                invalid(
                    f"{path}.requests",
                    requests[name],
                    f"must be less than or equal to {name} limit of {limits[name]}",
                )
            )
    return causes


def _validate_containers(
    spec: dict, list_name: str, volumes: set[str], seen: set[str]
) -> list[Cause]:
    causes: list[Cause] = []
    for index, container in enumerate(_dicts(spec.get(list_name))):
        path = f"spec.{list_name}[{index}]"
        name = container.get("name") or ""
        if not name:
            causes.append(required(f"{path}.name"))
        else:
            for msg in dns1123_label_errors(name):
                causes.append(invalid(f"{path}.name", name, msg))
            if name in seen:
                causes.append(duplicate(f"{path}.name", name))
            seen.add(name)
        if not container.get("image"):
            causes.append(required(f"{path}.image"))
        policy = container.get("imagePullPolicy")
        if policy is not None and policy not in _PULL_POLICIES:
            causes.append(not_supported(f"{path}.imagePullPolicy", policy, _PULL_POLICIES))
        port_names: set[str] = set()
        for p_index, port in enumerate(_dicts(container.get("ports"))):
            p_path = f"{path}.ports[{p_index}]"
            port_name = port.get("name")
            if port_name:
                for msg in _port_name_errors(port_name):
                    causes.append(invalid(f"{p_path}.name", port_name, msg))
                if port_name in port_names:
                    causes.append(duplicate(f"{p_path}.name", port_name))
                port_names.add(port_name)
            if "containerPort" not in port or port.get("containerPort") == 0:
                causes.append(required(f"{p_path}.containerPort"))
            elif not _valid_port(port["containerPort"]):
                causes.append(
                    invalid(f"{p_path}.containerPort", port["containerPort"], _PORT_RANGE)
                )
            protocol = port.get("protocol")
            if protocol is not None and protocol not in _PROTOCOLS:
                causes.append(not_supported(f"{p_path}.protocol", protocol, _PROTOCOLS))
        for e_index, env in enumerate(_dicts(container.get("env"))):
            env_name = env.get("name") or ""
            if not env_name:
                causes.append(required(f"{path}.env[{e_index}].name"))
            else:
                for msg in _env_name_errors(env_name):
                    causes.append(invalid(f"{path}.env[{e_index}].name", env_name, msg))
        mount_paths: set[str] = set()
        for m_index, mount in enumerate(_dicts(container.get("volumeMounts"))):
            m_path = f"{path}.volumeMounts[{m_index}]"
            mount_name = mount.get("name") or ""
            if not mount_name:
                causes.append(required(f"{m_path}.name"))
            elif mount_name not in volumes:
                causes.append(not_found(f"{m_path}.name", mount_name))
            mount_path = mount.get("mountPath") or ""
            if not mount_path:
                causes.append(required(f"{m_path}.mountPath"))
            elif mount_path in mount_paths:
                causes.append(invalid(f"{m_path}.mountPath", mount_path, "must be unique"))
            mount_paths.add(mount_path)
        causes.extend(_validate_resources(f"{path}.resources", container.get("resources")))
    return causes


def _validate_pod_spec(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required("spec.containers")]
    causes: list[Cause] = []
    volumes: set[str] = set()
    for index, volume in enumerate(_dicts(spec.get("volumes"))):
        name = volume.get("name") or ""
        if not name:
            causes.append(required(f"spec.volumes[{index}].name"))
            continue
        for msg in dns1123_label_errors(name):
            causes.append(invalid(f"spec.volumes[{index}].name", name, msg))
        if name in volumes:
            causes.append(duplicate(f"spec.volumes[{index}].name", name))
        volumes.add(name)
    seen: set[str] = set()
    causes.extend(_validate_containers(spec, "initContainers", volumes, seen))
    if not _dicts(spec.get("containers")):
        causes.append(required("spec.containers"))
    causes.extend(_validate_containers(spec, "containers", volumes, seen))
    restart = spec.get("restartPolicy")
    if restart is not None and restart not in _RESTART_POLICIES:
        causes.append(not_supported("spec.restartPolicy", restart, _RESTART_POLICIES))
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in _DNS_POLICIES:
        causes.append(not_supported("spec.dnsPolicy", dns, _DNS_POLICIES))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        causes.append(
            invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
        )
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or grace < 0):
        causes.append(
            invalid(
                "spec.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"
            )
        )
    for index, secret in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(secret, dict) and not secret.get("name"):
            causes.append(required(f"spec.imagePullSecrets[{index}].name"))
    gates: set[str] = set()
    for index, gate in enumerate(_dicts(spec.get("schedulingGates"))):
        gate_name = gate.get("name") or ""
        for msg in qualified_name_errors(gate_name):
            causes.append(invalid(f"spec.schedulingGates[{index}].name", gate_name, msg))
        if gate_name in gates:
            causes.append(duplicate(f"spec.schedulingGates[{index}].name", gate_name))
        gates.add(gate_name)
    return causes


_POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _validate_pod_update(spec: dict, old_spec: dict) -> list[Cause]:
    """A pod's spec is immutable but for a few fields; mirror which ones and the wording."""
    for list_name in ("containers", "initContainers"):
        if len(spec.get(list_name) or []) != len(old_spec.get(list_name) or []):
            return [forbidden(f"spec.{list_name}", "pod updates may not add or remove containers")]
    causes: list[Cause] = []
    old_gates = [g.get("name") for g in _dicts(old_spec.get("schedulingGates"))]
    for gate in _dicts(spec.get("schedulingGates")):
        if gate.get("name") not in old_gates:
            causes.append(
                forbidden(
                    "spec.schedulingGates",
                    f"only deletion is allowed, but found new scheduling gate '{gate.get('name')}'",
                )
            )
    old_tolerations = old_spec.get("tolerations") or []
    tolerations = spec.get("tolerations") or []
    if any(t not in tolerations for t in old_tolerations):
        causes.append(
            forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )
        )
    old_deadline = old_spec.get("activeDeadlineSeconds")
    deadline = spec.get("activeDeadlineSeconds")
    if old_deadline is not None and (deadline is None or deadline > old_deadline):
        causes.append(
            invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must be less than or equal to previous value",
            )
        )
    # Compare everything else with the mutable fields masked out.
    masked_new, masked_old = _mask_pod_spec(spec), _mask_pod_spec(old_spec)
    if masked_new != masked_old:
        causes.append(forbidden("spec", _POD_UPDATE_FORBIDDEN))
    return causes


def _mask_pod_spec(spec: dict) -> dict:
    masked = {
        k: v
        for k, v in spec.items()
        if k
        not in (
            "activeDeadlineSeconds",
            "tolerations",
            "schedulingGates",
            "terminationGracePeriodSeconds",
        )
    }
    for list_name in ("containers", "initContainers"):
        if list_name in masked:
            masked[list_name] = [
                {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                for c in masked[list_name]
            ]
    return masked


# --------------------------------------------------------------------------- services

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_SESSION_AFFINITIES = ("ClientIP", "None")


def _validate_service(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    causes: list[Cause] = []
    service_type = spec.get("type", "ClusterIP")
    if service_type not in _SERVICE_TYPES:
        causes.append(not_supported("spec.type", service_type, _SERVICE_TYPES))
    ports = _dicts(spec.get("ports"))
    headless = spec.get("clusterIP") == "None"
    if not ports and service_type != "ExternalName" and not headless:
        causes.append(required("spec.ports"))
    names: set[str] = set()
    keys: set[tuple[int, str]] = set()
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            causes.append(required(f"{path}.name"))
        elif name:
            for msg in dns1123_label_errors(name):
                causes.append(invalid(f"{path}.name", name, msg))
            if name in names:
                causes.append(duplicate(f"{path}.name", name))
            names.add(name)
        number = port.get("port")
        if not _valid_port(number):
            causes.append(invalid(f"{path}.port", number, _PORT_RANGE))
        protocol = port.get("protocol", "TCP")
        if protocol not in _PROTOCOLS:
            causes.append(not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
        key = (number, protocol)
        if key in keys:
            causes.append(duplicate(path, f"{number}/{protocol}"))
        keys.add(key)  # type: ignore[arg-type]
        target = port.get("targetPort")
        if isinstance(target, str):
            for msg in _port_name_errors(target):
                causes.append(invalid(f"{path}.targetPort", target, msg))
        elif target is not None and target != 0 and not _valid_port(target):
            causes.append(invalid(f"{path}.targetPort", target, _PORT_RANGE))
    affinity = spec.get("sessionAffinity")
    if affinity is not None and affinity not in _SESSION_AFFINITIES:
        causes.append(not_supported("spec.sessionAffinity", affinity, _SESSION_AFFINITIES))
    for key, value in (spec.get("selector") or {}).items():
        for msg in qualified_name_errors(key):
            causes.append(invalid("spec.selector", key, msg))
        for msg in label_value_errors(str(value)):
            causes.append(invalid("spec.selector", value, msg))
    if old is not None:
        old_spec = old.get("spec") or {}
        before, after = old_spec.get("clusterIP"), spec.get("clusterIP")
        if before and after and before != after and service_type != "ExternalName":
            causes.append(invalid("spec.clusterIPs[0]", [after], "may not change once set"))
    return causes


# --------------------------------------------------------------------------- secrets, configmaps

_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def _config_key_errors(key: str) -> list[str]:
    errors = []
    if len(key) > 253:
        errors.append("must be no more than 253 bytes")
    if not _CONFIG_KEY_RE.match(key):
        errors.append(
            regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                "[-._a-zA-Z0-9]+",
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    if key in (".", ".."):
        errors.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def _validate_keys(obj: dict, sections: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for section in sections:
        for key in obj.get(section) or {}:
            for msg in _config_key_errors(key):
                causes.append(invalid(f"{section}[{key}]", key, msg))
            if key in seen:
                causes.append(invalid(f"{section}[{key}]", key, "duplicate of key present in data"))
            seen.add(key)
    return causes


def _validate_immutable_data(obj: dict, old: dict | None, sections: tuple[str, ...]) -> list[Cause]:
    if old is None or not old.get("immutable"):
        return []
    causes: list[Cause] = []
    if obj.get("immutable") is not True:
        causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for section in sections:
        if (obj.get(section) or {}) != (old.get(section) or {}):
            causes.append(forbidden(section, "field is immutable when `immutable` is set"))
    return causes


def _validate_secret(obj: dict, old: dict | None) -> list[Cause]:
    causes = _validate_keys(obj, ("data",))
    size = sum(len(str(v)) * 3 // 4 for v in (obj.get("data") or {}).values())
    if size > SECRET_DATA_SIZE_LIMIT:
        causes.append(too_long("data", SECRET_DATA_SIZE_LIMIT))
    secret_type = obj.get("type") or "Opaque"
    data = obj.get("data") or {}
    needed = {
        "kubernetes.io/tls": ("tls.crt", "tls.key"),
        "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
        "kubernetes.io/dockercfg": (".dockercfg",),
    }.get(secret_type, ())
    for key in needed:
        if key not in data:
            causes.append(required(f"data[{key}]"))
    if secret_type == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    if old is not None:
        old_type = old.get("type") or "Opaque"
        if old_type != secret_type:
            causes.append(invalid("type", secret_type, "field is immutable"))
    causes.extend(_validate_immutable_data(obj, old, ("data",)))
    return causes


def _validate_configmap(obj: dict, old: dict | None) -> list[Cause]:
    causes = _validate_keys(obj, ("data", "binaryData"))
    causes.extend(_validate_immutable_data(obj, old, ("data", "binaryData")))
    return causes


# --------------------------------------------------------------------------- PVCs

_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_VOLUME_MODES = ("Block", "Filesystem")


def _validate_pvc(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    causes: list[Cause] = []
    modes = spec.get("accessModes") or []
    if not modes:
        causes.append(required("spec.accessModes", "at least 1 access mode is required"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(not_supported("spec.accessModes", mode, _ACCESS_MODES))
    volume_mode = spec.get("volumeMode")
    if volume_mode is not None and volume_mode not in _VOLUME_MODES:
        causes.append(not_supported("spec.volumeMode", volume_mode, _VOLUME_MODES))
    requests = ((spec.get("resources") or {}).get("requests")) or {}
    if "storage" not in requests:
        causes.append(required("spec.resources[storage]"))
    else:
        try:
            if parse_quantity(requests["storage"]) <= 0:
                causes.append(
                    invalid(
                        "spec.resources.requests[storage]",
                        requests["storage"],
                        "must be greater than zero",
                    )
                )
        except QuantityError:
            causes.append(
                invalid(
                    "spec.resources.requests[storage]", requests["storage"], QUANTITY_FORMAT_HINT
                )
            )
    if old is not None:
        old_spec = dict(old.get("spec") or {})
        new_spec = dict(spec)
        for masked in (old_spec, new_spec):
            masked.pop("volumeAttributesClassName", None)
            if isinstance(masked.get("resources"), dict):
                masked["resources"] = {
                    k: v for k, v in masked["resources"].items() if k != "requests"
                }
        if not old_spec.get("volumeName"):
            new_spec.pop("volumeName", None)  # the binder may set it once
            old_spec.pop("volumeName", None)
        if new_spec != old_spec:
            causes.append(
                forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests "
                    "and volumeAttributesClassName for bound claims",
                )
            )
        capacity = ((old.get("status") or {}).get("capacity") or {}).get("storage")
        if capacity is not None and "storage" in requests:
            try:
                if parse_quantity(requests["storage"]) < parse_quantity(capacity):
                    causes.append(
                        forbidden(
                            "spec.resources.requests.storage",
                            "field can not be less than status.capacity",
                        )
                    )
            except QuantityError:
                pass
    return causes


# --------------------------------------------------------------------------- other kinds


def _validate_event(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    involved = obj.get("involvedObject") if isinstance(obj.get("involvedObject"), dict) else None
    if involved is None and isinstance(obj.get("regarding"), dict):
        involved = obj["regarding"]
    if involved is not None:
        involved_ns = involved.get("namespace") or ""
        if involved_ns and namespace and involved_ns != namespace:
            field = "involvedObject.namespace" if "involvedObject" in obj else "regarding.namespace"
            causes.append(invalid(field, involved_ns, "does not match event.namespace"))
    event_type = obj.get("type")
    if event_type and event_type not in ("Normal", "Warning"):
        causes.append(not_supported("type", event_type, ("Normal", "Warning")))
    return causes


def _validate_lease(obj: dict) -> list[Cause]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        return [invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")]
    return []


def _validate_crd(obj: dict) -> list[Cause]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    causes: list[Cause] = []
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    if not group:
        causes.append(required("spec.group"))
    elif "." not in group:
        causes.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    if not plural:
        causes.append(required("spec.names.plural"))
    if not names.get("kind"):
        causes.append(required("spec.names.kind"))
    name = (obj.get("metadata") or {}).get("name") or ""
    if plural and group and name != f"{plural}.{group}":
        causes.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        causes.append(not_supported("spec.scope", scope or "", ("Cluster", "Namespaced")))
    versions = _dicts(spec.get("versions"))
    if not versions:
        causes.append(
            invalid(
                "spec.versions",
                spec.get("versions") or [],
                "must have exactly one version marked as storage version",
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            invalid(
                "spec.versions",
                [v.get("name") for v in versions],
                "must have exactly one version marked as storage version",
            )
        )
    return causes


# --------------------------------------------------------------------------- entry point


def validate_object(kind: str, obj: dict, old: dict | None = None) -> list[Cause]:
    """Every 422 cause the real server would report for creating (or, with ``old``, updating) ``obj``."""
    old_meta = (old.get("metadata") or {}) if isinstance(old, dict) else None
    causes = validate_metadata(kind, obj.get("metadata"), old_meta)
    if kind == "Pod":
        spec = obj.get("spec")
        causes.extend(_validate_pod_spec(spec))
        if old is not None and isinstance(spec, dict):
            causes.extend(_validate_pod_update(spec, old.get("spec") or {}))
    elif kind == "Service":
        causes.extend(_validate_service(obj, old))
    elif kind == "Secret":
        causes.extend(_validate_secret(obj, old))
    elif kind == "ConfigMap":
        causes.extend(_validate_configmap(obj, old))
    elif kind == "PersistentVolumeClaim":
        causes.extend(_validate_pvc(obj, old))
    elif kind == "Event":
        causes.extend(_validate_event(obj))
    elif kind == "Lease":
        causes.extend(_validate_lease(obj))
    elif kind == "CustomResourceDefinition":
        causes.extend(_validate_crd(obj))
    return causes


# --------------------------------------------------------------------------- CRD schemas

_JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def validate_against_schema(schema: dict, obj: Any, path: str = "") -> list[Cause]:
    """Validate a custom resource against its CRD's structural openAPIV3Schema.

    Messages follow kube-openapi's ("spec.size in body must be of type integer: \\"string\\"").
    ``apiVersion``, ``kind`` and ``metadata`` at the root are the server's, not the schema's.
    """
    causes: list[Cause] = []
    _check(schema or {}, obj, path, causes, root=not path)
    return causes


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(schema: dict, value: Any, path: str, causes: list[Cause], root: bool = False) -> None:
    if value is None:
        if schema.get("nullable"):
            return
        if schema.get("type"):
            causes.append(
                type_invalid(
                    path, "null", f'{path} in body must be of type {schema["type"]}: "null"'
                )
            )
        return
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _JSON_TYPES["integer"](value)):
            causes.append(
                type_invalid(
                    path,
                    _go_type(value),
                    f'{path} in body must be of type integer,string: "{_go_type(value)}"',
                )
            )
            return
    elif expected and not _JSON_TYPES.get(expected, lambda v: True)(value):
        causes.append(
            type_invalid(
                path,
                _go_type(value),
                f'{path} in body must be of type {expected}: "{_go_type(value)}"',
            )
        )
        return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        causes.append(
            not_supported(path, value, [v if isinstance(v, str) else json.dumps(v) for v in enum])
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema:
            exclusive = schema.get("exclusiveMinimum") is True
            if value < schema["minimum"] or (exclusive and value == schema["minimum"]):
                word = "greater than" if exclusive else "greater than or equal to"
                causes.append(
                    invalid(path, value, f"{path} in body should be {word} {schema['minimum']}")
                )
        if "maximum" in schema:
            exclusive = schema.get("exclusiveMaximum") is True
            if value > schema["maximum"] or (exclusive and value == schema["maximum"]):
                word = "less than" if exclusive else "less than or equal to"
                causes.append(
                    invalid(path, value, f"{path} in body should be {word} {schema['maximum']}")
                )
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                invalid(
                    path,
                    value,
                    f"{path} in body should be at least {schema['minLength']} chars long",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(too_long(path, schema["maxLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(
                invalid(path, value, f"{path} in body should match '{schema['pattern']}'")
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                invalid(
                    path, value, f"{path} in body should have at least {schema['minItems']} items"
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                {
                    "reason": "FieldValueTooMany",
                    "message": f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    "field": path,
                }
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                _check(items, item, f"{path}[{index}]", causes)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                causes.append(required(_child(path, name)))
        for key, item in value.items():
            if root and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in properties:
                _check(properties[key], item, _child(path, key), causes)
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(schema["additionalProperties"], item, _child(path, key), causes)
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            causes.append(
                invalid(
                    path,
                    value,
                    f"{path} in body should have at least {schema['minProperties']} properties",
                )
            )
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            causes.append(
                invalid(
                    path,
                    value,
                    f"{path} in body should have at most {schema['maxProperties']} properties",
                )
            )


def prune_unknown(schema: dict, obj: Any, *, root: bool = True) -> Any:
    """Drop fields the structural schema does not declare, as the real server silently does.

    ``x-kubernetes-preserve-unknown-fields: true`` keeps them; ``additionalProperties``
    describes map values. Returns a new value; ``obj`` is not modified.
    """
    if isinstance(obj, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [prune_unknown(items, item, root=False) for item in obj]
    if not isinstance(obj, dict):
        return obj
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    result: dict[str, Any] = {}
    for key, value in obj.items():
        if root and key in ("apiVersion", "kind", "metadata"):
            result[key] = json.loads(json.dumps(value))
        elif key in properties:
            result[key] = prune_unknown(properties[key], value, root=False)
        elif isinstance(additional, dict):
            result[key] = prune_unknown(additional, value, root=False)
        elif preserve or additional is True:
            result[key] = json.loads(json.dumps(value))
    return result
