"""The options form: its markup, pre-selection, custom templates, and reading it back."""

from pathlib import Path
from typing import Any

import pytest
from tornado import web

from .profiles_support import PROFILES, FormParser, ProfileTestSpawner


async def render(spawner: ProfileTestSpawner) -> FormParser:
    html = await spawner.get_options_form()
    parser = FormParser()
    parser.feed(html)
    return parser


async def test_fields_use_upstream_names_and_defaults_are_selected() -> None:
    form = await render(ProfileTestSpawner(profile_list=PROFILES))
    assert [c["value"] for c in form.named("profile")] == ["small-cpu", "gpu"]
    assert all(c["type"] == "radio" for c in form.named("profile"))
    assert form.checked_profile() == ["gpu"]
    image = form.named("profile-option-small-cpu--image")[0]
    assert [o["value"] for o in image["options"]] == ["base", "scipy", "unlisted-choice"]
    assert [o["text"] for o in image["options"]] == ["Base", "SciPy", "Other..."]
    assert form.selected("profile-option-small-cpu--image") == "scipy"
    assert form.selected("profile-option-gpu--size") == "one"
    (text,) = form.named("profile-option-small-cpu--image--unlisted-choice")
    assert text["type"] == "text"
    assert text["value"] == ""
    assert text["pattern"] == r"^pangeo/.+:[\w.-]+$"
    assert text["title"] == "Must be a pangeo image with a tag"
    assert not form.named("profile-option-gpu--size--unlisted-choice")


async def test_markup_is_accessible_without_javascript() -> None:
    form = await render(ProfileTestSpawner(profile_list=PROFILES))
    for control in form.controls:
        assert control.get("id"), control
        assert form.labels.get(control["id"]), f"no label bound to {control['id']}"
        assert "disabled" not in control and "required" not in control
    assert len(form.ids) == len(set(form.ids)), "ids must be unique"
    assert form.labels["profile-item-gpu"] == "GPU"
    assert form.labels["profile-option-small-cpu--image"] == "Image"
    assert form.labels["profile-option-small-cpu--image--unlisted-choice"] == "Image name"
    assert form.fieldsets == len(form.legends) == 3
    assert form.legends[0] == "Choose a server profile"
    (small,) = [c for c in form.named("profile") if c["value"] == "small-cpu"]
    assert small["aria-describedby"] == "profile-item-small-cpu-description"
    assert "profile-item-small-cpu-description" in form.ids


async def test_names_and_descriptions_are_escaped() -> None:
    profiles = [{"display_name": "<script>x()</script>", "slug": "s", "description": "a & <b>"}]
    html = await ProfileTestSpawner(profile_list=profiles).get_options_form()
    assert "<script>x()" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "a &amp; &lt;b&gt;" in html


async def test_last_used_options_of_the_server_are_preselected() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    spawner.user_options = {"profile": "small-cpu", "image": "base"}
    form = await render(spawner)
    assert form.checked_profile() == ["small-cpu"]
    assert form.selected("profile-option-small-cpu--image") == "base"

    spawner.user_options = {"profile": "small-cpu", "image--unlisted-choice": "pangeo/ml:1"}
    form = await render(spawner)
    assert form.selected("profile-option-small-cpu--image") == "unlisted-choice"
    (text,) = form.named("profile-option-small-cpu--image--unlisted-choice")
    assert text["value"] == "pangeo/ml:1"


async def test_stale_last_used_options_fall_back_to_what_still_exists() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    spawner.user_options = {"profile": "small-cpu", "image": "removed-image"}
    form = await render(spawner)
    assert form.checked_profile() == ["small-cpu"]
    assert form.selected("profile-option-small-cpu--image") == "scipy"
    spawner.user_options = {"profile": "removed-profile"}
    form = await render(spawner)
    assert form.checked_profile() == ["gpu"]


async def test_profile_form_template_literal_with_upstream_variables() -> None:
    template = (
        "{% for p in profile_list %}<input name='profile' value='{{ p.slug }}'"
        "{% if p.default %} checked{% endif %}>"
        "{% for k, o in p.profile_options.items() %}{% for c in o.choices %}"
        "[{{ p.slug }}--{{ k }}={{ c }}]{% endfor %}{% endfor %}{% endfor %}"
    )
    spawner = ProfileTestSpawner(profile_list=PROFILES, profile_form_template=template)
    spawner.user_options = {"profile": "small-cpu"}
    html = await spawner.get_options_form()
    assert html == (
        "<input name='profile' value='small-cpu' checked>[small-cpu--image=base]"
        "[small-cpu--image=scipy]<input name='profile' value='gpu'>[gpu--size=one][gpu--size=two]"
    )


async def test_additional_template_paths_take_precedence(tmp_path: Path) -> None:
    (tmp_path / "form.html").write_text(
        "custom:{% for p in profile_list %}{{ p.display_name }};{% endfor %}"
    )
    spawner = ProfileTestSpawner(
        profile_list=PROFILES, additional_profile_form_template_paths=[str(tmp_path)]
    )
    assert await spawner.get_options_form() == "custom:Small CPU;GPU;"


async def test_additional_paths_can_extend_the_packaged_template(tmp_path: Path) -> None:
    (tmp_path / "branded.html").write_text("<h2>Pick</h2>{% include 'form.html' %}")
    spawner = ProfileTestSpawner(
        profile_list=PROFILES,
        additional_profile_form_template_paths=[str(tmp_path)],
        profile_form_template="{% include 'branded.html' %}",
    )
    html = await spawner.get_options_form()
    assert html.startswith("<h2>Pick</h2>")
    assert 'name="profile-option-gpu--size"' in html


# --------------------------------------------------------------------------- #
# reading the form back
# --------------------------------------------------------------------------- #


def as_form(fields: dict[str, str | list[str]]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items()}


async def test_submitted_form_becomes_explicit_user_options() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    # Without JavaScript every profile's fields arrive; only the chosen profile's count.
    form = as_form(
        {
            "profile": "small-cpu",
            "profile-option-small-cpu--image": "base",
            "profile-option-small-cpu--image--unlisted-choice": "typed then abandoned",
            "profile-option-gpu--size": "two",
        }
    )
    assert spawner.run_options_from_form(form) == {"profile": "small-cpu", "image": "base"}


async def test_submitted_free_text_is_used_when_selected() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    form = as_form(
        {
            "profile": "small-cpu",
            "profile-option-small-cpu--image": "unlisted-choice",
            "profile-option-small-cpu--image--unlisted-choice": "pangeo/ml:2",
        }
    )
    assert spawner.run_options_from_form(form) == {
        "profile": "small-cpu",
        "image": "unlisted-choice",
        "image--unlisted-choice": "pangeo/ml:2",
    }


async def test_empty_submission_is_default_profile_with_default_choices() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    # As upstream: nothing submitted is nothing chosen; loading picks the defaults.
    assert spawner.run_options_from_form({}) == {}
    spawner.user_options = {}
    await spawner.load_user_options()
    assert spawner.profile_selection == {"profile": "gpu", "size": "one"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"profile": "tpu"}, "Invalid user option 'profile': 'tpu' is not a profile"),
        ({"profile": ["gpu", "small-cpu"]}, "'profile': was sent 2 times"),
        (
            {"profile": "gpu", "profile-option-gpu--size": "three"},
            "'size': 'three' is not a choice of option 'size' of profile 'gpu'; allowed: 'one', 'two'",
        ),
        (
            {
                "profile": "small-cpu",
                "profile-option-small-cpu--image": "unlisted-choice",
                "profile-option-small-cpu--image--unlisted-choice": "",
            },
            "'image--unlisted-choice': option 'image' of profile 'small-cpu' was set to 'unlisted-choice' but no free text",
        ),
        (
            {
                "profile": "small-cpu",
                "profile-option-small-cpu--image": "unlisted-choice",
                "profile-option-small-cpu--image--unlisted-choice": "docker.io/evil:1",
            },
            "Must be a pangeo image with a tag",
        ),
    ],
)
async def test_invalid_form_is_a_400_naming_the_field(
    fields: dict[str, Any], expected: str
) -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    with pytest.raises(web.HTTPError) as info:
        spawner.run_options_from_form(as_form(fields))
    assert info.value.status_code == 400
    assert info.value.log_message is not None
    assert expected in info.value.log_message % info.value.args


async def test_query_arguments_go_through_the_same_validation() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    assert spawner.options_from_query(as_form({"profile": "small-cpu"})) == {
        "profile": "small-cpu"
    }
    with pytest.raises(web.HTTPError) as info:
        spawner.options_from_query(as_form({"profile": "nope"}))
    assert info.value.status_code == 400


async def test_refused_submission_is_shown_again_for_correction_once() -> None:
    spawner = ProfileTestSpawner(profile_list=PROFILES)
    spawner.user_options = {"profile": "gpu", "size": "two"}  # last successful start
    refused = as_form(
        {
            "profile": "small-cpu",
            "profile-option-small-cpu--image": "unlisted-choice",
            "profile-option-small-cpu--image--unlisted-choice": "docker.io/typo:1",
        }
    )
    with pytest.raises(web.HTTPError):
        spawner.run_options_from_form(refused)
    form = await render(spawner)
    assert form.checked_profile() == ["small-cpu"]
    assert form.selected("profile-option-small-cpu--image") == "unlisted-choice"
    (text,) = form.named("profile-option-small-cpu--image--unlisted-choice")
    assert text["value"] == "docker.io/typo:1"
    form = await render(spawner)  # the next visit shows the last start again
    assert form.checked_profile() == ["gpu"]
    assert form.selected("profile-option-gpu--size") == "two"


async def test_free_text_only_option_is_preselected_as_free_text() -> None:
    profiles = [
        {
            "display_name": "Custom",
            "profile_options": {"image": {"unlisted_choice": {"enabled": True}}},
        }
    ]
    spawner = ProfileTestSpawner(profile_list=profiles)
    form = await render(spawner)
    assert not form.named("profile-option-custom--image")  # no select without choices
    (text,) = form.named("profile-option-custom--image--unlisted-choice")
    assert text["value"] == ""
    assert form.labels["profile-option-custom--image--unlisted-choice"] == "image"
