"""When a starting server is given up on: the tolerances of the fail-fast verdicts.

``start()`` ends as soon as the API reports a failure that will not heal by itself
(:mod:`async_kubespawner.lifecycle.readiness`); these say how long a failure that
might heal is waited out first. Beyond upstream, which waits for ``start_timeout``.
"""

from typing import Any

from traitlets import Float, validate
from traitlets.config import LoggingConfigurable

from .errors import SpawnerConfigError


class ReadinessTraits(LoggingConfigurable):
    image_pull_error_tolerance = Float(
        0,
        config=True,
        help="""Seconds an image pull error (ErrImagePull, ImagePullBackOff) may persist
        before start() fails. 0 fails at the first report: an image that cannot be pulled
        rarely heals, and the user should not wait for start_timeout to learn it. Raise it
        for registries with transient outages.""",
    )
    config_error_tolerance = Float(
        10,
        config=True,
        help="""Seconds a CreateContainerConfigError (a Secret, ConfigMap or key the pod
        needs is missing) may persist before start() fails. It is normal for the instant
        between the pod and its Secret being created (api_token_in_secret, internal_ssl),
        and the kubelet retries on its own; if it lasts, the missing object is not coming.
        Raise it when another controller creates objects the pod needs.""",
    )
    unschedulable_tolerance = Float(
        30,
        config=True,
        help="""Seconds a pod may stay unschedulable (FailedScheduling) before start() fails.
        While a cluster autoscaler reports a scale-up for the pod, start() keeps waiting up
        to start_timeout instead.""",
    )

    @validate("image_pull_error_tolerance", "config_error_tolerance", "unschedulable_tolerance")
    def _check_tolerance(self, proposal: Any) -> Any:
        value = proposal.value
        if value < 0:
            raise SpawnerConfigError(
                proposal.trait.name,
                value,
                "a tolerance cannot be negative",
                "Use 0 to fail at the first report, or a number of seconds to wait.",
            )
        return value
