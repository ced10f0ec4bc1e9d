"""One namespace per user: quotas, NetworkPolicies and RBAC per person.

With ``enable_user_namespaces`` the spawner creates the namespace named by
``user_namespace_template`` (here ``jhub-alice`` for alice when the hub runs in
``jhub``; ``{hubnamespace}`` is ``user`` when the hub is in ``default``) before the
first pod, labels it, and watches pods and events across all namespaces, which needs
the ClusterRole of ``rbac.yaml`` next to this file instead of a namespaced Role.
Each user's PVCs and pods live in their own namespace, so a ResourceQuota or a
LimitRange per namespace caps what one person can use.
"""

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)

c.JupyterHub.spawner_class = "async-kubernetes"
c.JupyterHub.allow_named_servers = True

c.KubeSpawner.enable_user_namespaces = True
c.KubeSpawner.user_namespace_template = "{hubnamespace}-{username}"
c.KubeSpawner.user_namespace_labels = {
    "hub.jupyter.org/user-namespace": "true",
    "hub.jupyter.org/username": "{username}",
}
c.KubeSpawner.user_namespace_annotations = {"hub.jupyter.org/owner": "{unescaped_username}"}

c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5.2"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "5Gi"
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
