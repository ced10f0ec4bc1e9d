"""kubesim: a local Kubernetes API simulator, for testing Kubernetes clients without a cluster.

``store`` and the HTTP ``app`` are the API server; ``cluster/`` holds the nodes, the
scheduler and the kubelet, which are clients of the store as real ones are clients of the
API server. ``testing`` and ``pytest_plugin`` are how tests start one.
"""

from ._version import __version__

__all__ = ["__version__"]
