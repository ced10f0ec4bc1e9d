"""The JupyterHub lifecycle of a Kubernetes-backed server: start, stop, poll, progress.

``KubeSpawner`` composes the settings (``traits``: every upstream ``c.KubeSpawner.*``
setting and the manifests), the profiles, and this lifecycle. It is thin on purpose: it
sends requests through the shared client (:mod:`.kube.client`, which owns retries) and
answers every "is it ready / gone / still running?" question from the shared reflectors'
caches (:mod:`.kube.reflector`), whose watches wake it the moment something changes.

What this buys over upstream KubeSpawner 7.1:

* ``start()`` returns within milliseconds of the pod becoming ready (no polling with
  backoff), and ends within a second or two with an actionable message when the API
  already reports a failure (image cannot be pulled, pod cannot be scheduled, container
  crashed, pod evicted, volume cannot be provisioned) instead of after ``start_timeout``;
  it cleans up what it created.
* A create that timed out is reconciled, never blindly retried into a 409 that deletes
  the pod it just made; a 409 for a pod that is not this server's fails clearly.
* ``poll()`` costs no API call, and never answers from a cache that has not been filled.
* ``stop()`` has its own ``stop_timeout`` and returns the moment the pod is gone.
* Nothing logs a manifest (a pod carries the API token).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from jupyterhub.spawner import Spawner
from kubernetes_asyncio.client import V1OwnerReference
from tornado import web
from traitlets import Bool, Float, Integer, validate

from .kube.cache import EventIndex, ObjectCache, trim_pod
from .kube.client import (
    CREATE_ID_ANNOTATION,
    EVENTS,
    NAMESPACES,
    PODS,
    PVCS,
    SECRETS,
    SERVICES,
    ApiError,
    ApiSettings,
    KubeApi,
    close_shared_apis,
    new_create_id,
    shared_api,
)
from .kube.reflector import Reflector, ReflectorSettings, get_reflector, reflectors, stop_reflectors
from .lifecycle.loop_turns import loop_turns
from .lifecycle.orphans import HubDatabase, schedule_orphan_sweep
from .lifecycle.ownership import (
    NotMine,
    adopt_or_create_pvc,
    create_or_replace_own,
    delete_own,
    delete_pvc_forever,
    pvc_is_adoptable,
)
from .lifecycle.progress import SpawnProgress
from .lifecycle.reconciler import OwedDeletion, deletion_reconciler, stop_reconcilers
from .metrics import SPAWN_DURATION, STOP_DURATION
from .objects.identity import Ownership, pod_ownership
from .preflight import check_before_create, take_checked_pod
from .profiles import ProfilesMixin
from .startup_heap import freeze_startup_heap
from .traits import KubeSpawnerSettings, SpawnerConfigError

_IMAGE_PULL_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
    }
)

# Namespaces known to exist, per API client (created once per process).
_ensured_namespaces: dict[int, set[str]] = {}


async def close_shared_resources() -> None:
    """Stop this event loop's reflectors and close its API client.

    For a clean shutdown (tests, embedding, a hub's shutdown hook): afterwards no task of
    this package is pending and no HTTP session is open. Spawners used later simply start
    new ones.
    """
    await stop_reconcilers()
    await stop_reflectors()
    await close_shared_apis()


def reflector_health() -> list[dict[str, Any]]:
    """Health of this event loop's reflectors (for a health page or a hub service):
    whether each runs and has listed, seconds since it last heard from the API server,
    restarts, errors and the last error."""
    return [vars(r.health()) for r in reflectors()]


#: Starts preparing names and manifests at the same time, per event loop (CPU work that
#: a storm would otherwise do in one loop iteration; hooks may await inside).
PREPARATION_CONCURRENCY = 16
_preparation_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _preparation_gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _preparation_gates.get(loop)
    if gate is None:
        gate = _preparation_gates[loop] = asyncio.Semaphore(PREPARATION_CONCURRENCY)
    return gate


def _consume_result(future: asyncio.Future[Any]) -> None:
    """Retrieve a finished future's outcome so that asyncio does not report it."""
    if not future.cancelled():
        future.exception()


#: How much of a container's termination message (its last output, with
#: ``terminationMessagePolicy: FallbackToLogsOnError``) a spawn failure quotes.
TERMINATION_MESSAGE_LIMIT = 1000


def _last_output(terminated: dict[str, Any]) -> str:
    """The container's termination message, quoted for the spawn page.

    A traceback from the server's last lines tells a user more than any advice we can
    give; Kubernetes fills it from ``/dev/termination-log`` or, with
    ``FallbackToLogsOnError``, from the log tail. Only the end is kept: that is where the
    error is.
    """
    message = str(terminated.get("message") or "").strip()
    if not message:
        return ""
    if len(message) > TERMINATION_MESSAGE_LIMIT:
        message = "…" + message[-TERMINATION_MESSAGE_LIMIT:]
    return f" Its last output: {message}"


class SpawnFailed(web.HTTPError):
    """start() cannot succeed; the message tells the user (or admin) what to do.

    An ``HTTPError`` carrying ``jupyterhub_message`` because that is what JupyterHub
    relays to the user verbatim: a failure within the first second of a spawn is raised
    straight into the spawn form's POST, where any other exception becomes a bare
    "HTTP 500: Unhandled error starting server".
    """

    def __init__(self, message: str) -> None:
        super().__init__(500, reason="Spawn failed")
        self.message = message
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class _Verdict:
    state: str  # "ready" | "failed" | "waiting"
    message: str = ""
    recheck_in: float | None = None  # seconds until a tolerance expires
    pvc_failure: bool = False


@dataclass
class _StartWatch:
    """What a start has seen of its pod, for tolerances measured from first sight."""

    uid: str
    pod_name: str
    namespace: str
    pvc_name: str | None
    seen: bool = False
    since: dict[str, float] = field(default_factory=dict)

    def first_seen(self, what: str, now: float) -> float:
        return self.since.setdefault(what, now)

    def clear(self, what: str) -> None:
        self.since.pop(what, None)


class KubeSpawner(ProfilesMixin, KubeSpawnerSettings, Spawner):
    """A JupyterHub spawner that runs each server as a pod (drop-in for upstream 7.1)."""

    # -- lifecycle settings (beyond upstream's) ------------------------------------------

    stop_timeout = Integer(
        60,
        help="""Seconds stop() waits for the pod to disappear after deleting it.

        Upstream KubeSpawner reuses start_timeout; a slow image pull and a slow shutdown
        are different things, so they get separate limits here.""",
    ).tag(config=True)

    image_pull_error_tolerance = Float(
        0,
        help="""Seconds an image pull error (ErrImagePull, ImagePullBackOff) may persist
        before start() fails. 0 fails at the first report: an image that cannot be pulled
        rarely heals, and the user should not wait for start_timeout to learn it. Raise it
        for registries with transient outages.""",
    ).tag(config=True)

    config_error_tolerance = Float(
        10,
        help="""Seconds a CreateContainerConfigError (a Secret, ConfigMap or key the pod
        needs is missing) may persist before start() fails. It is normal for the instant
        between the pod and its Secret being created (api_token_in_secret, internal_ssl),
        and the kubelet retries on its own; if it lasts, the missing object is not coming.
        Raise it when another controller creates objects the pod needs.""",
    ).tag(config=True)

    @validate("image_pull_error_tolerance", "config_error_tolerance", "unschedulable_tolerance")
    def _check_tolerance(self, proposal: Any) -> float:
        value = proposal.value
        if value < 0:
            raise SpawnerConfigError(
                proposal.trait.name,
                value,
                "a tolerance cannot be negative",
                "Use 0 to fail at the first report, or a number of seconds to wait.",
            )
        return value

    unschedulable_tolerance = Float(
        30,
        help="""Seconds a pod may stay unschedulable (FailedScheduling) before start() fails.
        While a cluster autoscaler reports a scale-up for the pod, start() keeps waiting up
        to start_timeout instead.""",
    ).tag(config=True)

    first_list_timeout = Float(
        10,
        help="""Seconds poll() waits for the pod reflector's first list. Until then the
        cache cannot say that a pod is gone, so poll() answers None (running) rather than
        risk declaring a running server stopped.""",
    ).tag(config=True)

    reflector_cluster_wide = Bool(
        None,
        allow_none=True,
        help="""Watch pods and events in all namespaces with one reflector (needs list/watch
        rights cluster-wide). None: cluster-wide when enable_user_namespaces is on. Set False
        for hubs that may only list in their users' namespaces: one reflector per
        namespace, shared by that namespace's servers.""",
    ).tag(config=True)

    reflector_watch_timeout = Integer(
        300,
        help="""Seconds each watch is held before it is renewed from the last
        resourceVersion (no relist). Idle hubs send no other requests.""",
    ).tag(config=True)

    reflector_idle_timeout = Float(
        None,
        allow_none=True,
        help="""Seconds without any data (event or bookmark) after which a watch is presumed
        dead and reopened. None: rely on reflector_watch_timeout.""",
    ).tag(config=True)

    reflector_backoff_max = Float(
        30,
        help="Longest pause (seconds, jittered) between reflector attempts during an outage.",
    ).tag(config=True)

    reflector_list_page_size = Integer(
        200,
        help="Objects per list page, bounding each JSON parse on the hub's event loop.",
    ).tag(config=True)

    events_per_object_limit = Integer(
        100, help="Kubernetes events kept per pod or PVC for progress and diagnosis."
    ).tag(config=True)

    events_total_limit = Integer(
        20000, help="Kubernetes events kept in total by the hub (oldest dropped first)."
    ).tag(config=True)

    def profile_overrides_applied(self) -> None:
        """A profile may change name templates, ``namespace`` or ``slug_scheme``."""
        if self._has_user():
            self._refresh_names()

    # -- shared resources --------------------------------------------------------------

    _progress_log: SpawnProgress | None = None

    @property
    def progress_log(self) -> SpawnProgress | None:
        """The running start()'s progress log (hooks may ``push`` to it); None otherwise."""
        return self._progress_log

    def _api_settings(self) -> ApiSettings:
        return ApiSettings(
            host=self.k8s_api_host,
            ssl_ca_cert=self.k8s_api_ssl_ca_cert,
            verify_ssl=self.k8s_api_verify_ssl,
            request_timeout=float(self.k8s_api_request_timeout),
            retry_timeout=float(self.k8s_api_request_retry_timeout),
            max_concurrent_requests=int(self.k8s_api_max_concurrent_requests),
        )

    async def _get_api(self) -> KubeApi:
        if self.freeze_startup_heap:
            freeze_startup_heap()  # once per process; see startup_heap.py
        return await shared_api(self._api_settings())

    def _reflector_settings(self) -> ReflectorSettings:
        return ReflectorSettings(
            watch_timeout=self.reflector_watch_timeout,
            idle_timeout=self.reflector_idle_timeout,
            backoff_max=self.reflector_backoff_max,
            list_page_size=self.reflector_list_page_size,
        )

    def _watch_namespace(self) -> str | None:
        cluster_wide = self.reflector_cluster_wide
        if cluster_wide is None:
            cluster_wide = bool(self.enable_user_namespaces)
        return None if cluster_wide else self.namespace

    async def _pod_reflector(self) -> Reflector:
        api = await self._get_api()
        reflector = get_reflector(
            api,
            PODS,
            self._watch_namespace(),
            lambda: ObjectCache(trim_pod),
            label_selector=f"component={self.component_label}",
            settings=self._reflector_settings(),
        )
        self._sweep_orphans_once(api, reflector)
        return reflector

    def _sweep_orphans_once(self, api: KubeApi, reflector: Reflector) -> None:
        """Start this process's orphan sweep of the pod cache (lifecycle/orphans.py):
        needs the hub's database, which a spawner inside a hub reaches as ``user.db``."""
        if not self.delete_orphaned_pods:
            return
        db = getattr(self.user, "db", None)
        if db is None:
            return
        schedule_orphan_sweep(
            api,
            reflector,
            hub=self.server_identity().hub,
            component_label=self.component_label,
            records=HubDatabase(db),
        )

    async def _event_reflector(self) -> Reflector | None:
        if not self.events_enabled:
            return None
        limits = (self.events_per_object_limit, self.events_total_limit)
        return get_reflector(
            await self._get_api(),
            EVENTS,
            self._watch_namespace(),
            lambda: EventIndex(per_object_limit=limits[0], total_limit=limits[1]),
            settings=self._reflector_settings(),
        )

    @property
    def _pod_key(self) -> tuple[str, str]:
        return (self.namespace, self.pod_name)

    def _log_state(self, state: str, detail: str = "", level: int = logging.INFO) -> None:
        """One line per state change, always with namespace/pod; never a manifest."""
        self.log.log(
            level,
            "kubespawner pod=%s/%s state=%s%s",
            self.namespace,
            self.pod_name,
            state,
            f" {detail}" if detail else "",
        )

    # -- start --------------------------------------------------------------------------

    def start(self) -> asyncio.Future[str]:  # type: ignore[override]
        """Start the server; returns a future of its URL.

        Not a coroutine on purpose: JupyterHub calls ``start()`` and may ask for
        ``progress()`` before a coroutine's body would have run. Creating this spawn's
        progress log here, synchronously, means every listener follows the right spawn.
        """
        self._progress_log = self._new_progress_log()
        return asyncio.ensure_future(self._start_measured(self._progress_log))

    async def _start_measured(self, progress_log: SpawnProgress) -> str:
        started = time.monotonic()
        outcome = "failure"
        try:
            url = await self._start(started)
            outcome = "success"
            return url
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except TimeoutError:
            outcome = "timeout"
            raise
        finally:
            SPAWN_DURATION.labels(outcome).observe(time.monotonic() - started)
            progress_log.finish()

    async def _start(self, started: float) -> str:
        deadline = started + self.start_timeout
        await self.load_user_options()
        async with _preparation_gate():
            # The semaphore alone lets a body that never suspends through at once (all of
            # a storm in one iteration); the turn hands the loop over between bodies.
            await loop_turns().take()
            self._refresh_names()
            self.check_configuration()
        api = await self._get_api()
        pod_reflector = await self._pod_reflector()
        event_reflector = await self._event_reflector()
        async with _preparation_gate():  # builds the pod: CPU work, as below
            await loop_turns().take()
            await check_before_create(self, api)  # the final objects, before any create

        if self.enable_user_namespaces:
            await self._ensure_namespace(api)
        pvc_created = False
        if self.storage_pvc_ensure:
            pvc_created = await self._ensure_pvc(api)
        async with _preparation_gate():
            # Building the pod is CPU work: a storm of starts would otherwise build every
            # pod in one event-loop iteration and stall every watch and waiter behind it.
            await loop_turns().take()
            pod_manifest = await self._pod_manifest()

        watch = _StartWatch(
            uid="",
            pod_name=self.pod_name,
            namespace=self.namespace,
            pvc_name=self.pvc_name if self.storage_pvc_ensure else None,
        )
        create_id = new_create_id()
        # Learn the new pod's uid from whichever comes first: the watch showing a pod with
        # our create id, or the create response. Under load the watch often wins by
        # seconds, and progress and readiness must not wait for the response.
        # A plain future, not an Event: waiting on an Event needs a task per spawn, and
        # cancelling it leaves a reference cycle (task, CancelledError, traceback) that
        # only a full GC collection frees.
        uid_known: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        changed = asyncio.Event()
        pod_cache: ObjectCache = pod_reflector.sink  # type: ignore[assignment]
        event_index: EventIndex | None = (
            event_reflector.sink if event_reflector else None  # type: ignore[assignment]
        )
        progress = self._progress_log

        def learn_uid(uid: str) -> None:
            if watch.uid:
                return
            watch.uid = uid
            if not uid_known.done():
                uid_known.set_result(None)
            if event_index is not None and progress is not None:
                for event in event_index.for_object(self.namespace, self.pod_name, uid=uid):
                    progress.add_event(event)

        def on_pod_change(pod: dict[str, Any] | None) -> None:
            changed.set()
            if pod is not None and not watch.uid:
                annotations = pod["metadata"].get("annotations") or {}
                if annotations.get(CREATE_ID_ANNOTATION) == create_id:
                    learn_uid(pod["metadata"]["uid"])

        def on_pod_event(event: dict[str, Any]) -> None:
            if watch.uid and event["involvedObject"].get("uid") == watch.uid:
                if progress is not None:
                    progress.add_event(event)
                changed.set()

        unsubscribe = [pod_cache.listen(self._pod_key, on_pod_change)]
        if event_index is not None:
            unsubscribe.append(event_index.listen(self.namespace, self.pod_name, on_pod_event))
            if watch.pvc_name:
                unsubscribe.append(
                    event_index.listen(
                        self.namespace,
                        watch.pvc_name,
                        lambda _e: changed.set(),
                        kind="PersistentVolumeClaim",
                    )
                )
        create_task = asyncio.ensure_future(
            self._create_pod(api, pod_manifest, pod_reflector, deadline, create_id)
        )
        # The model tree (hundreds of objects) now belongs to the create alone: held here
        # through the readiness wait, 1,000 of them would feed full GC collections.
        del pod_manifest
        try:
            await self._await_created(create_task, uid_known, learn_uid)
        except BaseException:
            for off in unsubscribe:
                off()
            raise
        uid = watch.uid
        self.pod_uid = uid
        self._log_state("created", f"uid={uid}")
        made: list[tuple[Any, str]] = []
        try:
            owner = V1OwnerReference(
                api_version="v1", kind="Pod", name=self.pod_name, uid=uid, block_owner_deletion=True
            )
            if getattr(self, "needs_secret", False):
                await self._create_or_replace(api, SECRETS, self.get_secret_manifest(owner))
                made.append((SECRETS, self.secret_name))
            if self.needs_service:
                await self._create_or_replace(api, SERVICES, self.get_service_manifest(owner))
                made.append((SERVICES, self.pod_name))
            if self.after_pod_created_hook is not None:
                # The hook gets the create response, as upstream's does.
                await self.run_after_pod_created_hook(await create_task)
            pod = await self._await_ready(watch, pod_cache, event_index, changed, deadline)
        except BaseException as e:
            pvc_failed = isinstance(e, _PVCFailed)
            await self._cleanup_failed_start(api, uid, made, pvc_created and pvc_failed)
            if isinstance(e, _PVCFailed):
                raise SpawnFailed(str(e)) from None
            raise
        finally:
            for off in unsubscribe:
                off()
            if not create_task.done():
                # The watch proved the pod exists; the response no longer matters.
                create_task.cancel()
        url = self._pod_url(pod)
        self._log_state("ready", f"url={url} after={time.monotonic() - started:.3f}s")
        return url

    async def _await_created(
        self,
        create_task: asyncio.Future[dict[str, Any]],
        uid_known: asyncio.Future[None],
        learn_uid: Callable[[str], None],
    ) -> None:
        """Until the pod is known to exist: by the create response or by the watch."""
        try:
            await asyncio.wait({create_task, uid_known}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            create_task.cancel()
            raise
        if uid_known.done():
            # Seen on the watch. A late error of the create call cannot undo that.
            create_task.add_done_callback(_consume_result)
            return
        learn_uid((await create_task)["metadata"]["uid"])

    async def _pod_manifest(self) -> Any:
        checked = take_checked_pod(self)
        if checked is not None:
            return checked
        prepare = getattr(self, "prepare_pod", None)
        if prepare is not None:
            return await prepare()
        return await self.get_pod_manifest()

    async def _ensure_namespace(self, api: KubeApi) -> None:
        known = _ensured_namespaces.setdefault(id(api), set())
        if self.namespace in known:
            return
        try:
            await api.create(NAMESPACES, None, self.get_namespace_manifest())
            self._log_state("namespace-created")
        except ApiError as e:
            if e.status != 409:
                raise SpawnFailed(
                    f"Could not create the namespace {self.namespace!r} for this server: {e}. "
                    "Check the hub's RBAC rights to create namespaces."
                ) from None
        known.add(self.namespace)

    async def _ensure_pvc(self, api: KubeApi) -> bool:
        """Create the PVC unless it exists; True when this start created it."""

        identity = self.server_identity()
        scope = self.pvc_scope()
        adopt_unowned = self.storage_adopt_unowned_pvcs

        async def pvc_exists(name: str) -> bool:
            # Exists *and* may be mounted by this server (objects/identity.py).
            return await pvc_is_adoptable(
                api, self.namespace, name, identity, scope, adopt_unowned=adopt_unowned
            )

        # Upstream's order: the current name's PVC wins; the pre-7 name is adopted only
        # when the current one does not exist (so upgrading never detaches data).
        await self.resolve_legacy_pvc_name(pvc_exists)
        try:
            created = await adopt_or_create_pvc(
                api,
                self.namespace,
                self.get_pvc_manifest(),
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
                f"The storage volume claim {self.pvc_name!r} exists but is not this "
                f"server's ({e.reason}), so it is not mounted.{hint}"
            ) from None
        except ApiError as e:
            raise SpawnFailed(
                f"Could not create the storage volume claim {self.pvc_name!r}: {e}"
            ) from None
        if created:
            self.log.info("kubespawner pvc=%s/%s state=created", self.namespace, self.pvc_name)
        mark = getattr(self, "mark_pvc_exists", None)
        if mark is not None:
            mark()
        return created

    def _is_ours(self, pod: dict[str, Any]) -> bool:
        """Whether an existing pod is provably this server's: the uid this server created,
        or this hub's component label and an owner annotation naming this server
        (objects/identity.py). Never by name alone."""
        meta = pod.get("metadata") or {}
        if self.pod_uid and meta.get("uid") == self.pod_uid:
            return True
        return (
            pod_ownership(self.server_identity(), meta, self.component_label) is Ownership.MINE
        )

    async def _create_pod(
        self, api: KubeApi, manifest: Any, reflector: Reflector, deadline: float, create_id: str
    ) -> dict[str, Any]:
        created = await self._create_pod_once(api, manifest, reflector, deadline, create_id)
        if self.after_pod_created_hook is not None:
            return created
        # start() reads only the uid; the whole response would otherwise stay alive (as
        # the task's result) until the pod is ready.
        return {"metadata": {"uid": created["metadata"]["uid"]}}

    async def _create_pod_once(
        self, api: KubeApi, manifest: Any, reflector: Reflector, deadline: float, create_id: str
    ) -> dict[str, Any]:
        try:
            return await api.create(PODS, self.namespace, manifest, create_id=create_id)
        except ApiError as e:
            if e.status == 409:
                pass
            elif e.status == 404 and "namespaces" in (e.body.get("details") or {}).get("kind", ""):
                raise SpawnFailed(
                    f"The namespace {self.namespace!r} does not exist. Create it, or enable "
                    "c.KubeSpawner.enable_user_namespaces so that the hub creates it."
                ) from None
            elif e.status in (403, 422, 400):
                raise SpawnFailed(f"Kubernetes refused the pod {self.pod_name!r}: {e}") from None
            else:
                raise
        existing = await api.get_or_none(PODS, self.namespace, self.pod_name)
        if existing is not None and not self._is_ours(existing):
            # The message reaches the user: it names no other owner.
            self._log_state("name-taken", "the existing pod is not this server's", logging.WARNING)
            raise SpawnFailed(
                f"A pod named {self.pod_name!r} already exists in namespace {self.namespace!r} "
                "and is not this server's. Ask an administrator: another server or hub uses "
                "the same pod name (pod_name_template, component_label)."
            )
        if existing is not None:
            old_uid = existing["metadata"]["uid"]
            self._log_state("replacing-leftover", f"old_uid={old_uid}")
            await api.delete(
                PODS, self.namespace, self.pod_name, grace_period_seconds=0, uid=old_uid
            )
            await reflector.wait_synced(max(0.0, deadline - time.monotonic()))
            await reflector.sink.wait_for(  # type: ignore[attr-defined]
                self._pod_key,
                lambda p: p is None or p["metadata"].get("uid") != old_uid,
                max(0.0, deadline - time.monotonic()),
            )
        return await api.create(PODS, self.namespace, manifest, create_id=create_id)

    async def _create_or_replace(self, api: KubeApi, kind: Any, manifest: Any) -> None:
        """Create the Secret or Service; replace a leftover only if it is this server's."""
        try:
            await create_or_replace_own(
                api, kind, self.namespace, manifest, self.server_identity()
            )
        except NotMine as e:
            raise SpawnFailed(
                f"{e} Ask an administrator to rename or remove it, or to change "
                f"{'secret_name_template' if kind is SECRETS else 'pod_name_template'}."
            ) from None

    async def _cleanup_failed_start(
        self, api: KubeApi, uid: str, made: list[tuple[Any, str]], delete_pvc: bool
    ) -> None:
        """Remove what this start created, so the next attempt starts clean. Best effort:
        a cleanup error must not hide the reason the start failed."""
        try:
            async with asyncio.timeout(self.stop_timeout):
                await api.delete(
                    PODS, self.namespace, self.pod_name, grace_period_seconds=0, uid=uid
                )
                for kind, name in made:
                    await api.delete(kind, self.namespace, name)
                if delete_pvc and self.pvc_name:
                    await api.delete(PVCS, self.namespace, self.pvc_name)
            self._log_state("cleaned-up")
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            self._log_state("cleanup-failed", f"error={e}", logging.WARNING)

    async def _await_ready(
        self,
        watch: _StartWatch,
        pod_cache: ObjectCache,
        event_index: EventIndex | None,
        changed: asyncio.Event,
        deadline: float,
    ) -> dict[str, Any]:
        """Wait on the caches until the pod is ready or is known to fail. ``changed`` is
        set by the listeners of the pod and its events (registered by start())."""
        while True:
            changed.clear()
            now = time.monotonic()
            verdict = self._assess(watch, pod_cache.get(self._pod_key), event_index, now)
            if verdict.state == "ready":
                return pod_cache.get(self._pod_key)  # type: ignore[return-value]
            if verdict.state == "failed":
                self._log_state("failed", f"reason={verdict.message!r}", logging.WARNING)
                if verdict.pvc_failure:
                    raise _PVCFailed(verdict.message)
                raise SpawnFailed(verdict.message)
            remaining = deadline - now
            if remaining <= 0:
                self._log_state("timeout", f"start_timeout={self.start_timeout}", logging.WARNING)
                raise TimeoutError(
                    f"Server {self.pod_name} in namespace {self.namespace} did not become "
                    f"ready within {self.start_timeout} seconds"
                    + (f": {verdict.message}" if verdict.message else "")
                )
            wait = remaining if verdict.recheck_in is None else min(remaining, verdict.recheck_in)
            try:
                async with asyncio.timeout(wait):
                    await changed.wait()
            except TimeoutError:
                pass

    def _assess(
        self,
        watch: _StartWatch,
        pod: dict[str, Any] | None,
        events: EventIndex | None,
        now: float,
    ) -> _Verdict:
        """Classify the pod: ready, failed (with a message a user can act on), or waiting."""
        if pod is None or pod["metadata"].get("uid") != watch.uid:
            if watch.seen:
                return _Verdict(
                    "failed",
                    f"The server's pod {self.pod_name} was deleted before "
                    "it became ready. Try starting it again.",
                )
            return _Verdict("waiting")
        watch.seen = True
        meta, status = pod["metadata"], pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            return _Verdict(
                "failed",
                f"The server's pod {self.pod_name} is being deleted "
                "before it became ready. Try starting it again.",
            )
        if self.is_pod_running(pod):
            return _Verdict("ready")
        phase = status.get("phase")
        if phase == "Failed":
            reason = status.get("reason") or "Failed"
            detail = status.get("message") or ""
            if reason == "Evicted":
                return _Verdict(
                    "failed",
                    f"The server was evicted from its node: {detail} "
                    "Try again; if it recurs, choose a smaller profile "
                    "or ask an administrator.",
                )
            return _Verdict("failed", f"The server's pod failed ({reason}). {detail}".strip())
        recheck: list[float] = []
        for cs in (
            *(status.get("initContainerStatuses") or ()),
            *(status.get("containerStatuses") or ()),
        ):
            verdict = self._assess_container(watch, cs, now, recheck)
            if verdict is not None:
                return verdict
        if phase == "Succeeded":
            return _Verdict(
                "failed",
                "The notebook server exited (with success) before it "
                "became ready. Check the image's start command.",
            )
        scheduled = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None
        )
        if (
            scheduled
            and scheduled.get("status") == "False"
            and (scheduled.get("reason") == "Unschedulable")
        ):
            message = scheduled.get("message") or "no node can run it"
            pvc_problem = self._pvc_failure(watch, events)
            if pvc_problem:
                return _Verdict("failed", pvc_problem, pvc_failure=True)
            if events is not None and any(
                e.get("reason") == "TriggeredScaleUp"
                for e in events.for_object(self.namespace, self.pod_name, uid=watch.uid)
            ):
                return _Verdict("waiting", f"waiting for the cluster to scale up: {message}")
            since = watch.first_seen("unschedulable", now)
            left = self.unschedulable_tolerance - (now - since)
            if left <= 0:
                return _Verdict(
                    "failed",
                    f"No node can run this server: {message}. Choose a "
                    "smaller profile or try again later; if it persists, "
                    "ask an administrator.",
                )
            return _Verdict("waiting", message, recheck_in=left)
        watch.clear("unschedulable")
        pvc_problem = self._pvc_failure(watch, events)
        if pvc_problem:
            return _Verdict("failed", pvc_problem, pvc_failure=True)
        return _Verdict("waiting", recheck_in=min(recheck) if recheck else None)

    def _assess_container(
        self, watch: _StartWatch, cs: dict[str, Any], now: float, recheck: list[float]
    ) -> _Verdict | None:
        name = cs.get("name")
        state = cs.get("state") or {}
        waiting = state.get("waiting")
        key = f"{name}:"
        if waiting:
            reason = waiting.get("reason") or ""
            detail = waiting.get("message") or ""
            if reason in _IMAGE_PULL_REASONS:
                since = watch.first_seen(key + "pull", now)
                left = self.image_pull_error_tolerance - (now - since)
                if left <= 0:
                    return _Verdict(
                        "failed",
                        f"The image of container {name!r} cannot be pulled ({reason}): "
                        f"{detail or 'no detail given'}. Check the image name and tag, and that "
                        "the registry is reachable and its credentials (image_pull_secrets) "
                        "are set.",
                    )
                recheck.append(left)
                return None
            watch.clear(key + "pull")
            if reason == "CrashLoopBackOff":
                last = (cs.get("lastState") or {}).get("terminated") or {}
                code = last.get("exitCode")
                why = f"exit code {code}" if code is not None else "it keeps exiting"
                if last.get("reason"):
                    why += f", {last['reason']}"
                return _Verdict(
                    "failed",
                    f"Container {name!r} keeps crashing ({why}; restarted "
                    f"{cs.get('restartCount', 0)} times). Check the image's start command and "
                    "the server's logs." + _last_output(last),
                )
            if reason == "CreateContainerConfigError":
                since = watch.first_seen(key + "config", now)
                left = self.config_error_tolerance - (now - since)
                if left <= 0:
                    return _Verdict(
                        "failed",
                        f"Container {name!r} cannot be created: {detail}. "
                        "A Secret or ConfigMap it needs is missing.",
                    )
                recheck.append(left)
                return None
            watch.clear(key + "config")
            return None
        terminated = state.get("terminated")
        if terminated and name == "notebook":
            code = terminated.get("exitCode")
            reason = terminated.get("reason") or ""
            return _Verdict(
                "failed",
                f"The notebook server exited with code {code}"
                + (f" ({reason})" if reason else "")
                + " before it became ready. Check the image's start command and the server's "
                "logs." + _last_output(terminated),
            )
        return None

    def _pvc_failure(self, watch: _StartWatch, events: EventIndex | None) -> str | None:
        if not watch.pvc_name or events is None:
            return None
        for event in reversed(
            events.for_object(self.namespace, watch.pvc_name, kind="PersistentVolumeClaim")
        ):
            if event.get("type") == "Warning" and event.get("reason") in (
                "ProvisioningFailed",
                "FailedBinding",
            ):
                return (
                    f"The storage volume {watch.pvc_name!r} cannot be provisioned: "
                    f"{event.get('message', '')}. Ask an administrator to check the "
                    "storage class."
                )
        return None

    def _pod_url(self, pod: dict[str, Any]) -> str:
        """The settings' URL (get_pod_url hook, pod_connect_ip, dns_name or pod IP), with
        the port the pod actually declares as ``notebook-port`` (a modify_pod_hook may
        have changed it)."""
        url = self._get_pod_url(pod)
        if self.get_pod_url is not None:
            return url
        for container in pod.get("spec", {}).get("containers") or ():
            if container.get("name") != "notebook":
                continue
            for port in container.get("ports") or ():
                if port.get("name") == "notebook-port" and port.get("containerPort"):
                    base, _, _ = url.rpartition(":")
                    return f"{base}:{port['containerPort']}"
        return url

    # -- progress -----------------------------------------------------------------------

    def _new_progress_log(self) -> SpawnProgress:
        return SpawnProgress(
            slow_spawn_message=self.slow_spawn_message,
            slow_spawn_message_threshold=self.slow_spawn_message_threshold,
            slow_spawn_message_frequency=self.slow_spawn_message_frequency,
        )

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Kubernetes events of the spawning pod and our own messages; never raises.

        The log belongs to the latest start() (created when it was called); after the
        spawn it is replayed whole, so a late joiner sees the full sequence.
        """
        log = self._progress_log
        if log is None:
            return
        async for message in log.follow():
            yield message

    # -- stop ---------------------------------------------------------------------------

    async def stop(self, now: bool = False) -> None:
        """Delete this server's pod (only if it is provably this server's) and wait until
        it is gone, within ``stop_timeout``.

        The delete is retried for the whole ``stop_timeout`` (not only the client's
        ``k8s_api_request_retry_timeout``); if the API server still cannot be reached the
        deletion is handed to the background reconciler (lifecycle/reconciler.py) and
        stop() returns: the stop is never forgotten, JupyterHub records the server stopped.
        """
        started = time.monotonic()
        outcome = "failure"
        grace = 0 if now else self.delete_grace_period
        try:
            await loop_turns().take()  # a burst of stops: one delete request per iteration
            api = await self._get_api()
            reflector = await self._pod_reflector()

            def remaining() -> float:
                return max(0.0, self.stop_timeout - (time.monotonic() - started))

            target = await self._stop_target(api, reflector, remaining)
            if target is _NOT_MINE:
                outcome = "success"
                return
            uid = target if isinstance(target, str) else None
            if target is _UNREACHABLE:
                self._owe_pod_deletion(api, reflector, None, grace)
                outcome = "owed"
                return
            deleted = None
            if uid:
                try:
                    deleted = await api.delete(
                        PODS,
                        self.namespace,
                        self.pod_name,
                        grace_period_seconds=grace,
                        uid=uid,
                        retry_timeout=remaining(),
                    )
                except ApiError as e:
                    if e.status == 409:  # replaced since we looked: not ours to delete
                        uid = None
                    elif e.retriable:
                        self._owe_pod_deletion(api, reflector, uid, grace)
                        outcome = "owed"
                        return
                    else:
                        raise
            self._log_state(
                "deleting" if deleted is not None else "already-gone", f"grace={grace}s"
            )
            await self._delete_own_extras(api, remaining())
            if not uid:
                outcome = "success"
                self._log_state("stopped", f"after={time.monotonic() - started:.3f}s")
                return
            if not await reflector.wait_synced(remaining()):
                raise TimeoutError("the pod cache could not be loaded from the API server")
            try:
                await reflector.sink.wait_for(  # type: ignore[attr-defined]
                    self._pod_key,
                    lambda p: p is None or p["metadata"].get("uid") != uid,
                    remaining(),
                )
            except TimeoutError:
                outcome = "timeout"
                self._log_state(
                    "stop-timeout", f"stop_timeout={self.stop_timeout}", logging.WARNING
                )
                raise TimeoutError(
                    f"Pod {self.namespace}/{self.pod_name} still exists {self.stop_timeout}s "
                    "after it was deleted (stop_timeout)."
                ) from None
            outcome = "success"
            self._log_state("stopped", f"after={time.monotonic() - started:.3f}s")
        finally:
            if outcome not in ("success", "timeout", "owed"):
                outcome = "failure"
            STOP_DURATION.labels(outcome).observe(time.monotonic() - started)

    async def _stop_target(
        self, api: KubeApi, reflector: Reflector, remaining: Callable[[], float]
    ) -> str | object | None:
        """The uid of this server's pod to delete; None when there is none;
        ``_NOT_MINE`` when a pod of its name belongs to somebody else (left alone);
        ``_UNREACHABLE`` when the API server could not be asked within stop_timeout.

        The cache answers when it holds this server's pod (no request); otherwise the API
        server is asked, since a pod created a moment ago may not be cached yet.
        """
        pod = reflector.sink.get(self._pod_key) if reflector.synced else None  # type: ignore[attr-defined]
        if pod is not None and self._is_ours(pod):
            return pod["metadata"]["uid"]
        try:
            pod = await api.get_or_none(
                PODS, self.namespace, self.pod_name, retry_timeout=remaining()
            )
        except ApiError as e:
            if e.retriable:
                return _UNREACHABLE
            raise
        if pod is None:
            return None
        if not self._is_ours(pod):
            self._log_state(
                "not-mine", "stop: the pod of this name is not this server's; left alone",
                logging.WARNING,
            )
            return _NOT_MINE
        return pod["metadata"]["uid"]

    async def _delete_own_extras(self, api: KubeApi, retry_timeout: float) -> None:
        """The server's Service and Secret, each only if it is this server's. Best effort:
        they are owned by the pod, so Kubernetes removes them with it anyway."""
        identity = self.server_identity()
        for kind, name, wanted in (
            (SERVICES, self.pod_name, self.needs_service),
            (SECRETS, getattr(self, "secret_name", ""), getattr(self, "needs_secret", False)),
        ):
            if not (wanted and name):
                continue
            try:
                await delete_own(
                    api, kind, self.namespace, name, identity, retry_timeout=retry_timeout
                )
            except ApiError as e:
                self._log_state(
                    "cleanup-deferred", f"{kind.kind}={name} error={e}", logging.WARNING
                )

    def _owe_pod_deletion(
        self, api: KubeApi, reflector: Reflector, uid: str | None, grace: int
    ) -> None:
        key = self._pod_key

        def cached() -> dict[str, Any] | None:
            if not reflector.synced:
                return {"metadata": {"uid": uid}}  # unknown: keep trying
            return reflector.sink.get(key)  # type: ignore[attr-defined,no-any-return]

        deletion_reconciler(api).owe(
            OwedDeletion(
                namespace=self.namespace,
                name=self.pod_name,
                uid=uid,
                identity=self.server_identity(),
                component_label=self.component_label,
                grace_period_seconds=grace,
                cached=cached,
            )
        )

    # -- poll ---------------------------------------------------------------------------

    async def poll(self) -> int | None:
        """From the cache, never the API: None while the pod exists and runs (or starts),
        its exit code once the notebook container has exited, 1 once it is gone, and 1
        when the pod of this name is not this server's (it is never touched)."""
        reflector = await self._pod_reflector()
        if not await reflector.wait_synced(self.first_list_timeout):
            self.log.warning(
                "kubespawner pod=%s/%s poll: pod cache not loaded yet; assuming running",
                self.namespace,
                self.pod_name,
            )
            return None
        pod = reflector.sink.get(self._pod_key)  # type: ignore[attr-defined]
        if pod is None:
            return 1
        if not self._is_ours(pod):
            self._log_state(
                "not-mine", "poll: the pod of this name is not this server's", logging.WARNING
            )
            return 1
        if pod["metadata"].get("deletionTimestamp"):
            return 1
        status = pod.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            if cs.get("name") != "notebook":
                continue
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated:
                code = terminated.get("exitCode")
                self._log_state("exited", f"exit_code={code}")
                if self.delete_stopped_pods:
                    await self.stop(now=True)
                return int(code) if code is not None else 1
        if status.get("phase") in ("Failed", "Succeeded"):
            if self.delete_stopped_pods:
                await self.stop(now=True)
            return 0 if status.get("phase") == "Succeeded" else 1
        return None

    # -- delete_forever ---------------------------------------------------------------------

    async def delete_forever(self) -> None:
        """Delete the server's PVC when the user (or this named server) is deleted.

        Decided on the PVC it would delete (the name remembered in state) and that PVC's
        own owner annotations, never on the current template alone: only a claim
        provably for this server (or for this user, from the user's default server) is
        deleted; shared, administrator-made and other users' claims are kept
        (objects/identity.py ``pvc_deletion``). Only with ``delete_pvc``, as upstream.
        """
        who = f"{self.user.name}/{self.name}" if self.name else self.user.name
        if not self.delete_pvc:
            self.log.info("kubespawner server=%s delete_forever: delete_pvc is off", who)
            return
        api = await self._get_api()
        outcome, decision = await delete_pvc_forever(
            api,
            self.namespace,
            self.pvc_name,
            self.server_identity(),
            names_of_this_server=self.pvc_names_of_this_server,
            template_scope=self.pvc_scope(),
        )
        self.log.info(
            "kubespawner pvc=%s/%s state=%s%s",
            self.namespace,
            self.pvc_name,
            {"deleted": "deleted", "gone": "already-gone", "kept": "kept"}[outcome],
            f" reason={decision.reason!r}" if decision is not None and outcome == "kept" else "",
        )


#: Answers of ``KubeSpawner._stop_target`` besides a uid or None.
_NOT_MINE = object()
_UNREACHABLE = object()


class _PVCFailed(SpawnFailed):
    """The volume cannot be provisioned: the PVC this start created is removed too."""
