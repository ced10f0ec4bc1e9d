"""Prometheus metrics of the operator (served on its health port at ``/metrics``).

Names start with ``kubespawner_operator_``; labels are low-cardinality (outcome, kind),
never a user or server name.
"""

from prometheus_client import Counter, Gauge, Histogram

RECONCILE_DURATION = Histogram(
    "kubespawner_operator_reconcile_duration_seconds",
    "Time of one reconcile pass of a NotebookServer, by outcome (ok, requeue, error).",
    ["outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf")),
)
RECONCILES = Counter(
    "kubespawner_operator_reconciles_total",
    "Reconcile passes, by outcome (ok, requeue, error).",
    ["outcome"],
)
QUEUE_DEPTH = Gauge(
    "kubespawner_operator_queue_depth", "NotebookServers waiting for a reconcile pass."
)
CHILDREN = Gauge(
    "kubespawner_operator_children", "Objects the operator owns, by kind.", ["kind"]
)
LEADER = Gauge(
    "kubespawner_operator_leader", "1 while this replica holds the leader Lease, else 0."
)
SERVERS_BY_PHASE = Gauge(
    "kubespawner_operator_servers", "NotebookServers in this replica's cache, by phase.", ["phase"]
)
