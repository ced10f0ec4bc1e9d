"""The API server's name grammars (RFC 1123/1035 names, qualified names, label values).

Selectors and object validation both need them, and both must word their errors exactly
like k8s.io/apimachinery's ``validation`` package, because those strings reach users
(and the spawner's error messages) verbatim. Each function returns the list of error
details, empty when the value is valid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

# Every write re-validates the same few names over and over (label keys such as
# "app.kubernetes.io/name", finalizers, the object's own name on each status write): the
# grammars are pure functions of the string, so their answers are remembered, boundedly.
_MEMO_SIZE = 4096


def _memoized(rule: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """``rule`` with its answers for strings cached; each call still gets its own list
    (callers may extend it), and a non-string argument is passed through uncached."""
    cached = functools.lru_cache(maxsize=_MEMO_SIZE)(lambda value: tuple(rule(value)))

    @functools.wraps(rule)
    def check(value: str) -> list[str]:
        if type(value) is not str:
            return rule(value)
        return list(cached(value))

    return check


def max_len_error(length: int) -> str:
    """The wording 1.36 uses for every length limit on names and label values."""
    return f"must be no more than {length} bytes"


def regex_error(message: str, pattern: str, *examples: str) -> str:
    """Reproduce apimachinery's RegexError, including its odd double spaces between examples."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    text = message + " (e.g. "
    for index, example in enumerate(examples):
        if index > 0:
            text += " or "
        text += f"'{example}', "
    return text + f"regex used for validation is '{pattern}')"


DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_DNS1123_LABEL_RE = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE = re.compile(f"^{DNS1035_LABEL_FMT}$")
_QUALIFIED_NAME_RE = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^{LABEL_VALUE_FMT}$")
_CONFIG_KEY_RE = re.compile(f"^{CONFIG_KEY_FMT}$")
_IANA_CHARS_RE = re.compile(r"^[-a-z0-9]+$")
_IANA_LETTER_RE = re.compile(r"[a-z]")

_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def _grammar_errors(
    value: str, limit: int, pattern: re.Pattern[str], message: str, fmt: str, *examples: str
) -> list[str]:
    """apimachinery's two checks of a name grammar, in its order: the byte length, then
    the pattern (both are reported when both fail)."""
    errors = []
    if len(value.encode()) > limit:
        errors.append(max_len_error(limit))
    if not pattern.match(value):
        errors.append(regex_error(message, fmt, *examples))
    return errors


@_memoized
def dns1123_label_errors(value: str) -> list[str]:
    """Errors for a namespace name (and other RFC 1123 labels), at most 63 bytes."""
    return _grammar_errors(
        value,
        63,
        _DNS1123_LABEL_RE,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
        "or '-', and must start and end with an alphanumeric character",
        DNS1123_LABEL_FMT,
        "my-name",
        "123-abc",
    )


@_memoized
def dns1123_subdomain_errors(value: str) -> list[str]:
    """Errors for most object names (pods, secrets, PVCs...), at most 253 bytes."""
    return _grammar_errors(
        value,
        253,
        _DNS1123_SUBDOMAIN_RE,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
        "'-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN_FMT,
        "example.com",
    )


@_memoized
def dns1035_label_errors(value: str) -> list[str]:
    """Errors for Service names: the real server wants an RFC 1035 label (starts with a letter)."""
    return _grammar_errors(
        value,
        63,
        _DNS1035_LABEL_RE,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
        "start with an alphabetic character, and end with an alphanumeric character",
        DNS1035_LABEL_FMT,
        "my-name",
        "abc-123",
    )


@_memoized
def qualified_name_errors(value: str) -> list[str]:
    """Errors for label and annotation keys: ``[prefix/]name`` with a DNS subdomain prefix."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part " + max_len_error(63))
    if not _QUALIFIED_NAME_RE.match(name):
        errors.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


@_memoized
def label_value_errors(value: str) -> list[str]:
    """Errors for a label value: empty, or a qualified-name-like string of at most 63 bytes."""
    return _grammar_errors(
        value,
        63,
        _LABEL_VALUE_RE,
        "a valid label must be an empty string or consist of alphanumeric characters, "
        "'-', '_' or '.', and must start and end with an alphanumeric character",
        LABEL_VALUE_FMT,
        "MyValue",
        "my_value",
        "12345",
    )


@_memoized
def config_key_errors(key: str) -> list[str]:
    """Errors for a ConfigMap or Secret data key (apimachinery's IsConfigMapKey)."""
    errors = _grammar_errors(
        key,
        253,
        _CONFIG_KEY_RE,
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        CONFIG_KEY_FMT,
        "key.name",
        "KEY_NAME",
        "key-name",
    )
    if key in (".", ".."):
        errors.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errors.append("must not start with '..'")
    return errors


@_memoized
def port_name_errors(name: str) -> list[str]:
    """IANA service names (apimachinery's IsValidPortName), as container port names and
    named targetPorts must be."""
    errors = []
    if len(name) > 15:
        errors.append(max_len_error(15))
    if not _IANA_CHARS_RE.match(name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _IANA_LETTER_RE.search(name):
        errors.append("must contain at least one letter (a-z)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def path_segment_errors(value: str) -> list[str]:
    """Errors for a name that need only be one URL path segment (RBAC objects)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]
