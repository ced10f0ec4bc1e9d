"""What kube-controller-manager adds to namespaces: the root CA ConfigMap every
namespace gets, and the status conditions of a namespace being deleted.

Pure functions; the store calls them when a namespace is created or is terminating.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROOT_CA_NAME = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
#: a stand-in bundle (the simulator signs nothing with it); callers may give the real one
PLACEHOLDER_CA = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrdWJlc2lt\n"
    "LXNpbXVsYXRlZC1yb290LWNhMB4XDTI2MDEwMTAwMDAwMFoXDTM2MDEwMTAwMDAw\n"
    "MFowIzEhMB8GA1UEAwwYa3ViZXNpbS1zaW11bGF0ZWQtcm9vdC1jYTBZMBMGByqG\n"
    "-----END CERTIFICATE-----\n"
)


def root_ca_configmap(namespace: str, pem: str = PLACEHOLDER_CA) -> dict[str, Any]:
    """The ConfigMap the root-ca-cert-publisher controller keeps in every namespace (what
    every pod's projected token volume mounts as ``ca.crt``)."""
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": ROOT_CA_NAME,
            "namespace": namespace,
            "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
        },
        "data": {"ca.crt": pem},
    }


def _condition(kind: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def termination_conditions(
    remaining: Mapping[str, int], finalizers: Mapping[str, int], now: str
) -> list[dict[str, Any]]:
    """The five conditions the namespace controller reports while it empties a namespace.

    ``remaining`` counts the objects still there per resource (``pods``,
    ``widgets.example.com``); ``finalizers`` counts the objects holding each finalizer.
    """
    conditions = [
        _condition(
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered",
            now,
        ),
        _condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
            now,
        ),
        _condition(
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
            now,
        ),
    ]
    if remaining:
        listed = ", ".join(f"{r} has {n} resource instances" for r, n in sorted(remaining.items()))
        conditions.append(
            _condition(
                "NamespaceContentRemaining",
                "True",
                "SomeResourcesRemain",
                f"Some resources are remaining: {listed}",
                now,
            )
        )
    else:
        conditions.append(
            _condition(
                "NamespaceContentRemaining",
                "False",
                "ContentRemoved",
                "All content successfully removed",
                now,
            )
        )
    if finalizers:
        listed = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
        conditions.append(
            _condition(
                "NamespaceFinalizersRemaining",
                "True",
                "SomeFinalizersRemain",
                f"Some content in the namespace has finalizers remaining: {listed}",
                now,
            )
        )
    else:
        conditions.append(
            _condition(
                "NamespaceFinalizersRemaining",
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
                now,
            )
        )
    return conditions
