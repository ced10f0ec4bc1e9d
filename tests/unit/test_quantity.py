"""The quantity grammar shared by the spawner's config checks and the simulator."""

from decimal import Decimal

import pytest

from async_kubespawner.kube.quantity import QuantityError, is_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        ("1.5Ki", Decimal(1536)),
        ("+2", Decimal(2)),
        (".5", Decimal("0.5")),
        (2, Decimal(2)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parses_valid_quantities(text: str, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text", ["lots", "", "1 Gi", "1GB", "Gi", "1.2.3", " 1", "1Gi ", True, None]
)
def test_rejects_invalid_quantities(text: object) -> None:
    assert not is_quantity(text)
    with pytest.raises(QuantityError, match="quantities must match"):
        parse_quantity(text)
