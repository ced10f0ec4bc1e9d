"""Convert a Jupyternetes ``JupyterNotebookTemplate`` (``kadense.io/v1``) into a NotebookTemplate.

    python -m async_kubespawner.operator.convert jupyternetes template.yaml [-o out.yaml]

Jupyternetes templates list ``pods``, ``pvcs`` and ``otherResources``, each with a
``name`` (its key), labels, annotations and a spec, and use placeholders such as
``{jupyterhub.user.name}`` and ``{jupyternetes.pvcs.<name>}``. The conversion keeps the
structure and maps every placeholder to this operator's:

=================================  =================================================
Jupyternetes                        NotebookTemplate
=================================  =================================================
``{jupyterhub.user.name}``          ``{user.name}``
``{jupyterhub.user.id}``            ``{user.id}``
``{jupyternetes.instance.name}``    ``{server.object}``
``{jupyternetes.instance.namespace}``, ``{jupyterhub.namespace}``  ``{server.namespace}``
``{jupyternetes.pvcs.<name>}``      ``{pvcs.<id>.name}``
``{jupyterhub.api_token}``          an env var ``valueFrom`` the server's Secret
``{jupyterhub.oauth_client_id}``    likewise (``JUPYTERHUB_CLIENT_ID``)
=================================  =================================================

Secrets never go into a template: an env var whose value is exactly the token (or the
OAuth client id) becomes a ``secretKeyRef`` to the Secret the hub writes for each server
(``{secret.name}``); the token anywhere else is refused. Each object is named
``{server.object}-<name>`` (unique per server). Jupyternetes' per-item ``condition`` is a
free-text expression it never evaluated: a template that sets one is refused rather than
converted into something that behaves differently.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from .models import API_VERSION, CHILD_ID
from .render import placeholders, substitute_tree

JUPYTERNETES_API_VERSION = "kadense.io/v1"
JUPYTERNETES_KIND = "JupyterNotebookTemplate"

_SIMPLE = {
    "jupyterhub.user.name": "user.name",
    "jupyterhub.user.id": "user.id",
    "jupyternetes.instance.name": "server.object",
    "jupyternetes.instance.namespace": "server.namespace",
    "jupyterhub.namespace": "server.namespace",
}
#: Placeholders whose values are secret: they become references to the server's Secret.
_FROM_SECRET = {
    "jupyterhub.api_token": "JUPYTERHUB_API_TOKEN",
    "jupyterhub.oauth_client_id": "JUPYTERHUB_CLIENT_ID",
}


class ConversionError(ValueError):
    """The input cannot be converted faithfully; the message says where and why."""


def _child_id(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ConversionError(f"{where}.name: required")
    child = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    if not re.match(CHILD_ID, child or ""):
        raise ConversionError(f"{where}.name: {name!r} cannot be made a child id")
    return child


def _secret_env(value: Any, where: str) -> Any:
    """Env vars holding a secret placeholder become secretKeyRefs (recursively over a spec)."""
    if isinstance(value, list):
        return [_secret_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out = {k: _secret_env(v, f"{where}.{k}") for k, v in value.items()}
    if "name" in out and isinstance(out.get("value"), str):
        text = out["value"]
        for placeholder, key in _FROM_SECRET.items():
            token = "{" + placeholder + "}"
            if text == token:
                out.pop("value")
                out["valueFrom"] = {"secretKeyRef": {"name": "{secret.name}", "key": key}}
    return out


def convert_jupyternetes(source: dict[str, Any]) -> dict[str, Any]:
    """The NotebookTemplate equivalent to a JupyterNotebookTemplate object."""
    if source.get("apiVersion") != JUPYTERNETES_API_VERSION or source.get("kind") != (
        JUPYTERNETES_KIND
    ):
        raise ConversionError(
            f"expected {JUPYTERNETES_API_VERSION} {JUPYTERNETES_KIND}, got "
            f"{source.get('apiVersion')} {source.get('kind')}"
        )
    spec = source.get("spec") or {}
    ids: dict[tuple[str, str], str] = {}
    for group in ("pods", "pvcs", "otherResources"):
        for index, item in enumerate(spec.get(group) or ()):
            where = f"spec.{group}[{index}]"
            if item.get("condition"):
                raise ConversionError(
                    f"{where}.condition: {item['condition']!r} is a free-text expression; "
                    "rewrite it as {variable, equals|notEquals|in} after converting"
                )
            ids[(group, item.get("name") or "")] = _child_id(item.get("name"), where)

    def mapped(name: str) -> str:
        if name == "secret.name":  # put there by the secret-env rewrite above
            return "{secret.name}"
        if name in _SIMPLE:
            return "{" + _SIMPLE[name] + "}"
        if name.startswith("jupyternetes.pvcs."):
            key = ("pvcs", name.removeprefix("jupyternetes.pvcs."))
            if key not in ids:
                raise ConversionError(f"{{{name}}} refers to no PVC of the template")
            return "{pvcs." + ids[key] + ".name}"
        if name in _FROM_SECRET:
            raise ConversionError(
                f"{{{name}}} is secret and may only be the whole value of an env var "
                "(it becomes a reference to the server's Secret)"
            )
        raise ConversionError(f"{{{name}}} is not a Jupyternetes variable this converter knows")

    def convert_item(group: str, index: int, item: dict[str, Any]) -> dict[str, Any]:
        where = f"spec.{group}[{index}]"
        child_id = ids[(group, item.get("name") or "")]
        body = _secret_env(item.get("spec") or {}, f"{where}.spec")
        converted: dict[str, Any] = {
            "id": child_id,
            "name": "{server.object}-" + child_id,
        }
        if group == "otherResources":
            for field in ("apiVersion", "kind"):
                value = item.get(field)
                if not isinstance(value, str) or not value or placeholders(value):
                    raise ConversionError(f"{where}.{field}: a fixed value is required")
                converted[field] = value
        for field in ("labels", "annotations"):
            if item.get(field):
                converted[field] = substitute_tree(dict(item[field]), mapped)
        converted["spec"] = substitute_tree(body, mapped)
        return converted

    out_spec: dict[str, Any] = {}
    for group in ("pvcs", "otherResources", "pods"):
        items = spec.get(group) or []
        if items:
            out_spec[group] = [convert_item(group, i, item) for i, item in enumerate(items)]
    meta = source.get("metadata") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": "NotebookTemplate",
        "metadata": {"name": meta.get("name") or "converted"},
        "spec": out_spec,
    }


def main(argv: list[str] | None = None) -> int:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    parser = argparse.ArgumentParser(
        prog="python -m async_kubespawner.operator.convert",
        description="Convert another system's template into a NotebookTemplate.",
    )
    parser.add_argument("format", choices=["jupyternetes"])
    parser.add_argument("input", help="YAML or JSON file ('-' for standard input)")
    parser.add_argument("-o", "--output", default="-", help="file to write ('-': stdout)")
    parser.add_argument("--name", default=None, help="name of the NotebookTemplate")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text()
    try:
        converted = convert_jupyternetes(yaml.safe_load(text))
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.name:
        converted["metadata"]["name"] = args.name
    rendered = yaml.safe_dump(converted, sort_keys=False, width=100)
    if args.output == "-":
        sys.stdout.write(rendered)
    else:
        Path(args.output).write_text(rendered)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
