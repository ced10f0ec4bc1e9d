"""``KubeSpawnerSettings``: every setting, and the methods that turn them into objects.

What the lifecycle (``spawner.py``) calls, and when:

``__init__``
    Sets port 0 to 8888, expands ``working_dir`` and, with user namespaces, sets
    ``namespace`` (also done by ``load_state`` from the state, and by ``clear_state``).
``names`` (and ``pod_name``, ``pvc_name``, ``dns_name``, ``secret_name``)
    Derived when read, from ``objects.names.compute_names``: names assigned for this
    spawn, then names in state, then the templates as the profile left them. Nothing
    needs to recompute them after an override.
``load_state`` / ``get_state`` / ``clear_state``
    Called by JupyterHub; the mapping is ``objects.state``. ``pvc_name`` is kept across
    stops once the PVC is known to exist (``remember_pvc_name``).
``check_configuration()``
    Call before creating anything: raises ``SpawnerConfigError`` if an expanded name
    or label is invalid. ``get_*_manifest`` call it too, except within a start (which
    checked once already).
``await preflight.check_before_create(spawner, api)``
    Then, still before creating anything: builds the final pod (``prepare_pod()``) and
    checks it, the PVC, Service and namespace against ``security_profile`` and the API
    server's field rules, and that the service account exists. ``start()`` creates the
    pod it checked (``preflight.take_checked_pod``).
``await resolve_legacy_pvc_name(pvc_exists)``
    Before ensuring the PVC: with ``handle_legacy_names``, on the first start of a
    server saved by a pre-7 KubeSpawner, keeps the current name if that PVC exists,
    else adopts the pre-7 name if that one exists (``needs_legacy_pvc_check``,
    ``legacy_pvc_name()`` and ``use_pvc_name(name)`` are the pieces).
``mark_pvc_exists()``
    After the PVC was created or found, so ``get_state`` remembers its name.
``await get_pod_manifest()`` then ``await run_modify_pod_hook(pod)``
    The V1Pod to create (``prepare_pod()`` does both).
``get_pvc_manifest()``, ``get_namespace_manifest()``
    Before the pod, when ``storage_pvc_ensure`` / ``enable_user_namespaces``.
``get_secret_manifest(owner_reference)``, ``get_service_manifest(owner_reference)``
    After the pod exists (its uid is the owner), when ``needs_secret`` /
    ``needs_service`` (``services_enabled`` or internal SSL, as upstream). A pod whose env reads the Secret waits in
    CreateContainerConfigError until it exists; the kubelet retries on its own.
    With ``internal_ssl`` keep the base ``move_certs``: ``cert_paths`` stay the hub's
    local files, which ``get_secret_manifest`` reads; the pod's JUPYTERHUB_SSL_* env
    points at the mounted copies (``internal_ssl_pod_paths()``).
``await run_after_pod_created_hook(pod_dict)``, ``is_pod_running(pod_dict)``,
``_get_pod_url(pod_dict)`` (the URL ``start()`` returns).

Manifests and env values are never logged here: they carry the API token.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jupyterhub
import kubernetes_asyncio.client as k8s
from traitlets import Bool, List, default, observe

from .._version import __version__
from ..lifecycle.readiness import pod_is_running
from ..objects.identity import (
    IDENTITY_ANNOTATION,
    Scope,
    ServerIdentity,
    template_fields,
    template_scope,
    uniqueness_problem,
)
from ..objects.manifests import (
    ManifestError,
    NamespaceSettings,
    PodSettings,
    PVCSettings,
    SecretSettings,
    ServiceSettings,
    api_token_env,
    build_namespace_manifest,
    build_pod_manifest,
    build_pvc_manifest,
    build_secret_manifest,
    build_service_manifest,
    ordered_items,
)
from ..objects.names import (
    Names,
    NameTemplateError,
    NameTemplates,
    Remembered,
    compute_names,
    legacy_pvc_name,
    template_values,
)
from ..objects.slugs import (
    TemplateFields,
    expand_template,
    is_valid_dns_label,
    is_valid_dns_subdomain,
    is_valid_label,
)
from ..objects.state import (
    SavedNames,
    after_stop,
    read_state,
    state_to_save,
)
from .api import ApiTraits
from .deferred import DeferredConfigErrors
from .deprecated import DeprecatedTraits
from .errors import SpawnerConfigError
from .events import EventsTraits
from .fast_defaults import fill_static_defaults
from .hooks import HooksTraits
from .limits import MAX_LINUX_ID, NumericLimits, check_range
from .namespaces import NamespaceTraits, hub_namespace
from .naming import NamingTraits
from .networking import NetworkingTraits
from .ownership import OwnershipTraits
from .pod import PodTraits
from .readiness import ReadinessTraits
from .resources import ResourceTraits
from .security import SecurityTraits
from .stop import StopTraits
from .storage import StorageTraits
from .watch import WatchTraits

USERNAME_KEY = "hub.jupyter.org/username"
SERVERNAME_KEY = "hub.jupyter.org/servername"
SSL_FILES = {"keyfile": "ssl.key", "certfile": "ssl.crt", "cafile": "notebooks-ca_trust.crt"}
#: Settings a start reads that configurations usually leave at their default: given
#: their defaults in one go (fast_defaults.py) rather than one traitlets default at a
#: time. Only speed depends on this list being complete, never a value.
START_TRAITS = (
    "after_pod_created_hook", "args", "cert_paths", "cmd", "common_labels",
    "config_error_tolerance", "container_security_context", "cookie_options",
    "cpu_guarantee", "cpu_limit", "env", "env_keep", "environment", "extra_annotations",
    "extra_container_config", "extra_containers", "extra_labels", "extra_pod_config",
    "extra_resource_guarantees", "extra_resource_limits", "image_pull_error_tolerance",
    "image_pull_secrets", "init_containers", "lifecycle_hooks", "mem_guarantee",
    "mem_limit", "modify_pod_hook", "node_affinity_preferred", "node_affinity_required",
    "node_selector", "oauth_client_allowed_scopes", "pod_affinity_preferred",
    "pod_affinity_required", "pod_anti_affinity_preferred", "pod_anti_affinity_required",
    "pod_security_context", "profile_list", "security_profile", "slug_scheme",
    "storage_access_modes", "storage_extra_annotations", "storage_extra_labels",
    "storage_selector", "supplemental_gids", "tolerations", "unschedulable_tolerance",
    "user_namespace_annotations", "user_namespace_labels", "user_options", "volume_mounts",
    "volumes",
)  # fmt: skip


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


if TYPE_CHECKING:
    # For the type checker the mixin is what it always is at run time: the part of a
    # Spawner before JupyterHub's class in the MRO (its user, name, port, internal_ssl,
    # state methods ... are JupyterHub's). At run time it cannot be a Spawner subclass.
    from jupyterhub.spawner import Spawner as _SpawnerPart
else:
    _SpawnerPart = object


class KubeSpawnerSettings(
    DeferredConfigErrors,
    ApiTraits,
    EventsTraits,
    NamespaceTraits,
    NamingTraits,
    NetworkingTraits,
    HooksTraits,
    PodTraits,
    StopTraits,
    ResourceTraits,
    SecurityTraits,
    StorageTraits,
    ReadinessTraits,
    WatchTraits,
    OwnershipTraits,
    DeprecatedTraits,
    NumericLimits,
    _SpawnerPart,
):
    """The settings mixin placed before ``Spawner`` in ``KubeSpawner``'s bases."""

    if TYPE_CHECKING:
        port: int  # JupyterHub's trait; 0 becomes 8888 below

    env_keep: List[str] = List(
        [],
        config=True,
        help="""Hub environment variables passed on to the server. Empty by default: the
        hub's environment (service account paths, Kubernetes service variables) means
        nothing inside a user pod.""",
    )
    ssl_alt_names_include_local = Bool(
        False,
        config=True,
        help="Also put DNS:localhost and IP:127.0.0.1 in the internal-SSL certificate.",
    )

    @default("ssl_alt_names")
    def _default_ssl_alt_names(self) -> list[str]:
        return [
            f"DNS:{self.dns_name}",
            f"DNS:{self.pod_name}",
            f"DNS:{self.pod_name}.{self.namespace}",
            f"DNS:{self.pod_name}.{self.namespace}.svc",
        ]

    # What decided this server's names besides the templates: its saved state (and a
    # PVC found to exist), and names assigned explicitly (a pre_spawn_hook or a
    # profile's kubespawner_override setting spawner.pvc_name, as upstream honours).
    _saved: SavedNames = SavedNames()
    _assigned: Remembered = Remembered()
    _names_cache: tuple[str, Names] | None = None
    #: The uid of the pod this server created last (state key ``pod_uid``): a pod with it
    #: is this server's whatever its metadata says.
    pod_uid: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.port == 0:
            self.port = 8888
        if self._has_user():
            if self.working_dir:
                self.working_dir = self._expand_user_properties(self.working_dir, "working_dir")
            self._settle_namespace()
            self.check_name_uniqueness()
        self.settle_config_errors()

    # -- names -----------------------------------------------------------------------

    def _has_user(self) -> bool:
        return getattr(getattr(self, "user", None), "name", None) is not None

    #: The last template fields computed, with the inputs they were computed from.
    _fields_memo: tuple[tuple[Any, ...], TemplateFields] | None = None

    def _template_fields(self, slug_scheme: str | None = None) -> TemplateFields:
        """The ``{field}`` values of this server's templates.

        A pure function of the user's name and id, the server's name, the hub's namespace
        and the slug scheme, recomputed only when one of those differs from the last call
        (a start expands templates a dozen times; each computation escapes and hashes
        the names again).
        """
        user = self.user
        userid = getattr(user, "id", "")
        key = (
            user.name,
            self.name or "",
            userid,
            type(userid),  # 1 == True, but "{userid}" expands them differently
            hub_namespace(),
            slug_scheme or self.slug_scheme,
        )
        memo = self._fields_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        fields = TemplateFields.for_server(
            username=key[0], servername=key[1], userid=userid, hub_namespace=key[4],
            slug_scheme=key[5],
        )
        self._fields_memo = (key, fields)
        return fields

    def _name_templates(self, *, user_namespace: bool = False) -> NameTemplates:
        return NameTemplates(
            pod=self.pod_name_template,
            pvc=self.pvc_name_template,
            secret=self.secret_name_template,
            dns=self.dns_name_template,
            namespace=self.namespace,
            user_namespace=self.user_namespace_template if user_namespace else None,
        )

    @property
    def names(self) -> Names:
        """This server's object names, as they are now: assigned names, then names
        remembered in state, then the templates (a profile may have changed them).

        Derived from one pure function (``compute_names``); the result is kept until an
        input changes (a template or namespace setting, the slug scheme, the state, an
        assignment, the user's name), since names are read on every cache lookup and
        log line.
        """
        # A user can be renamed (a server cannot): the name is part of the cache key.
        identity = self.user.name
        cached = self._names_cache
        if cached is not None and cached[0] == identity:
            return cached[1]
        memory = self._saved.names.merged(self._assigned)
        try:
            names = compute_names(
                self._template_fields(), self._name_templates(), replace(memory, namespace=None)
            )
        except NameTemplateError as exc:
            raise self._template_error(exc) from None
        self._names_cache = (identity, names)
        return names

    @observe(
        "pod_name_template",
        "pvc_name_template",
        "secret_name_template",
        "dns_name_template",
        "namespace",
        "slug_scheme",
    )
    def _names_inputs_changed(self, _change: Any) -> None:
        self._names_cache = None

    def _remember(
        self, *, saved: SavedNames | None = None, assigned: Remembered | None = None
    ) -> None:
        """Change what decides names besides the templates (and so the names)."""
        if saved is not None:
            self._saved = saved
        if assigned is not None:
            self._assigned = assigned
        self._names_cache = None

    def _assign(self, **names: str) -> None:
        self._remember(
            assigned=replace(self._assigned, **{k: v or None for k, v in names.items()})
        )

    @property
    def pod_name(self) -> str:
        """The pod's name (also its Service's). Assignable, as upstream: a hook that
        sets it before start() decides the name of this spawn's pod."""
        return self.names.pod_name

    @pod_name.setter
    def pod_name(self, value: str) -> None:
        self._assign(pod_name=value)

    @property
    def pvc_name(self) -> str:
        """The PVC's name. Assignable (a hook, or ``kubespawner_override`` of
        ``pvc_name``); a name assigned so is used for the spawn, while a name already
        remembered in the server's state stays the one remembered."""
        return self.names.pvc_name

    @pvc_name.setter
    def pvc_name(self, value: str) -> None:
        self._assign(pvc_name=value)

    @property
    def dns_name(self) -> str:
        return self.names.dns_name

    @dns_name.setter
    def dns_name(self, value: str) -> None:
        self._assign(dns_name=value)

    @property
    def secret_name(self) -> str:
        return self.names.secret_name

    @secret_name.setter
    def secret_name(self, value: str) -> None:
        self._assign(secret_name=value)

    def _settle_namespace(self) -> None:
        """With user namespaces, the namespace setting takes the server's namespace:
        the one remembered in its state, else the template's (a profile override or a
        hook may still set another before start())."""
        remembered = self._saved.names.namespace
        if remembered:
            self.namespace = remembered
        elif self.enable_user_namespaces:
            try:
                self.namespace = compute_names(
                    self._template_fields(), self._name_templates(user_namespace=True)
                ).namespace
            except NameTemplateError as exc:
                raise self._template_error(exc) from None

    @staticmethod
    def _template_error(exc: NameTemplateError) -> SpawnerConfigError:
        return SpawnerConfigError(
            exc.setting,
            exc.template,
            exc.problem,
            "Use only the documented {fields}; double literal braces as {{ }}."
            if exc.setting != "dns_name_template"
            else "Only {name} and {namespace} are available.",
        )

    def _template_namespace(self, slug_scheme: str | None = None) -> dict[str, Any]:
        """What content templates (labels, volumes, environment ...) may use: the
        user/server fields and the resolved names."""
        names = self.names
        return template_values(
            self._template_fields(slug_scheme),
            namespace=self.namespace,
            pod_name=names.pod_name,
            pvc_name=names.pvc_name,
        )

    #: The last expansion values, with what they were computed from.
    _values_memo: tuple[TemplateFields, str, str, str, Mapping[str, Any]] | None = None

    def _expansion_values(self, slug_scheme: str | None) -> Mapping[str, Any]:
        """``_template_namespace()``, kept while its inputs are the same objects and names
        (a start expands a dozen templates, each needing the same values). Read-only:
        only the expansion below sees it."""
        names = self.names
        fields = self._template_fields(slug_scheme)
        namespace = self.namespace
        memo = self._values_memo
        if (
            memo is not None
            and memo[0] is fields
            and memo[1] == namespace
            and memo[2] == names.pod_name
            and memo[3] == names.pvc_name
        ):
            return memo[4]
        values = template_values(
            fields, namespace=namespace, pod_name=names.pod_name, pvc_name=names.pvc_name
        )
        self._values_memo = (fields, namespace, names.pod_name, names.pvc_name, values)
        return values

    def _expand_user_properties(
        self, template: str, setting: str = "template", slug_scheme: str | None = None
    ) -> str:
        """Fill ``template`` with this server's fields; trailing ``-`` dropped."""
        try:
            return expand_template(template, self._expansion_values(slug_scheme))
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise SpawnerConfigError(
                setting,
                template,
                f"the template cannot be expanded ({type(exc).__name__}: {exc})",
                "Use only the documented plain {fields} (no format specs, conversions,"
                " attributes or indexes); double literal braces as {{ }}.",
            ) from None

    def _expand_all(self, value: Any, setting: str = "template") -> Any:
        """Expand every string inside lists and dict values (not keys)."""
        if isinstance(value, str):
            return self._expand_user_properties(value, setting)
        if isinstance(value, Mapping):
            return {k: self._expand_all(v, f"{setting}[{k!r}]") for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._expand_all(v, f"{setting}[{i}]") for i, v in enumerate(value)]
        return value

    # -- checks ----------------------------------------------------------------------

    def check_configuration(self) -> None:
        """Raise SpawnerConfigError if a setting was refused when the configuration
        loaded (and no profile or hook replaced it since), or if this server's names or
        labels would be refused by the API server. Call before creating anything."""
        fill_static_defaults(self, START_TRAITS)
        self.raise_config_errors()
        self.check_name_uniqueness()
        if self.enable_user_namespaces and not is_valid_dns_label(self.namespace):
            self._bad_name(
                "user_namespace_template",
                self.user_namespace_template,
                self.namespace,
                "namespace",
                63,
            )
        elif not is_valid_dns_label(self.namespace):
            self._bad_name("namespace", self.namespace, self.namespace, "namespace", 63)
        if not is_valid_dns_subdomain(self.pod_name):
            self._bad_name("pod_name_template", self.pod_name_template, self.pod_name, "pod", 253)
        if self.needs_service:
            self._check_service_name()
        if not is_valid_dns_subdomain(self.pvc_name):
            self._bad_name("pvc_name_template", self.pvc_name_template, self.pvc_name, "PVC", 253)
        if self.needs_secret and not is_valid_dns_subdomain(self.secret_name):
            self._bad_name(
                "secret_name_template", self.secret_name_template, self.secret_name, "Secret", 253
            )
        self._check_label_values(
            "extra_labels",
            self._build_pod_labels(self._expand_all(self.extra_labels, "extra_labels")),
        )
        self._check_label_values(
            "storage_extra_labels",
            self._build_common_labels(
                self._expand_all(self.storage_extra_labels, "storage_extra_labels")
            ),
        )

    # True while a start runs: it checked the configuration before creating anything,
    # so the manifest methods it calls need not check it again.
    _configuration_checked: bool = False

    def _check_configuration_once(self) -> None:
        """The manifest methods check the configuration when called on their own (by a
        hook, a test); within a start, which checked it once already, they do not."""
        if not self._configuration_checked:
            self.check_configuration()

    def _check_service_name(self) -> None:
        """The Service takes the pod's name, and Service names are stricter (RFC 1035
        label: at most 63 characters, starting with a letter)."""
        if not (is_valid_dns_label(self.pod_name) and self.pod_name[0].isalpha()):
            self._bad_name(
                "pod_name_template", self.pod_name_template, self.pod_name, "Service", 63
            )

    def _bad_name(self, setting: str, template: str, name: str, kind: str, limit: int) -> None:
        raise SpawnerConfigError(
            setting,
            template,
            f"for user {self.user.name!r} it gives {name!r}, which is not a valid {kind} name",
            f"A {kind} name must be at most {limit} characters of [a-z0-9-] (and '.' except "
            "for namespaces and services), starting and ending with a letter or digit; build "
            "it from {safe_username}, {safe_servername} or {safe_user_server}, which always fit.",
        )

    def _check_label_values(self, setting: str, labels: Mapping[str, str]) -> None:
        for key, value in labels.items():
            if not is_valid_label(str(value)):
                raise SpawnerConfigError(
                    setting,
                    getattr(self, setting, None),
                    f"for user {self.user.name!r} the label {key!r} gets the value {value!r}, "
                    "which is not a valid label value",
                    "Label values are at most 63 characters of [A-Za-z0-9._-] starting and ending "
                    "with a letter or digit; {safe_username} and {safe_servername} always are.",
                )

    # -- labels and annotations ------------------------------------------------------

    def _build_common_labels(self, extra_labels: Mapping[str, str]) -> dict[str, str]:
        labels = {USERNAME_KEY: self._template_fields().user_label_value()}
        labels.update(extra_labels)
        labels.update(self.common_labels)
        return labels

    def _build_pod_labels(self, extra_labels: Mapping[str, str]) -> dict[str, str]:
        labels = self._build_common_labels(extra_labels)
        labels.update(
            {
                "component": self.component_label,
                "app.kubernetes.io/component": self.component_label,
                SERVERNAME_KEY: self._template_fields().server_label_value(),
            }
        )
        return labels

    def _build_common_annotations(
        self, extra_annotations: Mapping[str, str], scope: Scope = Scope.SERVER
    ) -> dict[str, str]:
        annotations = {USERNAME_KEY: self.user.name}
        if self.name:
            annotations[SERVERNAME_KEY] = self.name
        annotations["hub.jupyter.org/kubespawner-version"] = __version__
        annotations["hub.jupyter.org/jupyterhub-version"] = jupyterhub.__version__
        annotations.update(extra_annotations)
        # Last, so that no extra_annotations entry can make an object look like another's.
        annotations[IDENTITY_ANNOTATION] = self.server_identity().annotation(scope)
        return annotations

    # -- ownership (objects/identity.py) -----------------------------------------------

    def server_identity(self) -> ServerIdentity:
        """This server as the owner annotation records it: hub, raw user and server name."""
        hub = self.hub_identity or f"{hub_namespace()}/{self.component_label}"
        return ServerIdentity(hub=hub, user=self.user.name, server=self.name or "")

    def _namespace_fields(self) -> set[str]:
        """What tells two servers' namespaces apart (objects are unique per namespace)."""
        return _namespace_fields_of(
            self.user_namespace_template if self.enable_user_namespaces else None
        )

    def _inherited_fields(self) -> dict[str, set[str]]:
        """Fields that ``{namespace}`` and ``{pod_name}`` stand for in other templates."""
        return _inherited_fields_of(self.pod_name_template, self._namespace_fields())

    def pvc_scope(self) -> Scope:
        """Whom the PVC name is for, by pvc_name_template (recorded on the PVC)."""
        return template_scope(
            self.pvc_name_template, self._inherited_fields(), self._namespace_fields()
        )

    def _named_servers_allowed(self) -> bool:
        allowed = getattr(getattr(self, "user", None), "allow_named_servers", None)
        if allowed is None:
            allowed = self.config.get("JupyterHub", {}).get("allow_named_servers", False)
        return bool(allowed) or bool(getattr(self, "name", ""))

    def check_name_uniqueness(self) -> None:
        """Refuse name templates that give two servers the same pod, Service or Secret.

        Run when the spawner is built (the hub builds one per running server at start-up,
        so a bad template stops the hub with this message) and before every start (a
        profile may change a template). Object ownership would still keep servers apart,
        but every start after the first would fail.
        """
        found = _uniqueness_problem_of(
            self._named_servers_allowed(),
            self.pod_name_template,
            self.secret_name_template if self.needs_secret else None,
            self.user_namespace_template if self.enable_user_namespaces else None,
        )
        if found is not None:
            setting, template, problem = found
            raise SpawnerConfigError(
                setting,
                template,
                f"{problem}, so one server would stop or replace another's objects",
                "Include {user_server} (user and server), or {username} or {userid} "
                "and, when named servers are allowed, {servername}"
                + (
                    "; {pod_name} is unique when pod_name_template is"
                    if setting == "secret_name_template"
                    else ""
                )
                + ".",
            )

    # -- environment and command -----------------------------------------------------

    def get_env(self) -> dict[str, Any]:
        """The base Spawner's env, the image name, and templated ``environment`` values.

        A value that is not a valid template (JSON, say) is passed on literally, as
        ``environment`` values were before templating existed; only its key is logged.
        """
        env = super().get_env()
        env["JUPYTER_IMAGE_SPEC"] = self.image
        env["JUPYTER_IMAGE"] = self.image
        for key, value in self.environment.items():
            if callable(value) or not isinstance(value, str | Mapping):
                continue
            try:
                env[key] = self._expand_all(value, f"environment[{key!r}]")
            except SpawnerConfigError:
                self.log.warning("environment[%r] is not a valid template; using it literally", key)
        return env

    def get_args(self) -> list[str]:
        return list(super().get_args())

    def _container_args(self) -> list[str] | None:
        args = self.get_args()
        if self.cmd:
            return [*self.cmd, *args]
        if args:
            self.log.warning(
                "Spawner.args are ignored because KubeSpawner.cmd is None (the image's own "
                "command runs); set cmd to use them"
            )
        return None

    # -- callables -------------------------------------------------------------------

    async def _resolve(self, setting: str) -> Any:
        value = getattr(self, setting)
        if callable(value):
            value = await _maybe_await(value(self))
        return value

    async def _resolve_int(self, setting: str) -> int | None:
        value = await self._resolve(setting)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpawnerConfigError(
                setting,
                value,
                "the callable returned something other than an integer or None",
                "Return a numeric id.",
            )
        check_range(setting, value)
        return value

    async def _resolve_id_list(self, setting: str) -> list[int]:
        """A list of Linux ids from a setting that may be a callable. A string is refused:
        ``list("100")`` would silently become groups 1, 0 and 0."""
        value = await self._resolve(setting)
        if value is None:
            return []
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_LINUX_ID
            for v in value
        ):
            raise SpawnerConfigError(
                setting,
                value,
                "the callable must return a list of integer ids (0-2147483647)",
                "Return e.g. [100], not '100' or ['100'].",
            )
        return list(value)

    async def _resolve_mapping(self, setting: str) -> dict[str, Any]:
        """A dict from a setting that may be a callable (a security context): anything
        else would fail deep inside the manifest builder with no setting named."""
        value = await self._resolve(setting)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise SpawnerConfigError(
                setting,
                value,
                "the callable must return a dict (a Kubernetes security context) or None",
                "Return e.g. {'runAsNonRoot': True}.",
            )
        return dict(value)

    # -- manifests -------------------------------------------------------------------

    @property
    def needs_secret(self) -> bool:
        """Whether the pod gets a Secret (internal SSL files and/or the API token)."""
        return bool(self.internal_ssl or self.api_token_in_secret)

    @property
    def needs_service(self) -> bool:
        """Whether the pod gets a Service: ``services_enabled``, or internal SSL (whose
        URL and certificate use ``dns_name``, which only a Service resolves)."""
        return bool(self.services_enabled or self.internal_ssl)

    def _check_security_profile(
        self, uid: int | None, container_context: Mapping[str, Any], pod_context: Mapping[str, Any]
    ) -> None:
        """Refuse what the "restricted" profile would otherwise silently override, or
        what would still make the pod fail the restricted Pod Security Standard."""
        if self.security_profile == "baseline" and (
            self.privileged or container_context.get("privileged")
        ):
            raise SpawnerConfigError(
                "privileged" if self.privileged else "container_security_context",
                True,
                "a privileged container contradicts security_profile 'baseline'",
                "Do not run it privileged, or set security_profile = ''.",
            )
        if self.security_profile != "restricted":
            return

        def refuse(setting: str, value: Any, problem: str, fix: str) -> None:
            raise SpawnerConfigError(
                setting,
                value,
                f"{problem}, which contradicts security_profile 'restricted'",
                f"{fix}, or set security_profile = ''.",
            )

        if self.privileged or container_context.get("privileged"):
            setting = "privileged" if self.privileged else "container_security_context"
            refuse(setting, True, "a privileged container", "Do not run it privileged")
        if self.allow_privilege_escalation or container_context.get("allowPrivilegeEscalation"):
            setting = (
                "allow_privilege_escalation"
                if self.allow_privilege_escalation
                else "container_security_context"
            )
            refuse(setting, True, "privilege escalation is allowed", "Set it to False")
        run_as = [
            ("uid", uid),
            ("container_security_context", container_context.get("runAsUser")),
            ("pod_security_context", pod_context.get("runAsUser")),
        ]
        for setting, value in run_as:
            if value == 0:
                refuse(setting, 0, "it runs as root (uid 0)", "Run as a non-zero uid")
        for setting, context in (
            ("container_security_context", container_context),
            ("pod_security_context", pod_context),
        ):
            if context.get("runAsNonRoot") is False:
                refuse(setting, dict(context), "runAsNonRoot is False", "Drop runAsNonRoot")
        added = set((container_context.get("capabilities") or {}).get("add") or [])
        if added - {"NET_BIND_SERVICE"}:
            refuse(
                "container_security_context",
                dict(container_context),
                f"it adds capabilities {sorted(added - {'NET_BIND_SERVICE'})}",
                "Add at most NET_BIND_SERVICE",
            )

    async def get_pod_manifest(self) -> k8s.V1Pod:
        """The user's pod, before ``modify_pod_hook``. Resolves callables (sync or
        async), expands templates and checks the result."""
        fill_static_defaults(self, START_TRAITS)
        self._check_configuration_once()
        uid = await self._resolve_int("uid")
        gid = await self._resolve_int("gid")
        fs_gid = await self._resolve_int("fs_gid")
        supplemental_gids = await self._resolve_id_list("supplemental_gids")
        container_context = await self._resolve_mapping("container_security_context")
        pod_context = await self._resolve_mapping("pod_security_context")
        self._check_security_profile(uid, container_context, pod_context)

        env = self.get_env()
        if self.api_token_in_secret:
            env.update(api_token_env(self.secret_name))
        annotations = self._build_common_annotations(
            self._expand_all(self.extra_annotations, "extra_annotations")
        )
        settings = PodSettings(
            name=self.pod_name,
            image=self.image,
            labels=self._build_pod_labels(self._expand_all(self.extra_labels, "extra_labels")),
            annotations=annotations,
            port=self.port,
            args=self._container_args(),
            env=env,
            working_dir=self.working_dir,
            image_pull_policy=self.image_pull_policy,
            image_pull_secrets=list(self.image_pull_secrets),
            node_selector=dict(self.node_selector),
            uid=uid,
            gid=gid,
            fs_gid=fs_gid,
            supplemental_gids=list(supplemental_gids),
            privileged=self.privileged,
            allow_privilege_escalation=self.allow_privilege_escalation,
            container_security_context=dict(container_context),
            pod_security_context=dict(pod_context),
            security_profile=self.security_profile,
            cpu_limit=self.cpu_limit,
            cpu_guarantee=self.cpu_guarantee,
            mem_limit=self.mem_limit,
            mem_guarantee=self.mem_guarantee,
            extra_resource_limits=dict(self.extra_resource_limits),
            extra_resource_guarantees=dict(self.extra_resource_guarantees),
            volumes=self._expand_all(ordered_items(self.volumes), "volumes"),
            volume_mounts=self._expand_all(ordered_items(self.volume_mounts), "volume_mounts"),
            lifecycle_hooks=dict(self.lifecycle_hooks),
            init_containers=self._expand_all(
                ordered_items(self.init_containers), "init_containers"
            ),
            extra_containers=self._expand_all(
                ordered_items(self.extra_containers), "extra_containers"
            ),
            service_account=(
                self._expand_user_properties(self.service_account, "service_account")
                if self.service_account is not None
                else None
            ),
            automount_service_account_token=self.automount_service_account_token,
            tolerations=ordered_items(self.tolerations),
            node_affinity_preferred=ordered_items(self.node_affinity_preferred),
            node_affinity_required=ordered_items(self.node_affinity_required),
            pod_affinity_preferred=ordered_items(self.pod_affinity_preferred),
            pod_affinity_required=ordered_items(self.pod_affinity_required),
            pod_anti_affinity_preferred=ordered_items(self.pod_anti_affinity_preferred),
            pod_anti_affinity_required=ordered_items(self.pod_anti_affinity_required),
            priority_class_name=self.priority_class_name,
            scheduler_name=self.scheduler_name,
            extra_container_config=dict(self.extra_container_config),
            extra_pod_config=self._expand_all(dict(self.extra_pod_config), "extra_pod_config"),
            ssl_secret_name=self.secret_name if self.internal_ssl else None,
            ssl_secret_mount_path=self.secret_mount_path,
        )
        try:
            return build_pod_manifest(settings)
        except ManifestError as exc:
            raise SpawnerConfigError(
                exc.setting or "pod",
                None,
                str(exc),
                "Fix the named field.",
                show_value=False,
                context=settings,
            ) from None

    async def run_modify_pod_hook(self, pod: k8s.V1Pod) -> k8s.V1Pod:
        """Apply ``modify_pod_hook`` (sync or async); a hook returning None is a bug
        in the hook, reported as such rather than as a confusing API error."""
        if self.modify_pod_hook is None:
            return pod
        result = await _maybe_await(self.modify_pod_hook(self, pod))
        if result is None:
            raise SpawnerConfigError(
                "modify_pod_hook",
                self.modify_pod_hook,
                "the hook returned None instead of the pod",
                "Return the (modified) pod from the hook.",
            )
        return result

    async def prepare_pod(self) -> k8s.V1Pod:
        """``get_pod_manifest`` then ``modify_pod_hook``: the pod ``start()`` creates."""
        return await self.run_modify_pod_hook(await self.get_pod_manifest())

    async def run_after_pod_created_hook(self, pod: dict) -> None:
        if self.after_pod_created_hook is not None:
            await _maybe_await(self.after_pod_created_hook(self, pod))

    def get_pvc_manifest(self) -> k8s.V1PersistentVolumeClaim:
        self._check_configuration_once()
        labels = self._build_common_labels(
            self._expand_all(self.storage_extra_labels, "storage_extra_labels")
        )
        # As upstream: the old label names the storage, the modern one ties the claim
        # to the user servers' component.
        labels["component"] = "singleuser-storage"
        labels["app.kubernetes.io/component"] = self.component_label
        return build_pvc_manifest(
            PVCSettings(
                name=self.pvc_name,
                labels=labels,
                annotations=self._build_common_annotations(
                    self._expand_all(self.storage_extra_annotations, "storage_extra_annotations"),
                    self.pvc_scope(),
                ),
                storage=self.storage_capacity,
                storage_class=self.storage_class,
                access_modes=list(self.storage_access_modes),
                selector=self._expand_all(dict(self.storage_selector), "storage_selector"),
            )
        )

    def get_service_manifest(self, owner_reference: Any) -> k8s.V1Service:
        self._check_configuration_once()
        self._check_service_name()
        extra_labels = self._expand_all(self.extra_labels, "extra_labels")
        return build_service_manifest(
            ServiceSettings(
                name=self.pod_name,
                port=self.port,
                selector=self._build_pod_labels(extra_labels),
                labels=self._build_common_labels(extra_labels),
                annotations=self._build_common_annotations(
                    self._expand_all(self.extra_annotations, "extra_annotations")
                ),
                owner_references=[owner_reference],
            )
        )

    def get_secret_manifest(self, owner_reference: Any) -> k8s.V1Secret:
        """The pod's Secret: internal-SSL files (read from ``cert_paths``) and/or the
        API token (``api_token_in_secret``)."""
        self._check_configuration_once()
        files: dict[str, str | bytes] = {}
        if self.internal_ssl and self.cert_paths:
            files["ssl.key"] = Path(self.cert_paths["keyfile"]).read_text()
            files["ssl.crt"] = Path(self.cert_paths["certfile"]).read_text()
            trust = Path(self.cert_paths["cafile"]).read_text()
            hub_ca = (self.internal_trust_bundles or {}).get("hub-ca")
            if hub_ca:
                trust += Path(hub_ca).read_text()
            files["notebooks-ca_trust.crt"] = trust
        return build_secret_manifest(
            SecretSettings(
                name=self.secret_name,
                labels=self._build_common_labels(
                    self._expand_all(self.extra_labels, "extra_labels")
                ),
                annotations=self._build_common_annotations(
                    self._expand_all(self.extra_annotations, "extra_annotations")
                ),
                owner_references=[owner_reference],
                files=files,
                api_token=self.api_token if self.api_token_in_secret else None,
            )
        )

    def internal_ssl_pod_paths(self) -> dict[str, str]:
        """Where the certificates are inside the pod (the Secret's mount)."""
        base = self.secret_mount_path.rstrip("/") + "/"
        return {key: base + name for key, name in SSL_FILES.items()}

    def get_namespace_manifest(self) -> k8s.V1Namespace:
        self._check_configuration_once()
        return build_namespace_manifest(
            NamespaceSettings(
                name=self.namespace,
                labels=self._expand_all(dict(self.user_namespace_labels), "user_namespace_labels"),
                annotations=self._expand_all(
                    dict(self.user_namespace_annotations), "user_namespace_annotations"
                ),
            )
        )

    def _get_pod_url(self, pod: Mapping[str, Any]) -> str:
        """Where the hub and proxy reach the server: ``get_pod_url`` if set, else
        ``pod_connect_ip``, else ``dns_name`` (internal SSL or Services), else the pod IP."""
        if self.get_pod_url is not None:
            return self.get_pod_url(self, pod)
        internal_ssl = self.internal_ssl
        scheme = "https" if internal_ssl else "http"
        if self.pod_connect_ip:
            # A host name, not a slug: only the dot-separated parts with fields are
            # expanded (so "{username}-x.example.org" keeps its literal parts intact).
            host = ".".join(
                self._expand_user_properties(part, "pod_connect_ip") if "{" in part else part
                for part in self.pod_connect_ip.split(".")
            )
        elif internal_ssl or self.services_enabled:
            host = self.dns_name
        else:
            host = (pod.get("status") or {}).get("podIP") or ""
            if ":" in host:
                host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    def is_pod_running(self, pod: Mapping[str, Any] | None) -> bool:
        """Running, has an IP, not being deleted, and every container ready (upstream's
        hook point: a subclass may override it; the readiness verdicts use it)."""
        return pod_is_running(pod)

    # -- state -----------------------------------------------------------------------

    @property
    def _pvc_exists(self) -> bool:
        return self._saved.pvc_exists

    @property
    def _state_kubespawner_version(self) -> str | None:
        """The ``kubespawner_version`` the loaded state recorded (upstream's attribute:
        ``"unknown"`` for pre-7 state, None for none)."""
        return self._saved.version

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state.update(state_to_save(self.names, self._saved, __version__))
        if self.pod_uid:
            state["pod_uid"] = self.pod_uid
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        loaded = read_state(state, remember_pvc_name=self.remember_pvc_name)
        # A PVC known to exist stays known (load_state may come late, or twice).
        self._remember(
            saved=replace(loaded, existing_pvc=loaded.existing_pvc or self._saved.existing_pvc)
        )
        if isinstance(state.get("pod_uid"), str):
            self.pod_uid = state["pod_uid"]
        if loaded.is_legacy:
            self.log.info(
                "State of %s/%s has no kubespawner_version: written before KubeSpawner 7",
                self.user.name,
                self.name,
            )
        if loaded.names.namespace:
            # Persisted like upstream: the server's objects (its PVC above all) live
            # there, so a later change of user_namespace_template does not move them.
            self.namespace = loaded.names.namespace

    def clear_state(self) -> None:
        """Forget the stopped server's per-run names; a remembered PVC and the
        namespace stay. Names assigned for the last spawn are forgotten too: JupyterHub
        clears the state before each spawn's hooks and profile run, and they assign
        them again, so a volume chosen for one spawn never leaks into the next."""
        super().clear_state()
        self._remember(saved=after_stop(self._saved), assigned=Remembered())
        self.pod_uid = ""
        if self._has_user():
            self._settle_namespace()

    @property
    def needs_legacy_pvc_check(self) -> bool:
        """True on the first start of a server whose state a pre-7 KubeSpawner wrote."""
        return bool(
            self.handle_legacy_names
            and self.remember_pvc_name
            and not self._saved.pvc_exists
            and not self._assigned.pvc_name
            and self._saved.is_legacy
            and self.legacy_pvc_name() != self.pvc_name
        )

    async def resolve_legacy_pvc_name(self, pvc_exists: Callable[[str], Awaitable[bool]]) -> None:
        """The legacy-name check, given a way to ask whether a PVC exists.

        If the current name's PVC exists it is used; otherwise, if one with the
        pre-7 name exists, that one is adopted (and remembered), so upgrading never
        gives a user an empty volume. Does nothing unless ``needs_legacy_pvc_check``.
        """
        if not self.needs_legacy_pvc_check:
            return
        if await pvc_exists(self.pvc_name):
            self.mark_pvc_exists()
            return
        legacy = self.legacy_pvc_name()
        if await pvc_exists(legacy):
            self.log.warning("Using the pre-KubeSpawner-7 PVC %s for %s", legacy, self.user.name)
            self.use_pvc_name(legacy)

    def legacy_pvc_name(self) -> str:
        """The PVC name a pre-7 KubeSpawner gave this server ('escape' scheme)."""
        try:
            return legacy_pvc_name(self._template_fields(), self._name_templates(), self.names)
        except NameTemplateError as exc:
            raise self._template_error(exc) from None

    def pvc_names_of_this_server(self) -> set[str]:
        """The PVC names the current pvc_name_template gives this server, in the
        configured and in the legacy slug scheme (what ``delete_forever`` accepts as
        this server's name for a claim that records no scope)."""
        names = self.names
        fields, templates = self._template_fields(), self._name_templates()
        running = Remembered(
            namespace=names.namespace, pod_name=names.pod_name, dns_name=names.dns_name
        )
        try:
            return {
                compute_names(fields, templates, running).pvc_name,
                legacy_pvc_name(fields, templates, names),
            }
        except NameTemplateError as exc:
            raise self._template_error(exc) from None

    def use_pvc_name(self, name: str) -> None:
        """Adopt an existing PVC's name (found by the legacy check) for good."""
        self._remember(
            saved=replace(
                self._saved, names=replace(self._saved.names, pvc_name=name), existing_pvc=name
            )
        )

    def mark_pvc_exists(self) -> None:
        """The PVC now exists: remember its name in state (remember_pvc_name).

        Not a name assigned for this spawn (a hook's or a profile's ``pvc_name``): that
        volume is used for the spawn it was chosen for, while the server's own volume
        stays the one its state remembers (or its template names)."""
        if self._assigned.pvc_name:
            return
        self._remember(saved=self._saved.with_pvc(self.pvc_name, remember=self.remember_pvc_name))


@functools.lru_cache(maxsize=256)
def _uniqueness_problem_of(
    named_servers: bool,
    pod_name_template: str,
    secret_name_template: str | None,
    user_namespace_template: str | None,
) -> tuple[str, str, str] | None:
    """The first name template that cannot give every server its own name, as
    ``(setting, template, problem)``, or None.

    A pure function of the templates (parsed each time otherwise, and checked before
    every start): remembered per combination. ``secret_name_template`` is None when the
    server has no Secret, ``user_namespace_template`` when namespaces are not per user.
    A template that cannot be parsed raises each time, as the parse does.
    """
    context = _namespace_fields_of(user_namespace_template)
    inherited = _inherited_fields_of(pod_name_template, context)
    checks = [("pod_name_template", pod_name_template)]
    if secret_name_template is not None:
        checks.append(("secret_name_template", secret_name_template))
    for setting, template in checks:
        problem = uniqueness_problem(
            template, named_servers=named_servers, inherited=inherited, context=context
        )
        if problem:
            return setting, template, problem
    return None


def _namespace_fields_of(user_namespace_template: str | None) -> set[str]:
    """The fields of the per-user namespace template (None: one shared namespace)."""
    return template_fields(user_namespace_template) if user_namespace_template is not None else set()


def _inherited_fields_of(pod_name_template: str, namespace_fields: set[str]) -> dict[str, set[str]]:
    """What ``{namespace}`` and ``{pod_name}`` stand for in another template."""
    return {
        "namespace": namespace_fields,
        "pod_name": template_fields(pod_name_template) | namespace_fields,
    }
