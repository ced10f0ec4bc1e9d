"""Safe variable substitution: structure is the template's, whatever the values."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from async_kubespawner.objects.slugs import is_valid_dns_label, is_valid_label
from async_kubespawner.operator.models import parse_template_spec
from async_kubespawner.operator.render import (
    ServerContext,
    TemplateInvalid,
    VariableRefused,
    render,
    substitute,
)


def template(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "variables": [
            {"name": "image", "default": "jupyter/base:1"},
            {"name": "note", "maxLength": 10000},
            {"name": "size", "enum": ["small", "large"], "default": "small"},
            {"name": "gpu", "default": ""},
        ],
        "pvcs": [{"id": "home", "name": "claim-{server.slug}",
                  "labels": {"owner": "{user.name}"},
                  "spec": {"accessModes": ["ReadWriteOnce"],
                           "resources": {"requests": {"storage": "1Gi"}}}}],
        "otherResources": [
            {"id": "cfg", "apiVersion": "v1", "kind": "ConfigMap", "name": "cfg-{server.slug}",
             "data": {"note.txt": "{note}", "size": "{size}"}},
            {"id": "gpu-policy", "apiVersion": "v1", "kind": "ConfigMap",
             "name": "gpu-{server.slug}", "condition": {"variable": "gpu", "equals": "yes"},
             "data": {"x": "1"}},
        ],
        "pods": [{"id": "notebook", "name": "jupyter-{server.slug}",
                  "labels": {"component": "singleuser-server", "note": "{note}"},
                  "annotations": {"hub.jupyter.org/note": "{note}"},
                  "spec": {"containers": [{
                      "name": "notebook", "image": "{image}",
                      "args": ["--note={note}", "echo ${HOME}"],
                      "env": [{"name": "NOTE", "value": "{note}"},
                              {"name": "CFG", "value": "{otherResources.cfg.name}"}]}],
                      "volumes": [{"name": "home", "persistentVolumeClaim": {
                          "claimName": "{pvcs.home.name}"}}]}}],
    }
    spec.update(extra)
    return {"spec": spec}


CTX = ServerContext(user="alice", server="", namespace="ns", object_name="alice")


def by_id(children):
    return {c.id: c for c in children}


def test_renders_every_child_in_creation_order_with_cross_references() -> None:
    children = render(parse_template_spec(template()), {"note": "hi"}, CTX)
    assert [(c.group, c.kind, c.name) for c in children] == [
        ("pvcs", "PersistentVolumeClaim", "claim-alice"),
        ("otherResources", "ConfigMap", "cfg-alice"),  # gpu-policy: condition false
        ("pods", "Pod", "jupyter-alice"),
    ]
    pod = by_id(children)["notebook"].manifest
    container = pod["spec"]["containers"][0]
    assert container["image"] == "jupyter/base:1"
    assert container["args"] == ["--note=hi", "echo ${HOME}"]  # ${...} is left alone
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "claim-alice"
    assert container["env"][1] == {"name": "CFG", "value": "cfg-alice"}
    assert by_id(children)["home"].manifest["metadata"]["labels"] == {"owner": "alice"}


def test_condition_includes_a_child() -> None:
    children = render(parse_template_spec(template()), {"gpu": "yes"}, CTX)
    assert "gpu-policy" in by_id(children)


@pytest.mark.parametrize(("given", "variable", "why"), [
    ({"secret": "x"}, "secret", "not declared"),
    ({"size": "huge"}, "size", "must be one of"),
    ({"note": "x" * 10001}, "note", "longer than"),
])
def test_bad_variables_are_refused_naming_the_variable(given, variable, why) -> None:
    with pytest.raises(VariableRefused, match=why) as info:
        render(parse_template_spec(template()), given, CTX)
    assert info.value.variable == variable


def test_pattern_must_match_the_whole_value() -> None:
    spec = template()
    spec["spec"]["variables"][0]["pattern"] = "jupyter/[a-z]+:[0-9]+"
    t = parse_template_spec(spec)
    assert render(t, {"image": "jupyter/scipy:2"}, CTX)
    with pytest.raises(VariableRefused, match="pattern") as info:
        render(t, {"image": "jupyter/scipy:2\nevil/image:1"}, CTX)
    assert info.value.variable == "image"


def test_required_variable() -> None:
    spec = template()
    spec["spec"]["variables"].append({"name": "project", "required": True})
    with pytest.raises(VariableRefused, match="required"):
        render(parse_template_spec(spec), {}, CTX)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda s: s["pods"][0]["spec"]["containers"][0].update(image="{nope}"), "neither"),
    (lambda s: s["pods"][0].update(name="x-{pvcs.home.name}"), "cross-reference"),
    (lambda s: s["pods"][0]["spec"].update(x="{pvcs.nothing.name}"), "no child"),
    (lambda s: s["pods"][0]["spec"].update(x="{otherResources.gpu-policy.name}"), "condition"),
    (lambda s: s.update(pods=[]), "no pods"),
    (lambda s: s["pvcs"].append(dict(s["pvcs"][0])), "two entries"),
])
def test_template_errors(mutate, message) -> None:
    spec = template()
    mutate(spec["spec"])
    with pytest.raises(TemplateInvalid, match=message):
        render(parse_template_spec(spec), {}, CTX)


def test_values_are_inserted_once_never_rescanned() -> None:
    assert substitute("a{x}b", lambda n: "{user.name}") == "a{user.name}b"


def shape(value: Any) -> Any:
    """The structure of a JSON tree: keys, list lengths and types, not string contents."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


# Non-empty: an annotation left empty by its placeholders is omitted, by design (see
# test_annotation_left_empty_is_omitted).
hostile = st.one_of(
    st.text(min_size=1, max_size=300),
    st.sampled_from([
        '", "privileged": true, "x": "', "}\n  hostNetwork: true\n", "{user.name}",
        "{pvcs.home.name}", "${HOME}", "'; rm -rf / #", "\x00\u202e", "a: [1, 2]",
        '{"spec": {"hostPID": true}}', "---\nkind: Pod\n",
    ]),
)
names = st.text(min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(note=hostile, user=names, server=st.one_of(st.just(""), names))
def test_hostile_values_never_change_the_structure(note: str, user: str, server: str) -> None:
    t = parse_template_spec(template())
    ctx = ServerContext(user=user, server=server, namespace="ns", object_name="o")
    benign = render(t, {"note": "hello"}, CTX)
    children = render(t, {"note": note}, ctx)
    assert [shape(c.manifest) for c in children] == [shape(c.manifest) for c in benign]
    for child in children:
        assert is_valid_dns_label(child.name)
        for value in (child.manifest["metadata"].get("labels") or {}).values():
            assert is_valid_label(value)
        # the serialized object parses back to the very same tree (the serializer escapes)
        assert json.loads(json.dumps(child.manifest)) == child.manifest
        assert yaml.safe_load(yaml.safe_dump(child.manifest)) == child.manifest
    pod = by_id(children)["notebook"].manifest
    container = pod["spec"]["containers"][0]
    assert container["env"][0] == {"name": "NOTE", "value": note}  # verbatim
    assert container["args"][0] == f"--note={note}"
    assert pod["metadata"]["annotations"]["hub.jupyter.org/note"] == note
    assert by_id(children)["cfg"].manifest["data"]["note.txt"] == note


@settings(max_examples=300, deadline=None)
@given(a=st.tuples(names, st.one_of(st.just(""), names)),
       b=st.tuples(names, st.one_of(st.just(""), names)))
def test_different_servers_never_share_a_name(a, b) -> None:
    t = parse_template_spec(template())

    def pod_name(user: str, server: str) -> str:
        ctx = ServerContext(user=user, server=server, namespace="ns", object_name="o")
        return by_id(render(t, {}, ctx))["notebook"].name

    if a != b:
        assert pod_name(*a) != pod_name(*b)


def test_annotation_left_empty_is_omitted() -> None:
    children = by_id(render(parse_template_spec(template()), {"note": ""}, CTX))
    assert "annotations" not in children["notebook"].manifest["metadata"]
    assert children["notebook"].manifest["metadata"]["labels"]["note"] == ""


@settings(max_examples=150, deadline=None)
@given(user=names, server=st.one_of(
    st.just(""),
    st.sampled_from(["Work", "a.b", "données-été", "x--y", "ok", "-lead", "9lives", "a" * 60]),
    names))
def test_server_name_slug_is_the_in_hub_servername(user: str, server: str) -> None:
    """``{server.name.slug}`` is what the in-hub spawner puts for ``{servername}`` (and
    ``{safe_servername}``) in a name or a label, for any user and server name."""
    from async_kubespawner import KubeSpawner
    from async_kubespawner.testing import build_spawner

    spawner = build_spawner(KubeSpawner, user, servername=server)
    in_hub = spawner._expand_user_properties("{servername}")
    assert spawner._expand_user_properties("{safe_servername}") == in_hub
    ctx = ServerContext(user=user, server=server, namespace="ns", object_name="o")
    assert ctx.builtins(8888)["server.name.slug"] == in_hub
    if server == "":
        assert in_hub == ""
    else:
        assert is_valid_dns_label(in_hub) and is_valid_label(in_hub)


def test_server_name_slug_examples() -> None:
    def slug(server: str) -> str:
        ctx = ServerContext(user="alice", server=server, namespace="ns", object_name="o")
        return ctx.builtins(8888)["server.name.slug"]

    assert slug("") == ""
    assert slug("work") == "work"  # a valid name is kept
    # capitals, dots, non-ASCII and the "--" separator are slugged with a hash, so that
    # "Work" and "work" (or "a.b" and "a-b") never share a claim or a label value
    for name, stem in (("Work", "work"), ("a.b", "a-b"), ("données", "donn-es"),
                       ("x--y", "x-y")):
        value = slug(name)
        assert value.startswith(f"{stem}---") and len(value) == len(stem) + 11, value
    assert len({slug(n) for n in ("Work", "work", "WORK", "a.b", "a-b")}) == 5


def test_server_name_slug_values_the_migration_page_shows() -> None:
    def slug(server: str) -> str:
        ctx = ServerContext(user="alice", server=server, namespace="ns", object_name="o")
        return ctx.builtins(8888)["server.name.slug"]

    assert (slug("Work"), slug("a.b")) == ("work---104ab921", "a-b---2e7336dc")
