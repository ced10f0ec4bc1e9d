"""Whether a pod fits a node, and the scheduler's explanation when it fits nowhere.

Pure functions over plain dicts, so they can be checked with plain asserts. The filters
run in the real scheduler's order (NodeUnschedulable, TaintToleration, NodeAffinity,
NodeResourcesFit) and a node is rejected by the first one that fails, which is what
decides the counts in ``0/3 nodes are available: ...``. The reason strings and the
message grammar are the real scheduler's, because spawners and users read them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kubesim.quantity_grammar import QuantityError, parse_quantity

from .nodes import SimNode, Taint

REASON_NODE_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"
NO_NODES_MESSAGE = "no nodes available to schedule pods"
UNBOUND_PVC_MESSAGE = "pod has unbound immediate PersistentVolumeClaims"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod."
SCHEDULING_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


class NodeRejection:
    """Why one node was rejected: its reasons, and whether preemption could ever help."""

    __slots__ = ("reasons", "resolvable")

    def __init__(self, reasons: list[str], resolvable: bool) -> None:
        self.reasons = reasons
        self.resolvable = resolvable

    def __repr__(self) -> str:
        return f"NodeRejection({self.reasons!r}, resolvable={self.resolvable})"


def untolerated_taint_reason(taint: Taint) -> str:
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


def insufficient_reason(resource: str) -> str:
    return f"Insufficient {resource}"


# ---------------------------------------------------------------- resource requests


def _quantity(value: Any, where: str) -> Decimal:
    try:
        return parse_quantity(value)
    except QuantityError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def container_requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """A container's effective requests: a resource with only a limit requests its limit.

    (The API server defaults requests from limits; doing it here too keeps the scheduler
    right whether or not the store applied that default.)
    """
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = {**limits, **(resources.get("requests") or {})}
    name = container.get("name", "?")
    return {k: _quantity(v, f"container {name!r} resources[{k}]") for k, v in requests.items()}


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """What the pod needs from a node: max(sum of containers, largest init container) + overhead."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for k, v in container_requests(container).items():
            total[k] = total.get(k, Decimal(0)) + v
    for container in spec.get("initContainers") or []:
        for k, v in container_requests(container).items():
            total[k] = max(total.get(k, Decimal(0)), v)
    for k, v in (spec.get("overhead") or {}).items():
        total[k] = total.get(k, Decimal(0)) + _quantity(v, f"overhead[{k}]")
    return total


# ---------------------------------------------------------------- filters


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Taint) -> bool:
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.effect:
            continue
        operator = tol.get("operator") or "Equal"
        key = tol.get("key") or ""
        if operator == "Exists":
            if not key or key == taint.key:
                return True
        elif key == taint.key and (tol.get("value") or "") == taint.value:
            return True
    return False


def first_untolerated_taint(pod: Mapping[str, Any], node: SimNode) -> Taint | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in node.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint
    return None


def _expression_matches(expr: Mapping[str, Any], values_by_key: Mapping[str, str]) -> bool:
    key = expr.get("key", "")
    operator = expr.get("operator")
    values = expr.get("values") or []
    present = key in values_by_key
    actual = values_by_key.get(key)
    if operator == "In":
        return present and actual in values
    if operator == "NotIn":
        return not present or actual not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            have, want = int(actual or ""), int(values[0])
        except ValueError:
            return False
        return have > want if operator == "Gt" else have < want
    raise ValueError(
        f"node selector operator {operator!r} is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt"
    )


def node_selector_term_matches(term: Mapping[str, Any], node: SimNode) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects no node (the real semantics)
    return all(_expression_matches(e, node.labels) for e in expressions) and all(
        _expression_matches(f, {"metadata.name": node.name}) for f in fields
    )


def matches_node_affinity(pod: Mapping[str, Any], node: SimNode) -> bool:
    """nodeSelector (all labels equal) AND required node affinity (any term matches)."""
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node.labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is not None:
        terms = required.get("nodeSelectorTerms") or []
        if not any(node_selector_term_matches(t, node) for t in terms):
            return False
    return True


def check_resources(
    requests: Mapping[str, Decimal], node: SimNode, used: Mapping[str, Decimal], used_pods: int
) -> list[str]:
    """NodeResourcesFit: every shortfall on this node (there can be several)."""
    reasons: list[str] = []
    if used_pods + 1 > node.allocatable.get("pods", Decimal(110)):
        reasons.append(REASON_TOO_MANY_PODS)
    for resource, amount in requests.items():
        if amount == 0 or resource == "pods":
            continue
        free = node.allocatable.get(resource, Decimal(0)) - used.get(resource, Decimal(0))
        if amount > free:
            reasons.append(insufficient_reason(resource))
    return reasons


def filter_node(
    pod: Mapping[str, Any],
    requests: Mapping[str, Decimal],
    node: SimNode,
    used: Mapping[str, Decimal],
    used_pods: int,
) -> NodeRejection | None:
    """None when the pod fits; otherwise the first failing filter's reasons."""
    if node.unschedulable:
        unschedulable_taint = Taint("node.kubernetes.io/unschedulable", "NoSchedule")
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        if not tolerates(tolerations, unschedulable_taint):
            return NodeRejection([REASON_NODE_UNSCHEDULABLE], resolvable=False)
    taint = first_untolerated_taint(pod, node)
    if taint is not None:
        return NodeRejection([untolerated_taint_reason(taint)], resolvable=False)
    if not matches_node_affinity(pod, node):
        return NodeRejection([REASON_AFFINITY], resolvable=False)
    reasons = check_resources(requests, node, used, used_pods)
    if reasons:
        return NodeRejection(reasons, resolvable=True)
    return None


# ---------------------------------------------------------------- messages


def _histogram(reasons: Iterable[str]) -> str:
    counts = Counter(reasons)
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def fit_error_message(
    num_nodes: int, rejections: Mapping[str, NodeRejection], pre_filter_message: str = ""
) -> str:
    """The FailedScheduling message, e.g.
    ``0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available:
    3 No preemption victims found for incoming pod.``
    """
    if num_nodes == 0:
        return NO_NODES_MESSAGE
    message = f"0/{num_nodes} nodes are available:"
    if pre_filter_message:
        message += f" {pre_filter_message}."
        preemption = [PREEMPTION_NOT_HELPFUL] * num_nodes
    else:
        message += f" {_histogram(r for rej in rejections.values() for r in rej.reasons)}."
        preemption = [
            PREEMPTION_NO_VICTIMS if rej.resolvable else PREEMPTION_NOT_HELPFUL
            for rej in rejections.values()
        ]
    return f"{message} preemption: 0/{num_nodes} nodes are available: {_finish(_histogram(preemption))}"


def _finish(text: str) -> str:
    return text if text.endswith(".") else text + "."
