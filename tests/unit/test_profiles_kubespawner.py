"""Profiles on the real KubeSpawner: overrides reach the pod manifest it builds."""

from typing import Any

import pytest
from tornado import web

from async_kubespawner.profiles import STATE_KEY

from .spawner_fakes import make_spawner

PROFILE_LIST: dict[str, Any] = {
    "small": {"display_name": "Small", "default": True},
    "gpu": {
        "display_name": "GPU",
        "kubespawner_override": {
            "namespace": "gpu-users",
            "image": "quay.io/jupyter/pytorch-notebook:cuda12",
            "cpu_limit": 8,
            "mem_guarantee": "16G",
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
            "node_selector": {"gpu": "true"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "volume_mounts": [{"name": "scratch", "mountPath": "/scratch"}],
            "environment": {"FRAMEWORK": "pytorch"},
            "pod_name_template": "gpu-{user_server}",
        },
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {"default": {"display_name": "Default"}},
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": r"^quay\.io/jupyter/[a-z-]+:[\w.-]+$",
                    "kubespawner_override": {
                        "image": "{value}",
                        "extra_labels": {"custom-image": "yes"},
                    },
                },
            }
        },
    },
}


def notebook(pod: Any) -> Any:
    (container,) = [c for c in pod.spec.containers if c.name == "notebook"]
    return container


async def test_profile_reaches_every_part_of_the_pod_manifest() -> None:
    spawner = make_spawner(
        "alice",
        "ml",
        config={
            "profile_list": PROFILE_LIST,
            "node_selector": {"zone": "a"},
            "environment": {"SITE": "x"},
        },
    )
    before = spawner.pod_name
    spawner.user_options = {
        "profile": "gpu",
        "image--unlisted-choice": "quay.io/jupyter/julia-notebook:2025",
    }
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    container = notebook(pod)
    assert container.image == "quay.io/jupyter/julia-notebook:2025"
    assert (
        spawner.namespace == "gpu-users"
    )  # the pod is created there (manifests carry no namespace)
    assert pod.metadata.name == spawner.pod_name == "gpu-alice--ml" != before
    assert container.resources.limits == {"cpu": 8.0, "nvidia.com/gpu": "1"}
    assert container.resources.requests == {"memory": 16 * 1024**3}
    assert pod.spec.node_selector == {"zone": "a", "gpu": "true"}
    assert [(t.key, t.operator, t.effect) for t in pod.spec.tolerations] == [
        ("nvidia.com/gpu", "Exists", "NoSchedule")
    ]
    assert [v.name for v in pod.spec.volumes] == ["scratch"]
    assert [(m.name, m.mount_path) for m in container.volume_mounts] == [("scratch", "/scratch")]
    env = {e.name: e.value for e in container.env}
    assert env["FRAMEWORK"] == "pytorch" and env["SITE"] == "x"
    assert pod.metadata.labels["custom-image"] == "yes"
    assert spawner.get_state()[STATE_KEY] == {
        "profile": "gpu",
        "image--unlisted-choice": "quay.io/jupyter/julia-notebook:2025",
    }


async def test_default_profile_leaves_configuration_alone() -> None:
    spawner = make_spawner(config={"profile_list": PROFILE_LIST, "image": "site:1"})
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    assert notebook(pod).image == "site:1"
    assert spawner.profile_selection == {"profile": "small"}


async def test_invalid_choice_on_kubespawner_is_a_400_and_changes_nothing() -> None:
    spawner = make_spawner(config={"profile_list": PROFILE_LIST, "image": "site:1"})
    spawner.user_options = {"profile": "gpu", "image--unlisted-choice": "docker.io/evil:1"}
    with pytest.raises(web.HTTPError) as info:
        await spawner.load_user_options()
    assert info.value.status_code == 400
    assert info.value.log_message is not None
    assert "'image--unlisted-choice'" in info.value.log_message % info.value.args
    assert spawner.image == "site:1" and spawner.namespace != "gpu-users"


async def test_kubespawner_form_uses_upstream_field_names() -> None:
    spawner = make_spawner(config={"profile_list": PROFILE_LIST})
    html = await spawner.get_options_form()
    for name in (
        'name="profile" id="profile-item-small" value="small"',
        'name="profile-option-gpu--image"',
        'name="profile-option-gpu--image--unlisted-choice"',
    ):
        assert name in html
