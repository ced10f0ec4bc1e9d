"""The start sequence of one server, as an object of its own.

``KubeSpawner.start()`` resolves its settings once (:class:`StartPlan`), runs the
pre-create checks (:mod:`async_kubespawner.lifecycle.preflight`: the final objects, before any is
created) and hands the plan to a :class:`StartOperation`, which runs the sequence:

1. the user namespace (once per process and API client), with ``enable_user_namespaces``;
2. the PVC, with ``storage_pvc_ensure``, after the pre-7 name check (an existing claim
   is mounted only if it is provably this server's, :mod:`.ownership`);
3. the pod, created with a create id so that the watch can recognise it before the
   create response arrives (a timed-out create is reconciled, never blindly retried; a
   leftover of this very server is replaced, anyone else's pod is refused);
4. the Secret and Service owned by the pod (a leftover replaced only if it is this
   server's), and ``after_pod_created_hook``;
5. the wait on the caches until :func:`~.readiness.assess` says ready or failed;
6. on any failure, the cleanup of what this start created.

The operation talks to the spawner only through :class:`StartHost` (the upstream hook
points: manifests, hooks, ``is_pod_running``, the URL), so the sequence can be read and
tested apart from the ~100 settings, and checks of object ownership can be slotted in
where the spawner answers ``is_ours``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes_asyncio.client import V1OwnerReference

from ..kube.cache import EventIndex, ObjectCache
from ..kube.client import (
    CREATE_ID_ANNOTATION,
    NAMESPACES,
    PODS,
    PVCS,
    SECRETS,
    SERVICES,
    EncodedCreate,
    KubeApi,
    encode_create,
    new_create_id,
)
from ..kube.deadline import Deadline
from ..kube.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NamespaceNotFound,
    RequestTooLarge,
)
from ..kube.pod_list import decode_created_uid
from ..kube.reflector import Reflector
from ..objects.identity import Scope, ServerIdentity
from ..objects.names import Names
from .errors import SpawnFailed, VolumeFailed
from .loop_turns import loop_turns
from .ownership import NotMine, adopt_or_create_pvc, create_or_replace_own, pvc_is_adoptable
from .progress import SpawnProgress
from .readiness import Memory, Target, Tolerances, Verdict, assess
from .wakeup import Wakeup

__all__ = [
    "PREPARATION_CONCURRENCY",
    "StartHost",
    "StartOperation",
    "StartPlan",
    "preparation_gate",
]

#: Starts preparing names and manifests at the same time, per event loop (CPU work that
#: a storm would otherwise do in one loop iteration; hooks may await inside).
PREPARATION_CONCURRENCY = 16
_preparation_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def preparation_gate() -> asyncio.Semaphore:
    """This event loop's limit on starts preparing at once."""
    loop = asyncio.get_running_loop()
    gate = _preparation_gates.get(loop)
    if gate is None:
        gate = _preparation_gates[loop] = asyncio.Semaphore(PREPARATION_CONCURRENCY)
    return gate


def _consume_result(future: asyncio.Future[Any]) -> None:
    """Retrieve a finished future's outcome so that asyncio does not report it."""
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True)
class StartPlan:
    """The settings of one start, read from the spawner's traits once, when it begins
    (after the profile and ``pre_spawn_hook`` have had their say)."""

    names: Names
    start_timeout: float
    stop_timeout: float
    tolerances: Tolerances
    ensure_namespace: bool
    ensure_pvc: bool
    needs_secret: bool
    needs_service: bool
    after_pod_created_hook: bool


class StartHost(Protocol):
    """What a start needs from the spawner: the upstream hook points, who owns what,
    and its log."""

    pod_uid: str
    storage_adopt_unowned_pvcs: bool

    @property
    def pvc_name(self) -> str: ...

    @property
    def log(self) -> logging.Logger | logging.LoggerAdapter[Any]: ...

    def get_namespace_manifest(self) -> Any: ...

    def get_pvc_manifest(self) -> Any: ...

    def get_secret_manifest(self, owner_reference: Any) -> Any: ...

    def get_service_manifest(self, owner_reference: Any) -> Any: ...

    async def _pod_manifest(self) -> Any: ...

    def server_identity(self) -> ServerIdentity: ...

    def pvc_scope(self) -> Scope: ...

    async def resolve_legacy_pvc_name(
        self, pvc_exists: Callable[[str], Awaitable[bool]]
    ) -> None: ...

    def mark_pvc_exists(self) -> None: ...

    async def run_after_pod_created_hook(self, pod: dict[str, Any]) -> None: ...

    def is_pod_running(self, pod: Mapping[str, Any] | None) -> bool: ...

    def _is_ours(self, pod: dict[str, Any]) -> bool: ...

    def _pod_url(self, pod: dict[str, Any]) -> str: ...

    def _log_state(self, state: str, detail: str = "", level: int = logging.INFO) -> None: ...


def _stock_is_pod_running(host: Any) -> bool:
    """Whether ``host.is_pod_running`` is the package's own (which only reads the pod)."""
    method = getattr(type(host), "is_pod_running", None)
    return (
        getattr(method, "__qualname__", "") == "KubeSpawnerSettings.is_pod_running"
        and getattr(method, "__module__", "") == _SETTINGS_MODULE
    )


#: Where the stock ``is_pod_running`` is defined (named, not imported: the settings
#: import the lifecycle, not the other way round).
_SETTINGS_MODULE = __name__.rsplit(".", 2)[0] + ".traits.settings"


@dataclass
class _StartWatch:
    """What a start knows of its pod: the uid once learnt, and the readiness memory
    (first sight, tolerance clocks) carried from one assessment to the next."""

    uid: str
    pod_name: str
    namespace: str
    pvc_name: str | None
    memory: Memory = field(default_factory=Memory)

    def target(self) -> Target:
        return Target(self.namespace, self.pod_name, self.uid, self.pvc_name)


class _IndexedEvents:
    """The readiness module's view of the event index, decoding only what it asks for;
    remembers whether the pod's events were consulted (whether they can change the
    verdict while the pod stays as it is)."""

    __slots__ = ("index", "pod_consulted", "target")

    def __init__(self, index: EventIndex, target: Target) -> None:
        self.index = index
        self.target = target
        self.pod_consulted = False

    def for_pod(self) -> list[dict[str, Any]]:
        self.pod_consulted = True
        target = self.target
        return self.index.for_object(target.namespace, target.pod_name, uid=target.uid)

    def for_pvc(self) -> list[dict[str, Any]]:
        target = self.target
        if not target.pvc_name:
            return []
        return self.index.for_object(
            target.namespace, target.pvc_name, kind="PersistentVolumeClaim"
        )


class StartOperation:
    """One run of the start sequence for one server (see the module docstring)."""

    def __init__(
        self,
        host: StartHost,
        plan: StartPlan,
        *,
        api: KubeApi,
        pod_reflector: Reflector[ObjectCache],
        event_reflector: Reflector[EventIndex] | None,
        progress: SpawnProgress | None,
        started: float,
    ) -> None:
        self.host = host
        self.plan = plan
        self.api = api
        self.pod_reflector = pod_reflector
        self.pod_cache = pod_reflector.sink
        self.event_index = event_reflector.sink if event_reflector else None
        self.progress = progress
        self.started = started
        self.namespace = plan.names.namespace
        self.pod_name = plan.names.pod_name
        self.deadline = Deadline(
            plan.start_timeout,
            f"Server {self.pod_name} in namespace {self.namespace} did not become ready",
            start=started,
        )
        self.pod_key = (self.namespace, self.pod_name)
        self.create_id = new_create_id()
        self.watch = _StartWatch(
            uid="", pod_name=self.pod_name, namespace=self.namespace, pvc_name=None
        )
        # Set by the listeners of the pod and its events; the readiness wait sleeps on it
        # (one future per wake, not an Event and a Timeout: see wakeup.py).
        self.changed = Wakeup()
        # Learnt from whichever comes first: the watch showing a pod with our create id,
        # or the create response. A plain future, not an Event: waiting on an Event needs
        # a task per spawn, and cancelling it leaves a reference cycle (task,
        # CancelledError, traceback) that only a full GC collection frees.
        self.uid_known: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The pod as its last change was delivered to _on_pod_change (until the next
        # look), and whether that look may use this dict instead of decoding the cache
        # entry (only the stock is_pod_running sees it: a subclass's override gets a
        # fresh dict at every look, as it always did).
        self._delivered: dict[str, Any] | None = None
        self._reuse_delivered = _stock_is_pod_running(host)
        # Whether an Event of the pod can change the verdict before the pod itself
        # changes: only when the last look consulted them (an unschedulable pod waiting
        # for an autoscaler); otherwise such an Event goes to the progress log alone and
        # does not wake the wait (a start hears four or five). A deployment's own
        # is_pod_running is asked at every wake, as it always was.
        self._pod_events_matter = True

    # -- the sequence -------------------------------------------------------------------

    async def run(self) -> str:
        """Start the server and return its URL, or raise with what went wrong (having
        removed what this start created)."""
        if self.plan.ensure_namespace:
            await self._ensure_namespace()
        pvc_created = await self._ensure_pvc() if self.plan.ensure_pvc else False
        # The legacy-name check may have adopted another PVC name.
        self.watch.pvc_name = self.host.pvc_name if self.plan.ensure_pvc else None
        async with preparation_gate():
            # Building the pod is CPU work: a storm of starts would otherwise build every
            # pod in one event-loop iteration and stall every watch and waiter behind it.
            await loop_turns().take()
            # Encoded at once, with this start's create id: the manifest's tree (a hundred
            # dicts, or a model's hundreds of objects) is freed here, and a burst's
            # creates queued for a request slot hold bytes, which no collection walks.
            pod_body = encode_create(await self.host._pod_manifest(), self.create_id)
        unsubscribe = self._subscribe()
        create_task = asyncio.ensure_future(self._create_pod(pod_body))
        del pod_body
        try:
            await self._await_created(create_task)
        except BaseException:
            for off in unsubscribe:
                off()
            raise
        uid = self.watch.uid
        self.host.pod_uid = uid
        self.host._log_state("created", f"uid={uid}")
        made: list[tuple[Any, str]] = []
        try:
            await self._create_owned(uid, made)
            if self.plan.after_pod_created_hook:
                # The hook gets the create response, as upstream's does.
                await self.host.run_after_pod_created_hook(await create_task)
            pod = await self._await_ready()
        except BaseException as e:
            volume_failed = isinstance(e, VolumeFailed)
            await self._cleanup(uid, made, delete_pvc=pvc_created and volume_failed)
            if volume_failed:
                raise SpawnFailed(str(e)) from None
            raise
        finally:
            for off in unsubscribe:
                off()
            if not create_task.done():
                # The watch proved the pod exists; the response no longer matters.
                create_task.cancel()
        url = self.host._pod_url(pod)
        self.host._log_state("ready", f"url={url} after={time.monotonic() - self.started:.3f}s")
        return url

    # -- before the pod -----------------------------------------------------------------

    async def _ensure_namespace(self) -> None:
        # The client forgets a namespace it is told is missing, and the reflectors'
        # release forgets it when no server of it is active: a deleted user namespace
        # is created again.
        if self.namespace in self.api.known_namespaces:
            return
        try:
            await self.api.create(NAMESPACES, None, self.host.get_namespace_manifest())
            self.host._log_state("namespace-created")
        except Conflict:
            pass
        except ApiError as e:
            raise SpawnFailed(
                f"Could not create the namespace {self.namespace!r} for this server: {e}. "
                "Check the hub's RBAC rights to create namespaces."
            ) from None
        self.api.known_namespaces.add(self.namespace)

    async def _ensure_pvc(self, *, namespace_recreated: bool = False) -> bool:
        """Create the PVC unless this server's exists; True when this start created it.
        A claim of that name that is not provably this server's is never mounted."""
        api, host, namespace = self.api, self.host, self.namespace
        identity = host.server_identity()
        scope = host.pvc_scope()
        adopt_unowned = host.storage_adopt_unowned_pvcs

        async def pvc_exists(name: str) -> bool:
            # Exists *and* may be mounted by this server (objects/identity.py).
            return await pvc_is_adoptable(
                api, namespace, name, identity, scope, adopt_unowned=adopt_unowned
            )

        # Upstream's order: the current name's PVC wins; the pre-7 name is adopted only
        # when the current one does not exist (so upgrading never detaches data).
        await host.resolve_legacy_pvc_name(pvc_exists)
        try:
            created = await adopt_or_create_pvc(
                api,
                namespace,
                host.get_pvc_manifest(),
                identity,
                scope,
                adopt_unowned=adopt_unowned,
            )
        except NotMine as e:
            hint = (
                " If administrators pre-provision claims, set "
                "c.KubeSpawner.storage_adopt_unowned_pvcs = True."
                if e.reason == "it records no owner"
                else " Ask an administrator: two servers are given the same claim name "
                "(pvc_name_template)."
            )
            raise SpawnFailed(
                f"The storage volume claim {host.pvc_name!r} exists but is not this "
                f"server's ({e.reason}), so it is not mounted.{hint}"
            ) from None
        except NamespaceNotFound as e:
            if not self.plan.ensure_namespace or namespace_recreated:
                raise SpawnFailed(
                    f"Could not create the storage volume claim {host.pvc_name!r}: {e}"
                ) from None
            # The user namespace was deleted since the hub created it: again, once.
            await self._ensure_namespace()
            return await self._ensure_pvc(namespace_recreated=True)
        except ApiError as e:
            raise SpawnFailed(
                f"Could not create the storage volume claim {host.pvc_name!r}: {e}"
            ) from None
        if created:
            host.log.info("kubespawner pvc=%s/%s state=created", namespace, host.pvc_name)
        host.mark_pvc_exists()
        return created

    # -- the pod --------------------------------------------------------------------------

    def _subscribe(self) -> list[Callable[[], None]]:
        """Listen to the pod and its (and its PVC's) events; returns the unsubscribers."""
        unsubscribe = [self.pod_cache.listen(self.pod_key, self._on_pod_change)]
        index = self.event_index
        if index is not None:
            unsubscribe.append(index.listen(self.namespace, self.pod_name, self._on_pod_event))
            if self.watch.pvc_name:
                unsubscribe.append(
                    index.listen(
                        self.namespace,
                        self.watch.pvc_name,
                        self._on_pvc_event,
                        kind="PersistentVolumeClaim",
                    )
                )
        return unsubscribe

    def _learn_uid(self, uid: str) -> None:
        if self.watch.uid:
            return
        self.watch.uid = uid
        if not self.uid_known.done():
            self.uid_known.set_result(None)
        if self.event_index is not None and self.progress is not None:
            for event in self.event_index.for_object(self.namespace, self.pod_name, uid=uid):
                self.progress.add_event(event)

    def _on_pod_change(self, pod: dict[str, Any] | None) -> None:
        self._delivered = pod
        self.changed.set()
        if pod is not None and not self.watch.uid:
            annotations = pod["metadata"].get("annotations") or {}
            if annotations.get(CREATE_ID_ANNOTATION) == self.create_id:
                self._learn_uid(pod["metadata"]["uid"])

    def _on_pod_event(self, event: dict[str, Any]) -> None:
        if self.watch.uid and event["involvedObject"].get("uid") == self.watch.uid:
            if self.progress is not None:
                self.progress.add_event(event)
            if self._pod_events_matter:
                self.changed.set()

    def _on_pvc_event(self, _event: dict[str, Any]) -> None:
        self.changed.set()

    async def _await_created(self, create_task: asyncio.Future[dict[str, Any]]) -> None:
        """Until the pod is known to exist: by the create response or by the watch."""
        either: set[asyncio.Future[Any]] = {create_task, self.uid_known}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            create_task.cancel()
            raise
        if self.uid_known.done():
            # Seen on the watch. A late error of the create call cannot undo that.
            create_task.add_done_callback(_consume_result)
            return
        self._learn_uid((await create_task)["metadata"]["uid"])

    async def _create_pod(self, manifest: EncodedCreate) -> dict[str, Any]:
        created = await self._create_pod_once(manifest)
        if self.plan.after_pod_created_hook:
            return created
        # start() reads only the uid; the whole response would otherwise stay alive (as
        # the task's result) until the pod is ready.
        return {"metadata": {"uid": created["metadata"]["uid"]}}

    async def _create_pod_once(self, manifest: EncodedCreate) -> dict[str, Any]:
        api, namespace, pod_name = self.api, self.namespace, self.pod_name
        # Without a hook, start() reads only the uid of the response: the created pod (a
        # few KB of defaults and managed fields) is not parsed.
        decode = None if self.plan.after_pod_created_hook else decode_created_uid
        try:
            return await api.create(
                PODS, namespace, manifest, create_id=self.create_id, decode=decode
            )
        except Conflict:
            pass
        except NamespaceNotFound:
            if self.plan.ensure_namespace:
                # Deleted since the hub created it (the client has forgotten it): again.
                await self._ensure_namespace()
                return await api.create(
                    PODS, namespace, manifest, create_id=self.create_id, decode=decode
                )
            raise SpawnFailed(
                f"The namespace {namespace!r} does not exist. Create it, or enable "
                "c.KubeSpawner.enable_user_namespaces so that the hub creates it."
            ) from None
        except (Forbidden, Invalid, BadRequest, RequestTooLarge) as e:
            raise SpawnFailed(f"Kubernetes refused the pod {pod_name!r}: {e}") from None
        existing = await api.get_or_none(PODS, namespace, pod_name)
        if existing is not None and not self.host._is_ours(existing):
            # The message reaches the user: it names no other owner.
            self.host._log_state(
                "name-taken", "the existing pod is not this server's", logging.WARNING
            )
            raise SpawnFailed(
                f"A pod named {pod_name!r} already exists in namespace {namespace!r} "
                "and is not this server's. Ask an administrator: another server or hub uses "
                "the same pod name (pod_name_template, component_label)."
            )
        if existing is not None:
            old_uid = existing["metadata"]["uid"]
            self.host._log_state("replacing-leftover", f"old_uid={old_uid}")
            await api.delete(PODS, namespace, pod_name, grace_period_seconds=0, uid=old_uid)
            await self.pod_reflector.wait_synced(self.deadline.left())
            await self.pod_cache.wait_for(
                self.pod_key,
                lambda p: p is None or p["metadata"].get("uid") != old_uid,
                self.deadline.left(),
            )
        return await api.create(PODS, namespace, manifest, create_id=self.create_id, decode=decode)

    # -- after the pod --------------------------------------------------------------------

    async def _create_owned(self, uid: str, made: list[tuple[Any, str]]) -> None:
        """The Secret and Service, owned by the pod (garbage-collected with it)."""
        owner = V1OwnerReference(
            api_version="v1", kind="Pod", name=self.pod_name, uid=uid, block_owner_deletion=True
        )
        if self.plan.needs_secret:
            await self._create_or_replace(SECRETS, self.host.get_secret_manifest(owner))
            made.append((SECRETS, self.plan.names.secret_name))
        if self.plan.needs_service:
            await self._create_or_replace(SERVICES, self.host.get_service_manifest(owner))
            made.append((SERVICES, self.pod_name))

    async def _create_or_replace(self, kind: Any, manifest: Any) -> None:
        """Create the Secret or Service; replace a leftover only if it is this server's."""
        try:
            await create_or_replace_own(
                self.api, kind, self.namespace, manifest, self.host.server_identity()
            )
        except NotMine as e:
            raise SpawnFailed(
                f"{e} Ask an administrator to rename or remove it, or to change "
                f"{'secret_name_template' if kind is SECRETS else 'pod_name_template'}."
            ) from None

    async def _await_ready(self) -> dict[str, Any]:
        """Wait on the caches until the pod is ready or is known to fail."""
        try:
            return await self._await_ready_looking()
        finally:
            self.changed.close()

    async def _await_ready_looking(self) -> dict[str, Any]:
        plan, host = self.plan, self.host
        while True:
            self.changed.clear()
            pod, verdict = self._look(time.monotonic())
            if verdict.state == "ready":
                assert pod is not None  # a verdict of ready is about a pod
                return pod
            if verdict.state == "failed":
                host._log_state("failed", f"reason={verdict.message!r}", logging.WARNING)
                if verdict.pvc_failure:
                    raise VolumeFailed(verdict.message)
                raise SpawnFailed(verdict.message)
            if self.deadline.expired:
                host._log_state("timeout", f"start_timeout={plan.start_timeout}", logging.WARNING)
                raise self.deadline.error(verdict.message)
            await self.changed.wait(self.deadline.timeout(verdict.recheck_in))

    def _look(self, now: float) -> tuple[dict[str, Any] | None, Verdict]:
        """One look at the pod and its events: the pod and the verdict on it."""
        watch = self.watch
        target = watch.target()
        pod = self._current_pod()
        # Not kept past the look: thousands of spawns waiting would each hold a decoded
        # pod for the collector to walk; the next wake is usually the next change anyway.
        self._delivered = None
        index = self.event_index
        events = _IndexedEvents(index, target) if index is not None else None
        verdict = assess(
            pod,
            events,
            self.plan.tolerances,
            now,
            target=target,
            memory=watch.memory,
            is_running=self.host.is_pod_running,
        )
        watch.memory = verdict.memory
        self._pod_events_matter = not self._reuse_delivered or (
            events is not None and events.pod_consulted
        )
        return pod, verdict

    def _current_pod(self) -> dict[str, Any] | None:
        """The pod as the cache holds it now: the dict its last change delivered, when
        that is still the cached version (the look right after a change of the pod,
        which is most looks), else a fresh decode of the cache entry."""
        if self._reuse_delivered:
            delivered = self._delivered
            version = self.pod_cache.version(self.pod_key)
            if version is None:
                return None
            if delivered is not None and delivered["metadata"].get("resourceVersion") == version:
                return delivered
        return self.pod_cache.get(self.pod_key)

    async def _cleanup(self, uid: str, made: list[tuple[Any, str]], *, delete_pvc: bool) -> None:
        """Remove what this start created, so the next attempt starts clean. Best effort:
        a cleanup error must not hide the reason the start failed."""
        api, namespace = self.api, self.namespace
        try:
            async with asyncio.timeout(self.plan.stop_timeout):
                await api.delete(PODS, namespace, self.pod_name, grace_period_seconds=0, uid=uid)
                for kind, name in made:
                    await api.delete(kind, namespace, name)
                pvc_name = self.watch.pvc_name
                if delete_pvc and pvc_name:
                    await api.delete(PVCS, namespace, pvc_name)
            self.host._log_state("cleaned-up")
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            self.host._log_state("cleanup-failed", f"error={e}", logging.WARNING)
