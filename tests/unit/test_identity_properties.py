"""Property tests: hostile user and server names always give valid, distinct Kubernetes
names in the default scheme, valid identity labels, and an owner annotation that records
exactly who owns the object and can never be mistaken for another server's."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from async_kubespawner import KubeSpawner
from async_kubespawner.objects.identity import (
    IDENTITY_ANNOTATION,
    Ownership,
    Scope,
    ServerIdentity,
    object_ownership,
    pod_ownership,
    pvc_adoption,
    pvc_deletion,
    read_owner,
)
from async_kubespawner.objects.slugs import (
    TemplateFields,
    expand_template,
    is_valid_dns_label,
    is_valid_dns_subdomain,
    is_valid_label,
)
from async_kubespawner.testing import build_spawner, kubespawner_config

# Anything a hub might be handed: control characters, "--", dots, case, other scripts,
# very long names. (Surrogates cannot be encoded and never reach a hub.)
hostile = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=120
) | st.sampled_from(
    ["--", "a--b", "-", ".", "A", "a", "x" * 63, "jupyter", "\x00", "\x042ob", "Bob", "é"]
)
users = hostile.filter(lambda s: s != "")
servers = hostile


def names_for(user: str, server: str) -> dict[str, str]:
    fields = TemplateFields.for_server(
        username=user, servername=server, userid=7, hub_namespace="jhub"
    ).as_dict()
    return {
        "pod": expand_template("jupyter-{user_server}", fields),
        "pvc": expand_template("claim-{user_server}", fields),
    }


@settings(max_examples=400, deadline=None)
@given(users, servers)
def test_default_names_are_valid_for_every_kind(user: str, server: str) -> None:
    names = names_for(user, server)
    assert is_valid_dns_subdomain(names["pod"])
    assert is_valid_dns_subdomain(names["pvc"])
    # the pod's Service takes its name: an RFC 1035 label
    assert is_valid_dns_label(names["pod"]) and names["pod"][0].isalpha()


@settings(max_examples=400, deadline=None)
@given(st.tuples(users, servers), st.tuples(users, servers))
def test_default_names_of_distinct_servers_are_distinct(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    if first == second:
        return
    assert names_for(*first)["pod"] != names_for(*second)["pod"]
    assert names_for(*first)["pvc"] != names_for(*second)["pvc"]


@settings(max_examples=400, deadline=None)
@given(users, servers)
def test_identity_labels_are_valid_label_values(user: str, server: str) -> None:
    fields = TemplateFields.for_server(
        username=user, servername=server, userid=7, hub_namespace="jhub"
    )
    assert is_valid_label(fields.user_label_value())
    assert is_valid_label(fields.server_label_value())


@settings(max_examples=400, deadline=None)
@given(users, servers, st.sampled_from(list(Scope)))
def test_owner_annotation_round_trips_exactly(user: str, server: str, scope: Scope) -> None:
    identity = ServerIdentity("jhub/singleuser-server", user, server)
    value = identity.annotation(scope)
    assert value.isascii() and value.isprintable()  # no control character reaches metadata
    owner = read_owner({"annotations": {IDENTITY_ANNOTATION: value}})
    assert owner is not None and owner.readable
    assert (owner.hub, owner.user, owner.server, owner.scope) == (
        identity.hub,
        user,
        server,
        scope,
    )


@settings(max_examples=400, deadline=None)
@given(st.tuples(users, servers), st.tuples(users, servers))
def test_another_servers_objects_are_never_mine(
    mine: tuple[str, str], theirs: tuple[str, str]
) -> None:
    me = ServerIdentity("jhub/singleuser-server", *mine)
    other = ServerIdentity("jhub/singleuser-server", *theirs)
    meta = {
        "labels": {"component": "singleuser-server"},
        "annotations": {
            IDENTITY_ANNOTATION: other.annotation(),
            # upstream's annotations, as every object also carries
            "hub.jupyter.org/username": other.user,
            **({"hub.jupyter.org/servername": other.server} if other.server else {}),
        },
    }
    expected = Ownership.MINE if mine == theirs else Ownership.FOREIGN
    assert pod_ownership(me, meta, "singleuser-server") is expected
    assert object_ownership(me, meta) is expected
    if mine != theirs:
        assert not pvc_adoption(me, meta, Scope.SERVER).allowed
        assert not pvc_deletion(
            me, meta, name="x", names_of_this_server={"x"}, template_scope=Scope.SERVER
        ).allowed


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(users, servers)
def test_spawner_objects_of_hostile_names_are_valid_and_owned(user: str, server: str) -> None:
    """The whole spawner path: names pass check_configuration and the PVC's labels and
    owner annotation are what the rules above expect."""
    spawner = build_spawner(
        KubeSpawner,
        user,
        config=kubespawner_config({"storage_capacity": "1Gi", "namespace": "jhub"}),
        servername=server,
    )
    spawner.check_configuration()
    pvc = spawner.get_pvc_manifest()
    for value in pvc.metadata.labels.values():
        assert is_valid_label(value)
    owner = json.loads(pvc.metadata.annotations[IDENTITY_ANNOTATION])
    assert (owner["user"], owner["server"], owner["scope"]) == (user, server, "server")
    assert pvc_adoption(spawner.server_identity(), {"annotations": pvc.metadata.annotations}, Scope.SERVER).allowed
