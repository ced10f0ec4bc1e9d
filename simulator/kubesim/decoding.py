"""Type checking of request bodies, as the real server's JSON decoder does it.

The real API server decodes a body into Go structs before anything else runs, so a
wrongly typed field (``"containerPort": "8888"``, ``"labels": []``, non-base64 Secret
data, ``memory: lots``) is a 400 BadRequest naming the Go type, never a 422 and never
a crash. Defaulting and validation may then assume well-typed input. The schemas below
cover the fields of the kinds the simulator serves that defaulting and validation
read; fields not described are accepted as they come (the real server keeps or drops
them, which is the store's business).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubesim.json_values import go_unmarshal_type
from kubesim.quantities import QuantityError, quantity_value
from kubesim.quantity_grammar import QUANTITY_FORMAT_HINT

__all__ = ["DecodeError", "check_types", "decode_error"]


class DecodeError(ValueError):
    """A body the real server cannot decode; ``str()`` is the part after "cannot be handled as"."""


@dataclass(frozen=True)
class Scalar:
    """A leaf: ``go`` names the Go type quoted in errors (string, int32, bool...)."""

    go: str


@dataclass(frozen=True)
class Struct:
    """A Go struct: ``fields`` maps JSON names to their types; other names are not checked."""

    go: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ListOf:
    item: Any
    go: str


@dataclass(frozen=True)
class MapOf:
    value: Any
    go: str


STRING = Scalar("string")
INT32 = Scalar("int32")
INT64 = Scalar("int64")
BOOL = Scalar("bool")
QUANTITY = Scalar("quantity")
INT_OR_STRING = Scalar("intstr")
BYTES = Scalar("[]uint8")
ANY = Scalar("any")

FLOAT64 = Scalar("float64")

STRINGS = ListOf(STRING, "[]string")
STRING_MAP = MapOf(STRING, "map[string]string")
RESOURCE_LIST = MapOf(QUANTITY, "v1.ResourceList")

OWNER_REFERENCE = Struct(
    "OwnerReference",
    {
        "apiVersion": STRING,
        "kind": STRING,
        "name": STRING,
        "uid": STRING,
        "controller": BOOL,
        "blockOwnerDeletion": BOOL,
    },
)
OBJECT_META = Struct(
    "ObjectMeta",
    {
        "name": STRING,
        "generateName": STRING,
        "namespace": STRING,
        "uid": STRING,
        "resourceVersion": STRING,
        "generation": INT64,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
        "finalizers": STRINGS,
        "ownerReferences": ListOf(OWNER_REFERENCE, "[]v1.OwnerReference"),
        "deletionGracePeriodSeconds": INT64,
    },
)
RESOURCES = Struct("ResourceRequirements", {"limits": RESOURCE_LIST, "requests": RESOURCE_LIST})
CONTAINER = Struct(
    "Container",
    {
        "name": STRING,
        "image": STRING,
        "command": STRINGS,
        "args": STRINGS,
        "workingDir": STRING,
        "imagePullPolicy": STRING,
        "terminationMessagePath": STRING,
        "terminationMessagePolicy": STRING,
        "stdin": BOOL,
        "tty": BOOL,
        "ports": ListOf(
            Struct(
                "ContainerPort",
                {
                    "name": STRING,
                    "containerPort": INT32,
                    "hostPort": INT32,
                    "protocol": STRING,
                    "hostIP": STRING,
                },
            ),
            "[]v1.ContainerPort",
        ),
        "env": ListOf(Struct("EnvVar", {"name": STRING, "value": STRING}), "[]v1.EnvVar"),
        "volumeMounts": ListOf(
            Struct(
                "VolumeMount",
                {"name": STRING, "mountPath": STRING, "subPath": STRING, "readOnly": BOOL},
            ),
            "[]v1.VolumeMount",
        ),
        "resources": RESOURCES,
        "securityContext": Struct("SecurityContext"),
        "livenessProbe": Struct("Probe"),
        "readinessProbe": Struct("Probe"),
        "startupProbe": Struct("Probe"),
        "lifecycle": Struct("Lifecycle"),
    },
)
TOLERATION = Struct(
    "Toleration",
    {
        "key": STRING,
        "operator": STRING,
        "value": STRING,
        "effect": STRING,
        "tolerationSeconds": INT64,
    },
)
POD_SPEC = Struct(
    "PodSpec",
    {
        "containers": ListOf(CONTAINER, "[]v1.Container"),
        "initContainers": ListOf(CONTAINER, "[]v1.Container"),
        "volumes": ListOf(Struct("Volume", {"name": STRING}), "[]v1.Volume"),
        "restartPolicy": STRING,
        "terminationGracePeriodSeconds": INT64,
        "activeDeadlineSeconds": INT64,
        "dnsPolicy": STRING,
        "nodeSelector": STRING_MAP,
        "serviceAccountName": STRING,
        "serviceAccount": STRING,
        "automountServiceAccountToken": BOOL,
        "nodeName": STRING,
        "hostNetwork": BOOL,
        "enableServiceLinks": BOOL,
        "schedulerName": STRING,
        "priorityClassName": STRING,
        "priority": INT32,
        "preemptionPolicy": STRING,
        "hostname": STRING,
        "subdomain": STRING,
        "securityContext": Struct(
            "PodSecurityContext",
            {"runAsUser": INT64, "runAsGroup": INT64, "fsGroup": INT64, "runAsNonRoot": BOOL},
        ),
        "imagePullSecrets": ListOf(
            Struct("LocalObjectReference", {"name": STRING}), "[]v1.LocalObjectReference"
        ),
        "tolerations": ListOf(TOLERATION, "[]v1.Toleration"),
        "schedulingGates": ListOf(
            Struct("PodSchedulingGate", {"name": STRING}), "[]v1.PodSchedulingGate"
        ),
        "overhead": RESOURCE_LIST,
        "affinity": Struct("Affinity"),
        "readinessGates": ListOf(
            Struct("PodReadinessGate", {"conditionType": STRING}), "[]v1.PodReadinessGate"
        ),
    },
)
# What ``kubectl get pods`` (the simulator's Table printer) and the kubelet read back.
CONTAINER_STATUS = Struct(
    "ContainerStatus",
    {
        "name": STRING,
        "ready": BOOL,
        "started": BOOL,
        "restartCount": INT32,
        "image": STRING,
        "imageID": STRING,
        "containerID": STRING,
        "state": Struct(
            "ContainerState",
            {
                "waiting": Struct("ContainerStateWaiting", {"reason": STRING, "message": STRING}),
                "running": Struct("ContainerStateRunning", {"startedAt": STRING}),
                "terminated": Struct(
                    "ContainerStateTerminated",
                    {"exitCode": INT32, "signal": INT32, "reason": STRING, "message": STRING},
                ),
            },
        ),
    },
)
POD_STATUS = Struct(
    "PodStatus",
    {
        "phase": STRING,
        "podIP": STRING,
        "hostIP": STRING,
        "reason": STRING,
        "message": STRING,
        "qosClass": STRING,
        "nominatedNodeName": STRING,
        "conditions": ListOf(
            Struct(
                "PodCondition",
                {"type": STRING, "status": STRING, "reason": STRING, "message": STRING},
            ),
            "[]v1.PodCondition",
        ),
        "podIPs": ListOf(Struct("PodIP", {"ip": STRING}), "[]v1.PodIP"),
        "hostIPs": ListOf(Struct("HostIP", {"ip": STRING}), "[]v1.HostIP"),
        "startTime": STRING,
        "containerStatuses": ListOf(CONTAINER_STATUS, "[]v1.ContainerStatus"),
        "initContainerStatuses": ListOf(CONTAINER_STATUS, "[]v1.ContainerStatus"),
    },
)
SERVICE_PORT = Struct(
    "ServicePort",
    {
        "name": STRING,
        "protocol": STRING,
        "appProtocol": STRING,
        "port": INT32,
        "targetPort": INT_OR_STRING,
        "nodePort": INT32,
    },
)
SERVICE_SPEC = Struct(
    "ServiceSpec",
    {
        "ports": ListOf(SERVICE_PORT, "[]v1.ServicePort"),
        "selector": STRING_MAP,
        "clusterIP": STRING,
        "clusterIPs": STRINGS,
        "type": STRING,
        "externalName": STRING,
        "sessionAffinity": STRING,
        "ipFamilies": STRINGS,
        "ipFamilyPolicy": STRING,
        "internalTrafficPolicy": STRING,
        "externalTrafficPolicy": STRING,
        "publishNotReadyAddresses": BOOL,
        "externalIPs": STRINGS,
    },
)
SERVICE_STATUS = Struct(
    "ServiceStatus",
    {
        "loadBalancer": Struct(
            "LoadBalancerStatus",
            {
                "ingress": ListOf(
                    Struct("LoadBalancerIngress", {"ip": STRING, "hostname": STRING}),
                    "[]v1.LoadBalancerIngress",
                )
            },
        )
    },
)
NODE_STATUS = Struct(
    "NodeStatus",
    {
        "conditions": ListOf(
            Struct(
                "NodeCondition",
                {"type": STRING, "status": STRING, "reason": STRING, "message": STRING},
            ),
            "[]v1.NodeCondition",
        ),
        "addresses": ListOf(
            Struct("NodeAddress", {"type": STRING, "address": STRING}), "[]v1.NodeAddress"
        ),
        "capacity": RESOURCE_LIST,
        "allocatable": RESOURCE_LIST,
        "nodeInfo": Struct("NodeSystemInfo", {"kubeletVersion": STRING, "architecture": STRING}),
    },
)
PVC_SPEC = Struct(
    "PersistentVolumeClaimSpec",
    {
        "accessModes": STRINGS,
        "storageClassName": STRING,
        "volumeMode": STRING,
        "volumeName": STRING,
        "resources": Struct(
            "VolumeResourceRequirements", {"limits": RESOURCE_LIST, "requests": RESOURCE_LIST}
        ),
    },
)
OBJECT_REFERENCE = Struct(
    "ObjectReference",
    {
        "kind": STRING,
        "namespace": STRING,
        "name": STRING,
        "uid": STRING,
        "apiVersion": STRING,
        "resourceVersion": STRING,
        "fieldPath": STRING,
    },
)

# A CRD's openAPIV3Schema, recursively: the structural-schema code compares bounds,
# compiles patterns and walks properties/items, so their types are checked on the way in.
# ``items`` and ``additionalProperties`` may be a schema or an array/bool in Go
# (JSONSchemaPropsOrArray/OrBool), so they are left to the readers, which check shapes.
JSON_SCHEMA_PROPS = Struct("JSONSchemaProps")
JSON_SCHEMA_PROPS.fields.update(
    {
        "type": STRING,
        "format": STRING,
        "description": STRING,
        "pattern": STRING,
        "properties": MapOf(JSON_SCHEMA_PROPS, "map[string]v1.JSONSchemaProps"),
        "required": STRINGS,
        "enum": ListOf(ANY, "[]v1.JSON"),
        "minimum": FLOAT64,
        "maximum": FLOAT64,
        "exclusiveMinimum": BOOL,
        "exclusiveMaximum": BOOL,
        "minLength": INT64,
        "maxLength": INT64,
        "minItems": INT64,
        "maxItems": INT64,
        "minProperties": INT64,
        "maxProperties": INT64,
        "nullable": BOOL,
        "x-kubernetes-preserve-unknown-fields": BOOL,
        "x-kubernetes-embedded-resource": BOOL,
        "x-kubernetes-int-or-string": BOOL,
        "x-kubernetes-list-type": STRING,
        "x-kubernetes-list-map-keys": STRINGS,
        "x-kubernetes-map-type": STRING,
    }
)
CRD_SPEC = Struct(
    "CustomResourceDefinitionSpec",
    {
        "group": STRING,
        "scope": STRING,
        "names": Struct(
            "CustomResourceDefinitionNames",
            {
                "plural": STRING,
                "singular": STRING,
                "kind": STRING,
                "listKind": STRING,
                "shortNames": STRINGS,
                "categories": STRINGS,
            },
        ),
        "versions": ListOf(
            Struct(
                "CustomResourceDefinitionVersion",
                {
                    "name": STRING,
                    "served": BOOL,
                    "storage": BOOL,
                    "deprecated": BOOL,
                    "schema": Struct(
                        "CustomResourceValidation", {"openAPIV3Schema": JSON_SCHEMA_PROPS}
                    ),
                    "subresources": Struct(
                        "CustomResourceSubresources",
                        {
                            "status": Struct("CustomResourceSubresourceStatus"),
                            "scale": Struct("CustomResourceSubresourceScale"),
                        },
                    ),
                },
            ),
            "[]v1.CustomResourceDefinitionVersion",
        ),
        "conversion": Struct("CustomResourceConversion", {"strategy": STRING}),
    },
)

KIND_SCHEMAS: dict[str, Struct] = {
    "Pod": Struct("Pod", {"metadata": OBJECT_META, "spec": POD_SPEC, "status": POD_STATUS}),
    "Service": Struct(
        "Service", {"metadata": OBJECT_META, "spec": SERVICE_SPEC, "status": SERVICE_STATUS}
    ),
    "Secret": Struct(
        "Secret",
        {
            "metadata": OBJECT_META,
            "data": MapOf(BYTES, "map[string][]uint8"),
            "stringData": STRING_MAP,
            "type": STRING,
            "immutable": BOOL,
        },
    ),
    "ConfigMap": Struct(
        "ConfigMap",
        {
            "metadata": OBJECT_META,
            "data": STRING_MAP,
            "binaryData": MapOf(BYTES, "map[string][]uint8"),
            "immutable": BOOL,
        },
    ),
    "PersistentVolumeClaim": Struct(
        "PersistentVolumeClaim",
        {
            "metadata": OBJECT_META,
            "spec": PVC_SPEC,
            "status": Struct(
                "PersistentVolumeClaimStatus",
                {"phase": STRING, "accessModes": STRINGS, "capacity": RESOURCE_LIST},
            ),
        },
    ),
    "Namespace": Struct(
        "Namespace",
        {
            "metadata": OBJECT_META,
            "spec": Struct("NamespaceSpec", {"finalizers": STRINGS}),
            "status": Struct("NamespaceStatus", {"phase": STRING}),
        },
    ),
    "ServiceAccount": Struct(
        "ServiceAccount", {"metadata": OBJECT_META, "automountServiceAccountToken": BOOL}
    ),
    "Event": Struct(
        "Event",
        {
            "metadata": OBJECT_META,
            "involvedObject": OBJECT_REFERENCE,
            "regarding": OBJECT_REFERENCE,
            "reason": STRING,
            "message": STRING,
            "note": STRING,
            "type": STRING,
            "count": INT32,
            "reportingComponent": STRING,
            "reportingController": STRING,
            "source": Struct("EventSource", {"component": STRING, "host": STRING}),
            "firstTimestamp": STRING,
            "lastTimestamp": STRING,
            "eventTime": STRING,
            "action": STRING,
            "reportingInstance": STRING,
        },
    ),
    "Node": Struct(
        "Node",
        {
            "metadata": OBJECT_META,
            "spec": Struct(
                "NodeSpec",
                {
                    "unschedulable": BOOL,
                    "podCIDR": STRING,
                    "providerID": STRING,
                    "taints": ListOf(
                        Struct(
                            "Taint",
                            {"key": STRING, "value": STRING, "effect": STRING},
                        ),
                        "[]v1.Taint",
                    ),
                },
            ),
            "status": NODE_STATUS,
        },
    ),
    "CustomResourceDefinition": Struct(
        "CustomResourceDefinition", {"metadata": OBJECT_META, "spec": CRD_SPEC}
    ),
    "Lease": Struct(
        "Lease",
        {
            "metadata": OBJECT_META,
            "spec": Struct(
                "LeaseSpec",
                {
                    "holderIdentity": STRING,
                    "leaseDurationSeconds": INT32,
                    "leaseTransitions": INT32,
                },
            ),
        },
    ),
}
DEFAULT_SCHEMA = Struct("Object", {"metadata": OBJECT_META})

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def _go_name(node: Any) -> str:
    if isinstance(node, Struct):
        return f"v1.{node.go}" if node.go not in ("Object",) else "map[string]interface {}"
    if isinstance(node, Scalar) and node.go == "intstr":
        return "int32"
    return node.go


class _Mismatch(Exception):
    """A JSON type that does not fit; the Go struct and path are filled in while unwinding."""

    def __init__(self, value: Any, node: Any) -> None:
        super().__init__()
        self.value = value
        self.node = node
        self.struct: str | None = None
        self.keys: list[str] = []

    def decode_error(self) -> DecodeError:
        shown = go_unmarshal_type(self.value)
        if shown == "number":
            shown = f"number {self.value}"
        path = ".".join(reversed(self.keys))
        if self.struct is None:
            return DecodeError(
                f"json: cannot unmarshal {shown} into Go value of type {_go_name(self.node)}"
            )
        return DecodeError(
            f"json: cannot unmarshal {shown} into Go struct field {self.struct}.{path} "
            f"of type {_go_name(self.node)}"
        )


def _check(node: Any, value: Any) -> bool:
    """Type-check ``value`` against ``node``; True when a null was seen (it decodes to zero).

    Runs on every write, twice (defaulting and validation), so it dispatches on exact
    types and handles strings, the commonest leaf, inline.
    """
    if value is None:
        return True
    node_type = type(node)
    if node_type is Struct:
        if type(value) is not dict and not isinstance(value, dict):
            raise _Mismatch(value, node)
        saw_null = False
        fields = node.fields
        for key, item in value.items():  # body order, as Go's decoder meets them
            child = fields.get(key)
            if child is None:
                continue
            if child is STRING and type(item) is str:
                continue
            try:
                if _check(child, item):
                    saw_null = True
            except _Mismatch as exc:
                if exc.struct is None:
                    exc.struct = node.go
                exc.keys.append(key)
                raise
        return saw_null
    if node_type is ListOf:
        if type(value) is not list and not isinstance(value, list):
            raise _Mismatch(value, node)
        item_node = node.item
        if item_node is STRING:
            saw_null = False
            for item in value:
                if type(item) is not str:
                    if item is not None:
                        raise _Mismatch(item, item_node)
                    saw_null = True
            return saw_null
        saw_null = False
        for item in value:
            if _check(item_node, item):
                saw_null = True
        return saw_null
    if node_type is MapOf:
        if type(value) is not dict and not isinstance(value, dict):
            raise _Mismatch(value, node)
        saw_null = False
        value_node = node.value
        for item in value.values():
            if value_node is STRING and type(item) is str:
                continue
            if _check(value_node, item):
                saw_null = True
        return saw_null
    if node is ANY:
        return False
    _check_scalar(node, value)
    return False


def _check_scalar(node: Scalar, value: Any) -> None:
    kind = node.go
    if kind == "string":
        if not isinstance(value, str):
            raise _Mismatch(value, node)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _Mismatch(value, node)
    elif kind == "float64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Mismatch(value, node)
    elif kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not value.is_integer())
            or not low <= value <= high
        ):
            raise _Mismatch(value, node)
    elif kind == "intstr":
        if isinstance(value, str):
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DecodeError(
                f"json: cannot unmarshal {go_unmarshal_type(value)} into Go value of type int32"
            )
        if isinstance(value, float) and not value.is_integer():
            raise DecodeError(f"json: cannot unmarshal number {value} into Go value of type int32")
    elif kind == "quantity":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise DecodeError(QUANTITY_FORMAT_HINT)
        try:
            quantity_value(value)
        except QuantityError:
            raise DecodeError(QUANTITY_FORMAT_HINT) from None
    elif kind == "[]uint8":
        if not isinstance(value, str):
            raise _Mismatch(value, node)
        _check_base64(value)


def _check_base64(text: str) -> None:
    """[]byte fields travel as standard base64; report the first bad byte like Go does."""
    for index, ch in enumerate(text):
        if not (ch.isascii() and (ch.isalnum() or ch in "+/=")):
            raise DecodeError(f"illegal base64 data at input byte {index}")
    if len(text) % 4:
        # Go reports the start of the incomplete final quantum.
        raise DecodeError(f"illegal base64 data at input byte {len(text) - len(text) % 4}")
    if not _BASE64_RE.match(text):
        raise DecodeError(f"illegal base64 data at input byte {text.index('=')}")
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        raise DecodeError(f"illegal base64 data at input byte {max(len(text) - 1, 0)}") from None


def check_types(kind: str, obj: Any) -> bool:
    """Raise DecodeError when ``obj`` could not be decoded into ``kind``'s Go type.

    Returns True when the checked fields hold JSON nulls (see ``drop_nulls``), so callers
    can skip that pass in the common case.
    """
    schema = KIND_SCHEMAS.get(kind, DEFAULT_SCHEMA)
    if not isinstance(obj, dict):
        raise DecodeError(
            f"json: cannot unmarshal {go_unmarshal_type(obj)} into Go value of type v1.{kind}"
        )
    try:
        return _check(schema, obj)
    except _Mismatch as exc:
        raise exc.decode_error() from None


def decode_error(kind: str, obj: Any) -> str | None:
    """The real server's 400 message for an undecodable body of ``kind``, or None if it decodes."""
    try:
        check_types(kind, obj)
    except DecodeError as exc:
        return f'{kind} in version "v1" cannot be handled as a {kind}: {exc}'
    return None


def drop_nulls(kind: str, obj: dict) -> None:
    """Apply what decoding does to JSON nulls: zero values, which the server then omits.

    A null field disappears; a null list element becomes an empty object (or "" in a
    list of strings); a null value in a string map becomes "". Modifies ``obj`` in place.
    """
    _drop(KIND_SCHEMAS.get(kind, DEFAULT_SCHEMA), obj)


def _zero(node: Any) -> Any:
    if isinstance(node, Struct):
        return {}
    if node in (STRING, BYTES):
        return ""
    return None


def _drop(node: Any, value: Any) -> None:
    if isinstance(value, dict):
        if isinstance(node, MapOf):
            for key, item in value.items():
                if item is None:
                    value[key] = _zero(node.value)
                else:
                    _drop(node.value, item)
            return
        fields = node.fields if isinstance(node, Struct) else {}
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for key, item in value.items():
            _drop(fields.get(key, ANY), item)
    elif isinstance(value, list):
        item_node = node.item if isinstance(node, ListOf) else ANY
        for index, item in enumerate(value):
            if item is None:
                zero = _zero(item_node)
                if zero is not None:
                    value[index] = zero
            else:
                _drop(item_node, item)


# ObjectMeta's fields in the order the real server writes them (the store serialises
# metadata in this order); any other key under metadata is unknown to the decoder.
OBJECT_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
OBJECT_META_FIELDS = frozenset(OBJECT_META_ORDER)
# Top-level fields of the built-in kinds (besides kind, apiVersion, metadata): any other
# is unknown, dropped with a warning by default and refused under fieldValidation=Strict.
KIND_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset({"spec", "status"}),
    "Service": frozenset({"spec", "status"}),
    "PersistentVolumeClaim": frozenset({"spec", "status"}),
    "Namespace": frozenset({"spec", "status"}),
    "Node": frozenset({"spec", "status"}),
    "ConfigMap": frozenset({"data", "binaryData", "immutable"}),
    "Secret": frozenset({"data", "stringData", "type", "immutable"}),
    "ServiceAccount": frozenset({"secrets", "imagePullSecrets", "automountServiceAccountToken"}),
    "Lease": frozenset({"spec"}),
}


def unknown_fields(kind: str, group: str, obj: dict) -> list[str]:
    """Paths of the fields of ``obj`` its Go type does not have, as the real decoder names
    them ("spec", "metadata.color"); custom resources are pruned by their schema instead."""
    unknown: list[str] = []
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        unknown += [f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS]
    allowed = KIND_FIELDS.get(kind) if group in ("", "coordination.k8s.io") else None
    if allowed is not None:
        unknown += [
            k for k in obj if k not in allowed and k not in ("kind", "apiVersion", "metadata")
        ]
    return unknown


def drop_unknown_fields(kind: str, group: str, obj: dict) -> None:
    """What decoding into a Go struct does to fields it has no place for: they vanish."""
    for path in unknown_fields(kind, group, obj):
        if path.startswith("metadata."):
            del obj["metadata"][path.removeprefix("metadata.")]
        else:
            del obj[path]


# Nesting a body may have. The real decoder allows 10,000 levels; the simulator's
# recursive steps (type check, defaulting, patching, copies) need Python stack frames per
# level, and no Kubernetes object comes near this.
MAX_BODY_DEPTH = 100


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects/arrays more than ``limit`` deep (no recursion).

    Every body and every patched object is checked, so this runs on each write; walking
    the object in Python cost more than the rest of a status patch. orjson's indented
    form gives the answer at C speed: an object or array nested at depth ``d`` (the top
    is 1) writes its items on lines indented by ``2 * d`` spaces, and no other raw
    newline appears (strings escape theirs). A value ``limit + 1`` deep must therefore
    be an item of a depth-``limit`` container, on a line indented ``2 * limit`` spaces
    that opens ``{`` or ``[``. That line's absence proves the answer is False; its
    presence (or anything orjson refuses: integers past 64 bits, non-string keys,
    nesting past orjson's own limit) falls back to the exact walk, so the answer is
    always the walk's. orjson writes more containers than the walk counts (tuples,
    dataclasses), never fewer, so the shortcut can only send a value to the walk.
    """
    if not isinstance(value, dict | list):
        return False
    if limit < 1:
        return True
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except (TypeError, ValueError):  # JSONEncodeError is a TypeError
        return _walk_deeper_than(value, limit)
    indent = b"\n" + b" " * (2 * limit)
    if indent not in text:  # no container at depth ``limit`` has any item
        return False
    if _nested_item_pattern(limit).search(text) is None:
        return False
    return _walk_deeper_than(value, limit)


_NESTED_ITEM_PATTERNS: dict[int, re.Pattern[bytes]] = {}


def _nested_item_pattern(limit: int) -> re.Pattern[bytes]:
    """A line of orjson's indented output that opens a container ``limit + 1`` deep."""
    pattern = _NESTED_ITEM_PATTERNS.get(limit)
    if pattern is None:
        pattern = re.compile(
            re.escape(b"\n" + b" " * (2 * limit)) + rb'(?:"(?:[^"\\]|\\.)*": )?[\[{]'
        )
        if len(_NESTED_ITEM_PATTERNS) < 16:  # callers use one or two limits
            _NESTED_ITEM_PATTERNS[limit] = pattern
    return pattern


def _walk_deeper_than(value: Any, limit: int) -> bool:
    """``nested_deeper_than`` by walking every value (the reference answer)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


# Groups whose kinds the schemas above describe; a custom resource with a clashing kind
# name (say, a CRD whose kind is "Pod") must not be checked against the built-in type.
_BUILTIN_GROUPS = frozenset({"", "events.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io"})


def decode(
    kind: str, group: str, version: str, obj: Any, *, stored: dict[str, Any] | None = None
) -> dict:
    """The store's entry point: ``obj`` as the real decoder leaves it, or the real 400.

    Modifies ``obj`` in place (nulls and fields the type does not have dropped) and
    returns it, so callers pass a copy they own.

    ``stored``: the stored object a patch turned into ``obj``. When ``obj`` still holds
    that object's very ``spec`` (a status write shares it), the spec is not checked
    again: it was decoded when it was written (so it type-checks and holds no nulls;
    nothing the store adds to a spec is null), and the answer is the same as checking
    it. A pod's spec is most of the object, and every status write of the kubelet
    would otherwise walk it.
    """
    checked_kind = kind if group in _BUILTIN_GROUPS else f"{group}/{kind}"
    checked = obj
    if (
        stored is not None
        and type(obj) is dict
        and isinstance(obj.get("spec"), dict)
        and obj["spec"] is stored.get("spec")
    ):
        # the same fields in the same order, less the shared spec: the first mismatch
        # (what the 400 names) is the same one, since the spec has none
        checked = {key: value for key, value in obj.items() if key != "spec"}
    try:
        has_nulls = check_types(checked_kind, checked)
    except DecodeError as exc:
        # the store's Status constructors, imported late (errors is heavier) and only
        # on this path: an import statement costs a module lookup on every call, and
        # nearly every decode succeeds
        from . import errors

        raise errors.bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}'
        ) from None
    if has_nulls:
        drop_nulls(checked_kind, obj)
    drop_unknown_fields(kind, group, obj)
    return obj
