"""What the start path remembers between calls never outlives its inputs.

The template fields are kept per spawner; everything else a start builds (the pod, the
checks' input) is built afresh from the traits as they are when the start runs. These
tests change configuration, user and hooks between two builds and look at the second.
"""

from __future__ import annotations

from typing import Any

from async_kubespawner import KubeSpawner
from async_kubespawner.lifecycle.preflight import check_before_create, take_checked_pod
from async_kubespawner.objects.slugs import TemplateFields
from async_kubespawner.testing import build_spawner, kubespawner_config
from async_kubespawner.traits.namespaces import hub_namespace


class _NoApi:
    """The checks ask the API only about a named service account; none is named here."""

    async def get_or_none(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("no API call expected")


def _env(pod: dict[str, Any]) -> dict[str, str]:
    container = pod["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


async def _checked_pod(spawner: KubeSpawner) -> dict[str, Any]:
    await check_before_create(spawner, _NoApi())  # type: ignore[arg-type]
    pod = take_checked_pod(spawner)
    assert pod is not None
    return pod


def test_template_fields_follow_a_renamed_user_and_the_slug_scheme() -> None:
    spawner = build_spawner(KubeSpawner, "alice", config=kubespawner_config({}))

    def fresh(scheme: str | None = None) -> TemplateFields:
        return TemplateFields.for_server(
            username=spawner.user.name,
            servername=spawner.name or "",
            userid=spawner.user.id,
            hub_namespace=hub_namespace(),
            slug_scheme=scheme or spawner.slug_scheme,
        )

    assert spawner._expand_user_properties("{username}-{userid}", "t") == "alice-7"
    spawner.user.name = "bob"
    assert spawner._expand_user_properties("{username}-{userid}", "t") == "bob-7"
    spawner.user.id = 8
    assert spawner._expand_user_properties("{userid}", "t") == "8"
    spawner.user.id = True  # equal to 1, but not the same field value
    spawner._template_fields()
    spawner.user.id = 1
    assert spawner._expand_user_properties("{userid}", "t") == "1"
    spawner.user.name = "Bob.Smith"
    assert spawner._template_fields() == fresh()
    assert spawner._template_fields("escape") == fresh("escape")
    spawner.slug_scheme = "escape"
    assert spawner._template_fields() == fresh() and spawner._template_fields().slug_scheme == "escape"
    spawner.orm_spawner.name = "lab"
    assert spawner._template_fields() == fresh() and fresh().unescaped_servername == "lab"


async def test_configuration_changed_between_spawns_is_seen() -> None:
    spawner = build_spawner(
        KubeSpawner,
        "alice",
        config=kubespawner_config({"image": "lab:1", "environment": {"A": "one-{username}"}}),
    )
    first = await _checked_pod(spawner)
    spawner.image = "lab:2"
    spawner.environment = {"A": "two-{username}", "B": "$(A)"}
    spawner.extra_labels = {"team": "{username}"}
    second = await _checked_pod(spawner)
    assert first["spec"]["containers"][0]["image"] == "lab:1"
    assert second["spec"]["containers"][0]["image"] == "lab:2"
    assert _env(first)["A"] == "one-alice" and "B" not in _env(first)
    assert _env(second)["A"] == "two-alice" and _env(second)["B"] == "$(A)"
    assert second["metadata"]["labels"]["team"] == "alice"
    assert "team" not in first["metadata"]["labels"]


async def test_hooks_see_a_fresh_pod_and_their_changes_count_at_each_start() -> None:
    seen: list[Any] = []

    def modify_pod_hook(spawner: KubeSpawner, pod: Any) -> Any:
        seen.append(pod)
        # mutating what it was given, as hooks do: must not leak into the next start
        pod.spec.containers[0].env.append({"name": "HOOKED", "value": str(len(seen))})
        pod.metadata.labels["hooked"] = str(len(seen))
        return pod

    def pre_spawn_hook(spawner: KubeSpawner) -> None:
        spawner.image = f"lab:{len(seen) + 1}"
        spawner.environment = {**spawner.environment, "ROUND": str(len(seen) + 1)}

    spawner = build_spawner(
        KubeSpawner,
        "alice",
        config=kubespawner_config(
            {"modify_pod_hook": modify_pod_hook, "pre_spawn_hook": pre_spawn_hook}
        ),
    )
    pods = []
    for _ in range(2):
        await spawner.run_pre_spawn_hook()
        pods.append(await _checked_pod(spawner))
    assert seen[0] is not seen[1]
    first, second = pods
    assert [c["image"] for c in (first["spec"]["containers"][0], second["spec"]["containers"][0])] == [
        "lab:1",
        "lab:2",
    ]
    assert _env(first)["ROUND"] == "1" and _env(second)["ROUND"] == "2"
    assert _env(first)["HOOKED"] == "1" and _env(second)["HOOKED"] == "2"
    assert [e["name"] for e in second["spec"]["containers"][0]["env"]].count("HOOKED") == 1
    assert (first["metadata"]["labels"]["hooked"], second["metadata"]["labels"]["hooked"]) == (
        "1",
        "2",
    )


async def test_a_profile_override_between_spawns_is_seen() -> None:
    profiles = [
        {"display_name": "small", "slug": "small", "default": True,
         "kubespawner_override": {"image": "small:1", "cpu_limit": 1}},
        {"display_name": "big", "slug": "big",
         "kubespawner_override": {"image": "big:1", "cpu_limit": 4}},
    ]
    spawner = build_spawner(KubeSpawner, "alice", config=kubespawner_config({"profile_list": profiles}))
    spawner.user_options = {"profile": "small"}
    await spawner.load_user_options()
    small = await _checked_pod(spawner)
    spawner.user_options = {"profile": "big"}
    await spawner.load_user_options()
    big = await _checked_pod(spawner)
    assert small["spec"]["containers"][0]["image"] == "small:1"
    assert big["spec"]["containers"][0]["image"] == "big:1"
    assert big["spec"]["containers"][0]["resources"]["limits"]["cpu"] == 4.0
