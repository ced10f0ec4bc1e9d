"""How the spawner reaches the Kubernetes API."""

from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable


class ApiTraits(LoggingConfigurable):
    k8s_api_host = Unicode(
        "",
        config=True,
        help="""URL of the Kubernetes API server, overriding the one found in the
        in-cluster service account or the kubeconfig (for a hub running outside the
        cluster it talks to).""",
    )
    k8s_api_ssl_ca_cert = Unicode(
        "",
        config=True,
        help="Path of a CA bundle to verify the API server's certificate with.",
    )
    k8s_api_verify_ssl = Bool(
        None,
        allow_none=True,
        config=True,
        help="""Force TLS verification of the API server on (True) or off (False).
        None keeps what the in-cluster config or kubeconfig says.""",
    )
    k8s_api_request_timeout = Integer(
        3,
        config=True,
        help="""Seconds one API request (create/delete of a pod, PVC, Secret, Service or
        Namespace, and the reads that check an object is gone) may take before it is
        abandoned and, where allowed, retried.""",
    )
    k8s_api_request_retry_timeout = Integer(
        30,
        config=True,
        help="""Seconds in total that retries of one operation (creating or deleting the
        pod or PVC, checking that a PVC exists) may take before the spawn or stop fails.""",
    )
