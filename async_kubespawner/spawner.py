"""The JupyterHub lifecycle of a Kubernetes-backed server (owned by the lifecycle work, issue 5).

``KubeSpawner`` composes the settings (``traits``), the profiles and the lifecycle;
its class name is ``KubeSpawner`` so that ``c.KubeSpawner.*`` applies unchanged.
"""

from jupyterhub.spawner import Spawner

from .profiles import ProfilesMixin
from .traits import KubeSpawnerSettings


class KubeSpawner(ProfilesMixin, KubeSpawnerSettings, Spawner):
    """Placeholder until the lifecycle work lands."""

    async def start(self) -> str:
        raise NotImplementedError("the lifecycle work (issue 5) has not landed yet")

    async def stop(self, now: bool = False) -> None:
        raise NotImplementedError("the lifecycle work (issue 5) has not landed yet")

    async def poll(self) -> int | None:
        raise NotImplementedError("the lifecycle work (issue 5) has not landed yet")
