"""From the in-hub mode to operator mode: a hub's ``c.KubeSpawner`` configuration as a NotebookTemplate.

    python -m async_kubespawner.operator.migrate --config jupyterhub_config.py [--name default]
        [--profile SLUG] [--option NAME=CHOICE ...] [--user NAME] > template.yaml

Why this works the way it does: the pod, PVC and Service a hub creates are whatever the
in-hub spawner's own manifest builders make of the configuration (defaults, validators,
deprecated aliases, profiles, security profiles). Re-implementing that mapping setting by
setting would drift; instead the builders run for a *probe* user and server whose names
are chosen so that every per-user form (the exact name, its DNS slug, its label value,
the user-and-server slug) is a distinct string that cannot occur by chance. The manifests
are then walked as parsed objects: inside each string value the probe's forms become the
operator's built-in placeholders (``{user.name}``, ``{user.slug}``, ``{server.slug}``,
``{server.name.slug}`` ...), the PVC's name becomes the cross-reference ``{pvcs.home.name}``. Nothing is done
to serialized text, keys are never touched.

Nothing is trusted on faith: a string that still carries a trace of the probe (a form
the operator has no built-in for: the legacy ``escape`` slugs) is refused with its path, and the finished template is then rendered
by the operator's own :func:`~.render.render` for several real-looking users and servers
(hostile names included) and compared with what the in-hub builders make for them. Any
difference refuses the conversion; a template that is produced is exact for those users.

What operator mode cannot express is refused before anything is written, with the
reason (worded once in :mod:`.limits`, which the hub-side spawner shares): per-user
namespaces (ownerReferences do not cross namespaces, and the way around it is a hub with
cluster-wide rights), internal SSL (the certificate is issued before the address the hub
connects to exists, and its key would reach the container as environment variables), and
hooks or callables (per-user code cannot become a static template).

The hub's own environment (``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_USER``, ...) does not
go into the template: in operator mode the hub puts it in the server's Secret, which the
template passes to the notebook container with ``envFrom: {secret.name}``. Only
variables the in-hub pod sets *differently* from that environment (``JUPYTER_IMAGE``,
``c.KubeSpawner.environment``) stay in the container's ``env``, which takes precedence.
The command also prints the ``c.OperatorSpawner`` settings that make the Secret carry the
same environment as the in-hub pod (``ip``, ``port``, ``env_keep``, timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import yaml
except ModuleNotFoundError as exc:  # a hub does not need PyYAML; only these commands do
    raise SystemExit(
        "this command reads and writes YAML: pip install 'async-kubespawner[migrate]'"
    ) from exc
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from ..objects.identity import IDENTITY_ANNOTATION
from ..objects.manifests import to_dict
from ..objects.slugs import TemplateFields
from ..traits.namespaces import hub_namespace
from .limits import INTERNAL_SSL_REFUSAL, USER_NAMESPACES_REFUSAL
from .models import (
    API_VERSION,
    LABEL_MANAGED_BY,
    LABEL_SERVERNAME,
    MANAGED_BY,
    parse_template_spec,
)
from .render import RenderedChild, ServerContext, TemplateInvalid, placeholders, render

Obj = dict[str, Any]

#: The probe: names whose every derived form is unique and recognisable. The user name
#: is not a valid label (so its label value is a hashed slug), and long enough that its
#: label slug (cut to 21 characters) differs from its DNS slug (cut to 37); both names
#: start with a lowercase marker ("zqjxv", "srvqk") that survives every slug scheme
#: (the legacy escaping keeps [a-z0-9]) and that no configuration contains by chance.
PROBE_USER = "zqjxv Probe@User.Name-for.bridge"
PROBE_SERVER = "srvqk Probe@Named.Server"
PROBE_USER_ID = 739451
_MARKERS = ("zqjxv", "srvqk", str(PROBE_USER_ID))

#: Users and servers the finished template is checked against (rendered by the operator,
#: built by the in-hub spawner, compared). Plain names, names that need slugs, a name
#: that is a valid label but not a valid object name, long names and a named server.
VERIFY_IDENTITIES: tuple[tuple[str, str], ...] = (
    ("alice", ""),
    ("alice", "work"),
    ("Bob.Smith@example.org", ""),
    ("Carol_1", "Analysis.2"),
    ("x" * 60, "s" * 40),
    ("d--e", "my server"),
    # server names whose slug is not the name: capitals, a dot, non-ASCII, a "--"
    ("alice", "Work"),
    ("alice", "a.b"),
    ("Zoë", "données-été"),
    ("alice", "x--y"),
)

#: The user id the check uses (the probe's is distinct so that its traces are recognised).
VERIFY_USER_ID = 4242

#: Spawner classes whose ``c.KubeSpawner`` settings this command understands.
_IN_HUB_CLASSES = {
    "",
    "async-kubernetes",
    "async_kubespawner.KubeSpawner",
    "async_kubespawner.spawner.KubeSpawner",
    "kubespawner",
    "kubespawner.KubeSpawner",
    "kubespawner.spawner.KubeSpawner",
}

#: Settings holding per-user code: a template is static, so these are refused.
_CALLABLE_SETTINGS = (
    "modify_pod_hook",
    "after_pod_created_hook",
    "uid",
    "gid",
    "fs_gid",
    "supplemental_gids",
    "container_security_context",
    "pod_security_context",
    "profile_list",
)

_PLACEHOLDER_LIKE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.\-]*\}")


class BridgeRefused(ValueError):
    """The configuration cannot become a NotebookTemplate; the message says why and what to do."""


# -- loading and building the in-hub objects ---------------------------------------------------


def load_hub_config(path: str | Path) -> Config:
    """A jupyterhub_config.py as JupyterHub loads it (``get_config()`` and all)."""
    p = Path(path)
    if not p.is_file():
        raise BridgeRefused(f"{p}: no such configuration file")
    return PyFileConfigLoader(p.name, path=str(p.parent.resolve())).load_config()


def _kubespawner_class() -> type:
    from .. import KubeSpawner

    return KubeSpawner


def check_expressible(config: Config) -> None:
    """Refuse, before building anything, what operator mode cannot express."""
    spawner_class = config.JupyterHub.get("spawner_class", "")
    if not isinstance(spawner_class, str) or spawner_class not in _IN_HUB_CLASSES:
        name = getattr(spawner_class, "__name__", spawner_class)
        raise BridgeRefused(
            f"c.JupyterHub.spawner_class is {name!r}: this command converts the settings of the "
            "in-hub KubeSpawner ('async-kubernetes' or upstream 'kubespawner.KubeSpawner')."
        )
    settings = {**config.get("Spawner", {}), **config.get("KubeSpawner", {})}
    if settings.get("enable_user_namespaces"):
        raise BridgeRefused(USER_NAMESPACES_REFUSAL)
    if config.JupyterHub.get("internal_ssl"):
        raise BridgeRefused(INTERNAL_SSL_REFUSAL)
    for setting in _CALLABLE_SETTINGS:
        if callable(settings.get(setting)):
            raise BridgeRefused(
                f"c.KubeSpawner.{setting} is a callable: code that runs per user cannot become "
                "a static template. Replace it with its value, or write the template by hand."
            )
    for key, value in (settings.get("environment") or {}).items():
        if callable(value):
            raise BridgeRefused(
                f"c.KubeSpawner.environment[{key!r}] is a callable: code that runs per user "
                "cannot become a static template. Replace it with a value or a {field} template."
            )


def build_in_hub(
    config: Config,
    username: str,
    servername: str,
    user_id: int,
    user_options: Mapping[str, Any] | None = None,
) -> Any:
    """The in-hub spawner for one server, configured exactly as the hub configures it."""
    from ..testing import build_spawner

    spawner: Any = build_spawner(
        _kubespawner_class(), username, user_id, config=config, servername=servername,
        api_token=f"token-of-{username}",
    )
    spawner.user_options = dict(user_options or {})
    return spawner


async def in_hub_objects(spawner: Any) -> dict[str, Obj]:
    """The pod, PVC and Service the in-hub spawner would create, as API dicts.

    ``load_user_options`` applies the profile first, as ``start()`` does; the pod goes
    through ``modify_pod_hook`` (none here: hooks are refused) like the real one.
    """
    from kubernetes_asyncio.client import V1OwnerReference

    await spawner.load_user_options()  # names follow the profile: they are derived on read
    spawner.check_configuration()
    out: dict[str, Obj] = {"pod": to_dict(await spawner.prepare_pod())}
    if spawner.storage_pvc_ensure:
        out["pvc"] = to_dict(spawner.get_pvc_manifest())
    if spawner.needs_service:
        owner = V1OwnerReference(api_version="v1", kind="Pod", name=spawner.pod_name,
                                 uid="owner", block_owner_deletion=True)
        service = to_dict(spawner.get_service_manifest(owner))
        service["metadata"].pop("ownerReferences", None)
        out["service"] = service
    return out


# -- hub-side settings ---------------------------------------------------------------------------


@dataclass
class Conversion:
    """A converted configuration: the template, and the hub settings that go with it."""

    template: Obj
    hub_settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        header = [
            "# NotebookTemplate made by `python -m async_kubespawner.operator.migrate` from the",
            "# hub's c.KubeSpawner settings. Apply it with kubectl apply -f, and set on the hub:",
            '#   c.JupyterHub.spawner_class = "async-kubernetes-operator"',
        ]
        for key, value in self.hub_settings.items():
            header.append(f"#   c.OperatorSpawner.{key} = {value!r}")
        header += [f"# {note}" for note in self.notes]
        body = yaml.safe_dump(self.template, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=100)
        return "\n".join(header) + "\n" + body


def hub_settings_for(spawner: Any, template_name: str, namespace: str | None) -> dict[str, Any]:
    """``c.OperatorSpawner`` settings under which the hub's Secret carries the same
    environment the in-hub pod had (the singleuser server reads its bind address from
    ``JUPYTERHUB_SERVICE_URL``, made of ``ip`` and ``port``)."""
    settings: dict[str, Any] = {"template": template_name}
    if namespace is not None:
        settings["namespace"] = namespace
    settings["ip"] = spawner.ip
    settings["port"] = spawner.port
    settings["env_keep"] = list(spawner.env_keep)
    settings["start_timeout"] = spawner.start_timeout
    settings["http_timeout"] = spawner.http_timeout
    return settings


def operator_env(config: Config, hub_settings: Mapping[str, Any], username: str,
                 servername: str, user_id: int) -> dict[str, str]:
    """What the hub puts in the server's Secret in operator mode, for one server."""
    from ..testing import build_spawner
    from .spawner import OperatorSpawner

    hub_config = copy.deepcopy(config)
    hub_config.OperatorSpawner = Config({
        k: v for k, v in hub_settings.items() if k not in ("template",)
    })
    spawner = build_spawner(OperatorSpawner, username, user_id, config=hub_config,
                            servername=servername, api_token=f"token-of-{username}")
    return {str(k): str(v) for k, v in spawner.get_env().items() if v is not None}


# -- templatizing ------------------------------------------------------------------------------


def _forms(fields: TemplateFields) -> list[tuple[str, str]]:
    """(probe value, placeholder) for every per-server form the operator has a built-in for."""
    pairs = [
        (fields.safe_user_server, "{server.slug}"),
        (fields.unescaped_username, "{user.name}"),
        (fields.user_label_value(), "{user.label}"),
        (fields.safe_username, "{user.slug}"),
        (fields.unescaped_servername, "{server.name}"),
        (fields.safe_servername, "{server.name.slug}"),
        (fields.server_label_value(), "{server.label}"),
        (str(fields.userid), "{user.id}"),  # the hub passes the id in the identity
    ]
    values = [v for v, _ in pairs]
    if len(set(values)) != len(values) or any(not v for v in values):
        raise AssertionError("probe forms are not distinct")  # a bug in the probe choice
    return sorted(pairs, key=lambda p: -len(p[0]))


#: Which setting a path of the built objects most likely comes from (for error messages).
_SETTING_HINTS = (
    ("pod metadata.name", "pod_name_template"),
    ("pod metadata.labels", "extra_labels"),
    ("pod metadata.annotations", "extra_annotations"),
    ("PVC metadata.name", "pvc_name_template"),
    ("PVC metadata.labels", "storage_extra_labels"),
    ("PVC metadata.annotations", "storage_extra_annotations"),
    ("PVC spec.selector", "storage_selector"),
    ("Service metadata.labels", "extra_labels"),
    ("Service metadata.annotations", "extra_annotations"),
    ("pod spec.volumes", "volumes"),
    ("pod spec.initContainers", "init_containers"),
    ("pod spec.serviceAccountName", "service_account"),
)


def _setting_hint(path: str) -> str:
    if ".env[" in path:
        return " (c.KubeSpawner.environment)"
    if "volumeMounts" in path:
        return " (c.KubeSpawner.volume_mounts)"
    for prefix, setting in _SETTING_HINTS:
        if path.startswith(prefix):
            return f" (c.KubeSpawner.{setting})"
    return ""


class _Templatizer:
    def __init__(self, forms: list[tuple[str, str]], references: Mapping[str, str]) -> None:
        self.forms = dict(forms)
        self.pattern = re.compile("|".join(re.escape(v) for v, _ in forms))
        self.references = references  # whole-string value -> cross-reference

    def string(self, text: str, path: str, *, references: bool = True) -> str:
        if references and text in self.references:
            return self.references[text]
        out: list[str] = []
        last = 0
        for match in self.pattern.finditer(text):
            out.append(self._literal(text[last:match.start()], path, before_placeholder=True))
            out.append(self.forms[match.group(0)])
            last = match.end()
        out.append(self._literal(text[last:], path, before_placeholder=False))
        return "".join(out)

    def _literal(self, text: str, path: str, *, before_placeholder: bool) -> str:
        lowered = text.lower()
        for marker in _MARKERS:
            if marker in lowered:
                raise BridgeRefused(
                    f"{path}{_setting_hint(path)} depends on the user or server in a form operator templates cannot "
                    f"express (seen as {text!r} for the probe user): templates know "
                    "{user.name}, {user.slug}, {user.label}, {user.id}, {server.name}, "
                    "{server.name.slug}, {server.slug}, {server.label} (the in-hub "
                    "{unescaped_username}, {safe_username}, the username label, {userid}, "
                    "{unescaped_servername}, {servername} of the 'safe' slug_scheme, "
                    "{user_server}, the servername label), not the legacy 'escape' slugs."
                )
        if placeholders(text) or _PLACEHOLDER_LIKE.search(text):
            raise BridgeRefused(
                f"{path} contains the literal text {text!r}, which a NotebookTemplate would read "
                "as a placeholder; templates have no escape for it. Change the value."
            )
        if before_placeholder and text.endswith("$"):
            raise BridgeRefused(
                f"{path}: '$' right before a per-user value would read as shell syntax "
                "(${...}) in a template. Change the value."
            )
        return text

    def tree(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, list):
            return [self.tree(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str):
                    self._literal(key, f"{path} (a key)", before_placeholder=False)
            return {k: self.tree(v, f"{path}.{k}") for k, v in value.items()}
        return value


def _entry(templatizer: _Templatizer, obj: Obj, entry_id: str, what: str) -> Obj:
    meta = obj.get("metadata") or {}
    entry: Obj = {"id": entry_id}
    entry["name"] = templatizer.string(meta["name"], f"{what} metadata.name", references=False)
    # The operator stamps its own managed-by value on every child.
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != LABEL_MANAGED_BY}
    if labels:
        entry["labels"] = templatizer.tree(labels, f"{what} metadata.labels")
    # The in-hub ownership record says "this hub's spawner owns it": on an operator's
    # child it would let an in-hub spawner or orphan sweep of the same hub claim, replace
    # or delete the object. In operator mode the ownerReference decides.
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != IDENTITY_ANNOTATION}
    if annotations:
        entry["annotations"] = templatizer.tree(annotations, f"{what} metadata.annotations")
    return entry


def _split_env(container: Obj, hub_env: Mapping[str, str], token_names: set[str]) -> Obj:
    """The container without the variables the hub's Secret supplies (and ``envFrom`` it)."""
    kept = []
    for item in container.get("env") or ():
        name = item.get("name")
        if name in token_names:
            continue  # the API token travels in the hub's Secret in operator mode
        if "value" in item and name in hub_env and hub_env[name] == item["value"]:
            continue
        kept.append(item)
    out = dict(container)
    if kept:
        out["env"] = kept
    else:
        out.pop("env", None)
    out["envFrom"] = [*(container.get("envFrom") or ()),
                      {"secretRef": {"name": "__SECRET__"}}]
    return out


async def convert(
    config: Config,
    *,
    name: str = "default",
    user_options: Mapping[str, Any] | None = None,
    verify: Iterable[tuple[str, str]] = VERIFY_IDENTITIES,
) -> Conversion:
    """The NotebookTemplate (and hub settings) equivalent to ``config``'s in-hub spawner.

    Raises :class:`BridgeRefused` with the reason when it cannot be exact.
    """
    from ..objects.manifests import API_TOKEN_ENV_NAMES

    check_expressible(config)
    try:
        probe = build_in_hub(config, PROBE_USER, PROBE_SERVER, PROBE_USER_ID, user_options)
        objects = await in_hub_objects(probe)
    except BridgeRefused:
        raise
    except Exception as e:  # a configuration the in-hub spawner itself refuses
        raise BridgeRefused(f"the in-hub spawner refuses this configuration: {e}") from e
    fields = TemplateFields.for_server(
        username=PROBE_USER, servername=PROBE_SERVER, userid=PROBE_USER_ID,
        hub_namespace=hub_namespace(),
    )
    explicit_namespace = config.get("KubeSpawner", {}).get("namespace")
    namespace = str(explicit_namespace) if explicit_namespace else None
    settings = hub_settings_for(probe, name, namespace)
    hub_env = operator_env(config, settings, PROBE_USER, PROBE_SERVER, PROBE_USER_ID)

    references: dict[str, str] = {}
    if "pvc" in objects:
        references[objects["pvc"]["metadata"]["name"]] = "{pvcs.home.name}"
    templatizer = _Templatizer(_forms(fields), references)

    pod = objects["pod"]
    pod_spec = copy.deepcopy(pod["spec"])
    containers = pod_spec.get("containers") or []
    if not containers:
        raise BridgeRefused("the in-hub pod has no container")
    containers[0] = _split_env(containers[0], hub_env, set(API_TOKEN_ENV_NAMES))
    pod_entry = _entry(templatizer, pod, "notebook", "pod")
    pod_entry["spec"] = templatizer.tree(pod_spec, "pod spec")
    containers = pod_entry["spec"]["containers"]
    for ref in containers[0]["envFrom"]:
        if ref.get("secretRef", {}).get("name") == "__SECRET__":
            ref["secretRef"]["name"] = "{secret.name}"

    spec: Obj = {
        "variables": [],
        "pvcRetention": {
            "whenStopped": "Retain",  # the in-hub spawner never deletes a PVC on stop
            "whenDeleted": "Delete" if probe.delete_pvc else "Retain",
        },
        "notebookPort": int(probe.port),
    }
    if "pvc" in objects:
        pvc = objects["pvc"]
        pvc_entry = _entry(templatizer, pvc, "home", "PVC")
        pvc_entry["spec"] = templatizer.tree(pvc["spec"], "PVC spec")
        spec["pvcs"] = [pvc_entry]
    if "service" in objects:
        service = objects["service"]
        service_entry = _entry(templatizer, service, "service", "Service")
        service_spec = templatizer.tree(service["spec"], "Service spec")
        selector = dict(service_spec.get("selector") or {})
        if LABEL_MANAGED_BY in selector:
            # The operator stamps its own managed-by label on every child; a selector
            # keeping the in-hub value would select no pod.
            selector[LABEL_MANAGED_BY] = MANAGED_BY
            service_spec["selector"] = selector
        service_entry = {
            "id": "service", "apiVersion": "v1", "kind": "Service",
            **{k: v for k, v in service_entry.items() if k != "id"},
            "spec": service_spec,
        }
        spec["otherResources"] = [service_entry]
    spec["pods"] = [pod_entry]
    metadata: Obj = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    template: Obj = {"apiVersion": API_VERSION, "kind": "NotebookTemplate",
                     "metadata": metadata, "spec": spec}
    try:
        parse_template_spec(template)
    except Exception as e:
        raise BridgeRefused(f"the converted template is not a valid NotebookTemplate: {e}") from e
    notes: list[str] = []
    if "pvc" in objects and probe.remember_pvc_name:
        # The in-hub spawner keeps a claim's name in the server's state; an operator renders
        # it from the template at every start (a stopped server's NotebookServer is gone).
        notes.append("remember_pvc_name: operator mode names each claim from the template at "
                     "every start; keep the PVC name unchanged (a new name would start servers "
                     "on new, empty claims; the old ones are retained, not reattached).")
    if config.get("KubeSpawner", {}).get("profile_list"):
        chosen = ", ".join(f"{k}={v}" for k, v in (user_options or {}).items()) or "the default"
        notes.append(f"profile_list: made for {chosen} profile; run again with --profile "
                     "for the others (one template each, chosen by the hub's profile_list).")
    conversion = Conversion(template, settings, notes)
    for username, servername in verify:
        await verify_identity(config, conversion, username, servername, user_options)
    return conversion


# -- verification ---------------------------------------------------------------------------------


def effective_env(container: Obj, secret_env: Mapping[str, str] | None) -> dict[str, Any]:
    """The environment a container gets: ``envFrom`` of the Secret, then ``env`` over it."""
    env: dict[str, Any] = {}
    if secret_env is not None:
        env.update({k: {"value": v} for k, v in secret_env.items()})
    for item in container.get("env") or ():
        env[item["name"]] = {k: v for k, v in item.items() if k != "name"}
    return env


def rendered_objects(conversion: Conversion, username: str, servername: str,
                     namespace: str, user_id: int | str = VERIFY_USER_ID) -> dict[str, Obj]:
    """The operator's objects for one server, as :func:`render` makes them (before the
    operator adds ownership labels and references)."""
    template = parse_template_spec(conversion.template)
    fields = TemplateFields.for_server(username=username, servername=servername, userid="",
                                       hub_namespace=namespace)
    object_name = f"jupyter-{fields.safe_user_server}"
    context = ServerContext(user=username, server=servername, namespace=namespace,
                            object_name=object_name, secret_name=f"{object_name}-env",
                            user_id=str(user_id))
    children: list[RenderedChild] = render(template, {}, context)
    out: dict[str, Obj] = {}
    for child in children:
        key = {"Pod": "pod", "PersistentVolumeClaim": "pvc", "Service": "service"}[child.kind]
        out[key] = child.manifest
    return out


def normalise_pair(in_hub: Obj, operator: Obj, kind: str, token_names: Iterable[str],
                   secret_env: Mapping[str, str] | None, secret_name: str) -> tuple[Obj, Obj]:
    """Both sides of one object with the documented differences of operator mode removed.

    * ownership: ownerReferences; the operator's own labels and annotations
      (``notebooks.async-kubespawner.io/*``) and its ``app.kubernetes.io/managed-by`` value
      (also in a Service's selector);
    * the operator's identity label ``hub.jupyter.org/servername`` on a PVC or a Service
      (in-hub only the pod has it);
    * the ``hub.jupyter.org/servername`` annotation of a default server: absent in-hub,
      empty in operator mode;
    * the in-hub ownership record (``hub.jupyter.org/async-kubespawner-owner``) and
      create-id annotations, which only the in-hub spawner reads;
    * the token and the hub's environment: in-hub in the container's ``env`` (the token
      inline or from the pod's Secret), in operator mode from the hub's Secret through
      ``envFrom``: both sides are compared as the effective environment, tokens as a
      marker;
    * what the API server fills in: uid, resourceVersion, timestamps, status, the node a
      pod was scheduled on, a Service's cluster IPs, a PVC's bound volume.
    """
    tokens = set(token_names)
    sides = []
    for obj, secret in ((in_hub, None), (operator, secret_env)):
        o = copy.deepcopy(obj)
        o.pop("status", None)
        meta = o.setdefault("metadata", {})
        for k in ("uid", "resourceVersion", "creationTimestamp", "ownerReferences",
                  "generation", "managedFields", "namespace", "finalizers", "selfLink"):
            meta.pop(k, None)
        for mapping_key in ("labels", "annotations"):
            mapping = meta.get(mapping_key) or {}
            for k in list(mapping):
                if k.startswith("notebooks.async-kubespawner.io/") or k == LABEL_MANAGED_BY:
                    del mapping[k]
                if k in ("hub.jupyter.org/async-kubespawner-create-id", IDENTITY_ANNOTATION):
                    del mapping[k]
            if mapping_key == "annotations" and mapping.get("hub.jupyter.org/servername") == "":
                del mapping["hub.jupyter.org/servername"]
            if not mapping:
                meta.pop(mapping_key, None)
        spec = o.get("spec") or {}
        if kind == "pod":
            spec.pop("nodeName", None)
            for container in spec.get("containers") or ():
                refs = container.pop("envFrom", None) or []
                from_secret = any((r.get("secretRef") or {}).get("name") == secret_name
                                  for r in refs)
                others = [r for r in refs if (r.get("secretRef") or {}).get("name") != secret_name]
                if others:
                    container["envFrom"] = others
                env = effective_env(container, secret if from_secret else None)
                for name in tokens & env.keys():
                    env[name] = "<token>"
                if env:
                    container["env"] = env
                else:
                    container.pop("env", None)
        if kind == "service":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            selector = spec.get("selector") or {}
            selector.pop(LABEL_MANAGED_BY, None)
        if kind == "pvc":
            spec.pop("volumeName", None)
        sides.append(o)
    in_hub_labels = sides[0]["metadata"].get("labels") or {}
    operator_labels = sides[1]["metadata"].get("labels") or {}
    if kind != "pod" and LABEL_SERVERNAME not in in_hub_labels:
        operator_labels.pop(LABEL_SERVERNAME, None)
        if not operator_labels:
            sides[1]["metadata"].pop("labels", None)
    return sides[0], sides[1]


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON trees first differ, in words (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a:
                return f"{path}.{key}: only in operator mode ({b[key]!r})"
            if key not in b:
                return f"{path}.{key}: only in-hub ({a[key]!r})"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items in-hub, {len(b)} in operator mode"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if a != b:
        return f"{path}: {a!r} in-hub, {b!r} in operator mode"
    return None


async def verify_identity(config: Config, conversion: Conversion, username: str,
                          servername: str, user_options: Mapping[str, Any] | None) -> None:
    """Refuse unless the template renders, for this server, what the in-hub spawner builds."""
    from ..objects.manifests import API_TOKEN_ENV_NAMES

    spawner = build_in_hub(config, username, servername, VERIFY_USER_ID, user_options)
    try:
        expected = await in_hub_objects(spawner)
    except Exception:
        return  # the in-hub spawner refuses this user itself (a name too long, say)
    namespace = spawner.namespace
    try:
        got = rendered_objects(conversion, username, servername, namespace)
    except TemplateInvalid as e:
        raise BridgeRefused(f"the converted template cannot be rendered: {e}") from e
    if expected.keys() != got.keys():
        raise BridgeRefused(f"for user {username!r} server {servername!r} the in-hub spawner "
                            f"makes {sorted(expected)}, the template {sorted(got)}")
    secret_env = operator_env(config, conversion.hub_settings, username, servername,
                              VERIFY_USER_ID)
    secret_name = ServerContextNames.secret(username, servername, namespace)
    for kind in expected:
        a, b = normalise_pair(expected[kind], got[kind], kind, API_TOKEN_ENV_NAMES,
                              secret_env, secret_name)
        where = first_difference(a, b)
        if where is not None:
            raise BridgeRefused(
                f"the template would not reproduce the in-hub {kind} for user {username!r}, "
                f"server {servername!r}: {kind}{where}"
            )


class ServerContextNames:
    """Names the hub side gives a server's objects in operator mode."""

    @staticmethod
    def object(username: str, servername: str, namespace: str) -> str:
        fields = TemplateFields.for_server(username=username, servername=servername,
                                           userid="", hub_namespace=namespace)
        return f"jupyter-{fields.safe_user_server}"

    @staticmethod
    def secret(username: str, servername: str, namespace: str) -> str:
        return f"{ServerContextNames.object(username, servername, namespace)}-env"


# -- adopting the in-hub volumes -----------------------------------------------------------------


def adoption_patch(config: Config, username: str, servername: str = "") -> tuple[str, str, Obj]:
    """(namespace, PVC name, merge patch) marking an in-hub server's PVC as that server's
    in operator mode, so that its next start adopts the claim instead of refusing it.

    The operator adopts an existing PVC only when it is managed by it and names the same
    NotebookServer, user and server (its rule for volumes it retained itself); this patch
    writes exactly those labels and annotations, plus the retention the converted
    template records on the claims it creates.
    """
    from ..objects.slugs import safe_label_value
    from .models import (
        ANNOTATION_DELETE_WITH_SERVER,
        LABEL_SERVER,
        LABEL_USER,
    )
    from .reconciler import ANNOTATION_SERVER, ANNOTATION_USER, ANNOTATION_WHEN_STOPPED

    check_expressible(config)
    spawner = build_in_hub(config, username, servername, 0)
    if not spawner.storage_pvc_ensure:
        raise BridgeRefused("this configuration creates no PVC (storage_pvc_ensure is off)")
    object_name = ServerContextNames.object(username, servername, spawner.namespace)
    patch: Obj = {"metadata": {
        "labels": {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_SERVER: object_name,
            LABEL_USER: safe_label_value(username),
            LABEL_SERVERNAME: safe_label_value(servername),
        },
        "annotations": {
            ANNOTATION_USER: username,
            ANNOTATION_SERVER: servername,
            ANNOTATION_WHEN_STOPPED: "Retain",
            ANNOTATION_DELETE_WITH_SERVER: "true" if spawner.delete_pvc else "false",
        },
    }}
    return spawner.namespace, spawner.pvc_name, patch


# -- command line --------------------------------------------------------------------------------


def _options(profile: str | None, option_args: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if profile:
        options["profile"] = profile
    for item in option_args:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BridgeRefused(f"--option {item!r}: expected NAME=CHOICE")
        options[key] = value
    return options


def main(argv: Sequence[str] | None = None, out: Callable[[str], Any] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m async_kubespawner.operator.migrate",
        description="Turn a hub's c.KubeSpawner configuration into a NotebookTemplate.",
    )
    parser.add_argument("--config", required=True, help="the hub's jupyterhub_config.py")
    parser.add_argument("--name", default="default", help="the template's name")
    parser.add_argument("--profile", help="profile_list slug to convert (default: the default)")
    parser.add_argument("--option", action="append", default=[],
                        help="a profile option's choice, NAME=CHOICE (repeatable)")
    parser.add_argument("--user", action="append", default=[],
                        help="also check the template for this user name (repeatable)")
    parser.add_argument("-o", "--output", help="write the YAML here (default: stdout)")
    parser.add_argument("--adopt-pvc", metavar="USER",
                        help="print the kubectl patch that lets operator mode adopt this "
                        "user's in-hub PVC (instead of converting)")
    parser.add_argument("--server", default="", help="the server name, with --adopt-pvc")
    args = parser.parse_args(argv)
    write = out or sys.stdout.write
    try:
        config = load_hub_config(args.config)
        if args.adopt_pvc is not None:
            namespace, pvc, patch = adoption_patch(config, args.adopt_pvc, args.server)
            write(f"kubectl patch pvc {shlex.quote(pvc)} -n {shlex.quote(namespace)} "
                  f"--type merge -p {shlex.quote(json.dumps(patch))}\n")
            return 0
        options = _options(args.profile, args.option)
        identities = [*VERIFY_IDENTITIES, *((u, "") for u in args.user)]
        conversion = asyncio.run(convert(config, name=args.name, user_options=options,
                                         verify=identities))
    except BridgeRefused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = conversion.yaml()
    if args.output:
        Path(args.output).write_text(text)
    else:
        write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
