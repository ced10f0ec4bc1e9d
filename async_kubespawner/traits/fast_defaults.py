"""Unset settings given their class default at a fraction of traitlets' first-read cost.

A start reads some fifty settings that a typical configuration leaves at their default
(``volumes``, ``tolerations``, ``extra_labels`` ...). traitlets computes a default on
the first read of each, per spawner: it looks up the generator, builds the value, runs
the trait's validation and notifies observers of a ``"default"`` event — about 5 µs a
setting, a quarter of a start's own Python in a storm, where every spawner starts once.

For a trait whose default is *static* (the trait's own default, no ``@default`` method,
no ``_<name>_default``), the validated value is the same for every instance of a class,
so it is computed once per class here and handed to each spawner as traitlets itself
would: the very object when traitlets shares it between instances, a shallow copy when
traitlets builds a fresh container (whose items are then immutable, so a shallow copy
is an exact one). Anything else — a dynamic default, a value already set (config,
profile, hook), an observer of ``"default"`` events, a default of another shape — takes
the ordinary traitlets path, so what a spawner reads is always what traitlets would give.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from traitlets import All, HasTraits, TraitType

__all__ = ["fill_static_defaults"]

_IMMUTABLE = (str, int, float, bool, type(None), bytes, frozenset)
_COPYABLE = (list, dict, set)


class _Slow:
    """Marks a trait whose default must come from traitlets itself."""


_SLOW = _Slow()
_NOT_A_TRAIT = _Slow()


@dataclass(frozen=True)
class _Static:
    """A static default: the validated value, and whether each instance gets a copy."""

    value: Any
    copied: bool
    magic_name: str  # ``_<name>_default``, which an instance could still define


#: The instance attribute listing the ``names`` collections filled (a second call is free).
_FILLED = "_static_defaults_filled"
#: Per class: trait name -> how its default is handed out.
_tables: dict[type, dict[str, _Static | _Slow]] = {}


def _validated_default(obj: HasTraits, name: str, trait: TraitType[Any, Any]) -> Any:
    """The default exactly as ``TraitType.get`` computes it (without storing it)."""
    default = obj.trait_defaults(name)
    lock = obj._cross_validation_lock
    try:
        obj._cross_validation_lock = True
        return trait._validate(obj, default)
    finally:
        obj._cross_validation_lock = lock


def _only_immutable_items(value: Any) -> bool:
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    return all(isinstance(k, _IMMUTABLE) and isinstance(v, _IMMUTABLE) for k, v in items)


def _entry(obj: HasTraits, name: str) -> _Static | _Slow:
    """How ``name``'s default is handed out for ``type(obj)``, decided once per class."""
    cls = type(obj)
    trait = getattr(cls, name, None)
    if not isinstance(trait, TraitType):
        return _NOT_A_TRAIT
    magic_name = f"_{name}_default"
    if magic_name in cls.__dict__:
        return _SLOW
    if cls._all_trait_default_generators.get(name) != trait.default:
        return _SLOW  # a @default method: may depend on the instance
    first, second = _validated_default(obj, name, trait), _validated_default(obj, name, trait)
    if first is second:
        return _Static(first, False, magic_name)  # traitlets shares this very object
    if type(first) is not type(second) or first != second:
        return _SLOW
    if isinstance(first, _IMMUTABLE):
        return _Static(first, False, magic_name)
    if type(first) in _COPYABLE and _only_immutable_items(first):
        return _Static(first, True, magic_name)
    return _SLOW


def _plan(obj: HasTraits, names: Collection[str]) -> _Plan:
    """What filling ``names`` means for ``type(obj)``: the static entries, in order,
    and the names whose default traitlets must compute (decided once per class)."""
    table = _tables.setdefault(type(obj), {})
    statics: list[tuple[str, _Static]] = []
    slow: list[str] = []
    for name in names:
        entry = table.get(name)
        if entry is None:
            entry = table[name] = _entry(obj, name)
        if isinstance(entry, _Static):
            statics.append((name, entry))
        elif entry is not _NOT_A_TRAIT:
            slow.append(name)
    return tuple(statics), tuple(slow)


_Plan = tuple[tuple[tuple[str, _Static], ...], tuple[str, ...]]
#: Per class and names collection (by identity: the callers pass module constants).
_plans: dict[tuple[type, int], tuple[Collection[str], _Plan]] = {}


def fill_static_defaults(obj: HasTraits, names: Collection[str]) -> None:
    """Give each trait in ``names`` that ``obj`` has not set yet its static default.

    Equivalent to reading each of them once (the value, its identity or copy semantics),
    minus the ``"default"`` notification: while anything observes those, every trait is
    read the ordinary way. Unknown names are skipped; traits with dynamic defaults are
    read the ordinary way.
    """
    instance_dict = obj.__dict__
    filled = instance_dict.get(_FILLED, ())
    if any(done is names for done in filled):
        return  # done for this collection: each name has a value now (or is not a trait)
    values = obj._trait_values
    key = (type(obj), id(names))
    known = _plans.get(key)
    if known is None or known[0] is not names:
        known = _plans[key] = (names, _plan(obj, names))  # holds names: the id stays its
    statics, slow = known[1]
    ordinary = any(
        by_type.get("default") or by_type.get(All) for by_type in obj._trait_notifiers.values()
    )
    for name, entry in statics:
        if name in values:
            continue
        if ordinary or entry.magic_name in instance_dict:
            getattr(obj, name)
        else:
            values[name] = entry.value.copy() if entry.copied else entry.value
    for name in slow:
        if name not in values:
            getattr(obj, name)
    instance_dict[_FILLED] = (*filled, names)
