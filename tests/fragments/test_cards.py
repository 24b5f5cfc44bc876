"""Cards: the visible stock state of a unit count, and badges in display order."""

from __future__ import annotations

import pytest

from fragments.bundle import StockState
from fragments.cards import LOW_STOCK_THRESHOLD, badges, stock_state


@pytest.mark.parametrize(
    ("available", "state"),
    [
        (-3, "sold_out"),
        (0, "sold_out"),
        (1, "low_stock"),
        (LOW_STOCK_THRESHOLD, "low_stock"),
        (LOW_STOCK_THRESHOLD + 1, "in_stock"),
        (48, "in_stock"),
        (10**9, "in_stock"),
    ],
)
def test_stock_state(available: int, state: StockState) -> None:
    assert stock_state(available) == state


def test_count_only_changes_do_not_change_the_state() -> None:
    assert stock_state(48) == stock_state(47) == stock_state(6)
    assert stock_state(5) == stock_state(1)


@pytest.mark.parametrize(
    ("price", "compare_at", "promo", "state", "expected"),
    [
        (1000, None, None, "in_stock", ()),
        (1000, 1500, None, "in_stock", ("sale",)),
        (1000, 1000, None, "in_stock", ()),
        (1000, 900, None, "in_stock", ()),
        (1000, None, "2 for 1", "in_stock", ("promo",)),
        (1000, None, "", "in_stock", ()),
        (1000, 1500, "2 for 1", "low_stock", ("low-stock", "sale", "promo")),
        (1000, 1500, "2 for 1", "sold_out", ("sold-out", "sale", "promo")),
        (1000, None, None, "sold_out", ("sold-out",)),
    ],
)
def test_badges_in_display_order(
    price: int,
    compare_at: int | None,
    promo: str | None,
    state: StockState,
    expected: tuple[str, ...],
) -> None:
    assert badges(price, compare_at, promo, state) == expected
