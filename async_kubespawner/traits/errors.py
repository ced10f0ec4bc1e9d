"""The one error type for configuration a hub operator has to fix.

It subclasses ``TraitError`` so that traitlets reports it like any other invalid
setting when the hub loads its configuration, and it is raised again by
``KubeSpawnerSettings.check_configuration()`` for problems that only show once a user
is known (a template that makes an invalid pod name), *before* anything is created:
never a 422 from the API server halfway through a spawn.
"""

from __future__ import annotations

from traitlets import TraitError

from .redaction import hides_whole_value, redact_env_values, redact_text, secret_strings


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
        if show_value and not hides_whole_value(setting):
            # Structurally (every env entry and name/value pair keeps its name only), then
            # by content (an env value repeated anywhere else in the value).
            shown = f" = {redact_text(repr(redact_env_values(value)), secrets)}"
            if len(shown) > 300:
                shown = shown[:297] + "..."
        else:
            shown = ""
        self.message = f"c.KubeSpawner.{setting}{shown}: {problem}. {fix}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
