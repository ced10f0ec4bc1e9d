"""What a CustomResourceDefinition's version adds beyond its schema: discovery verbs and
storage version hash, the ``scale`` subresource, and ``additionalPrinterColumns``.

Pure functions over CRD and custom resource dicts; the store keeps one
``CustomResourceVersion`` per served (group, version, plural).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import StatusError
from .field_errors import invalid, invalid_status
from .tables import AGE_DESCRIPTION, NAME_DESCRIPTION, Column, human_age

#: the verbs the apiextensions discovery controller lists for every custom resource
CR_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
SCALE_API_VERSION = "autoscaling/v1"


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """The discovery ``storageVersionHash``: 8 bytes of sha256("group/version/Kind")."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


@dataclass(frozen=True)
class CustomResourceVersion:
    """One served version of a CRD, as the request handlers need it."""

    scale: dict[str, Any] | None = None  # specReplicasPath, statusReplicasPath, labelSelectorPath
    columns: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def version_info(version: dict[str, Any]) -> CustomResourceVersion:
    subresources = version.get("subresources") or {}
    scale = subresources.get("scale")
    columns = tuple(c for c in version.get("additionalPrinterColumns") or () if isinstance(c, dict))
    return CustomResourceVersion(scale if isinstance(scale, dict) else None, columns)


# ---------------------------------------------------------------------- JSON paths
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\?\(@\.([\w.-]+)\s*==\s*(['\"])(.*?)\4\)\]|\[\*\]")


def _steps(path: str) -> list[tuple[str, Any]]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if not text.startswith((".", "[")):
        text = "." + text
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise ValueError(f"unsupported JSON path {path!r}")
        if m.group(1) is not None:
            steps.append(("field", m.group(1)))
        elif m.group(2) is not None:
            steps.append(("index", int(m.group(2))))
        elif m.group(3) is not None:
            steps.append(("filter", (m.group(3), m.group(5))))
        else:
            steps.append(("all", None))
        pos = m.end()
    return steps


def json_path_values(obj: Any, path: str) -> list[Any]:
    """The values ``path`` selects (the JSONPath subset printer columns use)."""
    values = [obj]
    for kind, arg in _steps(path):
        nxt: list[Any] = []
        for value in values:
            if kind == "field" and isinstance(value, dict) and arg in value:
                nxt.append(value[arg])
            elif kind == "index" and isinstance(value, list) and -len(value) <= arg < len(value):
                nxt.append(value[arg])
            elif kind == "all" and isinstance(value, list):
                nxt.extend(value)
            elif kind == "filter" and isinstance(value, list):
                key, wanted = arg
                nxt.extend(
                    v for v in value if isinstance(v, dict) and str(v.get(key)) == wanted
                )
        values = nxt
    return values


def _set_path(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with the dotted ``path`` set (missing maps created)."""
    names = [arg for kind, arg in _steps(path) if kind == "field"]
    out = dict(obj)
    node = out
    for name in names[:-1]:
        child = node.get(name)
        child = dict(child) if isinstance(child, dict) else {}
        node[name] = child
        node = child
    node[names[-1]] = value
    return out


# ---------------------------------------------------------------------- scale
def scale_of(cr: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
    """The ``autoscaling/v1`` Scale the ``/scale`` subresource shows for ``cr``."""
    meta = cr.get("metadata") or {}
    spec_values = json_path_values(cr, scale.get("specReplicasPath", ".spec.replicas"))
    status_values = json_path_values(cr, scale.get("statusReplicasPath", ".status.replicas"))
    status: dict[str, Any] = {
        "replicas": status_values[0] if status_values and isinstance(status_values[0], int) else 0
    }
    selector_path = scale.get("labelSelectorPath")
    if selector_path:
        selected = json_path_values(cr, selector_path)
        if selected and isinstance(selected[0], str) and selected[0]:
            status["selector"] = selected[0]
    scale_meta = {
        k: meta[k]
        for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if k in meta
    }
    spec: dict[str, Any] = {}
    if spec_values and isinstance(spec_values[0], int):
        spec["replicas"] = spec_values[0]
    return {
        "kind": "Scale",
        "apiVersion": SCALE_API_VERSION,
        "metadata": scale_meta,
        "spec": spec,
        "status": status,
    }


def scaled(cr: dict[str, Any], scale: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``cr`` with the replicas of a written Scale ``body`` (422 when they are invalid)."""
    raw_spec = body.get("spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    replicas = spec.get("replicas", 0)
    name = (cr.get("metadata") or {}).get("name", "")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise StatusError(
            invalid_status(
                "Scale",
                name,
                [invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
                "autoscaling",
            )
        )
    return _set_path(cr, scale.get("specReplicasPath", ".spec.replicas"), replicas)


# ---------------------------------------------------------------------- printing
def printer(
    columns: tuple[dict[str, Any], ...],
) -> tuple[list[Column], Any]:
    """Column definitions and a row function for a CRD's ``additionalPrinterColumns``.

    Without any, a custom resource prints NAME and AGE; with some, NAME then exactly the
    declared ones (a CRD that wants AGE declares it). A missing value is a null cell; a
    ``date`` column prints as an age.
    """
    if not columns:
        columns = (
            {
                "name": "Age",
                "type": "date",
                "jsonPath": ".metadata.creationTimestamp",
                "description": AGE_DESCRIPTION,
            },
        )
    defs: list[Column] = [("Name", "string", 0, NAME_DESCRIPTION)]
    for c in columns:
        defs.append(
            (
                str(c.get("name", "")),
                str(c.get("type", "string")),
                int(c.get("priority", 0) or 0),
                str(c.get("description", "")),
            )
        )

    def row(obj: dict[str, Any]) -> list[Any]:
        cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
        for c in columns:
            try:
                values = json_path_values(obj, str(c.get("jsonPath", "")))
            except ValueError:
                values = []
            if not values:
                cells.append(None)
                continue
            value = values[0]
            if c.get("type") == "date" and isinstance(value, str):
                cells.append(human_age(value))
            elif c.get("type") in ("integer", "number", "boolean") or isinstance(value, str):
                cells.append(value)
            else:
                cells.append(json.dumps(value, separators=(",", ":")))
        return cells

    return defs, row
