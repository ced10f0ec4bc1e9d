"""The two custom resources of operator mode, as typed models (the CRDs are generated from them).

``NotebookTemplate`` (and its cluster-scoped twin ``ClusterNotebookTemplate``) is owned
by the administrator: which pods, PVCs and other resources a notebook server consists of,
and which variables a hub may pass (with defaults and constraints). ``NotebookServer`` is
created by the hub, one per JupyterHub server: which template, which variables, whose
server it is, and where the API token is (a Secret reference, never the token). The
operator writes its ``status``.

See :mod:`.schema` for how the dataclasses below become the CRD schemas.
"""

# ruff: noqa: RUF009  (prop() returns a dataclasses.field carrying schema metadata)
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .schema import FreeForm, from_json, prop, to_json

GROUP = "notebooks.async-kubespawner.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Finalizer the operator puts on every NotebookServer: teardown runs in order (pods,
#: other resources, then PVCs per the retention policy) before the object goes away.
FINALIZER = f"{GROUP}/teardown"

#: Labels on every child (and on the token Secret the hub creates): who it belongs to.
LABEL_SERVER = f"{GROUP}/server"
LABEL_CHILD = f"{GROUP}/child"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "async-kubespawner-operator"
LABEL_USER = "hub.jupyter.org/username"
LABEL_SERVERNAME = "hub.jupyter.org/servername"
#: Annotation on a retained PVC: whether deleting the server for good deletes it.
ANNOTATION_DELETE_WITH_SERVER = f"{GROUP}/delete-with-server"

PHASES = ["Pending", "Provisioning", "Starting", "Ready", "Failed", "Terminating"]

IDENTIFIER = r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$"
CHILD_ID = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


# -- NotebookTemplate ---------------------------------------------------------------------


@dataclass(kw_only=True)
class Variable:
    """A variable a hub may pass, with the constraints its value must meet."""

    name: str = prop("Variable name, used as {name} in the template.", pattern=IDENTIFIER)
    description: str = prop("What the variable is for (shown in errors).", default="")
    default: str | None = prop("Value used when the NotebookServer does not set it.", default=None)
    required: bool = prop("Refuse a NotebookServer that does not set it.", default=False)
    pattern: str | None = prop("Regular expression the whole value must match.", default=None)
    enum: list[str] | None = prop("The only values allowed.", default=None)
    max_length: int = prop(
        "Longest value allowed (characters).", default=253, minimum=0, maximum=65536
    )


@dataclass(kw_only=True)
class Condition:
    """Create the child only when a variable's value matches (no operator: when non-empty)."""

    variable: str = prop("Variable (declared or built in) the condition reads.")
    equals: str | None = prop("True when the value equals this.", default=None)
    not_equals: str | None = prop("True when the value differs from this.", default=None)
    in_: list[str] | None = prop("True when the value is one of these.", json="in", default=None)


@dataclass(kw_only=True)
class ChildTemplate:
    """One object of the server (a Pod or a PVC): metadata templates and a full spec."""

    id: str = prop(
        "Key of the child within the template, used in cross-references "
        "({pvcs.<id>.name}) and in the status.",
        pattern=CHILD_ID,
    )
    name: str = prop(
        "Template of the object's name; DNS-slugged after substitution.", max_length=253
    )
    labels: dict[str, str] = prop("Labels (values are templates).", default=dict)
    annotations: dict[str, str] = prop("Annotations (values are templates).", default=dict)
    spec: FreeForm = prop("The object's spec; placeholders in its strings are substituted.")
    condition: Condition | None = prop("Create this child only when it holds.", default=None)


@dataclass(kw_only=True)
class OtherResourceTemplate:
    """Any other object of the server (Service, ConfigMap, NetworkPolicy, a CR ...)."""

    id: str = prop("Key of the child within the template.", pattern=CHILD_ID)
    api_version: str = prop("apiVersion of the object (no placeholders).", pattern=r"^[^{}]+$")
    kind: str = prop("kind of the object (no placeholders).", pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    name: str = prop("Template of the object's name; DNS-slugged after substitution.")
    labels: dict[str, str] = prop("Labels (values are templates).", default=dict)
    annotations: dict[str, str] = prop("Annotations (values are templates).", default=dict)
    spec: FreeForm | None = prop("The object's spec, if its kind has one.", default=None)
    data: FreeForm | None = prop("The object's data, for ConfigMaps.", default=None)
    condition: Condition | None = prop("Create this child only when it holds.", default=None)


@dataclass(kw_only=True)
class PVCRetention:
    """What happens to the server's PVCs when it stops, and when it is deleted for good."""

    when_stopped: str = prop(
        "Retain keeps the PVCs (and the data) across stop/start; Delete removes them.",
        enum=["Retain", "Delete"],
        default="Retain",
        schema_default="Retain",
    )
    when_deleted: str = prop(
        "When the server (or its user) is deleted from the hub.",
        enum=["Retain", "Delete"],
        default="Delete",
        schema_default="Delete",
    )


@dataclass(kw_only=True)
class NotebookTemplateSpec:
    """The resources a notebook server consists of and the variables a hub may set."""

    variables: list[Variable] = prop("Variables a NotebookServer may set.", default=list)
    pods: list[ChildTemplate] = prop("Pods; the first one is the notebook server.", default=list)
    pvcs: list[ChildTemplate] = prop("PersistentVolumeClaims.", default=list)
    other_resources: list[OtherResourceTemplate] = prop(
        "Any other objects (Services, ConfigMaps, NetworkPolicies, custom resources).",
        default=list,
    )
    pvc_retention: PVCRetention = prop(
        "PVC retention policy.", default=PVCRetention, schema_default={}
    )
    notebook_port: int = prop(
        "Port the notebook server listens on.", default=8888, minimum=1, maximum=65535
    )
    update_running_servers: bool = prop(
        "When false (default) a changed template applies to servers started afterwards "
        "only; when true, running servers whose children were made from an older "
        "generation are stopped so that the hub can restart them.",
        default=False,
    )


# -- NotebookServer -----------------------------------------------------------------------


@dataclass(kw_only=True)
class TemplateRef:
    """Which template provisions the server."""

    name: str = prop("Name of the template.", pattern=DNS_SUBDOMAIN, max_length=253)
    kind: str = prop(
        "NotebookTemplate (same namespace) or ClusterNotebookTemplate.",
        enum=["NotebookTemplate", "ClusterNotebookTemplate"],
        default="NotebookTemplate",
        schema_default="NotebookTemplate",
    )


@dataclass(kw_only=True)
class SecretRef:
    """A Secret in the server's namespace holding the server's environment and API token."""

    name: str = prop("Name of the Secret.", pattern=DNS_SUBDOMAIN, max_length=253)


@dataclass(kw_only=True)
class ServerIdentity:
    """Whose server this is, as JupyterHub knows it."""

    user: str = prop("JupyterHub user name.", max_length=256)
    server: str = prop("Server name (empty for the default server).", default="", max_length=256)
    user_id: str = prop("JupyterHub user id.", default="", max_length=32)


@dataclass(kw_only=True)
class NotebookServerSpec:
    """One JupyterHub server: a template, its variables and its identity."""

    template_ref: TemplateRef = prop("The template to provision from.")
    identity: ServerIdentity = prop("The user and server name.")
    variables: dict[str, str] = prop("Values of the template's variables.", default=dict)
    env_secret_ref: SecretRef | None = prop(
        "Secret with the server's JupyterHub environment (API token included); the "
        "template mounts it with {secret.name}.",
        default=None,
    )
    purge_storage: bool = prop(
        "Set by the hub when the server is deleted for good: provision nothing; "
        "apply the whenDeleted retention to the server's retained PVCs.",
        default=False,
    )


@dataclass(kw_only=True)
class StatusCondition:
    """A condition in the Kubernetes convention."""

    type: str = prop("Condition type (Accepted, ChildrenCreated, Ready, ...).")
    status: str = prop("True, False or Unknown.", enum=["True", "False", "Unknown"])
    reason: str = prop("CamelCase reason.", default="")
    message: str = prop("Human-readable detail.", default="")
    last_transition_time: str | None = prop("When the status last changed.", default=None)
    observed_generation: int | None = prop("Generation the condition is about.", default=None)


@dataclass(kw_only=True)
class ChildStatus:
    """One object the operator created for the server."""

    id: str = prop("Key of the child in the template.")
    kind: str = prop("kind of the object.")
    api_version: str = prop("apiVersion of the object.")
    name: str = prop("Name of the object.")


@dataclass(kw_only=True)
class NotebookServerStatus:
    """What the operator has done and seen."""

    phase: str = prop("Lifecycle phase.", enum=PHASES, default="Pending")
    conditions: list[StatusCondition] = prop("Conditions.", default=list)
    observed_generation: int | None = prop("Last spec generation acted on.", default=None)
    template_generation: int | None = prop(
        "Generation of the template the children were made from.", default=None
    )
    address: str | None = prop("IP or host name of the notebook server.", default=None)
    port: int | None = prop("Port of the notebook server.", default=None)
    children: list[ChildStatus] = prop("Objects created for the server.", default=list)
    reason: str | None = prop("Why the server failed, in words a user can act on.", default=None)


# -- whole objects --------------------------------------------------------------------------


@dataclass(frozen=True)
class CRDInfo:
    kind: str
    plural: str
    singular: str
    scope: str
    short_names: tuple[str, ...]
    spec_model: type
    status_model: type | None
    printer_columns: tuple[dict[str, Any], ...] = ()


NOTEBOOK_TEMPLATE = CRDInfo(
    "NotebookTemplate", "notebooktemplates", "notebooktemplate", "Namespaced", ("nbt",),
    NotebookTemplateSpec, None,
)
CLUSTER_NOTEBOOK_TEMPLATE = CRDInfo(
    "ClusterNotebookTemplate", "clusternotebooktemplates", "clusternotebooktemplate", "Cluster",
    ("cnbt",), NotebookTemplateSpec, None,
)
NOTEBOOK_SERVER = CRDInfo(
    "NotebookServer", "notebookservers", "notebookserver", "Namespaced", ("nbs",),
    NotebookServerSpec, NotebookServerStatus,
    (
        {"name": "User", "type": "string", "jsonPath": ".spec.identity.user"},
        {"name": "Server", "type": "string", "jsonPath": ".spec.identity.server"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
)
ALL_CRDS = (NOTEBOOK_TEMPLATE, CLUSTER_NOTEBOOK_TEMPLATE, NOTEBOOK_SERVER)


def parse_template_spec(obj: dict[str, Any]) -> NotebookTemplateSpec:
    return from_json(NotebookTemplateSpec, obj.get("spec") or {}, "spec")


def parse_server_spec(obj: dict[str, Any]) -> NotebookServerSpec:
    return from_json(NotebookServerSpec, obj.get("spec") or {}, "spec")


def parse_server_status(obj: dict[str, Any]) -> NotebookServerStatus:
    return from_json(NotebookServerStatus, obj.get("status") or {}, "status")


__all__ = [
    "ALL_CRDS",
    "API_VERSION",
    "GROUP",
    "VERSION",
    "ChildTemplate",
    "NotebookServerSpec",
    "NotebookServerStatus",
    "NotebookTemplateSpec",
    "from_json",
    "to_json",
]
