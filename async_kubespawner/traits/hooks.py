"""Functions a hub operator plugs into the spawn."""

from jupyterhub.traitlets import Callable
from traitlets.config import LoggingConfigurable


class HooksTraits(LoggingConfigurable):
    modify_pod_hook = Callable(
        None,
        allow_none=True,
        config=True,
        help="""Called as ``hook(spawner, pod)`` with the V1Pod just before it is
        created; returns the pod to create (usually the same one, mutated). May be a
        coroutine function.""",
    )
    after_pod_created_hook = Callable(
        None,
        allow_none=True,
        config=True,
        help="""Called as ``hook(spawner, pod)`` with the created pod as a dict (it has a
        uid then, so it can own other objects you create). May be a coroutine function.""",
    )
    get_pod_url = Callable(
        None,
        allow_none=True,
        config=True,
        help="""Called as ``get_pod_url(spawner, pod)`` with the running pod as a dict;
        returns the URL the hub and proxy use to reach the server, instead of the pod IP
        (or dns_name with services_enabled or internal_ssl). Must be synchronous.""",
    )
