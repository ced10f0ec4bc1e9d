"""Internal SSL: every connection between the hub, the proxy and the servers is TLS.

JupyterHub makes a certificate authority and a certificate per server
(``c.JupyterHub.internal_ssl``); the spawner hands the server's certificate, key and the
CA bundle to the pod in a Secret it owns, mounted at ``secret_mount_path``
(``/etc/jupyterhub/ssl``), creates a Service for the pod, and the hub and proxy reach the
server over https at the Service's DNS name, which the certificate names. The Secret and
Service are owned by the pod, so they go when it goes.

Runs in a cluster (the RBAC of ``../cluster/rbac.yaml``: secrets and services
create/delete) or against the simulator in process mode, where the local launcher gives
each pod a fixed loopback address that its certificate names (there is no cluster DNS on
one machine).
"""

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)

c.JupyterHub.spawner_class = "async-kubernetes"
c.JupyterHub.internal_ssl = True

c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5.2"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
# The server's API token travels in the same kind of owned Secret, not in the pod spec.
c.KubeSpawner.api_token_in_secret = True
