"""Kubernetes-safe names for users and servers, and template expansion.

A migrating hub finds its existing pods and PVCs only by name, so the slugs here must
be byte-for-byte what upstream KubeSpawner 7.x produces for the same user and server
names. Two schemes exist:

``safe`` (the default since 7.0)
    A name that is already a valid DNS label (and has no ``--``, which the scheme uses
    as its own separator) is kept as is; anything else becomes a readable stem plus a
    short sha256 hash (``x-9z9---224de202``), so distinct names never collide after
    lowercasing and stripping.
``escape`` (pre-7.0)
    ``escapism`` with ``[a-z0-9]`` kept and ``-`` as escape character, then lowercased.
    Kept because names already in use by older hubs were built this way
    (``handle_legacy_names``).

``TemplateFields`` computes every ``{field}`` a ``*_template`` setting may use; the
checks at the bottom say whether an expanded name is usable as an object name or a
label value, so a bad template is reported before anything is sent to the API.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import escapism

SLUG_SCHEMES = ("safe", "escape")

# The longest slug for a user or a server name, leaving room for prefixes such as
# "jupyter-" and "claim-" within the 63-character DNS label limit.
NAME_SLUG_MAX_LENGTH = 48
# strip_and_hash's default length when no limit is given.
DEFAULT_HASHED_LENGTH = 32
_HASH_LENGTH = 8

_LOWER = string.ascii_lowercase
_LOWER_DIGITS = string.ascii_lowercase + string.digits
_ALPHANUM = string.ascii_letters + string.digits
_NON_ALPHANUM_RUN = re.compile(r"[^a-z0-9]+")
_OBJECT_CHARS = re.compile(r"^[a-z0-9-]+$")
_LABEL_CHARS = re.compile(r"^[a-zA-Z0-9._-]*$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")

# Every field a user-facing template may use, with what it is for (the configuration
# reference and the unknown-field error list these).
USER_TEMPLATE_FIELDS: dict[str, str] = {
    "userid": "the user's numeric id in the hub database",
    "unescaped_username": "the user name exactly as the hub knows it",
    "unescaped_servername": "the server name exactly as the hub knows it ('' for the default server)",
    "hubnamespace": "the hub's namespace ('user' when that is 'default')",
    "username": "the user name slug of the configured slug_scheme",
    "servername": "the server name slug of the configured slug_scheme",
    "user_server": "user and server slug of the configured slug_scheme",
    "safe_username": "the user name in the 'safe' scheme",
    "safe_servername": "the server name in the 'safe' scheme",
    "safe_user_server": "user and server in the 'safe' scheme",
    "escaped_username": "the user name in the legacy 'escape' scheme",
    "escaped_servername": "the server name in the legacy 'escape' scheme",
    "escaped_user_server": "user and server in the legacy 'escape' scheme",
}
RESOLVED_NAME_FIELDS = ("pod_name", "pvc_name", "namespace")


def is_valid_default_name(name: str) -> bool:
    """True for a name the ``safe`` scheme keeps unchanged.

    1 to 63 characters of ``[a-z0-9-]``, starting with a letter and ending with a letter
    or digit: valid as a DNS label and, because it starts with a letter, also as a
    Service name.
    """
    return (
        0 < len(name) <= 63
        and _OBJECT_CHARS.match(name) is not None
        and name[0] in _LOWER
        and name[-1] in _LOWER_DIGITS
    )


def is_valid_label(value: str) -> bool:
    """True for a valid Kubernetes label value (empty, or ≤63 of ``[A-Za-z0-9._-]``
    starting and ending alphanumeric)."""
    if value == "":
        return True
    return (
        len(value) <= 63
        and _LABEL_CHARS.match(value) is not None
        and value[0] in _ALPHANUM
        and value[-1] in _ALPHANUM
    )


def is_valid_dns_label(name: str) -> bool:
    """RFC 1123 label: what pods' hostnames, Services and Namespaces need."""
    return 0 < len(name) <= 63 and _SUBDOMAIN.match(name) is not None and "." not in name


def is_valid_dns_subdomain(name: str) -> bool:
    """RFC 1123 subdomain: what Pods, PVCs and Secrets need as ``metadata.name``."""
    return 0 < len(name) <= 253 and _SUBDOMAIN.match(name) is not None


def _slug_body(name: str, max_length: int) -> str:
    """The readable part of a hashed slug.

    Lowercase; runs of anything but ``[a-z0-9]`` become one ``-``; leading ``-``
    dropped; cut to ``max_length``; trailing ``-`` dropped; then, if it does not start
    with a letter, ``x-`` plus its first ``max_length - 2`` characters (this last cut
    is *not* stripped again: upstream does not, and names must match); ``x`` if
    nothing is left.
    """
    body = _NON_ALPHANUM_RUN.sub("-", name.lower()).lstrip("-")[:max_length].rstrip("-")
    if body and body[0] not in _LOWER:
        body = "x-" + body[: max_length - 2]
    return body or "x"


def _short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_HASH_LENGTH]


def strip_and_hash(name: str, max_length: int = DEFAULT_HASHED_LENGTH) -> str:
    """``{body}---{hash}`` fitting in ``max_length``: the hash keeps names that differ
    only in stripped characters (or case) apart.

    Raises ValueError when ``max_length`` leaves no room for a one-character body
    (below 12), as upstream does: a longer result would break the caller's limit.
    """
    body_length = max_length - len("---") - _HASH_LENGTH
    if body_length < 1:
        raise ValueError(
            f"max_length={max_length} is too small for a hashed slug: it needs at least"
            f" {len('---') + _HASH_LENGTH + 1} characters"
        )
    body = _slug_body(name, body_length)
    return f"{body}---{_short_hash(name.encode('utf-8'))}"


def safe_slug(
    name: str,
    *,
    is_valid=is_valid_default_name,
    max_length: int | None = None,
) -> str:
    """Keep ``name`` if it is valid, has no ``--`` and fits; otherwise strip and hash it.

    ``--`` is refused even in valid names because the scheme joins user and server
    with it: ``a--b`` as a user name must not look like user ``a``, server ``b``.
    """
    if "--" in name:
        return strip_and_hash(name, max_length or DEFAULT_HASHED_LENGTH)
    if is_valid(name) and (max_length is None or len(name) <= max_length):
        return name
    return strip_and_hash(name, max_length or DEFAULT_HASHED_LENGTH)


def multi_slug(names: Iterable[str], max_length: int = NAME_SLUG_MAX_LENGTH) -> str:
    """One slug for several names that together are too long for ``max_length``.

    One hash covers all names (separated by the byte 0xFF, which never occurs in
    UTF-8) so the pair (user, server) is unique even when each part is cut short.
    """
    names = list(names)
    hash_value = _short_hash(b"\xff".join(n.encode("utf-8") for n in names))
    available = max_length - _HASH_LENGTH - 1
    per_name = available // len(names) - 2
    if per_name < 2:
        raise ValueError(
            f"max_length={max_length} is too small for a slug of {len(names)} names"
        )
    bodies = [_slug_body(n, per_name) for n in names]
    return "--".join(bodies) + "---" + hash_value


def escape_slug(name: str) -> str:
    """The pre-7.0 scheme: escapism over ``[a-z0-9]`` with ``-``, lowercased."""
    return escapism.escape(name, safe=_LOWER_DIGITS, escape_char="-").lower()


def safe_label_value(value: str) -> str:
    """A label value for ``value`` in the ``safe`` scheme (kept when already valid)."""
    return safe_slug(value, is_valid=is_valid_label)


@dataclass(frozen=True)
class TemplateFields:
    """Every value a ``{field}`` in a template may refer to, for one user's server."""

    userid: int | str
    unescaped_username: str
    unescaped_servername: str
    hubnamespace: str
    safe_username: str
    safe_servername: str
    safe_user_server: str
    escaped_username: str
    escaped_servername: str
    escaped_user_server: str
    slug_scheme: str

    @classmethod
    def for_server(
        cls,
        *,
        username: str,
        servername: str,
        userid: int | str,
        hub_namespace: str,
        slug_scheme: str = "safe",
    ) -> TemplateFields:
        if slug_scheme not in SLUG_SCHEMES:
            raise ValueError(f"slug_scheme {slug_scheme!r} is not one of {', '.join(SLUG_SCHEMES)}")
        safe_username = safe_slug(username, max_length=NAME_SLUG_MAX_LENGTH)
        safe_servername = (
            safe_slug(servername, max_length=NAME_SLUG_MAX_LENGTH) if servername else ""
        )
        # The "+ 2" (for "--") counts for the default server too: a 47- or 48-character
        # user slug gets a multi-slug even without a server name, as upstream does.
        if len(safe_username) + len(safe_servername) + 2 > NAME_SLUG_MAX_LENGTH:
            safe_user_server = multi_slug([username, servername])
        elif servername:
            safe_user_server = f"{safe_username}--{safe_servername}"
        else:
            safe_user_server = safe_username
        escaped_username = escape_slug(username)
        escaped_servername = escape_slug(servername)
        # Always joined: for the default server "alice--", whose trailing "-" the
        # expansion drops at the end of a template.
        escaped_user_server = f"{escaped_username}--{escaped_servername}"
        return cls(
            userid=userid,
            unescaped_username=username,
            unescaped_servername=servername,
            hubnamespace="user" if hub_namespace == "default" else hub_namespace,
            safe_username=safe_username,
            safe_servername=safe_servername,
            safe_user_server=safe_user_server,
            escaped_username=escaped_username,
            escaped_servername=escaped_servername,
            escaped_user_server=escaped_user_server,
            slug_scheme=slug_scheme,
        )

    def as_dict(self, slug_scheme: str | None = None) -> dict[str, str | int]:
        """The template namespace; ``slug_scheme`` picks what the plain fields mean."""
        scheme = slug_scheme or self.slug_scheme
        prefix = "safe" if scheme == "safe" else "escaped"
        values: dict[str, str | int] = {
            "userid": self.userid,
            "unescaped_username": self.unescaped_username,
            "unescaped_servername": self.unescaped_servername,
            "hubnamespace": self.hubnamespace,
            "safe_username": self.safe_username,
            "safe_servername": self.safe_servername,
            "safe_user_server": self.safe_user_server,
            "escaped_username": self.escaped_username,
            "escaped_servername": self.escaped_servername,
            "escaped_user_server": self.escaped_user_server,
        }
        values["username"] = values[f"{prefix}_username"]
        values["servername"] = values[f"{prefix}_servername"]
        if scheme == "safe":
            values["user_server"] = self.safe_user_server
        elif self.unescaped_servername:
            values["user_server"] = self.escaped_user_server
        else:
            values["user_server"] = self.escaped_username
        return values

    def user_label_value(self) -> str:
        """``hub.jupyter.org/username``: the name itself where it is a valid label,
        else its safe slug (in both schemes, like upstream 7)."""
        return safe_label_value(self.unescaped_username)

    def server_label_value(self) -> str:
        """``hub.jupyter.org/servername`` by the same rule ('' for the default server)."""
        return safe_label_value(self.unescaped_servername)


class TemplateError(ValueError):
    """A template uses something other than plain ``{field}`` substitution.

    Templates only ever substitute whole values: a format spec (``{userid:>9}``), a
    conversion (``{username!r}``), attribute or index access (``{username.upper}``,
    ``{x[0]}``) and positional fields (``{}``, ``{0}``) are refused, because the values
    may come from users (a user name, a profile's free text), and Python's formatting
    mini-language lets such a field read object attributes or allocate a string of any
    width.
    """


#: One parsed template: ``(literal text, field name or None)`` pairs. Literal text has
#: ``{{`` and ``}}`` already turned into single braces.
TemplateParts = tuple[tuple[str, str | None], ...]

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: Longest template kept in the parse cache: configured templates are short, while a
#: string holding a user's text may be long and must not pin memory.
_CACHED_TEMPLATE_LENGTH = 512


def parse_template(template: str) -> TemplateParts:
    """Split a template into literal text and plain field names, refusing anything else.

    Raises :class:`TemplateError` (a ``ValueError``) for unbalanced braces and for any
    field that is not a bare identifier. Short plain templates (configuration) are
    parsed once per process; anything holding a user's text is parsed each time.
    """
    if type(template) is str and len(template) <= _CACHED_TEMPLATE_LENGTH:
        return _parse_cached(template)
    return _parse(str(template))


@functools.lru_cache(maxsize=1024)
def _parse_cached(template: str) -> TemplateParts:
    return _parse(template)


def _parse(template: str) -> TemplateParts:
    parts: list[tuple[str, str | None]] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"unbalanced braces ({exc})") from None
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None))
            continue
        shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if conversion or spec:
            raise TemplateError(
                f"{shown} uses a format spec or conversion; templates only substitute plain"
                " {field} names"
            )
        if not _FIELD_NAME.match(field):
            raise TemplateError(
                f"{shown} is not a plain field name (no attribute, index or positional fields)"
            )
        parts.append((literal, field))
    return tuple(parts)


def template_field_names(template: str) -> set[str]:
    """The names of the ``{fields}`` a template uses.

    Raises :class:`TemplateError` (a ``ValueError``) for unbalanced braces or anything but
    plain ``{field}`` names.
    """
    return {field for _literal, field in parse_template(str(template_source(template))) if field}


class FilledTemplate(str):
    """A configured template with a user's text already filled in for ``{value}``.

    It *reads* as the filled result (what hooks and ``spawner.<setting>`` show, as
    upstream), but when a setting later expands it as a template, the user's text
    stays literal: :attr:`template` is the same string with the user's braces doubled.
    So user text is data, never a template, whatever braces or format specs it holds.
    Immutable, so copies are the object itself.
    """

    template: str

    def __new__(cls, filled: str, template: str) -> FilledTemplate:
        obj = super().__new__(cls, filled)
        obj.template = template
        return obj

    def __copy__(self) -> FilledTemplate:
        return self

    def __deepcopy__(self, memo: dict) -> FilledTemplate:
        return self

    def __reduce__(self) -> tuple:
        return (FilledTemplate, (str(self), self.template))


def template_source(template: str) -> str:
    """What to expand for ``template``: its escaped form when it holds a user's text."""
    return template.template if isinstance(template, FilledTemplate) else template


def escape_braces(text: str) -> str:
    """``text`` as literal template text: every brace doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def render_template(template: str, fields: Mapping[str, object]) -> str:
    """Substitute plain ``{field}`` names; values are inserted as text, never re-parsed.

    Raises ``KeyError`` for a field missing from ``fields`` and :class:`TemplateError`
    for anything but plain fields.
    """
    out: list[str] = []
    for literal, field in parse_template(template_source(template)):
        out.append(literal)
        if field is not None:
            out.append(str(fields[field]))
    return "".join(out)


def fill_value(template: str, value: str) -> str:
    """Fill ``{value}`` with a user's text, as an unlisted choice's override does.

    As upstream: ``{{`` and ``}}`` become single braces and every other ``{...}`` is
    left in place, as written, for the setting's own expansion (which judges it: a
    JSON-like environment value stays literal there, a format spec in a name template
    is a configuration error). Unlike upstream the user's text is never parsed: the
    result is a :class:`FilledTemplate` that expands with the text literal. ``{value}``
    itself must be plain (no format spec, conversion, attribute or index); unbalanced
    braces are refused.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"unbalanced braces ({exc})") from None
    filled: list[str] = []
    escaped: list[str] = []
    has_value = False
    for literal, field, spec, conversion in parsed:
        filled.append(literal)
        escaped.append(literal)
        if field is None:
            continue
        if field == "value" and not spec and not conversion:
            has_value = True
            filled.append(value)
            escaped.append(escape_braces(value))
            continue
        if re.split(r"[.\[]", field, maxsplit=1)[0] == "value":
            raise TemplateError(
                "{value} takes no format spec, conversion, attribute or index: the user's"
                " text is inserted as it is"
            )
        raw = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        filled.append(raw)
        escaped.append(raw)
    if not has_value:
        return "".join(filled)
    return FilledTemplate("".join(filled), "".join(escaped))


def expand_template(template: str, fields: Mapping[str, object]) -> str:
    """Fill a template. Trailing ``-`` that the *fields* leave (an empty server name
    in ``jupyter-{username}--{servername}``) are dropped, as they would make an
    invalid object name; a ``-`` the template itself ends with is kept."""
    rendered = render_template(template, fields)
    if not template_source(template).endswith("-"):
        rendered = rendered.rstrip("-")
    return rendered
