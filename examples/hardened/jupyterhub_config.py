"""A hardened hub: user pods that pass the "restricted" Pod Security Standard, no token in the pod spec.

- ``security_profile = "restricted"``: seccomp ``RuntimeDefault``, all capabilities
  dropped, ``runAsNonRoot``, no privilege escalation. Label the users' namespace with
  ``pod-security.kubernetes.io/enforce: restricted`` (``users-namespace.yaml`` next to this
  file) and the API server itself refuses any pod that is not.
- ``api_token_in_secret = True``: the hub's API token reaches the server through a
  per-pod Secret (owned by the pod, so deleted with it) and a ``secretKeyRef``, never
  as a literal value in the pod spec, which anyone allowed to read pods could read.
- No ServiceAccount token in the pod, a fixed non-root uid/gid, and no image pulled
  unless missing.

The hub runs in ``jhub`` with ``../cluster/rbac.yaml``; ``users-namespace.yaml`` creates the
users' namespace and grants the hub's ServiceAccount what it needs there.
"""

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)

c.JupyterHub.spawner_class = "async-kubernetes"
c.JupyterHub.hub_connect_ip = "hub"
c.JupyterHub.cleanup_servers = False

c.KubeSpawner.namespace = "jhub-users"
c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5.2"
c.KubeSpawner.image_pull_policy = "IfNotPresent"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]

c.KubeSpawner.security_profile = "restricted"
c.KubeSpawner.api_token_in_secret = True
c.KubeSpawner.uid = 1000
c.KubeSpawner.gid = 100
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.automount_service_account_token = False

c.KubeSpawner.cpu_limit = 2
c.KubeSpawner.mem_limit = "2G"
c.KubeSpawner.mem_guarantee = "512M"
