"""``ProfilesMixin``: the profile traits on the spawner, the form, and applying a choice."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jupyterhub
from tornado import web
from traitlets import Callable as CallableTrait
from traitlets import Dict, List, TraitError, Unicode, Union, default
from traitlets.config import LoggingConfigurable

from ..objects.slugs import TemplateError
from ..traits.redaction import redact_error, redact_value
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

    if TYPE_CHECKING:  # provided by JupyterHub's Spawner, which this mixes into
        user_options: Any

    _profile_applied_options: dict[str, Any] | None = None
    _profile_selection: dict[str, str] | None = None
    _rejected_form_options: dict[str, str] | None = None
    # Profiles last resolved (from a profile_list callable), for the synchronous form
    # parser: JupyterHub renders the form before it parses its submission.
    _resolved_profiles: list[dict[str, Any]] | None = None
    # Setting -> its value before the first profile override touched it, so that
    # applying another choice starts from the configuration again.
    _profile_originals: dict[str, Any] | None = None
    # A profile set ``namespace``: it wins over user_namespace_template.
    _namespace_from_profile: bool = False

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
        profiles = normalize_profile_list(raw) if raw is not None else []
        if callable(self.profile_list):
            self._resolved_profiles = profiles
        return profiles

    def _profiles_now(self) -> list[dict[str, Any]] | None:
        """The profiles, without awaiting: None when only an async callable could say."""
        raw = self.profile_list
        if not callable(raw):
            return normalize_profile_list(raw) if raw is not None else []
        return self._resolved_profiles

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
    def _options_from_form_default(self) -> Any:
        # Replaces JupyterHub's passthrough default; a subclass may override
        # _options_from_form (and call it through super()), as with upstream.
        return self._options_from_form

    def _options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """The submitted form as ``user_options``; synchronous, as upstream's.

        Returns upstream's shape: ``profile`` plus the chosen profile's fields without
        their ``profile-option-<profile>--`` prefix. Whenever the profiles are known
        here (a list or dict, or a callable already resolved to render this form),
        the choice is validated at once, and a refusal is a 400 that JupyterHub shows
        above the form again, filled in as the user left it. Otherwise (a hub that
        restarted between showing and submitting a form of an async ``profile_list``)
        the same validation runs in :meth:`load_user_options`, still before anything
        is created.
        """
        profiles = self._profiles_now()
        if profiles is not None and not profiles:
            return formdata  # JupyterHub's passthrough
        try:
            options = form_data_to_user_options(profiles, formdata)
        except UserOptionsError as exc:
            raise exc.as_http_error() from exc
        if profiles:
            try:
                select_profile(profiles, options)
            except UserOptionsError as exc:
                # JupyterHub answers with the form again: show it as the user filled it in.
                self._rejected_form_options = options
                raise exc.as_http_error() from exc
        return options

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return _acknowledge_profile_user_options

    # -- applying the chosen profile ----------------------------------------- #

    async def load_user_options(self) -> None:
        """Validate ``user_options`` and apply the chosen profile's overrides.

        Raises ``HTTPError(400)`` for invalid user choices (before anything is changed),
        :class:`ProfileListError` / :class:`ProfileOverrideError` for configuration errors.
        Calling it again with the same ``user_options`` does nothing (it runs from
        several of JupyterHub's steps, and operator code may call it too); with
        different ``user_options`` the settings the earlier choice overrode go back to
        their configured values and the new choice applies, as if it had been the
        first.
        """
        options = copy.deepcopy(dict(self.user_options or {}))
        if self._profile_applied_options is not None and self._profile_applied_options == options:
            return
        profiles = await self.resolve_profile_list()
        if not profiles:
            self._restore_profile_originals()
            self._profile_applied_options = options
            return
        try:
            check_api_body_shape(options)
            selection = select_profile(profiles, options)
        except UserOptionsError as exc:
            raise exc.as_http_error() from exc
        self._restore_profile_originals()
        self.log.info(
            "Applying profile %r for %s with options %s",
            selection.slug,
            getattr(self, "_log_name", "spawner"),
            _loggable(selection.as_user_options()),
        )
        for where, override, option in selection.overrides():
            await self._apply_override(where, override, option)
        self._profile_applied_options = options
        self._profile_selection = selection.as_user_options()
        self.profile_overrides_applied()

    def profile_overrides_applied(self) -> None:
        """Called once a choice's overrides are in place. Subclasses recompute what depends
        on overridden settings (the settings layer recomputes the object names)."""

    def _restore_profile_originals(self) -> None:
        """Undo the previous choice's overrides: each setting back to its configured value."""
        originals = self._profile_originals or {}
        self._profile_originals = None
        self._namespace_from_profile = False
        for key, value in originals.items():
            setattr(self, key, value)

    def _remember_original(self, key: str) -> None:
        if self._profile_originals is None:
            self._profile_originals = {}
        if key not in self._profile_originals:
            self._profile_originals[key] = copy.deepcopy(getattr(self, key))

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
                try:
                    value = substitute_unlisted_value(value, option.unlisted_value)
                except TemplateError as exc:
                    raise ProfileOverrideError(
                        f"{where}: kubespawner_override[{key!r}] is not a valid template: {exc}."
                        " Use {value} alone for the user's text and double literal braces"
                    ) from None
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
                        f" {type(exc).__name__}: {redact_error(exc, key, getattr(self, key))}"
                    ) from exc
            current = getattr(self, key)
            if isinstance(value, Mapping) and isinstance(current, Mapping):
                value = merge_override(current, value)
            else:
                value = copy.deepcopy(value)
            if self.has_trait(key):
                self._remember_original(key)
            try:
                setattr(self, key, value)
            except (TraitError, ValueError, TypeError) as exc:
                if option is not None:
                    field = option.option + UNLISTED_SUFFIX
                    raise UserOptionsError(
                        field,
                        f"{_echo(option.unlisted_value)} cannot be used for {key}:"
                        f" {redact_error(exc, key, value)}",
                    ).as_http_error() from exc
                raise ProfileOverrideError(
                    f"{where}: kubespawner_override {key} = {redact_value(key, value)} is"
                    f" invalid: {redact_error(exc, key, value)}"
                ) from exc
            if key == "namespace":
                self._namespace_from_profile = True

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
        result = super().run_pre_spawn_hook()  # type: ignore[misc]  # Spawner is next in the MRO
        if inspect.isawaitable(result):
            await result

    # -- state --------------------------------------------------------------- #

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()  # type: ignore[misc]  # Spawner is next in the MRO
        if self._profile_selection is not None:
            state[STATE_KEY] = dict(self._profile_selection)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]  # Spawner is next in the MRO
        selection = state.get(STATE_KEY)
        if isinstance(selection, dict):
            self._profile_selection = {str(k): str(v) for k, v in selection.items()}

    def clear_state(self) -> None:
        # JupyterHub clears the state after a stop and at the start of every spawn,
        # before group_overrides apply: undo the last choice there, so that each start
        # applies its group overrides and its choice to the configured values (a
        # group the user left no longer shows through a remembered value).
        self._restore_profile_originals()
        self._profile_applied_options = None
        super().clear_state()  # type: ignore[misc]  # Spawner is next in the MRO
        self._profile_selection = None


#: JupyterHub's version as (major, minor): what its REST API accepts as a spawn request.
JUPYTERHUB_VERSION = tuple(jupyterhub.version_info[:2])


def check_api_body_shape(
    options: Mapping[str, Any], hub_version: tuple[int, ...] = JUPYTERHUB_VERSION
) -> None:
    """Refuse a JupyterHub 6 request body that reached a JupyterHub 5 hub.

    JupyterHub 6 reads the options of ``POST /users/:name/servers/:server`` from the
    ``user_options`` key of the body; JupyterHub 5 takes the whole body as the options.
    A client written for 6 that talks to a 5.x hub therefore sends
    ``{"user_options": {...}}`` as *the options*: every profile key is missing, and
    without this check the default profile would start in place of what was asked
    for. With profiles configured, that is a 400 naming the fix, before anything is
    created.
    """
    if hub_version >= (6, 0):
        return
    nested = options.get("user_options")
    if isinstance(nested, Mapping) and PROFILE_FIELD not in options:
        raise UserOptionsError(
            "user_options",
            f"this hub runs JupyterHub {jupyterhub.__version__}, whose REST API takes the"
            " options as the request body itself: send {\"profile\": ...} rather than"
            " {\"user_options\": {\"profile\": ...}}",
        )


#: Longest rendering of unknown ``user_options`` keys in one log line.
UNKNOWN_KEYS_LOG_LIMIT = 500


def _loggable(options: Mapping[str, Any]) -> str:
    """``user_options`` for a log line: repr (no raw newlines), length-capped."""
    text = repr(dict(options))
    if len(text) > UNKNOWN_KEYS_LOG_LIMIT:
        text = text[:UNKNOWN_KEYS_LOG_LIMIT] + f"... ({len(text)} characters)"
    return text


def _acknowledge_profile_user_options(spawner: Any, user_options: Mapping[str, Any]) -> None:
    """Default ``apply_user_options``: profile keys are handled already; warn about the rest.

    Without it JupyterHub warns "unhandled user_options" about ``profile`` on every spawn.
    The keys come from the user: logged as a repr (a newline cannot forge a log line)
    and cut to :data:`UNKNOWN_KEYS_LOG_LIMIT` characters (20,000 keys make no 150 KB line).
    """
    selection = getattr(spawner, "_profile_selection", None) or {}
    known = {PROFILE_FIELD, *selection, *(k.removesuffix(UNLISTED_SUFFIX) for k in selection)}
    unknown = [k for k in user_options if k not in known]
    if unknown:
        shown = repr(unknown)
        if len(shown) > UNKNOWN_KEYS_LOG_LIMIT:
            shown = shown[:UNKNOWN_KEYS_LOG_LIMIT] + "..."
        spawner.log.warning(
            "Received %d user_options key(s) that no profile option or apply_user_options"
            " handles: %s",
            len(unknown),
            shown,
        )
