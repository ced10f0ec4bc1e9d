"""The hub side of operator mode: a Spawner that asks for servers instead of creating pods.

``OperatorSpawner`` (entry point ``async-kubernetes-operator``) creates one
``NotebookServer`` per JupyterHub server and a Secret with the server's environment (its
API token included) owned by it, then waits for the operator to report the server Ready.
The hub needs only these rights in its namespace: create/delete/get/list/watch
NotebookServers, create/delete Secrets (never read), and read Events. It cannot create a
pod, read a Secret or change a template.

Everything it waits for comes from reflectors (a watch of NotebookServers and of Events,
shared by every spawner of the process): ``start()`` returns within a loop iteration of
the status turning Ready, ``poll()`` answers from the cache, ``stop()`` returns when the
finalizer has run and the object is gone, and the spawn page shows the NotebookServer's
Events (and its pod's) as they are written.

``profile_list`` works as in the in-hub mode (same form, same field names); a profile's
``kubespawner_override`` sets ``template`` and ``variables`` here, and the operator checks
every variable against the template's declared constraints.

What operator mode cannot honour (``c.JupyterHub.internal_ssl``, per-user namespaces) fails
``start()`` with the reason from :mod:`.limits` before anything is created: a server the hub
would otherwise reach over plain http while it expects TLS, or in one namespace while the
configuration asks for one per user, is a failure that only shows much later.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Bool, CaselessStrEnum, Dict, Float, Integer, Unicode, default, validate

from ..kube.cache import EventIndex, ObjectCache
from ..kube.client import (
    EVENTS,
    SECRETS,
    ApiError,
    ApiSettings,
    KubeApi,
    new_create_id,
    shared_api,
)
from ..kube.reflector import ApiListerWatcher, Reflector
from ..lifecycle.errors import SpawnFailed
from ..lifecycle.progress import SpawnProgress
from ..lifecycle.tasks import cancel_and_wait
from ..objects.slugs import (
    TemplateFields,
    is_valid_dns_label,
    is_valid_dns_subdomain,
    safe_label_value,
)
from ..profiles import OptionSelection, ProfileOverrideError, ProfilesMixin
from ..startup_heap import freeze_startup_heap
from ..traits.errors import SpawnerConfigError
from .cleanup import CleanupRetry, CleanupTarget, clean_up
from .kubeio import NOTEBOOK_SERVERS
from .limits import INTERNAL_SSL_REFUSAL, OperatorModeRefused, user_namespaces_refusal
from .models import API_VERSION, FINALIZER, LABEL_SERVER, LABEL_SERVERNAME, LABEL_USER
from .reconciler import trim_server

STATE_OBJECT = "notebook_server"
STATE_NAMESPACE = "namespace"


# -- the reflectors of this process (one per loop, API client and namespace) ---------------

_Registry = dict[tuple[int, str, str], tuple[KubeApi, Reflector]]
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Registry] = (
    weakref.WeakKeyDictionary()
)


def _reflector(api: KubeApi, what: str, namespace: str) -> Reflector:
    per_loop = _registry.setdefault(asyncio.get_running_loop(), {})
    key = (id(api), what, namespace)
    entry = per_loop.get(key)
    if entry is None or not entry[1].running or entry[0] is not api:
        reflector: Reflector
        if what == "servers":
            source = ApiListerWatcher(api, NOTEBOOK_SERVERS, namespace)
            reflector = Reflector(source, ObjectCache(trim_server))
        else:
            index = EventIndex(kinds=frozenset({"NotebookServer", "Pod"}))
            reflector = Reflector(ApiListerWatcher(api, EVENTS, namespace), index)
        reflector.start()
        entry = per_loop[key] = (api, reflector)
    return entry[1]


#: Background cleanups of failed starts under way, per loop (see :mod:`.cleanup`).
_cleanups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


async def stop_operator_reflectors() -> None:
    """Stop this loop's operator-mode reflectors and background cleanups (hub shutdown,
    tests)."""
    loop = asyncio.get_running_loop()
    for task in list(_cleanups.pop(loop, set())):
        await cancel_and_wait(task)
    per_loop = _registry.pop(loop, {})
    await asyncio.gather(*(r.stop() for _, r in per_loop.values()))


def _phase(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


#: The in-hub setting for per-user namespaces; operator mode has no counterpart (see
#: :data:`.limits.USER_NAMESPACES_REASON`), so asking for it is refused, not ignored.
_USER_NAMESPACES_SETTING = "enable_user_namespaces"


def _asks_for(value: Any) -> bool:
    """Whether a configured value turns a Bool setting on (``"false"`` from a command line
    does not)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _default_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


class OperatorSpawner(ProfilesMixin, Spawner):
    """Spawns by creating a NotebookServer for the operator to provision."""

    namespace = Unicode(
        help="Namespace of the NotebookServers (and so of the servers). Default: the hub's own."
    ).tag(config=True)

    @default("namespace")
    def _namespace_default(self) -> str:
        return _default_namespace()

    @default("ip")
    def _ip_default(self) -> str:
        # Inside the pod: listen on every interface (the hub reaches it by the pod's IP).
        return "0.0.0.0"

    @default("port")
    def _port_default(self) -> int:
        # The pod's own network namespace: a fixed port, as the in-hub spawner uses. A
        # template's notebookPort should match (the hub connects to the status's port).
        return 8888

    template = Unicode(
        "default", help="Name of the NotebookTemplate (or ClusterNotebookTemplate) to use."
    ).tag(config=True)

    template_kind = CaselessStrEnum(
        ["NotebookTemplate", "ClusterNotebookTemplate"],
        default_value="NotebookTemplate",
        help="Kind of ``template``.",
    ).tag(config=True)

    variables = Dict(
        value_trait=Unicode(),
        help="""Values of the template's variables (strings). A profile sets them with
        ``kubespawner_override: {"variables": {...}}``; the operator refuses any variable the
        template does not declare or whose value fails its constraints.""",
    ).tag(config=True)

    @validate("template")
    def _check_template(self, proposal: Any) -> str:
        value = str(proposal.value)
        if not is_valid_dns_subdomain(value):
            raise SpawnerConfigError("template", value, "is not a valid object name",
                                     "Use the metadata.name of a NotebookTemplate.")
        return value

    @validate("namespace")
    def _check_namespace(self, proposal: Any) -> str:
        value = str(proposal.value)
        if not is_valid_dns_label(value):
            raise SpawnerConfigError("namespace", value, "is not a valid namespace name",
                                     "Use the namespace the NotebookServers live in.")
        return value

    k8s_api_host = Unicode("", help="API server URL (default: in-cluster or kubeconfig).").tag(
        config=True
    )
    k8s_api_request_timeout = Integer(3, help="Seconds per API request attempt.").tag(config=True)
    k8s_api_request_retry_timeout = Integer(30, help="Seconds of retries per API call.").tag(
        config=True
    )
    kubeconfig = Unicode("", help="kubeconfig file (default: $KUBECONFIG).").tag(config=True)
    freeze_startup_heap = Bool(
        True,
        help="""Before the first API client of the hub process is made, move every object
        that exists into the garbage collector's permanent generation (gc.freeze()), so a
        spawn storm's full collections do not walk the hub's start-up heap; the same
        process-wide policy as c.KubeSpawner.freeze_startup_heap (see startup_heap.py).""",
    ).tag(config=True)

    stop_timeout = Integer(
        60, help="Seconds stop() waits for the operator to finish tearing the server down."
    ).tag(config=True)

    first_list_timeout = Float(
        10, help="Seconds poll() waits for the first list of NotebookServers after a restart."
    ).tag(config=True)

    events_enabled = Bool(True, help="Show the server's Events on the spawn page.").tag(
        config=True
    )

    object_name = Unicode(help="Name of this server's NotebookServer (kept in the state).")

    @default("object_name")
    def _object_name_default(self) -> str:
        return self._compute_object_name()

    _progress_log: SpawnProgress | None = None

    #: Pacing and bound of the background cleanup of a failed start (see .cleanup).
    cleanup_retry: CleanupRetry = CleanupRetry()
    #: The create id, send time and (once answered) uid of this spawner's last
    #: NotebookServer create: what proves an object to be the one it made.
    _create_id: str | None = None
    _create_sent: float | None = None
    _server_uid: str | None = None
    _cleanup_task: asyncio.Task[None] | None = None

    def _compute_object_name(self) -> str:
        fields = TemplateFields.for_server(
            username=self.user.name,
            servername=self.name or "",
            userid=getattr(self.user, "id", ""),
            hub_namespace=self.namespace,
        )
        return f"jupyter-{fields.safe_user_server}"

    _pod_name = ""

    @property
    def pod_name(self) -> str:
        """The notebook pod's name, once the operator has reported it (read-only: the
        template decides it)."""
        return self._pod_name

    @property
    def _key(self) -> tuple[str, str]:
        return (self.namespace, self.object_name)

    @property
    def secret_name(self) -> str:
        return f"{self.object_name}-env"

    # -- API and caches ----------------------------------------------------------------

    async def _api(self) -> KubeApi:
        if self.freeze_startup_heap:
            freeze_startup_heap()  # once per process
        return await shared_api(ApiSettings(
            host=self.k8s_api_host,
            request_timeout=float(self.k8s_api_request_timeout),
            retry_timeout=float(self.k8s_api_request_retry_timeout),
            kubeconfig=self.kubeconfig,
        ))

    async def _servers(self) -> Reflector:
        return _reflector(await self._api(), "servers", self.namespace)

    async def _events(self) -> Reflector | None:
        if not self.events_enabled:
            return None
        return _reflector(await self._api(), "events", self.namespace)

    # -- state ---------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state[STATE_OBJECT] = self.object_name
        state[STATE_NAMESPACE] = self.namespace
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get(STATE_OBJECT):
            self.object_name = str(state[STATE_OBJECT])
        if state.get(STATE_NAMESPACE):
            self.namespace = str(state[STATE_NAMESPACE])

    def clear_state(self) -> None:
        super().clear_state()
        self.object_name = self._compute_object_name()
        self._create_id = self._create_sent = self._server_uid = None

    # -- start ---------------------------------------------------------------------------

    @property
    def progress_log(self) -> SpawnProgress | None:
        return self._progress_log

    def _server_manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "NotebookServer",
            "metadata": {
                "name": self.object_name,
                # Set at creation (the operator would add it otherwise): one round trip
                # less per spawn, and no moment when children exist without it.
                "finalizers": [FINALIZER],
                "labels": {
                    LABEL_USER: safe_label_value(self.user.name),
                    LABEL_SERVERNAME: safe_label_value(self.name or ""),
                },
            },
            "spec": {
                "templateRef": {"name": self.template, "kind": self.template_kind},
                "identity": {"user": self.user.name, "server": self.name or "",
                             "userId": str(getattr(self.user, "id", "") or "")},
                "variables": {str(k): str(v) for k, v in self.variables.items()},
                "envSecretRef": {"name": self.secret_name},
            },
        }

    def _secret_manifest(self, server: dict[str, Any]) -> dict[str, Any]:
        env = {str(k): str(v) for k, v in self.get_env().items() if v is not None}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": self.secret_name,
                "labels": {LABEL_SERVER: self.object_name,
                           LABEL_USER: safe_label_value(self.user.name)},
                "ownerReferences": [{
                    "apiVersion": API_VERSION, "kind": "NotebookServer",
                    "name": self.object_name, "uid": server["metadata"]["uid"],
                    "blockOwnerDeletion": False,
                }],
            },
            "stringData": env,
        }

    async def start(self) -> str:
        progress = self._progress_log = SpawnProgress()
        try:
            return await self._start(progress)
        finally:
            progress.finish()

    def _refuse_what_operator_mode_cannot_honour(self) -> None:
        """Raise :class:`OperatorModeRefused` for a configuration this mode cannot honour.

        Runs before anything is created. ``internal_ssl`` is the hub's own setting (JupyterHub
        copies it onto every spawner). ``enable_user_namespaces`` is not a setting of this
        class, so traitlets would only warn and ignore it: it is looked for in every config
        section that reaches this class (``c.Spawner``, ``c.OperatorSpawner``, a subclass's
        own), never in ``c.KubeSpawner``, which a hub wrapping both spawners may set for
        its in-hub servers alone.
        """
        if self.internal_ssl:
            raise OperatorModeRefused(INTERNAL_SSL_REFUSAL)
        for section in type(self).section_names():
            values = self.config.get(section)
            if isinstance(values, Mapping) and _asks_for(values.get(_USER_NAMESPACES_SETTING)):
                raise OperatorModeRefused(
                    user_namespaces_refusal(f"c.{section}.{_USER_NAMESPACES_SETTING}"))

    async def _apply_override(
        self, where: str, override: Mapping[str, Any], option: OptionSelection | None
    ) -> None:
        """A profile that asks for per-user namespaces is refused with the reason (not as an
        unknown setting); one that sets it off asks for nothing this mode does not do."""
        if _USER_NAMESPACES_SETTING in override:
            value = override[_USER_NAMESPACES_SETTING]
            if callable(value) or _asks_for(value):
                raise ProfileOverrideError(user_namespaces_refusal(
                    f"{where}: kubespawner_override {_USER_NAMESPACES_SETTING}"))
            override = {k: v for k, v in override.items() if k != _USER_NAMESPACES_SETTING}
        await super()._apply_override(where, override, option)

    async def _start(self, progress: SpawnProgress) -> str:
        self._refuse_what_operator_mode_cannot_honour()
        await self.load_user_options()
        self.object_name = self._compute_object_name()
        api = await self._api()
        servers = await self._servers()
        events = await self._events()
        deadline = time.monotonic() + self.start_timeout
        # A cleanup of an earlier failed start is superseded: leftovers are removed here.
        await cancel_and_wait(self._cleanup_task)
        await self._remove_leftover(api, servers, deadline)
        progress.push(f"Requesting server {self.object_name} from template {self.template}")
        self._create_id, self._create_sent, self._server_uid = (
            new_create_id(), time.monotonic(), None
        )
        try:
            created = await api.create(NOTEBOOK_SERVERS, self.namespace,
                                       self._server_manifest(), create_id=self._create_id)
        except ApiError as e:
            if not e.retriable:  # a definite refusal: nothing was made
                self._create_id = self._create_sent = None
            raise
        uid = self._server_uid = created["metadata"]["uid"]
        try:
            await self._create_secret(api, created)
        except BaseException:
            await self._delete_failed_start(api, uid)
            raise
        unsubscribe = self._follow_progress(progress, servers, events, uid)
        try:
            remaining = max(0.0, deadline - time.monotonic())
            seen = False

            def settled(server: dict[str, Any] | None) -> bool:
                nonlocal seen
                if server is not None and server["metadata"].get("uid") == uid:
                    seen = True
                    return _phase(server) in ("Ready", "Failed", "Terminating")
                return seen  # gone (or replaced) after we saw it

            try:
                server = await servers.sink.wait_for(
                    self._key, settled, remaining
                )
            except TimeoutError:
                raise TimeoutError(
                    f"Server {self.object_name} was not ready within {self.start_timeout} s"
                    + self._last_words(servers)
                ) from None
        finally:
            for stop in unsubscribe:
                stop()
        if server is None or server["metadata"].get("uid") != uid:
            raise SpawnFailed("The server was deleted while it was starting.")
        status = server.get("status") or {}
        if status.get("phase") != "Ready":
            # Nothing is left half-created: the operator's finalizer removes the children.
            await self._delete_failed_start(api, uid)
            raise SpawnFailed(status.get("reason") or "The server failed to start.")
        self._pod_name = next(
            (c["name"] for c in status.get("children") or () if c.get("kind") == "Pod"), "")
        url = f"http://{status['address']}:{status['port']}"
        progress.push(f"Server {self.object_name} is ready at {url}")
        return url

    async def _delete_failed_start(self, api: KubeApi, uid: str) -> None:
        """Delete the NotebookServer of a start that failed, or leave it to a background
        cleanup when even that fails (the start's own error is what the caller raises)."""
        try:
            await api.delete(NOTEBOOK_SERVERS, self.namespace, self.object_name, uid=uid)
        except Exception as e:
            self._clean_up_later(self._cleanup_target(uid), e)

    def _cleanup_target(self, uid: str | None = None) -> CleanupTarget:
        return CleanupTarget(
            namespace=self.namespace,
            name=self.object_name,
            user=self.user.name,
            server=self.name or "",
            uid=uid or self._server_uid,
            create_id=self._create_id,
            created_at=self._create_sent,
        )

    def _owns_identity(self, server: dict[str, Any]) -> bool:
        identity = (server.get("spec") or {}).get("identity") or {}
        return bool(identity.get("user") == self.user.name
                    and (identity.get("server") or "") == (self.name or ""))

    def _clean_up_later(self, target: CleanupTarget, reason: BaseException | None) -> None:
        """Delete ``target``'s NotebookServer in the background (bounded; see .cleanup)."""
        if not target.provable:
            self.log.warning(
                "NotebookServer %s/%s may be left behind (%s): nothing proves which object "
                "is this server's, so nothing is deleted in the background",
                target.namespace, target.name, reason)
            return
        if reason is not None:
            self.log.warning("NotebookServer %s/%s could not be deleted (%s); retrying in "
                             "the background", target.namespace, target.name, reason)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run_cleanup(target),
                                name=f"operator-cleanup-{target.namespace}/{target.name}")
        self._cleanup_task = task
        tasks = _cleanups.setdefault(loop, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run_cleanup(self, target: CleanupTarget) -> None:
        try:
            api = await self._api()
            servers = await self._servers()
            await clean_up(api, servers.sink, target, self.cleanup_retry)
        except Exception:
            self.log.exception("Background cleanup of NotebookServer %s/%s failed",
                               target.namespace, target.name)

    def _last_words(self, servers: Reflector) -> str:
        server = servers.sink.get(self._key)
        conditions = ((server or {}).get("status") or {}).get("conditions") or []
        waiting = [c.get("message") for c in conditions if c.get("status") != "True"]
        return f": {waiting[-1]}" if waiting and waiting[-1] else ""

    async def _remove_leftover(self, api: KubeApi, servers: Reflector, deadline: float) -> None:
        """A NotebookServer of this name from an earlier start (a hub that died mid-spawn)."""
        if not await servers.wait_synced(max(0.0, deadline - time.monotonic())):
            raise TimeoutError("the NotebookServer cache could not be loaded")
        existing = servers.sink.get(self._key)
        if existing is None:
            return
        spec = existing.get("spec") or {}
        identity = spec.get("identity") or {}
        if identity.get("user") != self.user.name or identity.get("server") != (self.name or ""):
            raise SpawnFailed(
                f"A NotebookServer named {self.object_name} exists for another server; "
                "ask an administrator."
            )
        self.log.info("Removing the earlier NotebookServer %s before starting", self.object_name)
        await api.delete(NOTEBOOK_SERVERS, self.namespace, self.object_name,
                         uid=existing["metadata"]["uid"])
        await servers.sink.wait_for(
            self._key, lambda s: s is None, max(0.0, deadline - time.monotonic()))

    async def _create_secret(self, api: KubeApi, server: dict[str, Any]) -> None:
        manifest = self._secret_manifest(server)
        try:
            await api.create(SECRETS, self.namespace, manifest)
        except ApiError as e:
            if e.status != 409:
                raise
            # Left by an earlier server of this name (not yet collected): replace it.
            await api.delete(SECRETS, self.namespace, self.secret_name)
            await api.create(SECRETS, self.namespace, manifest)

    def _follow_progress(
        self, progress: SpawnProgress, servers: Reflector, events: Reflector | None, uid: str
    ) -> list[Any]:
        """Phase changes and Events of the server (and of its pod) into the progress log."""
        seen_phases: set[str] = set()
        seen_waiting: set[str] = set()
        watched_pods: set[str] = set()
        unsubscribe: list[Any] = []
        index: EventIndex | None = events.sink if events is not None else None

        def on_event(event: dict[str, Any]) -> None:
            progress.add_event(event)

        def announce(phase: str) -> None:
            # "Server provisioning" comes from the phase, from the operator's Provisioning
            # Event, or before "Server starting": an operator that creates the children
            # at once goes from Pending straight to Starting, and the page says the same.
            if phase in seen_phases:
                return
            if phase == "Starting":
                announce("Provisioning")
            seen_phases.add(phase)
            if phase in ("Provisioning", "Starting"):
                progress.push(f"Server {phase.lower()}")

        def on_server(server: dict[str, Any] | None) -> None:
            if server is None or server["metadata"].get("uid") != uid:
                return
            status = server.get("status") or {}
            phase = status.get("phase")
            if phase:
                announce(phase)
            for condition in status.get("conditions") or ():
                # What the operator is waiting for ("0/3 nodes are available: ..."), once each.
                message = condition.get("message") or ""
                if (condition.get("type") == "Ready" and condition.get("status") == "False"
                        and condition.get("reason") == "Starting" and message
                        and message != "Waiting for the pod." and message not in seen_waiting):
                    seen_waiting.add(message)
                    progress.push(message)
            if index is None:
                return
            for child in status.get("children") or ():
                if child.get("kind") == "Pod" and child["name"] not in watched_pods:
                    watched_pods.add(child["name"])
                    for event in index.for_object(self.namespace, child["name"], kind="Pod"):
                        progress.add_event(event)
                    unsubscribe.append(
                        index.listen(self.namespace, child["name"], on_event, kind="Pod"))

        if index is not None:
            def on_server_event(event: dict[str, Any]) -> None:
                if (event.get("involvedObject") or {}).get("uid") == uid:
                    if event.get("reason") == "Provisioning":
                        announce("Provisioning")
                    progress.add_event(event)

            for event in index.for_object(self.namespace, self.object_name,
                                          kind="NotebookServer", uid=uid):
                on_server_event(event)
            unsubscribe.append(index.listen(self.namespace, self.object_name, on_server_event,
                                            kind="NotebookServer"))
        unsubscribe.append(servers.sink.listen(self._key, on_server))
        on_server(servers.sink.get(self._key))
        return unsubscribe

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        log = self._progress_log
        if log is None:
            return
        async for message in log.follow():
            yield message

    # -- poll / stop / delete_forever -----------------------------------------------------

    async def poll(self) -> int | None:
        servers = await self._servers()
        if not await servers.wait_synced(self.first_list_timeout):
            self.log.warning("NotebookServer cache not loaded yet; assuming %s runs",
                             self.object_name)
            return None
        server = servers.sink.get(self._key)
        if server is None or server["metadata"].get("deletionTimestamp"):
            return 1
        if _phase(server) in ("Failed", "Terminating"):
            return 1
        return None

    async def stop(self, now: bool = False) -> None:
        """Delete the NotebookServer and wait until the operator has torn it down.

        When that fails (the API server or the hub itself too slow), the deletion is
        retried in the background, bounded, for the object provably this server's
        (see :mod:`.cleanup`), and the failure is still raised. When the last create got
        no answer, a stop that found nothing also leaves a short background watch for the
        object landing late.
        """
        target = self._cleanup_target()
        try:
            await self._stop()
        except Exception as e:
            self._clean_up_later(self._cleanup_target_now(target), e)
            raise
        if target.answer_unknown:
            self._clean_up_later(target, None)
        else:
            self._create_id = self._create_sent = self._server_uid = None

    def _cleanup_target_now(self, target: CleanupTarget) -> CleanupTarget:
        """``target`` pinned to the uid the cache shows for this server, if it shows one
        and nothing else identifies the object (a stop after a hub restart)."""
        if target.uid is not None or target.create_id is not None:
            return target
        per_loop = _registry.get(asyncio.get_running_loop(), {})
        for (_, what, namespace), (_, reflector) in per_loop.items():
            if what != "servers" or namespace != self.namespace:
                continue
            cached = reflector.sink.get(self._key)
            if cached is not None and self._owns_identity(cached):
                cached_uid = cached["metadata"].get("uid")
                if cached_uid:
                    return dataclasses.replace(target, uid=cached_uid)
        return target

    async def _stop(self) -> None:
        api = await self._api()
        servers = await self._servers()
        started = time.monotonic()
        await api.delete(NOTEBOOK_SERVERS, self.namespace, self.object_name)
        with contextlib.suppress(ApiError):
            await api.delete(SECRETS, self.namespace, self.secret_name)
        remaining = self.stop_timeout - (time.monotonic() - started)
        if not await servers.wait_synced(max(0.0, remaining)):
            raise TimeoutError("the NotebookServer cache could not be loaded")
        try:
            await servers.sink.wait_for(
                self._key, lambda s: s is None,
                max(0.0, self.stop_timeout - (time.monotonic() - started)))
        except TimeoutError:
            raise TimeoutError(
                f"NotebookServer {self.namespace}/{self.object_name} still exists "
                f"{self.stop_timeout}s after it was deleted (is the operator running?)"
            ) from None

    async def delete_forever(self) -> None:
        """Ask the operator to apply the template's ``whenDeleted`` policy to retained PVCs.

        The hub cannot delete (or even see) volumes; it creates a NotebookServer with
        ``purgeStorage`` for the same identity, waits for the operator's answer, and
        deletes it again.
        """
        api = await self._api()
        servers = await self._servers()
        manifest = self._server_manifest()
        manifest["spec"]["purgeStorage"] = True
        manifest["spec"].pop("envSecretRef", None)
        manifest["spec"]["variables"] = {}
        deadline = time.monotonic() + self.stop_timeout
        await self._remove_leftover(api, servers, deadline)
        created = await api.create(NOTEBOOK_SERVERS, self.namespace, manifest)
        uid = created["metadata"]["uid"]

        def purged(server: dict[str, Any] | None) -> bool:
            if server is None or server["metadata"].get("uid") != uid:
                return False
            for condition in (server.get("status") or {}).get("conditions") or ():
                if condition.get("type") == "StoragePurged":
                    return True
                if condition.get("type") == "Accepted" and condition.get("status") == "False":
                    return True  # refused (no such template): nothing to purge
            return False

        try:
            server = await servers.sink.wait_for(
                self._key, purged, max(0.0, deadline - time.monotonic()))
            message = next((c.get("message") for c in (server or {}).get("status", {}).get(
                "conditions", ()) if c.get("type") == "StoragePurged"), "")
            self.log.info("delete_forever %s: %s", self.object_name, message)
        finally:
            await api.delete(NOTEBOOK_SERVERS, self.namespace, self.object_name, uid=uid)
            with contextlib.suppress(TimeoutError):
                await servers.sink.wait_for(
                    self._key, lambda s: s is None, max(0.0, deadline - time.monotonic()))
