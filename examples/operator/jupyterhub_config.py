"""A hub in operator mode: it asks for servers; the operator provisions them from templates.

Install first (see docs/operator.md): crds.yaml, operator.yaml, template.yaml, and
hub-role.yaml for the hub's ServiceAccount. The hub then needs no right to create pods.
"""

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.spawner_class = "async-kubernetes-operator"
c.JupyterHub.allow_named_servers = True

# The NotebookTemplate every server is made from, unless a profile says otherwise.
c.OperatorSpawner.template = "default"
c.OperatorSpawner.start_timeout = 300

# Same form and field names as the in-hub mode; overrides set the template's variables,
# which the operator checks against what the template declares.
c.OperatorSpawner.profile_list = [
    {
        "display_name": "Standard",
        "slug": "standard",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "Base notebook",
                        "default": True,
                        "kubespawner_override": {
                            "variables": {"image": "quay.io/jupyter/base-notebook:2025-01-06"}
                        },
                    },
                    "scipy": {
                        "display_name": "SciPy notebook",
                        "kubespawner_override": {
                            "variables": {"image": "quay.io/jupyter/scipy-notebook:2025-01-06"}
                        },
                    },
                },
            },
        },
    },
    {
        "display_name": "Large (4 GiB)",
        "slug": "large",
        "kubespawner_override": {"variables": {"memory": "4Gi", "storage": "10Gi"}},
    },
]
