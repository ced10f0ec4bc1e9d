"""Checks shared by the trait validators: they turn a bad value into a
``SpawnerConfigError`` that names the setting, the value, the problem and the fix.

They run when the hub loads its configuration (traitlets calls the validators as the
config is applied), so a typo fails loudly at start-up rather than as an API error
during some user's spawn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import kubernetes_asyncio.client as k8s
from traitlets import validate

from ..kube.quantity import QuantityError, parse_quantity
from ..objects.api_rules import FieldError, toleration_errors, volume_errors
from ..objects.manifests import (
    ManifestError,
    ModelClass,
    attribute_for_key,
    convert_value,
    ordered_items,
    to_dict,
    to_model,
)
from ..objects.slugs import (
    RESOLVED_NAME_FIELDS,
    USER_TEMPLATE_FIELDS,
    is_valid_label,
    template_field_names,
)
from .errors import SpawnerConfigError

USER_FIELDS = frozenset(USER_TEMPLATE_FIELDS)
# Fields a template for an object's *content* may use (the names are resolved first).
CONTENT_FIELDS = USER_FIELDS | frozenset(RESOLVED_NAME_FIELDS)

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def check_template(setting: str, template: str, allowed: Iterable[str]) -> None:
    """A template may only use known fields and must have balanced braces."""
    allowed = frozenset(allowed)
    try:
        used = template_field_names(template)
    except ValueError as exc:
        raise SpawnerConfigError(
            setting,
            template,
            f"it is not a valid template ({exc})",
            "Write fields as plain {username} (no format specs, conversions, attributes or"
            " indexes); double a literal brace as {{ or }}.",
        ) from None
    unknown = sorted(used - allowed)
    if unknown:
        fields = ", ".join("{" + u + "}" for u in unknown)
        raise SpawnerConfigError(
            setting,
            template,
            f"unknown template field {fields}",
            "Use one of: " + ", ".join("{" + f + "}" for f in sorted(allowed)) + ".",
        )


def check_templates_in(setting: str, value: Any, allowed: Iterable[str] = CONTENT_FIELDS) -> None:
    """Every string inside a templated list/dict setting must be a valid template."""
    for path, text in _strings(value, setting):
        check_template(path, text, allowed)


def check_models(setting: str, value: Any, model: ModelClass, what: str) -> None:
    """Each entry of a ``Union[List, Dict]`` setting must describe a ``model``."""
    for index, item in enumerate(ordered_items(value)):
        try:
            to_model(model, item, f"{setting}[{index}]")
        except ManifestError as exc:
            raise SpawnerConfigError(
                setting,
                item,
                f"entry {index} is not a valid {what}: {exc}",
                f"Give each entry as a Kubernetes {what} in camelCase or snake_case.",
            ) from None


def check_model_fields(setting: str, value: Mapping, model: ModelClass, what: str) -> None:
    """The keys of a partial object (extra_container_config ...) must be fields of it."""
    for key, item in value.items():
        attribute = attribute_for_key(model, str(key))
        if attribute is None:
            known = ", ".join(sorted(model.attribute_map.values()))
            raise SpawnerConfigError(
                setting,
                value,
                f"{key!r} is not a field of a {what}",
                f"Use the field names of a Kubernetes {what}: {known}.",
            )
        try:
            convert_value(model.openapi_types[attribute], item, f"{setting}.{key}")
        except ManifestError as exc:
            raise SpawnerConfigError(
                setting, value, str(exc), f"Give {key!r} as a Kubernetes {what} expects it."
            ) from None


def check_camel_case_fields(setting: str, value: Mapping, model: ModelClass, what: str) -> None:
    """Security contexts are merged as dicts in the API's spelling: camelCase only."""
    camel = set(model.attribute_map.values())
    for key in value:
        if key in camel:
            continue
        hint = ""
        if key in model.attribute_map:
            hint = f" (write it as {model.attribute_map[key]!r})"
        raise SpawnerConfigError(
            setting,
            value,
            f"{key!r} is not a camelCase field of a {what}{hint}",
            f"Use the API's camelCase field names: {', '.join(sorted(camel))}.",
        )
    try:
        to_model(model, dict(value), setting)
    except ManifestError as exc:
        raise SpawnerConfigError(setting, value, str(exc), f"Give a valid {what}.") from None


def check_quantities(setting: str, value: Mapping) -> None:
    for resource, amount in value.items():
        try:
            parse_quantity(amount)
        except QuantityError as exc:
            raise SpawnerConfigError(
                setting,
                value,
                f"the amount for {resource!r} is not a Kubernetes quantity: {exc}",
                "Write amounts like 1, 500m, 2Gi or 1e3.",
            ) from None


def check_quantity(setting: str, value: Any) -> None:
    try:
        parse_quantity(value)
    except QuantityError as exc:
        raise SpawnerConfigError(
            setting, value, f"it is not a Kubernetes quantity: {exc}", "Write it like 10Gi or 500M."
        ) from None


def is_valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_LABEL_NAME.match(name))


def check_label_keys(setting: str, value: Mapping) -> None:
    for key in value:
        if not isinstance(key, str) or not is_valid_label_key(key):
            raise SpawnerConfigError(
                setting,
                value,
                f"{key!r} is not a valid label key",
                "A key is an optional DNS-subdomain prefix and '/', then up to 63 characters "
                "of [A-Za-z0-9._-] starting and ending with a letter or digit.",
            )


def check_literal_label_values(setting: str, value: Mapping) -> None:
    """Label values without template fields can be checked as soon as they are set
    (templated ones are checked per user, by ``check_configuration``)."""
    for key, item in value.items():
        if isinstance(item, str) and "{" not in item and not is_valid_label(item):
            raise SpawnerConfigError(
                setting,
                value,
                f"the value {item!r} of {key!r} is not a valid label value",
                "Label values are at most 63 characters of [A-Za-z0-9._-] starting and "
                "ending with a letter or digit (or empty).",
            )


def check_metadata_map(
    setting: str, value: Mapping, fields: Iterable[str], *, labels: bool
) -> None:
    """A labels or annotations setting: string values, valid keys, templates using only
    ``fields``, and (for ``labels``) literal values that are valid label values. The same
    rules for every object's metadata, so each setting fails the same way."""
    check_string_map(setting, value)
    check_label_keys(setting, value)
    if labels:
        check_literal_label_values(setting, value)
    check_templates_in(setting, value, fields)


def metadata_validator(labels: str, annotations: str, fields: Iterable[str]) -> Any:
    """The traitlets validator of a labels setting and its annotations companion, for a
    class body: every object's metadata settings are checked by :func:`check_metadata_map`
    with the same rules, the labels one also for literal label values."""

    def check(self: Any, proposal: Any) -> Any:
        name = proposal.trait.name
        check_metadata_map(name, proposal.value, fields, labels=name == labels)
        return proposal.value

    return validate(labels, annotations)(check)


def check_string_map(setting: str, value: Mapping) -> None:
    for key, item in value.items():
        if not isinstance(item, str):
            raise SpawnerConfigError(
                setting,
                value,
                f"the value for {key!r} is a {type(item).__name__}, not a string",
                'Quote the value, e.g. "true" or "1".',
            )


def _refuse_field_errors(setting: str, value: Any, errors: list[FieldError], what: str) -> None:
    if errors:
        raise SpawnerConfigError(
            setting,
            value,
            "Kubernetes would refuse it: " + "; ".join(str(e) for e in errors[:5]),
            f"Give each entry as a valid Kubernetes {what}.",
        )


def check_tolerations(setting: str, value: Any) -> None:
    """Operators, effects and keys as the API server checks them, at load."""
    errors: list[FieldError] = []
    for index, item in enumerate(ordered_items(value)):
        entry = to_dict(to_model(k8s.V1Toleration, item, setting))
        errors.extend(toleration_errors(f"{setting}[{index}]", entry))
    _refuse_field_errors(setting, value, errors, "Toleration")


def check_volumes(setting: str, value: Any) -> None:
    """Volume names (unique, DNS labels) and exactly one source each, at load. Names
    with template fields are checked per user, before the pod is created."""
    errors: list[FieldError] = []
    names: set[str] = set()
    for index, item in enumerate(ordered_items(value)):
        entry = to_dict(to_model(k8s.V1Volume, item, setting))
        name = str(entry.get("name") or "")
        if "{" in name:
            continue
        errors.extend(volume_errors(f"{setting}[{index}]", entry))
        if name in names:
            errors.append(FieldError(f"{setting}[{index}].name", f'Duplicate value: "{name}"'))
        names.add(name)
    _refuse_field_errors(setting, value, errors, "Volume")
