"""The progress log of one spawn: Kubernetes events and our own messages, for every listener.

JupyterHub's spawn page opens an event stream per browser tab and iterates
``spawner.progress()`` for each, so one spawn can have several listeners, and a tab opened
late (or reloaded) must still see everything from the start. So a spawn keeps one
append-only log (:class:`SpawnProgress`); every listener replays it from the beginning and
then awaits new entries. Nothing polls: the event reflector calls :meth:`add_event` the
moment the watch delivers an event, which wakes every listener at once.

Percentages follow upstream KubeSpawner: each message closes a third of the remaining
distance to 90 %, so the bar moves quickly at first and never reaches 100 before the
server is actually up (JupyterHub itself sends 100 when ``start()`` returns).

Hooks can push their own messages (e.g. "Restoring your home directory...")::

    async def pre_spawn_hook(spawner):
        ...

    def after_pod_created_hook(spawner, pod):
        spawner.progress_log.push("Pod created; waiting for a node")

``push(message, progress=None, level="Normal")`` never raises and is safe to call from any
hook that runs during ``start()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson

from ..kube.cache import pack_json
from ..objects.slugs import render_template

log = logging.getLogger("async_kubespawner.lifecycle.progress")

#: The asymptote of the bar while the server is not yet ready (as upstream).
PROGRESS_CEILING = 90


def _event_timestamp(event: dict[str, Any]) -> str:
    return (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or _now()
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SpawnProgress:
    """An append-only log of progress messages, replayed to each listener."""

    def __init__(
        self,
        *,
        slow_spawn_message: str = "",
        slow_spawn_message_threshold: float = 0,
        slow_spawn_message_frequency: float = 5,
    ) -> None:
        # Each entry as compact JSON, decoded for each listener: a spawn's log outlives it
        # (until the server's next spawn), and 1,000 servers' logs as nested dicts were
        # ~16,000 objects for every full garbage collection of the hub to walk.
        self._entries: list[bytes] = []
        self.finished = False
        self.progress: float = 0
        self._seen_events: set[str] = set()
        # One future per waiting listener: a listener that is cancelled cancels only its
        # own, and a new message wakes each listener in the very next loop iteration
        # (a shared future behind asyncio.shield costs every listener one more).
        self._listeners: list[asyncio.Future[None]] = []
        self._started = time.monotonic()
        self._slow_message = slow_spawn_message
        self._slow_frequency = max(float(slow_spawn_message_frequency), 0.5)
        self._slow_handle: asyncio.TimerHandle | None = None
        if slow_spawn_message and slow_spawn_message_threshold > 0:
            self._slow_handle = asyncio.get_running_loop().call_later(
                slow_spawn_message_threshold, self._patience
            )

    # -- producers ------------------------------------------------------------------

    def push(
        self,
        message: str,
        *,
        progress: int | None = None,
        level: str = "Normal",
        raw_event: dict[str, Any] | None = None,
    ) -> None:
        """Append a message (for hooks: see the module docstring). Never raises."""
        try:
            if self.finished:
                return
            if progress is None:
                self.progress += (PROGRESS_CEILING - self.progress) / 3
            else:
                self.progress = max(self.progress, min(int(progress), PROGRESS_CEILING))
            entry: dict[str, Any] = {
                "progress": int(self.progress),
                "message": f"{_now()} [{level}] {message}" if raw_event is None else message,
            }
            if raw_event is not None:
                entry["raw_event"] = raw_event
            self._entries.append(pack_json(entry))
            self._wake()
        except Exception:
            log.exception("could not record a progress message")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message so far (fresh copies)."""
        return [orjson.loads(entry) for entry in self._entries]

    def add_event(self, event: dict[str, Any]) -> None:
        """A Kubernetes event about the spawning pod (already filtered by pod uid)."""
        uid = str((event.get("metadata") or {}).get("uid") or id(event))
        if uid in self._seen_events:
            return
        self._seen_events.add(uid)
        text = (
            f"{_event_timestamp(event)} [{event.get('type', 'Normal')}] {event.get('message', '')}"
        )
        self.push(text, raw_event=event)

    def _patience(self) -> None:
        if self.finished:
            return
        seconds = int(time.monotonic() - self._started)
        try:
            # Plain {seconds} only, like every template here (no format specs).
            text = render_template(self._slow_message, {"seconds": seconds})
        except (KeyError, ValueError):
            text = self._slow_message
        self.push(text, progress=int(self.progress), level="Normal")
        self._slow_handle = asyncio.get_running_loop().call_later(
            self._slow_frequency, self._patience
        )

    def finish(self) -> None:
        """The spawn ended (ready or failed): listeners drain what is left and stop."""
        self.finished = True
        if self._slow_handle is not None:
            self._slow_handle.cancel()
            self._slow_handle = None
        self._wake()

    def _wake(self) -> None:
        listeners, self._listeners = self._listeners, []
        for waiting in listeners:
            if not waiting.done():
                waiting.set_result(None)

    # -- listeners --------------------------------------------------------------------

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every message from the first, then new ones as they come, until finished."""
        index = 0
        try:
            while True:
                while index < len(self._entries):
                    yield orjson.loads(self._entries[index])
                    index += 1
                if self.finished:
                    return
                waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._listeners.append(waiting)
                await waiting
        except (GeneratorExit, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("progress listener failed")
