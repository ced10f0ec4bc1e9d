"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for.

kubectl does not format pods itself; it asks the server for a Table (``Accept:
application/json;as=Table;v=v1;g=meta.k8s.io``) and prints the cells. Without this,
``kubectl get pods`` against the simulator would show only NAME and AGE, and an operator
trying the demo could not see a pod go from Pending to Running. Columns and cell values
follow the real server's printers for the kinds a spawner touches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

Column = tuple[str, str, int, str]  # name, type, priority, description
Row = list[Any]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _parse_time(timestamp: str | None) -> datetime | None:
    """RFC 3339 with or without fractional seconds (``eventTime`` is a MicroTime)."""
    if not timestamp:
        return None
    try:  # fromisoformat: the C parser (strptime made a 20,000-pod table take a second)
        when = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return None
    when = when.replace(microsecond=0)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def human_age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's short duration ("5s", "3m2s", "4h", "12d", "2y30d").

    Up to one second in the future still reads "0s": the real printer tolerates that much
    clock skew between the writer of a timestamp and the server printing it.
    """
    if not timestamp:
        return "<unknown>"
    then = _parse_time(timestamp)
    if then is None:
        return "<invalid>"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    days = hours // 24
    if days < 730:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _age(obj: dict[str, Any]) -> str:
    return human_age(_meta(obj).get("creationTimestamp"))


def _restartable(container: dict[str, Any] | None) -> bool:
    """A sidecar: an init container with ``restartPolicy: Always`` that keeps running."""
    return bool(container) and (container or {}).get("restartPolicy") == "Always"


def _terminated_reason(term: dict[str, Any], prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _later(current: str | None, candidate: str | None) -> str | None:
    if not candidate:
        return current
    if current is None:
        return candidate
    a, b = _parse_time(current), _parse_time(candidate)
    return candidate if a is None or (b is not None and b > a) else current


def pod_summary(pod: dict[str, Any]) -> tuple[int, int, str, int, str | None]:
    """READY (ready, total), STATUS, RESTARTS and the last restart time, as kubectl computes them.

    The STATUS column is what an operator reads first, so it follows the real printer
    rule for rule: the pod's reason or phase, then the first unfinished init container
    (``Init:1/2``, ``Init:CrashLoopBackOff``, ``Init:Error``), then the last container
    with something to say (``ContainerCreating``, ``ImagePullBackOff``,
    ``CrashLoopBackOff``, ``OOMKilled``, ``Completed``, ``ExitCode:3``), and
    ``Terminating`` for a pod being deleted that has not finished.
    """
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase or "Unknown"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(
        1 for c in init_specs.values() if _restartable(c)
    )
    ready = 0
    restarts = sidecar_restarts = 0
    last_restart: str | None = None
    last_sidecar_restart: str | None = None
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        last_restart = _later(last_restart, finished)
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        initializing = True
        if term:
            reason = _terminated_reason(term, "Init:")
        elif wait and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        break
    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            last_restart = _later(last_restart, finished)
            state = cs.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"
    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def pod_status_reason(pod: dict[str, Any]) -> str:
    """The STATUS column of ``kubectl get pods``."""
    return pod_summary(pod)[2]


def _pod_row(pod: dict[str, Any]) -> Row:
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    ready, total, reason, restarts, last_restart = pod_summary(pod)
    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell = f"{restarts} ({human_age(last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    true_gates = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    ips = status.get("podIPs") or []
    # the kubelet writes both; podIPs is what the real printer reads
    pod_ip = (ips[0].get("ip") if ips else status.get("podIP")) or "<none>"
    return [
        _meta(pod).get("name", ""),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod),
        pod_ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"{true_gates}/{len(gates)}" if gates else "<none>",
    ]


def _pod_row_conditions(pod: dict[str, Any]) -> list[dict[str, str]] | None:
    """A finished pod's row says so (``kubectl get`` can then tell it apart)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


def _service_row(svc: dict[str, Any]) -> Row:
    spec = svc.get("spec") or {}
    ports = (
        ",".join(
            f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
            for p in spec.get("ports") or []
        )
        or "<none>"
    )
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        ",".join(spec.get("externalIPs") or [])
        or ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    )
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
    return [
        _meta(svc).get("name", ""),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        external,
        ports,
        _age(svc),
        selector,
    ]


_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _pvc_row(pvc: dict[str, Any]) -> Row:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    phase = "Terminating" if _meta(pvc).get("deletionTimestamp") else status.get("phase", "")
    modes = ",".join(_ACCESS_MODES.get(m, m) for m in status.get("accessModes") or [])
    return [
        _meta(pvc).get("name", ""),
        phase,
        spec.get("volumeName", ""),
        (status.get("capacity") or {}).get("storage", ""),
        modes,
        spec.get("storageClassName") or "<unset>",
        "<unset>",
        _age(pvc),
        spec.get("volumeMode", "Filesystem"),
    ]


def _namespace_row(ns: dict[str, Any]) -> Row:
    return [_meta(ns).get("name", ""), (ns.get("status") or {}).get("phase", ""), _age(ns)]


def _node_row(node: dict[str, Any]) -> Row:
    status = node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        state = "Unknown"
    else:
        state = "Ready" if ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = _meta(node).get("labels") or {}
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/") and key.split("/", 1)[1]:
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    addresses = status.get("addresses") or []

    def address(kind: str) -> str:
        return next((a.get("address") for a in addresses if a.get("type") == kind), "<none>")

    info = status.get("nodeInfo") or {}
    return [
        _meta(node).get("name", ""),
        state,
        ",".join(sorted(roles)) or "<none>",
        _age(node),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _event_source(ev: dict[str, Any]) -> str:
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return ", ".join(part for part in (component, instance) if part) if component or instance else ""


def _event_row(ev: dict[str, Any]) -> Row:
    """Cells in the order of the server's wide event printer (kubectl drops priority-1 ones)."""
    inv = ev.get("involvedObject") or {}
    first = ev.get("firstTimestamp") or ev.get("eventTime")
    first_seen = human_age(first)
    last_seen = human_age(ev["lastTimestamp"]) if ev.get("lastTimestamp") else first_seen
    count = ev.get("count") or 1
    series = ev.get("series")
    if series:
        last_seen = human_age(series.get("lastObservedTime"))
        count = series.get("count") or count
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    return [
        last_seen,
        ev.get("type", ""),
        ev.get("reason", ""),
        target,
        inv.get("fieldPath", ""),
        _event_source(ev),
        str(ev.get("message", "")).strip(),
        first_seen,
        int(count),
        _meta(ev).get("name", ""),
    ]


def _secret_row(secret: dict[str, Any]) -> Row:
    return [
        _meta(secret).get("name", ""),
        secret.get("type") or "Opaque",
        len(secret.get("data") or {}),
        _age(secret),
    ]


def _configmap_row(cm: dict[str, Any]) -> Row:
    return [
        _meta(cm).get("name", ""),
        len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
        _age(cm),
    ]


def _serviceaccount_row(sa: dict[str, Any]) -> Row:
    return [_meta(sa).get("name", ""), len(sa.get("secrets") or []), _age(sa)]


def _lease_row(lease: dict[str, Any]) -> Row:
    holder = (lease.get("spec") or {}).get("holderIdentity") or ""
    return [_meta(lease).get("name", ""), holder, _age(lease)]


def _plain_row(obj: dict[str, Any]) -> Row:
    return [_meta(obj).get("name", ""), _age(obj)]


def _cols(*spec: tuple[str, int] | tuple[str, int, str]) -> list[Column]:
    described = {"Name": NAME_DESCRIPTION, "Age": AGE_DESCRIPTION}
    columns: list[Column] = []
    for entry in spec:
        name, priority = entry[0], entry[1]
        kind = entry[2] if len(entry) > 2 else "string"  # type: ignore[misc]
        columns.append((name, kind, priority, described.get(name, "")))
    return columns


PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[[dict[str, Any]], Row]]] = {
    ("", "pods"): (
        _cols(
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ),
        _pod_row,
    ),
    ("", "services"): (
        _cols(
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
            ("Selector", 1),
        ),
        _service_row,
    ),
    ("", "persistentvolumeclaims"): (
        _cols(
            ("Name", 0),
            ("Status", 0),
            ("Volume", 0),
            ("Capacity", 0),
            ("Access Modes", 0),
            ("StorageClass", 0),
            ("VolumeAttributesClass", 0),
            ("Age", 0),
            ("VolumeMode", 1),
        ),
        _pvc_row,
    ),
    ("", "namespaces"): (_cols(("Name", 0), ("Status", 0), ("Age", 0)), _namespace_row),
    ("", "nodes"): (
        _cols(
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("External-IP", 1),
            ("OS-Image", 1),
            ("Kernel-Version", 1),
            ("Container-Runtime", 1),
        ),
        _node_row,
    ),
    ("", "events"): (
        _cols(
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1),
        ),
        _event_row,
    ),
    ("", "secrets"): (
        _cols(("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)),
        _secret_row,
    ),
    ("", "configmaps"): (_cols(("Name", 0), ("Data", 0), ("Age", 0)), _configmap_row),
    ("", "serviceaccounts"): (
        _cols(("Name", 0), ("Secrets", 0), ("Age", 0)),
        _serviceaccount_row,
    ),
    ("coordination.k8s.io", "leases"): (
        _cols(("Name", 0), ("Holder", 0), ("Age", 0)),
        _lease_row,
    ),
}
ROW_CONDITIONS: dict[tuple[str, str], Callable[[dict[str, Any]], list[dict[str, str]] | None]] = {
    ("", "pods"): _pod_row_conditions,
}
DEFAULT_PRINTER = (_cols(("Name", 0), ("Age", 0)), _plain_row)


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def build_table(
    rt: ResourceType,
    items: list[dict[str, Any]],
    *,
    list_meta: dict[str, Any] | None = None,
    include_object: str = "Metadata",
    with_columns: bool = True,
    custom_printer: tuple[list[Column], Callable[[dict[str, Any]], Row]] | None = None,
) -> dict[str, Any]:
    """A ``Table`` of ``items``; ``with_columns=False`` for watch events after the first.
    ``custom_printer`` (a custom resource's printer columns) replaces the kind's own."""
    columns, printer = custom_printer or PRINTERS.get(rt.key, DEFAULT_PRINTER)
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": printer(obj)}
        conditions = ROW_CONDITIONS[rt.key](obj) if rt.key in ROW_CONDITIONS else None
        if conditions:
            row["conditions"] = conditions
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": [
            {
                "name": n,
                "type": t,
                "format": "name" if n == "Name" else "",
                "description": d,
                "priority": p,
            }
            for n, t, p, d in columns
        ]
        if with_columns
        else [],
        "rows": rows,
    }
    return table
