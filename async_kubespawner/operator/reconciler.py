"""One reconcile pass of a NotebookServer: from its spec, its template and its children's state
to created children and a written status.

A pass reads only the caches (filled by reflectors) and writes only what changed, so it
can run any number of times: after every watch event of the server, its template or one
of its children, after a failure (with backoff), when a tolerance expires, and on the
periodic resync. Safety rules:

* Every child carries an ownerReference (controller) to its NotebookServer, identity
  labels, and identity annotations. An existing object is touched only if it is provably
  this server's: its controller reference is this server's uid, or (a PVC retained from
  an earlier start of the same server) it is managed by the operator and its identity
  annotations name the same user and server. Anything else refuses the server.
* Names are deterministic (the template's, substituted), so a pass repeated by a new
  leader after a failover finds what the old leader created (409 -> adopt), and never
  creates a second copy.
* Children are created once; a template changed later does not touch them, unless the
  template opts in (``updateRunningServers``), which stops the server so that it is
  started again from the new template.
* Teardown is ordered by a finalizer: pods first (and awaited), then other resources,
  then PVCs by the retention policy recorded on each PVC when it was created.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..kube.cache import EventIndex, ObjectCache, object_key, trim_pod
from ..kube.client import EVENTS, PODS, PVCS, ApiError, KubeApi, Priority, ResourceKind
from ..objects.slugs import safe_label_value
from .kubeio import NOTEBOOK_SERVERS, KindResolver, merge_patch
from .models import (
    ANNOTATION_DELETE_WITH_SERVER,
    API_VERSION,
    FINALIZER,
    GROUP,
    LABEL_CHILD,
    LABEL_MANAGED_BY,
    LABEL_SERVER,
    LABEL_SERVERNAME,
    LABEL_USER,
    MANAGED_BY,
    NotebookServerSpec,
    NotebookTemplateSpec,
    parse_server_spec,
    parse_template_spec,
)
from .readiness import SeenSince, Tolerances, Verdict, pod_verdict
from .render import RenderedChild, ServerContext, TemplateInvalid, VariableRefused, render
from .schema import ModelError

log = logging.getLogger("async_kubespawner.operator")

Obj = dict[str, Any]
Key = tuple[str, str]

ANNOTATION_USER = f"{GROUP}/user"
ANNOTATION_SERVER = f"{GROUP}/server-name"
ANNOTATION_WHEN_STOPPED = f"{GROUP}/when-stopped"
ANNOTATION_TEMPLATE_GENERATION = f"{GROUP}/template-generation"
_OUR_PREFIXES = (GROUP + "/", "hub.jupyter.org/", "app.kubernetes.io/managed-by", "component")


# -- what the caches keep -----------------------------------------------------------------


def _owner_refs(meta: Obj) -> list[Obj]:
    return [
        {k: r[k] for k in ("apiVersion", "kind", "name", "uid", "controller") if k in r}
        for r in meta.get("ownerReferences") or ()
    ]


def _ours(mapping: Obj | None) -> Obj:
    return {k: v for k, v in (mapping or {}).items() if k.startswith(_OUR_PREFIXES)}


def trim_server(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    kept = {
        k: meta[k]
        for k in ("name", "namespace", "uid", "generation", "resourceVersion",
                  "deletionTimestamp", "finalizers")
        if meta.get(k) is not None
    }
    return {"metadata": kept, "spec": obj.get("spec") or {}, "status": obj.get("status") or {}}


def trim_template(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "generation", "resourceVersion")
            if meta.get(k) is not None}
    return {"metadata": kept, "spec": obj.get("spec") or {}}


def trim_child_pod(obj: Obj) -> Obj:
    trimmed = trim_pod(obj)
    meta = obj.get("metadata") or {}
    trimmed["metadata"]["ownerReferences"] = _owner_refs(meta)
    trimmed["metadata"]["labels"] = _ours(meta.get("labels"))
    trimmed["metadata"]["annotations"] = _ours(meta.get("annotations"))
    return trimmed


def trim_child(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    out: Obj = {
        "kind": obj.get("kind"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace") or "",
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "ownerReferences": _owner_refs(meta),
            "labels": _ours(meta.get("labels")),
            "annotations": _ours(meta.get("annotations")),
        },
    }
    if meta.get("deletionTimestamp"):
        out["metadata"]["deletionTimestamp"] = meta["deletionTimestamp"]
    phase = (obj.get("status") or {}).get("phase")
    if phase:
        out["status"] = {"phase": phase}
    return out


class NotifyingCache(ObjectCache):
    """An :class:`ObjectCache` that reports every change (to enqueue the owner) and indexes
    its objects by controlling NotebookServer uid.

    Why the index: a teardown pass asks for the server's children; scanning (and decoding)
    every cached pod for that is O(servers) per pass, O(servers²) when many stop at once.
    """

    def __init__(self, trim: Callable[[Obj], Obj], on_change: Callable[[Obj], None]) -> None:
        super().__init__(trim)
        self.on_change = on_change
        # uid -> keys (a tuple: most servers have one child of a kind, and a tuple of one
        # is a fifth of a set). An entry may outlive its object's ownership (a released
        # PVC): readers check the owner of what they get, and forget_owner() ends it.
        self._by_owner: dict[str, tuple[Key, ...]] = {}

    def _index(self, key: Key, owner: str | None) -> None:
        if owner is None:
            return
        keys = self._by_owner.get(owner, ())
        if key not in keys:
            self._by_owner[owner] = (*keys, key)

    def _unindex(self, key: Key, owner: str | None) -> None:
        keys = self._by_owner.get(owner or "")
        if keys is not None and key in keys:
            rest = tuple(k for k in keys if k != key)
            if rest:
                self._by_owner[owner or ""] = rest
            else:
                del self._by_owner[owner or ""]

    def owned_keys(self, uid: str) -> list[Key]:
        """Keys of cached objects that were controlled by the NotebookServer ``uid`` (a
        superset: check each object's owner)."""
        return sorted(k for k in self._by_owner.get(uid, ()) if k in self._objects)

    def forget_owner(self, uid: str) -> None:
        self._by_owner.pop(uid, None)

    def upsert(self, obj: Obj) -> None:
        super().upsert(obj)
        self._index(object_key(obj), controller_uid(obj))
        self.on_change(obj)

    def remove(self, obj: Obj) -> None:
        super().remove(obj)
        self._unindex(object_key(obj), controller_uid(obj))
        self.on_change(obj)

    def replace_all(self, objects: list[Any], *, trimmed: bool = False) -> None:
        before = set(self.keys())
        super().replace_all(objects, trimmed=trimmed)
        self._by_owner.clear()
        for key in before | set(self.keys()):
            obj = self.get(key)
            if obj is not None:
                self._index(key, controller_uid(obj))
            self.on_change(obj or {"metadata": {"namespace": key[0], "name": key[1]}})


class NotifyingEvents(EventIndex):
    """An :class:`EventIndex` that reports each new or changed event."""

    def __init__(self, on_event: Callable[[Obj], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_event = on_event

    def upsert(self, event: Obj, *, trimmed: bool = False) -> None:
        super().upsert(event, trimmed=trimmed)
        self.on_event(event)


def controller_uid(obj: Obj) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == "NotebookServer":
            return ref.get("uid")
    return None


def owner_name(obj: Obj) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == "NotebookServer":
            return ref.get("name")
    return (obj.get("metadata") or {}).get("labels", {}).get(LABEL_SERVER)


# -- status ------------------------------------------------------------------------------

#: The Ready condition's message while the pod has nothing more specific to say.
_WAITING = "Waiting for the pod."


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Obj], type_: str, status: str, reason: str, message: str, generation: int
) -> list[Obj]:
    """Conditions with ``type_`` set; its transition time moves only when its status does."""
    out = [dict(c) for c in conditions if c.get("type") != type_]
    previous = next((c for c in conditions if c.get("type") == type_), None)
    when = (
        previous.get("lastTransitionTime")
        if previous is not None and previous.get("status") == status
        else None
    ) or _now()
    out.append({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": when, "observedGeneration": generation,
    })
    order = ["Accepted", "ChildrenCreated", "Ready", "StoragePurged"]
    out.sort(key=lambda c: order.index(c["type"]) if c["type"] in order else len(order))
    return out


@dataclass
class Outcome:
    """What the worker does after a pass: nothing, or look again after ``requeue_after``."""

    requeue_after: float | None = None


@dataclass
class _Memory:
    """What a replica remembers of one server between passes (lost on failover: harmless)."""

    seen: SeenSince = field(default_factory=SeenSince)
    created: dict[Key, str] = field(default_factory=dict)  # pod key -> uid we created


class Refused(Exception):
    """The server cannot be provisioned as asked (status Failed, no retry)."""

    def __init__(self, reason: str, message: str, condition: str = "Accepted") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.condition = condition
        #: The template generation the refusal is about (None: no template).
        self.template_generation: int | None = None


# -- the reconciler -----------------------------------------------------------------------


class Reconciler:
    def __init__(
        self,
        api: KubeApi,
        *,
        servers: ObjectCache,
        templates: ObjectCache,
        cluster_templates: ObjectCache | None,
        pods: ObjectCache,
        pvcs: ObjectCache,
        events: EventIndex | None,
        tolerances: Tolerances = Tolerances(),
        component: str = MANAGED_BY,
    ) -> None:
        self.api = api
        self.servers = servers
        self.templates = templates
        self.cluster_templates = cluster_templates
        self.pods = pods
        self.pvcs = pvcs
        self.events = events
        self.tolerances = tolerances
        self.component = component
        self.kinds = KindResolver(api)
        self._memory: dict[str, _Memory] = {}
        self._recorded: dict[str, set[str]] = {}
        #: (kind, namespace, name) -> (resourceVersion, parsed spec, generation).
        self._parsed_templates: dict[
            tuple[str, str, str], tuple[str, NotebookTemplateSpec, int]] = {}
        self._clock = time.monotonic
        #: Events being written off the passes' critical path.
        self._background: set[asyncio.Future[None]] = set()
        #: server uid -> its latest Event still being written: the next one waits for
        #: it, so a server's Events land in the order of its steps.
        self._event_tail: dict[str, asyncio.Future[None]] = {}
        #: server key -> (resourceVersion, generation) of this replica's latest status
        #: writes whose watch echo has not arrived: it needs no pass (see :meth:`own_echo`).
        self._written: dict[Key, list[tuple[str, int]]] = {}
        #: server key -> (resourceVersion the cache held, resourceVersion written, status)
        #: of this replica's latest status write whose echo has not arrived. A pass
        #: meanwhile (the server's pod changed: an urgent pass, at once) would read the
        #: cache's older copy and redo the step: create a child again (409) or re-send
        #: the same status. It reads the written status instead (see :meth:`_current`).
        self._unechoed: dict[Key, tuple[str, str, Obj]] = {}
        #: ``listener(server, status, began, ended)`` after each status write that landed,
        #: with its monotonic start and end: instrumentation (the operator benchmark times
        #: the Ready write with it) attaches here instead of wrapping the reconciler.
        self.status_write_listeners: list[Callable[[Obj, Obj, float, float], None]] = []
        #: ``listener(server, reason, emitted, written)`` after each background Event
        #: write ended (monotonic times): how far Events lag behind the steps they report.
        self.event_write_listeners: list[Callable[[Obj, str, float, float], None]] = []

    # -- entry -------------------------------------------------------------------------

    def _current(self, key: Key) -> Obj | None:
        """The server as the cache has it, with this replica's own status write applied if
        the cache still holds exactly the version that write was based on (nothing but
        that status changed in between: :meth:`_write_status` records only such writes,
        and the watch delivers changes in order, so a later change cannot be cached
        before the write's echo)."""
        server = self.servers.get(key)
        pending = self._unechoed.get(key)
        if server is None or pending is None:
            return server
        base, written, status = pending
        if server["metadata"].get("resourceVersion") != base:
            del self._unechoed[key]  # the echo (or something newer) has arrived
            return server
        server["status"] = dict(status)
        server["metadata"]["resourceVersion"] = written
        return server

    async def reconcile(self, key: Key) -> Outcome:
        server = self._current(key)
        if server is None:
            return Outcome()
        meta = server["metadata"]
        if meta.get("deletionTimestamp"):
            return await self._teardown(server)
        if FINALIZER not in (meta.get("finalizers") or ()):
            server = await self._add_finalizer(server)
        try:
            spec = parse_server_spec(server)
        except ModelError as e:
            await self._fail(server, "InvalidSpec", f"The NotebookServer is malformed: {e}")
            return Outcome()
        if spec.purge_storage:
            return await self._purge(server, spec)
        try:
            return await self._provision(server, spec)
        except Refused as e:
            await self._fail(server, e.reason, e.message, condition=e.condition,
                             extra={"templateGeneration": e.template_generation})
            return Outcome()

    def forget(self, uid: str, key: Key | None = None) -> None:
        self._memory.pop(uid, None)
        self._recorded.pop(uid, None)
        for cache in (self.pods, self.pvcs):
            if isinstance(cache, NotifyingCache):
                cache.forget_owner(uid)
        if key is not None:
            self._written.pop(key, None)
            self._unechoed.pop(key, None)

    # -- provisioning --------------------------------------------------------------------

    def _template(self, namespace: str, spec: NotebookServerSpec) -> tuple[NotebookTemplateSpec, int]:
        ref = spec.template_ref
        if ref.kind == "ClusterNotebookTemplate":
            if self.cluster_templates is None:
                raise Refused("TemplateNotFound", "ClusterNotebookTemplates are not enabled "
                              "in this operator.")
            cache, key = self.cluster_templates, ("", ref.name)
        else:
            cache, key = self.templates, (namespace, ref.name)
        # Every server of a template uses the same parsed spec: parse it once per version
        # of the template, not on every pass of every server (a storm is thousands).
        version = cache.version(key)
        parsed = self._parsed_templates.get((ref.kind, *key))
        if parsed is not None and version is not None and parsed[0] == version:
            return parsed[1], parsed[2]
        obj = cache.get(key)
        if obj is None:
            self._parsed_templates.pop((ref.kind, *key), None)
            raise Refused("TemplateNotFound", f"The {ref.kind} {ref.name!r} does not exist.")
        try:
            result = parse_template_spec(obj), int(obj["metadata"].get("generation") or 0)
        except ModelError as e:
            raise Refused("TemplateInvalid", f"The {ref.kind} {ref.name!r} is invalid: {e}") from e
        if version:
            self._parsed_templates[(ref.kind, *key)] = (version, *result)
        return result

    async def _provision(self, server: Obj, spec: NotebookServerSpec) -> Outcome:
        meta = server["metadata"]
        namespace, uid = meta["namespace"], meta["uid"]
        status = server.get("status") or {}
        generation = int(meta.get("generation") or 0)
        memory = self._memory.setdefault(uid, _Memory())
        recorded = status.get("children") or []
        if recorded and status.get("phase") == "Failed":
            return Outcome()  # a failed server stays failed until the hub deletes it
        template: NotebookTemplateSpec | None
        template_generation: int | None
        try:
            template, template_generation = self._template(namespace, spec)
        except Refused:
            if not recorded:
                raise
            # A running server does not need its template any more (it may be deleted).
            template, template_generation = None, None
        if (
            status.get("phase") == "Failed"
            and status.get("observedGeneration") == generation
            and status.get("templateGeneration") == template_generation
        ):
            # Refused for this very spec and template: retrying cannot help (the hub
            # deletes the server; a fixed template is another generation and retries).
            return Outcome()
        try:
            return await self._provision_with(
                server, spec, status, recorded, memory, template, template_generation)
        except Refused as e:
            e.template_generation = template_generation
            raise

    async def _provision_with(
        self,
        server: Obj,
        spec: NotebookServerSpec,
        status: Obj,
        recorded: list[Obj],
        memory: _Memory,
        template: NotebookTemplateSpec | None,
        template_generation: int | None,
    ) -> Outcome:
        meta = server["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        generation = int(meta.get("generation") or 0)
        context = ServerContext(
            user=spec.identity.user,
            server=spec.identity.server,
            namespace=namespace,
            object_name=name,
            secret_name=spec.env_secret_ref.name if spec.env_secret_ref else "",
            user_id=spec.identity.user_id,
        )
        if (
            recorded
            and template is not None
            and status.get("templateGeneration") not in (None, template_generation)
        ):
            if template.update_running_servers:
                for entry in recorded:
                    if entry.get("kind") == "Pod":
                        await self._delete_owned(PODS, namespace, entry["name"], uid)
                await self._fail(server, "TemplateChanged",
                                 "The server's template changed; start the server again.")
                return Outcome()
        try:
            children = None
            if not recorded:
                assert template is not None and template_generation is not None
                children = render(template, spec.variables, context)
        except VariableRefused as e:
            raise Refused("VariableRefused", f"Variable {e.variable!r} was refused: {e}") from e
        except TemplateInvalid as e:
            raise Refused("TemplateInvalid", f"The template cannot be used: {e}") from e
        conditions = set_condition(status.get("conditions") or [], "Accepted", "True",
                                   "Accepted", "Template and variables accepted.", generation)
        if children is not None:
            assert template is not None and template_generation is not None
            for child in children:  # every kind checked before anything is created
                await self._resolve(child)
            # The Event announces the step (the spawn page's progress), in the background.
            # The phase goes from Pending to Starting in one write once the children
            # exist: a Provisioning write made while they are created (one request in
            # nine of a spawn) would be overwritten a round trip later. It is written
            # only when creating them fails, so a server whose children take retries
            # says so, and a refusal builds on the Accepted condition.
            self._emit(server, "Normal", "Provisioning",
                       f"Creating {len(children)} objects from template "
                       f"{spec.template_ref.name}")
            try:
                for child in children:
                    created = await self._ensure_child(
                        server, spec, child, template, template_generation)
                    if child.kind == "Pod":
                        memory.created[(namespace, child.name)] = created["metadata"]["uid"]
            except Exception:
                try:
                    await self._write_status(server, {
                        "phase": "Provisioning", "conditions": conditions,
                        "observedGeneration": generation,
                    })
                except ApiError as e:
                    log.info("recording the provisioning of %s failed: %s", name, e)
                raise
            recorded = [
                {"id": c.id, "kind": c.kind, "apiVersion": c.api_version, "name": c.name}
                for c in children
            ]
            conditions = set_condition(conditions, "ChildrenCreated", "True", "Created",
                                       f"{len(children)} objects created.", generation)
            self._emit(server, "Normal", "Created",
                       "Created " + ", ".join(f"{c.kind} {c.name}" for c in children))
        pod_child = next(c for c in recorded if c["kind"] == "Pod")
        pod_key = (namespace, pod_child["name"])
        pod = self.pods.get(pod_key)
        if pod is not None and controller_uid(pod) != uid:
            pod = None
        base = {
            "conditions": conditions, "observedGeneration": generation, "children": recorded,
            "templateGeneration": status.get("templateGeneration") or template_generation,
        }
        if pod is None:
            # The status a pass with the pod in the cache writes too (a pod just created
            # is waiting): when the pod's watch event brings that pass, nothing changes.
            waiting = {**base, "phase": "Starting", "conditions": set_condition(
                conditions, "Ready", "False", "Starting", _WAITING, generation)}
            if pod_key in memory.created:
                # Created by this replica a moment ago; its watch event is on its way.
                await self._write_status(server, waiting)
                return Outcome()
            live = await self.api.get_or_none(PODS, namespace, pod_child["name"],
                                              priority=Priority.CRITICAL)
            if live is not None and controller_uid(live) == uid:
                memory.created[pod_key] = live["metadata"]["uid"]
                await self._write_status(server, waiting)
                return Outcome()
            await self._fail(server, "PodDeleted",
                             f"The server's pod {pod_child['name']} was deleted. "
                             "Start the server again.", extra=base)
            return Outcome()
        now = self._clock()
        pvc_events = {}
        pod_events: list[Obj] = []
        if self.events is not None:
            pod_events = self.events.for_object(namespace, pod_child["name"],
                                                uid=pod["metadata"].get("uid"))
            for c in recorded:
                if c["kind"] == "PersistentVolumeClaim":
                    pvc_events[c["name"]] = self.events.for_object(
                        namespace, c["name"], kind="PersistentVolumeClaim")
        verdict = pod_verdict(pod, pod_events, pvc_events, self.tolerances, memory.seen, now)
        port = template.notebook_port if template is not None else int(status.get("port") or 8888)
        return await self._apply_verdict(server, port, verdict, pod, base)

    async def _apply_verdict(
        self, server: Obj, port: int, verdict: Verdict, pod: Obj, base: Obj
    ) -> Outcome:
        generation = base["observedGeneration"]
        if verdict.state == "ready":
            address = (pod.get("status") or {}).get("podIP")
            conditions = set_condition(base["conditions"], "Ready", "True", "PodReady",
                                       "The notebook server is ready.", generation)
            # The status first: it is what the hub's start() waits for.
            changed = await self._write_status(server, {
                **base, "conditions": conditions, "phase": "Ready",
                "address": address, "port": port, "reason": None,
            }, priority=Priority.CRITICAL)
            if changed:
                self._emit(server, "Normal", "Ready", f"Server ready at {address}:{port}")
            return Outcome()
        if verdict.state == "failed":
            await self._fail(server, verdict.reason or "Failed", verdict.message, extra=base)
            return Outcome()
        conditions = set_condition(base["conditions"], "Ready", "False", "Starting",
                                   verdict.message or _WAITING, generation)
        await self._write_status(server, {**base, "conditions": conditions, "phase": "Starting"})
        return Outcome(requeue_after=verdict.recheck_in)

    async def _ensure_child(
        self,
        server: Obj,
        spec: NotebookServerSpec,
        child: RenderedChild,
        template: NotebookTemplateSpec,
        template_generation: int,
    ) -> Obj:
        namespace = server["metadata"]["namespace"]
        rk = await self._resolve(child)
        manifest = self._owned_manifest(server, spec, child, template, template_generation)
        try:
            return await self.api.create(rk, namespace, manifest, priority=Priority.BULK)
        except ApiError as e:
            if e.status == 409:
                existing = await self.api.get_or_none(rk, namespace, child.name,
                                                      priority=Priority.BULK)
                if existing is not None:
                    return await self._adopt(server, spec, rk, existing, child)
                raise  # deleted meanwhile: retry the pass
            if e.status in (400, 403, 422):
                raise Refused("ChildRejected", f"The API server refused {child.kind} "
                              f"{child.name}: {e.message}", condition="ChildrenCreated") from e
            raise

    async def _resolve(self, child: RenderedChild) -> ResourceKind:
        try:
            rk = await self.kinds.resolve(child.api_version, child.kind)
        except LookupError as e:
            raise Refused("TemplateInvalid", f"The template names {child.kind}: {e}") from e
        if not rk.namespaced:
            raise Refused("TemplateInvalid", f"{child.kind} is cluster-scoped; a server's "
                          "objects must live in its namespace.")
        return rk

    def _owned_manifest(
        self,
        server: Obj,
        spec: NotebookServerSpec,
        child: RenderedChild,
        template: NotebookTemplateSpec,
        template_generation: int,
    ) -> Obj:
        meta = server["metadata"]
        manifest = dict(child.manifest)
        metadata = dict(manifest["metadata"])
        labels = dict(metadata.get("labels") or {})
        labels.update({
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_SERVER: meta["name"],
            LABEL_CHILD: child.id,
            LABEL_USER: safe_label_value(spec.identity.user),
            LABEL_SERVERNAME: safe_label_value(spec.identity.server),
        })
        annotations = dict(metadata.get("annotations") or {})
        annotations.update({
            ANNOTATION_USER: spec.identity.user,
            ANNOTATION_SERVER: spec.identity.server,
            ANNOTATION_TEMPLATE_GENERATION: str(template_generation),
        })
        if child.kind == "PersistentVolumeClaim":
            retention = template.pvc_retention
            annotations[ANNOTATION_WHEN_STOPPED] = retention.when_stopped
            annotations[ANNOTATION_DELETE_WITH_SERVER] = (
                "true" if retention.when_deleted == "Delete" else "false"
            )
        metadata.update({
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": API_VERSION, "kind": "NotebookServer", "name": meta["name"],
                "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
            }],
        })
        manifest["metadata"] = metadata
        return manifest

    def _same_identity(self, obj: Obj, spec: NotebookServerSpec, server_name: str) -> bool:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        return (
            labels.get(LABEL_MANAGED_BY) == MANAGED_BY
            and labels.get(LABEL_SERVER) == server_name
            and annotations.get(ANNOTATION_USER) == spec.identity.user
            and annotations.get(ANNOTATION_SERVER) == spec.identity.server
        )

    async def _adopt(
        self, server: Obj, spec: NotebookServerSpec, rk: ResourceKind, existing: Obj,
        child: RenderedChild,
    ) -> Obj:
        meta = server["metadata"]
        owner = controller_uid(existing)
        if owner == meta["uid"]:
            return existing  # created by an earlier pass (or the previous leader)
        if (
            owner is None
            and child.kind == "PersistentVolumeClaim"
            and not existing["metadata"].get("deletionTimestamp")
            and self._same_identity(existing, spec, meta["name"])
        ):
            # The same server's volume, retained at its last stop: take it back.
            patch = {"metadata": {
                "resourceVersion": existing["metadata"]["resourceVersion"],
                "ownerReferences": [{
                    "apiVersion": API_VERSION, "kind": "NotebookServer", "name": meta["name"],
                    "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
                }],
            }}
            adopted = await merge_patch(self.api, rk, meta["namespace"], child.name, patch,
                                        priority=Priority.BULK)
            await self._record(server, "Normal", "Adopted",
                               f"Reusing retained {child.kind} {child.name}",
                               priority=Priority.BULK)
            return adopted
        raise Refused(
            "NameConflict",
            f"A {child.kind} named {child.name!r} already exists and does not belong to this "
            "server; an administrator must remove or rename it.",
            condition="ChildrenCreated",
        )

    # -- status and events --------------------------------------------------------------

    async def _write_status(
        self, server: Obj, status: Obj, *, priority: Priority = Priority.NORMAL
    ) -> bool:
        """Merge ``status`` into the server's status if anything changes; True if written.

        ``priority``: CRITICAL for a verdict someone waits on (Ready, Failed), so it is
        sent ahead of this operator's bulk work (see :mod:`..kube.admission`)."""
        began = time.monotonic() if self.status_write_listeners else 0.0
        current = server.get("status") or {}
        merged = {**current, **status}
        merged = {k: v for k, v in merged.items() if v is not None}
        if merged == current:
            return False
        # Only the fields that change: a pass restates the whole status (children,
        # generations...), and every field sent costs the API server field-ownership work.
        patch_status = {k: v for k, v in status.items() if current.get(k) != v}
        meta = server["metadata"]
        base = meta.get("resourceVersion")
        try:
            updated = await merge_patch(self.api, NOTEBOOK_SERVERS, meta["namespace"],
                                        meta["name"], {"status": patch_status},
                                        subresource="status", priority=priority)
        except ApiError as e:
            if e.status == 404:
                return False
            raise
        server["status"] = updated.get("status") or merged
        written = updated.get("metadata") or {}
        server["metadata"]["resourceVersion"] = written.get(
            "resourceVersion", meta.get("resourceVersion"))
        if (
            written.get("resourceVersion")
            and written.get("generation") == meta.get("generation")
            and not written.get("deletionTimestamp")
            and FINALIZER in (written.get("finalizers") or ())
        ):
            # Nothing but this status changed since the pass read the server.
            key = (meta["namespace"], meta["name"])
            records = self._written.setdefault(key, [])
            records.append((written["resourceVersion"], int(written.get("generation") or 0)))
            del records[:-4]  # an echo never delivered (a relist skipped it) must not pile up
            earlier = self._unechoed.get(key)
            if earlier is not None and earlier[1] == base:
                base = earlier[0]  # a second write in the pass: the cache is still older
            if base:
                self._unechoed[key] = (base, written["resourceVersion"], server["status"])
        else:
            self._unechoed.pop((meta["namespace"], meta["name"]), None)
        if self.status_write_listeners:
            ended = time.monotonic()
            for listener in self.status_write_listeners:
                listener(server, status, began, ended)
        return True

    def own_echo(self, obj: Obj) -> bool:
        """Whether ``obj`` is the watch echo of this replica's own status write, made by a
        pass that saw this very spec, deletion state and finalizers: a pass over it would
        find nothing to do (the pass that wrote it carried on from it), so the watch event
        need not queue one. Any later change has another resourceVersion and does."""
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        records = self._written.get(key)
        if not records:
            return False
        seen = (meta.get("resourceVersion"), int(meta.get("generation") or 0))
        if seen not in records:
            return False
        # Watch events arrive in order: writes before this one will not echo any more.
        del records[:records.index(seen) + 1]
        if not records:
            del self._written[key]
        pending = self._unechoed.get(key)
        if pending is not None and pending[1] == seen[0]:
            del self._unechoed[key]  # the cache has it now
        return True

    async def _fail(
        self, server: Obj, reason: str, message: str, *, condition: str = "Ready",
        extra: Obj | None = None,
    ) -> None:
        generation = int(server["metadata"].get("generation") or 0)
        base = dict(extra or {})
        conditions = base.pop("conditions", None) or (server.get("status") or {}).get(
            "conditions") or []
        conditions = set_condition(conditions, condition, "False", reason, message, generation)
        status = server.get("status") or {}
        if status.get("phase") != "Failed" or status.get("reason") != message:
            log.warning("NotebookServer %s/%s failed: %s", server["metadata"]["namespace"],
                        server["metadata"]["name"], message)
            # The Event first: whoever sees the Failed status can read why at once.
            await self._record(server, "Warning", reason, message, priority=Priority.CRITICAL)
        await self._write_status(server, {
            **base, "phase": "Failed", "reason": message, "conditions": conditions,
            "observedGeneration": generation,
        }, priority=Priority.CRITICAL)

    def _emit(self, server: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event without holding the pass (and its worker) until it is written.

        Written in the background at PROGRESS priority: the API client bounds how many
        are in flight (``events_in_flight``) and queues the rest behind status writes and
        creates, so a burst of Events never delays a Ready verdict; none is dropped while
        this replica leads. One server's Events are written one after another, in the
        order of its steps (they are its progress messages on the spawn page)."""
        metadata = {k: server["metadata"][k] for k in ("name", "namespace", "uid")}
        uid = metadata["uid"]
        previous = self._event_tail.get(uid)
        task = asyncio.ensure_future(
            self._record_after(previous, {"metadata": metadata}, type_, reason, message))
        self._event_tail[uid] = task
        self._background.add(task)

        def finished(done: asyncio.Future[None]) -> None:
            self._background.discard(done)
            if self._event_tail.get(uid) is done:
                del self._event_tail[uid]

        task.add_done_callback(finished)

    async def _record_after(
        self, previous: asyncio.Future[None] | None, server: Obj, type_: str, reason: str,
        message: str,
    ) -> None:
        emitted = time.monotonic() if self.event_write_listeners else 0.0
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # its outcome is its own; only the order matters
        await self._record(server, type_, reason, message)
        if self.event_write_listeners:
            written = time.monotonic()
            for listener in self.event_write_listeners:
                listener(server, reason, emitted, written)

    async def flush_events(self) -> None:
        """Return once every Event emitted so far is written (or has failed)."""
        while self._background:
            await asyncio.wait(set(self._background))

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        """Let Events still being written finish (a clean stop), then drop the rest."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
        self.abandon()

    def abandon(self) -> None:
        """Drop Events still being written (leadership lost, or the process dying)."""
        for task in list(self._background):
            task.cancel()

    async def _record(
        self, server: Obj, type_: str, reason: str, message: str, *,
        priority: Priority = Priority.PROGRESS,
    ) -> None:
        """A Kubernetes Event on the NotebookServer, once per (server, reason, message).

        The name is derived from those three, so a repeated pass (or another replica after
        a failover) meets 409 instead of writing a duplicate. ``priority``: PROGRESS
        (the API client bounds how many are in flight and queues the rest, none dropped)
        unless the pass awaits the Event before a write someone waits on.
        """
        meta = server["metadata"]
        digest = hashlib.sha256(f"{meta['uid']}\0{reason}\0{message}".encode()).hexdigest()[:16]
        seen = self._recorded.setdefault(meta["uid"], set())
        if digest in seen:
            return
        now = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{digest}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION, "kind": "NotebookServer", "name": meta["name"],
                "namespace": meta["namespace"], "uid": meta["uid"],
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": self.component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
        }
        try:
            await self.api.request("create", EVENTS.plural, "POST",
                                   EVENTS.path(meta["namespace"]), body=body,
                                   priority=priority)
        except ApiError as e:
            if e.status != 409:
                log.info("could not record event %s on %s: %s", reason, meta["name"], e)
                return
        seen.add(digest)

    # -- finalizer and teardown -------------------------------------------------------------

    async def _add_finalizer(self, server: Obj) -> Obj:
        meta = server["metadata"]
        finalizers = [*(meta.get("finalizers") or ()), FINALIZER]
        updated = await merge_patch(self.api, NOTEBOOK_SERVERS, meta["namespace"], meta["name"], {
            "metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}
        })
        return trim_server(updated)

    def _owned(self, cache: ObjectCache, namespace: str, uid: str) -> list[Obj]:
        keys = cache.owned_keys(uid) if isinstance(cache, NotifyingCache) else cache.keys()
        out = []
        for key in keys:
            if key[0] != namespace:
                continue
            obj = cache.get(key)
            if obj is not None and controller_uid(obj) == uid:
                out.append(obj)
        return out

    async def _delete_owned(self, rk: ResourceKind, namespace: str, name: str, uid: str) -> None:
        existing = await self.api.get_or_none(rk, namespace, name)
        if existing is None or controller_uid(existing) != uid:
            return
        try:
            await self.api.delete(rk, namespace, name, uid=existing["metadata"]["uid"],
                                  propagation_policy="Background")
        except ApiError as e:
            if e.status != 409:  # 409: a newer object of that name, not ours
                raise

    async def _teardown(self, server: Obj) -> Outcome:
        meta = server["metadata"]
        namespace, uid = meta["namespace"], meta["uid"]
        if FINALIZER not in (meta.get("finalizers") or ()):
            return Outcome()
        status = server.get("status") or {}
        if status.get("phase") != "Terminating":
            await self._write_status(server, {"phase": "Terminating"})
            await self._record(server, "Normal", "Terminating", "Stopping the server",
                               priority=Priority.NORMAL)
        pods = self._owned(self.pods, namespace, uid)
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                try:
                    await self.api.delete(PODS, namespace, pod["metadata"]["name"],
                                          uid=pod["metadata"]["uid"])
                except ApiError as e:
                    if e.status != 409:
                        raise
        if pods:
            return Outcome()  # the pods' DELETED events bring us back here
        for child in status.get("children") or ():
            if child.get("kind") in ("Pod", "PersistentVolumeClaim"):
                continue
            try:
                rk = await self.kinds.resolve(child["apiVersion"], child["kind"])
            except LookupError:
                continue
            await self._delete_owned(rk, namespace, child["name"], uid)
        for pvc in self._owned(self.pvcs, namespace, uid):
            pmeta = pvc["metadata"]
            if (pmeta.get("annotations") or {}).get(ANNOTATION_WHEN_STOPPED) == "Delete":
                try:
                    await self.api.delete(PVCS, namespace, pmeta["name"], uid=pmeta["uid"])
                except ApiError as e:
                    if e.status != 409:
                        raise
            else:
                # Retained: no longer owned, so garbage collection keeps it; identity
                # labels and annotations let the same server adopt it at its next start.
                await merge_patch(self.api, PVCS, namespace, pmeta["name"], {
                    "metadata": {"ownerReferences": None,
                                 "resourceVersion": pmeta["resourceVersion"]}})
        finalizers = [f for f in meta.get("finalizers") or () if f != FINALIZER]
        try:
            await merge_patch(self.api, NOTEBOOK_SERVERS, namespace, meta["name"], {
                "metadata": {"finalizers": finalizers or None,
                             "resourceVersion": meta["resourceVersion"]}})
        except ApiError as e:
            if e.status != 404:
                raise
        self.forget(uid, (namespace, meta["name"]))
        return Outcome()

    # -- delete_forever ---------------------------------------------------------------------

    async def _purge(self, server: Obj, spec: NotebookServerSpec) -> Outcome:
        meta = server["metadata"]
        namespace = meta["namespace"]
        status = server.get("status") or {}
        if any(c.get("type") == "StoragePurged" and c.get("status") == "True"
               for c in status.get("conditions") or ()):
            return Outcome()
        deleted = []
        for key in self.pvcs.keys():
            pvc = self.pvcs.get(key)
            if pvc is None or key[0] != namespace or controller_uid(pvc) is not None:
                continue
            pmeta = pvc["metadata"]
            if not self._same_identity(pvc, spec, meta["name"]):
                continue
            if (pmeta.get("annotations") or {}).get(ANNOTATION_DELETE_WITH_SERVER) != "true":
                continue
            try:
                await self.api.delete(PVCS, namespace, pmeta["name"], uid=pmeta["uid"])
            except ApiError as e:
                if e.status != 409:
                    raise
            deleted.append(pmeta["name"])
        generation = int(meta.get("generation") or 0)
        message = (f"Deleted {', '.join(deleted)}." if deleted else "No storage to delete.")
        conditions = set_condition(status.get("conditions") or [], "StoragePurged", "True",
                                   "Purged", message, generation)
        await self._write_status(server, {"conditions": conditions,
                                          "observedGeneration": generation})
        if deleted:
            await self._record(server, "Normal", "StorageDeleted", message,
                               priority=Priority.NORMAL)
        return Outcome()
