"""Named servers, each with its own persistent volume.

A user may run up to three servers side by side ("Add New Server" on the home page);
each gets its own PVC, named from ``{user_server}`` (the user and server name, slugged
exactly as upstream does, so existing claims are found again after a migration). The
claim is created before the pod (``storage_pvc_ensure``), its name is remembered in the
spawner state once it exists (``remember_pvc_name``: renaming the template later does
not detach anyone's data), and deleting a named server deletes its claim
(``delete_pvc``) — stopping it does not.

Runs in a cluster (in-cluster config, the RBAC of ``../cluster/rbac.yaml``) or against
the simulator (``KUBECONFIG`` pointing at it; its PVC binder provisions the claims).
"""

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)

c.JupyterHub.spawner_class = "async-kubernetes"
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 3

c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5.2"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]

c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "5Gi"
c.KubeSpawner.storage_class = "standard"
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
# One claim per server: "claim-alice--analysis" for alice's server "analysis",
# "claim-alice" for her default server.
c.KubeSpawner.pvc_name_template = "claim-{user_server}"
c.KubeSpawner.storage_extra_labels = {"hub.jupyter.org/server": "{servername}"}
c.KubeSpawner.remember_pvc_name = True
c.KubeSpawner.delete_pvc = True
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
c.KubeSpawner.fs_gid = 100
