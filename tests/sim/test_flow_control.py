"""API Priority and Fairness in the simulator (``kubesim.flowcontrol``).

Backlogs are made deterministic with ``FlowControl.hold()`` (nothing is admitted inside
the block, so every request queues) and awaited with ``FlowControl.wait_until`` (woken
when a request is queued, admitted, rejected or released): no sleeps, no timing. The
order requests were served in is the simulator's own request log, which records each
request when its handler ends.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubesim.auth.requestinfo import request_attributes
from kubesim.auth.users import AUTHENTICATED, MASTERS, UserInfo, service_account_user
from kubesim.flowcontrol import (
    DEFAULT_FLOW_SCHEMAS,
    DEFAULT_PRIORITY_LEVELS,
    FLOW_SCHEMA_UID_HEADER,
    PRIORITY_LEVEL_UID_HEADER,
    TOO_MANY_REQUESTS_TEXT,
    FlowControl,
    deal_hand,
    flow_hash,
    stable_uid,
)
from kubesim.testing import Simulator

from async_kubespawner.kube.client import ClientOptions, build_api

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def level_uid(name: str) -> str:
    return stable_uid("prioritylevelconfigurations", name)


def schema_uid(name: str) -> str:
    return stable_uid("flowschemas", name)


def served_order(sim: Simulator, paths: set[str]) -> list[str]:
    """The paths of ``paths`` in the order the simulator finished serving them."""
    return [r.path for r in sim.counters.log if r.path in paths]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # one connection per request, so requests of one client really are concurrent
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def get(
    http: aiohttp.ClientSession, url: str, agent: str, token: str | None = None
) -> tuple[int, dict[str, str], str]:
    headers = {"User-Agent": agent}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.get(url, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.text()


def flow_control(sim: Simulator) -> FlowControl:
    assert sim.flow_control is not None
    return sim.flow_control


# ----------------------------------------------------------------------- fairness
async def test_one_request_of_another_flow_passes_a_flood(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """Without authentication, programs are told apart by User-Agent and address: the
    flood's N requests spread over its hand of 6 queues, B's one request has a queue of
    its own, and fair queuing serves B within the first hand-size + 1 turns. First come,
    first served would serve B last."""
    fc, flood = flow_control(simulator), 30
    a_paths = {f"{CONFIGMAPS}/a-{i}" for i in range(flood)}
    b_path = f"{CONFIGMAPS}/b-0"
    with fc.hold():
        a_tasks = [
            asyncio.create_task(get(http, simulator.url + p, "flooder/1.0")) for p in a_paths
        ]
        await fc.wait_until(lambda: fc.waiting("global-default") == flood)
        b_task = asyncio.create_task(get(http, simulator.url + b_path, "light/1.0"))
        await fc.wait_until(lambda: fc.waiting("global-default") == flood + 1)
    results = await asyncio.gather(*a_tasks, b_task)
    assert {status for status, _, _ in results} == {404}  # all served, none refused
    order = served_order(simulator, a_paths | {b_path})
    assert len(order) == flood + 1
    position = order.index(b_path)
    assert position <= 6, order
    assert position < flood // 2


@pytest.mark.simulator_options(
    flow_control=FlowControl(
        priority_levels=[
            {
                "metadata": {"name": "global-default"},
                "spec": {
                    "type": "Limited",
                    "limited": {
                        "nominalConcurrencyShares": 20,
                        "limitResponse": {
                            "type": "Queue",
                            "queuing": {"queues": 64, "handSize": 1, "queueLengthLimit": 50},
                        },
                    },
                },
            }
        ],
        flow_schemas=[s for s in DEFAULT_FLOW_SCHEMAS if s["metadata"]["name"] == "global-default"],
    )
)
async def test_two_flows_with_one_queue_each_alternate(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """With a hand of one queue per flow, the two backlogs are served turn about, however
    the second one arrived after the first: never two more of one flow than the other."""
    fc = flow_control(simulator)
    level = fc.levels["global-default"]
    hands = {
        agent: level.hand("global-default", f"127.0.0.1 {agent}") for agent in ("a/1", "b/1")
    }
    assert hands["a/1"] != hands["b/1"]  # the premise: the two flows do not share a queue
    each = 6
    paths = {agent: [f"{CONFIGMAPS}/{agent[0]}-{i}" for i in range(each)] for agent in hands}
    with fc.hold():
        tasks = [
            asyncio.create_task(get(http, simulator.url + p, "a/1")) for p in paths["a/1"]
        ]
        await fc.wait_until(lambda: fc.waiting() == each)
        tasks += [
            asyncio.create_task(get(http, simulator.url + p, "b/1")) for p in paths["b/1"]
        ]
        await fc.wait_until(lambda: fc.waiting() == 2 * each)
    await asyncio.gather(*tasks)
    order = served_order(simulator, set(paths["a/1"]) | set(paths["b/1"]))
    flows = [path.rsplit("/", 1)[1][0] for path in order]
    balance = list(itertools.accumulate(1 if f == "a" else -1 for f in flows))
    assert len(flows) == 2 * each
    assert max(abs(b) for b in balance) <= 1, flows


@pytest.mark.simulator_options(flow_control=False)
async def test_turned_off_serves_in_arrival_order_without_headers(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    assert simulator.flow_control is None
    status, headers, _ = await get(http, simulator.url + CONFIGMAPS, "kubectl/1")
    assert status == 200
    assert PRIORITY_LEVEL_UID_HEADER not in headers
    assert FLOW_SCHEMA_UID_HEADER not in headers
    async with http.get(simulator.url + "/_sim/flowcontrol") as resp:
        assert await resp.json() == {"enabled": False}


# ----------------------------------------------------------------------- seats
@pytest.mark.simulator_options(flow_control=FlowControl(seats={"global-default": 1}))
async def test_watches_hold_no_seat(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """Three open watches on a level of one seat, and a GET still goes through (it would
    wait forever if the watches held the seat)."""
    fc = flow_control(simulator)
    level = fc.levels["global-default"]
    watches = []
    for i in range(3):
        resp = await http.get(
            simulator.url + CONFIGMAPS + "?watch=true", headers={"User-Agent": f"watcher/{i}"}
        )
        assert resp.status == 200
        assert resp.headers[PRIORITY_LEVEL_UID_HEADER] == level_uid("global-default")
        watches.append(resp)
    try:
        assert level.executing == 0
        status, headers, _ = await asyncio.wait_for(
            get(http, simulator.url + CONFIGMAPS, "reader/1"), timeout=30
        )
        assert status == 200
        assert headers[FLOW_SCHEMA_UID_HEADER] == schema_uid("global-default")
        assert level.executing == 0  # the GET's seat came back when it ended
    finally:
        for resp in watches:
            resp.close()


@pytest.mark.simulator_options(flow_control=FlowControl(seats={"global-default": 1}))
async def test_a_held_seat_queues_the_next_request_until_it_is_released(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """A request that blocks (here, a scripted ``hold`` fault) keeps its seat: with one seat
    the next request of the level waits in a queue until the first one ends."""
    fc = flow_control(simulator)
    gate = simulator.faults.hold(verb="get", resource="configmaps")
    first = asyncio.create_task(get(http, simulator.url + CONFIGMAPS + "/blocked", "one/1"))
    await gate.wait_arrived(1)
    assert fc.levels["global-default"].executing == 1
    second = asyncio.create_task(get(http, simulator.url + CONFIGMAPS + "/other", "two/1"))
    await fc.wait_until(lambda: fc.waiting("global-default") == 1)
    assert not second.done()
    gate.open()
    assert (await first)[0] == 404
    assert (await second)[0] == 404
    assert fc.levels["global-default"].executing == 0


# ----------------------------------------------------------------------- exempt
async def test_masters_and_probes_skip_the_queues(
    auth_simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    sim = auth_simulator
    fc = flow_control(sim)
    assert sim.auth is not None and sim.token is not None
    user_token = sim.auth.add_user("alice")
    with fc.hold():
        queued = asyncio.create_task(get(http, sim.url + "/api", "alice/1", user_token))
        await fc.wait_until(lambda: fc.waiting("global-default") == 1)
        status, headers, _ = await get(http, sim.url + CONFIGMAPS, "admin/1", sim.token)
        assert status == 200
        assert headers[PRIORITY_LEVEL_UID_HEADER] == level_uid("exempt")
        assert headers[FLOW_SCHEMA_UID_HEADER] == schema_uid("exempt")
        status, headers, _ = await get(http, sim.url + "/healthz", "probe/1", user_token)
        assert status == 200
        assert headers[FLOW_SCHEMA_UID_HEADER] == schema_uid("probes")
        assert not queued.done()
        assert fc.waiting() == 1
    status, headers, _ = await queued
    assert status == 200
    assert headers[PRIORITY_LEVEL_UID_HEADER] == level_uid("global-default")


async def test_service_accounts_are_flows_of_workload_low(sa_client: Any) -> None:
    hub = await sa_client("jhub", "hub", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
    ])
    async with aiohttp.ClientSession() as http:
        status, headers, _ = await get(
            http, hub.simulator.url + "/api/v1/namespaces/jhub/configmaps", "hub/1", hub.token
        )
    assert status == 200
    assert headers[PRIORITY_LEVEL_UID_HEADER] == level_uid("workload-low")
    assert headers[FLOW_SCHEMA_UID_HEADER] == schema_uid("service-accounts")


# ----------------------------------------------------------------------- limits
def tiny() -> FlowControl:
    """Everyone authenticated in one level of one seat and one queue of two."""
    level = {
        "metadata": {"name": "tiny"},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 1,
                "limitResponse": {
                    "type": "Queue",
                    "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 2},
                },
            },
        },
    }
    everything = {
        "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"],
        "clusterScope": True,
    }
    schema = {
        "metadata": {"name": "everyone"},
        "spec": {
            "priorityLevelConfiguration": {"name": "tiny"},
            "matchingPrecedence": 500,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [{"kind": "Group", "group": {"name": AUTHENTICATED}}],
                    "resourceRules": [everything],
                }
            ],
        },
    }
    return FlowControl([schema], [level], seats={"tiny": 1})


@pytest.mark.simulator_options(flow_control=tiny())
async def test_a_full_queue_is_answered_429_with_retry_after(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """One seat, one queue of two: with the seat taken (held), the third request is refused
    at once, in the real filter's words, and the two queued ones are served afterwards."""
    fc = flow_control(simulator)
    with fc.hold():
        queued = [
            asyncio.create_task(get(http, f"{simulator.url}{CONFIGMAPS}/q-{i}", "a/1"))
            for i in range(2)
        ]
        await fc.wait_until(lambda: fc.waiting("tiny") == 2)
        status, headers, text = await get(http, f"{simulator.url}{CONFIGMAPS}/q-2", "b/1")
        assert status == 429
        assert text == TOO_MANY_REQUESTS_TEXT
        assert headers["Retry-After"] == "1"
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert headers[PRIORITY_LEVEL_UID_HEADER] == level_uid("tiny")
        assert headers[FLOW_SCHEMA_UID_HEADER] == schema_uid("everyone")
    assert [s for s, _, _ in await asyncio.gather(*queued)] == [404, 404]
    assert fc.levels["tiny"].rejected == 1
    assert simulator.counters.count(status=429) == 1


@pytest.mark.simulator_options(flow_control=tiny())
async def test_the_spawners_client_retries_the_429(simulator: Simulator) -> None:
    """``KubeApi`` honours the plain-text 429 and its Retry-After, and its retry gets in."""
    fc = flow_control(simulator)
    pauses: list[float] = []
    hold = fc.hold()

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        hold.__exit__(None, None, None)  # the backlog drains while the client waits
        await fc.wait_until(lambda: fc.waiting("tiny") == 0)

    api = build_api(
        simulator.client_configuration(),
        request_timeout=10,
        retry_timeout=30,
        options=ClientOptions(sleep=sleep),
    )
    async with aiohttp.ClientSession() as http:
        hold.__enter__()
        fillers = [
            asyncio.create_task(get(http, f"{simulator.url}{CONFIGMAPS}/f-{i}", "filler/1"))
            for i in range(2)
        ]
        await fc.wait_until(lambda: fc.waiting("tiny") == 2)
        listed = await api.request("list", "configmaps", "GET", CONFIGMAPS)
        await asyncio.gather(*fillers)
    await api.close()
    assert listed["kind"] == "ConfigMapList"
    assert pauses == [1.0]
    assert fc.levels["tiny"].rejected == 1


@pytest.mark.simulator_options(
    flow_control=FlowControl(
        priority_levels=[
            {
                "metadata": {"name": "global-default"},
                "spec": {
                    "type": "Limited",
                    "limited": {"nominalConcurrencyShares": 20, "limitResponse": {"type": "Reject"}},
                },
            }
        ],
        flow_schemas=[s for s in DEFAULT_FLOW_SCHEMAS if s["metadata"]["name"] == "global-default"],
        seats={"global-default": 1},
    )
)
async def test_a_reject_level_refuses_instead_of_queueing(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    fc = flow_control(simulator)
    with fc.hold():
        first = asyncio.create_task(get(http, simulator.url + CONFIGMAPS, "a/1"))
        await fc.wait_until(lambda: fc.waiting("global-default") == 1)
        status, _, _ = await get(http, simulator.url + CONFIGMAPS, "b/1")
        assert status == 429
    assert (await first)[0] == 200


async def test_a_client_that_leaves_the_queue_is_forgotten(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    fc = flow_control(simulator)
    with fc.hold():
        task = asyncio.create_task(get(http, simulator.url + CONFIGMAPS, "impatient/1"))
        await fc.wait_until(lambda: fc.waiting() == 1)
        task.cancel()  # the connection closes; the server cancels the queued handler
        await fc.wait_until(lambda: fc.waiting() == 0)
    status, _, _ = await get(http, simulator.url + CONFIGMAPS, "patient/1")
    assert status == 200
    assert fc.levels["global-default"].executing == 0


# ----------------------------------------------------------------------- headers
async def test_headers_name_the_classification_by_uid(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    for path in (CONFIGMAPS, "/api", "/version", CONFIGMAPS + "/missing"):
        status, headers, _ = await get(http, simulator.url + path, "kubectl/1.32")
        assert status in (200, 404)
        assert headers[PRIORITY_LEVEL_UID_HEADER] == level_uid("global-default"), path
        assert headers[FLOW_SCHEMA_UID_HEADER] == schema_uid("global-default"), path
    async with http.get(simulator.url + "/_sim/flowcontrol") as resp:
        described = await resp.json()
    levels = {lv["name"]: lv for lv in described["priorityLevels"]}
    assert levels["global-default"]["admitted"] == 4
    assert levels["global-default"]["seats"] == 49  # ceil(600 * 20 / 245)
    assert levels["workload-low"]["seats"] == 245


# ----------------------------------------------------------------------- classification
def classify(user: UserInfo, method: str, path: str) -> tuple[str, str, str]:
    fc = FlowControl()
    fs, level, flow = fc.classify(user, method, path, {})
    return fs.name, level.name, flow


def node(name: str) -> UserInfo:
    return UserInfo(f"system:node:{name}", groups=("system:nodes", AUTHENTICATED))


@pytest.mark.parametrize(
    ("user", "method", "path", "expected"),
    [
        (
            UserInfo("kubesim-admin", groups=(MASTERS, AUTHENTICATED)),
            "POST", "/api/v1/namespaces/a/pods", ("exempt", "exempt", ""),
        ),
        (
            service_account_user("jhub", "hub"),
            "POST", "/api/v1/namespaces/jhub/pods",
            ("service-accounts", "workload-low", "system:serviceaccount:jhub:hub"),
        ),
        (
            service_account_user("kube-system", "operator"),
            "PUT", "/apis/coordination.k8s.io/v1/namespaces/x/leases/lock",
            ("system-leader-election", "leader-election", "system:serviceaccount:kube-system:operator"),
        ),
        (
            service_account_user("kube-system", "operator"),
            "POST", "/api/v1/namespaces/team/pods",
            ("kube-system-service-accounts", "workload-high", "team"),
        ),
        (
            node("n1"), "PATCH", "/api/v1/nodes/n1/status",
            ("system-node-high", "node-high", "system:node:n1"),
        ),
        (node("n1"), "GET", "/api/v1/namespaces/a/pods", ("system-nodes", "system", "system:node:n1")),
        (
            UserInfo("system:anonymous", groups=("system:unauthenticated",)),
            "GET", "/readyz", ("probes", "exempt", ""),
        ),
        (
            UserInfo("system:anonymous", groups=("system:unauthenticated",)),
            "GET", "/api/v1/namespaces", ("global-default", "global-default", "system:anonymous"),
        ),
        (
            UserInfo("alice", groups=(AUTHENTICATED,)),
            "DELETE", "/healthz", ("global-default", "global-default", "alice"),
        ),
    ],
)
def test_default_classification(
    user: UserInfo, method: str, path: str, expected: tuple[str, str, str]
) -> None:
    assert classify(user, method, path) == expected


def test_classification_agrees_with_the_attributes_it_was_given() -> None:
    fc = FlowControl()
    user = service_account_user("kube-system", "ctl")
    attrs = request_attributes("GET", "/api/v1/namespaces/kube-system/configmaps/lock", {})
    fs, _, _ = fc.classify(user, "GET", "/api/v1/namespaces/kube-system/configmaps/lock", {}, attrs)
    assert fs.name == "system-leader-election"


def test_without_authentication_clients_are_told_apart_by_agent_and_address() -> None:
    fc = FlowControl()
    a = fc.client_user("hub/5", "127.0.0.1")
    assert a is fc.client_user("hub/5", "127.0.0.1")
    flows = {
        fc.classify(u, "GET", CONFIGMAPS, {})[2]
        for u in (a, fc.client_user("operator/1", "127.0.0.1"), fc.client_user("hub/5", "10.0.0.2"))
    }
    assert len(flows) == 3
    assert fc.classify(a, "GET", CONFIGMAPS, {})[1].name == "global-default"


def test_configuration_errors_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown priority level 'nowhere'"):
        FlowControl(
            flow_schemas=[{"metadata": {"name": "x"}, "spec": {
                "priorityLevelConfiguration": {"name": "nowhere"}, "matchingPrecedence": 5}}],
        )
    with pytest.raises(ValueError, match="handSize"):
        FlowControl(priority_levels=[{"metadata": {"name": "bad"}, "spec": {
            "type": "Limited", "limited": {"nominalConcurrencyShares": 1, "limitResponse": {
                "type": "Queue", "queuing": {"queues": 2, "handSize": 3}}}}}])


def test_the_mandatory_objects_are_always_there() -> None:
    fc = FlowControl(flow_schemas=[], priority_levels=[])
    assert {fs.name for fs in fc.flow_schemas} == {"exempt", "catch-all"}
    assert set(fc.levels) == {"exempt", "catch-all"}
    fs, level, _ = fc.classify(UserInfo("bob", groups=(AUTHENTICATED,)), "GET", CONFIGMAPS, {})
    assert (fs.name, level.name) == ("catch-all", "catch-all")
    assert len(DEFAULT_PRIORITY_LEVELS) == 8


@given(
    hash_value=st.integers(min_value=0, max_value=2**64 - 1),
    deck=st.integers(min_value=1, max_value=256),
    data=st.data(),
)
def test_a_hand_is_distinct_queues_of_the_deck(hash_value: int, deck: int, data: Any) -> None:
    hand = data.draw(st.integers(min_value=1, max_value=min(deck, 15)))
    cards = deal_hand(hash_value, deck, hand)
    assert len(cards) == hand
    assert len(set(cards)) == hand
    assert all(0 <= c < deck for c in cards)


def test_flows_are_spread_over_the_queues() -> None:
    """Different flows get different hands (shuffle sharding's isolation)."""
    hands = {deal_hand(flow_hash("service-accounts", f"user-{i}"), 128, 6) for i in range(200)}
    assert len(hands) == 200
    firsts = {h[0] for h in hands}
    assert len(firsts) > 64


async def test_one_flow_waiting_alone_is_admitted_in_one_round(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """Fairness needs two flows: a backlog of one flow goes in a single round (one loop
    turn), where two flows' backlogs go a round (one head per queue) at a time: 24
    requests of two flows with hands of 6 queues need at least two rounds."""
    fc = flow_control(simulator)
    level = fc.levels["global-default"]
    with fc.hold():
        tasks = [
            asyncio.create_task(get(http, f"{simulator.url}{CONFIGMAPS}/s-{i}", "solo/1"))
            for i in range(10)
        ]
        await fc.wait_until(lambda: fc.waiting() == 10)
        rounds = level.rounds
    await asyncio.gather(*tasks)
    assert level.rounds == rounds + 1
    with fc.hold():
        tasks = [
            asyncio.create_task(get(http, f"{simulator.url}{CONFIGMAPS}/d-{i}", f"duo/{i % 2}"))
            for i in range(24)
        ]
        await fc.wait_until(lambda: fc.waiting() == 24)
        rounds = level.rounds
    await asyncio.gather(*tasks)
    assert level.rounds > rounds + 1


@pytest.mark.simulator_options(flow_control=FlowControl(request_wait_limit=-1.0))
async def test_a_request_that_waited_too_long_is_answered_429(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """(A negative limit makes every queued request one that waited too long.)"""
    fc = flow_control(simulator)
    with fc.hold():
        task = asyncio.create_task(get(http, simulator.url + CONFIGMAPS, "late/1"))
        await fc.wait_until(lambda: fc.waiting() == 1)
    status, headers, text = await task
    assert status == 429
    assert text == TOO_MANY_REQUESTS_TEXT
    assert headers["Retry-After"] == "1"
    assert fc.levels["global-default"].timed_out == 1
