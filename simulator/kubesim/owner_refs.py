"""Which owner references the garbage collector honours, and what it reports about the rest.

An ownerReference has no namespace field: the real collector looks a namespaced owner up
in the *dependent's* namespace, so

- a namespaced dependent may name a cluster-scoped owner, or a namespaced owner in its own
  namespace; an owner that lives in another namespace is treated as absent, and the
  dependent is collected once none of its owners is verified present;
- a cluster-scoped dependent may name cluster-scoped owners only; a reference to a
  namespaced kind cannot be resolved, and such a dependent is never collected;
- either mistake is reported with a Warning Event ``OwnerRefInvalidNamespace`` about the
  dependent (the first when the owner is seen in the other namespace, the second always).

The simulator keeps its objects by uid across namespaces, so without these rules it would
honour references a cluster ignores, and a spawner that set one would pass its tests and
lose its objects in production. Pure functions: the store's collector calls them.
"""

from __future__ import annotations

import enum
import itertools
import time
from dataclasses import dataclass
from typing import Any

#: The component the real collector's events name (kube-controller-manager's recorder).
COMPONENT = "garbage-collector-controller"
REASON = "OwnerRefInvalidNamespace"
_sequence = itertools.count()


class OwnerState(enum.Enum):
    """How the collector classifies one reference of a dependent."""

    SOLID = "solid"  # the owner exists where the dependent can reference it
    ABSENT = "absent"  # verified absent (never existed, gone, or in another namespace)
    UNRESOLVABLE = "unresolvable"  # cannot be looked up: the dependent is left alone


@dataclass(frozen=True)
class Verdict:
    state: OwnerState
    #: The reference breaks the namespace rule (an ``OwnerRefInvalidNamespace`` event).
    invalid_namespace: bool = False


def classify(
    dependent_namespace: str, owner_kind_namespaced: bool | None, live_owner_namespace: str | None
) -> Verdict:
    """One reference of a dependent in ``dependent_namespace`` ("" when cluster-scoped).

    ``owner_kind_namespaced``: whether the referenced kind is namespaced, None when the
    server does not serve it. ``live_owner_namespace``: the namespace of the live object
    with the referenced uid ("" for a cluster-scoped one), None when there is none.
    """
    if owner_kind_namespaced is None:
        return Verdict(OwnerState.UNRESOLVABLE)
    if not dependent_namespace and owner_kind_namespaced:
        return Verdict(OwnerState.UNRESOLVABLE, invalid_namespace=True)
    if live_owner_namespace is None:
        return Verdict(OwnerState.ABSENT)
    if live_owner_namespace and live_owner_namespace != dependent_namespace:
        return Verdict(OwnerState.ABSENT, invalid_namespace=True)
    return Verdict(OwnerState.SOLID)


def invalid_namespace_event(
    dependent: dict[str, Any], api_version: str, kind: str, ref: dict[str, Any], now: str
) -> dict[str, Any]:
    """The collector's Warning Event about ``dependent`` and its reference ``ref``.

    Worded as the real collector words it (the owner shown with the dependent's namespace,
    where it was looked for). A cluster-scoped dependent's event goes to ``default``, as
    the event recorder files events about cluster-scoped objects.
    """
    meta = dependent["metadata"]
    namespace = meta.get("namespace") or ""
    involved: dict[str, Any] = {"kind": kind, "name": meta["name"], "uid": meta.get("uid", ""),
                                "apiVersion": api_version}
    if namespace:
        involved["namespace"] = namespace
    owner = (f"[{ref.get('apiVersion', '')}/{ref.get('kind', '')}, namespace: {namespace}, "
             f"name: {ref.get('name', '')}, uid: {ref.get('uid', '')}]")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            # client-go's event name: <object>.<hex nanoseconds>
            "name": f"{meta['name']}.{time.time_ns() + next(_sequence):x}",
            "namespace": namespace or "default",
        },
        "involvedObject": involved,
        "reason": REASON,
        "message": f'ownerRef {owner} does not exist in namespace "{namespace}"',
        "source": {"component": COMPONENT},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Warning",
        "reportingComponent": COMPONENT,
        "reportingInstance": "",
    }
