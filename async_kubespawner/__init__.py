"""async_kubespawner: a fully asyncio JupyterHub spawner for Kubernetes.

``KubeSpawner`` is imported lazily so that the simulator (``kubesim``)
can run without importing JupyterHub.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .spawner import KubeSpawner

__all__ = ["KubeSpawner", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "KubeSpawner":
        from .spawner import KubeSpawner

        return KubeSpawner
    raise AttributeError(name)
