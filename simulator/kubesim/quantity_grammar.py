"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``): the API server's grammar.

The simulator is its own distribution and depends on nothing of the spawner, so it keeps
its own copy of this small grammar; ``tests/sim/test_quantity_grammars_agree.py`` checks
that the two copies accept, refuse and value the same strings.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# The API server's grammar: a signed decimal number, then a binary SI suffix,
# a decimal SI suffix, or a decimal exponent.
_QUANTITY_RE = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)

QUANTITY_FORMAT_HINT = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


class QuantityError(ValueError):
    """A string that the Kubernetes API would refuse as a resource quantity."""


def parse_quantity(value: object) -> Decimal:
    """Return the quantity's value in base units (cores, bytes, ...).

    Raises QuantityError with the API server's own wording, so that a hub
    operator sees the same hint the cluster would give.
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity: {QUANTITY_FORMAT_HINT}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a quantity: {QUANTITY_FORMAT_HINT}")
    match = _QUANTITY_RE.match(value.strip()) if value == value.strip() else None
    if match is None:
        raise QuantityError(f"{value!r} is not a quantity: {QUANTITY_FORMAT_HINT}")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise QuantityError(f"{value!r} is not a quantity: {QUANTITY_FORMAT_HINT}") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def is_quantity(value: object) -> bool:
    """True when the API server would accept ``value`` as a quantity."""
    try:
        parse_quantity(value)
    except QuantityError:
        return False
    return True
