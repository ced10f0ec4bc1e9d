"""A spawner carrying ProfilesMixin and a handful of KubeSpawner-like settings.

The profile tests need settings to override (image, namespace, node selectors, ...);
this stand-in keeps them independent of the settings work's trait list, and its
start() records what it was started with instead of talking to Kubernetes.
"""

from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Dict, List, Unicode

from async_kubespawner.profiles import ProfilesMixin


class ProfileTestSpawner(ProfilesMixin, Spawner):
    image = Unicode("quay.io/jupyterhub/singleuser:latest", config=True)
    namespace = Unicode("default", config=True)
    pod_name_template = Unicode("jupyter-{user_server}", config=True)
    node_selector = Dict(config=True)
    tolerations = List(config=True)
    volumes = List(config=True)
    extra_pod_config = Dict(config=True)

    started_with: dict[str, Any] | None = None

    async def start(self) -> str:
        await self.load_user_options()
        self.started_with = self.snapshot()
        return "http://127.0.0.1:1"

    async def stop(self, now: bool = False) -> None:
        return None

    async def poll(self) -> int | None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in (
                "image",
                "namespace",
                "pod_name_template",
                "node_selector",
                "tolerations",
                "volumes",
                "extra_pod_config",
                "environment",
                "cpu_limit",
                "mem_limit",
            )
        }
