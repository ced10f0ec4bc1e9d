"""The pod and its notebook container: image, command, scheduling, sidecars."""

import warnings

import kubernetes_asyncio.client as k8s
from jupyterhub.traitlets import Command
from traitlets import Dict, List, Unicode, Union, validate
from traitlets.config import LoggingConfigurable

from ..objects.manifests import ManifestError, to_model
from .errors import SpawnerConfigError
from .validation import (
    CONTENT_FIELDS,
    check_model_fields,
    check_models,
    check_string_map,
    check_template,
    check_templates_in,
    check_tolerations,
)

IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")

_AFFINITY_MODELS = {
    "node_affinity_preferred": (k8s.V1PreferredSchedulingTerm, "PreferredSchedulingTerm"),
    "node_affinity_required": (k8s.V1NodeSelectorTerm, "NodeSelectorTerm"),
    "pod_affinity_preferred": (k8s.V1WeightedPodAffinityTerm, "WeightedPodAffinityTerm"),
    "pod_affinity_required": (k8s.V1PodAffinityTerm, "PodAffinityTerm"),
    "pod_anti_affinity_preferred": (k8s.V1WeightedPodAffinityTerm, "WeightedPodAffinityTerm"),
    "pod_anti_affinity_required": (k8s.V1PodAffinityTerm, "PodAffinityTerm"),
}


def _list_or_dict(help_text: str) -> Union:
    return Union([List(), Dict()], default_value=[], config=True, help=help_text)


class PodTraits(LoggingConfigurable):
    image = Unicode(
        "quay.io/jupyterhub/singleuser:latest",
        config=True,
        help="""Image of the notebook container, with registry and tag (not templated).
        It must start a JupyterHub single-user server (jupyterhub-singleuser).""",
    )
    image_pull_policy = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""imagePullPolicy of the notebook container: Always, IfNotPresent or Never.
        None leaves it to Kubernetes (Always for ':latest', else IfNotPresent).""",
    )
    image_pull_secrets = Union(
        [List(), Unicode()],
        default_value=[],
        config=True,
        help="""Secrets with registry credentials for pulling the image: a list of secret
        names or of {"name": ...} dicts. A single string is deprecated.""",
    )
    cmd = Command(
        None,
        allow_none=True,
        minlen=1,
        config=True,
        help="""Command of the notebook container (as container args, so the image's
        ENTRYPOINT such as tini still runs). None uses the image's CMD, and then
        Spawner.args cannot be applied.""",
    )
    working_dir = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Working directory of the notebook container. Templated.",
    )
    node_selector = Dict(
        config=True,
        help="""nodeSelector of the pod: node labels a node must have to run it, e.g.
        {"disktype": "ssd"}.""",
    )
    tolerations = _list_or_dict(
        """Tolerations of the pod, e.g. [{"key": "gpu", "operator": "Exists",
        "effect": "NoSchedule"}]. A dict's values are used in key order."""
    )
    node_affinity_preferred = _list_or_dict(
        "PreferredSchedulingTerms for the pod's node affinity (soft)."
    )
    node_affinity_required = _list_or_dict(
        "NodeSelectorTerms for the pod's node affinity (hard: any one must match)."
    )
    pod_affinity_preferred = _list_or_dict(
        "WeightedPodAffinityTerms: prefer nodes running pods that match."
    )
    pod_affinity_required = _list_or_dict("PodAffinityTerms: only nodes running pods that match.")
    pod_anti_affinity_preferred = _list_or_dict(
        "WeightedPodAffinityTerms: prefer nodes not running pods that match."
    )
    pod_anti_affinity_required = _list_or_dict(
        "PodAffinityTerms: only nodes not running pods that match."
    )
    scheduler_name = Unicode(
        None,
        allow_none=True,
        config=True,
        help="schedulerName of the pod, to use a scheduler other than the default one.",
    )
    priority_class_name = Unicode(
        "",
        config=True,
        help="""priorityClassName of the pod, e.g. to let user pods preempt placeholder
        pods. Empty for none.""",
    )
    lifecycle_hooks = Dict(
        config=True,
        help="""postStart / preStop handlers of the notebook container, as a Kubernetes
        Lifecycle: {"postStart": {"exec": {"command": [...]}}}.""",
    )
    init_containers = _list_or_dict(
        """Init containers of the pod, run to completion before the notebook starts.
        Templated."""
    )
    extra_containers = _list_or_dict(
        "Sidecar containers next to the notebook container. Templated."
    )
    extra_container_config = Dict(
        config=True,
        help="""Fields set on the notebook container after everything else, overriding
        what the other settings produced. Keys in camelCase or snake_case.""",
    )
    extra_pod_config = Dict(
        config=True,
        help="""Fields set on the pod spec after everything else, overriding what the
        other settings produced. Keys in camelCase or snake_case. Templated.""",
    )

    @validate("image_pull_policy")
    def _check_image_pull_policy(self, proposal):
        if proposal.value is not None and proposal.value not in IMAGE_PULL_POLICIES:
            raise SpawnerConfigError(
                "image_pull_policy",
                proposal.value,
                "it is not an image pull policy",
                "Use one of Always, IfNotPresent, Never, or None for the cluster's default.",
            )
        return proposal.value

    @validate("image_pull_secrets")
    def _check_image_pull_secrets(self, proposal):
        value = proposal.value
        if isinstance(value, str):
            warnings.warn(
                "Giving KubeSpawner.image_pull_secrets as a string is deprecated since 0.14: "
                f"use a list, image_pull_secrets = [{{'name': {value!r}}}]",
                DeprecationWarning,
                stacklevel=2,
            )
            # Read back as upstream does: one {"name": ...} reference.
            value = [{"name": value}] if value else []
        for index, item in enumerate(value):
            if isinstance(item, str):
                continue
            try:
                to_model(k8s.V1LocalObjectReference, item, f"image_pull_secrets[{index}]")
            except ManifestError as exc:
                raise SpawnerConfigError(
                    "image_pull_secrets",
                    proposal.value,
                    str(exc),
                    'Give secret names, or {"name": "<secret>"} dicts.',
                ) from None
        return value

    @validate("working_dir")
    def _check_working_dir(self, proposal):
        if proposal.value is not None:
            check_template("working_dir", proposal.value, CONTENT_FIELDS)
        return proposal.value

    @validate("node_selector")
    def _check_node_selector(self, proposal):
        check_string_map("node_selector", proposal.value)
        return proposal.value

    @validate("tolerations")
    def _check_tolerations(self, proposal):
        check_models("tolerations", proposal.value, k8s.V1Toleration, "Toleration")
        check_tolerations("tolerations", proposal.value)
        return proposal.value

    @validate(*_AFFINITY_MODELS)
    def _check_affinity(self, proposal):
        model, what = _AFFINITY_MODELS[proposal.trait.name]
        check_models(proposal.trait.name, proposal.value, model, what)
        return proposal.value

    @validate("lifecycle_hooks")
    def _check_lifecycle_hooks(self, proposal):
        check_model_fields("lifecycle_hooks", proposal.value, k8s.V1Lifecycle, "Lifecycle")
        return proposal.value

    @validate("init_containers", "extra_containers")
    def _check_containers(self, proposal):
        name = proposal.trait.name
        check_models(name, proposal.value, k8s.V1Container, "Container")
        check_templates_in(name, proposal.value, CONTENT_FIELDS)
        return proposal.value

    @validate("extra_container_config")
    def _check_extra_container_config(self, proposal):
        check_model_fields("extra_container_config", proposal.value, k8s.V1Container, "Container")
        return proposal.value

    @validate("extra_pod_config")
    def _check_extra_pod_config(self, proposal):
        check_model_fields("extra_pod_config", proposal.value, k8s.V1PodSpec, "PodSpec")
        check_templates_in("extra_pod_config", proposal.value, CONTENT_FIELDS)
        return proposal.value
