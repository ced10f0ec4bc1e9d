"""Slug schemes and template fields.

Expected names are derived by hand from the scheme's rules (see the reference), with
``h(...)`` standing for "first 8 hex characters of sha256 of the UTF-8 bytes"; a few
literal values are the published outputs of upstream's own slug tests, which our
implementation must reproduce exactly for a migrating hub to find its objects.
"""

from __future__ import annotations

import hashlib

import pytest

from async_kubespawner.objects.slugs import (
    FilledTemplate,
    TemplateError,
    TemplateFields,
    escape_slug,
    expand_template,
    fill_value,
    is_valid_default_name,
    is_valid_dns_label,
    is_valid_dns_subdomain,
    is_valid_label,
    multi_slug,
    safe_label_value,
    safe_slug,
    strip_and_hash,
    template_field_names,
)
from tests.unit.spawner_fakes import make_spawner


def h(*names: str) -> str:
    return hashlib.sha256(b"\xff".join(n.encode("utf-8") for n in names)).hexdigest()[:8]


# Published upstream outputs for the same inputs (facts a migrating hub depends on).
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("jupyter-alex", "jupyter-alex"),
        ("jupyter-Alex", "jupyter-alex---3a1c285c"),
        ("jupyter-üni", "jupyter-ni---a5aaf5dd"),
        ("endswith-", "endswith---165f1166"),
        ("user@email.com", "user-email-com---0925f997"),
        ("user-_@_emailß.com", "user-email-com---7e3a7efd"),
        ("has.dot", "has-dot---03e27fdf"),
        ("z9", "z9"),
        ("9z9", "x-9z9---224de202"),
        ("-start", "start---f587e2dc"),
        ("üser", "ser---73506260"),
        ("username--servername", "username-servername---d957f1de"),
        ("start---f587e2dc", "start-f587e2dc---cc5bb9c9"),
        ("x" * 63, "x" * 63),
    ],
)
def test_safe_slug_matches_upstream_outputs(name: str, expected: str) -> None:
    assert safe_slug(name) == expected


def test_safe_slug_length_limits() -> None:
    assert safe_slug("x" * 64) == "x" * 21 + "---" + h("x" * 64)
    assert safe_slug("a" * 48, max_length=48) == "a" * 48
    assert safe_slug("a" * 49, max_length=48) == "a" * 37 + "---" + h("a" * 49)
    assert len(safe_slug("a" * 49, max_length=48)) == 48


def test_strip_and_hash_rules() -> None:
    # leading digit: x- prefix, body cut to L-13 first
    assert strip_and_hash("1" * 40, 32) == "x-" + "1" * 19 + "---" + h("1" * 40)
    # nothing usable left: body "x"
    assert strip_and_hash("@@@", 32) == "x---" + h("@@@")
    # a cut that ends on "-" loses the "-"
    assert strip_and_hash("abcdefghijklmnopqrst.uvw", 32) == "abcdefghijklmnopqrst---" + h(
        "abcdefghijklmnopqrst.uvw"
    )


def test_multi_slug_rules() -> None:
    # 39 // 2 - 2 = 17 characters per name, one hash over both separated by 0xff
    slug = multi_slug(["alice", "s" * 60])
    assert slug == "alice--" + "s" * 17 + "---" + h("alice", "s" * 60)
    slug = multi_slug(["9" * 30, "b" * 30])
    assert slug == "x-" + "9" * 15 + "--" + "b" * 17 + "---" + h("9" * 30, "b" * 30)


def test_escape_slug() -> None:
    assert escape_slug("alice") == "alice"
    assert escape_slug("Alice") == "-41lice"
    assert escape_slug("josé") == "jos-c3-a9"
    assert escape_slug("a-b") == "a-2db"


# (username, servername) -> (safe pod name, escape pod name), by hand from the rules.
TRICKY_NAMES = [
    ("alice", "", "jupyter-alice", "jupyter-alice"),
    ("Alice", "", "jupyter-alice---" + h("Alice"), "jupyter--41lice"),
    ("bob", "", "jupyter-bob", "jupyter-bob"),
    ("Bob", "", "jupyter-bob---" + h("Bob"), "jupyter--42ob"),
    ("alice.smith", "", "jupyter-alice-smith---" + h("alice.smith"), "jupyter-alice-2esmith"),
    (
        "alice@example.com",
        "",
        "jupyter-alice-example-com---" + h("alice@example.com"),
        "jupyter-alice-40example-2ecom",
    ),
    ("josé", "", "jupyter-jos---" + h("josé"), "jupyter-jos-c3-a9"),
    ("1alice", "", "jupyter-x-1alice---" + h("1alice"), "jupyter-1alice"),
    ("a--b", "", "jupyter-a-b---" + h("a--b"), "jupyter-a-2d-2db"),
    # a 48-character user slug plus "--" overflows 48 even without a server name:
    # multi-slug over (name, "") with "x" for the empty part, as upstream does
    ("a" * 70, "", "jupyter-" + "a" * 17 + "--x---" + h("a" * 70, ""), "jupyter-" + "a" * 70),
    ("b" * 46, "", "jupyter-" + "b" * 46, "jupyter-" + "b" * 46),
    ("b" * 47, "", "jupyter-" + "b" * 17 + "--x---" + h("b" * 47, ""), "jupyter-" + "b" * 47),
    (
        "alice",
        "My Server",
        "jupyter-alice--my-server---" + h("My Server"),
        "jupyter-alice---4dy-20-53erver",
    ),
    ("alice", "1", "jupyter-alice--x-1---" + h("1"), "jupyter-alice--1"),
    (
        "alice",
        "s" * 60,
        "jupyter-alice--" + "s" * 17 + "---" + h("alice", "s" * 60),
        "jupyter-alice--" + "s" * 60,
    ),
    (
        "a" * 30,
        "b" * 30,
        "jupyter-" + "a" * 17 + "--" + "b" * 17 + "---" + h("a" * 30, "b" * 30),
        "jupyter-" + "a" * 30 + "--" + "b" * 30,
    ),
    ("alice", "gpu", "jupyter-alice--gpu", "jupyter-alice--gpu"),
]


@pytest.mark.parametrize(("user", "server", "safe", "escape"), TRICKY_NAMES)
def test_pod_names_for_tricky_names(user: str, server: str, safe: str, escape: str) -> None:
    assert make_spawner(user, server).pod_name == safe
    assert make_spawner(user, server, config={"slug_scheme": "escape"}).pod_name == escape


@pytest.mark.parametrize(("user", "server", "safe", "escape"), TRICKY_NAMES)
def test_safe_names_are_always_valid(user: str, server: str, safe: str, escape: str) -> None:
    spawner = make_spawner(user, server)
    assert is_valid_dns_label(spawner.pod_name)
    assert is_valid_dns_label(spawner.pvc_name)
    labels = spawner._build_pod_labels({})
    assert all(is_valid_label(v) for v in labels.values())


def test_names_differing_only_in_case_stay_apart() -> None:
    names = {make_spawner(u).pod_name for u in ("bob", "Bob", "BOB", "bOb")}
    assert len(names) == 4
    names = {make_spawner(u, config={"slug_scheme": "escape"}).pod_name for u in ("bob", "Bob")}
    assert len(names) == 2


def test_pvc_name_follows_the_same_slug() -> None:
    assert make_spawner("Alice", "gpu").pvc_name == "claim-alice---" + h("Alice") + "--gpu"


def test_label_values() -> None:
    assert safe_label_value("Alice") == "Alice"  # uppercase is fine in a label
    assert safe_label_value("alice@example.com") == "alice-example-com---" + h("alice@example.com")
    assert safe_label_value("") == ""
    assert safe_label_value("a--b") == "a-b---" + h("a--b")
    spawner = make_spawner("alice@example.com", "My Server")
    labels = spawner._build_pod_labels({})
    assert labels["hub.jupyter.org/username"] == "alice-example-com---" + h("alice@example.com")
    assert labels["hub.jupyter.org/servername"] == "my-server---" + h("My Server")
    # the labels are the same in the escape scheme (upstream 7 uses the safe value)
    escaped = make_spawner("alice@example.com", config={"slug_scheme": "escape"})
    assert escaped._build_pod_labels({})["hub.jupyter.org/username"] == (
        "alice-example-com---" + h("alice@example.com")
    )
    assert escaped.pod_name == "jupyter-alice-40example-2ecom"


def test_template_fields_for_both_schemes() -> None:
    fields = TemplateFields.for_server(
        username="Alice", servername="Lab", userid=3, hub_namespace="default", slug_scheme="safe"
    )
    safe = fields.as_dict()
    assert safe["userid"] == 3
    assert safe["unescaped_username"] == "Alice"
    assert safe["unescaped_servername"] == "Lab"
    assert safe["hubnamespace"] == "user"
    assert safe["username"] == safe["safe_username"] == "alice---" + h("Alice")
    assert safe["servername"] == safe["safe_servername"] == "lab---" + h("Lab")
    assert (
        safe["user_server"]
        == safe["safe_user_server"]
        == ("alice---" + h("Alice") + "--lab---" + h("Lab"))
    )
    assert safe["escaped_username"] == "-41lice"
    assert safe["escaped_servername"] == "-4cab"
    assert safe["escaped_user_server"] == "-41lice---4cab"
    default_server = TemplateFields.for_server(
        username="Alice", servername="", userid=3, hub_namespace="x", slug_scheme="escape"
    )
    # always joined; the trailing "--" goes when a template ends with it
    assert default_server.as_dict()["escaped_user_server"] == "-41lice--"
    assert default_server.as_dict()["user_server"] == "-41lice"
    escape = fields.as_dict("escape")
    assert escape["username"] == "-41lice"
    assert escape["user_server"] == "-41lice---4cab"
    other_ns = TemplateFields.for_server(
        username="a", servername="", userid=1, hub_namespace="jhub", slug_scheme="safe"
    )
    assert other_ns.as_dict()["hubnamespace"] == "jhub"
    assert other_ns.as_dict()["user_server"] == "a"


def test_unknown_slug_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="slug_scheme"):
        TemplateFields.for_server(
            username="a", servername="", userid=1, hub_namespace="x", slug_scheme="md5"
        )


def test_expand_template_drops_trailing_dash() -> None:
    assert (
        expand_template("jupyter-{username}-{servername}", {"username": "a", "servername": ""})
        == "jupyter-a"
    )
    # a "-" the template itself ends with is kept
    assert expand_template("{username}-", {"username": "a"}) == "a-"
    assert template_field_names("{a}-{b}-{{lit}}") == {"a", "b"}


def test_validity_checks() -> None:
    assert is_valid_default_name("a1-b")
    assert not is_valid_default_name("1a")
    assert not is_valid_default_name("a-")
    assert not is_valid_default_name("A")
    assert not is_valid_default_name("a" * 64)
    assert not is_valid_default_name("")
    assert is_valid_label("") and is_valid_label("A.b_c-1")
    assert not is_valid_label("-a") and not is_valid_label("a" * 64) and not is_valid_label("a@b")
    assert is_valid_dns_subdomain("a.b-c") and not is_valid_dns_subdomain("a..b")
    assert not is_valid_dns_label("a.b")


def test_safe_slug_refuses_a_max_length_too_small_for_a_hash() -> None:
    """Upstream's slugs raise ValueError rather than return a slug longer than asked:
    a hashed slug needs 12 characters (one of body, '---', 8 of hash)."""
    with pytest.raises(ValueError, match="max_length=11 is too small"):
        safe_slug("a" * 20, max_length=11)
    with pytest.raises(ValueError, match="too small"):
        safe_slug("a--b", max_length=11)
    assert len(safe_slug("a" * 20, max_length=12)) == 12
    # a name that is valid and fits needs no hash, whatever the limit
    assert safe_slug("abc", max_length=11) == "abc"
    with pytest.raises(ValueError, match="too small for a slug of 2 names"):
        multi_slug(["alice", "work"], max_length=16)
    assert len(multi_slug(["alice", "work"], max_length=17)) <= 17


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{userid:>50000000}", "format spec"),
        ("{username!r}", "format spec or conversion"),
        ("{username.__class__}", "not a plain field name"),
        ("{username[0]}", "not a plain field name"),
        ("{}", "not a plain field name"),
        ("{0}", "not a plain field name"),
        ("{username", "unbalanced braces"),
    ],
)
def test_templates_substitute_plain_fields_only(template: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        expand_template(template, {"username": "alice", "userid": 7})
    with pytest.raises(ValueError):  # TemplateError is a ValueError, as format's errors were
        template_field_names(template)


def test_field_values_are_inserted_as_text_never_parsed() -> None:
    fields = {"username": "{userid:>50000000}", "userid": 7}
    assert expand_template("jupyter-{username}", fields) == "jupyter-{userid:>50000000}"


def test_fill_value_unescapes_like_upstream_and_keeps_user_text_literal() -> None:
    filled = fill_value("${{X}}-{value}-{username}", "v")
    assert filled == "${X}-v-{username}"  # what upstream shows in spawner.<setting>
    hostile = fill_value("img-{value}", "{username}{{}}{userid:>99}")
    assert hostile == "img-{username}{{}}{userid:>99}"
    assert isinstance(hostile, FilledTemplate)
    # a later expansion of the setting leaves the user's text exactly as typed
    assert expand_template(hostile, {"username": "alice", "userid": 7}) == (
        "img-{username}{{}}{userid:>99}"
    )
    with pytest.raises(TemplateError, match="format spec"):
        fill_value("{value:>9}", "x")
    assert fill_value("no value here {{x}}", "v") == "no value here {x}"


def test_fill_value_leaves_other_fields_as_written() -> None:
    """Only ``{value}`` is the unlisted choice's business; a JSON-like string or another
    field's spec is left for the setting's own expansion to judge."""
    assert fill_value('{"a": 1} {value}', "v") == '{"a": 1} v'
    assert fill_value("{username!r}-{value}", "v") == "{username!r}-v"
    with pytest.raises(TemplateError, match="takes no format spec"):
        fill_value("{value.upper}", "v")
    with pytest.raises(TemplateError, match="unbalanced"):
        fill_value("{value", "v")
