"""A hub on one machine: the built-in Kubernetes simulator in process mode, no cluster needed.

This is what ``make demo`` runs (``python -m devtools.demo`` starts the
simulator, the proxy and this hub, and stops them on Ctrl-C). Each "pod" is a real
``jupyterhub-singleuser`` process listening on its own loopback pod IP (127.x.y.z),
created, scheduled and reported on by the simulator exactly as a cluster would, so the
spawn page shows the same Kubernetes events (Scheduled, Pulling, Pulled, Created,
Started) a real cluster produces.

Log in with any user name and the password ``demo`` (set ``DEMO_PASSWORD`` to change
it). Named servers are on: the home page offers "Add New Server".

To run it by hand instead of through the demo: start the simulator with
``python -m kubesim --process-mode --kubeconfig /tmp/sim.kubeconfig``,
then ``KUBECONFIG=/tmp/sim.kubeconfig jupyterhub -f examples/local/jupyterhub_config.py``.
The spawner reads the simulator's address from ``$KUBECONFIG`` like any kubeconfig.
"""

import os

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)

# --- The hub ----------------------------------------------------------------------------
c.JupyterHub.spawner_class = "async-kubernetes"
c.JupyterHub.bind_url = f"http://127.0.0.1:{int(os.environ.get('DEMO_PORT', '8000'))}"
# The "pods" are processes on this machine: they reach the hub's API on loopback.
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 3

# Any user name, one shared password: for a demo on your own machine only.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ.get("DEMO_PASSWORD", "demo")
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}

# --- The spawner ------------------------------------------------------------------------
c.KubeSpawner.namespace = "default"
# The simulator runs images of this name as `jupyterhub-singleuser` processes.
c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5"
# Process mode runs the server as the user running the demo, which in containers and CI
# is often root; jupyter_server refuses to run as root without this flag.
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.args = ["--allow-root"]
c.KubeSpawner.cpu_guarantee = 0.1
c.KubeSpawner.mem_guarantee = "128M"
# Kubernetes events stream to the spawn page's progress bar (this is the default).
c.KubeSpawner.events_enabled = True
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.http_timeout = 30

# Two profiles on the spawn page; the second has an option with two choices.
c.KubeSpawner.profile_list = [
    {
        "display_name": "Small",
        "slug": "small",
        "description": "Half a CPU and 512 MB: for reading and light editing.",
        "default": True,
        "kubespawner_override": {
            "cpu_limit": 0.5,
            "mem_limit": "512M",
        },
    },
    {
        "display_name": "Large",
        "slug": "large",
        "description": "Two CPUs and 2 GB, with a choice of image.",
        "kubespawner_override": {
            "cpu_limit": 2,
            "cpu_guarantee": 1,
            "mem_limit": "2G",
            "mem_guarantee": "1G",
        },
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "current": {
                        "display_name": "singleuser 5.2 (current)",
                        "default": True,
                        "kubespawner_override": {"image": "quay.io/jupyterhub/singleuser:5.2"},
                    },
                    "previous": {
                        "display_name": "singleuser 4.1 (previous)",
                        "kubespawner_override": {"image": "quay.io/jupyterhub/singleuser:4.1"},
                    },
                },
            }
        },
    },
]
