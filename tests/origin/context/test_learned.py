"""Learned item-to-item lists from a scripted session log: co-views within a session window,
only new views count (redelivery adds nothing), top-K per anchor in Redis, and the anchored
bundle of a product then leads with what was viewed with it."""

from __future__ import annotations

from redis.asyncio import Redis

from fragments.clickstream import ClickEvent
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from origin.context.learned import SESSION_WINDOW_SECONDS, new_coviews, weight_at
from origin.context.learned_store import LearnedLists
from origin.context.profile import apply_events
from origin.context.store import ContextStore
from origin.core.anchored_bundles import AnchoredBundles
from origin.core.builder import BundleBuilder
from origin.core.store import Store
from tests.origin.core.test_anchored import CATALOG

T0 = 1_700_000_000.0


def view(n: int, sku: str, at: float, session: str = "s1", visitor: str = "v1") -> ClickEvent:
    return ClickEvent(f"view-{n:04d}", "view", visitor, session, T0 + at, True, sku, "books", 100)


def pairs(before: list[ClickEvent], added: list[ClickEvent]) -> set[tuple[str, str]]:
    old = apply_events(None, before)
    new = apply_events(old, added)
    assert new is not None
    return {(c.anchor, c.other) for c in new_coviews(old, new)}


def test_coviews_within_a_session_window_both_directions_once() -> None:
    log = [view(1, "A", 0), view(2, "B", 60), view(3, "C", SESSION_WINDOW_SECONDS + 30)]
    assert pairs([], log) == {("A", "B"), ("B", "A"), ("B", "C"), ("C", "B")}
    assert pairs(log, log) == set()  # redelivered: nothing new
    assert pairs(log[:1], log[1:2]) == {("A", "B"), ("B", "A")}
    other_session = [view(4, "D", 30, session="s2")]
    assert pairs(log, other_session) == set()
    old = apply_events(None, log[:1])
    new = apply_events(old, log[1:2])
    assert new is not None
    counted = new_coviews(old, new)
    assert len(counted) == 2
    assert all(c.weight == weight_at(T0 + 60) for c in counted)


async def test_processor_path_learns_and_the_anchored_bundle_uses_the_list(
    redis_client: Redis,
) -> None:
    store = Store(redis_client, 5.0)
    await store.load_catalog(list(CATALOG), [])
    context = ContextStore(redis_client)
    learned = LearnedLists(redis_client, top_k=2)
    rules = await context.current_rules()
    # Three visitors view the anchor A with UNRELATED; one with SAME-BRAND; one with SAME-ALL.
    sessions = [
        ("v1", ["A", "UNRELATED"]),
        ("v2", ["A", "UNRELATED"]),
        ("v3", ["UNRELATED", "A"]),
        ("v4", ["A", "SAME-BRAND"]),
        ("v5", ["A", "SAME-ALL"]),
    ]
    changed: list[str] = []
    n = 0
    for visitor, skus in sessions:
        events = []
        for i, sku in enumerate(skus):
            n += 1
            events.append(view(n, sku, i * 10.0, visitor=visitor))
        _, coviews = await context.fold_learning(visitor, events, rules, T0 + 100)
        changed += await learned.add(coviews)
        _, again = await context.fold_learning(visitor, events, rules, T0 + 100)
        assert again == []  # a redelivery learns nothing
    assert "A" in changed
    top = await learned.top("A")
    assert top[0].sku == "UNRELATED"
    assert len(top) == 2  # bounded top-K
    anchored = AnchoredBundles(store, BundleBuilder(load_slots()))
    chosen = await anchored.candidates(FragmentKey.anchored("product-cross-sell", "A"))
    assert chosen is not None
    assert chosen.source == "learned"
    assert chosen.ranked[0][0].sku == "UNRELATED"
