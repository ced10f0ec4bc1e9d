"""A hub inside a real cluster, laid out like the Zero to JupyterHub Helm chart.

The hub runs as a Deployment in its own namespace with the ServiceAccount, Role and
RoleBinding of ``rbac.yaml`` next to this file (``kubectl apply -n jhub -f rbac.yaml``).
The spawner then finds the API server through the in-cluster configuration (the
ServiceAccount token mounted in the hub's pod) and puts user pods in the hub's own
namespace. The proxy is the chart's separate ``proxy`` Deployment, reached through the
``proxy-api`` Service; the hub is reached by the pods through the ``hub`` Service.

Every ``c.KubeSpawner.*`` line below means what it means for upstream KubeSpawner:
a chart-generated configuration switches by changing only ``spawner_class``.
"""

import os

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)

# --- The hub and its proxy (as the chart wires them) -------------------------------------
c.JupyterHub.spawner_class = "async-kubernetes"  # upstream: "kubespawner.KubeSpawner"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "hub"  # the hub's Service: how user pods reach its API
c.JupyterHub.cleanup_servers = False  # a hub upgrade must not stop running servers
c.JupyterHub.allow_named_servers = True
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"
c.ConfigurableHTTPProxy.auth_token = os.environ.get("CONFIGPROXY_AUTH_TOKEN", "")
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"

# --- Where and what the user pods are ----------------------------------------------------
# No namespace setting: it defaults to the hub's own namespace, read from the ServiceAccount.
c.KubeSpawner.image = "quay.io/jupyterhub/k8s-singleuser-sample:4.2.0"
c.KubeSpawner.image_pull_policy = "IfNotPresent"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.default_url = "/lab"
c.KubeSpawner.start_timeout = 300  # a first pull of a large image takes minutes
c.KubeSpawner.http_timeout = 120
c.KubeSpawner.cpu_guarantee = 0.05
c.KubeSpawner.mem_guarantee = "1G"
c.KubeSpawner.mem_limit = "2G"
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.common_labels = {
    "app": "jupyterhub",
    "heritage": "jupyterhub",
    "release": "jhub",
    "app.kubernetes.io/name": "jupyterhub",
    "app.kubernetes.io/managed-by": "kubespawner",
}
c.KubeSpawner.extra_labels = {"hub.jupyter.org/network-access-hub": "true"}

# User pods go to the user node pool (the chart's scheduling.userPods settings).
c.KubeSpawner.tolerations = [
    {
        "key": "hub.jupyter.org/dedicated",
        "operator": "Equal",
        "value": "user",
        "effect": "NoSchedule",
    },
    {
        "key": "hub.jupyter.org_dedicated",
        "operator": "Equal",
        "value": "user",
        "effect": "NoSchedule",
    },
]
c.KubeSpawner.node_affinity_preferred = [
    {
        "weight": 100,
        "preference": {
            "matchExpressions": [
                {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
            ]
        },
    }
]

# --- Storage: one dynamically provisioned PVC per server (the chart's singleuser.storage) -
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "10Gi"
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
c.KubeSpawner.pvc_name_template = "claim-{user_server}"
c.KubeSpawner.volumes = [
    {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
]
c.KubeSpawner.volume_mounts = [{"name": "volume-{user_server}", "mountPath": "/home/jovyan"}]

# --- Networking: a ClusterIP Service per server (for service meshes and NetworkPolicies) -
c.KubeSpawner.services_enabled = True
