"""How raw observations become the reported figures: percentiles and their units.

The percentile is the nearest-rank one (the smallest observation with at least p% of
the observations at or below it): every reported value is a latency that actually
happened, which matters when a p99 of a few hundred samples is compared with a target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 90, 99)


def nearest_rank(sorted_values: Sequence[float], percent: float) -> float:
    """The nearest-rank ``percent`` percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("cannot take a percentile of no values")
    if not 0 < percent <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percent}")
    rank = math.ceil(percent / 100 * len(sorted_values))
    return float(sorted_values[max(rank, 1) - 1])


def summarise(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int | None]:
    """``{"p50", "p90", "p99", "max", "n"}`` of ``values`` times ``scale`` (None when empty).

    ``scale=1000`` turns seconds into the milliseconds the JSON reports.
    """
    ordered = sorted(values)
    summary: dict[str, float | int | None] = {}
    for p in PERCENTILES:
        summary[f"p{p}"] = round(nearest_rank(ordered, p) * scale, digits) if ordered else None
    summary["max"] = round(ordered[-1] * scale, digits) if ordered else None
    summary["n"] = len(ordered)
    return summary
