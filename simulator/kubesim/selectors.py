"""Label and field selectors, parsed and matched the way the real API server does.

The spawner's reflectors list and watch with selectors (``component=singleuser-server``,
``involvedObject.name=<pod>``); a simulator that is laxer or stricter than the real
server would let selector bugs through, so the grammar, the matching rules (``!=`` and
``notin`` match objects that lack the label) and the 400 messages follow the real
parser in k8s.io/apimachinery.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kubesim.names import label_value_errors, qualified_name_errors


class SelectorError(ValueError):
    """A selector the real API server refuses; ``str(error)`` is its 400 message."""


# --------------------------------------------------------------------------- labels

_SPECIAL = "!(),=<>"
# Longest-match table of the lexer's special symbols.
_SYMBOLS = {
    "!": "!",
    "!=": "!=",
    "(": "(",
    ")": ")",
    ",": ",",
    "=": "=",
    "==": "==",
    ">": "gt",
    "<": "lt",
}
_EOS = "EOS"
_IDENT = "IDENT"
_BINARY_OPERATORS = ["in", "notin", "=", "==", "!=", "gt", "lt"]
_ALL_OPERATORS = [*_BINARY_OPERATORS, "exists", "!"]


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector, e.g. ``tier in (a,b)`` or ``!canary``."""

    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        """Apply the clause with the real server's semantics for absent labels."""
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        if self.operator in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            have = int(labels[self.key])
        except ValueError:
            return False
        want = int(next(iter(self.values)))
        return have > want if self.operator == "gt" else have < want


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        """True when every requirement holds for ``labels`` (None counts as no labels)."""
        labels = labels or {}
        # a loop, not all() over a generator: every watch event of a selecting watch
        # is matched, and the generator object cost more than a one-clause match
        for requirement in self.requirements:
            if not requirement.matches(labels):
                return False
        return True

    @property
    def empty(self) -> bool:
        """True for the selector that matches everything (lets callers skip matching)."""
        return not self.requirements


def _lex(text: str) -> list[tuple[str, str]]:
    """Split a label selector into (token type, literal) pairs, ending with EOS."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _SPECIAL:
            j = i + 1
            while j < n and text[i : j + 1] in _SYMBOLS:
                j += 1
            literal = text[i:j]
            if literal not in _SYMBOLS:
                raise SelectorError(f"error expected: keyword found '{literal}'")
            tokens.append((_SYMBOLS[literal], literal))
            i = j
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
            j += 1
        word = text[i:j]
        tokens.append((word if word in ("in", "notin") else _IDENT, word))
        i = j
    tokens.append((_EOS, ""))
    return tokens


class _LabelParser:
    """Recursive-descent parser mirroring the real one, so errors name the same tokens."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _peek(self, values: bool = True) -> tuple[str, str]:
        kind, lit = self.tokens[self.pos]
        if values and kind in ("in", "notin"):
            kind = _IDENT  # in a value position the keywords are plain words
        return kind, lit

    def _take(self, values: bool = True) -> tuple[str, str]:
        token = self._peek(values)
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, lit = self._peek()
            if kind in (_IDENT, "!"):
                try:
                    requirements.append(self._requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from None
                kind, lit = self._take()
                if kind == _EOS:
                    return requirements
                if kind == ",":
                    kind2, lit2 = self._peek()
                    if kind2 not in (_IDENT, "!"):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                    continue
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            if kind == _EOS:
                return requirements
            raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        operator = ""
        kind, lit = self._take()
        if kind == "!":
            operator = "!"
            kind, lit = self._take()
        if kind != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key = lit
        key_errors = qualified_name_errors(key)
        if key_errors:
            raise SelectorError(f"<nil>: Invalid value: {_quote(key)}: {'; '.join(key_errors)}")
        if self._peek()[0] in (_EOS, ","):
            return Requirement(key, operator or "exists", frozenset())
        if operator == "!":
            # "!key" followed by more tokens: the real parser still returns DoesNotExist.
            return Requirement(key, "!", frozenset())
        kind, lit = self._take(values=False)
        if kind not in ("in", "notin", "=", "==", "!=", "gt", "lt"):
            expected = _BINARY_OPERATORS if lit == "" else _ALL_OPERATORS
            raise SelectorError(f"found '{lit}', expected: {', '.join(expected)}")
        operator = "=" if kind == "==" else kind
        values = self._set_values() if operator in ("in", "notin") else self._exact_value()
        return _new_requirement(key, operator, values)

    def _exact_value(self) -> list[str]:
        kind, _ = self._peek()
        if kind in (_EOS, ","):
            return [""]
        kind, lit = self._take()
        if kind == _IDENT:
            return [lit]
        raise SelectorError(f"found '{lit}', expected: identifier")

    def _set_values(self) -> list[str]:
        kind, lit = self._take()
        if kind != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        kind, lit = self._peek()
        if kind == ")":
            self._take()
            return [""]
        if kind not in (_IDENT, ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._identifiers()
        if self._take()[0] != ")":
            raise SelectorError(f"found '{lit}', expected: ')'")
        return values

    def _identifiers(self) -> list[str]:
        values: list[str] = []
        while True:
            kind, lit = self._take()
            if kind == _IDENT:
                values.append(lit)
                kind2, lit2 = self._peek()
                if kind2 == ",":
                    continue
                if kind2 == ")":
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if kind == ",":
                if not values:
                    values.append("")
                kind2, _ = self._peek()
                if kind2 == ")":
                    values.append("")
                    return values
                if kind2 == ",":
                    self._take()
                    values.append("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")


def _quote(value: str) -> str:
    """Quote like Go's %q (close enough for the printable strings selectors contain)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _new_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """Validate the values like the real NewRequirement, collecting every error."""
    errors: list[str] = []
    if operator in ("in", "notin") and not values:
        errors.append(
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        )
    if operator in ("gt", "lt"):
        if len(values) != 1:
            errors.append(
                "values: Invalid value: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        else:
            try:
                int(values[0])
            except ValueError:
                errors.append(
                    f"values[0]: Invalid value: {_quote(values[0])}: "
                    "for 'Gt', 'Lt' operators, the value must be an integer"
                )
    for index, value in enumerate(values):
        value_errors = label_value_errors(value)
        if value_errors and operator not in ("gt", "lt"):
            errors.append(
                f"values[{index}][{key}]: Invalid value: {_quote(value)}: {'; '.join(value_errors)}"
            )
    if errors:
        raise SelectorError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return Requirement(key, operator, frozenset(values))


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` query parameter; SelectorError carries the 400 message."""
    if text is None or not text.strip():
        return LabelSelector()
    return LabelSelector(tuple(_LabelParser(text).parse()))


# --------------------------------------------------------------------------- fields


def _path(*keys: str) -> Callable[[dict], str]:
    """Build an accessor for a nested string field; absent fields read as ''."""

    def read(obj: dict) -> str:
        node: object = obj
        for key in keys:
            if not isinstance(node, dict):
                return ""
            node = node.get(key)
        if node is None:
            return ""
        if isinstance(node, bool):
            return "true" if node else "false"
        return str(node)

    return read


_METADATA_FIELDS: dict[str, Callable[[dict], str]] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

_POD_FIELDS = {
    "spec.nodeName": _path("spec", "nodeName"),
    "spec.restartPolicy": _path("spec", "restartPolicy"),
    "spec.schedulerName": _path("spec", "schedulerName"),
    "spec.serviceAccountName": _path("spec", "serviceAccountName"),
    "spec.hostNetwork": lambda obj: "true" if obj.get("spec", {}).get("hostNetwork") else "false",
    "status.phase": _path("status", "phase"),
    "status.podIP": _path("status", "podIP"),
    "status.nominatedNodeName": _path("status", "nominatedNodeName"),
}

_CORE_EVENT_FIELDS = {
    **{
        f"involvedObject.{k}": _path("involvedObject", k)
        for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    },
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source", "component"),
    "type": _path("type"),
}

# events.k8s.io/v1 stores the same Event under other names (regarding, deprecatedSource,
# reportingController); the real server converts its field labels to the core ones.
_NEW_EVENT_FIELDS = {
    **{
        f"involvedObject.{k}": _path("regarding", k)
        for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    },
    **{
        f"regarding.{k}": _path("regarding", k)
        for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    },
    "reason": _path("reason"),
    "reportingComponent": _path("reportingController"),
    "reportingController": _path("reportingController"),
    "source": _path("deprecatedSource", "component"),
    "deprecatedSource": _path("deprecatedSource", "component"),
    "type": _path("type"),
}


def _pod_ips(obj: dict) -> str:
    ips = (obj.get("status") or {}).get("podIPs") or []
    return ",".join(str(ip.get("ip", "")) for ip in ips if isinstance(ip, dict))


_POD_FIELDS["status.podIPs"] = _pod_ips
_POD_FIELDS["spec.host"] = _POD_FIELDS["spec.nodeName"]  # old clients' name for spec.nodeName

_NAME_ONLY = {"metadata.name": _METADATA_FIELDS["metadata.name"]}

# Kinds with their own field label conversion in the real server (pkg/apis/core/v1):
# exactly these labels, anything else is "field label not supported: <label>".
_FIELDS_BY_KIND: dict[str, dict[str, Callable[[dict], str]]] = {
    "Pod": {**_METADATA_FIELDS, **_POD_FIELDS},
    "Event": {**_METADATA_FIELDS, **_CORE_EVENT_FIELDS},
    "Secret": {**_METADATA_FIELDS, "type": _path("type")},
    "Service": {
        **_METADATA_FIELDS,
        "spec.clusterIP": _path("spec", "clusterIP"),
        "spec.type": _path("spec", "type"),
    },
    "Namespace": {**_NAME_ONLY, "status.phase": _path("status", "phase")},
    "Node": {
        **_NAME_ONLY,
        "spec.unschedulable": lambda obj: (
            "true" if obj.get("spec", {}).get("unschedulable") else "false"
        ),
    },
    "ReplicationController": {**_METADATA_FIELDS, "status.replicas": _path("status", "replicas")},
}


def _fields_for(kind: str, obj: dict | None = None) -> dict[str, Callable[[dict], str]]:
    """The selectable fields of ``kind``; every other kind has metadata.name/namespace only."""
    if (
        kind == "Event"
        and obj is not None
        and str(obj.get("apiVersion", "")).startswith("events.k8s.io")
    ):
        return {**_METADATA_FIELDS, **_NEW_EVENT_FIELDS}
    return _FIELDS_BY_KIND.get(kind, _METADATA_FIELDS)


@dataclass(frozen=True)
class FieldRequirement:
    """``field op value`` with op one of ``=`` or ``!=``."""

    field: str
    operator: str
    value: str


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field requirements bound to one kind's selectable fields."""

    kind: str
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict) -> bool:
        """True when every requirement holds; absent fields compare as ''."""
        if not self.requirements:
            return True
        fields = _fields_for(self.kind, obj)
        for req in self.requirements:
            reader = fields.get(req.field)
            value = reader(obj) if reader is not None else ""
            if (value == req.value) != (req.operator == "="):
                return False
        return True

    @property
    def empty(self) -> bool:
        """True for the selector that matches everything."""
        return not self.requirements


_ESCAPABLE = {"\\", ",", "="}


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in _ESCAPABLE:
                raise SelectorError(
                    f"invalid field selector: invalid escape sequence: {value[i : i + 2]}"
                )
            out.append(value[i + 1])
            i += 2
            continue
        if ch in (",", "="):
            # Go formats the offending rune with %v: its code point, not the character.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        out.append(ch)
        i += 1
    return "".join(out)


def parse_field_selector(text: str | None, kind: str) -> FieldSelector:
    """Parse a ``fieldSelector`` for ``kind`` (e.g. "Pod"); unknown fields are a 400 like the real one."""
    if text is None or not text.strip():
        return FieldSelector(kind)
    requirements: list[FieldRequirement] = []
    for part in sorted(_split_unescaped(text, ",")):  # the real parser sorts the terms first
        if part == "":
            continue
        match = re.search(r"!=|==|=", part)
        if match is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field = part[: match.start()]
        operator = "!=" if match.group() == "!=" else "="
        requirements.append(FieldRequirement(field, operator, _unescape(part[match.end() :])))
    known = {**_fields_for(kind), **(_NEW_EVENT_FIELDS if kind == "Event" else {})}
    for req in requirements:
        if req.field in known:
            continue
        if kind in _FIELDS_BY_KIND:
            raise SelectorError(f"field label not supported: {req.field}")
        # Kinds without their own conversion fall back to the scheme's default one.
        raise SelectorError(
            f'"{req.field}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        )
    return FieldSelector(kind, tuple(requirements))
