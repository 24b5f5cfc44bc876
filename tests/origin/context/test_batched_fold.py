"""The processor's batched paths equal their one-at-a-time definitions: `apply_events` (one pass,
views bounded once) against `apply_event` folded event by event, including past the view,
horizon and session bounds; and co-views summed per pair and applied per hash-slot group in
Redis against ZINCRBY one co-view at a time."""

from __future__ import annotations

import random
from functools import reduce
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from fragments.clickstream import CLICK_TYPES, ClickEvent
from origin.context import learned_store, profile
from origin.context.learned import SESSION_WINDOW_SECONDS, CoView, aggregate, new_coviews, weight_at
from origin.context.learned_store import LearnedLists, anchor_groups
from origin.context.profile import Profile, apply_event, apply_events
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_text

T0 = 1_700_000_000.0


def click_events(seconds: float, sessions: int) -> st.SearchStrategy[ClickEvent]:
    return st.builds(
        lambda n, kind, at, sku, category, price, session, campaign, consent: ClickEvent(
            f"event-{n:05d}",
            kind,
            "v1",
            f"s{session}",
            T0 + at,
            consent,
            sku,
            category,
            price,
            campaign,
        ),
        st.integers(0, 99999),
        st.sampled_from(CLICK_TYPES),
        st.floats(0, seconds, allow_nan=False),
        st.one_of(st.none(), st.sampled_from(["A", "B", "C", "D"])),
        st.one_of(st.none(), st.sampled_from(["outdoor", "books"])),
        st.one_of(st.none(), st.integers(0, 20000)),
        st.integers(0, sessions),
        st.one_of(st.none(), st.sampled_from(["spring", "fall"])),
        st.booleans(),
    )


events = click_events(4 * 24 * 3600, 6)
close_events = click_events(2 * SESSION_WINDOW_SECONDS, 2)


def one_by_one(start: Profile | None, batch: list[ClickEvent]) -> Profile | None:
    consented = [e for e in batch if e.consent]
    return reduce(apply_event, consented, start) if consented else start


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=40), st.lists(events, max_size=40))
def test_apply_events_equals_apply_event_one_by_one(
    first: list[ClickEvent], second: list[ClickEvent]
) -> None:
    start = apply_events(None, first)
    assert start == one_by_one(None, first)
    assert apply_events(start, second) == one_by_one(start, second)


def test_apply_events_equals_one_by_one_past_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small bounds, so views fall out by count and horizon and sessions by count."""
    monkeypatch.setattr(profile, "MAX_VIEWS", 5)
    monkeypatch.setattr(profile, "MAX_SESSIONS", 3)
    monkeypatch.setattr(profile, "HORIZON_SECONDS", 24 * 3600)
    rng = random.Random(15)
    for _ in range(200):
        batch = [
            ClickEvent(
                f"event-{rng.randrange(10**5):05d}",
                rng.choice(CLICK_TYPES),
                "v1",
                f"s{rng.randrange(8)}",
                T0 + rng.uniform(0, 4 * 86400),
                True,
                rng.choice(["A", "B", None]),
                rng.choice(["books", None]),
                rng.randrange(1000),
                None,
            )
            for _ in range(rng.randrange(1, 40))
        ]
        cut = rng.randrange(len(batch))
        start = apply_events(None, batch[:cut])
        after = apply_events(start, batch[cut:])
        assert after == one_by_one(one_by_one(None, batch[:cut]), batch[cut:])
        assert after is not None
        assert len(after.views) <= 5
        assert len(after.sessions) <= 3


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from("ABC"), st.floats(0, 1e6))))
def test_aggregate_sums_each_pair(rows: list[tuple[str, str, float]]) -> None:
    summed = aggregate(CoView(a, o, w) for a, o, w in rows)
    expected: dict[tuple[str, str], float] = {}
    for a, o, w in rows:
        expected[(a, o)] = expected.get((a, o), 0.0) + w
    assert {(a, o): w for a, row in summed.items() for o, w in row.items()} == expected


def random_coviews(rng: random.Random, anchors: int) -> list[CoView]:
    skus = [f"SKU-{n:03d}" for n in range(anchors)]
    return [
        CoView(rng.choice(skus), rng.choice(skus), rng.choice([1.0, 0.5, 2.0**20, 3.25]))
        for _ in range(rng.randrange(1, 300))
    ]


async def test_grouped_increments_equal_zincrby_one_by_one(
    redis_client: RedisLike, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(learned_store, "MAX_ANCHORS_PER_CALL", 7)  # several groups on one node
    learned = LearnedLists(redis_client, top_k=10_000)
    rng = random.Random(15)
    for case in range(20):
        await redis_client.flushall()
        coviews = random_coviews(rng, 40)
        await learned.add(coviews)
        expected: dict[str, dict[str, float]] = {}
        for c in coviews:  # the definition: one ZINCRBY per co-view, in a plain dict
            row = expected.setdefault(c.anchor, {})
            row[c.other] = row.get(c.other, 0.0) + c.weight
            await redis_client.zincrby(f"case:{{ll:{c.anchor}}}:one", c.weight, c.other)
        for anchor, row in expected.items():
            stored = await learned.top(anchor)
            one: list[Any] = await redis_client.zrange(
                f"case:{{ll:{anchor}}}:one", 0, -1, withscores=True
            )
            assert {r.sku: r.score for r in stored} == pytest.approx(row, rel=1e-12), case
            assert {as_text(k): float(v) for k, v in one} == pytest.approx(row, rel=1e-12), case


async def test_grouped_top_k_and_changed_anchors(redis_client: RedisLike) -> None:
    """Bounded lists: each anchor keeps the K best of its summed scores; `add` names exactly
    the anchors whose top-K membership moved."""
    learned = LearnedLists(redis_client, top_k=3)
    rng = random.Random(16)
    totals: dict[str, dict[str, float]] = {}
    for _ in range(15):
        coviews = random_coviews(rng, 30)
        before = {a: {r.sku for r in await learned.top(a)} for a in aggregate(coviews)}
        changed = set(await learned.add(coviews))
        for anchor, row in aggregate(coviews).items():
            kept = totals.setdefault(anchor, {})
            for other, weight in row.items():
                kept[other] = kept.get(other, 0.0) + weight
            now = {r.sku for r in await learned.top(anchor)}
            assert len(now) == min(3, len(kept))
            assert all(kept[s] >= max((v for k, v in kept.items() if k not in now), default=0)
                       for s in now)  # fmt: skip
            assert (anchor in changed) == (now != before[anchor])
            totals[anchor] = {s: kept[s] for s in now}  # what was trimmed starts again at 0


async def test_cluster_groups_share_a_slot(redis_client: RedisLike) -> None:
    anchors = [f"SKU-{n:04d}" for n in range(500)]
    cluster = isinstance(redis_client, RedisCluster)
    groups = anchor_groups(anchors, cluster)
    assert sorted(a for g in groups for a in g) == anchors
    if cluster:
        for group in groups:
            assert len({key_slot(keys.learned_list_key(a).encode()) for a in group}) == 1
    else:
        assert max(len(g) for g in groups) <= learned_store.MAX_ANCHORS_PER_CALL
        assert len(groups) < len(anchors)
    # and the script runs on this topology, group by group
    changed = await LearnedLists(redis_client).add([CoView(a, "X", 1.0) for a in anchors])
    assert sorted(changed) == anchors


def coviews_by_definition(before: Profile | None, after: Profile) -> list[CoView]:
    """The definition, view by view: each new view with every other view of its session within
    the window (another SKU), a pair of two new views once."""
    known = {v.id for v in before.views} if before else set()
    out: list[CoView] = []
    for new in after.views:
        if new.id in known or not new.sku:
            continue
        for other in after.views:
            if (
                other.id == new.id
                or not other.sku
                or other.sku == new.sku
                or other.session != new.session
                or abs(other.at - new.at) > SESSION_WINDOW_SECONDS
                or (other.id not in known and other.id < new.id)
            ):
                continue
            w = weight_at(max(new.at, other.at))
            out += [CoView(new.sku, other.sku, w), CoView(other.sku, new.sku, w)]
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(close_events, max_size=30), st.lists(close_events, max_size=30))
def test_new_coviews_equal_the_definition(
    first: list[ClickEvent], second: list[ClickEvent]
) -> None:
    before = apply_events(None, first)
    after = apply_events(before, second)
    assert after is not None or not any(e.consent for e in first + second)
    if after is None:
        return
    key = lambda c: (c.anchor, c.other, c.weight)  # noqa: E731
    assert sorted(new_coviews(before, after), key=key) == sorted(
        coviews_by_definition(before, after), key=key
    )


async def test_an_anchor_with_thousands_of_partners_in_one_window(redis_client: RedisLike) -> None:
    """More members than one Lua unpack takes, trimmed to K, reported once."""
    learned = LearnedLists(redis_client, top_k=50)
    coviews = [CoView("A", f"SKU-{n:05d}", 1.0 + n) for n in range(2500)]
    assert await learned.add(coviews) == ["A"]
    top = await learned.top("A")
    assert [r.sku for r in top] == [f"SKU-{n:05d}" for n in range(2499, 2449, -1)]
    assert await learned.add([CoView("A", "SKU-00000", 1.0)]) == []  # trimmed again: no move
