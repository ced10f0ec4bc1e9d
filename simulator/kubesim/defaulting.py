"""The defaults the real API server (and its default admission plugins) fill in on create.

The spawner reads back what it created: the pod's service-account token volume, the
service's clusterIP, the PVC's phase. A simulator that returns the object as sent would
let the spawner depend on fields it never gets from a real cluster, or miss ones it
does get, so this module reproduces the recorded responses in
``reference/apiserver-samples/*-defaulted.json`` field for field. It mutates the object
in place because it runs on the store's private copy, between decoding and validation.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kubesim.decoding import DecodeError, check_types, drop_nulls
from kubesim.patching import clone_json
from kubesim.quantities import QuantityError, canonical_quantity, quantity_value

SERVICE_ACCOUNT_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# utilrand.String's alphabet: no vowels (no accidental words) and no look-alike characters.
_RANDOM_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DEFAULT_MODE = 420  # 0644


def random_suffix(length: int = 5) -> str:
    """A suffix like the API server's generateName and kube-api-access-<suffix> names."""
    return "".join(random.choices(_RANDOM_ALPHABET, k=length))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def default_object(
    kind: str,
    obj: dict,
    *,
    allocate_cluster_ip: Callable[[], str],
    old: dict | None = None,
    decoded: bool = False,
) -> None:
    """Fill in what the real server fills in when ``obj`` (of ``kind``) is created or updated.

    Type defaults apply on every write; admission defaults (the service-account token
    volume, default tolerations, the PVC protection finalizer, the SchedulingGated
    condition) only on create, or an update that drops the PVC finalizer would get it
    back and the claim could never be deleted. An update is recognised by ``old`` or,
    failing that, by ``obj`` already carrying the ``metadata.uid`` the store assigns
    after defaulting a create.

    ``decoded=True`` says ``obj`` already went through ``decoding.decode`` (types checked,
    nulls dropped), as the store's writes have; the type-check pass, the costliest part
    of a pod's defaulting, is then not done a second time. Other callers leave it False
    and get an undecodable object left alone rather than a crash.
    """
    if kind in _RBAC_KINDS:  # the roleRef and subject API groups
        from kubesim.auth.validation import default_rbac  # late: kubesim.auth imports the store

        default_rbac(kind, obj)
        return
    defaulter = _DEFAULTERS.get(kind)
    if not decoded:
        try:
            has_nulls = check_types(kind, obj)
        except DecodeError:
            return  # an undecodable body is refused (400) before defaults matter
        if has_nulls:
            drop_nulls(kind, obj)
    if defaulter is None:
        return
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    creating = old is None and not meta.get("uid")
    if kind == "Service" and old is not None:
        _keep_allocated_values(obj, old)
    defaulter(obj, allocate_cluster_ip, creating)


def _keep_allocated_values(service: dict, old: dict) -> None:
    """An update that leaves out the cluster IP or node ports keeps the allocated ones,
    as the real server's service registry does, instead of allocating new ones."""
    spec, old_spec = service.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return
    if not spec.get("clusterIP") and not spec.get("clusterIPs"):
        for carried in ("clusterIP", "clusterIPs"):
            if carried in old_spec:
                spec[carried] = clone_json(old_spec[carried])
    old_ports = {
        (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
        for p in old_spec.get("ports") or []
        if isinstance(p, dict) and p.get("nodePort")
    }
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and not port.get("nodePort"):
            node_port = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if node_port:
                port["nodePort"] = node_port


# --------------------------------------------------------------------------- pods


def _token_volume(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
            "defaultMode": _DEFAULT_MODE,
        },
    }


def _image_pull_policy(image: str) -> str:
    """``Always`` for untagged or ``:latest`` images, ``IfNotPresent`` otherwise (digests included)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)


# Defaults of small types that appear in many places (probes, lifecycle hooks, env,
# downward API volumes and projections): keyed by the field name that holds them.
_NESTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "fieldRef": {"apiVersion": "v1"},
    "httpGet": {"path": "/", "scheme": "HTTP"},
    "resourceFieldRef": {"divisor": "0"},
}


def _default_nested(value: Any) -> None:
    """Fill the nested small-type defaults wherever they occur below ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            defaults = _NESTED_DEFAULTS.get(key)
            if defaults is not None and isinstance(item, dict):
                for name, default in defaults.items():
                    item.setdefault(name, default)
            elif isinstance(item, dict | list):
                _default_nested(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                _default_nested(item)


def _canonicalise(quantities: Any) -> None:
    """Rewrite a name -> quantity map in the canonical form the real server stores."""
    if not isinstance(quantities, dict):
        return
    for name, value in quantities.items():
        try:
            quantities[name] = canonical_quantity(value)
        except QuantityError:
            pass  # left as sent: decoding/validation refuses it with the real message


def _default_container(container: dict, host_network: bool) -> None:
    resources = container.setdefault("resources", {})
    if isinstance(resources, dict):
        _canonicalise(resources.get("limits"))
        _canonicalise(resources.get("requests"))
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        # A limit without a request means "request the limit".
        requests = resources.setdefault("requests", {})
        for name, value in resources["limits"].items():
            requests.setdefault(name, value)
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if host_network and "hostPort" not in port and "containerPort" in port:
                port["hostPort"] = port["containerPort"]
    for nested in ("env", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
        _default_nested(container.get(nested))
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe_name))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if isinstance(container.get("image"), str):
        container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))


def _default_volume(volume: dict) -> None:
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", _DEFAULT_MODE)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    _default_nested(volume.get("downwardAPI"))
    _default_nested(volume.get("projected"))


def _qos_class(spec: dict) -> str:
    """BestEffort, Burstable or Guaranteed, computed from cpu and memory like the kubelet does."""
    containers = [
        c
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        if isinstance(c, dict)
    ]
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        for name in ("cpu", "memory"):
            request, limit = _quantity(requests.get(name)), _quantity(limits.get(name))
            if (request is not None and request != 0) or (limit is not None and limit != 0):
                any_set = True
            if limit is None or limit == 0 or (request is not None and request != limit):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _quantity(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return quantity_value(value)
    except QuantityError:
        return None


_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"


def _default_pod(pod: dict, _allocate: Callable[[], str], creating: bool) -> None:
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    host_network = bool(spec.get("hostNetwork"))
    _canonicalise(spec.get("overhead"))
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)
    for list_name in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(list_name) or []:
            if isinstance(container, dict):
                _default_container(container, host_network)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = account
    spec["serviceAccount"] = account
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if creating and spec.get("automountServiceAccountToken") is not False:
        _mount_service_account_token(spec)
    if creating:
        _add_default_tolerations(spec)
        pod["status"] = {}  # a client cannot create a pod that claims to run already
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    status = pod.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("phase", "Pending")
        if (
            creating
            and spec.get("schedulingGates")
            and not any(c.get("type") == "PodScheduled" for c in status.get("conditions") or [])
        ):
            status.setdefault("conditions", []).append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": _now(),
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }
            )
        if creating or "qosClass" not in status:
            status["qosClass"] = _qos_class(spec)


def _add_default_tolerations(spec: dict) -> None:
    """The DefaultTolerationSeconds admission plugin: ride out a node outage for 5 minutes."""
    tolerations = spec.setdefault("tolerations", [])
    for key in (_NOT_READY, _UNREACHABLE):
        tolerated = any(
            isinstance(t, dict)
            and t.get("effect") in (None, "", "NoExecute")
            and (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
            for t in tolerations
        )
        if not tolerated:
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )


def _mount_service_account_token(spec: dict) -> None:
    """The ServiceAccount admission plugin: a projected token volume mounted in every container."""
    containers = [
        c
        for name in ("initContainers", "containers")
        for c in spec.get(name) or []
        if isinstance(c, dict)
    ]
    needing = [
        c
        for c in containers
        if not any(
            isinstance(m, dict) and m.get("mountPath") == SERVICE_ACCOUNT_MOUNT_PATH
            for m in c.get("volumeMounts") or []
        )
    ]
    if not needing:
        return
    volumes = spec.setdefault("volumes", [])
    existing = {v.get("name") for v in volumes if isinstance(v, dict)}
    name = f"kube-api-access-{random_suffix()}"
    while name in existing:
        name = f"kube-api-access-{random_suffix()}"
    volumes.append(_token_volume(name))
    for container in needing:
        container.setdefault("volumeMounts", []).append(
            {"name": name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}
        )


# --------------------------------------------------------------------------- services


def _default_service(service: dict, allocate_cluster_ip: Callable[[], str], creating: bool) -> None:
    spec = service.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    service_type = spec.setdefault("type", "ClusterIP")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
            if service_type in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                port["nodePort"] = random.randint(30000, 32767)
    if service_type != "ExternalName":
        if not spec.get("clusterIP"):
            ips = spec.get("clusterIPs") or []
            spec["clusterIP"] = ips[0] if ips and ips[0] else allocate_cluster_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    if service_type in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if service_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if creating or not isinstance(service.get("status"), dict):
        service["status"] = {"loadBalancer": {}}


# --------------------------------------------------------------------------- the rest


def _default_secret(secret: dict, _allocate: Callable[[], str], _creating: bool) -> None:
    """stringData is write-only: folded into base64 ``data`` (it wins on conflicts), then dropped."""
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    secret.setdefault("type", "Opaque")


def _default_pvc(pvc: dict, _allocate: Callable[[], str], creating: bool) -> None:
    spec = pvc.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        if isinstance(spec.get("resources"), dict):
            _canonicalise(spec["resources"].get("requests"))
            _canonicalise(spec["resources"].get("limits"))
    if creating:
        finalizers = pvc.setdefault("metadata", {}).setdefault("finalizers", [])
        if "kubernetes.io/pvc-protection" not in finalizers:
            finalizers.append("kubernetes.io/pvc-protection")
        pvc["status"] = {"phase": "Pending"}  # status is the binder's, never the creator's


def _default_namespace(namespace: dict, _allocate: Callable[[], str], _creating: bool) -> None:
    metadata = namespace.setdefault("metadata", {})
    if metadata.get("name"):
        metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata["name"]
    spec = namespace.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    namespace.setdefault("status", {}).setdefault("phase", "Active")


def _default_event(event: dict, _allocate: Callable[[], str], _creating: bool) -> None:
    """core/v1 Events serialise their unset times as null and unset strings as ''."""
    if str(event.get("apiVersion", "v1")) == "v1":
        event.setdefault("involvedObject", {})
        event.setdefault("source", {})
        for time_field in ("firstTimestamp", "lastTimestamp", "eventTime"):
            event.setdefault(time_field, None)
        event.setdefault("reportingComponent", "")
        event.setdefault("reportingInstance", "")


def _default_crd(crd: dict, _allocate: Callable[[], str], _creating: bool) -> None:
    spec = crd.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("conversion", {"strategy": "None"})
        names = spec.get("names")
        if isinstance(names, dict) and names.get("kind"):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")


_DEFAULTERS: dict[str, Callable[[dict, Callable[[], str], bool], None]] = {
    "Pod": _default_pod,
    "Service": _default_service,
    "Secret": _default_secret,
    "PersistentVolumeClaim": _default_pvc,
    "Namespace": _default_namespace,
    "Event": _default_event,
    "CustomResourceDefinition": _default_crd,
}
