"""The whole-hub storm's driver against a scripted hub: how it follows a spawn's progress
stream (as the spawn page's EventSource does) and how it names and counts failures.

Why: a failure the driver records is a user who did not get a server, in the figure the
README compares with upstream. A stream that ends early, closed by the hub or cut, is
opened again, as a browser does, so it is not counted as a failed spawn; a spawn that
failed, or a hub that refuses the stream, still is, with what it said."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from aiohttp import web

from benchmarks import hub_storm
from tests.local_http import serve

# One scripted answer per progress request: a status, the events of a 200 stream, or
# BREAK: a 200 whose connection is cut after one event, before the stream ends.
BREAK = "break"
Answer = int | str | Sequence[dict[str, object]]
#: answers -> (the driver's failure or "", streams opened again, progress requests served)
Follow = Callable[[Sequence[Answer]], Awaitable[tuple[str, int, int]]]


def scripted_hub(answers: Sequence[Answer]) -> tuple[web.Application, list[int]]:
    """A hub whose progress endpoint gives ``answers`` in order (the last one repeats),
    and the list of the requests it served."""
    served: list[int] = []

    async def progress(request: web.Request) -> web.StreamResponse:
        answer = answers[min(len(served), len(answers) - 1)]
        served.append(len(served))
        if isinstance(answer, int):
            return web.Response(status=answer, text=json.dumps({"status": answer, "message": "no"}))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"\n\n")  # the hub's keepalive
        if answer == BREAK:
            await response.write(f"data: {json.dumps(PROGRESS)}\n\n".encode())
            assert request.transport is not None
            request.transport.abort()  # mid-stream, as a hub that resets its connection
            return response
        for event in answer:
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/hub/api/users/{name}/server/progress", progress)
    return app, served


@pytest.fixture
def no_reopen_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_storm, "PROGRESS_REOPEN_DELAY", 0.0)


@pytest.fixture
def follow(no_reopen_delay: None, tmp_path: Path) -> Follow:
    events = tmp_path / "events.jsonl"

    async def run(answers: Sequence[Answer]) -> tuple[str, int, int]:
        app, served = scripted_hub(answers)
        async with serve(app) as port:
            api = f"http://127.0.0.1:{port}/hub/api"
            async with hub_storm.Driver(api, "http://127.0.0.1:9", "t0ken", 10.0,
                                        events=events) as driver:
                why = await driver._follow_progress("bench-0001")
        return why, driver.progress_reopened, len(served)

    return run


PROGRESS = {"progress": 50, "message": "pulling"}
READY = {"progress": 100, "ready": True, "message": "Server ready"}


async def test_ready_on_the_first_stream_is_success_without_reopening(follow: Follow) -> None:
    assert await follow([[PROGRESS, READY]]) == ("", 0, 1)


async def test_a_stream_closed_without_ready_is_opened_again_as_a_browser_does(follow: Follow) -> None:
    assert await follow([[PROGRESS], [READY]]) == ("", 1, 2)


async def test_a_connection_cut_mid_stream_is_opened_again_as_a_browser_does(
    follow: Follow,
) -> None:
    """An EventSource reconnects after a network error too, not only after a clean close."""
    assert await follow([BREAK, [READY]]) == ("", 1, 2)


async def test_a_stream_cut_every_time_fails_naming_the_last_error(follow: Follow) -> None:
    why, reopened, served = await follow([BREAK])
    opens = hub_storm.PROGRESS_REOPENS + 1
    assert why.startswith(f"progress stream ended without ready, {opens} times (last: ")
    assert (reopened, served) == (hub_storm.PROGRESS_REOPENS, opens)


async def test_a_failed_spawn_is_a_failure_with_the_hubs_message(follow: Follow) -> None:
    failed = {"progress": 100, "failed": True, "message": "Spawn failed: quota"}
    why, reopened, served = await follow([[PROGRESS, failed]])
    assert (why, reopened, served) == ("failed: Spawn failed: quota", 0, 1)


async def test_a_refused_stream_ends_at_once_with_its_status(follow: Follow) -> None:
    """An EventSource does not reconnect after an answer other than 200."""
    why, reopened, served = await follow([[PROGRESS], 400])
    assert why.startswith("progress GET 400: ")
    assert (reopened, served) == (1, 2)


async def test_a_stream_that_never_says_ready_fails_after_the_last_reopen(follow: Follow) -> None:
    why, reopened, served = await follow([[PROGRESS]])
    opens = hub_storm.PROGRESS_REOPENS + 1
    assert why == f"progress stream ended without ready, {opens} times"
    assert (reopened, served) == (hub_storm.PROGRESS_REOPENS, opens)


@pytest.mark.parametrize(
    ("why", "kind"),
    [
        ("DELETE 503: \n<!DOCTYPE HTML>\n<html lang=\"en\">", "DELETE 503"),
        ("progress GET 400: {\"status\": 400}", "progress GET 400"),
        ("ClientOSError: [Errno 104] Connection reset by peer",
         "ClientOSError: [Errno N] Connection reset by peer"),
        ("failed: Spawn failed: pod bench-00017 timed out after 600 s",
         "failed: Spawn failed: pod bench-N timed out after N s"),
        ("progress stream ended without ready, 4 times",
         "progress stream ended without ready, N times"),
    ],
)
def test_failures_are_counted_by_kind_without_pages_or_numbers(why: str, kind: str) -> None:
    assert hub_storm.failure_kind(why) == kind


def test_the_markdown_lists_failures_by_kind_and_the_reopened_streams() -> None:
    summary = {"p50": 1.0, "p99": 2.0, "max": 3.0}
    result = {
        "meta": {"users": 2, "spawner": "x"}, "failed": 2,
        "failures_by_kind": {"DELETE 503": 1, "failed: a|b": 1}, "progress_reopened": 3,
        "start_to_reachable_ms": summary, "stop_ms": summary, "hub_cpu_ms_per_cycle": 1.0,
        "proxy_cpu_ms_per_cycle": 1.0, "simulator_cpu_ms_per_cycle": 1.0,
        "hub_longest_stall_ms": {"start_phase": 1.0, "stop_phase": 1.0},
        "wall_s": {"start_phase": 1.0, "stop_phase": 1.0}, "cluster_at_peak": {},
        "hub_time_by_phase": {}, "stops_seen_in_hub_event_log": 1, "driver_stop_polls": 2,
        "driver_stop_poll_errors": 1,
    }
    text = hub_storm.markdown(result)
    assert "| failures by kind | DELETE 503 x1, failed: a/b x1 |" in text
    assert "without ready | 3 |" in text
    assert "event log / lists of active users polled (failed) | 1 / 2 (1) |" in text
    # a result from before the driver recorded its token used the config's service token
    assert "| the driver's API token | the config's service token" in text
    result["meta"] = {"users": 2, "spawner": "x", "driver_token": "generated"}
    assert (f"| the driver's API token | generated by the hub for {hub_storm.DRIVER_USER} "
            "(one hash round per request) |") in hub_storm.markdown(result)
