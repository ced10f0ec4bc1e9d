"""The start path's shortcuts give exactly what the ordinary path gives.

The shortcuts: static trait defaults handed out once per class (traits/fast_defaults.py),
``to_dict``'s exact-type paths, remembered answers of the API server's string rules
(objects/api_rules.py), the owner annotation and the reflector settings built once per
value. Each is compared with the ordinary path it replaces: traitlets' own first read, the
generic conversion, the rule functions themselves. The pod a start would create (and the
error a bad configuration gets) is compared byte for byte over a sweep of configurations
and hostile user names, with every shortcut off for the reference.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import kubernetes_asyncio.client as k8s
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from traitlets import HasTraits, List, default

from async_kubespawner import KubeSpawner
from async_kubespawner import spawner as spawner_module
from async_kubespawner.lifecycle import preflight
from async_kubespawner.lifecycle.preflight import check_before_create, take_checked_pod
from async_kubespawner.objects import api_rules, manifests
from async_kubespawner.objects.identity import (
    IDENTITY_VERSION,
    Scope,
    ServerIdentity,
    uniqueness_problem,
)
from async_kubespawner.objects.slugs import expand_template
from async_kubespawner.testing import build_spawner, kubespawner_config
from async_kubespawner.traits import settings as settings_module
from async_kubespawner.traits.errors import SpawnerConfigError
from async_kubespawner.traits.fast_defaults import fill_static_defaults
from async_kubespawner.traits.settings import START_TRAITS
from tests.unit.manifest_shapes import rich_pod_settings

# -- the ordinary paths, as they were -------------------------------------------------


def generic_to_dict(value: Any) -> Any:
    """``to_dict`` without its shortcuts: the generic checks for every node."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [generic_to_dict(item) for item in value]
    if isinstance(value, Mapping):
        return {k: generic_to_dict(v) for k, v in value.items()}
    if hasattr(value, "openapi_types") and hasattr(value, "attribute_map"):
        result = {}
        for attribute, json_key in value.attribute_map.items():
            item = getattr(value, attribute)
            if item is not None:
                result[json_key] = generic_to_dict(item)
        return result
    return value


def printable_ascii_without_equals(name: str) -> bool:
    """The environment-name rule as the API server states it."""
    return bool(name) and "=" not in name and all(32 <= ord(ch) < 127 for ch in name)


REMEMBERED_RULES = ("dns1123_label_errors", "qualified_name_errors", "label_value_errors")


def generic_model_to_dict(value: Any) -> dict[str, Any]:
    """A model's fields through its properties, as the conversion always read them."""
    result = {}
    for attribute, json_key in value.attribute_map.items():
        item = getattr(value, attribute)
        if item is not None:
            result[json_key] = manifests.to_dict(item)
    return result


def reference_build_env(env: Mapping[str, Any], where: str = "environment") -> list[Any]:
    """``build_env`` as it was: every value through the generic checks."""
    result = []
    for name in manifests.order_env(env):
        value = env[name]
        if isinstance(value, Mapping):
            spec = dict(value)
            spec.setdefault("name", name)
            result.append(manifests.shallow_model(k8s.V1EnvVar, spec, f"{where}[{name!r}]"))
        else:
            result.append(
                k8s.V1EnvVar(name=name, value=value if isinstance(value, str) else str(value))
            )
    return result


def reference_check_name_uniqueness(spawner: KubeSpawner) -> None:
    """The uniqueness check as it was, every template parsed at every call."""
    named = spawner._named_servers_allowed()
    inherited = spawner._inherited_fields()
    checks = [("pod_name_template", spawner.pod_name_template)]
    if spawner.needs_secret:
        checks.append(("secret_name_template", spawner.secret_name_template))
    for setting, template in checks:
        problem = uniqueness_problem(
            template,
            named_servers=named,
            inherited=inherited,
            context=spawner._namespace_fields(),
        )
        if problem:
            raise SpawnerConfigError(
                setting,
                template,
                f"{problem}, so one server would stop or replace another's objects",
                "Include {user_server} (user and server), or {username} or {userid} "
                "and, when named servers are allowed, {servername}"
                + (
                    "; {pod_name} is unique when pod_name_template is"
                    if setting == "secret_name_template"
                    else ""
                )
                + ".",
            )


@contextmanager
def ordinary_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every shortcut off: traitlets computes each default, the generic conversion and
    the rule functions themselves answer."""
    with monkeypatch.context() as patch:
        patch.setattr(settings_module, "fill_static_defaults", lambda obj, names: None)
        patch.setattr(spawner_module, "fill_static_defaults", lambda obj, names: None)
        patch.setattr(preflight, "to_dict", generic_to_dict)
        patch.setattr(manifests, "_model_to_dict", generic_model_to_dict)
        patch.setattr(manifests, "build_env", reference_build_env)
        patch.setattr(KubeSpawner, "check_name_uniqueness", reference_check_name_uniqueness)
        for name in REMEMBERED_RULES:
            patch.setattr(api_rules, name, getattr(api_rules, name).__wrapped__)
        refused = api_rules.env_name_errors("=")
        patch.setattr(
            api_rules,
            "env_name_errors",
            lambda name: [] if printable_ascii_without_equals(name) else list(refused),
        )
        yield


# -- trait defaults -------------------------------------------------------------------


def _spawner(user: str = "alice", config: dict[str, Any] | None = None, **kw: Any) -> KubeSpawner:
    return build_spawner(KubeSpawner, user, 7, config=kubespawner_config(config or {}), **kw)


ALL_TRAITS = tuple(sorted(KubeSpawner.class_trait_names()))


def _comparable(values: list[Any], owners: list[KubeSpawner]) -> list[Any]:
    """A default that is a method of its own spawner compares by function."""
    return [
        ("own method", v.__func__) if inspect.ismethod(v) and v.__self__ is owner else v
        for v, owner in zip(values, owners, strict=True)
    ]


def test_filled_defaults_equal_traitlets_first_reads_for_every_setting() -> None:
    """For every trait of the class: the same value and type, and the same sharing (one
    object for every instance where traitlets shares it, a copy each otherwise)."""
    plain = [_spawner("alice"), _spawner("bob")]
    filled = [_spawner("alice"), _spawner("bob")]
    for spawner in filled:
        fill_static_defaults(spawner, ALL_TRAITS)
    for name in ALL_TRAITS:
        if name in ("config", "parent", "log", "db", "hub", "user", "orm_spawner"):
            continue  # the hub's objects, not settings
        expected = [getattr(s, name) for s in plain]
        got = [getattr(s, name) for s in filled]
        assert _comparable(got, filled) == _comparable(expected, plain), name
        assert [type(v) for v in got] == [type(v) for v in expected], name
        shared = expected[0] is expected[1] and not isinstance(
            expected[0], str | int | float | bool | type(None)
        )
        if shared:
            assert got[0] is got[1], name
        elif isinstance(expected[0], list | dict | set):
            assert got[0] is not got[1], f"{name}: each instance needs its own container"


def test_a_filled_default_container_is_each_instances_own() -> None:
    first, second = _spawner("alice"), _spawner("bob")
    for spawner in (first, second):
        fill_static_defaults(spawner, START_TRAITS)
    first.extra_labels["team"] = "a"  # an in-place edit, as hooks do
    first.common_labels["x"] = "y"
    assert second.extra_labels == {} and "x" not in second.common_labels
    assert "x" not in _spawner("carol").common_labels


def test_configured_and_assigned_values_are_left_alone() -> None:
    spawner = _spawner(config={"volumes": [{"name": "v", "emptyDir": {}}]})
    spawner.extra_labels = {"set": "by-a-hook"}
    fill_static_defaults(spawner, START_TRAITS)
    assert spawner.volumes == [{"name": "v", "emptyDir": {}}]
    assert spawner.extra_labels == {"set": "by-a-hook"}


class _Dynamic(KubeSpawner):
    """A deployment's subclass with an instance-dependent default."""

    @default("extra_labels")
    def _per_user_labels(self) -> dict[str, str]:
        return {"who": self.user.name}


def test_dynamic_defaults_of_a_subclass_are_computed_per_instance() -> None:
    spawners = [build_spawner(_Dynamic, name, config=kubespawner_config({})) for name in "ab"]
    for spawner in spawners:
        fill_static_defaults(spawner, START_TRAITS)
    assert [s.extra_labels for s in spawners] == [{"who": "a"}, {"who": "b"}]


def test_an_observer_of_default_events_still_hears_them() -> None:
    spawner = _spawner()
    heard: list[str] = []
    spawner.observe(lambda change: heard.append(change["name"]), "tolerations", type="default")
    fill_static_defaults(spawner, START_TRAITS)
    assert heard == ["tolerations"]
    assert spawner.tolerations == []


class _Plain(HasTraits):
    items = List([1, 2])


def test_unknown_names_are_skipped_and_a_second_call_is_a_no_op() -> None:
    plain = _Plain()
    names = ("items", "not_a_trait")
    fill_static_defaults(plain, names)
    assert plain.items == [1, 2] and plain.items is not _Plain().items
    plain.items.append(3)
    fill_static_defaults(plain, names)
    assert plain.items == [1, 2, 3]
    assert not hasattr(plain, "not_a_trait")


# -- conversions and rules ---------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    | st.tuples(inner, inner),
    max_leaves=20,
)


@given(json_values)
def test_to_dict_equals_the_generic_conversion_on_json(value: Any) -> None:
    converted = manifests.to_dict(value)
    assert converted == generic_to_dict(value)
    assert repr(converted) == repr(generic_to_dict(value))  # the same types too


def test_to_dict_equals_the_generic_conversion_on_a_rich_pod() -> None:
    pod = manifests.build_pod_manifest(rich_pod_settings())
    assert orjson.dumps(manifests.to_dict(pod)) == orjson.dumps(generic_to_dict(pod))
    # a model subclass (a deployment's own) converts as its base does
    env = type("MyEnvVar", (k8s.V1EnvVar,), {})(name="A", value="1")
    assert manifests.to_dict([env, env]) == [{"name": "A", "value": "1"}] * 2


rule_inputs = st.text(max_size=80) | st.sampled_from(
    ["", "a", "app.kubernetes.io/name", "a/b/c", "/x", "x/", "-a", "a" * 64, "é", "a=b"]
)


@given(rule_inputs)
def test_remembered_rules_answer_as_the_rules_do(value: str) -> None:
    for name in REMEMBERED_RULES:
        rule = getattr(api_rules, name)
        first, second = rule(value), rule(value)
        assert first == second == rule.__wrapped__(value), name
        assert first is not second  # each caller owns its list


@given(st.text(max_size=40) | st.sampled_from(["A\n", "A=B", "", " ", "~", "\x7f"]))
def test_env_name_rule_is_printable_ascii_without_equals(name: str) -> None:
    assert (api_rules.env_name_errors(name) == []) == printable_ascii_without_equals(name)


@given(st.text(), st.text(), st.text(), st.sampled_from(list(Scope)))
def test_owner_annotation_is_the_json_of_the_identity(
    hub: str, user: str, server: str, scope: Scope
) -> None:
    identity = ServerIdentity(hub=hub, user=user, server=server)
    expected = {"v": IDENTITY_VERSION, "hub": hub, "user": user, "server": server}
    expected["scope"] = scope.value
    assert orjson.loads(identity.annotation(scope)) == expected
    assert identity.annotation(scope).isascii()


class _ShoutingEnvVar(k8s.V1EnvVar):
    """A deployment's model subclass whose property computes its field."""

    @property
    def value(self) -> str:
        return str(self._value).upper()

    @value.setter
    def value(self, value: str) -> None:
        self._value = value


def test_to_dict_reads_a_subclass_through_its_properties() -> None:
    assert manifests.to_dict(_ShoutingEnvVar(name="A", value="x")) == {"name": "A", "value": "X"}
    plain = k8s.V1EnvVar(name="A", value="x")
    plain.value = "set by a hook"  # through the setter, as hooks do
    assert manifests.to_dict(plain) == generic_model_to_dict(plain)


templates = st.sampled_from(
    ["jupyter-{user_server}", "nb-{username}", "nb-{username}--{servername}", "shared",
     "{pod_name}", "{pod_name}-secret", "{userid}", "x-{namespace}", "bad{", "{a.b}"]
)  # fmt: skip


@settings(max_examples=150)
@given(
    templates, templates, st.sampled_from(["{username}", "hub", "u-{userid}", "bad{"]),
    st.booleans(), st.booleans(), st.booleans(), st.sampled_from(["", "lab"]),
)  # fmt: skip
def test_name_uniqueness_answers_as_it_did(
    pod: str, secret: str, namespace: str, in_secret: bool, per_user: bool, named: bool, server: str
) -> None:
    """Remembered per combination of templates: the same refusals (and the same parse
    errors) as the check that parsed every template at every call, twice in a row."""
    spawner = _spawner("alice", servername=server)
    spawner.user.allow_named_servers = named
    # Written past the traits' validation, as a template refused at load time is kept.
    spawner._trait_values.update(
        pod_name_template=pod,
        secret_name_template=secret,
        user_namespace_template=namespace,
        api_token_in_secret=in_secret,
        enable_user_namespaces=per_user,
    )

    def outcome(check: Any) -> str:
        try:
            check()
        except (SpawnerConfigError, ValueError) as e:
            return f"{type(e).__name__}: {e}"
        return "ok"

    expected = outcome(lambda: reference_check_name_uniqueness(spawner))
    assert outcome(spawner.check_name_uniqueness) == expected
    assert outcome(spawner.check_name_uniqueness) == expected


def test_api_settings_follow_the_settings_they_are_built_from() -> None:
    spawner = _spawner()
    assert spawner._api_settings() is _spawner("bob")._api_settings()  # shared when alike
    spawner.k8s_api_request_timeout = 7
    spawner.k8s_api_max_concurrent_requests = 3
    spawner.k8s_api_verify_ssl = False
    got = spawner._api_settings()
    assert (got.request_timeout, got.max_concurrent_requests, got.verify_ssl) == (7.0, 3, False)
    assert type(got.request_timeout) is float


def test_reflector_settings_follow_the_settings_they_are_built_from() -> None:
    spawner = _spawner()
    before = spawner._pod_reflector_settings()
    assert before is _spawner("bob")._pod_reflector_settings()  # shared when alike
    spawner.reflector_watch_timeout = 17  # a hook or a profile changes it
    after = spawner._pod_reflector_settings()
    assert after.watch_timeout == 17 and after.partial_first_list
    assert spawner._reflector_settings().watch_timeout == 17
    spawner.reflector_list_page_size = 20
    assert spawner._pod_reflector_settings().first_page_size == 20
    spawner.reflector_idle_timeout = 300.0
    assert spawner._reflector_settings().idle_timeout == 300.0


# -- the pod a start creates, before and after --------------------------------------------


class _NoApi:
    async def get_or_none(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return {"metadata": {"name": "exists"}}


async def _checked_pod(spawner: KubeSpawner) -> bytes | str:
    """What a start sends (the pod after its checks, encoded), or the error it raises."""
    try:
        await spawner.load_user_options()  # the profile step, which fills defaults first
        spawner._start_plan()
        spawner._configuration_checked = True
        await check_before_create(spawner, _NoApi())  # type: ignore[arg-type]
    except SpawnerConfigError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        spawner._configuration_checked = False
    pod = take_checked_pod(spawner)
    assert pod is not None
    return orjson.dumps(pod)


label_values = st.sampled_from(["{username}", "{safe_username}", "x", "bad value!", "", "a" * 70])
configs = st.fixed_dictionaries(
    {},
    optional={
        "image": st.sampled_from(["lab:1", "registry.example/lab:2", " lab:1"]),
        "environment": st.dictionaries(
            st.sampled_from(["A", "B", "HOME_DIR", "BAD=NAME", "é"]),
            st.sampled_from(["x", "$(A)/y", "/home/{username}", "{bad", "$(B)"]),
            max_size=4,
        ),
        "extra_labels": st.dictionaries(
            st.sampled_from(["team", "example.org/who", "bad key!"]), label_values, max_size=2
        ),
        "extra_annotations": st.dictionaries(
            st.sampled_from(["note", "example.org/x"]), st.text(max_size=10), max_size=2
        ),
        "volumes": st.sampled_from(
            [[], [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]]
        ),
        "volume_mounts": st.sampled_from(
            [[], [{"name": "home", "mountPath": "/home/{username}"}]]
        ),
        "tolerations": st.sampled_from(
            [[], [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]]
        ),
        "cpu_limit": st.sampled_from([None, 0.5, 2.0]),
        "mem_limit": st.sampled_from([None, "1G", "512M"]),
        "uid": st.sampled_from([None, 0, 1000]),
        "security_profile": st.sampled_from(["", "baseline", "restricted"]),
        "services_enabled": st.booleans(),
        "api_token_in_secret": st.booleans(),
        "node_selector": st.sampled_from([{}, {"pool": "users"}, {"pool": "bad value!"}]),
        "init_containers": st.sampled_from([[], [{"name": "init", "image": "busybox:1"}]]),
        "pod_name_template": st.sampled_from(["jupyter-{user_server}", "nb-{username}--{servername}"]),
        "profile_list": st.sampled_from(
            [
                [],
                [
                    {
                        "display_name": "labelled",
                        "default": True,
                        "kubespawner_override": {
                            "extra_labels": {"size": "{username}"},
                            "tolerations": [{"key": "gpu", "operator": "Exists"}],
                            "environment": {"FROM_PROFILE": "1"},
                        },
                    },
                    {"display_name": "plain"},
                ],
            ]
        ),
    },
)
user_names = st.sampled_from(["alice", "Bob.Smith", "é", "a" * 70, "x--y", "user@example.org"])


@settings(max_examples=60)
@given(configs, user_names, st.sampled_from(["", "lab", "Lab 2"]))
async def test_the_pod_sent_is_byte_identical_to_the_ordinary_paths(
    config: dict[str, Any], user: str, server: str
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        with ordinary_path(monkeypatch):
            expected = await _checked_pod(_spawner(user, config, servername=server))
    got = await _checked_pod(_spawner(user, config, servername=server))
    assert got == expected
    # and again on a spawner that has started before (everything remembered is warm)
    warm = _spawner(user, config, servername=server)
    await _checked_pod(warm)
    warm.clear_state()
    warm.api_token = f"token-of-{user}"  # the hub gives each spawn a token again
    assert await _checked_pod(warm) == expected


async def test_hooks_and_profiles_change_what_is_sent_after_defaults_were_filled() -> None:
    """A start after another: what a pre_spawn_hook, a profile override or a
    modify_pod_hook sets between spawns is in the next pod (filled defaults and
    remembered answers never stand in for a setting changed since)."""
    spawner = _spawner(
        config={
            "profile_list": [
                {"display_name": "small", "slug": "small", "default": True},
                {
                    "display_name": "gpu",
                    "slug": "gpu",
                    "kubespawner_override": {
                        "tolerations": [{"key": "gpu", "operator": "Exists"}],
                        "extra_labels": {"size": "gpu"},
                    },
                },
            ]
        }
    )
    await spawner.load_user_options()
    first = orjson.loads(await _checked_pod(spawner))
    assert "tolerations" not in first["spec"] and "size" not in first["metadata"]["labels"]

    spawner.clear_state()
    spawner.user_options = {"profile": "gpu"}
    await spawner.load_user_options()

    def pre_spawn_hook(s: KubeSpawner) -> None:
        s.node_selector = {"pool": "gpu"}
        s.environment = {"FROM_HOOK": "{username}"}

    def modify_pod_hook(s: KubeSpawner, pod: k8s.V1Pod) -> k8s.V1Pod:
        pod.metadata.labels["hooked"] = "yes"
        return pod

    spawner.pre_spawn_hook = pre_spawn_hook
    spawner.modify_pod_hook = modify_pod_hook
    await spawner.run_pre_spawn_hook()
    second = orjson.loads(await _checked_pod(spawner))
    assert second["spec"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert second["metadata"]["labels"]["size"] == "gpu"
    assert second["metadata"]["labels"]["hooked"] == "yes"
    assert second["spec"]["nodeSelector"] == {"pool": "gpu"}
    env = {e["name"]: e.get("value") for e in second["spec"]["containers"][0]["env"]}
    assert env["FROM_HOOK"] == "alice"
    # another spawner of the same hub is not affected by this one's hooks
    other = orjson.loads(await _checked_pod(_spawner("bob")))
    assert "hooked" not in other["metadata"]["labels"] and "nodeSelector" not in other["spec"]


async def test_a_bad_setting_is_still_refused_before_anything_is_created() -> None:
    """Remembered rule answers never let a value through that the rule refuses: the
    second spawner with the same bad configuration is refused as the first was."""
    config = {"extra_labels": {"team": "not a valid value!"}, "environment": {"A=B": "x"}}
    errors = [await _checked_pod(_spawner(name, config)) for name in ("alice", "bob")]
    for error in errors:
        assert isinstance(error, str) and error.startswith("SpawnerConfigError")
        assert "extra_labels" in error
    env_only = [await _checked_pod(_spawner(n, {"environment": {"A=B": "x"}})) for n in "ab"]
    for error in env_only:
        assert isinstance(error, str) and "environment variable name" in error


def test_expansion_values_follow_names_namespace_user_and_scheme() -> None:
    """The values templates are filled with are kept between expansions only while
    what they come from is unchanged."""
    template = "{username}|{servername}|{namespace}|{pod_name}|{pvc_name}"
    spawner = _spawner("alice")

    def fresh() -> str:
        return expand_template(template, spawner._template_namespace())

    assert spawner._expand_user_properties(template) == fresh()
    spawner.namespace = "other"
    assert spawner._expand_user_properties(template).split("|")[2] == "other"
    spawner.pod_name = "chosen-by-a-hook"
    assert spawner._expand_user_properties(template).split("|")[3] == "chosen-by-a-hook"
    spawner.pvc_name = "claim-from-a-profile"
    assert spawner._expand_user_properties(template) == fresh()
    spawner.user.name = "bob"
    assert spawner._expand_user_properties(template).startswith("bob|")
    spawner.slug_scheme = "escape"
    assert spawner._expand_user_properties(template) == fresh()
    assert spawner._expand_user_properties("{username}", slug_scheme="safe") == "bob"


async def test_the_hot_path_benchmark_measures_prepared_starts_and_stops() -> None:
    from benchmarks.spawner_hot_path import measure

    figures = await measure({}, 3)
    for part in ("prepare_us", "stop_us"):
        assert figures[part]["median"] > 0 and figures[part]["mean"] > 0


saved_states = st.sampled_from(
    [
        {},
        {"pod_name": "saved-pod", "dns_name": "saved-pod.ns.svc", "pvc_name": "saved-claim"},
        {"pod_name": "saved-pod", "kubespawner_version": "7.0.0"},
        {"pvc_name": "claim-{username}"},
    ]
)


@settings(max_examples=60)
@given(configs, user_names, st.sampled_from(["", "lab", "Lab 2"]), saved_states)
def test_the_names_a_start_assigns_are_the_names_computed_again(
    config: dict[str, Any], user: str, server: str, state: dict[str, str]
) -> None:
    """The start plan keeps the names it assigned instead of computing them again: they
    are exactly what a fresh computation from the assigned names gives (with and
    without names remembered in the server's state)."""
    spawner = _spawner(user, config, servername=server)
    spawner.load_state(dict(state))
    try:
        spawner._start_plan()
    except SpawnerConfigError:
        return  # refused before anything was assigned
    kept = spawner.names
    spawner._names_cache = None
    assert spawner.names == kept
