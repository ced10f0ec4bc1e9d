"""The one error type for configuration a hub operator has to fix.

It subclasses ``TraitError`` so that traitlets reports it like any other invalid
setting when the hub loads its configuration, and it is raised again by
``KubeSpawnerSettings.check_configuration()`` for problems that only show once a user
is known (a template that makes an invalid pod name), *before* anything is created:
never a 422 from the API server halfway through a spawn.
"""

from __future__ import annotations

from typing import Any

from traitlets import TraitError

# Values of these settings may hold credentials: error messages never repeat them.
_REDACTED_SETTINGS = frozenset({"environment"})
#: What an env value is replaced with in an error message.
REDACTED = "<redacted>"


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


class SpawnerConfigError(TraitError, ValueError):
    """A setting whose value cannot work: says which, what is wrong, how to fix it."""

    def __init__(
        self,
        setting: str,
        value: object,
        problem: str,
        fix: str,
        *,
        show_value: bool = True,
    ) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        if show_value and not hides_whole_value(setting):
            shown = f" = {redact_env_values(value)!r}"
            if len(shown) > 300:
                shown = shown[:297] + "..."
        else:
            shown = ""
        self.message = f"c.KubeSpawner.{setting}{shown}: {problem}. {fix}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
