"""Why a start failed, in words a user can act on."""

from __future__ import annotations

from tornado import web

__all__ = ["SpawnFailed", "VolumeFailed"]


class SpawnFailed(web.HTTPError):
    """start() cannot succeed; the message tells the user (or admin) what to do.

    An ``HTTPError`` carrying ``jupyterhub_message`` because that is what JupyterHub
    relays to the user verbatim: a failure within the first second of a spawn is raised
    straight into the spawn form's POST, where any other exception becomes a bare
    "HTTP 500: Unhandled error starting server".
    """

    def __init__(self, message: str) -> None:
        super().__init__(500, reason="Spawn failed")
        self.message = message
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.message


class VolumeFailed(SpawnFailed):
    """The volume cannot be provisioned: the PVC this start created is removed too."""
