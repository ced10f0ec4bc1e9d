"""What operator mode cannot honour, and why: one wording for the hub and for the converter.

Both the hub-side spawner (which refuses such a configuration before it creates anything)
and ``async-kubespawner-migrate`` (which refuses to convert it) say the same thing. This
module imports nothing beyond the standard library, so a hub, which has no PyYAML, can
use it without pulling in the converter.
"""

from __future__ import annotations

#: Why per-user namespaces stay in-hub. Kubernetes honours an ownerReference to a
#: namespaced owner only within its namespace (a child elsewhere counts as orphaned and is
#: garbage-collected), so the NotebookServer would have to live in the user's namespace:
#: the hub would then create namespaces, NotebookServers and Secrets in any namespace of
#: the cluster, the rights operator mode takes away from it.
USER_NAMESPACES_REASON = (
    "a server's objects are owned by its NotebookServer, and Kubernetes honours an "
    "ownerReference only within one namespace (a pod in the user's namespace owned by a "
    "NotebookServer in the hub's would be garbage-collected as an orphan). Moving each "
    "NotebookServer and its Secret into the user's namespace instead would need a hub that "
    "creates namespaces, NotebookServers and Secrets anywhere in the cluster (a ClusterRole), "
    "the rights operator mode exists to take away from the hub. Keep the in-hub mode for "
    "per-user namespaces (examples/user-namespaces), or drop the setting and run every server "
    "in c.OperatorSpawner.namespace, capped per server by the template's resource limits."
)


def user_namespaces_refusal(setting: str = "c.KubeSpawner.enable_user_namespaces") -> str:
    """The refusal, naming the setting where the configuration asked for it."""
    return f"{setting} cannot be expressed in operator mode: {USER_NAMESPACES_REASON}"


#: The refusal as the converter words it (it reads ``c.KubeSpawner`` settings).
USER_NAMESPACES_REFUSAL = user_namespaces_refusal()

#: Why internal SSL stays in-hub. The hub issues a server's certificate before the server
#: exists, for the names in ``ssl_alt_names``; operator mode reports the pod's IP (known
#: only once the pod runs) as the address the hub connects to, so no certificate can name
#: it. And the only object the hub hands the server, its Secret, reaches the container as
#: environment variables (``envFrom``), visible to every process; in-hub the key is a file.
INTERNAL_SSL_REFUSAL = (
    "c.JupyterHub.internal_ssl cannot be expressed in operator mode: the hub issues each "
    "server's certificate before the server exists, for the names it will connect to, but "
    "in operator mode the hub connects to the pod's IP, which the operator reports only once "
    "the pod runs, so no certificate can name it; and the only object the hub hands the "
    "server, its Secret, reaches the container as environment variables (envFrom), where a "
    "private key does not belong (in-hub it is a mounted file). Keep the in-hub mode for "
    "internal SSL (examples/internal-ssl), or in operator mode leave hub-to-server traffic "
    "to the network layer (a service mesh's mutual TLS) and restrict it with a "
    "NetworkPolicy in the template's otherResources."
)


class OperatorModeRefused(ValueError):
    """A hub configuration operator mode cannot honour; the message says why and what to do.

    Raised by the hub-side spawner before it creates anything, so a spawn fails with the
    reason instead of half-working (a server reached over plain http while the hub expects
    TLS, or every server landing in one namespace while the configuration asks for many).
    """
