"""The profile model: ``profile_list`` normalised, ``user_options`` validated, overrides merged.

Pure functions over plain dicts, no spawner and no I/O, so the form and the REST API
share one gate (:func:`select_profile`) and it can be tested with plain asserts. The
order in which overrides reach a spawner, and why, is in the package docstring
(:mod:`async_kubespawner.profiles`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from slugify import slugify
from tornado import web

from ..objects.slugs import fill_value

#: Form value (and ``user_options`` value) of the choice that stands for free text:
#: upstream's value, which clients of the REST API post.
UNLISTED_CHOICE = "unlisted-choice"
#: The same meaning, as earlier releases of this package wrote it; still accepted so that
#: ``user_options`` saved by them (and clients written against them) keep working.
LEGACY_UNLISTED_CHOICE = "unlisted_choice"
_UNLISTED_MARKERS = frozenset({UNLISTED_CHOICE, LEGACY_UNLISTED_CHOICE})
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
        if not isinstance(choice_slug, str) or not choice_slug or choice_slug in _UNLISTED_MARKERS:
            raise ProfileListError(
                f"{cwhere}: a choice name must be a non-empty string other than"
                f" {UNLISTED_CHOICE!r} and {LEGACY_UNLISTED_CHOICE!r}"
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
        """The selection in upstream's ``user_options`` shape, every option explicit.

        Free text is the ``<option>--unlisted-choice`` key alone, as upstream's form
        submits it.
        """
        result = {PROFILE_FIELD: self.slug}
        for name, chosen in self.options.items():
            if chosen.unlisted_value is not None:
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
    wants_text = value in _UNLISTED_MARKERS or (value is None and text is not None)
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
    if requested is None or requested == "":
        # As upstream: no profile, or an empty one, means the default profile.
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
        elif free_text_allowed and (value is None or value in _UNLISTED_MARKERS) and isinstance(
            text, str
        ):
            chosen[name] = OptionSelection(name, None, text)
        elif free_text_allowed and (value in _UNLISTED_MARKERS or default_choice is None):
            chosen[name] = OptionSelection(name, None, "")
        else:
            chosen[name] = OptionSelection(name, default_choice)
    return ProfileSelection(profile, chosen)


def form_data_to_user_options(
    profiles: list[dict[str, Any]] | None, form_data: Mapping[str, list[str]]
) -> dict[str, str]:
    """Turn the spawn form's fields into ``user_options`` (unvalidated), as upstream.

    ``profile`` names the chosen profile; each field ``profile-option-<profile>--<key>``
    of that profile becomes ``user_options[<key>]`` (so ``<option>`` and
    ``<option>--unlisted-choice``), and the fields of other profiles are ignored
    (without JavaScript a form submits every profile's fields). One refinement: a
    free-text box counts only when its select says ``unlisted-choice`` or is absent,
    so that what the user saw selected is what they get. ``profiles`` may be None
    (a ``profile_list`` callable not resolved yet): the fields are then read by their
    names alone and validated when the options are loaded.
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
    elif profiles:
        profile_slug = default_profile(profiles)["slug"]
    if not profile_slug:
        return options
    prefix = f"profile-option-{profile_slug}--"
    fields = {key[len(prefix) :]: key for key in form_data if key.startswith(prefix)}
    for key, field in fields.items():
        if key.endswith(UNLISTED_SUFFIX):
            continue
        options[key] = single(field)
    for key, field in fields.items():
        if not key.endswith(UNLISTED_SUFFIX):
            continue
        text = single(field)
        value = options.get(key.removesuffix(UNLISTED_SUFFIX))
        # An empty box next to "unlisted-choice" is kept, so that select_profile can
        # say the text is missing; an empty box next to nothing means "not given".
        if value in _UNLISTED_MARKERS or (value is None and text):
            options[key] = text
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
    """Fill ``{value}`` with the user's text in every string nested in dicts and lists.

    As upstream, each string is a template for ``{value}`` alone: ``{{``/``}}`` become
    single braces and other ``{fields}`` stay for the setting's own expansion. The
    user's text is never parsed as a template, neither here nor later (see
    :class:`~async_kubespawner.objects.slugs.FilledTemplate`). Raises
    :class:`~async_kubespawner.objects.slugs.TemplateError` for a template using
    format specs, conversions, attributes or indexes.
    """
    if isinstance(template, str):
        return fill_value(template, value)
    if isinstance(template, Mapping):
        return {k: substitute_unlisted_value(v, value) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return type(template)(substitute_unlisted_value(v, value) for v in template)
    return template
