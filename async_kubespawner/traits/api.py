"""How the spawner reaches the Kubernetes API."""

from typing import Any

from traitlets import Bool, Integer, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable


class ApiTraits(LoggingConfigurable):
    k8s_api_host = Unicode(
        "",
        config=True,
        help="""URL of the Kubernetes API server, overriding the one found in the
        in-cluster service account or the kubeconfig (for a hub running outside the
        cluster it talks to).""",
    )
    k8s_api_ssl_ca_cert = Unicode(
        "",
        config=True,
        help="Path of a CA bundle to verify the API server's certificate with.",
    )
    k8s_api_verify_ssl = Bool(
        None,
        allow_none=True,
        config=True,
        help="""Force TLS verification of the API server on (True) or off (False).
        None keeps what the in-cluster config or kubeconfig says.""",
    )
    k8s_api_request_timeout = Integer(
        3,
        config=True,
        help="""Seconds one API request (create/delete of a pod, PVC, Secret, Service or
        Namespace, and the reads that check an object is gone) may take before it is
        abandoned and, where allowed, retried. Only time in which the hub's event loop
        was free to read the answer counts: an answer that arrived while the hub itself
        was stalled is read, not discarded, and a server that never answers is abandoned
        after at most twice this many seconds of responsive hub time.""",
    )
    k8s_api_request_retry_timeout = Integer(
        30,
        config=True,
        help="""Seconds in total that retries of one operation (creating or deleting the
        pod or PVC, checking that a PVC exists) may take before the spawn or stop fails.""",
    )
    k8s_api_max_concurrent_requests = Integer(
        100,
        config=True,
        help="""Most API requests (not watches) the hub has in flight at once, per API
        client. Further requests wait for a slot before their k8s_api_request_timeout
        starts, so a spawn storm queues in the hub instead of timing out, retrying and
        meeting its own 409s. Raise it for an API server that handles more concurrent
        requests; lower it to protect a small one. (async_kubespawner only; upstream has
        no equivalent.)""",
    )

    freeze_startup_heap = Bool(
        True,
        config=True,
        help="""Before the first Kubernetes API client of the hub process is made, move
        every object that exists (the hub's imported modules, configuration and spawners)
        into the garbage collector's permanent generation with gc.freeze(), so a spawn
        storm's full collections no longer walk them: in the 1,000-spawn benchmark the
        longest collection went from ~140 ms to ~44 ms of stalled event loop. A
        process-wide policy; set False if something else in the hub manages gc.freeze().
        (async_kubespawner only; upstream has no equivalent.)""",
    )

    gc_young_threshold = Integer(
        None,
        allow_none=True,
        config=True,
        help="""When set, the garbage collector's youngest-generation threshold (CPython's
        default: 700 allocations), applied once per hub process when the first spawner
        first talks to Kubernetes. A burst of spawns or stops keeps thousands of objects
        in flight; at 700 most are promoted and then walked by a full collection that
        holds the event loop. In the 1,000-spawn benchmark 10000 cut the collector's
        time in the starts from 830 to 70 ms and the longest single loop step from 385
        to 18 ms (50000 is too much: each young collection then takes ~100 ms). A
        process-wide setting, off by default; when set, it stays set all the time and
        replaces the burst-aware policy (gc_burst_policy). (async_kubespawner only;
        upstream has no equivalent.)""",
    )

    gc_burst_policy = Bool(
        True,
        config=True,
        help="""While a spawn or stop is in flight in this hub process, set the garbage
        collector's thresholds from CPython's (700, 10, 10) to (700, 1000000, 100) and
        run a young collection at least every 10 ms: only young collections, each
        walking what was allocated since the last one, while the objects of the spawns
        in flight are alive, instead of middle and full collections that walk all of
        them and hold the event loop; the ordinary thresholds come back 2 s after the
        last spawn or stop ended, with the one full collection the burst held back
        (cyclic garbage is reclaimed then), and for one full collection after every 120 s
        of continuous bursts. Survivors of each full collection are frozen (gc.freeze)
        so the next walks only newer objects; a whole-heap sweep reclaims cyclic garbage
        among them at a quiet moment every 10 minutes. In the 1,000-spawn benchmark the
        longest loop step's own CPU time went from 14-17 to 3.5 ms in the starts
        (docs/performance.md). Stays off when gc_young_threshold is set, when the
        thresholds were not CPython's defaults at the first spawn (the operator chose
        them) or when the collector is disabled, and steps aside if anything else changes
        the thresholds; set False to leave the collector alone. (async_kubespawner only;
        upstream has no equivalent.)""",
    )

    @validate("k8s_api_max_concurrent_requests")
    def _validate_max_concurrent_requests(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise TraitError(
                f"k8s_api_max_concurrent_requests must be at least 1, got {value}: it is "
                "how many API requests may be in flight at once"
            )
        return value
