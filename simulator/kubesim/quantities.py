"""Resource quantities as the API server reads and prints them.

The real server stores every quantity in canonical form: a pod created with
``cpu: 0.5`` and ``memory: 1024Mi`` reads back as ``500m`` and ``1Gi``. The spawner
compares what it reads with what it asked for, so the simulator canonicalises the same
way, and quotes canonical values in its error messages as the real one does.
"""

from __future__ import annotations

import functools
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from kubesim.quantity_grammar import QuantityError, parse_quantity

__all__ = ["QuantityError", "canonical_quantity", "quantity_value"]

_parse_cached = functools.lru_cache(maxsize=4096)(parse_quantity)

_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL_SUFFIXES = {
    -9: "n",
    -6: "u",
    -3: "m",
    0: "",
    3: "k",
    6: "M",
    9: "G",
    12: "T",
    15: "P",
    18: "E",
}
_NANO = Decimal("1e-9")


def quantity_value(value: Any) -> Decimal:
    """parse_quantity, memoised for strings: every pod repeats the same few ("1Gi", "500m")."""
    if isinstance(value, str):
        return _parse_cached(value)
    return parse_quantity(value)


def _format_of(raw: Any) -> str:
    text = str(raw).strip()
    if text[-2:] in _BINARY_SUFFIXES[1:]:
        return "BinarySI"
    stripped = text.lstrip("+-")
    if any(ch in "eE" for ch in stripped[1:]) and not stripped.endswith("E"):
        return "DecimalExponent"
    return "DecimalSI"


@functools.lru_cache(maxsize=4096)
def _canonical(raw: str) -> str:
    value = quantity_value(raw)
    # The API server keeps nano precision and rounds anything finer up (away from zero).
    rounding = ROUND_CEILING if value >= 0 else ROUND_FLOOR
    value = value.quantize(_NANO, rounding=rounding) if value % _NANO else value
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = -value if value < 0 else value
    kind = _format_of(raw)
    if kind == "BinarySI" and (magnitude < 1024 or magnitude != magnitude.to_integral_value()):
        kind = "DecimalSI"
    if kind == "BinarySI":
        number = int(magnitude)
        power = 0
        while power < len(_BINARY_SUFFIXES) - 1 and number % 1024 == 0:
            number //= 1024
            power += 1
        return f"{sign}{number}{_BINARY_SUFFIXES[power]}"
    exponent = 18
    while exponent > -9:
        mantissa = magnitude / (Decimal(10) ** exponent)
        if mantissa == mantissa.to_integral_value():
            break
        exponent -= 3
    mantissa = magnitude / (Decimal(10) ** exponent)
    number = int(mantissa.to_integral_value())
    if kind == "DecimalExponent":
        return f"{sign}{number}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{number}{_DECIMAL_SUFFIXES[exponent]}"


def canonical_quantity(raw: Any) -> str:
    """The string the real server stores for quantity ``raw`` ("0.5" -> "500m", "1024Mi" -> "1Gi").

    Raises QuantityError for values it cannot parse, like the real decoder.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise QuantityError(f"{raw!r} is not a quantity")
    return _canonical(raw if isinstance(raw, str) else repr(raw))
