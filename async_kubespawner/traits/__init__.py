"""Every ``c.KubeSpawner.*`` setting, grouped by concern.

``KubeSpawnerSettings`` is a mixin placed before JupyterHub's ``Spawner`` in
``KubeSpawner``'s bases (JupyterHub refuses Spawner subclasses that do not define
start/stop/poll, so the settings cannot be a Spawner subclass of their own). It is
composed of one mixin per concern (``api``, ``events``, ``namespaces``, ``naming``,
``networking``, ``hooks``, ``pod``, ``stop``, ``resources``, ``security``, ``storage``,
``readiness``, ``watch``, ``deprecated``) and adds template expansion, the manifest methods
(``get_pod_manifest`` ...) and the state methods; see ``settings.py`` for what the
lifecycle calls and when.
"""

from ..objects.state import STATE_VERSION_KEY, UPSTREAM_COMPATIBLE_VERSION
from .deprecated import DEPRECATED_ALIASES
from .errors import SpawnerConfigError
from .settings import KubeSpawnerSettings

__all__ = [
    "DEPRECATED_ALIASES",
    "STATE_VERSION_KEY",
    "UPSTREAM_COMPATIBLE_VERSION",
    "KubeSpawnerSettings",
    "SpawnerConfigError",
]
