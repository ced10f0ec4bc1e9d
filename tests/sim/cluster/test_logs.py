"""Container logs: timestamps, sinceSeconds/sinceTime, limitBytes, and FallbackToLogsOnError.

The record store is tested directly (synthetic times make the since cut-off exact); the
options and termination messages then go through ``kubernetes_asyncio`` against
process-mode pods.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubesim.cluster.containerlogs import (
    ContainerLog,
    LogOptions,
    LogRecord,
    _encode,
    format_log_time,
    log_tail,
    parse_since_time,
    termination_message,
)
from kubesim.errors import StatusError

from .podprocess import PY, process_pod
from .podwatch import create_and_follow, finished, pod_manifest

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")
T0 = 1_790_000_000 * 1_000_000_000  # nanoseconds


def stored_log(tmp_path: Path, records: list[LogRecord]) -> ContainerLog:
    log = ContainerLog(tmp_path / "c.log")
    log.close()
    log.path.write_bytes(b"".join(_encode(r) for r in records))
    return log


def test_log_times_round_trip_with_nanoseconds():
    assert format_log_time(T0 + 5) == "2026-09-21T14:13:20.000000005Z"
    assert parse_since_time("2026-09-21T14:13:20.000000005Z") == T0 + 5
    assert parse_since_time("2026-09-21T16:13:20+02:00") == T0
    with pytest.raises(ValueError):
        parse_since_time("2026-09-21T14:13:20")  # no zone


def test_tail_then_since_then_limit(tmp_path: Path):
    second = 1_000_000_000
    log = stored_log(tmp_path, [LogRecord(T0 + i * second, f"line {i}".encode(), True)
                                for i in range(5)] + [LogRecord(T0 + 9 * second, b"no newline",
                                                                False)])
    assert log.text() == "line 0\nline 1\nline 2\nline 3\nline 4\nno newline"
    assert log.text(LogOptions(tail_lines=2)) == "line 4\nno newline"
    # since keeps lines written at or after the cut-off
    assert log.text(LogOptions(since_ns=T0 + 3 * second)) == "line 3\nline 4\nno newline"
    # tail first, since second: the kubelet never looks further back than the tail
    assert log.text(LogOptions(tail_lines=3, since_ns=T0)) == "line 3\nline 4\nno newline"
    stamped = log.text(LogOptions(tail_lines=1, timestamps=True))
    assert stamped == "2026-09-21T14:13:29.000000000Z no newline"
    # the byte cap counts the timestamps and may cut a line
    assert log.text(LogOptions(timestamps=True, limit_bytes=39)) == (
        "2026-09-21T14:13:20.000000000Z line 0\n2")
    assert log_tail(log.records(), 2, 8) == "\nno newline"[-8:]


def test_log_options_are_validated_like_the_api_server():
    with pytest.raises(StatusError) as caught:
        LogOptions.from_query({"tailLines": -1, "limitBytes": 0}, "web")
    body = caught.value.status
    assert body["code"] == 422 and body["reason"] == "Invalid"
    assert body["message"] == (
        'PodLogOptions "web" is invalid: [tailLines: Invalid value: -1: must be greater than or '
        "equal to 0, limitBytes: Invalid value: 0: must be greater than 0]")
    with pytest.raises(StatusError) as caught:
        LogOptions.from_query({"sinceSeconds": 5, "sinceTime": "2026-01-01T00:00:00Z"}, "web")
    assert "at most one of `sinceTime` or `sinceSeconds` may be specified" in (
        caught.value.status["message"])
    with pytest.raises(StatusError) as caught:
        LogOptions.from_query({"sinceSeconds": 0}, "web")
    assert "sinceSeconds: Invalid value: 0: must be greater than 0" in caught.value.status["message"]
    options = LogOptions.from_query({"sinceSeconds": 10, "timestamps": True}, "web", now_ns=T0)
    assert options.since_ns == T0 - 10_000_000_000 and options.timestamps


async def test_pump_records_lines_as_they_complete(tmp_path: Path):
    log = ContainerLog(tmp_path / "c.log")
    reader = asyncio.StreamReader()
    pump = asyncio.ensure_future(log.pump(reader))
    reader.feed_data(b"one\ntw")
    reader.feed_data(b"o\nthr")
    reader.feed_eof()
    await pump
    assert [(r.text, r.complete) for r in log.records()] == [
        (b"one", True), (b"two", True), (b"thr", False)]
    assert log.text() == "one\ntwo\nthr"


def test_termination_message_sources(tmp_path: Path):
    log = stored_log(tmp_path, [LogRecord(T0, f"l{i}".encode(), True) for i in range(100)])
    fallback = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    records = log.records()
    message = termination_message(fallback, 1, records, tmp_path)
    assert message is not None
    assert message.splitlines() == [f"l{i}" for i in range(20, 100)]  # the last 80 lines
    assert termination_message(fallback, 0, records, tmp_path) is None  # success: no fallback
    assert termination_message({}, 1, records, tmp_path) is None  # policy File
    long = [LogRecord(T0, b"x" * 5000, True)]
    assert len(termination_message(fallback, 1, long) or "") == 2048
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "termination-log").write_text("from the file")
    assert termination_message(fallback, 1, records, tmp_path) == "from the file"
    assert termination_message({}, 0, records, tmp_path) == "from the file"
    custom = {"terminationMessagePath": "/tmp/why"}
    assert termination_message(custom, 1, records, tmp_path) is None


# ------------------------------------------------------------------ through the API


async def test_log_options_through_the_api(process_core: client.CoreV1Api):
    script = "print('alpha'); print('beta'); print('gamma')"
    await create_and_follow(process_core, process_pod("talker", [PY, "-c", script]), finished)
    read = process_core.read_namespaced_pod_log
    stamped = await read("talker", "default", timestamps=True)
    lines = stamped.splitlines()
    assert len(lines) == 3 and all(STAMP.match(line) for line in lines)
    assert [line.split(" ", 1)[1] for line in lines] == ["alpha", "beta", "gamma"]
    assert await read("talker", "default", limit_bytes=8) == "alpha\nbe"
    assert await read("talker", "default", since_seconds=3600) == "alpha\nbeta\ngamma\n"
    assert await read("talker", "default", tail_lines=1, timestamps=True) == lines[-1] + "\n"
    with pytest.raises(ApiException) as caught:
        await read("talker", "default", tail_lines=-3)
    assert caught.value.status == 422
    body = cast(str, caught.value.body)  # the client decodes it (the stubs say bytes)
    assert "tailLines: Invalid value: -3: must be greater than or equal to 0" in body


async def test_fallback_to_logs_on_error_becomes_the_terminated_message(
    process_core: client.CoreV1Api,
):
    script = ("import sys\n"
              "for i in range(100): print('setup', i)\n"
              "print('ImportError: no module named notebook', file=sys.stderr)\n"
              "sys.exit(3)\n")
    body = process_pod("broken", [PY, "-u", "-c", script],
                       terminationMessagePolicy="FallbackToLogsOnError")
    seen = await create_and_follow(process_core, body, finished)
    terminated = seen[-1][1].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    lines = terminated.message.splitlines()
    assert len(lines) == 80 and lines[-1] == "ImportError: no module named notebook"
    assert lines[0] == "setup 21"

    # the default policy (File) leaves the message empty
    plain = process_pod("plain", [PY, "-c", script])
    seen = await create_and_follow(process_core, plain, finished)
    assert seen[-1][1].status.container_statuses[0].state.terminated.message is None

    # a message the process writes to its terminationMessagePath wins
    writes = ("import pathlib, sys\n"
              "pathlib.Path('dev').mkdir(exist_ok=True)\n"
              "pathlib.Path('dev/termination-log').write_text('disk full')\n"
              "print('noise'); sys.exit(1)\n")
    body = process_pod("writer", [PY, "-c", writes],
                       terminationMessagePolicy="FallbackToLogsOnError")
    seen = await create_and_follow(process_core, body, finished)
    assert seen[-1][1].status.container_statuses[0].state.terminated.message == "disk full"


async def test_follow_with_timestamps_ends_at_the_byte_limit(
    process_core: client.CoreV1Api,
):
    script = (
        "import time\nprint('first line', flush=True)\nprint('second', flush=True)\n"
        "time.sleep(600)\n"
    )
    body = process_pod("chatty", [PY, "-c", script], restart_policy="Always")
    await create_and_follow(process_core, body,
                            lambda _t, p: bool(p.status.container_statuses)
                            and p.status.container_statuses[0].ready)
    # _preload_content=False: the unread aiohttp response (the stubs type the text)
    response = cast(aiohttp.ClientResponse, await process_core.read_namespaced_pod_log(
        "chatty", "default", follow=True, timestamps=True, limit_bytes=45,
        _preload_content=False))
    # the process keeps running: only the byte budget can end this stream
    async with asyncio.timeout(20):
        text = (await response.read()).decode()
    response.release()
    assert len(text) == 45 and STAMP.match(text)
    first, second = text.split("\n")
    # 42 bytes of stamped first line, then the first 3 bytes of the second line's stamp
    assert first.endswith(" first line") and len(first) == 41
    assert second == first[:3]


async def test_simulated_output_is_the_log_and_the_fallback_message(core: client.CoreV1Api):
    scenario = "crash,exit-after=0.1,exit-code=2,output=starting\\nImportError: no jupyterhub\\n"
    body = pod_manifest("sim-crash", scenario=scenario, restart_policy="Never")
    body["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    seen = await create_and_follow(core, body, finished)
    terminated = seen[-1][1].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 2
    assert terminated.message == "starting\nImportError: no jupyterhub\n"
    log = await core.read_namespaced_pod_log("sim-crash", "default")
    assert log == "starting\nImportError: no jupyterhub\n"
    stamped = await core.read_namespaced_pod_log("sim-crash", "default", timestamps=True,
                                                 tail_lines=1)
    assert STAMP.match(stamped) and stamped.endswith(" ImportError: no jupyterhub\n")
    # without the policy the message stays empty
    plain = pod_manifest("sim-plain", scenario=scenario, restart_policy="Never")
    seen = await create_and_follow(core, plain, finished)
    assert seen[-1][1].status.container_statuses[0].state.terminated.message is None


async def test_follow_of_a_simulated_container_stays_open_until_it_stops(core: client.CoreV1Api):
    body = pod_manifest("sim-follow", scenario="ready,output=serving\\n")
    await create_and_follow(core, body, lambda _t, p: bool(p.status.container_statuses)
                            and p.status.container_statuses[0].ready)
    # _preload_content=False: the unread aiohttp response (the stubs type the text)
    response = cast(aiohttp.ClientResponse, await core.read_namespaced_pod_log(
        "sim-follow", "default", follow=True, _preload_content=False))
    first = await response.content.readline()
    assert first == b"serving\n"
    reading = asyncio.ensure_future(response.content.read())
    # a whole request round trip later the stream is still open (a non-follow answer
    # would have ended with the text): it ends only when the container stops
    await core.read_namespaced_pod("sim-follow", "default")
    assert not reading.done()
    await core.delete_namespaced_pod("sim-follow", "default")
    async with asyncio.timeout(20):
        rest = await reading
    response.release()
    assert rest == b""
    # a byte limit inside what was printed ends the stream at once
    body = pod_manifest("sim-limit", scenario="ready,output=serving\\n")
    await create_and_follow(core, body, lambda _t, p: bool(p.status.container_statuses)
                            and p.status.container_statuses[0].ready)
    limited = await core.read_namespaced_pod_log("sim-limit", "default", follow=True,
                                                 limit_bytes=4)
    assert limited == "serv"
