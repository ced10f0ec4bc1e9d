"""How the hub and proxy reach a user's server."""

from traitlets import Bool, Unicode, validate
from traitlets.config import LoggingConfigurable

from .validation import CONTENT_FIELDS, USER_FIELDS, check_template


class NetworkingTraits(LoggingConfigurable):
    ip = Unicode(
        "0.0.0.0",
        config=True,
        help="""Address the single-user server listens on inside its pod. All
        interfaces by default (the base Spawner's 127.0.0.1 would be unreachable from the
        proxy).""",
    )
    services_enabled = Bool(
        False,
        config=True,
        help="""Put a ClusterIP Service (owned by the pod, named like the pod) in front of
        every user pod, and reach the server through dns_name instead of the pod IP.
        Needed by service meshes such as Istio.""",
    )
    pod_connect_ip = Unicode(
        "",
        config=True,
        help="""Host name (templated) the hub and proxy use to reach the pod instead of
        its IP, for networks where pod IPs are not routable from the hub.""",
    )
    secret_name_template = Unicode(
        "{pod_name}",
        config=True,
        help="""Name of the per-pod Secret (internal SSL certificates, and the API token
        with api_token_in_secret). Templated; {pod_name} is available.""",
    )
    secret_mount_path = Unicode(
        "/etc/jupyterhub/ssl/",
        config=True,
        help="Directory in the notebook container where internal SSL certificates are mounted.",
    )

    @validate("pod_connect_ip")
    def _check_pod_connect_ip(self, proposal):
        check_template("pod_connect_ip", proposal.value, CONTENT_FIELDS)
        return proposal.value

    @validate("secret_name_template")
    def _check_secret_name_template(self, proposal):
        check_template(
            "secret_name_template", proposal.value, USER_FIELDS | {"pod_name", "namespace"}
        )
        return proposal.value
