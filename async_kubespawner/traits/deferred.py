"""Invalid settings fail the spawns that use them, not the construction of every spawner.

JupyterHub builds a spawner object for every server it knows about: at start-up for
each running server, on demand for everything else (the home page, ``poll()``,
``stop()``, the admin panel). If one invalid setting made every construction raise, a
single typo would take down the hub's view of *running* servers too: they could be
neither polled nor stopped, and a profile that overrides the bad setting with a good
value could not be used either.

So configuration is loaded setting by setting when the whole does not load: every
valid setting applies, each invalid one keeps its default and its error is remembered
(and logged once per process, redacted). :meth:`DeferredConfigErrors.raise_config_errors`
raises it again, before anything is created, for any spawn that still has the
setting's default, i.e. did not get a valid value from a profile or a hook since.
"""

from __future__ import annotations

from typing import Any

from traitlets import TraitError
from traitlets.config import Config, LoggingConfigurable

from .errors import SpawnerConfigError
from .redaction import redact_error

# (setting, message) pairs already logged by this process: one line per distinct
# error, not one per spawner object (a hub makes thousands).
_logged_errors: set[tuple[str, str]] = set()


class DeferredConfigErrors(LoggingConfigurable):
    """Keeps invalid settings from failing construction; raises them at spawn time."""

    # setting -> (the error, the value the setting kept instead)
    _config_errors: dict[str, tuple[SpawnerConfigError, Any]] | None = None

    def _load_config(
        self,
        cfg: Config,
        section_names: list[str] | None = None,
        traits: dict[str, Any] | None = None,
    ) -> None:
        try:
            super()._load_config(cfg, section_names=section_names, traits=traits)
            return
        except TraitError:
            pass  # traitlets rolled the whole load back; load what is valid, one by one
        if traits is None:
            traits = self.traits(config=True)
        my_config = self._find_my_config(cfg)
        for name in list(my_config):
            if name not in traits:
                continue  # the first pass already warned about unknown names
            single = Config({type(self).__name__: Config({name: my_config[name]})})
            try:
                super()._load_config(single, section_names=section_names, traits=traits)
            except TraitError as exc:
                self._defer_config_error(name, exc, my_config[name])

    def _defer_config_error(self, name: str, exc: TraitError, value: Any) -> None:
        if isinstance(exc, SpawnerConfigError):
            error = exc
        else:
            error = SpawnerConfigError(
                name,
                None,
                redact_error(exc, name, value),
                "Give the setting a value of the documented type.",
                show_value=False,
            )
        if self._config_errors is None:
            self._config_errors = {}
        self._config_errors[name] = (error, getattr(self, name))
        key = (name, str(error))
        if key not in _logged_errors:
            _logged_errors.add(key)
            self.log.error(
                "Invalid setting; every spawn that does not override it will fail with: %s",
                error,
            )

    def settle_config_errors(self) -> None:
        """Take the values the refused settings hold once construction is complete
        (``__init__`` may derive some, e.g. port 0 -> 8888) as the ones that still mean
        "refused"; call at the end of ``__init__``."""
        for name, (error, _kept) in (self._config_errors or {}).items():
            self._config_errors[name] = (error, getattr(self, name))  # type: ignore[index]  # set up by the settings mixin before any trait is read

    @property
    def config_errors(self) -> dict[str, SpawnerConfigError]:
        """Settings whose configured value was refused and that still hold their default."""
        pending: dict[str, SpawnerConfigError] = {}
        for name, (error, kept) in (self._config_errors or {}).items():
            current = getattr(self, name)
            if current is kept or (type(current) is type(kept) and current == kept):
                pending[name] = error
        return pending

    def raise_config_errors(self) -> None:
        """Raise the first pending configuration error (call before creating anything)."""
        for error in self.config_errors.values():
            raise error
