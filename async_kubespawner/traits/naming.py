"""How objects are named and labelled."""

from traitlets import Bool, Dict, Enum, Unicode, validate
from traitlets.config import LoggingConfigurable

from ..objects.slugs import SLUG_SCHEMES, is_valid_label
from .errors import SpawnerConfigError
from .validation import (
    CONTENT_FIELDS,
    USER_FIELDS,
    check_label_keys,
    check_string_map,
    check_template,
    metadata_validator,
)

DEFAULT_COMMON_LABELS = {
    "app.kubernetes.io/name": "jupyterhub",
    "app.kubernetes.io/managed-by": "kubespawner",
    "app": "jupyterhub",
    "heritage": "jupyterhub",
}


class NamingTraits(LoggingConfigurable):
    slug_scheme = Enum(
        list(SLUG_SCHEMES),
        default_value="safe",
        config=True,
        help="""How user and server names become parts of object names. 'safe' keeps a
        name that is already valid and otherwise makes a readable stem plus a hash;
        'escape' is the scheme used before KubeSpawner 7 (escapism with '-'). Switching
        an existing hub to 'safe' is supported: state remembers the old names.""",
    )
    pod_name_template = Unicode(
        "jupyter-{user_server}",
        config=True,
        help="Name of a user's pod, and of its Service with services_enabled. Templated.",
    )
    dns_name_template = Unicode(
        "{name}.{namespace}.svc.cluster.local",
        config=True,
        help="""Host name of a user's server, used in its URL when internal_ssl or
        services_enabled is on and in its certificate's alt names. {name} is the pod
        name, {namespace} the namespace.""",
    )
    component_label = Unicode(
        "singleuser-server",
        config=True,
        help="""Value of the 'component' and 'app.kubernetes.io/component' labels on the
        user pods. The pod watch selects on component=<this>, so hubs sharing a
        namespace must use different values.""",
    )
    common_labels = Dict(
        DEFAULT_COMMON_LABELS,
        config=True,
        help="Labels put on every pod, PVC, Service and Secret the spawner creates.",
    )
    extra_labels = Dict(
        config=True,
        help="Extra labels on user pods, Services and Secrets. Values are templated.",
    )
    extra_annotations = Dict(
        config=True,
        help="Extra annotations on user pods, Services and Secrets. Values are templated.",
    )
    handle_legacy_names = Bool(
        True,
        config=True,
        help="""When a server saved by a KubeSpawner older than 7 starts for the first
        time, look for its PVC under the old ('escape' scheme) name and keep using it,
        so upgrading does not detach users' data.""",
    )

    @validate("pod_name_template")
    def _check_pod_name_template(self, proposal):
        check_template("pod_name_template", proposal.value, USER_FIELDS | {"namespace"})
        return proposal.value

    @validate("dns_name_template")
    def _check_dns_name_template(self, proposal):
        check_template("dns_name_template", proposal.value, {"name", "namespace"})
        return proposal.value

    @validate("component_label")
    def _check_component_label(self, proposal):
        if not proposal.value or not is_valid_label(proposal.value):
            raise SpawnerConfigError(
                "component_label",
                proposal.value,
                "it is not a valid, non-empty label value",
                "Use up to 63 characters of [A-Za-z0-9._-] starting and ending with a letter or digit.",
            )
        return proposal.value

    @validate("common_labels")
    def _check_common_labels(self, proposal):
        check_string_map("common_labels", proposal.value)
        check_label_keys("common_labels", proposal.value)
        for key, value in proposal.value.items():
            if not is_valid_label(value):
                raise SpawnerConfigError(
                    "common_labels",
                    proposal.value,
                    f"the value {value!r} of {key!r} is not a valid label value",
                    "Use up to 63 characters of [A-Za-z0-9._-] starting and ending with a letter or digit.",
                )
        return proposal.value

    _check_extra_metadata = metadata_validator("extra_labels", "extra_annotations", CONTENT_FIELDS)
