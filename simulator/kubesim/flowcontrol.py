"""API Priority and Fairness (``flowcontrol.apiserver.k8s.io``), as a single-threaded server can.

Why: a real kube-apiserver (>= 1.20) does not serve requests first come, first served.
Each request is classified by the FlowSchemas (lowest ``matchingPrecedence`` first) into a
priority level and a *flow* (the FlowSchema plus a distinguisher: the user name, the
namespace, or nothing); within a level, requests wait in queues that are served by fair
queuing, so one client's burst cannot starve another client's requests. Without this,
the simulator answers a hub's hundred in-flight creates before an operator's one status
write that arrived just after them: a latency no real cluster shows.

What this module models, and how it maps onto one event loop:

- **Classification** exactly as the real filter does it: subjects (user, group,
  ServiceAccount), resource rules (verbs, API groups, resources, namespaces, cluster
  scope) and non-resource rules; the default FlowSchemas and PriorityLevelConfigurations
  of a 1.36 server are :data:`DEFAULT_FLOW_SCHEMAS` and :data:`DEFAULT_PRIORITY_LEVELS`
  (API objects, ``flowcontrol.apiserver.k8s.io/v1``). The responses carry
  ``X-Kubernetes-PF-FlowSchema-UID`` and ``X-Kubernetes-PF-PriorityLevel-UID``.
- **Exempt** requests (``system:masters``, the health probes) skip the queues.
- **Long-running** requests: watches pass through the queues (their start is ordered
  fairly and answered with the headers) but never hold a seat once admitted; ``log``,
  ``exec``, ``attach``, ``portforward`` and ``proxy`` bypass flow control entirely, as on
  the real server.
- **Queues and shuffle sharding**: a level has ``queues`` FIFO queues; a flow is dealt a
  hand of ``handSize`` of them from a hash of its FlowSchema and distinguisher, and each
  of its requests joins the shortest queue of its hand. Queues are served by start-time
  fair queuing with unit cost: the next request admitted is the head of the non-empty
  queue that has been served least (a queue that was idle resumes at the level's current
  virtual time, so idleness earns no credit). A flow with many requests in flight
  spreads over its whole hand and so gets up to ``handSize`` shares, as on a real server.
- **Turns instead of threads**: the simulator executes one handler at a time, so what
  matters is *which* request starts next. Each event-loop turn, a level admits one
  *round*: the head of each of its non-empty queues (at most ``max_round``, 16), fairest
  first, or everything waiting when it is all one flow's; every request that arrives
  meanwhile queues, and the next round picks fairly among all of them. (One admission per
  turn would order more finely, but each turn costs a poll and a wake-up: a saturated
  simulator was a quarter slower.) While nothing is queued, the first ``max_round``
  requests of a turn (or any number, while they are all one flow's) go straight through
  in arrival order, as the loop would serve them: queueing starts only when a turn is
  busy with several flows, so a lightly loaded simulator pays a dict lookup and a
  callback per request and no extra wait.
- **Seats and limits**: each limited level has a concurrency limit (its nominal share of
  ``server_concurrency``, 600 by default as ``--max-requests-inflight`` 400 plus
  ``--max-mutating-requests-inflight`` 200). Requests queued for a turn count against it
  as they would be executing on a real server. A request that finds no seat and its
  queue at ``queueLengthLimit`` is rejected with 429 and ``Retry-After`` (plain text, as
  the real filter writes it); so is one that waited longer than ``request_wait_limit``
  (15 s) when its turn comes; a ``Reject`` level (``catch-all``) rejects instead of
  queueing. ``Retry-After`` adapts like the real server's dropped-requests tracker.

Not modelled: seat borrowing between levels, work estimation (a LIST costs one seat like
a GET), FlowSchema/PriorityLevelConfiguration objects served through the API (the
configuration is given to :class:`FlowControl`, defaulting to the real defaults), and the
``flowcontrol`` metrics.

Without authentication (``--no-auth``) every request would be the all-powerful
``system:admin`` and so exempt; flow control then classifies each request as an
authenticated user named after the client's address and User-Agent
(``"127.0.0.1 kubectl/v1.32..."``): different programs, or the same program on different
hosts, are different flows (global-default), as their users would be on a real cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .auth.requestinfo import Attributes, request_attributes
from .auth.users import AUTHENTICATED, UserInfo, split_service_account

FLOW_SCHEMA_UID_HEADER = "X-Kubernetes-PF-FlowSchema-UID"
PRIORITY_LEVEL_UID_HEADER = "X-Kubernetes-PF-PriorityLevel-UID"
API_VERSION = "flowcontrol.apiserver.k8s.io/v1"
UNAUTHENTICATED = "system:unauthenticated"
#: subresources whose requests the real server treats as long-running (never queued)
LONG_RUNNING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})
#: ``--max-requests-inflight`` (400) + ``--max-mutating-requests-inflight`` (200)
DEFAULT_SERVER_CONCURRENCY = 600
#: how long a request may wait in a queue before it is answered 429
DEFAULT_REQUEST_WAIT_LIMIT = 15.0
#: the real dropped-requests tracker's ceiling on Retry-After
MAX_RETRY_AFTER = 32
TOO_MANY_REQUESTS_TEXT = "Too many requests, please try again later.\n"
_UID_NAMESPACE = uuid.UUID("5c6b1d52-8e0a-4f59-9a43-6f1b9d0c7a11")
_MANDATORY = ("exempt", "catch-all")


# --------------------------------------------------------------------------- defaults
def _all_rules(*subjects: dict[str, Any]) -> dict[str, Any]:
    """A rule set matching every request of ``subjects``."""
    return {
        "subjects": list(subjects),
        "resourceRules": [
            {
                "verbs": ["*"],
                "apiGroups": ["*"],
                "resources": ["*"],
                "clusterScope": True,
                "namespaces": ["*"],
            }
        ],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
    }


def _group(name: str) -> dict[str, Any]:
    return {"kind": "Group", "group": {"name": name}}


def _user(name: str) -> dict[str, Any]:
    return {"kind": "User", "user": {"name": name}}


def _service_account(namespace: str, name: str) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "serviceAccount": {"namespace": namespace, "name": name}}


def _flow_schema(
    name: str, level: str, precedence: int, distinguisher: str | None, *rules: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": list(rules),
    }
    if distinguisher:
        spec["distinguisherMethod"] = {"type": distinguisher}
    return {
        "apiVersion": API_VERSION,
        "kind": "FlowSchema",
        "metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
        "spec": spec,
    }


def _limited(
    name: str, shares: int, lendable: int, queues: int = 0, hand: int = 0, length: int = 0
) -> dict[str, Any]:
    response: dict[str, Any] = (
        {"type": "Queue", "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": length}}
        if queues
        else {"type": "Reject"}
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": shares,
                "lendablePercent": lendable,
                "limitResponse": response,
            },
        },
    }


_KCM, _SCHEDULER = "system:kube-controller-manager", "system:kube-scheduler"
_LEADER_VERBS = ["get", "create", "update"]

#: The PriorityLevelConfigurations a 1.36 server creates (mandatory and suggested).
DEFAULT_PRIORITY_LEVELS: tuple[dict[str, Any], ...] = (
    {
        "apiVersion": API_VERSION,
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": "exempt", "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
        "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}},
    },
    _limited("catch-all", 5, 0),
    _limited("system", 30, 33, 64, 6, 50),
    _limited("node-high", 40, 25, 64, 6, 50),
    _limited("leader-election", 10, 0, 16, 4, 50),
    _limited("workload-high", 40, 50, 128, 6, 50),
    _limited("workload-low", 100, 90, 128, 6, 50),
    _limited("global-default", 20, 50, 128, 6, 50),
)

#: The FlowSchemas a 1.36 server creates (mandatory and suggested).
DEFAULT_FLOW_SCHEMAS: tuple[dict[str, Any], ...] = (
    _flow_schema("exempt", "exempt", 1, None, _all_rules(_group("system:masters"))),
    _flow_schema(
        "probes",
        "exempt",
        2,
        None,
        {
            "subjects": [_group(UNAUTHENTICATED), _group(AUTHENTICATED)],
            "nonResourceRules": [
                {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}
            ],
        },
    ),
    _flow_schema(
        "system-leader-election",
        "leader-election",
        100,
        "ByUser",
        {
            "subjects": [_user(_KCM), _user(_SCHEDULER), _service_account("kube-system", "*")],
            "resourceRules": [
                {
                    "verbs": _LEADER_VERBS,
                    "apiGroups": [""],
                    "resources": ["endpoints", "configmaps"],
                    "namespaces": ["kube-system"],
                },
                {
                    "verbs": _LEADER_VERBS,
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "namespaces": ["*"],
                },
            ],
        },
    ),
    _flow_schema(
        "endpoint-controller",
        "workload-high",
        150,
        "ByUser",
        {
            "subjects": [_user(_KCM), _service_account("kube-system", "endpoint-controller")],
            "resourceRules": [
                {
                    "verbs": _LEADER_VERBS,
                    "apiGroups": [""],
                    "resources": ["endpoints"],
                    "namespaces": ["*"],
                }
            ],
        },
    ),
    _flow_schema(
        "workload-leader-election",
        "leader-election",
        200,
        "ByUser",
        {
            "subjects": [_service_account("kube-system", "*")],
            "resourceRules": [
                {
                    "verbs": _LEADER_VERBS,
                    "apiGroups": [""],
                    "resources": ["endpoints", "configmaps"],
                    "namespaces": ["*"],
                },
                {
                    "verbs": _LEADER_VERBS,
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "namespaces": ["*"],
                },
            ],
        },
    ),
    _flow_schema(
        "system-node-high",
        "node-high",
        400,
        "ByUser",
        {
            "subjects": [_group("system:nodes")],
            "resourceRules": [
                {
                    "verbs": ["*"],
                    "apiGroups": [""],
                    "resources": ["nodes", "nodes/status"],
                    "clusterScope": True,
                },
                {
                    "verbs": ["*"],
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "namespaces": ["*"],
                },
            ],
        },
    ),
    _flow_schema("system-nodes", "system", 500, "ByUser", _all_rules(_group("system:nodes"))),
    _flow_schema(
        "kube-controller-manager", "workload-high", 800, "ByNamespace", _all_rules(_user(_KCM))
    ),
    _flow_schema(
        "kube-scheduler", "workload-high", 800, "ByNamespace", _all_rules(_user(_SCHEDULER))
    ),
    _flow_schema(
        "kube-system-service-accounts",
        "workload-high",
        900,
        "ByNamespace",
        _all_rules(_service_account("kube-system", "*")),
    ),
    _flow_schema(
        "service-accounts",
        "workload-low",
        9000,
        "ByUser",
        _all_rules(_group("system:serviceaccounts")),
    ),
    _flow_schema(
        "global-default",
        "global-default",
        9900,
        "ByUser",
        _all_rules(_group(UNAUTHENTICATED), _group(AUTHENTICATED)),
    ),
    _flow_schema(
        "catch-all",
        "catch-all",
        10000,
        "ByUser",
        _all_rules(_group(UNAUTHENTICATED), _group(AUTHENTICATED)),
    ),
)


def stable_uid(kind: str, name: str) -> str:
    """A uid that is the same in every run (a real server's are random per cluster; tests
    and recorded benchmarks prefer to compare them)."""
    return str(uuid.uuid5(_UID_NAMESPACE, f"{kind}/{name}"))


# --------------------------------------------------------------------------- matching
def _matches_name(patterns: Sequence[str], value: str) -> bool:
    return "*" in patterns or value in patterns


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a rule applies to: a user, a group, or ServiceAccounts (``name`` may be ``*``)."""

    kind: str
    name: str
    namespace: str = ""

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Subject:
        kind = body.get("kind", "")
        if kind == "User":
            return cls(kind, (body.get("user") or {}).get("name", ""))
        if kind == "Group":
            return cls(kind, (body.get("group") or {}).get("name", ""))
        if kind == "ServiceAccount":
            account = body.get("serviceAccount") or {}
            return cls(kind, account.get("name", ""), account.get("namespace", ""))
        raise ValueError(f"unknown subject kind {kind!r}")

    def matches(self, user: UserInfo) -> bool:
        if self.kind == "User":
            return self.name == "*" or self.name == user.name
        if self.kind == "Group":
            return self.name == "*" or self.name in user.groups
        account = split_service_account(user.name)
        if account is None:
            return False
        return account[0] == self.namespace and self.name in ("*", account[1])


@dataclass(frozen=True, slots=True)
class ResourceRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    namespaces: tuple[str, ...]
    cluster_scope: bool

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> ResourceRule:
        return cls(
            tuple(body.get("verbs") or ()),
            tuple(body.get("apiGroups") or ()),
            tuple(body.get("resources") or ()),
            tuple(body.get("namespaces") or ()),
            bool(body.get("clusterScope", False)),
        )

    @property
    def matches_all(self) -> bool:
        return (
            "*" in self.verbs
            and "*" in self.api_groups
            and "*" in self.resources
            and "*" in self.namespaces
            and self.cluster_scope
        )

    def matches(self, attrs: Attributes) -> bool:
        if not _matches_name(self.verbs, attrs.verb):
            return False
        if not _matches_name(self.api_groups, attrs.api_group):
            return False
        if not ("*" in self.resources or attrs.combined_resource in self.resources):
            return False
        if not attrs.namespace:
            return self.cluster_scope
        return _matches_name(self.namespaces, attrs.namespace)


@dataclass(frozen=True, slots=True)
class NonResourceRule:
    verbs: tuple[str, ...]
    urls: tuple[str, ...]

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> NonResourceRule:
        return cls(tuple(body.get("verbs") or ()), tuple(body.get("nonResourceURLs") or ()))

    @property
    def matches_all(self) -> bool:
        return "*" in self.verbs and "*" in self.urls

    def matches(self, attrs: Attributes) -> bool:
        if not _matches_name(self.verbs, attrs.verb):
            return False
        for url in self.urls:
            if url == "*" or url == attrs.path:
                return True
            if url.endswith("/*") and attrs.path.startswith(url[:-1]):
                return True
        return False


@dataclass(frozen=True, slots=True)
class PolicyRules:
    subjects: tuple[Subject, ...]
    resource_rules: tuple[ResourceRule, ...]
    non_resource_rules: tuple[NonResourceRule, ...]

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> PolicyRules:
        return cls(
            tuple(Subject.from_api(s) for s in body.get("subjects") or ()),
            tuple(ResourceRule.from_api(r) for r in body.get("resourceRules") or ()),
            tuple(NonResourceRule.from_api(r) for r in body.get("nonResourceRules") or ()),
        )

    def applies_to(self, user: UserInfo) -> bool:
        return any(s.matches(user) for s in self.subjects)

    @property
    def matches_every_request(self) -> bool:
        return any(r.matches_all for r in self.resource_rules) and any(
            r.matches_all for r in self.non_resource_rules
        )

    def matches(self, attrs: Attributes) -> bool:
        rules: Iterable[ResourceRule | NonResourceRule] = (
            self.resource_rules if attrs.resource_request else self.non_resource_rules
        )
        return any(rule.matches(attrs) for rule in rules)


@dataclass(frozen=True, slots=True)
class FlowSchema:
    """A FlowSchema, parsed: which requests it takes, to which level, and how flows split."""

    name: str
    uid: str
    priority_level: str
    precedence: int
    distinguisher: str | None  # "ByUser" | "ByNamespace" | None
    rules: tuple[PolicyRules, ...]

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> FlowSchema:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        name = meta.get("name", "")
        method = (spec.get("distinguisherMethod") or {}).get("type")
        if method not in (None, "ByUser", "ByNamespace"):
            raise ValueError(f"FlowSchema {name}: unknown distinguisherMethod {method!r}")
        return cls(
            name,
            meta.get("uid") or stable_uid("flowschemas", name),
            (spec.get("priorityLevelConfiguration") or {}).get("name", ""),
            int(spec.get("matchingPrecedence", 1000)),
            method,
            tuple(PolicyRules.from_api(r) for r in spec.get("rules") or ()),
        )


@dataclass(frozen=True, slots=True)
class PriorityLevelSpec:
    """A PriorityLevelConfiguration, parsed."""

    name: str
    uid: str
    exempt: bool
    shares: int
    reject: bool = False
    queues: int = 1
    hand_size: int = 1
    queue_length_limit: int = 50

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> PriorityLevelSpec:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        name = meta.get("name", "")
        uid = meta.get("uid") or stable_uid("prioritylevelconfigurations", name)
        if spec.get("type") == "Exempt":
            shares = int((spec.get("exempt") or {}).get("nominalConcurrencyShares") or 0)
            return cls(name, uid, True, shares)
        limited = spec.get("limited") or {}
        shares = int(limited.get("nominalConcurrencyShares", 30))
        response = limited.get("limitResponse") or {}
        if response.get("type") == "Reject":
            return cls(name, uid, False, shares, reject=True)
        queuing = response.get("queuing") or {}
        queues = int(queuing.get("queues", 64))
        hand = int(queuing.get("handSize", 8))
        if not 1 <= hand <= queues:
            raise ValueError(f"PriorityLevelConfiguration {name}: handSize must be 1..queues")
        return cls(
            name,
            uid,
            False,
            shares,
            queues=queues,
            hand_size=hand,
            queue_length_limit=int(queuing.get("queueLengthLimit", 50)),
        )


# --------------------------------------------------------------------------- runtime
def deal_hand(hash_value: int, deck: int, hand: int) -> tuple[int, ...]:
    """Shuffle sharding: ``hand`` distinct queue indices out of ``deck``, drawn from the
    digits of ``hash_value`` in the mixed radix deck, deck-1, ... (so two flows rarely
    share their whole hand)."""
    remaining = list(range(deck))
    picked: list[int] = []
    for size in range(deck, deck - hand, -1):
        hash_value, digit = divmod(hash_value, size)
        picked.append(remaining.pop(digit))
    return tuple(picked)


def flow_hash(flow_schema: str, distinguisher: str) -> int:
    digest = hashlib.sha256(f"{flow_schema}\0{distinguisher}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class Rejected(Exception):
    """A request flow control turned away: answered 429 with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rejected by flow control; retry after {retry_after}s")
        self.retry_after = retry_after


def too_many_requests_response(retry_after: int) -> web.Response:
    """The real filter's answer: ``http.Error`` plain text, not a ``Status``."""
    return web.Response(
        text=TOO_MANY_REQUESTS_TEXT,
        status=429,
        content_type="text/plain",
        charset="utf-8",
        headers={"Retry-After": str(retry_after), "X-Content-Type-Options": "nosniff"},
    )


class _DroppedRequests:
    """Retry-After for a level's rejections, adapted as the real server adapts it: it
    starts at 1 s, doubles (up to 32 s, at most once per Retry-After period) when at least
    three times Retry-After requests were dropped in the last Retry-After seconds, and
    shrinks by one second when fewer than Retry-After were."""

    __slots__ = ("bumped_at", "count", "history", "retry_after", "second")

    def __init__(self) -> None:
        self.retry_after = 1
        self.second = 0
        self.count = 0
        self.bumped_at = 0
        self.history: deque[tuple[int, int]] = deque()

    def record(self, now: int) -> int:
        if now == self.second:
            self.count += 1
            return self.retry_after
        if self.count:
            self.history.append((self.second, self.count))
        while self.history and now - self.history[0][0] > MAX_RETRY_AFTER:
            self.history.popleft()
        self.second, self.count = now, 1
        dropped = sum(n for at, n in self.history if now - at <= self.retry_after)
        if now - self.bumped_at >= self.retry_after and dropped >= 3 * self.retry_after:
            self.retry_after = min(2 * self.retry_after, MAX_RETRY_AFTER)
            self.bumped_at = now
        elif dropped < self.retry_after and self.retry_after > 1:
            self.retry_after -= 1
        return self.retry_after


class _Waiter:
    """A request waiting in a queue for its turn."""

    __slots__ = ("enqueued", "flow", "future", "seq", "watch")

    def __init__(
        self, future: asyncio.Future[bool], seq: int, enqueued: float, watch: bool, flow: str
    ) -> None:
        self.future = future
        self.seq = seq
        self.enqueued = enqueued
        self.watch = watch
        self.flow = flow


class PriorityLevel:
    """One priority level's queues, seats and counters."""

    def __init__(self, spec: PriorityLevelSpec, seats: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.uid = spec.uid
        self.exempt = spec.exempt
        self.seats = seats
        # a Reject level still orders the requests waiting for their turn: one queue
        count = 0 if spec.exempt else 1 if spec.reject else spec.queues
        self.queues: list[deque[_Waiter]] = [deque() for _ in range(count)]
        #: each queue's virtual start tag: requests it has been served, in virtual time
        self.tags = [0.0] * count
        self.vtime = 0.0
        #: (tag, sequence of the head, queue index), one entry per non-empty queue
        self.ready: list[tuple[float, int, int]] = []
        self.hands: dict[str, tuple[int, ...]] = {}
        self.executing = 0
        self.waiting = 0
        #: flow -> its requests waiting (a round admits all of a flow that waits alone)
        self.waiting_flows: dict[str, int] = {}
        self.turn_pending = False
        #: requests that went straight through this turn, and their flow if only one
        self.turn_count = 0
        self.turn_flow: str | None = None
        self.admitted = 0
        self.rounds = 0
        self.queued = 0
        self.rejected = 0
        self.timed_out = 0
        self.drops = _DroppedRequests()

    def hand(self, flow_schema: str, distinguisher: str) -> tuple[int, ...]:
        key = f"{flow_schema}\0{distinguisher}"
        hand = self.hands.get(key)
        if hand is None:
            if len(self.hands) >= 4096:
                self.hands.clear()
            hand = self.hands[key] = deal_hand(
                flow_hash(flow_schema, distinguisher), len(self.queues), self.spec.hand_size
            )
        return hand

    def flow_left(self, flow: str) -> None:
        """One request of ``flow`` left the queues (admitted, timed out or gone)."""
        left = self.waiting_flows[flow] - 1
        if left:
            self.waiting_flows[flow] = left
        else:
            del self.waiting_flows[flow]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uid": self.uid,
            "type": "Exempt" if self.exempt else "Limited",
            "seats": None if self.exempt else self.seats,
            "executing": self.executing,
            "waiting": self.waiting,
            "admitted": self.admitted,
            "queued": self.queued,
            "rounds": self.rounds,
            "rejected": self.rejected,
            "timedOut": self.timed_out,
            "retryAfter": self.drops.retry_after,
            "longestQueue": max((len(q) for q in self.queues), default=0),
        }


class Ticket:
    """A request's classification, and whether it holds one of its level's seats."""

    __slots__ = ("flow", "flow_schema_uid", "holding", "level", "priority_level_uid")

    def __init__(self, flow_schema: FlowSchema, level: PriorityLevel, flow: str) -> None:
        self.flow_schema_uid = flow_schema.uid
        self.priority_level_uid = level.uid
        self.level = level
        self.flow = flow
        self.holding = False


TICKET_KEY = web.RequestKey("sim_flow_ticket", Ticket)


@dataclass
class _Plan:
    """How one user's requests of one kind (resource or non-resource) are classified: by
    one FlowSchema whatever they ask (the usual case: computed once per user), or by the
    first of ``candidates`` whose rules match the request."""

    fixed: FlowSchema | None
    candidates: list[FlowSchema] = field(default_factory=list)


class FlowControl:
    """Classification, fair queuing and limits for one simulator (see the module doc)."""

    def __init__(
        self,
        flow_schemas: Iterable[Mapping[str, Any]] = DEFAULT_FLOW_SCHEMAS,
        priority_levels: Iterable[Mapping[str, Any]] = DEFAULT_PRIORITY_LEVELS,
        *,
        server_concurrency: int = DEFAULT_SERVER_CONCURRENCY,
        request_wait_limit: float = DEFAULT_REQUEST_WAIT_LIMIT,
        seats: Mapping[str, int] | None = None,
        max_round: int = 16,
    ) -> None:
        """``seats`` overrides the concurrency limit of named levels (tests use 1);
        ``max_round`` caps the requests one event-loop turn admits per level."""
        if max_round < 1:
            raise ValueError("max_round must be at least 1")
        self.max_round = max_round
        if server_concurrency < 1:
            raise ValueError("server_concurrency must be at least 1")
        level_objects = {o["metadata"]["name"]: o for o in priority_levels}
        schema_objects = {o["metadata"]["name"]: o for o in flow_schemas}
        # the mandatory objects exist whatever the configuration, as on a real server
        for name in _MANDATORY:
            level_objects.setdefault(
                name, next(o for o in DEFAULT_PRIORITY_LEVELS if o["metadata"]["name"] == name)
            )
            schema_objects.setdefault(
                name, next(o for o in DEFAULT_FLOW_SCHEMAS if o["metadata"]["name"] == name)
            )
        self.priority_level_objects = list(level_objects.values())
        self.flow_schema_objects = list(schema_objects.values())
        specs = [PriorityLevelSpec.from_api(o) for o in self.priority_level_objects]
        total = sum(s.shares for s in specs) or 1
        self.levels: dict[str, PriorityLevel] = {}
        for spec in specs:
            nominal = math.ceil(server_concurrency * spec.shares / total)
            if seats and spec.name in seats:
                nominal = seats[spec.name]
            self.levels[spec.name] = PriorityLevel(spec, max(nominal, 0))
        self.flow_schemas = sorted(
            (FlowSchema.from_api(o) for o in self.flow_schema_objects),
            key=lambda fs: (fs.precedence, fs.name),
        )
        for fs in self.flow_schemas:
            if fs.priority_level not in self.levels:
                raise ValueError(
                    f"FlowSchema {fs.name} names an unknown priority level {fs.priority_level!r}"
                )
        self.request_wait_limit = request_wait_limit
        self.paused = False
        self._catch_all = next(fs for fs in self.flow_schemas if fs.name == "catch-all")
        self._plans: dict[tuple[str, tuple[str, ...], bool], _Plan] = {}
        self._anonymous: dict[tuple[str, str], UserInfo] = {}
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observers: list[asyncio.Future[None]] = []

    # ---------------------------------------------------------------- classification
    def client_user(self, user_agent: str, address: str | None) -> UserInfo:
        """Who a request is, for flow control, when the server does not authenticate."""
        key = (address or "", user_agent)
        user = self._anonymous.get(key)
        if user is None:
            if len(self._anonymous) >= 4096:
                self._anonymous.clear()
            name = f"{address or 'unknown'} {user_agent}".strip()
            user = self._anonymous[key] = UserInfo(name=name, groups=(AUTHENTICATED,))
        return user

    def _plan(self, user: UserInfo, resource_request: bool) -> _Plan:
        key = (user.name, user.groups, resource_request)
        plan = self._plans.get(key)
        if plan is None:
            candidates: list[FlowSchema] = []
            fixed: FlowSchema | None = None
            for fs in self.flow_schemas:
                applying = [
                    r
                    for r in fs.rules
                    if r.applies_to(user)
                    and (r.resource_rules if resource_request else r.non_resource_rules)
                ]
                if not applying:
                    continue
                candidates.append(fs)
                if any(
                    rule.matches_all
                    for r in applying
                    for rule in (r.resource_rules if resource_request else r.non_resource_rules)
                ):
                    fixed = fs if len(candidates) == 1 else None
                    break
            plan = _Plan(fixed, candidates)
            if len(self._plans) >= 4096:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def classify(
        self, user: UserInfo, method: str, path: str, query: Mapping[str, str],
        attrs: Attributes | None = None,
    ) -> tuple[FlowSchema, PriorityLevel, str]:
        """The FlowSchema, level and flow distinguisher of ``method path?query`` by ``user``.

        The request's attributes are parsed from the URL only when the user's FlowSchemas
        depend on what is asked, or the flow is split by namespace.
        """
        plan = self._plan(user, _is_resource_path(path))
        fs = plan.fixed
        if fs is None:
            attrs = attrs or request_attributes(method, path, query)
            fs = next(
                (
                    c
                    for c in plan.candidates
                    if any(r.applies_to(user) and r.matches(attrs) for r in c.rules)
                ),
                None,
            )
            if fs is None:  # nothing matched: the mandatory catch-all, as on a real server
                fs = self._catch_all
        if fs.distinguisher == "ByUser":
            flow = user.name
        elif fs.distinguisher == "ByNamespace":
            flow = (attrs or request_attributes(method, path, query)).namespace
        else:
            flow = ""
        return fs, self.levels[fs.priority_level], flow

    # ---------------------------------------------------------------- admission
    async def admit(self, request: web.Request, user: UserInfo) -> None:
        """Let ``request`` run now, after a fair wait, or raise :class:`Rejected`.

        Sets ``request[TICKET_KEY]`` (the response headers are read from it); a request
        whose ticket holds a seat must be :meth:`release`\\ d when its handler ends.
        Long-running non-watch requests pass untouched.
        """
        method, path = request.method, request.path
        attrs: Attributes | None = None
        if _maybe_long_running(method, path, request.query):
            attrs = request_attributes(method, path, request.query)
            if attrs.subresource in LONG_RUNNING_SUBRESOURCES or attrs.verb == "proxy":
                return
            watch = attrs.verb == "watch" or (
                attrs.verb == "list" and _truthy(request.query.get("watch"))
            )
        else:
            watch = False

        fs, level, flow = self.classify(user, method, path, request.query, attrs)
        ticket = Ticket(fs, level, flow)
        request[TICKET_KEY] = ticket
        if level.exempt:
            level.admitted += 1
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if (
            not level.waiting
            and (level.turn_count < self.max_round or level.turn_flow == flow)
            and not self.paused
            and level.executing < level.seats
        ):
            # nothing queued and a light turn (or only this flow this turn): served in
            # arrival order, as the loop would; a busier turn queues the rest for a fair
            # round. Charged to the flow's least served queue all the same, so that
            # virtual time counts every request served.
            tags = level.tags
            index = min(level.hand(fs.name, flow), key=tags.__getitem__)
            start = tags[index] if tags[index] > level.vtime else level.vtime
            level.vtime = start
            tags[index] = start + 1.0
            level.admitted += 1
            if not level.turn_count:
                level.turn_flow = flow
                if not level.turn_pending:
                    level.turn_pending = True
                    loop.call_soon(self._turn, level)
            elif level.turn_flow != flow:
                level.turn_flow = None
            level.turn_count += 1
            if not watch:
                level.executing += 1
                ticket.holding = True
            return
        await self._enqueue(level, fs, flow, ticket, watch, loop)

    async def _enqueue(
        self,
        level: PriorityLevel,
        fs: FlowSchema,
        flow: str,
        ticket: Ticket,
        watch: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        no_seat = level.executing + level.waiting >= level.seats
        if level.spec.reject:
            if no_seat:
                self._reject(level)
            queue_index = 0
        else:
            hand = level.hand(fs.name, flow)
            queue_index = min(hand, key=lambda i: len(level.queues[i]))
            if no_seat and len(level.queues[queue_index]) >= level.spec.queue_length_limit:
                self._reject(level)
        self._seq += 1
        waiter = _Waiter(loop.create_future(), self._seq, time.monotonic(), watch, flow)
        queue = level.queues[queue_index]
        if not queue:
            tag = level.tags[queue_index] = max(level.tags[queue_index], level.vtime)
            heapq.heappush(level.ready, (tag, waiter.seq, queue_index))
        queue.append(waiter)
        level.waiting += 1
        level.queued += 1
        flows = level.waiting_flows
        flows[flow] = flows.get(flow, 0) + 1
        if not level.turn_pending and not self.paused:
            level.turn_pending = True
            loop.call_soon(self._turn, level)
        self._notify()
        try:
            admitted = await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.cancelled():  # gone while queued (the client left)
                level.waiting -= 1
                level.flow_left(flow)
            elif future.result() and not watch:  # admitted, then cancelled before running
                self._free_seat(level)
            self._notify()
            raise
        if not admitted:
            self._reject(level, timed_out=True)
        if not watch:
            ticket.holding = True

    def _reject(self, level: PriorityLevel, *, timed_out: bool = False) -> None:
        level.rejected += 1
        if timed_out:
            level.timed_out += 1
        retry_after = level.drops.record(int(time.monotonic()))
        self._notify()
        raise Rejected(retry_after)

    def _turn(self, level: PriorityLevel) -> None:
        """Admit one round of ``level``: the heads of its non-empty queues (at most
        ``max_round``), fairest first.

        Why a round and not one request: every turn of the loop costs a poll and a
        wake-up of its own, and one admission per turn made a saturated simulator a
        quarter slower; a round keeps the order fair (a queue served this round goes to
        the back of the next one) and a request that arrives meanwhile waits for the
        rest of one round at most.
        """
        level.turn_pending = False
        level.turn_flow = None
        level.turn_count = 0
        if self.paused or not level.waiting:
            return
        ready, queues, tags = level.ready, level.queues, level.tags
        deadline = time.monotonic() - self.request_wait_limit
        # one flow waiting alone has no one to be fair to: all of it goes (in queue order)
        budget = level.waiting if len(level.waiting_flows) == 1 else min(len(ready), self.max_round)
        level.rounds += 1
        while ready and level.executing < level.seats:
            tag, _seq, index = heapq.heappop(ready)
            queue = queues[index]
            waiter = queue.popleft()
            if queue:
                if waiter.future.done():  # a cancelled head is skipped without a charge
                    heapq.heappush(ready, (tag, queue[0].seq, index))
                    continue
                heapq.heappush(ready, (tag + 1.0, queue[0].seq, index))
            if waiter.future.done():
                continue
            level.waiting -= 1
            level.flow_left(waiter.flow)
            level.vtime = tag
            tags[index] = tag + 1.0
            if waiter.enqueued < deadline:
                waiter.future.set_result(False)
                continue
            if not waiter.watch:
                level.executing += 1
            level.admitted += 1
            waiter.future.set_result(True)
            budget -= 1
            if not budget:
                break
        if level.waiting and not level.turn_pending and level.executing < level.seats:
            level.turn_pending = True
            (self._loop or asyncio.get_running_loop()).call_soon(self._turn, level)
        self._notify()

    def release(self, ticket: Ticket) -> None:
        """The request's handler has ended: its seat goes to the next in line."""
        if ticket.holding:
            ticket.holding = False
            self._free_seat(ticket.level)

    def _free_seat(self, level: PriorityLevel) -> None:
        level.executing -= 1
        if level.waiting and not level.turn_pending and not self.paused:
            level.turn_pending = True
            (self._loop or asyncio.get_running_loop()).call_soon(self._turn, level)
        if self._observers:
            self._notify()

    # ---------------------------------------------------------------- tests and tools
    @contextmanager
    def hold(self) -> Iterator[None]:
        """Admit nothing (but exempt requests) inside the block: requests queue, or are
        rejected where their queue is full; on exit the queues drain in fair order. For
        tests that need a deterministic backlog."""
        self.paused = True
        try:
            yield
        finally:
            self.paused = False
            for level in self.levels.values():
                if level.waiting and not level.turn_pending and self._loop is not None:
                    level.turn_pending = True
                    self._loop.call_soon(self._turn, level)

    def waiting(self, level: str | None = None) -> int:
        """Requests queued (in ``level``, or in all levels)."""
        if level is not None:
            return self.levels[level].waiting
        return sum(lv.waiting for lv in self.levels.values())

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; it is checked whenever a request is queued,
        admitted, rejected or released (an event to wait on, never a poll)."""
        while not predicate():
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._observers.append(future)
            await future

    def _notify(self) -> None:
        if self._observers:
            observers, self._observers = self._observers, []
            for future in observers:
                if not future.done():
                    future.set_result(None)

    def describe(self) -> dict[str, Any]:
        """The configuration and live counters (``GET /_sim/flowcontrol``)."""
        return {
            "priorityLevels": [lv.describe() for lv in self.levels.values()],
            "flowSchemas": [
                {
                    "name": fs.name,
                    "uid": fs.uid,
                    "priorityLevel": fs.priority_level,
                    "matchingPrecedence": fs.precedence,
                    "distinguisherMethod": fs.distinguisher,
                }
                for fs in self.flow_schemas
            ],
            "paused": self.paused,
        }


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _is_resource_path(path: str) -> bool:
    """Whether the real RequestInfoFactory reads ``path`` as a resource request (not
    discovery, ``/version``, ``/healthz``...)."""
    if path.startswith("/api/"):
        return len([p for p in path.split("/", 4) if p]) >= 3
    if path.startswith("/apis/"):
        return len([p for p in path.split("/", 5) if p]) >= 4
    return False


def _maybe_long_running(method: str, path: str, query: Mapping[str, str]) -> bool:
    """A cheap pre-check: could this be a watch or a long-running subresource? (Exact
    answer from the request's attributes, computed only then.)"""
    if method in ("GET", "HEAD") and ("/watch/" in path or "watch" in query):
        return True
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return tail in LONG_RUNNING_SUBRESOURCES or "/proxy/" in path


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the classification headers, as the real filter sets them
    (UIDs, never names, so a rejected client does not learn how it was ranked)."""
    ticket = request.get(TICKET_KEY)
    if ticket is not None:
        headers = response.headers
        headers[PRIORITY_LEVEL_UID_HEADER] = ticket.priority_level_uid
        headers[FLOW_SCHEMA_UID_HEADER] = ticket.flow_schema_uid
