"""What the spawn-progress page shows while a pod starts."""

from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable


class EventsTraits(LoggingConfigurable):
    events_enabled = Bool(
        True,
        config=True,
        help="""Watch Kubernetes Events and show those about the user's pod (scheduling,
        image pulls, failures) on the spawn-progress page. Turning this off saves one
        watch per namespace but leaves users looking at a bare progress bar.""",
    )
    slow_spawn_message_threshold = Integer(
        60,
        config=True,
        help="""Seconds into a spawn after which reassuring messages (slow_spawn_message)
        start to appear on the progress page. 0 disables them.""",
    )
    slow_spawn_message_frequency = Integer(
        5,
        config=True,
        help="Minimum seconds between two slow_spawn_message messages.",
    )
    slow_spawn_message = Unicode(
        "Server launch is taking longer than expected. Please be patient! "
        "Current time spent waiting: {seconds} seconds.",
        config=True,
        help="""Text shown when a spawn is slow; {seconds} is the time spent so far.""",
    )
    events_per_object_limit = Integer(
        100,
        config=True,
        help="Kubernetes events kept per pod or PVC for progress and diagnosis.",
    )
    events_total_limit = Integer(
        20000,
        config=True,
        help="Kubernetes events kept in total by the hub (oldest dropped first).",
    )
