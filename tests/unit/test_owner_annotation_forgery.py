"""Configuration (and through profile options, user text) reaches every annotation map:
``extra_annotations`` and ``storage_extra_annotations`` are templates expanded with the
user's fields. None of it can make an object of one server name another server as its
owner: the owner annotation is written last, and the upstream owner annotations are not
read when it is present. Property test over hostile user names and forged values."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_asyncio.client import V1OwnerReference

from async_kubespawner import KubeSpawner
from async_kubespawner.objects.identity import (
    IDENTITY_ANNOTATION,
    SERVERNAME_ANNOTATION,
    USERNAME_ANNOTATION,
    Ownership,
    ServerIdentity,
    object_ownership,
    pod_ownership,
    read_owner,
)
from async_kubespawner.testing import build_spawner, kubespawner_config

names = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)


def forged(victim: str) -> dict[str, str]:
    """Annotations claiming the victim's server: the identity annotation written out in
    full (braces doubled: the values are templates), and upstream's raw-name ones."""
    identity = ServerIdentity(hub="default/singleuser-server", user=victim).annotation()
    return {
        IDENTITY_ANNOTATION: identity.replace("{", "{{").replace("}", "}}"),
        USERNAME_ANNOTATION: "{username}" + "x",
        SERVERNAME_ANNOTATION: "",
    }


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names, names)
def test_no_annotation_setting_can_claim_another_servers_identity(
    attacker: str, victim: str
) -> None:
    spawner = build_spawner(
        KubeSpawner,
        attacker,
        config=kubespawner_config(
            {
                "namespace": "default",
                "storage_capacity": "1Gi",
                "extra_annotations": forged(victim),
                "storage_extra_annotations": forged(victim),
                "services_enabled": True,
            }
        ),
    )
    owner = V1OwnerReference(api_version="v1", kind="Pod", name="p", uid="u")
    pod = asyncio.run(spawner.get_pod_manifest())
    objects = {
        "pod": pod.metadata.annotations,
        "pvc": spawner.get_pvc_manifest().metadata.annotations,
        "service": spawner.get_service_manifest(owner).metadata.annotations,
        "secret": spawner.get_secret_manifest(owner).metadata.annotations,
    }
    me = spawner.server_identity()
    victim_identity = ServerIdentity(hub=me.hub, user=victim)
    for kind, written in objects.items():
        recorded = json.loads(written[IDENTITY_ANNOTATION])
        assert (recorded["user"], recorded["server"]) == (attacker, ""), kind
        meta = {"annotations": written, "labels": pod.metadata.labels}
        assert read_owner(meta).user == attacker, kind  # type: ignore[union-attr]
        if victim != attacker:
            assert object_ownership(victim_identity, meta) is Ownership.FOREIGN, kind
            assert (
                pod_ownership(victim_identity, meta, spawner.component_label)
                is Ownership.FOREIGN
            ), kind
