"""Rendering the spawn page's options form (Jinja2), compiled once per process."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, Template

from .model import UNLISTED_CHOICE, UNLISTED_SUFFIX, preselect


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


def render_form(
    profiles: list[dict[str, Any]],
    shown_options: Mapping[str, Any],
    *,
    user_options: Mapping[str, Any],
    spawner: Any,
    template_source: str = "",
    template_paths: tuple[str, ...] = (),
) -> str:
    """The form for normalised ``profiles`` with ``shown_options`` pre-selected.

    The template sees a copy of the profiles whose ``default`` flags mark what is
    shown as chosen (so a custom template needs no selection logic of its own), plus
    ``spawner``, ``user_options`` and the field-name constants.
    """
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
    if template_source:
        template = _literal_template(template_paths, template_source)
    else:
        template = _form_environment(template_paths).get_template("form.html")
    return template.render(
        profile_list=shown,
        spawner=spawner,
        user_options=dict(user_options),
        unlisted_choice_value=UNLISTED_CHOICE,
        unlisted_suffix=UNLISTED_SUFFIX,
    )
