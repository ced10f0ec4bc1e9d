"""Object validation with the real API server's 422 causes, field paths and wording.

The spawner turns a 422 into the message a hub user sees, and its tests assert on
those messages, so the simulator refuses exactly what the real server refuses, field
by field, in the same words (``spec.containers[0].image: Required value``). Causes are
plain dicts ``{"reason", "message", "field"}``; ``invalid_status`` wraps them into the
``Status`` body the real server returns.

``invalid_status`` (from ``errors``) and the CRD schema functions (from
``structural_schema``) are re-exported here, where the store looks for them.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from kubesim.decoding import DecodeError, check_types, decode_error, drop_nulls
from kubesim.errors import invalid_status
from kubesim.field_errors import (
    Cause,
    duplicate,
    forbidden,
    invalid,
    not_found,
    not_supported,
    required,
    too_long,
)
from kubesim.json_values import clone_json, mapping
from kubesim.names import (
    config_key_errors,
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    path_segment_errors,
    port_name_errors,
    qualified_name_errors,
)
from kubesim.quantities import canonical_quantity, quantity_value
from kubesim.quantity_grammar import QUANTITY_FORMAT_HINT, QuantityError
from kubesim.structural_schema import (
    apply_schema_defaults,
    prune_unknown,
    validate_against_schema,
)

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
SECRET_DATA_SIZE_LIMIT = 1024 * 1024


# --------------------------------------------------------------------------- helpers


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- metadata

_NAME_RULES = {
    "Namespace": dns1123_label_errors,
    "Service": dns1035_label_errors,
    # RBAC names only have to be path segments ("system:discovery")
    "Role": path_segment_errors,
    "ClusterRole": path_segment_errors,
    "RoleBinding": path_segment_errors,
    "ClusterRoleBinding": path_segment_errors,
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
    # The real validator reports owner reference problems on the list's path, unindexed.
    owners_path = "metadata.ownerReferences"
    controller_name = ""
    for ref in _dicts(meta.get("ownerReferences")):
        api_version = ref.get("apiVersion") or ""
        if not api_version or api_version.endswith("/"):
            causes.append(
                invalid(f"{owners_path}.apiVersion", api_version, "version must not be empty")
            )
        for field_name in ("kind", "name", "uid"):
            if not ref.get(field_name):
                causes.append(
                    invalid(
                        f"{owners_path}.{field_name}",
                        ref.get(field_name) or "",
                        f"{field_name} must not be empty",
                    )
                )
        if ref.get("kind") == "Event" and api_version == "v1":
            causes.append(
                invalid(owners_path, ref, "/v1, Kind=Event is disallowed from being an owner")
            )
        if ref.get("controller"):
            if controller_name:
                causes.append(
                    invalid(
                        owners_path,
                        meta.get("ownerReferences"),
                        'Only one reference can have Controller set to true. Found "true" '
                        f"in references for {controller_name} and {ref.get('name')}",
                    )
                )
            else:
                controller_name = ref.get("name") or ""
    finalizers = meta.get("finalizers") or []
    for finalizer in finalizers:
        # A bare name like "example" is only a warning on metadata.finalizers.
        for msg in qualified_name_errors(finalizer):
            causes.append(invalid("metadata.finalizers", finalizer, msg))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        causes.append(
            invalid(
                "metadata.finalizers",
                finalizers,
                "finalizer orphan and foregroundDeletion cannot be both set",
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


def _valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _env_name_errors(name: str) -> list[str]:
    if name and "=" not in name and all(32 <= ord(ch) < 127 for ch in name):
        return []
    return [
        "a valid environment variable name must consist only of printable ASCII characters "
        "other than '='"
    ]


def _is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_extended_resource(name: str) -> bool:
    """A device plugin's resource (``nvidia.com/gpu``): counted in whole units."""
    return not _is_native_resource(name) and not name.startswith("requests.")


def _overcommit_allowed(name: str) -> bool:
    """Extended resources and huge pages: a request must equal its limit."""
    return _is_native_resource(name) and not name.startswith("hugepages-")


def _validate_resources(path: str, resources: Any) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(resources, dict):
        return causes
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        for name, raw in (resources.get(section) or {}).items():
            field = f"{path}.{section}[{name}]"
            try:
                value = quantity_value(raw)
            except QuantityError:
                causes.append(invalid(field, raw, QUANTITY_FORMAT_HINT))
                continue
            if value < 0:
                causes.append(invalid(field, raw, "must be greater than or equal to 0"))
            if name == "cpu" and value != 0 and value < Decimal("0.001"):
                causes.append(invalid(field, raw, "must be a valid CPU quantity (at least 1m)"))
            if _is_extended_resource(name) and value != value.to_integral_value():
                causes.append(invalid(field, canonical_quantity(raw), "must be an integer"))
            parsed[section][name] = value
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if not _overcommit_allowed(name):
            if limit is None:
                causes.append(
                    required(f"{path}.limits", "Limit must be set for non overcommitable resources")
                )
            elif request != limit:
                causes.append(
                    invalid(
                        f"{path}.requests",
                        canonical_quantity(requests[name]),
                        f"must be equal to {name} limit of {canonical_quantity(limits[name])}",
                    )
                )
            continue
        if limit is not None and request > limit:
            causes.append(
                invalid(
                    f"{path}.requests",
                    canonical_quantity(requests[name]),
                    f"must be less than or equal to {name} limit of "
                    f"{canonical_quantity(limits[name])}",
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
        image = container.get("image") or ""
        if not image:
            causes.append(required(f"{path}.image"))
        elif image != image.strip():
            causes.append(
                invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
            )
        policy = container.get("imagePullPolicy")
        if policy is not None and policy not in _PULL_POLICIES:
            causes.append(not_supported(f"{path}.imagePullPolicy", policy, _PULL_POLICIES))
        port_names: set[str] = set()
        for p_index, port in enumerate(_dicts(container.get("ports"))):
            p_path = f"{path}.ports[{p_index}]"
            port_name = port.get("name")
            if port_name:
                for msg in port_name_errors(port_name):
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
            if env.get("valueFrom") is not None and env.get("value"):
                # The real server shows "" here, never the value.
                causes.append(
                    invalid(
                        f"{path}.env[{e_index}].valueFrom",
                        "",
                        "may not be specified when `value` is not empty",
                    )
                )
        mount_paths: set[str] = set()
        for m_index, mount in enumerate(_dicts(container.get("volumeMounts"))):
            m_path = f"{path}.volumeMounts[{m_index}]"
            mount_name = mount.get("name") or ""
            if not mount_name:
                causes.append(required(f"{m_path}.name"))
            elif mount_name not in volumes:
                causes.append(not_found(f"{m_path}.name", mount_name))
            sub_path = mount.get("subPath") or ""
            if sub_path.startswith("/"):
                causes.append(invalid(f"{m_path}.subPath", sub_path, "must be a relative path"))
            elif ".." in sub_path.split("/"):
                causes.append(invalid(f"{m_path}.subPath", sub_path, "must not contain '..'"))
            mount_path = mount.get("mountPath") or ""
            if not mount_path:
                causes.append(required(f"{m_path}.mountPath"))
            elif mount_path in mount_paths:
                causes.append(invalid(f"{m_path}.mountPath", mount_path, "must be unique"))
            mount_paths.add(mount_path)
        causes.extend(_validate_resources(f"{path}.resources", container.get("resources")))
        causes.extend(_validate_ids(container.get("securityContext"), f"{path}.securityContext"))
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
        causes.extend(_validate_volume_source(volume, f"spec.volumes[{index}]"))
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
    causes.extend(_validate_tolerations(spec.get("tolerations")))
    causes.extend(_validate_node_affinity(spec.get("affinity")))
    for key, value in (spec.get("nodeSelector") or {}).items():
        for msg in qualified_name_errors(key):
            causes.append(invalid("spec.nodeSelector", key, msg))
        for msg in label_value_errors(value):
            causes.append(invalid("spec.nodeSelector", value, msg))
    for field_name in ("hostname", "subdomain"):
        if spec.get(field_name):
            for msg in dns1123_label_errors(spec[field_name]):
                causes.append(invalid(f"spec.{field_name}", spec[field_name], msg))
    account = spec.get("serviceAccountName")
    if account:
        for msg in dns1123_subdomain_errors(account):
            causes.append(invalid("spec.serviceAccountName", account, msg))
    causes.extend(_validate_ids(spec.get("securityContext"), "spec.securityContext"))
    gates: set[str] = set()
    for index, gate in enumerate(_dicts(spec.get("schedulingGates"))):
        gate_name = gate.get("name") or ""
        for msg in qualified_name_errors(gate_name):
            causes.append(invalid(f"spec.schedulingGates[{index}].name", gate_name, msg))
        if gate_name in gates:
            causes.append(duplicate(f"spec.schedulingGates[{index}].name", gate_name))
        gates.add(gate_name)
    return causes


def _validate_node_selector_term(term: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    term = term if isinstance(term, dict) else {}
    for index, requirement in enumerate(_dicts(term.get("matchExpressions"))):
        where = f"{path}.matchExpressions[{index}]"
        operator = requirement.get("operator")
        values = requirement.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(
                    required(f"{where}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    forbidden(
                        f"{where}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        elif operator in ("Gt", "Lt"):
            if len(values) != 1:
                causes.append(
                    required(
                        f"{where}.values",
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    )
                )
        else:
            causes.append(invalid(f"{where}.operator", operator, "not a valid selector operator"))
        for msg in qualified_name_errors(requirement.get("key") or ""):
            causes.append(invalid(f"{where}.key", requirement.get("key") or "", msg))
    return causes


def _validate_node_affinity(affinity: Any) -> list[Cause]:
    """The node affinity rules of the real server's ValidateAffinity (pod affinity's
    label selectors are not checked here)."""
    node = (affinity or {}).get("nodeAffinity") if isinstance(affinity, dict) else None
    if not isinstance(node, dict):
        return []
    causes: list[Cause] = []
    base = "spec.affinity.nodeAffinity"
    required_terms = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required_terms, dict):
        path = f"{base}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        terms = _dicts(required_terms.get("nodeSelectorTerms"))
        if not terms:
            causes.append(required(path, "must have at least one node selector term"))
        for index, term in enumerate(terms):
            causes.extend(_validate_node_selector_term(term, f"{path}[{index}]"))
    path = f"{base}.preferredDuringSchedulingIgnoredDuringExecution"
    for index, preferred in enumerate(
        _dicts(node.get("preferredDuringSchedulingIgnoredDuringExecution"))
    ):
        weight = preferred.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
            causes.append(invalid(f"{path}[{index}].weight", weight, "must be in the range 1-100"))
        causes.extend(
            _validate_node_selector_term(preferred.get("preference"), f"{path}[{index}].preference")
        )
    return causes


# Every volume source the real API knows; a volume must name exactly one.
_VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)
_SOURCE_REQUIRED_NAME = {
    "persistentVolumeClaim": "claimName",
    "secret": "secretName",
    "configMap": "name",
    "nfs": "server",
    "hostPath": "path",
}


def _validate_volume_source(volume: dict, path: str) -> list[Cause]:
    """One and only one source, and the name each common source needs."""
    sources = [s for s in _VOLUME_SOURCES if volume.get(s) is not None]
    if not sources:
        return [required(path, "must specify a volume type")]
    causes: list[Cause] = []
    for extra in sources[1:]:
        causes.append(forbidden(f"{path}.{extra}", "may not specify more than 1 volume type"))
    source = sources[0]
    needed = _SOURCE_REQUIRED_NAME.get(source)
    body = volume[source]
    if needed and isinstance(body, dict) and not body.get(needed):
        causes.append(required(f"{path}.{source}.{needed}"))
    if source == "emptyDir" and isinstance(body, dict) and body.get("sizeLimit") is not None:
        try:
            negative = quantity_value(body["sizeLimit"]) < 0
        except QuantityError:
            negative = False  # a format error is decoding's to report
        if negative:
            causes.append(
                forbidden(
                    f"{path}.emptyDir.sizeLimit", "SizeLimit field must be a valid resource quantity"
                )
            )
    return causes


_TOLERATION_OPERATORS = ("Equal", "Exists")
_TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")


def _validate_tolerations(tolerations: Any) -> list[Cause]:
    causes: list[Cause] = []
    for index, toleration in enumerate(_dicts(tolerations)):
        path = f"spec.tolerations[{index}]"
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or "Equal"
        if key:
            for msg in qualified_name_errors(key):
                causes.append(invalid(f"{path}.key", key, msg))
        elif operator != "Exists":
            causes.append(
                invalid(
                    f"{path}.operator",
                    operator,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if operator not in _TOLERATION_OPERATORS:
            causes.append(not_supported(f"{path}.operator", operator, _TOLERATION_OPERATORS))
        elif operator == "Exists" and toleration.get("value"):
            causes.append(
                invalid(
                    f"{path}.operator",
                    toleration["value"],
                    "value must be empty when `operator` is 'Exists'",
                )
            )
        effect = toleration.get("effect") or ""
        if effect and effect not in _TAINT_EFFECTS:
            causes.append(not_supported(f"{path}.effect", effect, _TAINT_EFFECTS))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(
                invalid(
                    f"{path}.effect",
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
    return causes


def _validate_ids(security_context: Any, path: str) -> list[Cause]:
    """runAsUser/runAsGroup/fsGroup are Linux IDs: 0..2147483647."""
    causes: list[Cause] = []
    if not isinstance(security_context, dict):
        return causes
    for field_name in ("runAsUser", "runAsGroup", "fsGroup"):
        value = security_context.get(field_name)
        if isinstance(value, int) and not 0 <= value <= 2147483647:
            causes.append(
                invalid(
                    f"{path}.{field_name}", value, "must be between 0 and 2147483647, inclusive"
                )
            )
    # The pod's supplemental groups are group ids too (IsValidGroupID on each).
    for index, gid in enumerate(security_context.get("supplementalGroups") or []):
        if isinstance(gid, int) and not 0 <= gid <= 2147483647:
            causes.append(
                invalid(
                    f"{path}.supplementalGroups[{index}]",
                    gid,
                    "must be between 0 and 2147483647, inclusive",
                )
            )
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
    old_tolerations = _dicts(old_spec.get("tolerations"))
    tolerations = [_without_seconds(t) for t in _dicts(spec.get("tolerations"))]
    if any(_without_seconds(t) not in tolerations for t in old_tolerations):
        causes.append(
            forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )
        )
    old_deadline = old_spec.get("activeDeadlineSeconds")
    deadline = spec.get("activeDeadlineSeconds")
    if old_deadline is not None and deadline is None:
        causes.append(
            invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must not update from a positive integer to nil value",
            )
        )
    elif old_deadline is not None and deadline > old_deadline:
        causes.append(
            invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must be less than or equal to previous value",
            )
        )
    # Compare everything else with the mutable fields masked out.
    masked_new, masked_old = _mask_pod_spec(spec), _mask_pod_spec(old_spec)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    grace = spec.get("terminationGracePeriodSeconds")
    if grace != old_grace and not (isinstance(old_grace, int) and old_grace < 0 and grace == 1):
        # Only a negative grace period (an old clients' bug) may be repaired to 1.
        masked_new["terminationGracePeriodSeconds"] = grace
        masked_old["terminationGracePeriodSeconds"] = old_grace
    if masked_new != masked_old:
        causes.append(forbidden("spec", _POD_UPDATE_FORBIDDEN))
    return causes


def _without_seconds(toleration: dict) -> dict:
    """Tolerations compare equal whatever their tolerationSeconds (which may change)."""
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}


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
    spec = mapping(obj.get("spec"))
    causes: list[Cause] = []
    service_type = spec.get("type", "ClusterIP")
    if service_type not in _SERVICE_TYPES:
        causes.append(not_supported("spec.type", service_type, _SERVICE_TYPES))
    ports = _dicts(spec.get("ports"))
    headless = spec.get("clusterIP") == "None"
    if not ports and service_type != "ExternalName" and not headless:
        causes.append(required("spec.ports"))
    names: set[str] = set()
    keys: set[tuple[Any, Any]] = set()  # (port, protocol) as given, valid or not
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
        keys.add(key)
        target = port.get("targetPort")
        if isinstance(target, str):
            for msg in port_name_errors(target):
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

def _validate_keys(obj: dict, sections: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for section in sections:
        for key in obj.get(section) or {}:
            for msg in config_key_errors(key):
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
        "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    }.get(secret_type, ())
    for key in needed:
        if key not in data:
            causes.append(required(f"data[{key}]"))
    if secret_type == "kubernetes.io/basic-auth" and not ({"username", "password"} & set(data)):
        causes.append(required("data[username]"))
        causes.append(required("data[password]"))
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
    spec = mapping(obj.get("spec"))
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
            if quantity_value(requests["storage"]) <= 0:
                causes.append(
                    invalid(
                        "spec.resources[storage]",
                        canonical_quantity(requests["storage"]),
                        "must be greater than zero",
                    )
                )
        except QuantityError:
            causes.append(
                invalid("spec.resources[storage]", requests["storage"], QUANTITY_FORMAT_HINT)
            )
    if old is not None:
        old_spec = dict(old.get("spec") or {})
        new_spec = dict(spec)
        bound = (obj.get("status") or {}).get("phase") == "Bound"
        for masked in (old_spec, new_spec):
            masked.pop("volumeAttributesClassName", None)
            resources = masked.get("resources")
            if bound and isinstance(resources, dict) and isinstance(resources.get("requests"), dict):
                # only a bound claim may be resized: its storage request is not compared
                requests = {k: v for k, v in resources["requests"].items() if k != "storage"}
                masked["resources"] = dict(resources, requests=requests)
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
                if quantity_value(requests["storage"]) < quantity_value(capacity):
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


_REPORTING_INSTANCE_LIMIT = 128
_ACTION_LIMIT = 128
_REASON_LIMIT = 128
_NOTE_LIMIT = 1024


def _core_event_view(obj: dict) -> tuple[dict, bool]:
    """An Event as the real server validates it: core field names, and whether it came
    through events.k8s.io (which gets the strict checks)."""
    if not str(obj.get("apiVersion", "")).startswith("events.k8s.io"):
        return obj, False
    return {
        "metadata": obj.get("metadata") or {},
        "involvedObject": obj.get("regarding") or {},
        "message": obj.get("note") or "",
        "reason": obj.get("reason") or "",
        "type": obj.get("type") or "",
        "action": obj.get("action") or "",
        "eventTime": obj.get("eventTime"),
        "reportingComponent": obj.get("reportingController") or "",
        "reportingInstance": obj.get("reportingInstance") or "",
        "source": obj.get("deprecatedSource") or {},
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount") or 0,
    }, True


def _validate_event(obj: dict) -> list[Cause]:
    """The real Event validation: lenient for core/v1 writers (old clients, kubelets),
    strict for events.k8s.io/v1, where a new-style event must say who reported what."""
    event, strict = _core_event_view(obj)
    causes: list[Cause] = []
    namespace = (event.get("metadata") or {}).get("namespace") or ""
    involved = mapping(event.get("involvedObject"))
    involved_ns = involved.get("namespace") or ""
    controller_field = "reportingController" if strict else "reportingComponent"
    if not event.get("eventTime"):
        # An old-style event: its namespace must be its object's (or "default" for none).
        if (involved_ns and namespace != involved_ns) or (
            not involved_ns and namespace not in ("", "default")
        ):
            causes.append(
                invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
            )
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            causes.append(
                invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
            )
        controller = event.get("reportingComponent") or ""
        if not controller:
            causes.append(required(controller_field))
        for msg in qualified_name_errors(controller):
            causes.append(invalid(controller_field, controller, msg))
        limits = (
            ("reportingInstance", _REPORTING_INSTANCE_LIMIT),
            ("action", _ACTION_LIMIT),
            ("reason", _REASON_LIMIT),
        )
        for field_name, limit in limits:
            value = event.get(field_name) or ""
            if not value:
                causes.append(required(field_name))
            elif len(value) > limit:
                causes.append(invalid(field_name, "", f"can have at most {limit} characters"))
        if len(event.get("message") or "") > _NOTE_LIMIT:
            causes.append(invalid("message", "", f"can have at most {_NOTE_LIMIT} characters"))
    if strict:
        if not event.get("eventTime"):
            causes.append(required("eventTime"))
        if event.get("type") not in ("Normal", "Warning"):
            causes.append(invalid("type", "", f"has invalid value: {event.get('type') or ''}"))
        for field_name in ("firstTimestamp", "lastTimestamp", "count"):
            if event.get(field_name):
                causes.append(invalid(field_name, "", "needs to be unset"))
        source = mapping(event.get("source"))
        if source.get("component") or source.get("host"):
            causes.append(invalid("source", "", "needs to be unset"))
    return causes


def _validate_namespace(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    spec = mapping(obj.get("spec"))
    for index, finalizer in enumerate(spec.get("finalizers") or []):
        path = f"spec.finalizers[{index}]"
        errors = qualified_name_errors(finalizer)
        for msg in errors:
            causes.append(invalid(path, finalizer, msg))
        if not errors and "/" not in finalizer and finalizer not in _STANDARD_FINALIZERS:
            causes.append(
                invalid(
                    path,
                    finalizer,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return causes


def _validate_lease(obj: dict) -> list[Cause]:
    spec = mapping(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        return [invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")]
    return []


def _validate_crd(obj: dict) -> list[Cause]:
    spec = mapping(obj.get("spec"))
    names = mapping(spec.get("names"))
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
    for index, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if isinstance(schema, dict):
            path = f"spec.versions[{index}].schema.openAPIV3Schema"
            causes.extend(_schema_pattern_errors(schema, path))
    return causes


def _schema_pattern_errors(schema: dict, path: str) -> list[Cause]:
    """Every ``pattern`` of a CRD schema must compile, or each object of the kind would
    fail validation with a server error instead of a clear answer at CRD creation."""
    causes: list[Cause] = []
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as exc:
            causes.append(
                invalid(
                    f"{path}.pattern",
                    pattern,
                    f"must be a valid regular expression, but isn't: {exc}",
                )
            )
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            causes.extend(_schema_pattern_errors(sub, f"{path}.properties[{name}]"))
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            causes.extend(_schema_pattern_errors(schema[key], f"{path}.{key}"))
    return causes


# --------------------------------------------------------------------------- entry point


def validate_object(
    kind: str, obj: dict, old: dict | None = None, *, decoded: bool = False
) -> list[Cause]:
    """Every 422 cause the real server would report for creating (or, with ``old``, updating) ``obj``.

    ``decoded=True`` is the store's promise that ``obj`` went through
    ``decoding.decode`` (and ``old`` is stored, so decoded too): the type-check pass is
    then skipped, so each write type-checks its object once. The rules below only ever
    read fields with ``.get`` and truthiness, so the nulls defaulting adds on purpose (a
    core Event's unset times) are harmless.
    """
    if decoded:
        return _validate_decoded(kind, obj, old)
    try:
        has_nulls = check_types(kind, obj)
    except DecodeError:
        # The HTTP layer should have answered 400 with this message already (decode_error);
        # reporting it here keeps a caller that skipped decoding from crashing.
        return [
            {"reason": "FieldValueInvalid", "message": decode_error(kind, obj) or "", "field": ""}
        ]
    if has_nulls:
        obj = clone_json(obj)
        drop_nulls(kind, obj)  # validation sees what decoding produces: no nulls
    try:
        return _validate_decoded(kind, obj, old)
    except (AttributeError, TypeError, ValueError):
        # Stored objects always decode, but a caller-supplied ``old`` might not: judge the
        # object alone then, rather than fail the request.
        if old is None or decode_error(kind, old) is None:
            raise
        return _validate_decoded(kind, obj, None)


_RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def _validate_decoded(kind: str, obj: dict, old: dict | None) -> list[Cause]:
    old_meta = (old.get("metadata") or {}) if isinstance(old, dict) else None
    causes = validate_metadata(kind, obj.get("metadata"), old_meta)
    if kind == "Pod":
        spec = obj.get("spec")
        if old is not None and isinstance(spec, dict) and spec is old.get("spec"):
            # The stored spec itself (a status write, or a metadata change that kept it):
            # it was validated when it was written, and an unchanged spec breaks no
            # update rule. The real server's status strategy does not validate the spec
            # at all; either way there is nothing to report, and walking a pod's
            # containers on every kubelet status write was most of the write's cost.
            return causes
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
    elif kind == "Namespace":
        causes.extend(_validate_namespace(obj))
    elif kind == "CustomResourceDefinition":
        causes.extend(_validate_crd(obj))
    elif kind in _RBAC_KINDS:
        from kubesim.auth.validation import validate_rbac  # late: kubesim.auth imports the store

        causes.extend(validate_rbac(kind, obj, old))
    return causes


__all__ = [
    "Cause",
    "apply_schema_defaults",
    "decode_error",
    "invalid_status",
    "prune_unknown",
    "validate_against_schema",
    "validate_metadata",
    "validate_object",
]
