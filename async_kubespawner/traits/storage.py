"""The user's PersistentVolumeClaim and the pod's volumes."""

import kubernetes_asyncio.client as k8s
from traitlets import Bool, Dict, List, Unicode, Union, validate
from traitlets.config import LoggingConfigurable

from .errors import SpawnerConfigError
from .validation import (
    CONTENT_FIELDS,
    USER_FIELDS,
    check_models,
    check_quantity,
    check_template,
    check_templates_in,
    check_volumes,
    metadata_validator,
)

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


class StorageTraits(LoggingConfigurable):
    storage_pvc_ensure = Bool(
        False,
        config=True,
        help="""Create the user's PVC (pvc_name_template) before the pod if it does not
        exist yet. Mount it yourself with volumes and volume_mounts ({pvc_name}).""",
    )
    storage_capacity = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Size the PVC requests (requests.storage), a quantity such as '10Gi'.",
    )
    storage_class = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""StorageClass of the PVC (storageClassName, and the legacy beta annotation).
        None uses the cluster's default class; '' asks for no class at all.""",
    )
    storage_access_modes = List(
        ["ReadWriteOnce"],
        config=True,
        help="Access modes of the PVC.",
    )
    storage_selector = Dict(
        config=True,
        help="""Label selector of the PVC, to bind it to a matching pre-made volume.
        Templated.""",
    )
    storage_extra_labels = Dict(
        config=True,
        help="Extra labels on the PVC. Values are templated.",
    )
    storage_extra_annotations = Dict(
        config=True,
        help="Extra annotations on the PVC. Values are templated.",
    )
    pvc_name_template = Unicode(
        "claim-{user_server}",
        config=True,
        help="Name of the user's PVC. Templated.",
    )
    remember_pvc_name = Bool(
        True,
        config=True,
        help="""Once the PVC exists, keep its name in the server's state, so a later change
        of pvc_name_template or slug_scheme does not detach the user's data.""",
    )
    delete_pvc = Bool(
        True,
        config=True,
        help="""Delete the PVC when the user (or the named server) is deleted from the
        hub. Stopping a server never deletes it.""",
    )
    volumes = Union(
        [List(), Dict()],
        default_value=[],
        config=True,
        help="""Volumes of the pod, as Kubernetes Volumes (e.g. a persistentVolumeClaim
        with claimName '{pvc_name}'). A dict's values are used in key order. Templated.""",
    )
    volume_mounts = Union(
        [List(), Dict()],
        default_value=[],
        config=True,
        help="""volumeMounts of the notebook container. A dict's values are used in key
        order. Templated.""",
    )

    @validate("storage_capacity")
    def _check_storage_capacity(self, proposal):
        if proposal.value is not None:
            check_quantity("storage_capacity", proposal.value)
        return proposal.value

    @validate("storage_access_modes")
    def _check_access_modes(self, proposal):
        for mode in proposal.value:
            if mode not in ACCESS_MODES:
                raise SpawnerConfigError(
                    "storage_access_modes",
                    proposal.value,
                    f"{mode!r} is not an access mode",
                    "Use " + ", ".join(ACCESS_MODES) + ".",
                )
        return proposal.value

    @validate("storage_selector")
    def _check_storage_selector(self, proposal):
        check_models("storage_selector", [proposal.value], k8s.V1LabelSelector, "LabelSelector")
        check_templates_in("storage_selector", proposal.value, CONTENT_FIELDS)
        return proposal.value

    _check_storage_metadata = metadata_validator(
        "storage_extra_labels", "storage_extra_annotations", CONTENT_FIELDS
    )

    @validate("pvc_name_template")
    def _check_pvc_name_template(self, proposal):
        check_template("pvc_name_template", proposal.value, USER_FIELDS | {"namespace", "pod_name"})
        return proposal.value

    @validate("volumes")
    def _check_volumes(self, proposal):
        check_models("volumes", proposal.value, k8s.V1Volume, "Volume")
        check_volumes("volumes", proposal.value)
        check_templates_in("volumes", proposal.value, CONTENT_FIELDS)
        return proposal.value

    @validate("volume_mounts")
    def _check_volume_mounts(self, proposal):
        check_models("volume_mounts", proposal.value, k8s.V1VolumeMount, "VolumeMount")
        check_templates_in("volume_mounts", proposal.value, CONTENT_FIELDS)
        return proposal.value
