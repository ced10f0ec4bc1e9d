"""Every exception this package raises on purpose, in one place.

Hooks and hub code catch these by class (``except errors.Conflict``), never by parsing a
message or an HTTP code. The Kubernetes API errors come from :mod:`.kube.errors`; the
spawn and configuration errors are loaded on first use, because their modules need
JupyterHub, which the Kubernetes layer does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .kube.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NamespaceNotFound,
    NoResponse,
    NotFound,
    RequestTooLarge,
    ServerError,
    Status,
    StatusCause,
    TooManyRequests,
    Unauthorized,
)
from .kube.transport import LibraryShapeError

if TYPE_CHECKING:
    from .objects.manifests import ManifestError
    from .profiles import ProfileListError, ProfileOverrideError, UserOptionsError
    from .spawner import SpawnFailed
    from .traits.errors import SpawnerConfigError

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "LibraryShapeError",
    "ManifestError",
    "NamespaceNotFound",
    "NoResponse",
    "NotFound",
    "ProfileListError",
    "ProfileOverrideError",
    "RequestTooLarge",
    "ServerError",
    "SpawnFailed",
    "SpawnerConfigError",
    "Status",
    "StatusCause",
    "TooManyRequests",
    "Unauthorized",
    "UserOptionsError",
]

_LAZY = {
    "SpawnFailed": ".spawner",
    "SpawnerConfigError": ".traits.errors",
    "ManifestError": ".objects.manifests",
    "ProfileListError": ".profiles",
    "ProfileOverrideError": ".profiles",
    "UserOptionsError": ".profiles",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __package__), name)
