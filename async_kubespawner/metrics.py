"""Prometheus metrics of the spawner, its API traffic and its reflectors.

They live in prometheus_client's default ``REGISTRY`` because that is the registry
JupyterHub serves on ``/hub/metrics``: an operator scraping the hub gets these next to
JupyterHub's own ``jupyterhub_*`` series without any wiring. Every name starts with
``kubespawner_`` so dashboards can tell them apart.

Labels are deliberately low-cardinality (outcome, verb, kind, reflector name): never a
user or pod name, which would grow one series per user.
"""

from prometheus_client import Counter, Gauge, Histogram

_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf"))
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))

SPAWN_DURATION = Histogram(
    "kubespawner_spawn_duration_seconds",
    "Time from start() being called to it returning or failing, by outcome "
    "(success, failure, timeout, cancelled).",
    ["outcome"],
    buckets=_DURATION_BUCKETS,
)
STOP_DURATION = Histogram(
    "kubespawner_stop_duration_seconds",
    "Time from stop() being called to the pod being gone, by outcome (success, failure, timeout).",
    ["outcome"],
    buckets=_DURATION_BUCKETS,
)
API_REQUEST_DURATION = Histogram(
    "kubespawner_api_request_duration_seconds",
    "Latency of single Kubernetes API requests (one HTTP round trip, not the retries), "
    "by verb (create, get, list, delete, patch, watch) and kind (pods, events, ...).",
    ["verb", "kind"],
    buckets=_REQUEST_BUCKETS,
)
API_REQUEST_ERRORS = Counter(
    "kubespawner_api_request_errors_total",
    "Kubernetes API requests that failed, by verb, kind and status "
    "(the HTTP code, 'timeout' or 'connection').",
    ["verb", "kind", "status"],
)
REFLECTOR_RESTARTS = Counter(
    "kubespawner_reflector_restarts_total",
    "Times a reflector had to start a new list or watch after an error or a 410 Gone "
    "(routine watch renewals are not counted).",
    ["reflector"],
)
REFLECTOR_WATCH_AGE = Gauge(
    "kubespawner_reflector_last_event_age_seconds",
    "Seconds since the reflector last received anything from the API server "
    "(an event or a bookmark); a steadily growing value means the watch is stuck.",
    ["reflector"],
)
CACHE_SIZE = Gauge(
    "kubespawner_cache_objects",
    "Objects held in a reflector's in-memory cache.",
    ["reflector"],
)
OWED_DELETIONS = Gauge(
    "kubespawner_owed_deletions",
    "Pods a stop() could not delete (API server unreachable) that the background "
    "reconciler is still retrying; above 0 for long means the hub cannot reach the API.",
)
OWED_DELETIONS_SETTLED = Counter(
    "kubespawner_owed_deletions_settled_total",
    "Owed pod deletions the background reconciler completed.",
)
ORPHANED_PODS_DELETED = Counter(
    "kubespawner_orphaned_pods_deleted_total",
    "Pods of this hub found running for servers its database records as stopped, and "
    "deleted by the orphan sweep.",
)
