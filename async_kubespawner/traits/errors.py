"""The one error type for configuration a hub operator has to fix.

It subclasses ``TraitError`` so that traitlets reports it like any other invalid
setting when the hub loads its configuration, and it is raised again by
``KubeSpawnerSettings.check_configuration()`` for problems that only show once a user
is known (a template that makes an invalid pod name), *before* anything is created:
never a 422 from the API server halfway through a spawn.
"""

from __future__ import annotations

from traitlets import TraitError

from .redaction import ENV_SETTINGS, redact_text, secret_strings

# Values of these settings may hold credentials: error messages never repeat them.
_REDACTED_SETTINGS = ENV_SETTINGS


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
        context: object = None,
    ) -> None:
        # Every environment value of every container in the value (or in ``context``,
        # what the problem text was computed from) is redacted from the whole message:
        # JupyterHub shows this message to the user who spawns.
        secrets = secret_strings(value, setting) | secret_strings(context)
        problem = redact_text(problem, secrets)
        self.setting = setting
        self.problem = problem
        self.fix = fix
        if show_value and setting.split(".", 1)[0].split("[", 1)[0] not in _REDACTED_SETTINGS:
            shown = f" = {redact_text(repr(value), secrets)}"
            if len(shown) > 300:
                shown = shown[:297] + "..."
        else:
            shown = ""
        self.message = f"c.KubeSpawner.{setting}{shown}: {problem}. {fix}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
