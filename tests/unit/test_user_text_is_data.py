"""A user's free text (an unlisted choice) is data, never a template.

Whatever braces, format specs, attribute lookups or field names the text holds, it
appears verbatim wherever the operator's ``{value}`` put it, and nothing else in the
pod changes. The pod built for the hostile text is compared with the pod built for a
plain sentinel, field by field.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kubernetes_asyncio.client import ApiClient

from async_kubespawner import KubeSpawner

from .spawner_fakes import make_spawner

SENTINEL = "plain-sentinel-text"

PROFILES = [
    {
        "display_name": "Custom",
        "slug": "custom",
        "profile_options": {
            "image": {
                "display_name": "Image",
                "unlisted_choice": {
                    "enabled": True,
                    "kubespawner_override": {
                        "image": "{value}",
                        "environment": {
                            "IMG": "pre-{value}-{username}",
                            "LITERAL": "${{HOME}}",
                        },
                        "extra_annotations": {"example.org/image": "{value}"},
                        "init_containers": [
                            {"name": "warm", "image": "{value}", "args": ["{value}", "{pvc_name}"]}
                        ],
                    },
                },
            }
        },
    }
]

HOSTILE = [
    "{userid:>50000000}",
    "quay.io/jupyter/{userid:>50000000}:1",
    "{userid.__class__.__mro__}",
    "{username.__class__}",
    "{pvc_name}",
    "{unescaped_username}",
    "{{x}}",
    "{",
    "}",
    "{value}",
    "{0}",
    "{}",
    "{username!r}",
    "$(LITERAL)",
    "a\nb",
    "%s%d",
]

text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(min_size=1, max_size=40),
    st.lists(st.sampled_from([*HOSTILE, "a", "-", ":", "/"]), min_size=1, max_size=6).map(
        "".join
    ),
)


async def pod_for(free_text: str) -> tuple[KubeSpawner, dict[str, Any]]:
    spawner = make_spawner(config={"profile_list": PROFILES})
    spawner.user_options = {"profile": "custom", "image--unlisted-choice": free_text}
    await spawner.load_user_options()
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    return spawner, pod


def take_user_fields(pod: dict[str, Any]) -> dict[str, Any]:
    """Remove (and return) every place the override put the user's text."""
    (notebook,) = pod["spec"]["containers"]
    (init,) = pod["spec"]["initContainers"]
    env = {e["name"]: e for e in notebook.pop("env")}
    taken = {
        "image": notebook.pop("image"),
        "IMG": env.pop("IMG")["value"],
        "JUPYTER_IMAGE": env.pop("JUPYTER_IMAGE")["value"],
        "JUPYTER_IMAGE_SPEC": env.pop("JUPYTER_IMAGE_SPEC")["value"],
        "annotation": pod["metadata"]["annotations"].pop("example.org/image"),
        "init_image": init.pop("image"),
        "init_args": init.pop("args"),
    }
    notebook["env"] = env  # the rest, by name: the order may follow $(VAR) references
    return taken


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(free_text=text)
@example(free_text="{userid:>50000000}")
@example(free_text="{{x}}")
async def test_user_text_appears_verbatim_and_changes_nothing_else(free_text: str) -> None:
    spawner, pod = await pod_for(free_text)
    _, reference = await pod_for(SENTINEL)
    taken = take_user_fields(pod)
    pvc_name = spawner.pvc_name
    assert taken == {
        "image": free_text,
        "IMG": f"pre-{free_text}-alice",
        "JUPYTER_IMAGE": free_text,
        "JUPYTER_IMAGE_SPEC": free_text,
        "annotation": free_text,
        "init_image": free_text,
        "init_args": [free_text, pvc_name],
    }
    take_user_fields(reference)
    assert pod == reference
    assert spawner.environment["LITERAL"] == "${HOME}"  # the operator's escape, as upstream
