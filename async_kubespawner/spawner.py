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
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from jupyterhub.spawner import Spawner
from tornado import web

from .gc_policy import BurstGcPolicy, InFlight
from .gc_policy import disengage as disengage_gc_policy
from .gc_policy import engage as engage_gc_policy
from .kube.cache import EventIndex, ObjectCache, trim_pod
from .kube.client import (
    EVENTS,
    PODS,
    SECRETS,
    SERVICES,
    ApiSettings,
    KubeApi,
    close_shared_apis,
    shared_api,
)
from .kube.deadline import Deadline
from .kube.errors import ApiError, Conflict
from .kube.reflector import (
    Reflector,
    ReflectorSettings,
    get_reflector,
    reflectors,
    release_reflectors,
    stop_reflectors,
)
from .lifecycle.errors import SpawnFailed
from .lifecycle.loop_turns import loop_turns
from .lifecycle.orphans import HubDatabase, remembered_by_another_server, schedule_orphan_sweep
from .lifecycle.ownership import delete_own, delete_pvc_forever, pvc_held_by_server_name
from .lifecycle.preflight import check_before_create, take_checked_pod
from .lifecycle.progress import SpawnProgress
from .lifecycle.readiness import Tolerances, exit_code
from .lifecycle.reconciler import (
    OwedDeletion,
    deletion_reconciler,
    pin_unknown_debts,
    stop_reconcilers,
)
from .lifecycle.start import StartOperation, StartPlan, preparation_gate
from .metrics import SPAWN_DURATION, STOP_DURATION
from .objects.identity import Ownership, pod_ownership
from .profiles import ProfilesMixin
from .startup_heap import freeze_startup_heap, set_young_threshold
from .traits import KubeSpawnerSettings
from .traits.fast_defaults import fill_static_defaults
from .traits.settings import START_TRAITS

__all__ = ["KubeSpawner", "SpawnFailed", "close_shared_resources", "reflector_health"]

async def close_shared_resources() -> None:
    """Stop this event loop's reflectors and close its API client.

    For a clean shutdown (tests, embedding, a hub's shutdown hook): afterwards no task of
    this package is pending and no HTTP session is open. Spawners used later simply start
    new ones.
    """
    await stop_reconcilers()
    await stop_reflectors()
    await close_shared_apis()
    disengage_gc_policy()  # its timer is this package's too


def reflector_health() -> list[dict[str, Any]]:
    """Health of this event loop's reflectors (for a health page or a hub service):
    whether each runs and has listed, seconds since it last heard from the API server,
    restarts, errors and the last error."""
    return [vars(r.health()) for r in reflectors()]


def _host_port(url: str) -> tuple[str, int]:
    """Host and port of a URL, the scheme's default port when it names none, so that
    ``http://h`` and ``http://h:80`` compare equal."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return parts.hostname or "", port


class KubeSpawner(ProfilesMixin, KubeSpawnerSettings, Spawner):
    """A JupyterHub spawner that runs each server as a pod (drop-in for upstream 7.1)."""

    # -- shared resources --------------------------------------------------------------

    _progress_log: SpawnProgress | None = None

    @property
    def progress_log(self) -> SpawnProgress | None:
        """The running start()'s progress log (hooks may ``push`` to it); None otherwise."""
        return self._progress_log

    def _api_settings(self) -> ApiSettings:
        return _api_settings_for(
            self.k8s_api_host,
            self.k8s_api_ssl_ca_cert,
            self.k8s_api_verify_ssl,
            float(self.k8s_api_request_timeout),
            float(self.k8s_api_request_retry_timeout),
            int(self.k8s_api_max_concurrent_requests),
        )

    def _gc_policy(self) -> BurstGcPolicy | None:
        """The process's burst-aware collector policy (gc_policy.py), engaged once by the
        first start() or stop(); None when this configuration leaves the collector alone."""
        if self.gc_young_threshold is not None or not self.gc_burst_policy:
            return None
        return engage_gc_policy()

    def run_pre_spawn_hook(self) -> Any:
        """A ``start()`` is coming: the burst begins here for the collector policy
        (``work_expected``), since a storm runs thousands of hooks before its first
        ``start()``; then the profile step and ``pre_spawn_hook`` (profiles/mixin.py)."""
        policy = self._gc_policy()
        if policy is not None:
            policy.work_expected()
        return super().run_pre_spawn_hook()

    def stop_polling(self) -> None:
        """A ``stop()`` is likely coming: JupyterHub's ``User.stop`` calls this first,
        before its own ``poll()`` and database work. The collector policy's burst begins
        here (``work_expected``), as it does at the pre-spawn hook, so a storm of stops
        does not start with a full collection in the hub's code before the first
        ``stop()`` counts as work in flight."""
        policy = self._gc_policy()
        if policy is not None:
            policy.work_expected()
        super().stop_polling()

    async def _get_api(self) -> KubeApi:
        if self.freeze_startup_heap:
            freeze_startup_heap()  # once per process; see startup_heap.py
        if self.gc_young_threshold is not None:
            set_young_threshold(self.gc_young_threshold)  # once per process, as above
        return await shared_api(self._api_settings())

    def _reflector_values(self) -> tuple[Any, ...]:
        fill_static_defaults(self, _WATCH_TRAITS)
        return (
            self.reflector_watch_timeout,
            self.reflector_idle_timeout,
            self.reflector_backoff_max,
            self.reflector_list_page_size,
            self.reflector_release_delay,
        )

    def _reflector_settings(self) -> ReflectorSettings:
        return _reflector_settings_for(*self._reflector_values())

    def _pod_reflector_settings(self) -> ReflectorSettings:
        """The pod cache loads page by page (poll() answers a listed key before the whole
        first list is in), starting with a small page so the first keys answer at once."""
        return _pod_reflector_settings_for(*self._reflector_values())

    def _watch_namespace(self) -> str | None:
        cluster_wide = self.reflector_cluster_wide
        if cluster_wide is None:
            cluster_wide = bool(self.enable_user_namespaces)
        return None if cluster_wide else self.namespace

    def _reflector_owner(self) -> object | None:
        """Per-user namespaces' reflectors are leased by the servers using them, and
        released when none is active (see release_reflectors); shared ones live on."""
        if self.enable_user_namespaces and self._watch_namespace() is not None:
            return self
        return None

    async def _pod_reflector(self, api: KubeApi | None = None) -> Reflector[ObjectCache]:
        """The shared pod reflector (``api``: the client the caller already has)."""
        if api is None:
            api = await self._get_api()
        reflector = get_reflector(
            api,
            PODS,
            self._watch_namespace(),
            lambda: ObjectCache(trim_pod),
            label_selector=f"component={self.component_label}",
            settings=self._pod_reflector_settings(),
            owner=self._reflector_owner(),
        )
        self._sweep_orphans_once(api, reflector)
        return reflector

    def _sweep_orphans_once(self, api: KubeApi, reflector: Reflector[ObjectCache]) -> None:
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

    async def _event_reflector(self, api: KubeApi | None = None) -> Reflector[EventIndex] | None:
        if not self.events_enabled:
            return None
        limits = (self.events_per_object_limit, self.events_total_limit)
        return get_reflector(
            api if api is not None else await self._get_api(),
            EVENTS,
            self._watch_namespace(),
            lambda: EventIndex(per_object_limit=limits[0], total_limit=limits[1]),
            settings=self._reflector_settings(),
            owner=self._reflector_owner(),
        )

    async def cached_pod(self) -> dict[str, Any] | None:
        """This server's pod as the hub's cache holds it (trimmed), or None: what poll(),
        stop() and start() decide on. For hooks, health pages and benchmarks."""
        reflector = await self._pod_reflector()
        return reflector.sink.get(self._pod_key)

    @property
    def _pod_key(self) -> tuple[str, str]:
        return (self.namespace, self.pod_name)

    def _log_state(self, state: str, detail: str = "", level: int = logging.INFO) -> None:
        """One line per state change, always with namespace/pod; never a manifest.

        Nothing is looked up or formatted when the level is off (a storm logs five
        lines per server).
        """
        log = self.log
        if not log.isEnabledFor(level):
            return
        log.log(
            level,
            "kubespawner pod=%s/%s state=%s%s",
            self.namespace,
            self.pod_name,
            state,
            f" {detail}" if detail else "",
        )

    # -- start --------------------------------------------------------------------------

    async def load_user_options(self) -> None:
        """As the profiles define it, with the settings a start reads at their default
        filled first (fast_defaults.py): the profile step is the first to read some of
        them (``user_options``, ``profile_list``), which traitlets' first read costs."""
        fill_static_defaults(self, START_TRAITS)
        await super().load_user_options()

    def start(self) -> asyncio.Future[str]:
        """Start the server; returns a future of its URL.

        Not a coroutine on purpose: JupyterHub calls ``start()`` and may ask for
        ``progress()`` before a coroutine's body would have run. Creating this spawn's
        progress log here, synchronously, means every listener follows the right spawn.
        """
        self._progress_log = self._new_progress_log()
        # Counted from this call (gc_policy.py), not from when the coroutine first runs:
        # a storm's start() calls come before any of their bodies. The done callback
        # also covers a future cancelled before its coroutine ever ran.
        in_flight = InFlight.begin(self._gc_policy())
        future = asyncio.ensure_future(self._start_measured(self._progress_log))
        future.add_done_callback(in_flight.end_callback)
        return future

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
        await self.load_user_options()
        async with preparation_gate():
            # The semaphore alone lets a body that never suspends through at once (all of
            # a storm in one iteration); the turn hands the loop over between bodies.
            await loop_turns().take()
            plan = self._start_plan()
        api = await self._get_api()
        operation = StartOperation(
            self,
            plan,
            api=api,
            pod_reflector=await self._pod_reflector(api),
            event_reflector=await self._event_reflector(api),
            progress=self._progress_log,
            started=started,
        )
        self._configuration_checked = True
        try:
            async with preparation_gate():  # builds the pod: CPU work, as below
                await loop_turns().take()
                await check_before_create(self, api)  # the final objects, before any create
            # A stop that owed this pod's deletion without knowing its uid must not take
            # the pod this start creates for the old one (lifecycle/reconciler.py).
            await pin_unknown_debts(self.namespace, self.pod_name, self._is_ours)
            return await operation.run()
        finally:
            self._configuration_checked = False

    async def _pod_manifest(self) -> Any:
        """The pod to create: the one the pre-create checks built and checked."""
        checked = take_checked_pod(self)
        if checked is not None:
            return checked
        return await self.prepare_pod()

    def _start_plan(self) -> StartPlan:
        """This start's settings, read once: names (as the profile and the hooks left
        them), timeouts, tolerances and what to create; the configuration is checked
        here, once, before anything is created."""
        self.check_configuration()
        names = self.names
        # The running server keeps these names whatever templates change later (the hub
        # must find its pod); clear_state() releases them for the next start.
        self._assign(
            pod_name=names.pod_name, dns_name=names.dns_name, secret_name=names.secret_name
        )
        # Assigning the names just computed changes none of them (compute_names takes an
        # assigned name as is, and the others follow from the same inputs): keep them
        # rather than compute them all again.
        self._names_cache = (self.user.name, names)
        return StartPlan(
            names=names,
            start_timeout=self.start_timeout,
            stop_timeout=self.stop_timeout,
            tolerances=Tolerances(
                image_pull=self.image_pull_error_tolerance,
                config_error=self.config_error_tolerance,
                unschedulable=self.unschedulable_tolerance,
            ),
            ensure_namespace=bool(self.enable_user_namespaces),
            ensure_pvc=bool(self.storage_pvc_ensure),
            needs_secret=self.needs_secret,
            needs_service=self.needs_service,
            after_pod_created_hook=self.after_pod_created_hook is not None,
        )

    #: The last pod uid found claimed by no other running server (asked once per pod).
    _uid_not_claimed_elsewhere: str | None = None

    def _is_ours(self, pod: dict[str, Any]) -> bool:
        """Whether an existing pod is provably this server's: the uid this server created,
        or this hub's component label and an owner annotation naming this server
        (objects/identity.py). Never by name alone."""
        meta = pod.get("metadata") or {}
        if self.pod_uid and meta.get("uid") == self.pod_uid:
            return True
        identity = self.server_identity()
        if pod_ownership(identity, meta, self.component_label) is not Ownership.MINE:
            return False
        # The annotation names a user as it was: a running server renamed since then
        # proves the pod its own by the uid in its state (lifecycle/orphans.py). Asked
        # once per pod: an upstream pod is claimed this way at every poll.
        uid = meta.get("uid")
        if uid and uid == self._uid_not_claimed_elsewhere:
            return True
        if remembered_by_another_server(
            getattr(self.user, "db", None), uid, identity.user, identity.server
        ):
            return False
        self._uid_not_claimed_elsewhere = uid
        return True

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
        in_flight = InFlight.begin(self._gc_policy())  # gc_policy.py
        try:
            await loop_turns().take()  # a burst of stops: one delete request per iteration
            api = await self._get_api()
            reflector = await self._pod_reflector(api)

            remaining = Deadline(self.stop_timeout, "stop() did not complete", start=started).left

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
                    # Only "deleted" or "already gone" matters here, not the pod it returns.
                    deleted = await api.delete(
                        PODS,
                        self.namespace,
                        self.pod_name,
                        grace_period_seconds=grace,
                        uid=uid,
                        retry_timeout=remaining(),
                        read_response=False,
                    )
                except Conflict:  # replaced since we looked: not ours to delete
                    uid = None
                except ApiError as e:
                    if not e.retriable:
                        raise
                    self._owe_pod_deletion(api, reflector, uid, grace)
                    outcome = "owed"
                    return
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
                await reflector.sink.wait_for(
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
            in_flight.end()
            if outcome not in ("success", "timeout", "owed"):
                outcome = "failure"
            if outcome == "success":
                release_reflectors(self)
            STOP_DURATION.labels(outcome).observe(time.monotonic() - started)

    async def _stop_target(
        self, api: KubeApi, reflector: Reflector[ObjectCache], remaining: Callable[[], float]
    ) -> str | object | None:
        """The uid of this server's pod to delete; None when there is none;
        ``_NOT_MINE`` when a pod of its name belongs to somebody else (left alone);
        ``_UNREACHABLE`` when the API server could not be asked within stop_timeout.

        The cache answers when it holds this server's pod (no request); otherwise the API
        server is asked, since a pod created a moment ago may not be cached yet.
        """
        pod = reflector.sink.get(self._pod_key) if reflector.synced else None
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
        identity = None  # only for a server that has a Service or a Secret
        for kind, name, wanted in (
            (SERVICES, self.pod_name, self.needs_service),
            (SECRETS, self.secret_name, self.needs_secret),
        ):
            if not (wanted and name):
                continue
            if identity is None:
                identity = self.server_identity()
            try:
                await delete_own(
                    api, kind, self.namespace, name, identity, retry_timeout=retry_timeout
                )
            except ApiError as e:
                self._log_state(
                    "cleanup-deferred", f"{kind.kind}={name} error={e}", logging.WARNING
                )

    def _owe_pod_deletion(
        self, api: KubeApi, reflector: Reflector[ObjectCache], uid: str | None, grace: int
    ) -> None:
        key = self._pod_key

        def cached() -> dict[str, Any] | None:
            if not reflector.synced:
                return {"metadata": {"uid": uid}}  # unknown: keep trying
            return reflector.sink.get(key)

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
        """From the cache: None while the pod exists and runs (or starts), its exit code
        once the notebook container has exited, 1 once it is gone, and 1 when the pod of
        this name is not this server's (it is never touched).

        The cache is trusted while its reflector is connected, or was cut off for less
        than ``reflector_stale_after`` seconds; beyond that (an API outage, a network
        partition) the pod is read with one direct GET, so a server deleted meanwhile is
        not reported running. A stopped server releases its per-namespace reflectors.
        """
        status = await self._poll_cache()
        if status is not None:
            release_reflectors(self)
        return status

    async def _read_pod(self, api: KubeApi, cached: dict[str, Any] | None) -> dict[str, Any] | None:
        """One direct GET of the pod, trimmed as the cache would keep it; the cached answer
        if the API does not answer at once (the cache is then the best there is)."""
        try:
            pod = await api.get_or_none(PODS, self.namespace, self.pod_name, retry_timeout=0)
        except ApiError as e:
            self.log.info(
                "kubespawner pod=%s/%s poll: cache stale and direct read failed (%s)",
                self.namespace,
                self.pod_name,
                e,
            )
            return cached
        return None if pod is None else trim_pod(pod)

    async def _poll_cache(self) -> int | None:
        reflector = await self._pod_reflector()
        key = self._pod_key
        cache = reflector.sink
        # A key already listed answers now (a hub restarted with 5,000 pods answers the
        # polls of the first pages before the last page arrives); an absence only once
        # the whole first list is in, since the pod may be on a later page.
        if not await reflector.wait_listed(lambda: key in cache, self.first_list_timeout):
            self.log.warning(
                "kubespawner pod=%s/%s poll: pod cache not loaded yet; assuming running",
                self.namespace,
                self.pod_name,
            )
            return None
        pod = cache.get(key)
        if reflector.stale_for() > self.reflector_stale_after:
            pod = await self._read_pod(await self._get_api(), pod)
        if pod is None:
            return 1
        if not self._is_ours(pod):
            self._log_state(
                "not-mine", "poll: the pod of this name is not this server's", logging.WARNING
            )
            return 1
        if pod["metadata"].get("deletionTimestamp"):
            return 1
        code = exit_code(pod)
        if code is not None:
            self._log_state("exited", f"exit_code={code}")
            if self.delete_stopped_pods:
                await self.stop(now=True)
            return code
        if self.server is not None and self.is_pod_running(pod):
            self._follow_pod_address(pod)
        return None

    def _follow_pod_address(self, pod: dict[str, Any]) -> None:
        """Point the hub's record of the server at where the pod listens now.

        A pod can come back with another IP (a restarted hub adopting a pod recreated
        by someone, a node's network reconfigured); as upstream does, the server's ip and
        port are updated and committed, so that the proxy route follows on the hub's
        next route check instead of pointing at a dead address.
        """
        server = self.server
        pod_url = self._pod_url(pod)
        now, recorded = _host_port(pod_url), _host_port(server.url)
        if now == recorded:
            return
        self._log_state(
            "address-changed", f"from={recorded[0]}:{recorded[1]} to={now[0]}:{now[1]}",
            logging.WARNING,
        )
        server.ip, server.port = now
        self.db.commit()

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

    # -- rename (JupyterHub 6) ----------------------------------------------------------

    async def rename(self, old_name: str, new_name: str) -> None:
        """Refuse to rename a server whose PVC records its name (JupyterHub then keeps
        the old name and shows the message).

        The claim's owner annotation cannot be rewritten (the hub has no patch right),
        so renamed, the server could no longer mount its own claim, while a new server
        given the old name would mount it and delete it with ``delete_forever``. A
        server with no claim, or one shared by the user's servers, is renamed as usual.
        """
        if not self.pvc_name:
            return
        identity = self.server_identity()
        held = await pvc_held_by_server_name(
            await self._get_api(),
            self.namespace,
            self.pvc_name,
            replace(identity, server=old_name),
            names_of_this_server=self.pvc_names_of_this_server,
            template_scope=self.pvc_scope(),
        )
        if held:
            message = (
                f"The server {old_name!r} cannot be renamed to {new_name!r}: its storage "
                f"volume claim {self.pvc_name!r} belongs to the server by name, and would "
                "be mounted by a new server called "
                f"{old_name!r} instead. Keep the name, or ask an administrator to move the "
                "data and delete the claim first."
            )
            error = web.HTTPError(409, "%s", message)
            error.jupyterhub_message = message  # type: ignore[attr-defined]  # read by JupyterHub
            raise error


#: Answers of ``KubeSpawner._stop_target`` besides a uid or None.
#: Pods in the first page of the pod cache's first list (later pages: the
#: reflector_list_page_size): the polls of its pods answer after one short request.
POD_FIRST_PAGE_SIZE = 50

@functools.lru_cache(maxsize=64, typed=True)
def _api_settings_for(
    host: str,
    ssl_ca_cert: str,
    verify_ssl: bool | None,
    request_timeout: float,
    retry_timeout: float,
    max_concurrent_requests: int,
) -> ApiSettings:
    """The client settings for these trait values, built once (they are frozen): every
    start, stop and poll asks for them to find the shared client."""
    return ApiSettings(
        host=host,
        ssl_ca_cert=ssl_ca_cert,
        verify_ssl=verify_ssl,
        request_timeout=request_timeout,
        retry_timeout=retry_timeout,
        max_concurrent_requests=max_concurrent_requests,
    )


@functools.lru_cache(maxsize=64, typed=True)
def _reflector_settings_for(
    watch_timeout: int,
    idle_timeout: float | None,
    backoff_max: float,
    list_page_size: int,
    release_delay: float,
) -> ReflectorSettings:
    """The settings for these trait values: built once, shared (they are frozen) by
    every spawner configured alike, since each start and stop asks for them (typed:
    300 and 300.0 are not the same setting)."""
    return ReflectorSettings(
        watch_timeout=watch_timeout,
        idle_timeout=idle_timeout,
        backoff_max=backoff_max,
        list_page_size=list_page_size,
        release_delay=release_delay,
    )


@functools.lru_cache(maxsize=64, typed=True)
def _pod_reflector_settings_for(*values: Any) -> ReflectorSettings:
    settings = _reflector_settings_for(*values)
    return replace(
        settings,
        partial_first_list=True,
        first_page_size=min(POD_FIRST_PAGE_SIZE, settings.list_page_size),
    )


#: Watch settings every stop reads, usually left at their default (fast_defaults.py).
_WATCH_TRAITS = ("reflector_backoff_max", "reflector_idle_timeout", "reflector_release_delay")

_NOT_MINE = object()
_UNREACHABLE = object()
