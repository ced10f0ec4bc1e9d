"""A pod that meets the Kubernetes "restricted" Pod Security Standard, shared by the checks' tests.

Each test starts from this compliant pod and breaks one field, so a failure names the
one rule that should have caught it.
"""

from __future__ import annotations

import copy
from typing import Any


def compliant() -> dict[str, Any]:
    """A fresh restricted-compliant pod: two containers and an init container, a PVC volume."""
    context = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "metadata": {"name": "p", "annotations": {}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {"name": "notebook", "image": "x", "securityContext": copy.deepcopy(context)},
                {"name": "side", "image": "x", "securityContext": copy.deepcopy(context)},
            ],
            "initContainers": [
                {"name": "init", "image": "x", "securityContext": copy.deepcopy(context)}
            ],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "c"}}],
        },
    }
