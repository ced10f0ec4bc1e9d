"""A graceful pod deletion as clients observe it: the DELETE answer, each watcher's
event sequence with its resourceVersions, and the kubelet's Killing Event.

Why: the delete path is tuned for bursts (watch lines written together, the kubelet's
final writes checked against the stored spec instead of walked again, the DELETE answered
with its watch event's bytes). None of that may show: these tests pin what a client
sees, over HTTP, from two watchers with different selectors, so a fast path that
reorders, drops, re-encodes or changes anything fails here.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import orjson
import pytest
from kubesim.cluster.config import ClusterConfig
from kubesim.cluster.testing import run_cluster

HANG_GUARD = 20  # seconds; only stops a broken test from hanging, never part of an assertion
NS = "default"


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"component": "singleuser-server"}},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyterhub/singleuser:latest",
                    "env": [{"name": f"VAR_{i}", "value": str(i)} for i in range(5)],
                    "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                }
            ],
        },
    }


class LineWatch:
    """An HTTP watch read line by line: each event's raw bytes and its decoded form."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()
        self.opened = asyncio.Event()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async with self.http.get(self.url) as resp:
            assert resp.status == 200
            self.opened.set()
            async for line in resp.content:
                await self.lines.put(line)

    async def next(self) -> tuple[bytes, dict[str, Any]]:
        line = await self.lines.get()
        return line, json.loads(line)

    async def until(self, done: Any) -> list[tuple[bytes, dict[str, Any]]]:
        seen = []
        while True:
            line, event = await self.next()
            seen.append((line, event))
            if done(event):
                return seen

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def ready(event: dict[str, Any]) -> bool:
    conditions = (event["object"].get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@pytest.mark.parametrize("flush_interval", [0.0, 0.001])
async def test_a_graceful_delete_seen_by_two_watchers_and_the_deleter(flush_interval: float) -> None:
    config = ClusterConfig.fast(default_scenario="instant")
    async with (
        run_cluster(config, watch_flush_interval=flush_interval) as sim,
        aiohttp.ClientSession() as http,
    ):
        base = f"{sim.url}/api/v1/namespaces/{NS}"
        created = await http.post(f"{base}/pods", json=pod("alice"))
        assert created.status == 201
        start = rv(await created.json())
        # two watchers of the same pod through different selectors, and one of Events
        by_label = LineWatch(
            http, f"{base}/pods?watch=1&labelSelector=component%3Dsingleuser-server"
            f"&resourceVersion={start}"
        )
        by_name = LineWatch(
            http, f"{base}/pods?watch=1&fieldSelector=metadata.name%3Dalice"
            f"&resourceVersion={start}"
        )
        events = LineWatch(
            http, f"{base}/events?watch=1&fieldSelector=involvedObject.name%3Dalice"
            f"&resourceVersion={start}"
        )
        async with asyncio.timeout(HANG_GUARD):
            for w in (by_label, by_name, events):
                await w.opened.wait()
            await by_label.until(ready)
            await by_name.until(ready)

            deleted = await http.delete(f"{base}/pods/alice")  # the default grace period
            assert deleted.status == 200
            body = await deleted.read()
            answer = json.loads(body)
            assert answer["kind"] == "Pod" and answer["apiVersion"] == "v1"
            assert answer["metadata"]["deletionGracePeriodSeconds"] == 30
            assert answer["metadata"]["deletionTimestamp"]
            assert answer["status"]["phase"] == "Running"

            gone = lambda e: e["type"] == "DELETED"  # noqa: E731
            seen_label = await by_label.until(gone)
            seen_name = await by_name.until(gone)
            killing = [
                e
                for _, e in await events.until(lambda e: e["object"].get("reason") == "Killing")
                if e["object"].get("reason") == "Killing"
            ]

        # both watchers saw exactly the same lines, byte for byte
        assert [line for line, _ in seen_label] == [line for line, _ in seen_name]
        # and each line is its object serialised, the DELETED too (made from the grace-0
        # MODIFIED's bytes with the resourceVersion swapped)
        for line, event in seen_label:
            assert line == (
                b'{"type":"' + event["type"].encode() + b'","object":'
                + orjson.dumps(event["object"]) + b"}\n"
            )
        sequence = [e for _, e in seen_label]
        assert [e["type"] for e in sequence] == ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
        marked, final_status, grace_zero, removed = (e["object"] for e in sequence)
        versions = [rv(o) for o in (marked, final_status, grace_zero, removed)]
        assert versions == sorted(set(versions))  # four writes, four new versions

        # the DELETE answered with the object its first MODIFIED carries, same bytes
        assert seen_label[0][0] == b'{"type":"MODIFIED","object":' + body + b"}\n"
        assert rv(answer) == versions[0]

        # the kubelet's report: containers stopped, then the grace-0 deletion, then gone
        assert final_status["metadata"]["deletionGracePeriodSeconds"] == 30
        assert final_status["status"]["phase"] == "Succeeded"
        (state,) = final_status["status"]["containerStatuses"]
        assert state["state"]["terminated"]["reason"] == "Completed"
        assert state["state"]["terminated"]["exitCode"] == 0
        assert final_status["spec"] == marked["spec"]
        assert grace_zero["metadata"]["deletionGracePeriodSeconds"] == 0
        assert grace_zero["metadata"]["deletionTimestamp"] <= marked["metadata"][
            "deletionTimestamp"
        ]
        assert grace_zero["status"] == final_status["status"]
        # DELETED carries the last state with the final resourceVersion
        assert {**removed, "metadata": {**removed["metadata"], "resourceVersion": "x"}} == {
            **grace_zero,
            "metadata": {**grace_zero["metadata"], "resourceVersion": "x"},
        }
        assert versions[3] == versions[2] + 1

        # the Killing Event, between the deletion and the kubelet's status write
        (added,) = killing
        assert added["type"] == "ADDED"
        event = added["object"]
        assert versions[0] < rv(event) < versions[1]
        assert list(event) == [
            "kind", "apiVersion", "metadata", "involvedObject", "reason", "message", "source",
            "firstTimestamp", "lastTimestamp", "count", "type", "reportingComponent",
            "reportingInstance", "eventTime",
        ]
        assert event["eventTime"] is None
        assert event["reason"] == "Killing" and event["type"] == "Normal"
        assert event["message"] == "Stopping container notebook"
        assert event["count"] == 1
        assert event["source"]["component"] == "kubelet"
        assert event["source"]["host"] == final_status["spec"]["nodeName"]
        assert event["reportingComponent"] == "kubelet"
        assert event["reportingInstance"] == final_status["spec"]["nodeName"]
        involved = event["involvedObject"]
        assert involved == {
            "kind": "Pod",
            "namespace": NS,
            "name": "alice",
            "uid": marked["metadata"]["uid"],
            "apiVersion": "v1",
            "resourceVersion": str(versions[0]),
            "fieldPath": "spec.containers{notebook}",
        }
        for w in (by_label, by_name, events):
            await w.close()
