"""From the in-hub mode to operator mode: a hub's ``c.KubeSpawner`` config as a NotebookTemplate.

    python -m async_kubespawner.operator.bridge jupyterhub_config.py [-o template.yaml]

The in-hub spawner builds each server's pod, PVC and Service from the hub's
configuration. This command builds them once, for a stand-in user and server whose
names are unmistakable markers, with the package's own manifest builders (so every
setting means exactly what it means in the in-hub mode), and turns the markers back into
placeholders, in the string values of the built objects:

* the ``{user_server}`` slug becomes ``{server.slug}``, the user's slug ``{user.slug}``
  (``{user.label}`` / ``{server.label}`` in label values), the server name
  ``{server.name}``, the user id ``{user.id}``;
* the environment JupyterHub gives every server (``JUPYTERHUB_*``, the API token) is
  taken out of the pod: in operator mode it comes from the Secret the hub writes per
  server (``envFrom`` ``{secret.name}``); the administrator's ``environment`` and the
  image variables stay in the template;
* ``delete_pvc`` becomes the PVC retention ``whenDeleted`` (PVCs are kept on stop, as in
  the in-hub mode).

A value the markers do not explain is left as it is; a marker left where it cannot be
mapped (a hook that computed something from the user name) refuses the conversion,
naming the place. Settings that only make sense inside a hub (``modify_pod_hook``,
callables, ``enable_user_namespaces``) are refused the same way: the template would not
do what the hub did.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from ..kube.client import to_json
from ..testing import build_spawner
from .models import API_VERSION

USER = "usr0sentinel"
SERVER = "srv0sentinel"
USER_ID = 918273645
TOKEN = "tkn0sentinel0000000000000000000000"
_MARKERS = (USER, SERVER, str(USER_ID), TOKEN)


class BridgeError(ValueError):
    """The configuration cannot be expressed as a template; the message says why."""


#: How the markers read back, by where they are: label values hold the label-safe forms,
#: annotations the names as they are, everything else (names, paths, env) the slugs.
_FORMS = {
    "label": ("{user.label}", "{server.label}"),
    "raw": ("{user.name}", "{server.name}"),
    "slug": ("{user.slug}", "{server.name}"),
}


def _map_string(value: str, form: str) -> str:
    user, server = _FORMS[form]
    out = value.replace(f"{USER}--{SERVER}", "{server.slug}")
    out = out.replace(USER, user).replace(SERVER, server)
    return out.replace(str(USER_ID), "{user.id}")


def _map_tree(value: Any, where: str, form: str = "slug") -> Any:
    if isinstance(value, str):
        if TOKEN in value:
            raise BridgeError(f"{where}: holds the API token; in operator mode it may only "
                              "come from the server's Secret")
        return _map_string(value, form)
    if isinstance(value, list):
        return [_map_tree(v, f"{where}[{i}]", form) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if any(m in k for m in _MARKERS):
                raise BridgeError(f"{where}.{k}: a key depends on the user or server")
            inner = "label" if k in ("labels", "selector", "matchLabels") else form
            out[k] = _map_tree(v, f"{where}.{k}", inner)
        return out
    return value


def _child(kind_id: str, manifest: dict[str, Any], where: str) -> dict[str, Any]:
    meta = manifest.get("metadata") or {}
    entry: dict[str, Any] = {
        "id": kind_id,
        "name": _map_tree(meta.get("name") or "", f"{where}.metadata.name"),
    }
    if meta.get("labels"):
        entry["labels"] = _map_tree(meta["labels"], f"{where}.metadata.labels", "label")
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith("hub.jupyter.org/async-kubespawner-create-id")
    }
    if annotations:
        entry["annotations"] = _map_tree(annotations, f"{where}.metadata.annotations", "raw")
    entry["spec"] = _map_tree(manifest.get("spec") or {}, f"{where}.spec")
    return entry


def _refuse_hub_only(spawner: Any) -> None:
    if getattr(spawner, "enable_user_namespaces", False):
        raise BridgeError("enable_user_namespaces: operator mode provisions each server in "
                          "the NotebookServer's namespace")
    for hook in ("modify_pod_hook", "pre_spawn_hook", "after_pod_created_hook"):
        if getattr(spawner, hook, None) is not None:
            raise BridgeError(f"{hook}: a hook runs in the hub; express what it does in the "
                              "template instead")


async def build_template(config: Config, name: str = "default") -> dict[str, Any]:
    """The NotebookTemplate equivalent to ``config``'s KubeSpawner settings."""
    from .. import KubeSpawner

    spawner: Any = build_spawner(KubeSpawner, USER, USER_ID, config=config, servername=SERVER,
                                 api_token=TOKEN)
    _refuse_hub_only(spawner)
    pod = to_json(await spawner.get_pod_manifest())
    hub_env = set(Spawner.get_env(spawner))  # what JupyterHub itself gives every server
    for container in pod["spec"].get("containers") or ():
        if container.get("name") != "notebook":
            continue
        container["env"] = [e for e in container.get("env") or () if e["name"] not in hub_env]
        if not container["env"]:
            container.pop("env")
        container["envFrom"] = [*(container.get("envFrom") or ()),
                                {"secretRef": {"name": "{secret.name}"}}]
    spec: dict[str, Any] = {"notebookPort": int(spawner.port)}
    if spawner.storage_pvc_ensure:
        pvc = to_json(spawner.get_pvc_manifest())
        spec["pvcs"] = [_child("home", pvc, "pvc")]
        spec["pvcRetention"] = {"whenStopped": "Retain",
                                "whenDeleted": "Delete" if spawner.delete_pvc else "Retain"}
    if spawner.needs_service:
        owner = {"apiVersion": "v1", "kind": "Pod", "name": "x", "uid": "x"}
        service = to_json(spawner.get_service_manifest(owner))
        spec["otherResources"] = [{"apiVersion": "v1", "kind": "Service",
                                   **_child("service", service, "service")}]
    spec["pods"] = [_child("notebook", pod, "pod")]
    return {"apiVersion": API_VERSION, "kind": "NotebookTemplate", "metadata": {"name": name},
            "spec": spec}


def load_config(path: str) -> Config:
    file = Path(path)
    return PyFileConfigLoader(file.name, path=str(file.resolve().parent)).load_config()


def main(argv: list[str] | None = None) -> int:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    parser = argparse.ArgumentParser(prog="python -m async_kubespawner.operator.bridge",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a jupyterhub_config.py with c.KubeSpawner settings")
    parser.add_argument("-o", "--output", default="-")
    parser.add_argument("--name", default="default", help="name of the NotebookTemplate")
    args = parser.parse_args(argv)
    try:
        template = asyncio.run(build_template(load_config(args.config), args.name))
    except BridgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = yaml.safe_dump(template, sort_keys=False, width=100)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
