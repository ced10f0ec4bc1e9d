"""CPU, memory and other resources of the notebook container."""

from jupyterhub.traitlets import ByteSpecification
from traitlets import Dict, TraitError, validate
from traitlets.config import LoggingConfigurable

from .errors import SpawnerConfigError
from .validation import check_quantities


class MemorySetting(ByteSpecification):
    """The base Spawner's memory trait, with an error naming the setting and the fix."""

    def validate(self, obj, value):
        try:
            return super().validate(obj, value)
        except (TraitError, TypeError, IndexError):
            raise SpawnerConfigError(
                self.name,
                value,
                "it is not a memory size",
                "Give a number of bytes or a number with suffix K, M, G or T, e.g. '2G'.",
            ) from None


class ResourceTraits(LoggingConfigurable):
    mem_limit = MemorySetting(
        None,
        config=True,
        help="""Memory limit of the notebook container (bytes, or with suffix K, M, G,
        T), its limits.memory: the container is killed above it.""",
    )
    mem_guarantee = MemorySetting(
        None,
        config=True,
        help="""Memory the notebook container is guaranteed (requests.memory): the
        scheduler only places the pod where this much is free.""",
    )
    extra_resource_guarantees = Dict(
        config=True,
        help="""Extra requests of the notebook container, e.g. {"nvidia.com/gpu": "1"}.
        Values are Kubernetes quantities.""",
    )
    extra_resource_limits = Dict(
        config=True,
        help="""Extra limits of the notebook container, e.g. {"nvidia.com/gpu": "1"}.
        Values are Kubernetes quantities.""",
    )

    @validate("extra_resource_guarantees", "extra_resource_limits")
    def _check_extra_resources(self, proposal):
        check_quantities(proposal.trait.name, proposal.value)
        return proposal.value
