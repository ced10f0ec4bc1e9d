"""The type check the real server's JSON decoder does before anything else sees an object.

A real API server decodes a body into Go structs, so ``"containers": "x"`` or
``"labels": [1]`` never reaches defaulting or validation: it is a 400 BadRequest
("cannot unmarshal string into Go struct field ..."). The simulator works on plain
dicts, so this module plays the decoder: it checks the JSON types of the fields of the
built-in kinds (unknown fields pass, as in the real non-strict decode) and drops
``null`` fields the way Go's zero values disappear from the stored object. After it,
defaulting and validation can rely on the types, and a malformed body can never turn
into a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from . import errors

# Leaf types: the Go type named in error messages, and the JSON types accepted.
LEAVES: dict[str, tuple[str, tuple[type, ...]]] = {
    "string": ("string", (str,)),
    "int32": ("int32", (int,)),
    "int64": ("int64", (int,)),
    "bool": ("bool", (bool,)),
    "time": ("v1.Time", (str,)),
    "microtime": ("v1.MicroTime", (str,)),
    "quantity": ("resource.Quantity", (str, int, float)),
    "intorstring": ("intstr.IntOrString", (str, int)),
    "bytes": ("[]uint8", (str,)),
    "object": ("map[string]interface {}", (dict,)),
    "any": ("interface {}", ()),
}
KEEP_NULL = {"time", "microtime"}  # metav1.Time marshals null (e.g. lastProbeTime: null)

Schema = Any  # str leaf | dict struct | ("list", Schema) | ("map", Schema)

S, I32, I64, B, T, Q = "string", "int32", "int64", "bool", "time", "quantity"
MSS = ("map", S)
LS = ("list", S)
OBJ = "object"

OWNER_REF = {
    "apiVersion": S,
    "kind": S,
    "name": S,
    "uid": S,
    "controller": B,
    "blockOwnerDeletion": B,
}
OBJECT_META = {
    "name": S,
    "generateName": S,
    "namespace": S,
    "selfLink": S,
    "uid": S,
    "resourceVersion": S,
    "generation": I64,
    "creationTimestamp": T,
    "deletionTimestamp": T,
    "deletionGracePeriodSeconds": I64,
    "labels": MSS,
    "annotations": MSS,
    "ownerReferences": ("list", OWNER_REF),
    "finalizers": LS,
    "managedFields": ("list", OBJ),
}
RESOURCES = {"limits": ("map", Q), "requests": ("map", Q), "claims": ("list", OBJ)}
CONTAINER = {
    "name": S,
    "image": S,
    "command": LS,
    "args": LS,
    "workingDir": S,
    "ports": (
        "list",
        {"name": S, "hostPort": I32, "containerPort": I32, "protocol": S, "hostIP": S},
    ),
    "envFrom": ("list", OBJ),
    "env": ("list", {"name": S, "value": S, "valueFrom": OBJ}),
    "resources": RESOURCES,
    "resizePolicy": ("list", OBJ),
    "restartPolicy": S,
    "volumeMounts": (
        "list",
        {
            "name": S,
            "readOnly": B,
            "recursiveReadOnly": S,
            "mountPath": S,
            "subPath": S,
            "mountPropagation": S,
            "subPathExpr": S,
        },
    ),
    "volumeDevices": ("list", OBJ),
    "livenessProbe": OBJ,
    "readinessProbe": OBJ,
    "startupProbe": OBJ,
    "lifecycle": OBJ,
    "terminationMessagePath": S,
    "terminationMessagePolicy": S,
    "imagePullPolicy": S,
    "securityContext": OBJ,
    "stdin": B,
    "stdinOnce": B,
    "tty": B,
}
VOLUME = {
    "name": S,
    "persistentVolumeClaim": {"claimName": S, "readOnly": B},
    "emptyDir": {"medium": S, "sizeLimit": Q},
    "configMap": OBJ,
    "secret": OBJ,
    "projected": OBJ,
    "hostPath": OBJ,
    "downwardAPI": OBJ,
    "nfs": OBJ,
    "csi": OBJ,
    "ephemeral": OBJ,
}
TOLERATION = {"key": S, "operator": S, "value": S, "effect": S, "tolerationSeconds": I64}
CONDITION = {
    "type": S,
    "status": S,
    "lastProbeTime": T,
    "lastTransitionTime": T,
    "reason": S,
    "message": S,
    "observedGeneration": I64,
}
CONTAINER_STATUS = {
    "name": S,
    "state": OBJ,
    "lastState": OBJ,
    "ready": B,
    "restartCount": I32,
    "image": S,
    "imageID": S,
    "containerID": S,
    "started": B,
}
POD_SPEC = {
    "volumes": ("list", VOLUME),
    "initContainers": ("list", CONTAINER),
    "containers": ("list", CONTAINER),
    "ephemeralContainers": ("list", OBJ),
    "restartPolicy": S,
    "terminationGracePeriodSeconds": I64,
    "activeDeadlineSeconds": I64,
    "dnsPolicy": S,
    "nodeSelector": MSS,
    "serviceAccountName": S,
    "serviceAccount": S,
    "automountServiceAccountToken": B,
    "nodeName": S,
    "hostNetwork": B,
    "hostPID": B,
    "hostIPC": B,
    "shareProcessNamespace": B,
    "securityContext": OBJ,
    "imagePullSecrets": ("list", {"name": S}),
    "hostname": S,
    "subdomain": S,
    "affinity": OBJ,
    "schedulerName": S,
    "tolerations": ("list", TOLERATION),
    "hostAliases": ("list", OBJ),
    "priorityClassName": S,
    "priority": I32,
    "dnsConfig": OBJ,
    "readinessGates": ("list", {"conditionType": S}),
    "runtimeClassName": S,
    "enableServiceLinks": B,
    "preemptionPolicy": S,
    "overhead": ("map", Q),
    "topologySpreadConstraints": ("list", OBJ),
    "setHostnameAsFQDN": B,
    "os": OBJ,
    "hostUsers": B,
    "schedulingGates": ("list", {"name": S}),
    "resourceClaims": ("list", OBJ),
    "resources": RESOURCES,
}
POD_STATUS = {
    "phase": S,
    "conditions": ("list", CONDITION),
    "message": S,
    "reason": S,
    "nominatedNodeName": S,
    "hostIP": S,
    "hostIPs": ("list", {"ip": S}),
    "podIP": S,
    "podIPs": ("list", {"ip": S}),
    "startTime": T,
    "initContainerStatuses": ("list", CONTAINER_STATUS),
    "containerStatuses": ("list", CONTAINER_STATUS),
    "qosClass": S,
    "ephemeralContainerStatuses": ("list", CONTAINER_STATUS),
    "resize": S,
    "resourceClaimStatuses": ("list", OBJ),
    "observedGeneration": I64,
}
SERVICE_SPEC = {
    "ports": (
        "list",
        {
            "name": S,
            "protocol": S,
            "appProtocol": S,
            "port": I32,
            "targetPort": "intorstring",
            "nodePort": I32,
        },
    ),
    "selector": MSS,
    "clusterIP": S,
    "clusterIPs": LS,
    "type": S,
    "externalIPs": LS,
    "sessionAffinity": S,
    "loadBalancerIP": S,
    "loadBalancerSourceRanges": LS,
    "externalName": S,
    "externalTrafficPolicy": S,
    "healthCheckNodePort": I32,
    "publishNotReadyAddresses": B,
    "sessionAffinityConfig": OBJ,
    "ipFamilies": LS,
    "ipFamilyPolicy": S,
    "allocateLoadBalancerNodePorts": B,
    "loadBalancerClass": S,
    "internalTrafficPolicy": S,
    "trafficDistribution": S,
}
PVC_SPEC = {
    "accessModes": LS,
    "selector": OBJ,
    "resources": RESOURCES,
    "volumeName": S,
    "storageClassName": S,
    "volumeMode": S,
    "dataSource": OBJ,
    "dataSourceRef": OBJ,
    "volumeAttributesClassName": S,
}
PVC_STATUS = {
    "phase": S,
    "accessModes": LS,
    "capacity": ("map", Q),
    "conditions": ("list", OBJ),
    "allocatedResources": ("map", Q),
}
OBJECT_REF = {
    "kind": S,
    "namespace": S,
    "name": S,
    "uid": S,
    "apiVersion": S,
    "resourceVersion": S,
    "fieldPath": S,
}

KINDS: dict[tuple[str, str], dict[str, Schema]] = {
    ("", "Pod"): {"spec": POD_SPEC, "status": POD_STATUS},
    ("", "Service"): {"spec": SERVICE_SPEC, "status": OBJ},
    ("", "PersistentVolumeClaim"): {"spec": PVC_SPEC, "status": PVC_STATUS},
    ("", "Secret"): {"data": ("map", "bytes"), "stringData": MSS, "type": S, "immutable": B},
    ("", "ConfigMap"): {"data": MSS, "binaryData": ("map", "bytes"), "immutable": B},
    ("", "Namespace"): {
        "spec": {"finalizers": LS},
        "status": {"phase": S, "conditions": ("list", OBJ)},
    },
    ("", "ServiceAccount"): {
        "secrets": ("list", OBJECT_REF),
        "imagePullSecrets": ("list", {"name": S}),
        "automountServiceAccountToken": B,
    },
    ("", "Event"): {
        "involvedObject": OBJECT_REF,
        "reason": S,
        "message": S,
        "source": {"component": S, "host": S},
        "firstTimestamp": T,
        "lastTimestamp": T,
        "count": I32,
        "type": S,
        "eventTime": "microtime",
        "series": OBJ,
        "action": S,
        "related": OBJECT_REF,
        "reportingComponent": S,
        "reportingInstance": S,
    },
    ("", "Node"): {
        "spec": {
            "podCIDR": S,
            "podCIDRs": LS,
            "providerID": S,
            "unschedulable": B,
            "taints": ("list", {"key": S, "value": S, "effect": S, "timeAdded": T}),
        },
        "status": OBJ,
    },
    ("events.k8s.io", "Event"): {
        "eventTime": "microtime",
        "series": OBJ,
        "reportingController": S,
        "reportingInstance": S,
        "action": S,
        "reason": S,
        "regarding": OBJECT_REF,
        "related": OBJECT_REF,
        "note": S,
        "type": S,
        "deprecatedSource": OBJ,
        "deprecatedFirstTimestamp": T,
        "deprecatedLastTimestamp": T,
        "deprecatedCount": I32,
    },
    ("coordination.k8s.io", "Lease"): {
        "spec": {
            "holderIdentity": S,
            "leaseDurationSeconds": I32,
            "acquireTime": "microtime",
            "renewTime": "microtime",
            "leaseTransitions": I32,
            "strategy": S,
            "preferredHolder": S,
        }
    },
    ("apiextensions.k8s.io", "CustomResourceDefinition"): {
        "spec": {
            "group": S,
            "names": {
                "plural": S,
                "singular": S,
                "kind": S,
                "listKind": S,
                "shortNames": LS,
                "categories": LS,
            },
            "scope": S,
            "versions": (
                "list",
                {
                    "name": S,
                    "served": B,
                    "storage": B,
                    "schema": OBJ,
                    "subresources": OBJ,
                    "additionalPrinterColumns": ("list", OBJ),
                    "deprecated": B,
                },
            ),
            "conversion": OBJ,
            "preserveUnknownFields": B,
        },
        "status": OBJ,
    },
}


# Go type names of the structs above, for error messages ("of type []v1.Container").
GO_STRUCTS = {
    id(OWNER_REF): "v1.OwnerReference",
    id(OBJECT_META): "v1.ObjectMeta",
    id(RESOURCES): "v1.ResourceRequirements",
    id(CONTAINER): "v1.Container",
    id(VOLUME): "v1.Volume",
    id(TOLERATION): "v1.Toleration",
    id(CONDITION): "v1.PodCondition",
    id(CONTAINER_STATUS): "v1.ContainerStatus",
    id(POD_SPEC): "v1.PodSpec",
    id(POD_STATUS): "v1.PodStatus",
    id(SERVICE_SPEC): "v1.ServiceSpec",
    id(PVC_SPEC): "v1.PersistentVolumeClaimSpec",
    id(PVC_STATUS): "v1.PersistentVolumeClaimStatus",
    id(OBJECT_REF): "v1.ObjectReference",
}


class _TypeMismatch(Exception):
    def __init__(self, path: str, value: Any, go_type: str) -> None:
        super().__init__(path)
        self.path, self.value, self.go_type = path, value, go_type


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number" if isinstance(value, int) or value.is_integer() else f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_name(schema: Schema) -> str:
    if isinstance(schema, str):
        return LEAVES[schema][0]
    if isinstance(schema, tuple):
        inner = _go_name(schema[1])
        return f"[]{inner}" if schema[0] == "list" else f"map[string]{inner}"
    return GO_STRUCTS.get(id(schema), "struct")


Checker = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _leaf(schema: str) -> Checker:
    go_type, accepted = LEAVES[schema]
    if schema == "any":
        return _identity
    if schema == "bytes":

        def check_bytes(value: Any) -> Any:
            if type(value) is not str:
                raise _TypeMismatch("", value, go_type)
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise errors.bad_request(
                    f"illegal base64 data at input byte {_bad_b64_offset(value)}"
                ) from None
            return value

        return check_bytes
    exact = frozenset(accepted)  # bool is its own type, so int fields refuse true/false

    def check_leaf(value: Any) -> Any:
        if type(value) in exact:
            return value
        raise _TypeMismatch("", value, go_type)

    return check_leaf


def _with_key(exc: _TypeMismatch, key: str) -> _TypeMismatch:
    exc.path = f"{key}.{exc.path}" if exc.path else key
    return exc


def _compile(schema: Schema) -> Checker:
    """A checker for ``schema``: returns the value (nulls dropped) or raises ``_TypeMismatch``.

    Compiled once per kind, and the happy path copies nothing it does not have to: at
    thousands of writes a second this check must cost little next to the write itself.
    """
    if isinstance(schema, str):
        return _leaf(schema)
    go_type = _go_name(schema)
    if isinstance(schema, tuple):
        kind, inner_schema = schema
        inner = _compile(inner_schema)
        if kind == "list":

            def check_list(value: Any) -> Any:
                if type(value) is not list:
                    raise _TypeMismatch("", value, go_type)
                checked = [inner(item) for item in value if item is not None]
                if len(checked) == len(value) and all(
                    a is b for a, b in zip(checked, value, strict=True)
                ):
                    return value
                return checked

            return check_list

        def check_map(value: Any) -> Any:
            if type(value) is not dict:
                raise _TypeMismatch("", value, go_type)
            changed = False
            for item in value.values():  # Go names the map field, not the key
                if item is None or inner(item) is not item:
                    changed = True
            if not changed:
                return value
            return {k: inner(v) for k, v in value.items() if v is not None}

        return check_map
    fields = {key: _compile(sub) for key, sub in schema.items()}
    keep_null = frozenset(
        k for k, sub in schema.items() if isinstance(sub, str) and sub in KEEP_NULL
    )

    def check_struct(value: Any) -> Any:
        if type(value) is not dict:
            raise _TypeMismatch("", value, go_type)
        out: dict[str, Any] | None = None
        for key, item in value.items():
            new = item
            if item is None:
                if key in keep_null:
                    if out is not None:
                        out[key] = None
                    continue
                new = _DROP
            else:
                check = fields.get(key)
                if check is not None:
                    try:
                        new = check(item)
                    except _TypeMismatch as exc:
                        raise _with_key(exc, key) from None
            if new is not item and out is None:
                out = {}
                for k, v in value.items():  # copy what came before this key
                    if k == key:
                        break
                    out[k] = v
            if out is not None and new is not _DROP:
                out[key] = new
        return value if out is None else out

    return check_struct


_DROP = object()
_CHECKERS: dict[tuple[str, str], Checker] = {}


def _bad_b64_offset(text: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for i, ch in enumerate(text):
        if ch not in alphabet:
            return i
    return len(text)


def decode(kind: str, group: str, version: str, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as the real decoder would leave it, or the real 400 for a wrong JSON type."""
    check = _CHECKERS.get((group, kind))
    if check is None:
        schema = {
            "apiVersion": S,
            "kind": S,
            "metadata": OBJECT_META,
            **KINDS.get((group, kind), {}),
        }
        check = _CHECKERS[(group, kind)] = _compile(schema)
    try:
        return check(obj)
    except _TypeMismatch as exc:
        top = exc.path.split(".", 1)[0]
        struct = "ObjectMeta" if top == "metadata" else kind
        raise errors.bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: json: cannot '
            f"unmarshal {_json_type(exc.value)} into Go struct field {struct}.{exc.path} "
            f"of type {exc.go_type}"
        ) from None
