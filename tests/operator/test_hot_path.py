"""What keeps a reconcile pass cheap: the owner index, the parsed-template cache, and
skipping the watch echo of the replica's own status write."""

from __future__ import annotations

from typing import Any

from async_kubespawner.kube.cache import ObjectCache
from async_kubespawner.operator.models import API_VERSION, FINALIZER
from async_kubespawner.operator.reconciler import (
    NotifyingCache,
    Reconciler,
    trim_child_pod,
    trim_server,
    trim_template,
)

from .conftest import NAMESPACE, example_template


def pod(name: str, owner: str | None, rv: str = "1") -> dict[str, Any]:
    refs = [{"apiVersion": API_VERSION, "kind": "NotebookServer", "name": "x", "uid": owner,
             "controller": True}] if owner else []
    return {"metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}",
                         "resourceVersion": rv, "ownerReferences": refs}}


def test_owner_index_follows_upserts_removals_and_relists() -> None:
    changed: list[str] = []
    cache = NotifyingCache(trim_child_pod, lambda o: changed.append(o["metadata"]["name"]))
    cache.upsert(pod("p1", "s1"))
    cache.upsert(pod("p2", "s1"))
    cache.upsert(pod("p2", "s1", rv="2"))  # an update: still one entry
    cache.upsert(pod("p3", "s2"))
    assert cache.owned_keys("s1") == [(NAMESPACE, "p1"), (NAMESPACE, "p2")]
    cache.remove(pod("p1", "s1"))
    assert cache.owned_keys("s1") == [(NAMESPACE, "p2")]
    cache.replace_all([pod("p4", "s1"), pod("p3", "s3")])
    assert cache.owned_keys("s1") == [(NAMESPACE, "p4")]
    assert cache.owned_keys("s2") == [] and cache.owned_keys("s3") == [(NAMESPACE, "p3")]
    cache.forget_owner("s3")
    assert cache.owned_keys("s3") == []
    assert "p4" in changed


def test_a_released_child_is_not_reported_as_owned() -> None:
    pods = NotifyingCache(trim_child_pod, lambda o: None)
    pods.upsert(pod("p1", "s1"))
    pods.upsert(pod("p2", "s1"))
    pods.upsert(pod("p2", None, rv="2"))  # released (as a retained PVC is)
    r = Reconciler(None, servers=ObjectCache(trim_server),  # type: ignore[arg-type]
                   templates=ObjectCache(trim_template), cluster_templates=None, pods=pods,
                   pvcs=NotifyingCache(trim_child_pod, lambda o: None), events=None)
    assert [p["metadata"]["name"] for p in r._owned(pods, NAMESPACE, "s1")] == ["p1"]
    assert r._owned(pods, "elsewhere", "s1") == []
    r.forget("s1")
    assert pods.owned_keys("s1") == []


def reconciler(templates: ObjectCache, api: Any = None) -> Reconciler:
    return Reconciler(api, servers=ObjectCache(trim_server), templates=templates,
                      cluster_templates=None, pods=ObjectCache(), pvcs=ObjectCache(),
                      events=None)


def server_spec() -> Any:
    from async_kubespawner.operator.models import parse_server_spec

    from .conftest import notebook_server

    return parse_server_spec(notebook_server("alice"))


def test_template_is_parsed_once_per_version() -> None:
    templates = ObjectCache(trim_template)
    body = example_template()
    body["metadata"].update(namespace=NAMESPACE, resourceVersion="5", generation=1)
    templates.upsert(body)
    r = reconciler(templates)
    spec = server_spec()
    first, generation = r._template(NAMESPACE, spec)
    again, _ = r._template(NAMESPACE, spec)
    assert again is first and generation == 1
    changed = example_template()
    changed["metadata"].update(namespace=NAMESPACE, resourceVersion="9", generation=2)
    changed["spec"]["pods"][0]["labels"] = {"changed": "yes"}
    templates.upsert(changed)
    newer, generation = r._template(NAMESPACE, spec)
    assert newer is not first and generation == 2
    assert newer.pods[0].labels == {"changed": "yes"}
    templates.remove(changed)
    import pytest

    from async_kubespawner.operator.reconciler import Refused

    with pytest.raises(Refused) as refused:
        r._template(NAMESPACE, spec)
    assert refused.value.reason == "TemplateNotFound"


class PatchOnly:
    """An API that answers a status merge patch with what the server would return."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    async def request(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.answer


def server(rv: str, generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "alice", "namespace": NAMESPACE, "uid": "u1",
                         "resourceVersion": rv, "generation": generation,
                         "finalizers": [FINALIZER], **meta},
            "spec": {}, "status": {}}


class Recording(PatchOnly):
    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer)
        self.bodies: list[dict[str, Any]] = []

    async def request(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.bodies.append(kwargs["body"])
        return self.answer


async def test_a_status_write_sends_only_what_changes() -> None:
    current = server("10")
    current["status"] = {"phase": "Starting", "children": [{"kind": "Pod", "name": "p"}],
                         "observedGeneration": 1, "reason": "old"}
    api = Recording(server("11"))
    r = reconciler(ObjectCache(trim_template), api)
    assert await r._write_status(current, {
        "phase": "Ready", "children": [{"kind": "Pod", "name": "p"}], "observedGeneration": 1,
        "reason": None, "port": 8888})
    assert api.bodies == [{"status": {"phase": "Ready", "reason": None, "port": 8888}}]
    assert not await r._write_status(
        {**current, "status": {"phase": "Ready", "port": 8888}}, {"phase": "Ready"})
    assert len(api.bodies) == 1  # nothing changes: nothing is sent


async def test_only_the_exact_echo_of_an_own_status_write_is_skipped() -> None:
    written = server("11")
    written["status"] = {"phase": "Starting"}
    r = reconciler(ObjectCache(trim_template), PatchOnly(written))
    assert await r._write_status(server("10"), {"phase": "Starting"})
    assert not r.own_echo(server("12"))  # someone else's change: a pass is needed
    assert not r.own_echo(server("11", generation=2))  # the spec moved: a pass is needed
    assert r.own_echo(server("11"))
    assert not r.own_echo(server("11"))  # once only
    assert r._written == {}


async def test_no_echo_is_skipped_when_the_spec_or_deletion_moved_under_the_write() -> None:
    for answer in (server("11", generation=2), server("11", deletionTimestamp="now"),
                   server("11", finalizers=[])):
        r = reconciler(ObjectCache(trim_template), PatchOnly(answer))
        assert await r._write_status(server("10"), {"phase": "Starting"})
        assert not r.own_echo(answer)


def operator() -> Any:
    from async_kubespawner.operator.app import Operator, OperatorSettings

    return Operator(None, OperatorSettings(namespace=NAMESPACE))  # type: ignore[arg-type]


async def test_changes_during_a_pass_requeue_it_unless_they_are_its_own_echo() -> None:
    op = operator()
    key = (NAMESPACE, "alice")
    op.reconciler._written[key] = [("11", 1)]
    op.queue.add(key)
    assert await op.queue.get() == key  # a worker holds the key
    op._server_changed(server("11"))  # the echo, before the write's response
    op._settle_deferred(key)
    op.queue.done(key)
    assert len(op.queue) == 0  # nothing but the pass's own write happened

    op.reconciler._written[key] = [("13", 1)]
    op.queue.add(key)
    await op.queue.get()
    op._server_changed(server("12", generation=2))  # the hub changed the spec meanwhile
    op._server_changed(server("13"))
    op._settle_deferred(key)
    op.queue.done(key)
    assert len(op.queue) == 1 and await op.queue.get() == key


async def test_a_change_outside_a_pass_is_queued() -> None:
    op = operator()
    op._server_changed(server("20"))
    assert len(op.queue) == 1
