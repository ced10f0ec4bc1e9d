"""How the whole-hub storm's driver learns that a stop has finished: from the hub's event
log, not by listing every active user every quarter second.

Why: at 5,000 users one list of the active users is 25 pages of user models, seconds of the
hub's CPU; polled every quarter second it made the driver the largest load on the hub in
the stop phase, inflating both the stop times and the hub's CPU per cycle that the README
compares with upstream. JupyterHub writes a ``server-action`` event when a stop finishes;
the driver reads the file, and lists the active users only as a rare fallback."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from pathlib import Path

import pytest
from aiohttp import web

from benchmarks import hub_storm
from tests.local_http import serve

SCHEMA = hub_storm.SERVER_ACTION_SCHEMA


def event_line(user: str, when: datetime.datetime, *, action: str = "stop",
               servername: str = "", schema: str = SCHEMA) -> str:
    """One line as jupyter_events writes it: an aware ISO time with "Z" appended."""
    return json.dumps({"__timestamp__": when.isoformat() + "Z", "__schema__": schema,
                       "__schema_version__": 1, "__metadata_version__": 1,
                       "action": action, "username": user, "servername": servername})


NOW = datetime.datetime(2026, 12, 7, 3, 0, 0, 250000, tzinfo=datetime.UTC)


def test_stop_events_give_the_user_and_the_hubs_time() -> None:
    assert list(hub_storm.stop_events([event_line("user00001", NOW)])) == [
        ("user00001", NOW.timestamp())]


def test_a_naive_timestamp_is_utc() -> None:
    line = event_line("u", NOW).replace("+00:00Z", "Z")
    assert list(hub_storm.stop_events([line])) == [("u", NOW.timestamp())]


def test_starts_named_servers_other_schemas_and_garbage_are_not_stops() -> None:
    lines = [event_line("a", NOW, action="start"),
             event_line("b", NOW, servername="gpu"),
             event_line("c", NOW, schema="https://example.org/other"),
             "not json", "[1, 2]",
             json.dumps({"__schema__": SCHEMA, "action": "stop", "servername": "",
                         "username": "d", "__timestamp__": "yesterday"}),
             event_line("e", NOW)]
    assert [name for name, _ in hub_storm.stop_events(lines)] == ["e"]


def test_the_tail_returns_only_complete_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = hub_storm.EventTail(path)
    assert tail.read() == []  # not written yet
    path.write_bytes(b'{"a": 1}\n{"b"')
    assert tail.read() == ['{"a": 1}']
    with path.open("ab") as f:
        f.write(b': 2}\n\n{"c": 3}\n')
    assert tail.read() == ['{"b": 2}', '{"c": 3}']
    assert tail.read() == []


def stopping_hub(active: set[str],
                 deleted: asyncio.Event | None = None) -> tuple[web.Application, list[str]]:
    """A hub that answers every DELETE 202 (setting ``deleted``) and lists ``active`` as the
    active users; the list of the requests it served."""
    served: list[str] = []

    async def delete(request: web.Request) -> web.Response:
        served.append(f"DELETE {request.match_info['name']}")
        if deleted is not None:
            deleted.set()
        return web.Response(status=202)

    async def users(request: web.Request) -> web.Response:
        served.append("GET users")
        items = [{"name": name, "servers": {"": {}}} for name in sorted(active)]
        return web.json_response({"items": items, "_pagination": {"next": None}})

    app = web.Application()
    app.router.add_delete("/hub/api/users/{name}/server", delete)
    app.router.add_get("/hub/api/users", users)
    return app, served


@pytest.fixture
def fast_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_storm.Driver, "EVENT_READ_INTERVAL", 0.01)


async def test_a_stop_ends_at_the_time_the_hub_logged_it_without_listing_users(
        tmp_path: Path, fast_events: None) -> None:
    events = tmp_path / "events.jsonl"
    deleted = asyncio.Event()
    # The list would say: still running.
    app, served = stopping_hub(active={"user1"}, deleted=deleted)
    async with serve(app) as port:
        async with hub_storm.Driver(f"http://127.0.0.1:{port}/hub/api", "http://x", "t", 10.0,
                                    events=events) as driver:
            sent = time.time()
            stopping = asyncio.ensure_future(driver.stop("user1"))
            await deleted.wait()
            logged = datetime.datetime.fromtimestamp(sent + 0.5, tz=datetime.UTC)
            events.write_text(event_line("user1", logged) + "\n")
            seconds, why = await stopping
    assert why == ""
    # The hub's time of the stop, not the time the driver read it.
    assert seconds == pytest.approx(0.5, abs=0.05)
    assert served == ["DELETE user1"]
    assert (driver.stops_seen_in_event_log, driver.stop_polls) == (1, 0)


async def test_a_stop_logged_before_its_202_was_read_is_not_missed(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    app, served = stopping_hub(active={"user2"})
    async with serve(app) as port:
        async with hub_storm.Driver(f"http://127.0.0.1:{port}/hub/api", "http://x", "t", 10.0,
                                    events=events) as driver:
            logged = datetime.datetime.now(datetime.UTC)
            events.write_text(event_line("user2", logged) + "\n")
            driver._read_stop_events()  # as the reader of another pending stop would
            seconds, why = await driver.stop("user2")  # its 202 comes after its event
    assert why == "" and seconds == 0.0  # finished before the DELETE was even answered
    assert served == ["DELETE user2"]


async def test_without_an_event_the_rare_list_finds_the_stop(
        tmp_path: Path, fast_events: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_storm.Driver, "STOP_POLL_MIN_INTERVAL", 0.05)
    app, served = stopping_hub(active=set())  # gone, but no event was written
    async with serve(app) as port:
        async with hub_storm.Driver(f"http://127.0.0.1:{port}/hub/api", "http://x", "t", 10.0,
                                    events=tmp_path / "events.jsonl") as driver:
            seconds, why = await driver.stop("user1")
    assert why == "" and seconds is not None and seconds >= 0.05
    assert served == ["DELETE user1", "GET users"]
    assert (driver.stops_seen_in_event_log, driver.stop_polls) == (0, 1)


def test_the_fallback_list_waits_twenty_times_as_long_as_it_took() -> None:
    # A quick list still waits the minimum; a list that took 2 s of the hub waits 40 s, so
    # the driver's share of the hub stays under a twentieth however slow the hub is.
    Driver = hub_storm.Driver
    assert Driver.fallback_delay(0.01) == Driver.STOP_POLL_MIN_INTERVAL
    assert Driver.fallback_delay(2.0) == 2.0 * Driver.STOP_POLL_SHARE_INVERSE


def test_the_hub_is_told_to_write_its_event_log_into_the_state_directory(
        tmp_path: Path) -> None:
    args = hub_storm.build_parser().parse_args(["--users", "1"])
    config = hub_storm.hub_config(args, tmp_path, "t0ken", {"public": 1, "hub": 2,
                                                            "proxy_api": 3})
    assert (f'c.EventLogger.handlers = [_logging.FileHandler("{tmp_path / hub_storm.EVENT_LOG}", delay=True)]'
            in config)
