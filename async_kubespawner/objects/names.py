"""The names of one server's objects, computed in one place from templates and memory.

A server's namespace, pod, DNS name, Secret and PVC names come from the ``*_template``
settings, unless something decided them already: the server's saved state (so a hub
restart or a changed template never loses a running pod or detaches a volume), or an
explicit assignment (a ``pre_spawn_hook`` or a profile's ``kubespawner_override``
setting ``spawner.pvc_name``, as upstream KubeSpawner honours). ``compute_names`` takes
all of that as data and returns every name at once, in dependency order (the pod name
may use ``{namespace}``; the DNS, Secret and PVC names may use ``{pod_name}``), so no
caller has to blank a name before expanding a template that might refer to it.

Pure: no spawner, no traitlets, no I/O. Template errors are raised as
:class:`NameTemplateError` naming the setting, for the caller to turn into its own
configuration error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .slugs import TemplateFields, expand_template

__all__ = [
    "NameTemplateError",
    "NameTemplates",
    "Names",
    "Remembered",
    "compute_names",
    "legacy_pvc_name",
    "template_values",
]


class NameTemplateError(ValueError):
    """A name template cannot be expanded: ``setting`` and ``template`` say which."""

    def __init__(self, setting: str, template: str, problem: str) -> None:
        super().__init__(f"{setting} = {template!r}: {problem}")
        self.setting = setting
        self.template = template
        self.problem = problem


@dataclass(frozen=True)
class NameTemplates:
    """The settings names are made from.

    ``namespace`` is the namespace setting's current value; ``user_namespace`` the
    ``user_namespace_template`` when ``enable_user_namespaces`` is on, else None.
    ``dns`` is ``dns_name_template``, whose only fields are ``{name}`` (the pod) and
    ``{namespace}``.
    """

    pod: str
    pvc: str
    secret: str
    dns: str
    namespace: str
    user_namespace: str | None = None


@dataclass(frozen=True)
class Remembered:
    """Names decided before the templates are consulted; each one set wins over its
    template, and names derived from it follow it (a remembered pod name gives the
    DNS and Secret names their ``{pod_name}``)."""

    namespace: str | None = None
    pod_name: str | None = None
    dns_name: str | None = None
    secret_name: str | None = None
    pvc_name: str | None = None

    def merged(self, over: Remembered) -> Remembered:
        """These names, with every name that ``over`` sets taking precedence."""
        return Remembered(
            namespace=over.namespace or self.namespace,
            pod_name=over.pod_name or self.pod_name,
            dns_name=over.dns_name or self.dns_name,
            secret_name=over.secret_name or self.secret_name,
            pvc_name=over.pvc_name or self.pvc_name,
        )


@dataclass(frozen=True)
class Names:
    """Every name of one server's objects."""

    namespace: str
    pod_name: str
    dns_name: str
    secret_name: str
    pvc_name: str


def template_values(
    fields: TemplateFields,
    *,
    namespace: str,
    pod_name: str | None = None,
    pvc_name: str | None = None,
    slug_scheme: str | None = None,
) -> dict[str, object]:
    """The values a template may use: the user/server fields plus the names resolved
    so far (only those: a template cannot see a name that depends on it)."""
    values: dict[str, object] = dict(fields.as_dict(slug_scheme))
    values["namespace"] = namespace
    if pod_name:
        values["pod_name"] = pod_name
    if pvc_name:
        values["pvc_name"] = pvc_name
    return values


def _expand(setting: str, template: str, values: Mapping[str, object]) -> str:
    try:
        return expand_template(template, values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise NameTemplateError(
            setting, template, f"the template cannot be expanded ({type(exc).__name__}: {exc})"
        ) from None


def _expand_dns(template: str, namespace: str, pod_name: str) -> str:
    try:
        return template.format(namespace=namespace, name=pod_name)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise NameTemplateError(
            "dns_name_template", template, f"the template cannot be expanded ({exc})"
        ) from None


def compute_names(
    fields: TemplateFields, templates: NameTemplates, remembered: Remembered | None = None
) -> Names:
    """Every name of one server, remembered names first, templates for the rest."""
    remembered = remembered or Remembered()
    if remembered.namespace:
        namespace = remembered.namespace
    elif templates.user_namespace is not None:
        namespace = _expand(
            "user_namespace_template",
            templates.user_namespace,
            template_values(fields, namespace=templates.namespace),
        )
    else:
        namespace = templates.namespace
    pod_name = remembered.pod_name or _expand(
        "pod_name_template", templates.pod, template_values(fields, namespace=namespace)
    )
    after_pod = template_values(fields, namespace=namespace, pod_name=pod_name)
    return Names(
        namespace=namespace,
        pod_name=pod_name,
        dns_name=remembered.dns_name or _expand_dns(templates.dns, namespace, pod_name),
        secret_name=remembered.secret_name
        or _expand("secret_name_template", templates.secret, after_pod),
        pvc_name=remembered.pvc_name or _expand("pvc_name_template", templates.pvc, after_pod),
    )


def legacy_pvc_name(fields: TemplateFields, templates: NameTemplates, names: Names) -> str:
    """The PVC name a KubeSpawner older than 7 gave this server: the same template in
    the 'escape' slug scheme (with the server's current namespace and pod name)."""
    values = template_values(
        fields, namespace=names.namespace, pod_name=names.pod_name, slug_scheme="escape"
    )
    return _expand("pvc_name_template", templates.pvc, values)
