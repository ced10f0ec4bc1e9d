"""``profile_list``, the options form and the validation of ``user_options``.

A hub offers a menu of environments (``profile_list``); a user picks one on the spawn
page or names one in the JSON body of ``POST /hub/api/users/:name/servers/:server``.
Both ways end in the same function, :func:`select_profile`, so the form and the REST
API accept and refuse exactly the same things. A refusal is a tornado
``HTTPError(400)`` whose message names the field and the allowed values: a user who
asked for something that does not exist gets told so, never a server started with a
silently substituted default.

Order in which configuration reaches a spawner (JupyterHub >= 5.3)
------------------------------------------------------------------
1. ``group_overrides`` (JupyterHub, broad per-group defaults);
2. the chosen profile's ``kubespawner_override``, then each chosen option's
   ``kubespawner_override`` in the order the options are listed (this module);
3. ``apply_user_options`` (operator code);
4. ``pre_spawn_hook`` (operator code);
5. ``start()``.

Why: a profile is the user's choice *within* the menu the operator configured, so it
is more specific than a group default and wins over it; but operator code must keep
the last word (clamp resources, add a volume for some users, refuse a combination), and
it should see the profile's result rather than have it silently overwrite its work
afterwards. Upstream KubeSpawner applies profiles inside ``start()``, after
``pre_spawn_hook``, so a profile silently wins over the hook; we deliberately do not.
Validation also happens before any operator hook runs, so hooks only ever see valid
choices. Step 2 runs from :meth:`ProfilesMixin.apply_group_overrides` (JupyterHub
calls it first and lets an ``HTTPError`` through to the API caller);
:meth:`ProfilesMixin.run_pre_spawn_hook` and ``start()`` call the idempotent
:meth:`ProfilesMixin.load_user_options` as well, so on a JupyterHub without group
overrides the profile still applies exactly once and still before ``pre_spawn_hook``.

Merging follows upstream: a dict override is merged recursively into a dict setting
(``None`` deletes a key), anything else replaces the setting; a callable override is
called with the spawner (it may be async) and its result used. A callable (or a
``profile_list`` callable) that raises tornado's ``HTTPError`` answers the user with it
(e.g. 403 "no GPU quota left"); any other exception is a configuration error
(:class:`ProfileOverrideError` / :class:`ProfileListError`, a 500 whose details go to
the hub log). ``{value}`` in an
``unlisted_choice.kubespawner_override`` is replaced by the user's free text, in
strings nested at any depth of dicts and lists (other ``{...}`` fields are left for the
settings' own template expansion). Free text must match ``validation_regex`` as a whole
(``re.fullmatch``, the same semantics as the form's HTML ``pattern``).

The resolved choice (profile and every option, defaults filled in) is kept in the
spawner state under ``profile_selection`` so that a restarted hub knows what each
running server was started with.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, Template
from slugify import slugify
from tornado import web
from traitlets import Callable as CallableTrait
from traitlets import Dict, List, TraitError, Unicode, Union, default
from traitlets.config import LoggingConfigurable

#: Form value (and ``user_options`` value) of the choice that stands for free text.
UNLISTED_CHOICE = "unlisted_choice"
#: Suffix of the field (and ``user_options`` key) holding the free text of an option.
UNLISTED_SUFFIX = "--unlisted-choice"
#: Name of the form field (and ``user_options`` key) naming the profile.
PROFILE_FIELD = "profile"
#: Spawner state key holding the resolved selection of a running server.
STATE_KEY = "profile_selection"

_MAX_ECHO = 80


class ProfileListError(ValueError):
    """``profile_list`` is malformed: the operator's configuration, not the user's input."""


class ProfileOverrideError(RuntimeError):
    """A ``kubespawner_override`` could not be applied (unknown setting, invalid value, callable raised)."""


class UserOptionsError(ValueError):
    """The user asked for something the profile list does not offer.

    ``field`` is the ``user_options`` key at fault, so that both the form and an API
    client learn exactly what to change.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"Invalid user option {field!r}: {message}")
        self.field = field

    def as_http_error(self) -> web.HTTPError:
        # "%s" so that a '%' in user-supplied text cannot break tornado's formatting.
        return web.HTTPError(400, "%s", str(self))


def _echo(value: Any) -> str:
    """A user-supplied value, shortened, for an error message."""
    text = repr(value)
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 3] + "..."


def _allowed(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values) if values else "(none)"


# --------------------------------------------------------------------------- #
# profile_list normalisation
# --------------------------------------------------------------------------- #


def _require_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProfileListError(
            f"{where} must be a dict, got {type(value).__name__}: {_echo(value)}"
        )
    return value


def _optional_str(entry: Mapping[str, Any], key: str, where: str, fallback: str) -> str:
    value = entry.get(key, fallback)
    if value is None:
        return fallback
    if not isinstance(value, str):
        raise ProfileListError(f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def _override(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    value = entry.get("kubespawner_override") or {}
    return dict(_require_mapping(value, f"{where}.kubespawner_override"))


def _normalize_unlisted(raw: Any, where: str) -> dict[str, Any]:
    entry = dict(_require_mapping(raw, where))
    entry["enabled"] = bool(entry.get("enabled", False))
    entry["display_name"] = _optional_str(entry, "display_name", where, "Other")
    entry["display_name_in_choices"] = _optional_str(
        entry, "display_name_in_choices", where, "Other..."
    )
    regex = entry.get("validation_regex")
    if regex is not None:
        if not isinstance(regex, str):
            raise ProfileListError(f"{where}.validation_regex must be a string")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ProfileListError(
                f"{where}.validation_regex {regex!r} is not a valid regular expression: {exc}"
            ) from exc
    entry["validation_regex"] = regex
    entry["validation_message"] = _optional_str(
        entry,
        "validation_message",
        where,
        f"Must match the regular expression {regex}" if regex else "",
    )
    entry["kubespawner_override"] = _override(entry, where)
    return entry


def _normalize_option(option_slug: str, raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(option_slug, str):
        raise ProfileListError(f"{where}: an option name must be a string, got {option_slug!r}")
    if option_slug.endswith(UNLISTED_SUFFIX) or option_slug == PROFILE_FIELD or not option_slug:
        raise ProfileListError(
            f"{where}: option name {option_slug!r} is reserved or empty; rename the option"
        )
    option = dict(_require_mapping(raw, where))
    option["display_name"] = _optional_str(option, "display_name", where, option_slug)
    raw_choices = _require_mapping(option.get("choices") or {}, f"{where}.choices")
    choices: dict[str, dict[str, Any]] = {}
    for choice_slug, raw_choice in raw_choices.items():
        cwhere = f"{where}.choices[{choice_slug!r}]"
        if not isinstance(choice_slug, str) or not choice_slug or choice_slug == UNLISTED_CHOICE:
            raise ProfileListError(
                f"{cwhere}: a choice name must be a non-empty string other than {UNLISTED_CHOICE!r}"
            )
        choice = dict(_require_mapping(raw_choice, cwhere))
        choice["display_name"] = _optional_str(choice, "display_name", cwhere, choice_slug)
        choice["default"] = bool(choice.get("default", False))
        choice["kubespawner_override"] = _override(choice, cwhere)
        choices[choice_slug] = choice
    defaults = [slug for slug, c in choices.items() if c["default"]]
    for extra in defaults[1:]:
        choices[extra]["default"] = False  # upstream: the first default wins
    if choices and not defaults:
        next(iter(choices.values()))["default"] = True
    option["choices"] = choices
    unlisted = option.get("unlisted_choice")
    option["unlisted_choice"] = (
        _normalize_unlisted(unlisted, f"{where}.unlisted_choice")
        if unlisted is not None
        else {"enabled": False}
    )
    if not choices and not option["unlisted_choice"]["enabled"]:
        raise ProfileListError(
            f"{where} offers nothing to choose: give it 'choices' or an enabled 'unlisted_choice'"
        )
    return option


def normalize_profile_list(raw: Any) -> list[dict[str, Any]]:
    """Check ``profile_list`` and fill in what upstream fills in.

    Returns new dicts (the configuration is never mutated) in which every profile has a
    ``slug`` (``slugify(display_name)`` when absent, as upstream), ``description``,
    exactly one profile and one choice per option marked ``default`` (the first marked,
    else the first listed), and every ``kubespawner_override`` is a dict. Unknown keys
    are kept for custom form templates. The dict form (7.1) is keyed by slug.
    """
    if isinstance(raw, Mapping):
        entries: list[tuple[str, Any]] = []
        for slug, profile in raw.items():
            if not isinstance(slug, str) or not slug:
                raise ProfileListError(
                    f"profile_list key {slug!r}: in the dict form each key is a profile's slug,"
                    " a non-empty string"
                )
            profile = _require_mapping(profile, f"profile_list[{slug!r}]")
            if "slug" in profile and profile["slug"] != slug:
                raise ProfileListError(
                    f"profile_list[{slug!r}] has slug {profile['slug']!r}; in the dict form the"
                    " key is the slug, so drop 'slug' or make it equal to the key"
                )
            entries.append((f"profile_list[{slug!r}]", {**profile, "slug": slug}))
    elif isinstance(raw, list | tuple):
        entries = [(f"profile_list[{i}]", p) for i, p in enumerate(raw)]
    else:
        raise ProfileListError(
            f"profile_list must be a list or a dict of profiles, got {type(raw).__name__}"
        )

    profiles: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for where, raw_profile in entries:
        profile = copy.deepcopy(dict(_require_mapping(raw_profile, where)))
        display_name = profile.get("display_name")
        if not isinstance(display_name, str) or not display_name:
            raise ProfileListError(f"{where} needs a non-empty string 'display_name'")
        slug = profile.get("slug")
        if slug is None:
            slug = slugify(display_name)
        if not isinstance(slug, str) or not slug:
            raise ProfileListError(
                f"{where} ({display_name!r}) has no usable slug; set 'slug' to a short name"
            )
        if slug in seen:
            raise ProfileListError(
                f"{where} has slug {slug!r}, already used by {seen[slug]}; slugs must be unique"
            )
        seen[slug] = where
        profile["slug"] = slug
        profile["display_name"] = display_name
        profile["description"] = _optional_str(profile, "description", where, "")
        profile["default"] = bool(profile.get("default", False))
        profile["kubespawner_override"] = _override(profile, where)
        raw_options = _require_mapping(
            profile.get("profile_options") or {}, f"{where}.profile_options"
        )
        profile["profile_options"] = {
            name: _normalize_option(name, option, f"{where}.profile_options[{name!r}]")
            for name, option in raw_options.items()
        }
        profiles.append(profile)

    defaults = [p for p in profiles if p["default"]]
    for extra in defaults[1:]:
        extra["default"] = False  # upstream: the first default wins
    if profiles and not defaults:
        profiles[0]["default"] = True
    return profiles


# --------------------------------------------------------------------------- #
# selection: the single validation of user_options
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class OptionSelection:
    """What the user chose for one option: a listed choice, or free text."""

    option: str
    choice: str | None
    unlisted_value: str | None = None


@dataclass(frozen=True)
class ProfileSelection:
    """A validated choice of profile and options, defaults filled in."""

    profile: dict[str, Any]
    options: dict[str, OptionSelection]

    @property
    def slug(self) -> str:
        return self.profile["slug"]

    def as_user_options(self) -> dict[str, str]:
        """The selection in upstream's ``user_options`` shape, every option explicit."""
        result = {PROFILE_FIELD: self.slug}
        for name, chosen in self.options.items():
            if chosen.unlisted_value is not None:
                result[name] = UNLISTED_CHOICE
                result[name + UNLISTED_SUFFIX] = chosen.unlisted_value
            elif chosen.choice is not None:
                result[name] = chosen.choice
        return result

    def overrides(self) -> Iterator[tuple[str, dict[str, Any], OptionSelection | None]]:
        """``(where, override, option)`` in the order they apply: profile, then options."""
        yield f"profile {self.slug!r}", self.profile["kubespawner_override"], None
        for name, chosen in self.options.items():
            option = self.profile["profile_options"][name]
            if chosen.unlisted_value is not None:
                yield (
                    f"profile {self.slug!r} option {name!r} (free text)",
                    option["unlisted_choice"]["kubespawner_override"],
                    chosen,
                )
            elif chosen.choice is not None:
                yield (
                    f"profile {self.slug!r} option {name!r} choice {chosen.choice!r}",
                    option["choices"][chosen.choice]["kubespawner_override"],
                    None,
                )


def default_profile(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    return next((p for p in profiles if p["default"]), profiles[0])


def _select_option(
    profile: dict[str, Any], name: str, option: dict[str, Any], user_options: Mapping[str, Any]
) -> OptionSelection:
    choices: dict[str, Any] = option["choices"]
    unlisted = option["unlisted_choice"]
    allowed = list(choices) + ([UNLISTED_CHOICE] if unlisted["enabled"] else [])
    text_key = name + UNLISTED_SUFFIX
    value = user_options.get(name)
    text = user_options.get(text_key)
    where = f"option {name!r} of profile {profile['slug']!r}"
    if value is not None and not isinstance(value, str):
        raise UserOptionsError(
            name,
            f"must be a string naming a choice of {where}, got {type(value).__name__}"
            f" {_echo(value)}; allowed: {_allowed(allowed)}",
        )
    if text is not None and not isinstance(text, str):
        raise UserOptionsError(
            text_key, f"free text for {where} must be a string, got {type(text).__name__}"
        )
    wants_text = value == UNLISTED_CHOICE or (value is None and text is not None)
    if wants_text:
        if not unlisted["enabled"]:
            field = name if value is not None else text_key
            raise UserOptionsError(
                field, f"{where} takes no free text; choose one of {_allowed(list(choices))}"
            )
        if not text:
            raise UserOptionsError(
                text_key,
                f"{where} was set to {UNLISTED_CHOICE!r} but no free text was given;"
                f" send {text_key!r} or choose one of {_allowed(list(choices))}",
            )
        regex = unlisted.get("validation_regex")
        if regex and re.fullmatch(regex, text) is None:
            hint = unlisted.get("validation_message") or f"must match {regex}"
            raise UserOptionsError(text_key, f"{_echo(text)} is not accepted for {where}: {hint}")
        return OptionSelection(name, None, text)
    if value is None:
        fallback = next((slug for slug, c in choices.items() if c["default"]), None)
        if fallback is None:
            raise UserOptionsError(
                text_key, f"{where} has no default; enter a value in {text_key!r}"
            )
        return OptionSelection(name, fallback)
    if value not in choices:
        raise UserOptionsError(
            name, f"{_echo(value)} is not a choice of {where}; allowed: {_allowed(allowed)}"
        )
    if text:
        raise UserOptionsError(
            text_key,
            f"free text was given for {where} while choice {value!r} was chosen; send"
            f" {name!r}: {UNLISTED_CHOICE!r} to use the text, or drop {text_key!r}",
        )
    return OptionSelection(name, value)


def select_profile(
    profiles: list[dict[str, Any]], user_options: Mapping[str, Any]
) -> ProfileSelection:
    """Validate ``user_options`` against normalised profiles; the one gate for form and API.

    Missing keys take the defaults (so ``{}`` is the default profile with default
    choices). A key naming an option of a *different* profile is refused, since it
    means the client believes it is configuring something it is not. Keys that are not
    profile options at all are left to ``apply_user_options``.
    """
    if not isinstance(user_options, Mapping):
        raise UserOptionsError(
            "user_options", f"must be a JSON object, got {type(user_options).__name__}"
        )
    slugs = [p["slug"] for p in profiles]
    requested = user_options.get(PROFILE_FIELD)
    if requested is None:
        profile = default_profile(profiles)
    elif not isinstance(requested, str):
        raise UserOptionsError(
            PROFILE_FIELD,
            f"must be a string naming a profile, got {type(requested).__name__} {_echo(requested)};"
            f" allowed: {_allowed(slugs)}",
        )
    else:
        found = next((p for p in profiles if p["slug"] == requested), None)
        if found is None:
            raise UserOptionsError(
                PROFILE_FIELD, f"{_echo(requested)} is not a profile; allowed: {_allowed(slugs)}"
            )
        profile = found

    own = set(profile["profile_options"])
    elsewhere = {name for p in profiles for name in p["profile_options"]} - own
    for key in user_options:
        base = key.removesuffix(UNLISTED_SUFFIX) if isinstance(key, str) else key
        if base in elsewhere:
            raise UserOptionsError(
                key,
                f"profile {profile['slug']!r} has no option {base!r}; its options are"
                f" {_allowed(sorted(own))}",
            )
    options = {
        name: _select_option(profile, name, option, user_options)
        for name, option in profile["profile_options"].items()
    }
    return ProfileSelection(profile, options)


def preselect(profiles: list[dict[str, Any]], options: Mapping[str, Any]) -> ProfileSelection:
    """What the form shows as chosen for ``options``; lenient, never raises.

    Unlike :func:`select_profile` this keeps whatever part of ``options`` still exists
    (a removed profile or choice falls back to the default) and keeps free text that
    fails its regex, so the user can correct it.
    """
    requested = options.get(PROFILE_FIELD)
    profile = next((p for p in profiles if p["slug"] == requested), None)
    if profile is None:
        profile = default_profile(profiles)
    chosen: dict[str, OptionSelection] = {}
    for name, option in profile["profile_options"].items():
        value = options.get(name)
        text = options.get(name + UNLISTED_SUFFIX)
        free_text_allowed = option["unlisted_choice"]["enabled"]
        default_choice = next((s for s, c in option["choices"].items() if c["default"]), None)
        if isinstance(value, str) and value in option["choices"]:
            chosen[name] = OptionSelection(name, value)
        elif free_text_allowed and value in (None, UNLISTED_CHOICE) and isinstance(text, str):
            chosen[name] = OptionSelection(name, None, text)
        elif free_text_allowed and (value == UNLISTED_CHOICE or default_choice is None):
            chosen[name] = OptionSelection(name, None, "")
        else:
            chosen[name] = OptionSelection(name, default_choice)
    return ProfileSelection(profile, chosen)


def form_data_to_user_options(
    profiles: list[dict[str, Any]], form_data: Mapping[str, list[str]]
) -> dict[str, str]:
    """Turn the spawn form's fields into upstream-shaped ``user_options`` (unvalidated).

    Without JavaScript every profile's fields are submitted, so only the chosen
    profile's fields count, and a free-text box counts only when its select names
    ``unlisted_choice`` (or there is no select): what the user saw selected is what
    they get.
    """

    def single(key: str) -> str:
        values = form_data.get(key) or [""]
        if len(values) > 1:
            raise UserOptionsError(key, f"was sent {len(values)} times; send it once")
        return values[0]

    options: dict[str, str] = {}
    profile_slug = single(PROFILE_FIELD) if PROFILE_FIELD in form_data else None
    if profile_slug is not None:
        options[PROFILE_FIELD] = profile_slug
    chosen = next((p for p in profiles if p["slug"] == profile_slug), None)
    if profile_slug is None:
        chosen = default_profile(profiles)
    if chosen is None:
        return options  # unknown profile: select_profile reports it
    prefix = f"profile-option-{chosen['slug']}--"
    for name in chosen["profile_options"]:
        field = prefix + name
        text_field = field + UNLISTED_SUFFIX
        value = single(field) if field in form_data else None
        text = single(text_field) if text_field in form_data else None
        if value is not None:
            options[name] = value
        # An empty box next to "unlisted_choice" is kept, so that select_profile can say
        # the text is missing; an empty box next to nothing means "not given".
        if text is not None and (value == UNLISTED_CHOICE or (value is None and text)):
            options[name + UNLISTED_SUFFIX] = text
    return options


# --------------------------------------------------------------------------- #
# override application
# --------------------------------------------------------------------------- #


def merge_override(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge as upstream (``None`` deletes a key), returning a new dict.

    A new dict rather than an in-place update: the current value may be shared with
    the configuration object or another spawner, which must not change.
    """
    merged = dict(current)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_override(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = merge_override({}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def substitute_unlisted_value(template: Any, value: str) -> Any:
    """Replace ``{value}`` by the user's text in every string nested in dicts and lists."""
    if isinstance(template, str):
        return template.replace("{value}", value)
    if isinstance(template, Mapping):
        return {k: substitute_unlisted_value(v, value) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return type(template)(substitute_unlisted_value(v, value) for v in template)
    return template


# --------------------------------------------------------------------------- #
# templates
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=16)
def _form_environment(paths: tuple[str, ...]) -> Environment:
    """One Jinja2 environment per search path list, so templates compile once per process
    (Jinja2 still reloads a file template whose file changed)."""
    loader = ChoiceLoader(
        [FileSystemLoader(list(paths)), PackageLoader("async_kubespawner.profiles", "templates")]
    )
    return Environment(loader=loader, autoescape=True)


@functools.lru_cache(maxsize=16)
def _literal_template(paths: tuple[str, ...], source: str) -> Template:
    return _form_environment(paths).from_string(source)


# --------------------------------------------------------------------------- #
# the spawner mixin
# --------------------------------------------------------------------------- #


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
        selected = preselect(profiles, shown_options)
        shown = copy.deepcopy(profiles)
        for profile in shown:
            is_selected = profile["slug"] == selected.slug
            profile["default"] = is_selected
            if not is_selected:
                continue
            for name, chosen in selected.options.items():
                option = profile["profile_options"][name]
                for slug, choice in option["choices"].items():
                    choice["default"] = chosen.unlisted_value is None and slug == chosen.choice
                if chosen.unlisted_value is not None:
                    option["unlisted_choice"]["selected"] = True
                    option["unlisted_choice"]["value"] = chosen.unlisted_value
        paths = tuple(self.additional_profile_form_template_paths)
        if self.profile_form_template:
            template = _literal_template(paths, self.profile_form_template)
        else:
            template = _form_environment(paths).get_template("form.html")
        return template.render(
            profile_list=shown,
            spawner=self,
            user_options=dict(self.user_options or {}),
            unlisted_choice_value=UNLISTED_CHOICE,
            unlisted_suffix=UNLISTED_SUFFIX,
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
