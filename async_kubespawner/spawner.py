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
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlsplit

from jupyterhub.spawner import Spawner

from .kube.cache import EventIndex, ObjectCache, trim_pod
from .kube.client import (
    EVENTS,
    PODS,
    PVCS,
    SECRETS,
    SERVICES,
    ApiSettings,
    KubeApi,
    close_shared_apis,
    shared_api,
)
from .kube.reflector import Reflector, ReflectorSettings, get_reflector, reflectors, stop_reflectors
from .lifecycle.errors import SpawnFailed
from .lifecycle.loop_turns import loop_turns
from .lifecycle.progress import SpawnProgress
from .lifecycle.readiness import Tolerances, exit_code
from .lifecycle.start import StartOperation, StartPlan, preparation_gate
from .metrics import SPAWN_DURATION, STOP_DURATION
from .profiles import ProfilesMixin
from .startup_heap import freeze_startup_heap
from .traits import KubeSpawnerSettings

__all__ = ["KubeSpawner", "SpawnFailed", "close_shared_resources", "reflector_health"]

# Template fields that make a PVC name specific to one server of a user / to one user.
_SERVER_FIELDS = (
    "{servername}",
    "{unescaped_servername}",
    "{safe_servername}",
    "{escaped_servername}",
    "{user_server}",
    "{safe_user_server}",
    "{escaped_user_server}",
    "{server}",
)
_USER_FIELDS = (
    "{username}",
    "{unescaped_username}",
    "{safe_username}",
    "{escaped_username}",
    "{userid}",
    "{user_server}",
    "{safe_user_server}",
    "{escaped_user_server}",
)

async def close_shared_resources() -> None:
    """Stop this event loop's reflectors and close its API client.

    For a clean shutdown (tests, embedding, a hub's shutdown hook): afterwards no task of
    this package is pending and no HTTP session is open. Spawners used later simply start
    new ones.
    """
    await stop_reflectors()
    await close_shared_apis()


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
        return get_reflector(
            await self._get_api(),
            PODS,
            self._watch_namespace(),
            lambda: ObjectCache(trim_pod),
            label_selector=f"component={self.component_label}",
            settings=self._reflector_settings(),
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

    def start(self) -> asyncio.Future[str]:
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
            pod_reflector=await self._pod_reflector(),
            event_reflector=await self._event_reflector(),
            progress=self._progress_log,
            started=started,
        )
        self._configuration_checked = True
        try:
            return await operation.run()
        finally:
            self._configuration_checked = False

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

    def _is_ours(self, pod: dict[str, Any]) -> bool:
        """Whether an existing pod belongs to this very server (a leftover of an earlier
        run), judged by JupyterHub's identity annotations, falling back to labels."""
        meta = pod.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if "hub.jupyter.org/username" in annotations:
            return annotations.get("hub.jupyter.org/username") == self.user.name and (
                annotations.get("hub.jupyter.org/servername", "") == (self.name or "")
            )
        labels = meta.get("labels") or {}
        expected = self._build_pod_labels({})
        return (
            all(
                labels.get(k) == expected.get(k)
                for k in ("hub.jupyter.org/username", "hub.jupyter.org/servername")
                if k in expected
            )
            and "hub.jupyter.org/username" in labels
        )

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
        started = time.monotonic()
        outcome = "failure"
        grace = 0 if now else self.delete_grace_period
        try:
            await loop_turns().take()  # a burst of stops: one delete request per iteration
            api = await self._get_api()
            reflector = await self._pod_reflector()
            deleted = await api.delete(
                PODS, self.namespace, self.pod_name, grace_period_seconds=grace
            )
            self._log_state(
                "deleting" if deleted is not None else "already-gone", f"grace={grace}s"
            )
            for kind, name, wanted in (
                (SERVICES, self.pod_name, self.needs_service),
                (SECRETS, self.secret_name, self.needs_secret),
            ):
                if wanted and name:
                    await api.delete(kind, self.namespace, name)
            remaining = self.stop_timeout - (time.monotonic() - started)
            if not await reflector.wait_synced(remaining):
                raise TimeoutError("the pod cache could not be loaded from the API server")
            remaining = self.stop_timeout - (time.monotonic() - started)
            try:
                await cast(ObjectCache, reflector.sink).wait_for(
                    self._pod_key, lambda p: p is None, max(0.0, remaining)
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
            if outcome != "success" and outcome != "timeout":
                outcome = "failure"
            STOP_DURATION.labels(outcome).observe(time.monotonic() - started)

    # -- poll ---------------------------------------------------------------------------

    async def poll(self) -> int | None:
        """From the cache, never the API: None while the pod exists and runs (or starts),
        its exit code once the notebook container has exited, 1 once it is gone."""
        reflector = await self._pod_reflector()
        if not await reflector.wait_synced(self.first_list_timeout):
            self.log.warning(
                "kubespawner pod=%s/%s poll: pod cache not loaded yet; assuming running",
                self.namespace,
                self.pod_name,
            )
            return None
        pod = cast(ObjectCache, reflector.sink).get(self._pod_key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
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
        """Delete the server's PVC when the user (or this named server) is deleted, under
        upstream's rules: only with ``delete_pvc``, and never a PVC other servers share."""
        who = f"{self.user.name}/{self.name}" if self.name else self.user.name
        if not self.delete_pvc:
            self.log.info("kubespawner server=%s delete_forever: delete_pvc is off", who)
            return
        template = self.pvc_name_template
        if self.name and not any(f in template for f in _SERVER_FIELDS):
            self.log.info(
                "kubespawner server=%s delete_forever: the PVC name does not depend "
                "on the server name, so it is shared with the user's other "
                "servers; keeping it",
                who,
            )
            return
        if not any(f in template for f in _USER_FIELDS):
            self.log.info(
                "kubespawner server=%s delete_forever: the PVC name does not depend "
                "on the user, so it is shared; keeping it",
                who,
            )
            return
        api = await self._get_api()
        deleted = await api.delete(PVCS, self.namespace, self.pvc_name)
        self.log.info(
            "kubespawner pvc=%s/%s state=%s",
            self.namespace,
            self.pvc_name,
            "deleted" if deleted is not None else "already-gone",
        )
