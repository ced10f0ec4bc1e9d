"""Just enough of JupyterHub to drive any Spawner subclass the way the hub does.

A benchmark must measure the spawner, not a hub's database, proxy and HTTP handlers, yet
call the spawner exactly as ``jupyterhub.user.User.spawn`` and the progress handler do:
the ``_spawn_pending``/``_start_pending`` flags, ``start()`` wrapped in ``maybe_future``
and bounded by ``start_timeout``, ``_generate_progress()`` iterated concurrently,
``poll()`` every ``poll_interval`` (with the hub's jitter) once the server runs, and
``stop()``. The objects here carry the attributes ``Spawner`` and its subclasses read:
user name/id/url/groups, an ``orm_spawner`` with a real (session-less) ``orm.Server``,
the hub's API URL, an API token and an OAuth client id; they are the package's shared
stand-ins (``async_kubespawner.testing``), which the tests use too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from jupyterhub import orm
from jupyterhub.objects import Server
from jupyterhub.spawner import Spawner
from jupyterhub.utils import maybe_future
from traitlets.config import Config

from async_kubespawner.testing import StandInDatabase, stand_in_hub
from async_kubespawner.testing import build_spawner as build_stand_in_spawner


def build_spawner(
    spawner_class: type[Spawner],
    username: str,
    user_id: int,
    *,
    config: Config,
    servername: str = "",
) -> Spawner:
    """A spawner for one user's server, configured like the hub configures it (on the
    shared stand-ins of ``async_kubespawner.testing``), with a token per user id."""
    return build_stand_in_spawner(
        spawner_class,
        username,
        user_id,
        config=config,
        servername=servername,
        api_token=f"bench-token-{user_id:06d}",
        hub=stand_in_hub("hub.bench.svc"),
        db=StandInDatabase(),
    )


@dataclass
class CycleRecord:
    """What one user's start/poll/stop cycle observed (monotonic seconds)."""

    user: str
    namespace: str = ""
    pod_name: str = ""
    start_called: float = 0.0
    start_returned: float | None = None
    start_error: str | None = None
    url: str | None = None
    stop_called: float | None = None
    stop_returned: float | None = None
    stop_error: str | None = None
    polls: int = 0
    wrong_polls: int = 0  # poll() said "stopped" while the server was running
    poll_error: str | None = None  # the first exception poll() raised
    progress: list[tuple[str | None, float]] = field(default_factory=list)  # (event uid, got at)


def _event_uid(message: dict[str, Any]) -> str | None:
    raw = message.get("raw_event")
    if raw is None:
        return None
    meta = raw.get("metadata") if isinstance(raw, dict) else getattr(raw, "metadata", None)
    if isinstance(meta, dict):
        return meta.get("uid")
    return getattr(meta, "uid", None)


async def consume_progress(spawner: Spawner, record: CycleRecord) -> None:
    """The hub's progress handler: iterate ``_generate_progress`` and note arrival times."""
    with contextlib.suppress(asyncio.CancelledError):
        async for message in spawner._generate_progress():
            record.progress.append((_event_uid(message), time.monotonic()))


def warm_up_hub_models() -> None:
    """Configure JupyterHub's SQLAlchemy mappers, as a running hub has long done.

    The first ``orm.Server(...)`` of a process configures every mapper (~75 ms); without
    this, the first spawn of the storm pays it and the storm's longest stall is the
    stand-in hub's start-up, not anything a running hub does.
    """
    from sqlalchemy.orm import configure_mappers

    configure_mappers()


async def start_server(spawner: Spawner, record: CycleRecord) -> None:
    """``User.spawn`` minus the database and the proxy: start with progress, as the hub does."""
    # the column defaults an inserted row would get (no database here)
    orm_server = orm.Server(proto="http", ip="", port=random.randint(20000, 60000),
                            base_url=spawner.user.url, cookie_name="cookie")
    spawner.orm_spawner.server = orm_server
    # As User.spawn does: the spawner's Server object is made now, and the address start()
    # returns is set on it (it writes through to the row). JupyterHub's Server copies the
    # row's values when made, so a row changed behind its back leaves a spawner that read
    # spawner.server during start() (KubeSpawner does) with the placeholder address.
    spawner.server = server = Server(orm_server=orm_server)
    spawner._spawn_pending = True
    spawner._start_pending = True
    listener: asyncio.Task[None] | None = None
    try:
        await maybe_future(spawner.run_pre_spawn_hook())
        record.start_called = time.monotonic()
        future = maybe_future(spawner.start())
        # the spawn page's EventSource connects while start() runs
        listener = asyncio.ensure_future(consume_progress(spawner, record))
        url = await asyncio.wait_for(future, timeout=spawner.start_timeout)
        record.start_returned = time.monotonic()
        record.url = url if isinstance(url, str) else f"http://{url[0]}:{url[1]}"
        # as User.spawn does: the server now points at what start() returned
        parsed = urlparse(record.url)
        server.proto, server.ip = parsed.scheme, parsed.hostname or ""
        server.port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except Exception as exc:
        record.start_error = f"{type(exc).__name__}: {exc}"[:300]
        _print_traceback(f"start() of {spawner.user.name} failed")
    finally:
        spawner._start_pending = False
        spawner._spawn_pending = False
        record.namespace = str(getattr(spawner, "namespace", "") or "")
        record.pod_name = str(getattr(spawner, "pod_name", "") or "")
        if listener is not None:
            # JupyterHub ends the progress stream when the spawn finishes
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(listener, timeout=5)


async def poll_server(spawner: Spawner, record: CycleRecord, interval: float,
                      rng: random.Random) -> None:
    """The hub's poll loop (``start_polling``): every ``interval`` with the hub's jitter.

    A waiting timer here is what the hub itself runs (tornado's PeriodicCallback), not
    synchronisation: the benchmark only counts what ``poll()`` answers.
    """
    if interval <= 0:
        return
    jitter = float(getattr(spawner, "poll_jitter", 0.1) or 0.0)
    while True:
        await asyncio.sleep(interval * (1 + rng.uniform(-jitter, jitter)))
        try:
            status = await spawner.poll()
        except Exception as exc:  # the hub logs it and keeps polling; so do we
            record.poll_error = record.poll_error or f"{type(exc).__name__}: {exc}"[:300]
            continue
        record.polls += 1
        if status is not None:
            record.wrong_polls += 1


_TRACEBACKS_LEFT = 20


def _print_traceback(what: str) -> None:
    """The whole traceback of the first few failures on stderr: the one-line summary
    in the figures hides where an unexpected error came from (and printing thousands of
    timeouts would itself stall the loop)."""
    global _TRACEBACKS_LEFT
    if _TRACEBACKS_LEFT > 0:
        _TRACEBACKS_LEFT -= 1
        print(f"{what}:\n{traceback.format_exc()}", file=sys.stderr)


async def stop_server(spawner: Spawner, record: CycleRecord) -> None:
    """``User.stop``: stop polling, ask ``poll()``, call ``stop()`` if the server still
    runs, and note when ``stop()`` returned (JupyterHub's order)."""
    record.stop_called = time.monotonic()
    spawner.stop_polling()
    spawner._stop_pending = True
    try:
        if await maybe_future(spawner.poll()) is None:
            await maybe_future(spawner.stop())
            record.stop_returned = time.monotonic()
        else:  # no stop() was made, so none returned
            record.stop_error = "poll() said the server had stopped before stop()"
    except Exception as exc:
        record.stop_error = f"{type(exc).__name__}: {exc}"[:300]
        # The one-line summary hides where an unexpected error came from.
        _print_traceback(f"stop() of {spawner.user.name} failed")
    finally:
        spawner._stop_pending = False
        spawner.orm_spawner.server = None
