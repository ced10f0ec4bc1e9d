"""Typed models that are also their own OpenAPI schema.

Why one source: a CustomResourceDefinition's ``openAPIV3Schema`` and the code that reads
the objects drift apart the moment they are written twice (a field renamed in one place
is pruned by the API server in silence). Here each CRD's spec and status are plain
dataclasses; :func:`openapi_schema` derives the structural schema from their type hints
and field metadata, and :func:`from_json` / :func:`to_json` convert objects read from and
written to the API. A test checks that the committed CRD YAML equals what this module
generates.

Supported field types: ``str``, ``int``, ``bool``, nested dataclasses, ``list[T]``,
``dict[str, str]`` and :data:`FreeForm` (an object the schema preserves as is, e.g. a
pod spec). ``T | None`` marks an optional field. JSON names are the camelCase of the
attribute names unless ``json=`` says otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, NewType, TypeVar, get_args, get_origin, get_type_hints

#: An object kept verbatim (``x-kubernetes-preserve-unknown-fields``): a pod spec, a
#: Service spec, anything the template names.
FreeForm = NewType("FreeForm", dict)

T = TypeVar("T")


class ModelError(ValueError):
    """An object read from the API does not fit its model (the path says where)."""


def prop(
    description: str,
    *,
    json: str | None = None,
    pattern: str | None = None,
    enum: list[str] | None = None,
    max_length: int | None = None,
    max_items: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    default: Any = dataclasses.MISSING,
    schema_default: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its schema constraints.

    ``default`` is the Python default (for mutable defaults pass a callable via
    ``default_factory``-like zero-argument callables); ``schema_default`` is also
    written into the CRD so the API server fills it in.
    """
    metadata = {
        "description": description,
        "json": json,
        "pattern": pattern,
        "enum": enum,
        "maxLength": max_length,
        "maxItems": max_items,
        "minimum": minimum,
        "maximum": maximum,
        "schema_default": schema_default,
    }
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if callable(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def json_name(field: dataclasses.Field[Any]) -> str:
    explicit = field.metadata.get("json")
    if explicit:
        return str(explicit)
    head, *rest = field.name.split("_")
    return head + "".join(part.title() for part in rest)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return args[0], True
    return hint, False


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    """Resolved type hints of a model (cached: resolving them compiles every annotation)."""
    return get_type_hints(cls, globalns=vars(__import__(cls.__module__, fromlist=["_"])))


def _type_schema(hint: Any) -> dict[str, Any]:
    if hint is FreeForm:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    origin = get_origin(hint)
    if origin is list:
        (item,) = get_args(hint)
        return {"type": "array", "items": _type_schema(item)}
    if origin is dict:
        key, value = get_args(hint)
        if key is not str:
            raise TypeError(f"map keys must be strings: {hint}")
        return {"type": "object", "additionalProperties": _type_schema(value)}
    if dataclasses.is_dataclass(hint):
        return openapi_schema(hint)  # type: ignore[arg-type]  # a typing form, not a class
    raise TypeError(f"no schema for {hint!r}")


def openapi_schema(cls: type) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model dataclass."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        hint, optional = _unwrap_optional(hints[field.name])
        schema = _type_schema(hint)
        meta = field.metadata
        if meta.get("description"):
            schema = {"description": meta["description"], **schema}
        for key in ("pattern", "enum", "maxLength", "maxItems", "minimum", "maximum"):
            if meta.get(key) is not None:
                schema[key] = meta[key]
        if meta.get("schema_default", dataclasses.MISSING) is not dataclasses.MISSING:
            schema["default"] = meta["schema_default"]
        name = json_name(field)
        properties[name] = schema
        has_default = (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        )
        if not optional and not has_default:
            required.append(name)
    out: dict[str, Any] = {"type": "object"}
    if cls.__doc__:
        out["description"] = " ".join(cls.__doc__.split("\n\n")[0].split())
    out["properties"] = properties
    if required:
        out["required"] = required
    return out


def _convert_in(hint: Any, value: Any, path: str) -> Any:
    hint, optional = _unwrap_optional(hint)
    if value is None:
        if optional:
            return None
        raise ModelError(f"{path}: required")
    if hint is FreeForm:
        if not isinstance(value, dict):
            raise ModelError(f"{path}: must be an object")
        return value
    if hint in (str, int, bool):
        ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
        if not ok:
            raise ModelError(f"{path}: must be of type {hint.__name__}")
        return value
    origin = get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            raise ModelError(f"{path}: must be a list")
        (item,) = get_args(hint)
        return [_convert_in(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ModelError(f"{path}: must be an object")
        _, item = get_args(hint)
        return {str(k): _convert_in(item, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value, path)  # type: ignore[arg-type]  # a typing form, not a class
    raise TypeError(f"cannot convert {hint!r}")


def from_json(cls: type[T], data: Any, path: str = "") -> T:
    """A model instance from parsed JSON; unknown keys are ignored (as the server prunes)."""
    if not isinstance(data, dict):
        raise ModelError(f"{path or cls.__name__}: must be an object")
    model: Any = cls
    hints = _hints(model)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(model):
        name = json_name(field)
        where = f"{path}.{name}" if path else name
        if name not in data or data[name] is None:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            _, optional = _unwrap_optional(hints[field.name])
            if not has_default and not optional:
                raise ModelError(f"{where}: required")
            continue
        kwargs[field.name] = _convert_in(hints[field.name], data[name], where)
    return cls(**kwargs)


def to_json(value: Any) -> Any:
    """Plain JSON of a model instance (``None`` fields and empty optional lists left out)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is None:
                continue
            out[json_name(field)] = to_json(item)
        return out
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
