"""The sums behind the statistics, folded by the real Lua script into a real Redis: exact
per-visitor squares and cross-products, order- and redelivery-independent, a multiple-exposure
count, a bounded working set, and an expiry on every key they add."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_text
from origin.events.counters import EventCounters
from origin.events.schema import ExperimentEvent, parse_event
from tests.origin.events.support import event

# visitor, variant, covariate, purchases (cents each), added to cart
VISITORS: list[tuple[str, str, int, list[int], bool]] = [
    ("a1", "control", 0, [], False),
    ("a2", "control", 3, [1000], True),
    ("a3", "control", 5, [500, 1500], True),
    ("b1", "compact", 1, [], True),
    ("b2", "compact", 2, [2500], False),
    ("b3", "compact", 7, [100, 200, 300], True),
]


def _events(now: float) -> list[ExperimentEvent]:
    raw: list[dict[str, Any]] = []
    for visitor, variant, x, purchases, cart in VISITORS:
        raw.append(event("exposure", visitor=visitor, variant=variant, pre_activity=x, at=now))
        raw.append(event("exposure", visitor=visitor, variant=variant, pre_activity=x, at=now))
        if cart:
            raw.append(event("add_to_cart", visitor=visitor, variant=variant, at=now))
        for cents in purchases:
            raw.append(
                event("purchase", visitor=visitor, variant=variant, value_cents=cents, at=now)
            )
    return [parse_event(r, now) for r in raw]


def _expected(variant: str) -> dict[str, float]:
    rows = [r for r in VISITORS if r[1] == variant]
    rev = [float(sum(r[3])) for r in rows]
    xs = [float(r[2]) for r in rows]
    buy = [1.0 if r[3] else 0.0 for r in rows]
    return {
        "n": len(rows),
        "sum_x": sum(xs),
        "sum_xx": sum(x * x for x in xs),
        "rev_y": sum(rev),
        "rev_yy": sum(r * r for r in rev),
        "rev_xy": sum(x * r for x, r in zip(xs, rev, strict=True)),
        "buy_y": sum(buy),
        "buy_xy": sum(x * b for x, b in zip(xs, buy, strict=True)),
        "cart_y": float(sum(1 for r in rows if r[4])),
    }


@pytest.mark.parametrize("order", ["in order", "shuffled", "reversed"])
async def test_sums_are_exact_whatever_the_order(seeded: RedisLike, order: str) -> None:
    counters = EventCounters(seeded)
    events = _events(time.time())
    if order == "shuffled":
        random.Random(7).shuffle(events)
    elif order == "reversed":
        events.reverse()  # every conversion ahead of its exposure
    await counters.fold(events)
    await counters.fold(events)  # redelivery changes nothing
    table = await counters.moments("hero")
    for variant in ("control", "compact"):
        want = _expected(variant)
        revenue = table.moments("revenue", variant)
        purchase = table.moments("purchase", variant)
        cart = table.moments("add_to_cart", variant)
        assert revenue.n == want["n"]
        assert (revenue.sum_x, revenue.sum_xx) == (want["sum_x"], want["sum_xx"])
        assert (revenue.sum_y, revenue.sum_yy, revenue.sum_xy) == (
            want["rev_y"], want["rev_yy"], want["rev_xy"],
        )  # fmt: skip
        assert (purchase.sum_y, purchase.sum_yy, purchase.sum_xy) == (
            want["buy_y"], want["buy_y"], want["buy_xy"],
        )  # fmt: skip
        assert cart.sum_y == want["cart_y"]
    assert table.total("multi", "control") == 0


async def test_a_visitor_in_two_variants_is_counted_once_against_the_first(
    seeded: RedisLike,
) -> None:
    counters = EventCounters(seeded)
    now = time.time()
    raw = [
        event("exposure", visitor="x", variant="control", at=now),
        event("exposure", visitor="x", variant="compact", at=now),
        event("exposure", visitor="x", variant="compact", at=now),
        event("purchase", visitor="x", variant="compact", value_cents=900, at=now),
    ]
    await counters.fold([parse_event(r, now) for r in raw])
    table = await counters.moments("hero")
    assert table.total("multi", "control") == 1
    assert table.total("n", "control") == 1
    assert table.total("n", "compact") == 0
    assert (
        table.moments("revenue", "control").sum_y == 0
    )  # the other variant's purchase is not credited


async def test_the_working_set_is_capped_and_every_new_key_expires(seeded: RedisLike) -> None:
    counters = EventCounters(seeded, max_tracked_visitors=3)
    now = time.time()
    await counters.fold(
        [parse_event(event("exposure", visitor=f"v{i}", at=now), now) for i in range(5)]
    )
    table = await counters.moments("hero")
    assert table.total("n", "control") == 3
    assert table.total("untracked", "control") == 2
    assert await seeded.hlen(keys.experiment_visitor_state_key("hero")) == 3
    for key in (keys.experiment_visitor_state_key("hero"), keys.experiment_moments_key("hero")):
        assert await seeded.ttl(key) > 0, key
    states = [as_text(s) for s in await seeded.hkeys(keys.experiment_visitor_state_key("hero"))]
    assert all(len(s) == 16 and not s.startswith("v") for s in states)  # digests, not ids
