"""``ProfilesMixin``: the profile traits on the spawner, the form, and applying a choice."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from tornado import web
from traitlets import Callable as CallableTrait
from traitlets import Dict, List, TraitError, Unicode, Union, default
from traitlets.config import LoggingConfigurable

from .form import render_form
from .model import (
    PROFILE_FIELD,
    STATE_KEY,
    UNLISTED_SUFFIX,
    OptionSelection,
    ProfileListError,
    ProfileOverrideError,
    UserOptionsError,
    _echo,
    form_data_to_user_options,
    merge_override,
    normalize_profile_list,
    select_profile,
    substitute_unlisted_value,
)


class ProfilesMixin(LoggingConfigurable):
    """Profile traits, the options form, and applying the chosen profile (see module doc)."""

    profile_list = Union(
        [List(trait=Dict()), Dict(), CallableTrait()],
        default_value=[],
        config=True,
        help="""
        Profiles offered on the spawn page: a list of dicts, a dict keyed by slug, or a
        (sync or async) callable receiving the spawner and returning either.

        Profile keys: display_name (required), slug (default: slugified display_name),
        description, default, kubespawner_override (setting -> value or callable of the
        spawner; dicts merge recursively) and profile_options
        ({option: {display_name, choices: {choice: {display_name, default,
        kubespawner_override}}, unlisted_choice: {enabled, display_name,
        display_name_in_choices, validation_regex, validation_message,
        kubespawner_override with {value}}}}).
        """,
    )

    profile_form_template = Unicode(
        "",
        config=True,
        help="Literal Jinja2 template for the options form; empty uses the packaged form.html.",
    )

    additional_profile_form_template_paths = List(
        Unicode(),
        config=True,
        help="Directories searched for form.html (and anything it includes) before the packaged templates.",
    )

    _profile_applied_options: dict[str, Any] | None = None
    _profile_selection: dict[str, str] | None = None
    _rejected_form_options: dict[str, str] | None = None

    # -- profile_list -------------------------------------------------------- #

    async def resolve_profile_list(self) -> list[dict[str, Any]]:
        """The normalised profiles for this spawner (calling ``profile_list`` if callable)."""
        raw = self.profile_list
        if callable(raw):
            try:
                raw = raw(self)
                if inspect.isawaitable(raw):
                    raw = await raw
            except web.HTTPError:
                raise  # a deliberate answer to the user
            except Exception as exc:
                raise ProfileListError(
                    f"the profile_list callable {getattr(self.profile_list, '__name__', '')!r}"
                    f" raised {type(exc).__name__}: {exc}"
                ) from exc
        if raw is None:
            return []
        return normalize_profile_list(raw)

    @property
    def profile_selection(self) -> dict[str, str] | None:
        """What the current (or last recorded) server was started with, in user_options shape."""
        return dict(self._profile_selection) if self._profile_selection is not None else None

    # -- the form ------------------------------------------------------------ #

    @default("options_form")
    def _default_options_form(self) -> Any:
        # Always the callable: JupyterHub only reads the form through get_options_form(),
        # and "" from it means "no form", so a profile_list set (or computed) later
        # still gets its form.
        return self._options_form_for

    async def _options_form_for(self, spawner: Any) -> str:
        return await self.render_options_form()

    async def render_options_form(self) -> str:
        """Render the spawn form with the last-used options of this server pre-selected.

        Right after a refused submission, what the user submitted is shown instead, so a
        mistyped free text can be corrected rather than typed again.
        """
        profiles = await self.resolve_profile_list()
        if not profiles:
            return ""
        shown_options = self._rejected_form_options
        self._rejected_form_options = None
        if shown_options is None:
            shown_options = dict(self.user_options or {})
        return render_form(
            profiles,
            shown_options,
            user_options=dict(self.user_options or {}),
            spawner=self,
            template_source=self.profile_form_template,
            template_paths=tuple(self.additional_profile_form_template_paths),
        )

    # -- form data and user_options ------------------------------------------ #

    @default("options_from_form")
    def _options_from_form(self) -> Any:
        # Same name as JupyterHub's own default handler, so that ours replaces it.
        return self._profile_options_from_form

    async def _profile_options_from_form(self, form_data: dict[str, list[str]]) -> dict[str, Any]:
        """Validate the submitted form; JupyterHub re-renders the form with our 400 message."""
        profiles = await self.resolve_profile_list()
        if not profiles:
            return form_data  # JupyterHub's passthrough behaviour when no profiles exist
        try:
            options = form_data_to_user_options(profiles, form_data)
        except UserOptionsError as exc:
            raise exc.as_http_error() from exc
        try:
            return select_profile(profiles, options).as_user_options()
        except UserOptionsError as exc:
            # JupyterHub answers with the form again: show it as the user filled it in.
            self._rejected_form_options = options
            raise exc.as_http_error() from exc

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return _acknowledge_profile_user_options

    # -- applying the chosen profile ----------------------------------------- #

    async def load_user_options(self) -> None:
        """Validate ``user_options`` and apply the chosen profile's overrides, once per spawn.

        Raises ``HTTPError(400)`` for invalid user choices (before anything is changed),
        :class:`ProfileListError` / :class:`ProfileOverrideError` for configuration errors.
        Calling it again with the same ``user_options`` does nothing; ``clear_state()``
        (which JupyterHub calls at the start of every spawn) re-arms it.
        """
        options = copy.deepcopy(dict(self.user_options or {}))
        if self._profile_applied_options is not None:
            if self._profile_applied_options == options:
                return
            raise RuntimeError(
                f"profile overrides were already applied to this spawner for"
                f" {self._profile_applied_options!r}; user_options changed to {options!r}"
                " without clear_state(). One spawner applies one profile per start."
            )
        profiles = await self.resolve_profile_list()
        if not profiles:
            self._profile_applied_options = options
            return
        try:
            selection = select_profile(profiles, options)
        except UserOptionsError as exc:
            raise exc.as_http_error() from exc
        self.log.info(
            "Applying profile %r for %s with options %s",
            selection.slug,
            getattr(self, "_log_name", "spawner"),
            selection.as_user_options(),
        )
        for where, override, option in selection.overrides():
            await self._apply_override(where, override, option)
        self._refresh_names_after_overrides()
        self._profile_applied_options = options
        self._profile_selection = selection.as_user_options()

    def _refresh_names_after_overrides(self) -> None:
        """Recompute pod/PVC/namespace names: a profile may change their templates.

        The settings mixin computes the names when the spawner is created and in
        clear_state(), both before the profile applies; ``_refresh_names`` is its hook.
        """
        refresh = getattr(self, "_refresh_names", None)
        if callable(refresh) and getattr(getattr(self, "user", None), "name", None) is not None:
            refresh()

    async def _apply_override(
        self, where: str, override: Mapping[str, Any], option: OptionSelection | None
    ) -> None:
        for key, value in override.items():
            if not (self.has_trait(key) or isinstance(getattr(type(self), key, None), property)):
                raise ProfileOverrideError(
                    f"{where}: kubespawner_override key {key!r} is not a KubeSpawner setting;"
                    " check its spelling"
                )
            if option is not None and option.unlisted_value is not None:
                value = substitute_unlisted_value(value, option.unlisted_value)
            if callable(value):
                try:
                    value = value(self)
                    if inspect.isawaitable(value):
                        value = await value
                except web.HTTPError:
                    raise  # a deliberate answer to the user (e.g. 403 "no quota left")
                except Exception as exc:
                    raise ProfileOverrideError(
                        f"{where}: kubespawner_override[{key!r}] callable raised"
                        f" {type(exc).__name__}: {exc}"
                    ) from exc
            current = getattr(self, key)
            if isinstance(value, Mapping) and isinstance(current, Mapping):
                value = merge_override(current, value)
            else:
                value = copy.deepcopy(value)
            try:
                setattr(self, key, value)
            except (TraitError, ValueError, TypeError) as exc:
                if option is not None:
                    field = option.option + UNLISTED_SUFFIX
                    raise UserOptionsError(
                        field,
                        f"{_echo(option.unlisted_value)} cannot be used for {key}: {exc}",
                    ).as_http_error() from exc
                raise ProfileOverrideError(
                    f"{where}: kubespawner_override {key} = {_echo(value)} is invalid: {exc}"
                ) from exc

    async def apply_group_overrides(self) -> None:
        """JupyterHub's first pre-start step; the profile applies right after the group overrides."""
        parent = getattr(super(), "apply_group_overrides", None)
        if parent is not None:
            await parent()
        await self.load_user_options()

    def run_pre_spawn_hook(self) -> Any:
        """Make sure the profile is in place before ``pre_spawn_hook`` (JupyterHub awaits this)."""
        return self._load_then_pre_spawn_hook()

    async def _load_then_pre_spawn_hook(self) -> None:
        await self.load_user_options()
        result = super().run_pre_spawn_hook()  # type: ignore[misc]
        if inspect.isawaitable(result):
            await result

    # -- state --------------------------------------------------------------- #

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()  # type: ignore[misc]
        if self._profile_selection is not None:
            state[STATE_KEY] = dict(self._profile_selection)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        selection = state.get(STATE_KEY)
        if isinstance(selection, dict):
            self._profile_selection = {str(k): str(v) for k, v in selection.items()}

    def clear_state(self) -> None:
        super().clear_state()  # type: ignore[misc]
        self._profile_selection = None
        self._profile_applied_options = None


def _acknowledge_profile_user_options(spawner: Any, user_options: Mapping[str, Any]) -> None:
    """Default ``apply_user_options``: profile keys are handled already; warn about the rest.

    Without it JupyterHub warns "unhandled user_options" about ``profile`` on every spawn.
    """
    known = {PROFILE_FIELD, *(getattr(spawner, "_profile_selection", None) or {})}
    unknown = [str(k) for k in user_options if k not in known]
    if unknown:
        spawner.log.warning(
            "Received user_options that no profile option or apply_user_options handles: %s",
            ", ".join(unknown),
        )
