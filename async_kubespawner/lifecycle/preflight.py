"""Checks that run before ``start()`` creates anything: the final objects, as sent.

``start()`` creates a namespace (with user namespaces), then the PVC, then the pod. A pod
that the API server refuses, or that breaks the configured Pod Security Standard, must be
refused *before* the first of those, or the user is left with a PVC (or namespace) and a
terse 422. So :func:`check_before_create` builds the pod exactly as it will be sent (every
profile override, callable, template, merge and ``modify_pod_hook`` applied), checks it
against ``security_profile`` (:mod:`.objects.pod_security`) and against the API server's
own field rules (:mod:`.objects.api_rules`), checks the PVC, namespace and Service the
same way, and asks the API server whether the pod's service account exists. The checked
pod is the one created afterwards (:func:`take_checked_pod`), so ``modify_pod_hook`` runs
once per start, as always.

Errors are ``SpawnerConfigError`` naming the setting the offending field most likely
comes from, the field, the rule it breaks and the fix; env values are never shown.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson

from ..kube.client import NAMESPACES, KubeApi, ResourceKind
from ..kube.errors import Forbidden, Unauthorized
from ..objects.api_rules import (
    FieldError,
    namespace_errors,
    pod_errors,
    pvc_errors,
    service_errors,
)
from ..objects.manifests import NOTEBOOK_CONTAINER_NAME, attribute_for_key, to_dict
from ..objects.pod_security import check_pod
from ..traits.errors import SpawnerConfigError

log = logging.getLogger("async_kubespawner.lifecycle.preflight")

SERVICE_ACCOUNTS = ResourceKind("serviceaccounts", "ServiceAccount")
_CHECKED_POD = "_preflight_checked_pod"
#: How many refused fields one error lists (the first ones, in the object's order).
MAX_LISTED = 5

# Where the notebook container's fields come from, by their API name.
_CONTAINER_FIELD_SETTINGS = {
    "image": "image",
    "imagePullPolicy": "image_pull_policy",
    "ports": "port",
    "env": "environment",
    "volumeMounts": "volume_mounts",
    "securityContext": "container_security_context",
    "lifecycle": "lifecycle_hooks",
    "workingDir": "working_dir",
    "args": "cmd",
}
_RESOURCE_SETTINGS = {
    ("requests", "cpu"): "cpu_guarantee",
    ("limits", "cpu"): "cpu_limit",
    ("requests", "memory"): "mem_guarantee",
    ("limits", "memory"): "mem_limit",
}
_SPEC_FIELD_SETTINGS = {
    "volumes": "volumes",
    "tolerations": "tolerations",
    "nodeSelector": "node_selector",
    "imagePullSecrets": "image_pull_secrets",
    "serviceAccountName": "service_account",
    "securityContext": "pod_security_context",
    "priorityClassName": "priority_class_name",
    "schedulerName": "scheduler_name",
    "affinity": "node_affinity_required",
}
# Fields of the pod and of the PVC whose setting their path alone names (first match wins).
_POD_PREFIX_SETTINGS = (
    ("metadata.name", "pod_name_template"),
    ("metadata.labels", "extra_labels"),
    ("metadata.annotations", "extra_annotations"),
    ("spec.affinity.nodeAffinity.preferred", "node_affinity_preferred"),
)
_PVC_PREFIX_SETTINGS = (
    ("metadata.name", "pvc_name_template"),
    ("metadata.labels", "storage_extra_labels"),
    ("metadata.annotations", "storage_extra_annotations"),
    ("spec.accessModes", "storage_access_modes"),
    ("spec.selector", "storage_selector"),
    ("spec.storageClassName", "storage_class"),
)
_PATH_PART = re.compile(
    r"^spec\.(?P<list>containers|initContainers|ephemeralContainers)\[(?P<i>\d+)\]\.?(?P<rest>.*)$"
)


def _by_prefix(field: str, table: Iterable[tuple[str, str]]) -> str | None:
    """The setting of the first ``(prefix, setting)`` row whose prefix starts ``field``."""
    return next((setting for prefix, setting in table if field.startswith(prefix)), None)


def _configured(config: Mapping[str, Any], model: type, api_name: str) -> bool:
    """Whether ``config`` (extra_container_config, extra_pod_config) sets ``api_name``, in
    either spelling."""
    return any(
        attribute_for_key(model, str(key)) == attribute_for_key(model, api_name) for key in config
    )


def _notebook_index(pod: Mapping[str, Any]) -> int:
    for index, container in enumerate((pod.get("spec") or {}).get("containers") or []):
        if isinstance(container, Mapping) and container.get("name") == NOTEBOOK_CONTAINER_NAME:
            return index
    return -1


def origin(spawner: Any, pod: Mapping[str, Any], field: str, message: str = "") -> str:
    """The setting a field of the final pod most likely comes from (``message``, the
    rule it breaks, tells a CPU request from a memory one)."""
    import kubernetes_asyncio.client as k8s

    match = _PATH_PART.match(field)
    if match:
        if match["list"] == "initContainers":
            return "init_containers"
        if match["list"] == "ephemeralContainers" or int(match["i"]) != _notebook_index(pod):
            return "extra_containers"
        rest = match["rest"]
        top = re.split(r"[.\[]", rest, maxsplit=1)[0]
        extra = getattr(spawner, "extra_container_config", None) or {}
        if top and _configured(extra, k8s.V1Container, top):
            return "extra_container_config"
        if top == "resources":
            for (section, resource), setting in _RESOURCE_SETTINGS.items():
                if f"{section}[{resource}]" in rest or (
                    rest == f"resources.{section}" and f" {resource} limit " in message
                ):
                    return setting
            return "extra_resource_guarantees" if "requests" in rest else "extra_resource_limits"
        if top == "securityContext":
            return "container_security_context"
        return _CONTAINER_FIELD_SETTINGS.get(top, "extra_container_config")
    named = _by_prefix(field, _POD_PREFIX_SETTINGS)
    if named is not None:
        return named
    if field.startswith("spec."):
        top = re.split(r"[.\[]", field[5:], maxsplit=1)[0]
        extra = getattr(spawner, "extra_pod_config", None) or {}
        if _configured(extra, k8s.V1PodSpec, top):
            return "extra_pod_config"
        return _SPEC_FIELD_SETTINGS.get(top, "extra_pod_config")
    return "extra_pod_config"


def _hook_hint(spawner: Any) -> str:
    return (
        " (or modify_pod_hook, which is set)" if getattr(spawner, "modify_pod_hook", None) else ""
    )


def _refuse(spawner: Any, setting: str, problem: str, fix: str) -> SpawnerConfigError:
    who = getattr(getattr(spawner, "user", None), "name", "?")
    server = getattr(spawner, "name", "") or ""
    where = f"{who}/{server}" if server else who
    return SpawnerConfigError(
        setting,
        None,
        f"for {where!r}, nothing was created because {problem}",
        fix,
        show_value=False,
    )


def _listed(errors: Iterable[Any]) -> tuple[list[Any], str]:
    items = list(errors)
    more = f" (and {len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return items[:MAX_LISTED], more


def check_pod_security(spawner: Any, pod: Mapping[str, Any]) -> None:
    """Refuse a pod that breaks ``security_profile``'s Pod Security Standard."""
    level = getattr(spawner, "security_profile", "")
    if not level:
        return
    violations = check_pod(pod, level)
    if not violations:
        return
    shown, more = _listed(violations)
    setting = origin(spawner, pod, shown[0].field)
    problem = (
        f"the pod breaks the {level!r} Pod Security Standard (security_profile = {level!r}): "
        + "; ".join(v.describe() for v in shown)
        + more
        + f", set by {setting}{_hook_hint(spawner)}"
    )
    fixes = " ".join(dict.fromkeys(v.fix for v in shown))
    raise _refuse(spawner, setting, problem, fixes + " Or choose another security_profile.")


def _refuse_field_errors(
    spawner: Any, kind: str, setting: str, errors: list[FieldError], hint: str = ""
) -> None:
    if not errors:
        return
    shown, more = _listed(errors)
    problem = (
        f"Kubernetes would refuse the {kind}: " + "; ".join(str(e) for e in shown) + more + hint
    )
    raise _refuse(spawner, setting, problem, f"Fix {setting} so that the {kind} is valid.")


def check_pod_fields(spawner: Any, pod: Mapping[str, Any]) -> None:
    """Refuse a pod the API server would refuse (field rules only)."""
    errors = pod_errors(pod)
    if errors:
        setting = origin(spawner, pod, errors[0].field, errors[0].message)
        _refuse_field_errors(spawner, "pod", setting, errors, _hook_hint(spawner))


#: The API server refuses a request body above this (413 RequestEntityTooLarge).
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024


def check_pod_size(spawner: Any, pod: Mapping[str, Any]) -> None:
    """Refuse a pod whose JSON is over the API server's request limit, naming the part
    that makes it big (in practice: an environment value)."""
    size = len(orjson.dumps(pod, default=str))
    if size <= MAX_REQUEST_BODY_BYTES:
        return
    parts: dict[str, int] = {}
    spec = pod.get("spec") or {}
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(list_name) or []):
            for key, value in container.items():
                field = f"spec.{list_name}[{index}].{key}"
                parts[field] = len(orjson.dumps(value, default=str))
    for key, value in (pod.get("metadata") or {}).items():
        parts[f"metadata.{key}"] = len(orjson.dumps(value, default=str))
    biggest = max(parts, key=parts.__getitem__, default="spec")
    setting = origin(spawner, pod, biggest)
    raise _refuse(
        spawner,
        setting,
        f"the pod's JSON would be {size} bytes, over the API server's limit of "
        f"{MAX_REQUEST_BODY_BYTES} (most of it in {biggest}, set by {setting})",
        "Keep large data out of the pod spec: mount it from a ConfigMap, Secret or volume.",
    )


def _pvc_setting(field: str) -> str:
    return _by_prefix(field, _PVC_PREFIX_SETTINGS) or "storage_capacity"


#: Seconds a service account found to exist is not looked up again (a spawn storm of
#: one hub shares one account: one GET, not one per spawn).
SERVICE_ACCOUNT_TTL = 60.0
_known_accounts: weakref.WeakKeyDictionary[KubeApi, dict[tuple[str, str], float]] = (
    weakref.WeakKeyDictionary()
)


async def check_service_account(spawner: Any, api: KubeApi, pod: Mapping[str, Any]) -> None:
    """Refuse a pod whose service account does not exist (the API server would answer
    403 after the PVC exists). Without the right to read service accounts (403) the
    check is skipped: the hub's role need not include it."""
    namespace = spawner.namespace
    account = (pod.get("spec") or {}).get("serviceAccountName")
    if not account:
        return
    known = _known_accounts.setdefault(api, {})
    key = (namespace, account)
    if known.get(key, 0.0) > time.monotonic():
        return
    try:
        if await api.get_or_none(SERVICE_ACCOUNTS, namespace, account) is not None:
            if len(known) > 10_000:
                known.clear()
            known[key] = time.monotonic() + SERVICE_ACCOUNT_TTL
            return
        if account == "default" and (await api.get_or_none(NAMESPACES, None, namespace)) is None:
            return  # created with the namespace, which start() creates next
    except (Unauthorized, Forbidden) as e:
        log.debug("kubespawner cannot read service accounts in %s: %s", namespace, e)
        return
    setting = (
        "service_account"
        if spawner.service_account
        else origin(spawner, pod, "spec.serviceAccountName")
    )
    raise _refuse(
        spawner,
        setting,
        f"the service account {account!r} does not exist in namespace {namespace!r}",
        "Create the service account, or name one that exists.",
    )


def adoptable_pvc(spawner: Any, api: KubeApi) -> Callable[[str], Awaitable[bool]]:
    """``pvc_exists(name)`` for the legacy-name check: the claim exists *and* this server
    may mount it (``lifecycle/ownership.py``), as ``start()`` decides it."""
    from .ownership import pvc_is_adoptable

    identity = spawner.server_identity()
    scope = spawner.pvc_scope()
    adopt_unowned = spawner.storage_adopt_unowned_pvcs

    async def pvc_exists(name: str) -> bool:
        return await pvc_is_adoptable(
            api, spawner.namespace, name, identity, scope, adopt_unowned=adopt_unowned
        )

    return pvc_exists


async def check_before_create(spawner: Any, api: KubeApi) -> None:
    """Build and check everything ``start()`` will create, before it creates anything.

    Raises ``SpawnerConfigError``. On success the checked pod is kept for
    :func:`take_checked_pod`, which ``start()`` uses instead of building it again: as
    the JSON data checked (what is sent), not the model tree, which is freed here
    rather than converted a second time by the create.
    """
    setattr(spawner, _CHECKED_POD, None)
    if spawner.storage_pvc_ensure:
        # The pod's volumes may name {pvc_name}: settle it first (reads only), with the
        # same rule start() uses: a claim counts only if this server may mount it.
        await spawner.resolve_legacy_pvc_name(adoptable_pvc(spawner, api))
    pod = to_dict(await spawner.prepare_pod())
    check_pod_security(spawner, pod)
    check_pod_fields(spawner, pod)
    check_pod_size(spawner, pod)
    if spawner.storage_pvc_ensure:
        errors = pvc_errors(to_dict(spawner.get_pvc_manifest()))
        if errors:
            _refuse_field_errors(spawner, "PVC", _pvc_setting(errors[0].field), errors)
    if spawner.enable_user_namespaces:
        errors = namespace_errors(to_dict(spawner.get_namespace_manifest()))
        if errors:
            setting = (
                "user_namespace_template"
                if errors[0].field == "metadata.name"
                else "user_namespace_labels"
            )
            _refuse_field_errors(spawner, "namespace", setting, errors)
    if getattr(spawner, "needs_service", False):
        owner = {"apiVersion": "v1", "kind": "Pod", "name": spawner.pod_name, "uid": "0"}
        errors = service_errors(to_dict(spawner.get_service_manifest(owner)))
        if errors:
            setting = "port" if ".port" in errors[0].field else "pod_name_template"
            _refuse_field_errors(spawner, "Service", setting, errors)
    await check_service_account(spawner, api, pod)
    setattr(spawner, _CHECKED_POD, pod)


def take_checked_pod(spawner: Any) -> dict[str, Any] | None:
    """The pod :func:`check_before_create` checked (once), as JSON data, or None."""
    pod = getattr(spawner, _CHECKED_POD, None)
    setattr(spawner, _CHECKED_POD, None)
    return pod
