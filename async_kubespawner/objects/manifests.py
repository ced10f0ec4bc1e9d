"""Pure builders: plain, fully resolved settings in, ``kubernetes_asyncio`` models out.

Nothing here does I/O, reads a trait or knows about a spawner: every template is
already expanded and every callable already called by the time a ``*Settings``
dataclass is filled in (``KubeSpawnerSettings.get_pod_manifest`` does that). So a
test can build a pod from a dataclass and assert on it directly, and the lifecycle
can rebuild the same objects from the same inputs.

The layout of the objects follows upstream KubeSpawner's, because hub operators'
``modify_pod_hook`` functions, network policies and dashboards rely on it: the
notebook container is called ``notebook`` with a port ``notebook-port``, the pod
restarts ``OnFailure``, and the service-account token is only mounted when a
service account is named (or explicitly asked for).

User-supplied fragments (volumes, tolerations, extra containers ...) are converted
into real model objects by ``to_model``, which accepts camelCase or snake_case keys
and rejects unknown ones, so a typo is reported with its path instead of being
silently dropped by the API server.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kubernetes_asyncio.client as k8s

#: A ``kubernetes_asyncio`` model class (``V1Pod`` ...): generated, untyped, and read here
#: through its ``attribute_map`` / ``openapi_types`` class attributes.
ModelClass = type[Any]

NOTEBOOK_CONTAINER_NAME = "notebook"
NOTEBOOK_PORT_NAME = "notebook-port"
INTERNAL_CERTS_VOLUME = "jupyterhub-internal-certs"
API_TOKEN_SECRET_KEY = "jupyterhub-api-token"
API_TOKEN_ENV_NAMES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
LEGACY_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
SECURITY_PROFILES = ("", "baseline", "restricted")


class ManifestError(ValueError):
    """A user-supplied fragment that does not describe a valid Kubernetes object.

    ``path`` is where in the configuration the problem is (``volumes[0].hostPath``) and
    ``setting`` the setting that path starts with (``volumes``), so callers can name the
    setting without parsing the message.
    """

    def __init__(self, message: str, *, path: str = "", setting: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.setting = setting or setting_of(path)


def setting_of(path: str) -> str:
    """The setting a configuration path starts with: ``volumes[0].name`` -> ``volumes``."""
    return re.split(r"[\[.:]", path, maxsplit=1)[0] if path else ""


# ---------------------------------------------------------------------------
# dict <-> model conversion
# ---------------------------------------------------------------------------

_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


def _model_class(name: str) -> type:
    try:
        return getattr(k8s, name)
    except AttributeError as exc:  # pragma: no cover - only if the client changes
        raise ManifestError(f"unknown Kubernetes model {name}") from exc


def convert_value(type_name: str, value: Any, where: str) -> Any:
    """``value`` as the model field type ``type_name`` (an ``openapi_types`` entry)
    expects it; ManifestError naming ``where`` if it cannot be."""
    if value is None:
        return None
    if type_name.startswith("list["):
        if not isinstance(value, list | tuple):
            raise ManifestError(f"{where}: expected a list, got {type(value).__name__}", path=where)
        inner = type_name[5:-1]
        return [convert_value(inner, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if type_name.startswith("dict("):
        if not isinstance(value, Mapping):
            raise ManifestError(
                f"{where}: expected a mapping, got {type(value).__name__}", path=where
            )
        inner = type_name[5:-1].split(", ", 1)[1]
        if inner == "str":
            # Quantity maps (requests, limits, capacity) are typed dict(str, str) in the
            # models, but the API also takes plain JSON numbers there.
            inner = "quantity"
        return {str(k): convert_value(inner, v, f"{where}.{k}") for k, v in value.items()}
    if type_name in _PRIMITIVES:
        expected = _PRIMITIVES[type_name]
        if type_name != "bool" and isinstance(value, bool):
            raise ManifestError(
                f"{where}: expected {type_name}, got a boolean {value!r}", path=where
            )
        if not isinstance(value, expected):
            raise ManifestError(
                f"{where}: expected {type_name}, got {type(value).__name__}", path=where
            )
        return value
    if type_name == "quantity":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ManifestError(
                f"{where}: expected a string, got {type(value).__name__}", path=where
            )
        return value
    if type_name in ("object", "datetime", "date"):
        return value
    return to_model(_model_class(type_name), value, where)


def attribute_for_key(model: ModelClass, key: str) -> str | None:
    """The model attribute for a camelCase (API) or snake_case (Python) key."""
    if key in model.attribute_map:
        return key
    for attribute, json_key in model.attribute_map.items():
        if json_key == key:
            return attribute
    return None


def to_model(model: ModelClass, value: Any, where: str = "value") -> Any:
    """Turn a dict (camelCase or snake_case keys, at any depth) into ``model``.

    An unknown key, a wrong type or a missing required field raises ManifestError
    naming the path (``where``) of the offending part.
    """
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        # The type is enough, and the value may be (or hold) an env value: credentials.
        raise ManifestError(
            f"{where}: expected a mapping describing a {model.__name__[2:] or model.__name__}, "
            f"got {type(value).__name__}",
            path=where,
        )
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        attribute = _known_attribute(model, key, where)
        kwargs[attribute] = convert_value(model.openapi_types[attribute], item, f"{where}.{key}")
    try:
        return model(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{where}: {exc}", path=where) from exc


def _known_attribute(model: ModelClass, key: Any, where: str) -> str:
    """The model's attribute for ``key`` (camelCase or snake_case), or a ManifestError that
    lists the fields the model does have: a typo must not be dropped silently."""
    attribute = attribute_for_key(model, str(key))
    if attribute is None:
        known = ", ".join(sorted(model.attribute_map.values()))
        raise ManifestError(
            f"{where}: unknown field {key!r} for a {model.__name__}; known fields: {known}",
            path=f"{where}.{key}",
        )
    return attribute


def update_model(target: Any, changes: Mapping[str, Any], where: str) -> Any:
    """Set the fields in ``changes`` (camelCase or snake_case) on an existing model:
    how ``extra_container_config`` and ``extra_pod_config`` are merged."""
    model = type(target)
    for key, item in changes.items():
        attribute = _known_attribute(model, key, where)
        converted = convert_value(model.openapi_types[attribute], item, f"{where}.{key}")
        setattr(target, attribute, _plain(converted))
    return target


def _has_model(value: Any) -> bool:
    if hasattr(value, "openapi_types"):
        return True
    if isinstance(value, list | tuple):
        return any(_has_model(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_model(v) for v in value.values())
    return False


def _plain(value: Any) -> Any:
    """Nested models as the API's JSON dicts; anything else unchanged."""
    return to_dict(value) if _has_model(value) else value


def plain_dict(model: ModelClass, value: Any, where: str = "value") -> dict[str, Any]:
    """``value`` validated as ``model`` and returned as the API's JSON dict, where
    upstream keeps a plain dict (security contexts, the PVC's selector)."""
    return to_dict(to_model(model, value, where))


def shallow_model(model: ModelClass, value: Any, where: str = "value") -> Any:
    """``value`` as ``model`` converted at its top level only, nested fields as plain
    dicts and lists in the API's camelCase spelling.

    Upstream KubeSpawner converts a configured dict (a volume, a container, a toleration)
    into its model but leaves what is inside it as the dicts it was given, and hooks rely
    on that (``pod.spec.volumes[0].persistent_volume_claim["claimName"]``). Every level is
    still validated (by converting it fully first), and the JSON sent is the same as for
    a fully converted model: nested keys are normalised to camelCase and unset fields
    dropped, as the full conversion did.
    """
    full = to_model(model, value, where)
    for attribute in getattr(model, "openapi_types"):  # noqa: B009 (a generated model)
        item = getattr(full, attribute)
        if item is not None and _has_model(item):
            setattr(full, attribute, to_dict(item))
    return full


def to_dict(value: Any) -> Any:
    """A model as the API server's JSON shape (camelCase, ``None`` fields dropped).

    The same result ``ApiClient.sanitize_for_serialization`` gives, without needing a
    client, so tests and the checks in the settings can look at a manifest.
    """
    if value is None:
        return None
    # Exact types first: a pod is ~100 nodes, and the generic checks below (an ABC's
    # isinstance above all) cost more than the conversion itself.
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float:
        return value
    if kind is dict:
        return {k: to_dict(v) for k, v in value.items()}
    if kind is list:
        return [to_dict(item) for item in value]
    if kind in _MODEL_CLASSES:
        return _model_to_dict(value)
    if isinstance(value, list | tuple):
        return [to_dict(item) for item in value]
    if isinstance(value, Mapping):
        return {k: to_dict(v) for k, v in value.items()}
    if hasattr(value, "openapi_types") and hasattr(value, "attribute_map"):
        if hasattr(kind, "openapi_types") and hasattr(kind, "attribute_map"):
            _MODEL_CLASSES.add(kind)  # a generated model class: straight here next time
        return _model_to_dict(value)
    return value


#: Classes seen to be models (their field tables are class attributes, as generated).
_MODEL_CLASSES: set[type] = set()


def _model_to_dict(value: Any) -> dict[str, Any]:
    kind = type(value)
    table = _FIELD_TABLES.get(kind)
    if table is None:
        table = _FIELD_TABLES[kind] = _field_table(kind)
    result = {}
    if table:
        # A generated model keeps each field as ``_<attribute>``, which its property
        # returns as is: read straight from the instance (a pod has ~30 models, each
        # with a dozen fields, most of them unset).
        fields = value.__dict__
        for attribute, private, json_key in table:
            item = fields.get(private, _UNSET)
            if item is _UNSET:
                item = getattr(value, attribute)
            if item is not None:
                result[json_key] = to_dict(item)
        return result
    for attribute, json_key in value.attribute_map.items():
        item = getattr(value, attribute)
        if item is not None:
            result[json_key] = to_dict(item)
    return result


_UNSET = object()
_GENERATED_MODULE = "kubernetes_asyncio.client.models."
#: Per model class: ``(attribute, private attribute, JSON key)`` for the generated
#: classes themselves, empty for any other (a subclass may compute a field).
_FIELD_TABLES: dict[type, tuple[tuple[str, str, str], ...]] = {}


def _field_table(kind: type) -> tuple[tuple[str, str, str], ...]:
    if not kind.__module__.startswith(_GENERATED_MODULE):
        return ()
    table = []
    for attribute, json_key in kind.attribute_map.items():  # type: ignore[attr-defined]
        prop = kind.__dict__.get(attribute)
        if not isinstance(prop, property):
            return ()
        table.append((attribute, f"_{attribute}", json_key))
    return tuple(table)


def ordered_items(value: list | Mapping | None) -> list:
    """Settings typed ``Union[List, Dict]`` give a list as is, or a dict's values in
    key order, so that layered configuration (z2jh) can override entries by key."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value[k] for k in sorted(value)]
    return list(value)


# ---------------------------------------------------------------------------
# Environment ordering
# ---------------------------------------------------------------------------

# Kubernetes expands "$(NAME)" in env values from variables listed *earlier*.
_ENV_REFERENCE = re.compile(r"\$\(([^)]+)\)")


def _env_references(name: str, value: Any) -> set[str]:
    # Most values refer to nothing: no search (the hub's own ~20 variables, every spawn).
    if isinstance(value, str) and "$(" in value:
        return set(_ENV_REFERENCE.findall(value)) - {name}
    return set()


def order_env(env: Mapping[str, Any]) -> list[str]:
    """Names in an order where every ``$(VAR)`` refers to a variable defined earlier.

    The order is upstream KubeSpawner's, so the same configuration gives the same
    pod: in rounds, every variable whose references are all placed already is
    placed, alphabetically within the round; what can never be satisfied (a cycle,
    or a reference to a variable that is not set) comes last, alphabetically.
    """
    pending = {name: _env_references(name, value) for name, value in env.items()}
    if not any(pending.values()):
        return sorted(pending)  # nothing refers to anything: one round, alphabetical
    placed: list[str] = []
    placed_set: set[str] = set()
    while pending:
        ready = sorted(name for name, refs in pending.items() if refs <= placed_set)
        if not ready:
            placed.extend(sorted(pending))
            break
        placed.extend(ready)
        placed_set.update(ready)
        for name in ready:
            del pending[name]
    return placed


def build_env(env: Mapping[str, Any], where: str = "environment") -> list[k8s.V1EnvVar]:
    """V1EnvVar list from a dict whose values are strings or EnvVar-shaped dicts
    (``{"valueFrom": {...}}``), ordered so that ``$(VAR)`` references resolve."""
    result = []
    for name in order_env(env):
        value = env[name]
        if type(value) is str:  # nearly every value: no ABC check (twenty per spawn)
            result.append(k8s.V1EnvVar(name=name, value=value))
        elif isinstance(value, Mapping):
            spec = dict(value)
            spec.setdefault("name", name)
            result.append(shallow_model(k8s.V1EnvVar, spec, f"{where}[{name!r}]"))
        else:
            result.append(
                k8s.V1EnvVar(name=name, value=value if isinstance(value, str) else str(value))
            )
    return result


# ---------------------------------------------------------------------------
# Pod
# ---------------------------------------------------------------------------


@dataclass
class PodSettings:
    """Everything that decides the pod, resolved: no templates, no callables."""

    name: str
    image: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    port: int = 8888
    args: list[str] | None = None
    env: dict[str, Any] = field(default_factory=dict)
    working_dir: str | None = None
    image_pull_policy: str | None = None
    image_pull_secrets: list[str | Mapping] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    uid: int | None = None
    gid: int | None = None
    fs_gid: int | None = None
    supplemental_gids: list[int] = field(default_factory=list)
    privileged: bool = False
    allow_privilege_escalation: bool | None = False
    container_security_context: dict[str, Any] = field(default_factory=dict)
    pod_security_context: dict[str, Any] = field(default_factory=dict)
    security_profile: str = ""
    cpu_limit: float | None = None
    cpu_guarantee: float | None = None
    mem_limit: int | str | None = None
    mem_guarantee: int | str | None = None
    extra_resource_limits: dict[str, Any] = field(default_factory=dict)
    extra_resource_guarantees: dict[str, Any] = field(default_factory=dict)
    volumes: list[Any] = field(default_factory=list)
    volume_mounts: list[Any] = field(default_factory=list)
    lifecycle_hooks: dict[str, Any] = field(default_factory=dict)
    init_containers: list[Any] = field(default_factory=list)
    extra_containers: list[Any] = field(default_factory=list)
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    tolerations: list[Any] = field(default_factory=list)
    node_affinity_preferred: list[Any] = field(default_factory=list)
    node_affinity_required: list[Any] = field(default_factory=list)
    pod_affinity_preferred: list[Any] = field(default_factory=list)
    pod_affinity_required: list[Any] = field(default_factory=list)
    pod_anti_affinity_preferred: list[Any] = field(default_factory=list)
    pod_anti_affinity_required: list[Any] = field(default_factory=list)
    priority_class_name: str = ""
    scheduler_name: str | None = None
    extra_container_config: dict[str, Any] = field(default_factory=dict)
    extra_pod_config: dict[str, Any] = field(default_factory=dict)
    # Internal SSL: the Secret holding the certificates and where they are mounted.
    ssl_secret_name: str | None = None
    ssl_secret_mount_path: str = "/etc/jupyterhub/ssl/"


INTERNAL_SSL_FILES = {
    "JUPYTERHUB_SSL_KEYFILE": "ssl.key",
    "JUPYTERHUB_SSL_CERTFILE": "ssl.crt",
    "JUPYTERHUB_SSL_CLIENT_CA": "notebooks-ca_trust.crt",
}


def internal_ssl_env(mount_path: str) -> dict[str, str]:
    """Where the single-user server finds its internal-SSL files in the pod."""
    base = mount_path.rstrip("/") + "/"
    return {name: base + file for name, file in INTERNAL_SSL_FILES.items()}


def restricted_container_context() -> dict[str, Any]:
    """What the "restricted" Pod Security Standard requires of every container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security_context(s: PodSettings) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if s.uid is not None:
        context["runAsUser"] = int(s.uid)
    if s.gid is not None:
        context["runAsGroup"] = int(s.gid)
    if s.privileged:
        context["privileged"] = True
    if s.allow_privilege_escalation is not None:
        context["allowPrivilegeEscalation"] = s.allow_privilege_escalation
    context.update(s.container_security_context)
    if s.security_profile == "restricted":
        context = _with_restrictions(context)
    return context


def _with_restrictions(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` with the restricted profile's fields forced, keeping the
    capabilities it adds (the settings allow only NET_BIND_SERVICE there)."""
    merged = {**context, **restricted_container_context()}
    added = (context.get("capabilities") or {}).get("add")
    if added:
        merged["capabilities"] = {"add": list(added), "drop": ["ALL"]}
    return merged


def _pod_security_context(s: PodSettings) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if s.fs_gid is not None:
        context["fsGroup"] = int(s.fs_gid)
    if s.supplemental_gids:
        context["supplementalGroups"] = [int(g) for g in s.supplemental_gids]
    context.update(s.pod_security_context)
    if s.security_profile == "restricted":
        context.update(restricted_pod_context())
    return context


def _resources(s: PodSettings) -> k8s.V1ResourceRequirements:
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if s.cpu_guarantee:
        requests["cpu"] = s.cpu_guarantee
    if s.mem_guarantee:
        requests["memory"] = s.mem_guarantee
    requests.update(s.extra_resource_guarantees)
    if s.cpu_limit:
        limits["cpu"] = s.cpu_limit
    if s.mem_limit:
        limits["memory"] = s.mem_limit
    limits.update(s.extra_resource_limits)
    return k8s.V1ResourceRequirements(requests=requests, limits=limits)


def _models(model: ModelClass, terms: list[Any], setting: str) -> list[Any] | None:
    """Each term of ``setting`` as ``model`` (errors name the term), None if there are none."""
    return [shallow_model(model, t, f"{setting}[{i}]") for i, t in enumerate(terms)] or None


def _pod_affinity(kind: type, required: list[Any], preferred: list[Any], setting: str) -> Any:
    """Pod affinity or anti-affinity (the same term types; ``setting`` names the
    ``<setting>_required`` / ``<setting>_preferred`` pair in errors), None if unset."""
    if not (required or preferred):
        return None
    return kind(
        required_during_scheduling_ignored_during_execution=_models(
            k8s.V1PodAffinityTerm, required, f"{setting}_required"
        ),
        preferred_during_scheduling_ignored_during_execution=_models(
            k8s.V1WeightedPodAffinityTerm, preferred, f"{setting}_preferred"
        ),
    )


def _affinity(s: PodSettings) -> k8s.V1Affinity | None:
    node = None
    if s.node_affinity_required or s.node_affinity_preferred:
        required = _models(
            k8s.V1NodeSelectorTerm, s.node_affinity_required, "node_affinity_required"
        )
        node = k8s.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=(
                k8s.V1NodeSelector(node_selector_terms=required) if required else None
            ),
            preferred_during_scheduling_ignored_during_execution=_models(
                k8s.V1PreferredSchedulingTerm, s.node_affinity_preferred, "node_affinity_preferred"
            ),
        )
    pod = _pod_affinity(
        k8s.V1PodAffinity, s.pod_affinity_required, s.pod_affinity_preferred, "pod_affinity"
    )
    anti = _pod_affinity(
        k8s.V1PodAntiAffinity,
        s.pod_anti_affinity_required,
        s.pod_anti_affinity_preferred,
        "pod_anti_affinity",
    )
    if node is None and pod is None and anti is None:
        return None
    return k8s.V1Affinity(node_affinity=node, pod_affinity=pod, pod_anti_affinity=anti)


def _image_pull_secret(item: str | Mapping, where: str) -> k8s.V1LocalObjectReference:
    if isinstance(item, str):
        return k8s.V1LocalObjectReference(name=item)
    return shallow_model(k8s.V1LocalObjectReference, item, where)


def _restrict_container(container: k8s.V1Container) -> None:
    """Force the restricted profile onto a sidecar or init container; its other
    fields (runAsUser ...) are kept."""
    current = to_dict(container.security_context) or {}
    container.security_context = plain_dict(  # type: ignore[assignment]  # a dict, as upstream
        k8s.V1SecurityContext, _with_restrictions(current), "securityContext"
    )


def build_pod_manifest(s: PodSettings) -> k8s.V1Pod:
    """The user's pod: the notebook container, sidecars, volumes and scheduling."""
    volumes = [shallow_model(k8s.V1Volume, v, f"volumes[{i}]") for i, v in enumerate(s.volumes)]
    mounts = [
        shallow_model(k8s.V1VolumeMount, m, f"volume_mounts[{i}]")
        for i, m in enumerate(s.volume_mounts)
    ]
    env = dict(s.env)
    if s.ssl_secret_name:
        env.update(internal_ssl_env(s.ssl_secret_mount_path))
        volumes.append(
            k8s.V1Volume(
                name=INTERNAL_CERTS_VOLUME,
                secret=k8s.V1SecretVolumeSource(secret_name=s.ssl_secret_name, default_mode=511),
            )
        )
        mounts.append(
            k8s.V1VolumeMount(name=INTERNAL_CERTS_VOLUME, mount_path=s.ssl_secret_mount_path)
        )

    notebook = k8s.V1Container(
        name=NOTEBOOK_CONTAINER_NAME,
        image=s.image,
        working_dir=s.working_dir,
        ports=[k8s.V1ContainerPort(name=NOTEBOOK_PORT_NAME, container_port=s.port)],
        args=list(s.args) if s.args is not None else None,
        env=build_env(env),
        image_pull_policy=s.image_pull_policy,
        lifecycle=(
            shallow_model(k8s.V1Lifecycle, s.lifecycle_hooks, "lifecycle_hooks")
            if s.lifecycle_hooks
            else None
        ),
        resources=_resources(s),
        volume_mounts=mounts,
    )
    container_context = _container_security_context(s)
    if container_context:
        notebook.security_context = plain_dict(  # type: ignore[assignment]  # a dict, as upstream
            k8s.V1SecurityContext, container_context, "container_security_context"
        )
    if s.extra_container_config:
        update_model(notebook, s.extra_container_config, "extra_container_config")

    extra_containers = [
        shallow_model(k8s.V1Container, c, f"extra_containers[{i}]")
        for i, c in enumerate(s.extra_containers)
    ]
    init_containers = [
        shallow_model(k8s.V1Container, c, f"init_containers[{i}]")
        for i, c in enumerate(s.init_containers)
    ]
    if s.security_profile == "restricted":
        for container in (*extra_containers, *init_containers):
            _restrict_container(container)

    spec = k8s.V1PodSpec(
        containers=[notebook, *extra_containers],
        init_containers=init_containers or None,
        volumes=volumes,
        restart_policy="OnFailure",
        node_selector=dict(s.node_selector) or None,
        image_pull_secrets=[
            _image_pull_secret(p, f"image_pull_secrets[{i}]")
            for i, p in enumerate(s.image_pull_secrets)
        ]
        or None,
        tolerations=[
            shallow_model(k8s.V1Toleration, t, f"tolerations[{i}]")
            for i, t in enumerate(s.tolerations)
        ]
        or None,
        affinity=_affinity(s),
        priority_class_name=s.priority_class_name or None,
        scheduler_name=s.scheduler_name or None,
    )
    pod_context = _pod_security_context(s)
    if pod_context:
        spec.security_context = plain_dict(  # type: ignore[assignment]  # a dict, as upstream
            k8s.V1PodSecurityContext, pod_context, "pod_security_context"
        )
    if s.service_account is not None:
        spec.service_account_name = s.service_account
    if s.automount_service_account_token is None:
        # No service account named: nothing in the pod needs the API, so don't hand
        # the namespace's default token to user code.
        if s.service_account is None:
            spec.automount_service_account_token = False
    else:
        spec.automount_service_account_token = s.automount_service_account_token
    if s.extra_pod_config:
        update_model(spec, s.extra_pod_config, "extra_pod_config")

    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=s.name, labels=dict(s.labels), annotations=dict(s.annotations)
        ),
        spec=spec,
    )


# ---------------------------------------------------------------------------
# PVC, Service, Secret, Namespace
# ---------------------------------------------------------------------------


@dataclass
class PVCSettings:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    storage: str | None = None
    storage_class: str | None = None
    access_modes: list[str] = field(default_factory=lambda: ["ReadWriteOnce"])
    selector: dict[str, Any] = field(default_factory=dict)


def build_pvc_manifest(s: PVCSettings) -> k8s.V1PersistentVolumeClaim:
    """The user's claim; ``storage_class`` is also written to the beta annotation
    that clusters older than the ``storageClassName`` field still read."""
    annotations = dict(s.annotations)
    spec = k8s.V1PersistentVolumeClaimSpec(
        access_modes=list(s.access_modes),
        resources=k8s.V1VolumeResourceRequirements(
            requests={"storage": s.storage} if s.storage is not None else {}
        ),
    )
    if s.storage_class is not None:
        annotations[LEGACY_STORAGE_CLASS_ANNOTATION] = s.storage_class
        spec.storage_class_name = s.storage_class
    if s.selector:
        spec.selector = plain_dict(k8s.V1LabelSelector, s.selector, "storage_selector")  # type: ignore[assignment]  # a dict, as upstream
    return k8s.V1PersistentVolumeClaim(
        api_version="v1",
        kind="PersistentVolumeClaim",
        metadata=k8s.V1ObjectMeta(name=s.name, labels=dict(s.labels), annotations=annotations),
        spec=spec,
    )


def _owned_metadata(s: ServiceSettings | SecretSettings) -> k8s.V1ObjectMeta:
    """Metadata of an object owned by the pod (its Service, its Secret): deleting the
    pod lets the garbage collector delete it too."""
    return k8s.V1ObjectMeta(
        name=s.name,
        labels=dict(s.labels),
        annotations=dict(s.annotations),
        owner_references=[
            to_model(k8s.V1OwnerReference, o, "owner_reference") for o in s.owner_references
        ],
    )


@dataclass
class ServiceSettings:
    name: str
    port: int
    selector: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    owner_references: list[Any] = field(default_factory=list)


def build_service_manifest(s: ServiceSettings) -> k8s.V1Service:
    """A ClusterIP Service in front of one pod (``services_enabled``)."""
    return k8s.V1Service(
        api_version="v1",
        kind="Service",
        metadata=_owned_metadata(s),
        spec=k8s.V1ServiceSpec(
            type="ClusterIP",
            # Named "http" as upstream names it: service meshes (Istio) pick the
            # protocol from the port name.
            ports=[k8s.V1ServicePort(name="http", port=s.port, target_port=s.port)],
            selector=dict(s.selector),
        ),
    )


@dataclass
class SecretSettings:
    """The per-pod Secret: internal-SSL files and/or the hub API token.

    ``files`` maps the key in the Secret to the file's content (``ssl.key``,
    ``ssl.crt``, ``notebooks-ca_trust.crt``).
    """

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    owner_references: list[Any] = field(default_factory=list)
    files: dict[str, str | bytes] = field(default_factory=dict)
    api_token: str | None = None


def _b64(content: str | bytes) -> str:
    raw = content.encode("utf-8") if isinstance(content, str) else content
    return base64.b64encode(raw).decode("ascii")


def build_secret_manifest(s: SecretSettings) -> k8s.V1Secret:
    data = {key: _b64(content) for key, content in s.files.items()}
    if s.api_token is not None:
        data[API_TOKEN_SECRET_KEY] = _b64(s.api_token)
    return k8s.V1Secret(
        api_version="v1",
        kind="Secret",
        type="Opaque",
        metadata=_owned_metadata(s),
        data=data,
    )


def api_token_env(secret_name: str) -> dict[str, Any]:
    """The env entries that read the hub API token from the pod's Secret instead of
    carrying it in the pod spec, where anyone allowed to read pods could see it."""
    reference = {"valueFrom": {"secretKeyRef": {"name": secret_name, "key": API_TOKEN_SECRET_KEY}}}
    return {name: dict(reference) for name in API_TOKEN_ENV_NAMES}


@dataclass
class NamespaceSettings:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def build_namespace_manifest(s: NamespaceSettings) -> k8s.V1Namespace:
    return k8s.V1Namespace(
        api_version="v1",
        kind="Namespace",
        metadata=k8s.V1ObjectMeta(
            name=s.name, labels=dict(s.labels), annotations=dict(s.annotations)
        ),
    )
