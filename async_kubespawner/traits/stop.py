"""How a server is stopped."""

from traitlets import Bool, Integer
from traitlets.config import LoggingConfigurable


class StopTraits(LoggingConfigurable):
    stop_timeout = Integer(
        60,
        config=True,
        help="""Seconds stop() waits for the pod to disappear after deleting it.

        Upstream KubeSpawner reuses start_timeout; a slow image pull and a slow shutdown
        are different things, so they get separate limits here.""",
    )
    delete_grace_period = Integer(
        1,
        config=True,
        help="""Seconds the pod gets to shut down after SIGTERM on a normal stop (an
        immediate stop uses 0). It replaces the pod's own terminationGracePeriodSeconds:
        raise it if the notebook needs time to save state.""",
    )
    delete_stopped_pods = Bool(
        True,
        config=True,
        help="""Delete the pod once the notebook container has exited, so a stopped
        server does not keep its node resources. Turn off to keep failed pods around for
        inspection.""",
    )
