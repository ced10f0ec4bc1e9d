"""A spawner carrying ProfilesMixin and a handful of KubeSpawner-like settings.

The profile tests need settings to override (image, namespace, node selectors, ...);
this stand-in keeps them independent of the settings work's trait list, and its
start() records what it was started with instead of talking to Kubernetes.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import jupyterhub
from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner
from jupyterhub.tests.mocking import MockHub
from traitlets import Dict, List, Unicode

from async_kubespawner.profiles import ProfilesMixin


class ProfileTestSpawner(ProfilesMixin, Spawner):
    image = Unicode("quay.io/jupyterhub/singleuser:latest", config=True)
    namespace = Unicode("default", config=True)
    pod_name_template = Unicode("jupyter-{user_server}", config=True)
    node_selector = Dict(config=True)
    tolerations: List[dict[str, Any]] = List(config=True)
    volumes: List[dict[str, Any]] = List(config=True)
    extra_pod_config = Dict(config=True)

    started_with: dict[str, Any] | None = None

    @property
    def pod_name(self) -> str:
        """Derived when read, like the settings mixin's names (which expand slugs too)."""
        if self.user is None:
            return ""
        server = f"{self.user.name}--{self.name}" if self.name else self.user.name
        return self.pod_name_template.replace("{user_server}", server)

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
                "pod_name",
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


PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Small CPU",
        "description": "2 cores",
        "kubespawner_override": {"cpu_limit": 2, "mem_limit": "2G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {"display_name": "Base", "kubespawner_override": {"image": "base:1"}},
                    "scipy": {
                        "display_name": "SciPy",
                        "default": True,
                        "kubespawner_override": {"image": "scipy:1"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Image name",
                    "validation_regex": r"^pangeo/.+:[\w.-]+$",
                    "validation_message": "Must be a pangeo image with a tag",
                    "kubespawner_override": {
                        "image": "{value}",
                        "environment": {"CUSTOM_IMAGE": "{value}", "KEEP": "{username}"},
                        "volumes": [{"name": "scratch", "emptyDir": {"medium": "{value}"}}],
                    },
                },
            },
        },
    },
    {
        "display_name": "GPU",
        "slug": "gpu",
        "default": True,
        "kubespawner_override": {
            "image": "cuda:12",
            "namespace": "gpu-users",
            "node_selector": {"gpu": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "pod_name_template": "gpu-{user_server}",
        },
        "profile_options": {
            "size": {
                "display_name": "Size",
                "choices": {
                    "one": {"display_name": "1 GPU", "kubespawner_override": {"cpu_limit": 4}},
                    "two": {"display_name": "2 GPUs", "kubespawner_override": {"cpu_limit": 8}},
                },
            }
        },
    },
]


class FormParser(HTMLParser):
    """Collects the form controls, labels and fieldsets of a rendered form."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, Any]] = []  # input/select, with their <option>s
        self.labels: dict[str, str] = {}  # for= -> text
        self.fieldsets = 0
        self.legends: list[str] = []
        self.ids: list[str] = []
        self._select: dict[str, Any] | None = None
        self._option: dict[str, Any] | None = None
        self._label_for: str | None = None
        self._in_legend = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if tag == "input":
            self.controls.append({"tag": tag, **a})
        elif tag == "select":
            self._select = {"tag": tag, "options": [], **a}
            self.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}
            self._select["options"].append(self._option)
        elif tag == "label":
            self._label_for = a.get("for")
            self._text = []
        elif tag == "fieldset":
            self.fieldsets += 1
        elif tag == "legend":
            self._in_legend = True
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "option":
            self._option = None
        elif tag == "label" and self._label_for is not None:
            self.labels[self._label_for] = "".join(self._text).strip()
            self._label_for = None
        elif tag == "legend":
            self.legends.append("".join(self._text).strip())
            self._in_legend = False

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option["text"] += data
        if self._label_for is not None or self._in_legend:
            self._text.append(data)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [c for c in self.controls if c.get("name") == name]

    def selected(self, name: str) -> str | None:
        (select,) = self.named(name)
        chosen = [o["value"] for o in select["options"] if o["selected"]]
        assert len(chosen) <= 1
        return chosen[0] if chosen else None

    def checked_profile(self) -> list[str]:
        return [c["value"] for c in self.named("profile") if "checked" in c]


async def stop_mock_hub(app: MockHub) -> None:
    """Shut a MockHub down without JupyterHub's stop(), which schedules a task that
    cancels *every* task of the loop, pytest-asyncio's fixture finalizers included."""
    app.log.handlers = []
    await app.cleanup()
    app._atexit_ran = True
    if app.http_server:
        app.http_server.stop()
    for callback in app._periodic_callbacks.values():
        callback.stop()
    MockHub.clear_instance()
    app.db_file.close()


def spawn_body(user_options: dict[str, Any]) -> dict[str, Any]:
    """The body of a spawn request for this JupyterHub: 6.x reads ``user_options`` from
    its key, 5.x takes the whole body as the options."""
    if jupyterhub.version_info[0] >= 6:
        return {"user_options": user_options}
    return dict(user_options)


class InMemoryProxy(Proxy):
    """Keeps routes in a dict: the tests exercise the hub, not configurable-http-proxy."""

    should_start = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.routes: dict[str, dict[str, Any]] = {}

    async def add_route(self, routespec: str, target: str, data: dict[str, Any]) -> None:
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec: str) -> None:
        self.routes.pop(routespec, None)

    async def get_all_routes(self) -> dict[str, dict[str, Any]]:
        return dict(self.routes)
