"""Keeping environment values out of error messages.

Configuration errors reach users: JupyterHub shows a spawn's exception on the spawn
page, and a profile override's error names the value that was refused. Environment
variables are where operators put credentials (database passwords, API keys), and they
appear in many settings: ``environment``, every container's ``env`` (sidecars in
``extra_containers``, ``init_containers``, ``extra_container_config``, the containers
of ``extra_pod_config``), at any depth. So a message is redacted by *content*: every
string that is an environment value anywhere in the offending value is replaced by
``<redacted>`` wherever it occurs in the text, whatever produced the text (our own
checks, traitlets' type errors, the Kubernetes model conversion).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

REDACTED = "<redacted>"

#: Settings whose values are environment variables as a whole (name -> value).
ENV_SETTINGS = frozenset({"environment"})
#: Keys under which Kubernetes objects (and our settings) hold environment variables.
_ENV_KEYS = frozenset({"env", "environment"})


def _env_values(env: Any) -> Iterator[str]:
    """The values of one ``env``: a list of EnvVar dicts, or a name -> value mapping."""
    if isinstance(env, Mapping):
        for value in env.values():
            if isinstance(value, str):
                yield value
            elif isinstance(value, Mapping) and isinstance(value.get("value"), str):
                yield value["value"]
    elif isinstance(env, list | tuple):
        for item in env:
            if isinstance(item, Mapping) and isinstance(item.get("value"), str):
                yield item["value"]
            elif hasattr(item, "value") and isinstance(item.value, str):
                yield item.value


def _string_leaves(value: Any, _depth: int = 0) -> Iterator[str]:
    if _depth > 32:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _string_leaves(item, _depth + 1)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _string_leaves(item, _depth + 1)


def secret_strings(value: Any, setting: str = "", _depth: int = 0) -> set[str]:
    """Every environment value found in ``value`` (the value of ``setting``)."""
    found: set[str] = set()
    if _depth > 32:
        return found
    if setting.split("[", 1)[0].split(".", 1)[0] in ENV_SETTINGS:
        # The whole value is environment: every string in it, whatever its shape (a
        # wrongly typed list of values is still a list of credentials).
        found.update(_string_leaves(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _ENV_KEYS:
                found.update(_env_values(item))
            found.update(secret_strings(item, "", _depth + 1))
    elif isinstance(value, list | tuple):
        for item in value:
            found.update(secret_strings(item, "", _depth + 1))
    return {s for s in found if s}


def redact_text(text: str, secrets: set[str]) -> str:
    """``text`` with every secret (and its repr-escaped form) replaced by ``<redacted>``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
        escaped = repr(secret)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, REDACTED)
    return text


def redact_value(setting: str, value: Any, limit: int = 80) -> str:
    """A setting's value for a message: repr, environment values redacted, shortened.

    A setting that is a set of env values as a whole is not shown at all; elsewhere every
    env entry and name/value pair keeps its name only (structure), and an env value
    repeated anywhere else is replaced too (content).
    """
    if hides_whole_value(setting):
        return "(value hidden)"
    text = redact_text(repr(redact_env_values(value)), secret_strings(value, setting))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact_error(exc: BaseException, setting: str = "", value: Any = None) -> str:
    """An exception's message with the environment values of ``value`` redacted.

    A :class:`~async_kubespawner.traits.errors.SpawnerConfigError` is redacted already;
    anything else (a traitlets type error quoting the value) is redacted here.
    """
    return redact_text(str(exc), secret_strings(value, setting))


# Values of these settings may hold credentials: error messages never repeat them.
_REDACTED_SETTINGS = ENV_SETTINGS


def hides_whole_value(setting: str) -> bool:
    """Whether a setting's value is never shown at all (it is a set of env values)."""
    return setting.split(".", 1)[0].split("[", 1)[0] in _REDACTED_SETTINGS


def redact_env_values(value: Any) -> Any:
    """``value`` with every env value replaced, at any depth: under each ``env`` key
    (a container's, in extra_containers, init_containers, extra_container_config,
    extra_pod_config or an override) an entry keeps its ``name`` only, and a mapping
    its keys only; so does any name/value pair elsewhere. Env values are where
    credentials go; the rest of the value is kept so that the error still shows what is
    wrong."""
    if isinstance(value, dict) and _looks_like_env_entry(value):
        return {k: (v if k == "name" else REDACTED) for k, v in value.items()}
    if isinstance(value, dict):
        return {
            key: _redact_env(item) if key == "env" else redact_env_values(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_env_values(item) for item in value)
    return value


def _looks_like_env_entry(value: dict[Any, Any]) -> bool:
    """A name/value pair wherever it is (an env list given where it does not belong, an
    HTTP header of a probe): its value is hidden too."""
    keys = set(value)
    return bool(keys & {"value", "valueFrom"}) and keys <= {"name", "value", "valueFrom"}


def _redact_env(env: Any) -> Any:
    if isinstance(env, list | tuple):
        return [
            {k: (v if k == "name" else REDACTED) for k, v in entry.items()}
            if isinstance(entry, dict)
            else REDACTED
            for entry in env
        ]
    if isinstance(env, dict):
        return dict.fromkeys(env, REDACTED)
    return REDACTED
