"""Every ``c.KubeSpawner.*`` setting, grouped by concern (owned by the settings work, issue 4).

``KubeSpawnerSettings`` is a mixin placed before JupyterHub's ``Spawner`` in
``KubeSpawner``'s bases (JupyterHub refuses Spawner subclasses that do not define
start/stop/poll, so the settings cannot be a Spawner subclass of their own). It carries
the traits, their validation, the deprecated aliases, template expansion, the manifest
methods (``get_pod_manifest`` ...) and the state methods. The lifecycle lives in
``spawner.py``.
"""

from traitlets.config import LoggingConfigurable


class KubeSpawnerSettings(LoggingConfigurable):
    """Placeholder until the settings work lands: all traits and manifest methods go here."""
