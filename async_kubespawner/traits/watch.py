"""How the hub watches pods and events: the shared reflectors and their caches.

Every "is it ready / gone / still running?" question is answered from caches that one
list+watch per namespace (or cluster-wide) keeps current; these settings shape those
watches. Beyond upstream.
"""

from traitlets import Bool, Float, Integer
from traitlets.config import LoggingConfigurable


class WatchTraits(LoggingConfigurable):
    first_list_timeout = Float(
        10,
        config=True,
        help="""Seconds poll() waits for the pod reflector's first list. Until then the
        cache cannot say that a pod is gone, so poll() answers None (running) rather than
        risk declaring a running server stopped.""",
    )
    reflector_cluster_wide = Bool(
        None,
        allow_none=True,
        config=True,
        help="""Watch pods and events in all namespaces with one reflector (needs list/watch
        rights cluster-wide). None: cluster-wide when enable_user_namespaces is on. Set False
        for hubs that may only list in their users' namespaces: one reflector per
        namespace, shared by that namespace's servers.""",
    )
    reflector_watch_timeout = Integer(
        300,
        config=True,
        help="""Seconds each watch is held before it is renewed from the last
        resourceVersion (no relist). Idle hubs send no other requests.""",
    )
    reflector_idle_timeout = Float(
        None,
        allow_none=True,
        config=True,
        help="""Seconds without any data (event or bookmark) after which a watch is presumed
        dead and reopened. None: rely on reflector_watch_timeout. Like
        k8s_api_request_timeout, it counts only time in which the hub's event loop was
        responsive.""",
    )
    reflector_backoff_max = Float(
        30,
        config=True,
        help="Longest pause (seconds, jittered) between reflector attempts during an outage.",
    )
    reflector_release_delay = Float(
        30,
        config=True,
        help="""With enable_user_namespaces and per-namespace reflectors
        (reflector_cluster_wide False): seconds a namespace's reflectors (its pod and event
        watches) keep running after its last active server stopped. Then they are stopped,
        with their metric series, and started again by the namespace's next server.""",
    )
    reflector_stale_after = Float(
        5,
        config=True,
        help="""Seconds the pod reflector may be cut off from the API server (an outage, a
        partition) before poll() stops trusting its cache and reads the pod with one direct
        GET instead. While the reflector is connected, poll() never calls the API.""",
    )
    reflector_list_page_size = Integer(
        200,
        config=True,
        help="Objects per list page, bounding each JSON parse on the hub's event loop.",
    )
