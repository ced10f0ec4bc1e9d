"""Settings kept only so old configuration keeps loading, and the renamed ones.

The 23 renamed settings are accepted both in configuration (moved to their new name
when the config is loaded) and as attributes at runtime (``spawner.singleuser_uid``),
each time with a warning naming the setting to use instead. Upstream KubeSpawner lost
``singleuser_allow_privilege_escalation`` and ``singleuser_lifecycle_hooks`` to a
missing comma; both work here.
"""

from __future__ import annotations

from typing import Any

from traitlets import Integer, Unicode, observe, validate
from traitlets.config import Config, LoggingConfigurable

# old name -> (new name, version it was deprecated in)
DEPRECATED_ALIASES: dict[str, tuple[str, str]] = {
    "image_spec": ("image", "0.10"),
    "singleuser_working_dir": ("working_dir", "0.9"),
    "singleuser_service_account": ("service_account", "0.9"),
    "singleuser_extra_labels": ("extra_labels", "0.9"),
    "singleuser_extra_annotations": ("extra_annotations", "0.9"),
    "singleuser_image_spec": ("image", "0.9"),
    "singleuser_image_pull_policy": ("image_pull_policy", "0.9"),
    "singleuser_image_pull_secrets": ("image_pull_secrets", "0.9"),
    "singleuser_node_selector": ("node_selector", "0.9"),
    "singleuser_uid": ("uid", "0.9"),
    "singleuser_fs_gid": ("fs_gid", "0.9"),
    "singleuser_supplemental_gids": ("supplemental_gids", "0.9"),
    "singleuser_privileged": ("privileged", "0.9"),
    "singleuser_allow_privilege_escalation": ("allow_privilege_escalation", "0.9"),
    "singleuser_lifecycle_hooks": ("lifecycle_hooks", "0.9"),
    "singleuser_extra_pod_config": ("extra_pod_config", "0.9"),
    "singleuser_init_containers": ("init_containers", "0.9"),
    "singleuser_extra_container_config": ("extra_container_config", "0.9"),
    "singleuser_extra_containers": ("extra_containers", "0.9"),
    "user_storage_class": ("storage_class", "0.9"),
    "user_storage_pvc_ensure": ("storage_pvc_ensure", "0.9"),
    "user_storage_capacity": ("storage_capacity", "0.9"),
    "user_storage_extra_labels": ("storage_extra_labels", "0.9"),
    "user_storage_access_modes": ("storage_access_modes", "0.9"),
}


def _alias_property(old: str, new: str, version: str) -> property:
    def getter(self: Any) -> Any:
        self.log.warning(
            "KubeSpawner.%s is deprecated since %s: use KubeSpawner.%s", old, version, new
        )
        return getattr(self, new)

    def setter(self: Any, value: Any) -> None:
        self.log.warning(
            "KubeSpawner.%s is deprecated since %s: use KubeSpawner.%s", old, version, new
        )
        setattr(self, new, value)

    return property(getter, setter, doc=f"Deprecated since {version}: use {new}.")


class DeprecatedTraits(LoggingConfigurable):
    k8s_api_threadpool_workers = Integer(
        0,
        config=True,
        help="Deprecated, ignored: API calls are asynchronous and need no thread pool.",
    )
    hub_connect_ip = Unicode(
        "",
        config=True,
        help="Deprecated: set JupyterHub.hub_connect_ip instead. Copied onto the hub object.",
    )
    hub_connect_port = Integer(
        0,
        config=True,
        help="Deprecated: set JupyterHub.hub_connect_port instead. Copied onto the hub object.",
    )

    @observe("k8s_api_threadpool_workers")
    def _threadpool_ignored(self, change):
        self.log.warning(
            "KubeSpawner.k8s_api_threadpool_workers is deprecated and ignored: "
            "the spawner makes no blocking API calls. Remove it from your configuration."
        )

    @observe("hub_connect_ip", "hub_connect_port")
    def _copy_hub_connect(self, change):
        new = "JupyterHub." + change.name
        self.log.warning("KubeSpawner.%s is deprecated: use %s", change.name, new)
        hub = getattr(self, "hub", None)
        if hub is not None:
            setattr(hub, change.name.split("_", 1)[1], change.new)

    @validate("config")
    def _move_deprecated_config(self, proposal):
        """Move ``c.KubeSpawner.<old>`` to ``<new>`` before traitlets applies the
        config, so the old name works and traitlets does not warn it is unknown."""
        config: Config = proposal.value
        section_names = [cls.__name__ for cls in type(self).__mro__ if hasattr(cls, "class_traits")]
        for section_name in section_names:
            if section_name not in config:
                continue
            section = config[section_name]
            for old, (new, version) in DEPRECATED_ALIASES.items():
                if old not in section:
                    continue
                value = section.pop(old)
                if new in section:
                    self.log.warning(
                        "%s.%s is deprecated and ignored because %s.%s is also set",
                        section_name,
                        old,
                        section_name,
                        new,
                    )
                    continue
                self.log.warning(
                    "%s.%s is deprecated since %s: use %s.%s instead",
                    section_name,
                    old,
                    version,
                    section_name,
                    new,
                )
                section[new] = value
        return config


for _old, (_new, _version) in DEPRECATED_ALIASES.items():
    setattr(DeprecatedTraits, _old, _alias_property(_old, _new, _version))
