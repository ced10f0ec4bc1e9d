"""Turn a NotebookTemplate and a NotebookServer's variables into the server's objects (pure).

Safe by construction:

* Placeholders (``{image}``, ``{user.name}``, ``{pvcs.home.name}``) are replaced inside the
  *string values* of the parsed template, one string at a time and in a single pass: a
  value is inserted verbatim, never parsed again, and never becomes a key, a list item
  or a number. Whatever a hub passes (quotes, newlines, YAML, JSON, braces, another
  placeholder), the structure of every object is the template's; the JSON serializer
  escapes the value when the object is sent.
* Only declared variables may be set, and only to values meeting their constraints
  (``pattern`` matching the whole value, ``enum``, ``maxLength``). Anything else refuses
  the whole server with an error naming the variable, before anything is created.
* ``apiVersion`` and ``kind`` are never substituted (the CRD schema refuses braces in
  them), nor are map keys: a hub cannot change *what* is created, only values the
  administrator left open.
* Object names are substituted, then made DNS-safe: kept when valid, otherwise slugged
  with a hash so that different inputs never give the same name. Label values likewise.
* ``{pvcs.<id>.name}`` (also ``pods.`` and ``otherResources.``) resolve to the final name
  of another child of the same server.

``${...}`` is left as it is (shell and Kubernetes variable syntax), so a container command
such as ``echo ${HOME}`` needs no escaping. Any other ``{name}`` that is neither a declared
variable, a built-in nor a cross-reference is a template error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..objects.slugs import (
    TemplateFields,
    is_valid_dns_label,
    is_valid_label,
    safe_label_value,
    strip_and_hash,
)
from .models import ChildTemplate, Condition, NotebookTemplateSpec, OtherResourceTemplate

_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}")

#: Built-in variables every template may use.
BUILTINS = (
    "user.name",
    "user.id",
    "user.slug",
    "user.label",
    "server.name",
    "server.name.slug",
    "server.slug",
    "server.label",
    "server.namespace",
    "server.object",
    "server.port",
    "secret.name",
)

GROUPS = ("pvcs", "otherResources", "pods")  # creation order
_MAX_NAME = 63


class VariableRefused(ValueError):
    """A NotebookServer's variable is undeclared, missing or fails its constraint."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"variable {variable!r}: {message}")
        self.variable = variable


class TemplateInvalid(ValueError):
    """The template itself cannot be rendered (the administrator's to fix)."""


@dataclass(frozen=True)
class ServerContext:
    """What the built-in variables are made of."""

    user: str
    server: str
    namespace: str
    object_name: str
    secret_name: str = ""
    user_id: str = ""

    def builtins(self, port: int) -> dict[str, str]:
        fields = TemplateFields.for_server(
            username=self.user,
            servername=self.server,
            userid=self.user_id,
            hub_namespace=self.namespace,
        )
        return {
            "user.name": self.user,
            "user.id": self.user_id,
            "user.slug": fields.safe_username,
            "user.label": fields.user_label_value(),
            "server.name": self.server,
            # The in-hub ``{servername}`` (``{safe_servername}``): taken from the very
            # TemplateFields the in-hub spawner expands its settings with, so the two
            # modes cannot disagree on a server name's slug ('' for the default server).
            "server.name.slug": fields.safe_servername,
            "server.slug": fields.safe_user_server,
            "server.label": fields.server_label_value(),
            "server.namespace": self.namespace,
            "server.object": self.object_name,
            "server.port": str(port),
            "secret.name": self.secret_name,
        }


@dataclass
class RenderedChild:
    """One object to create: which template entry it came from and its manifest."""

    group: str  # "pods" | "pvcs" | "otherResources"
    id: str
    api_version: str
    kind: str
    name: str
    manifest: dict[str, Any]


def resolve_variables(
    template: NotebookTemplateSpec, given: Mapping[str, str]
) -> dict[str, str]:
    """The value of every declared variable, or :class:`VariableRefused` naming the culprit."""
    declared = {v.name: v for v in template.variables}
    for name in given:
        if name not in declared:
            raise VariableRefused(name, "is not declared by the template")
    values: dict[str, str] = {}
    for name, decl in declared.items():
        if name in given:
            value = given[name]
            if not isinstance(value, str):
                raise VariableRefused(name, "must be a string")
        elif decl.required:
            raise VariableRefused(name, "is required")
        else:
            value = decl.default or ""
        if len(value) > decl.max_length:
            raise VariableRefused(name, f"is longer than {decl.max_length} characters")
        if decl.enum is not None and value not in decl.enum:
            raise VariableRefused(name, f"must be one of {', '.join(map(repr, decl.enum))}")
        if decl.pattern is not None:
            try:
                matched = re.fullmatch(decl.pattern, value) is not None
            except re.error as e:
                raise TemplateInvalid(f"variable {name!r} has an invalid pattern: {e}") from e
            if not matched:
                why = f"does not match the pattern {decl.pattern!r}"
                if decl.description:
                    why += f" ({decl.description})"
                raise VariableRefused(name, why)
        values[name] = value
    return values


def substitute(text: str, lookup: Callable[[str], str]) -> str:
    """Replace each ``{name}`` in ``text`` by ``lookup(name)``, in one pass (see module doc)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # ${...}
            return match.group(0)
        return lookup(name)

    return _PLACEHOLDER.sub(replace, text)


def placeholders(text: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) is not None]


def substitute_tree(value: Any, lookup: Callable[[str], str]) -> Any:
    """A copy of a parsed JSON tree with placeholders replaced in string values only."""
    if isinstance(value, str):
        return substitute(value, lookup)
    if isinstance(value, list):
        return [substitute_tree(v, lookup) for v in value]
    if isinstance(value, dict):
        return {k: substitute_tree(v, lookup) for k, v in value.items()}
    return value


def dns_name(rendered: str) -> str:
    """A valid DNS label for ``rendered``: itself when valid, else a hashed slug."""
    if is_valid_dns_label(rendered) and len(rendered) <= _MAX_NAME:
        return rendered
    return strip_and_hash(rendered, _MAX_NAME)


def label_value(rendered: str) -> str:
    return rendered if is_valid_label(rendered) else safe_label_value(rendered)


def condition_holds(condition: Condition | None, lookup: Callable[[str], str]) -> bool:
    if condition is None:
        return True
    value = lookup(condition.variable)
    if condition.equals is not None and value != condition.equals:
        return False
    if condition.not_equals is not None and value == condition.not_equals:
        return False
    if condition.in_ is not None and value not in condition.in_:
        return False
    if condition.equals is None and condition.not_equals is None and condition.in_ is None:
        return value != ""
    return True


Entry = ChildTemplate | OtherResourceTemplate


def _entries(template: NotebookTemplateSpec) -> list[tuple[str, Entry]]:
    out: list[tuple[str, Entry]] = []
    seen: set[tuple[str, str]] = set()
    for group, items in (
        ("pvcs", template.pvcs),
        ("otherResources", template.other_resources),
        ("pods", template.pods),
    ):
        for item in items:
            if (group, item.id) in seen:
                raise TemplateInvalid(f"{group} has two entries with id {item.id!r}")
            seen.add((group, item.id))
            out.append((group, item))
    return out


def _kind_of(group: str, entry: Entry) -> tuple[str, str]:
    if group == "pods":
        return "v1", "Pod"
    if group == "pvcs":
        return "v1", "PersistentVolumeClaim"
    assert isinstance(entry, OtherResourceTemplate)
    return entry.api_version, entry.kind


def render(
    template: NotebookTemplateSpec,
    given: Mapping[str, str],
    context: ServerContext,
) -> list[RenderedChild]:
    """Every object of the server, in creation order (PVCs, other resources, pods).

    Raises :class:`VariableRefused` or :class:`TemplateInvalid`; creates nothing itself.
    """
    if not template.pods:
        raise TemplateInvalid("the template has no pods: pods[0] is the notebook server")
    values: dict[str, str] = dict(resolve_variables(template, given))
    values.update(context.builtins(template.notebook_port))
    entries = _entries(template)

    def plain(name: str) -> str:
        if name in values:
            return values[name]
        if name.split(".", 1)[0] in GROUPS:
            raise TemplateInvalid(
                f"{{{name}}} is a cross-reference; it may not be used in names or conditions"
            )
        raise TemplateInvalid(f"{{{name}}} is neither a declared variable nor a built-in")

    included = [(g, e) for g, e in entries if condition_holds(e.condition, plain)]
    names = {(g, e.id): dns_name(substitute(e.name, plain)) for g, e in included}
    omitted = {(g, e.id) for g, e in entries} - names.keys()

    def full(name: str) -> str:
        parts = name.split(".")
        if len(parts) == 3 and parts[0] in GROUPS and parts[2] == "name":
            key = (parts[0], parts[1])
            if key in names:
                return names[key]
            if key in omitted:
                raise TemplateInvalid(
                    f"{{{name}}} refers to a child whose condition is false for this server"
                )
            raise TemplateInvalid(f"{{{name}}} refers to no child of the template")
        return plain(name)

    if ("pods", template.pods[0].id) not in names:
        raise TemplateInvalid("the notebook pod (pods[0]) may not be conditional")
    rendered: list[RenderedChild] = []
    for group, entry in included:
        api_version, kind = _kind_of(group, entry)
        name = names[(group, entry.id)]
        metadata: dict[str, Any] = {"name": name}
        if entry.labels:
            metadata["labels"] = {
                k: label_value(substitute(v, full)) for k, v in entry.labels.items()
            }
        if entry.annotations:
            # An annotation whose placeholders leave it empty (the server name of a default
            # server) is left out, as the in-hub spawner leaves it out.
            annotations = {k: substitute(v, full) for k, v in entry.annotations.items()}
            annotations = {
                k: v for k, v in annotations.items() if v or not placeholders(entry.annotations[k])
            }
            if annotations:
                metadata["annotations"] = annotations
        manifest: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
        if entry.spec is not None:
            manifest["spec"] = substitute_tree(entry.spec, full)
        if isinstance(entry, OtherResourceTemplate) and entry.data is not None:
            manifest["data"] = substitute_tree(entry.data, full)
        rendered.append(RenderedChild(group, entry.id, api_version, kind, name, manifest))
    return rendered
