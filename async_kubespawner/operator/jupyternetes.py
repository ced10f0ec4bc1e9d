"""Convert a Jupyternetes ``JupyterNotebookTemplate`` (``kadense.io/v1``) into a NotebookTemplate.

    python -m async_kubespawner.operator.jupyternetes template.yaml [-o converted.yaml]

Jupyternetes templates list ``pods``, ``pvcs`` and ``otherResources`` (name, labels,
annotations, spec) with placeholders such as ``{jupyterhub.user.name}`` and
cross-references ``{jupyternetes.pvcs.<name>}``. The structure maps one to one; what
needs care is what each placeholder *means*, because the two systems split the work
between hub and operator differently:

* Identity placeholders become the operator's built-ins (``{jupyterhub.user.name}`` ->
  ``{user.name}``, ``{jupyterhub.user.id}`` -> ``{user.id}`` (the hub passes the id in
  the NotebookServer's identity), ``{jupyternetes.instance.name}`` -> ``{server.object}``, the PVC
  cross-references -> ``{pvcs.<id>.name}``).
* The hub's environment (``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``,
  ``JUPYTERHUB_OAUTH_*`` ...) is written by a Jupyternetes template into the pod spec,
  token included. Here the hub puts that environment in the server's Secret, so those
  variables are removed from the containers and the Secret is passed with ``envFrom``;
  ``{jupyterhub.api_token}`` and ``{jupyterhub.oauth_client_id}`` anywhere else are
  refused: a token never belongs in a template.
* A placeholder that is not one of Jupyternetes' documented variables is refused with
  its name: converting it to text would hide a template error until the first spawn.

Conversion works on the parsed objects (the operator substitutes string values only, so
no value can change the structure) and the result is checked against the
NotebookTemplate schema before it is printed.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

try:
    import yaml
except ModuleNotFoundError as exc:  # a hub does not need PyYAML; only these commands do
    raise SystemExit(
        "this command reads and writes YAML: pip install 'async-kubespawner[migrate]'"
    ) from exc

from .models import API_VERSION, CHILD_ID, GROUP, parse_template_spec

Obj = dict[str, Any]

SOURCE_API_VERSION = "kadense.io/v1"
SOURCE_KIND = "JupyterNotebookTemplate"
#: Annotation on the converted template naming what it was converted from.
ANNOTATION_CONVERTED_FROM = f"{GROUP}/converted-from"

_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")

#: Jupyternetes variables with an exact built-in here.
_BUILTIN_MAP = {
    "jupyterhub.user.name": "{user.name}",
    "jupyterhub.user.id": "{user.id}",
    "jupyternetes.instance.name": "{server.object}",
    "jupyternetes.instance.namespace": "{server.namespace}",
}
#: Variables that only make sense in the hub's environment (which the Secret carries).
_HUB_ONLY = {"jupyterhub.api_token", "jupyterhub.oauth_client_id", "jupyterhub.namespace"}
#: Environment variables the hub's Secret provides in operator mode.
_HUB_ENV_PREFIXES = ("JUPYTERHUB_",)
_HUB_ENV_NAMES = {"JPY_API_TOKEN"}


class ConversionRefused(ValueError):
    """The Jupyternetes template cannot be converted exactly; the message says why."""


def _child_id(name: str, where: str) -> str:
    candidate = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not re.match(CHILD_ID, candidate):
        raise ConversionRefused(f"{where}: the name {name!r} cannot be made a child id")
    return candidate


class _Converter:
    def __init__(self, pvc_ids: dict[str, str]) -> None:
        self.pvc_ids = pvc_ids
        self.notes: list[str] = []

    def string(self, text: str, where: str, *, in_metadata: bool = False) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return match.group(0)  # ${...}: shell syntax, left alone by both systems
            if name in _BUILTIN_MAP:
                return _BUILTIN_MAP[name]
            if name.startswith("jupyternetes.pvcs."):
                pvc = name[len("jupyternetes.pvcs."):]
                if pvc not in self.pvc_ids:
                    raise ConversionRefused(
                        f"{where}: {{{name}}} refers to no PVC of the template "
                        f"(its PVCs: {', '.join(sorted(self.pvc_ids)) or 'none'})"
                    )
                return f"{{pvcs.{self.pvc_ids[pvc]}.name}}"
            if name in _HUB_ONLY:
                raise ConversionRefused(
                    f"{where}: {{{name}}} is part of the hub's environment, which in operator "
                    "mode reaches the server through its Secret (envFrom), never a template"
                )
            raise ConversionRefused(
                f"{where}: unknown placeholder {{{name}}} (Jupyternetes defines "
                "jupyterhub.user.name, jupyterhub.user.id, jupyterhub.api_token, "
                "jupyterhub.namespace, jupyterhub.oauth_client_id, jupyternetes.instance.name, "
                "jupyternetes.instance.namespace and jupyternetes.pvcs.<name>)"
            )

        return _PLACEHOLDER.sub(replace, text)

    def tree(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, list):
            return [self.tree(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str) and _PLACEHOLDER.search(key) and not key.startswith("$"):
                    raise ConversionRefused(f"{where}: placeholders in keys ({key!r}) are not "
                                            "supported: keys are never substituted")
            return {k: self.tree(v, f"{where}.{k}") for k, v in value.items()}
        return value

    def metadata_map(self, value: Any, where: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConversionRefused(f"{where} must be a map of strings")
        self.tree({str(k): "" for k in value}, where)  # refuses placeholders in keys
        return {str(k): self.string(str(v), f"{where}.{k}", in_metadata=True)
                for k, v in value.items()}

    def pod_spec(self, spec: Obj, where: str) -> Obj:
        """The pod spec without the hub's environment, which comes from the Secret.

        The hub's variables are removed *before* placeholders are converted: their values
        (the token, the client id) are exactly what must not be in a template.
        """
        spec = copy.deepcopy(spec)
        for group in ("containers", "initContainers"):
            for i, container in enumerate(spec.get(group) or ()):
                env = container.get("env") or []
                kept = [e for e in env if not _is_hub_env(str(e.get("name", "")))]
                if len(kept) != len(env):
                    dropped = [str(e.get("name", "")) for e in env if e not in kept]
                    self.notes.append(
                        f"{where}.spec.{group}[{i}]: {', '.join(dropped)} now come from the "
                        "hub's Secret (envFrom)")
                if kept:
                    container["env"] = kept
                else:
                    container.pop("env", None)
        spec = self.tree(spec, f"{where}.spec")
        for container in spec.get("containers") or ():
            container["envFrom"] = [*(container.get("envFrom") or ()),
                                    {"secretRef": {"name": "{secret.name}"}}]
        return spec


def _is_hub_env(name: str) -> bool:
    return name in _HUB_ENV_NAMES or name.startswith(_HUB_ENV_PREFIXES)


def _items(spec: Obj, key: str) -> list[Obj]:
    items = spec.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConversionRefused(f"spec.{key} must be a list of objects")
    return items


def _notebook_port(pod_spec: Obj) -> int:
    for container in pod_spec.get("containers") or ():
        for port in container.get("ports") or ():
            if isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return 8888


def convert(source: Obj) -> tuple[Obj, list[str]]:
    """The NotebookTemplate for one ``JupyterNotebookTemplate``, and notes for its reader."""
    if source.get("apiVersion") != SOURCE_API_VERSION or source.get("kind") != SOURCE_KIND:
        raise ConversionRefused(
            f"not a {SOURCE_API_VERSION} {SOURCE_KIND} "
            f"(got {source.get('apiVersion')!r} {source.get('kind')!r})"
        )
    meta = source.get("metadata") or {}
    spec = source.get("spec") or {}
    if not isinstance(spec, dict):
        raise ConversionRefused("spec must be an object")
    unknown = set(spec) - {"pods", "pvcs", "otherResources"}
    if unknown:
        raise ConversionRefused(f"spec has fields this command does not know: {sorted(unknown)}")
    pods, pvcs, others = (_items(spec, k) for k in ("pods", "pvcs", "otherResources"))
    if not pods:
        raise ConversionRefused("the template has no pods: the first pod is the notebook server")

    pvc_ids: dict[str, str] = {}
    for i, pvc in enumerate(pvcs):
        name = str(pvc.get("name") or "")
        pvc_ids[name] = _child_id(name, f"spec.pvcs[{i}].name")
    converter = _Converter(pvc_ids)
    seen: set[tuple[str, str]] = set()

    def entry(group: str, i: int, item: Obj, spec_of: Callable[[Obj, str], Obj]) -> Obj:
        where = f"spec.{group}[{i}]"
        name = str(item.get("name") or "")
        child_id = _child_id(name, f"{where}.name")
        if (group, child_id) in seen:
            raise ConversionRefused(f"{where}: a second {group} item named {name!r}")
        seen.add((group, child_id))
        if item.get("condition") is not None:
            converter.notes.append(f"{where}: its condition was dropped (Jupyternetes declares "
                                   "conditions but creates every item)")
        out: Obj = {"id": child_id, "name": f"{{server.object}}-{child_id}"}
        if group == "otherResources":
            api_version, kind = item.get("apiVersion"), item.get("kind")
            if not isinstance(api_version, str) or not isinstance(kind, str):
                raise ConversionRefused(f"{where}: apiVersion and kind are required")
            if "{" in api_version or "{" in kind:
                raise ConversionRefused(f"{where}: placeholders in apiVersion or kind are refused")
            out = {"id": child_id, "apiVersion": api_version, "kind": kind,
                   "name": out["name"]}
        labels = converter.metadata_map(item.get("labels"), f"{where}.labels")
        annotations = converter.metadata_map(item.get("annotations"), f"{where}.annotations")
        if labels:
            out["labels"] = labels
        if annotations:
            out["annotations"] = annotations
        if item.get("spec") is not None:
            out["spec"] = spec_of(item["spec"], where)
        if group == "otherResources" and item.get("data") is not None:
            out["data"] = converter.tree(item["data"], f"{where}.data")
        return out

    def plain(value: Obj, where: str) -> Obj:
        return converter.tree(value, f"{where}.spec")

    converted_spec: Obj = {
        "variables": [],
        "notebookPort": _notebook_port(pods[0].get("spec") or {}),
    }
    if pvcs:
        converted_spec["pvcs"] = [entry("pvcs", i, p, plain) for i, p in enumerate(pvcs)]
    if others:
        converted_spec["otherResources"] = [entry("otherResources", i, o, plain)
                                            for i, o in enumerate(others)]
    converted_spec["pods"] = [entry("pods", i, p, converter.pod_spec) for i, p in enumerate(pods)]
    name = str(meta.get("name") or "converted")
    metadata: Obj = {
        "name": name,
        "annotations": {ANNOTATION_CONVERTED_FROM: f"{SOURCE_API_VERSION} {SOURCE_KIND} "
                        f"{meta.get('namespace', '')}/{name}".replace(" /", " ")},
    }
    if meta.get("namespace"):
        metadata["namespace"] = meta["namespace"]
    template: Obj = {"apiVersion": API_VERSION, "kind": "NotebookTemplate",
                     "metadata": metadata, "spec": converted_spec}
    try:
        parse_template_spec(template)
    except Exception as e:
        raise ConversionRefused(f"the converted template is not valid: {e}") from e
    return template, converter.notes


def convert_file(path: str | Path) -> tuple[list[Obj], list[str]]:
    """Every ``JupyterNotebookTemplate`` in a YAML file, converted (other kinds refused)."""
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except (OSError, yaml.YAMLError) as e:
        raise ConversionRefused(f"{path}: {e}") from e
    if not docs:
        raise ConversionRefused(f"{path}: no documents")
    templates, notes = [], []
    for doc in docs:
        if not isinstance(doc, dict):
            raise ConversionRefused(f"{path}: every document must be an object")
        template, more = convert(doc)
        templates.append(template)
        notes += more
    return templates, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m async_kubespawner.operator.jupyternetes",
        description="Convert a Jupyternetes JupyterNotebookTemplate into a NotebookTemplate.",
    )
    parser.add_argument("file", help="YAML with one or more kadense.io/v1 JupyterNotebookTemplates")
    parser.add_argument("-o", "--output", help="write the YAML here (default: stdout)")
    args = parser.parse_args(argv)
    try:
        templates, notes = convert_file(args.file)
    except ConversionRefused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    header = "".join(f"# {note}\n" for note in notes)
    text = header + yaml.safe_dump_all(templates, sort_keys=False, allow_unicode=True, width=100)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
