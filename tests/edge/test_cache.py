"""The edge cache state machine and the single-flight revalidation tracker."""

from __future__ import annotations

import pytest

from edge.cache import (
    REVALIDATION_LOCK_SECONDS,
    CacheEntry,
    Freshness,
    RevalidationTracker,
    classify,
    entry_from_bytes,
)
from edge.memory import MemoryCacheStore
from fragments.bundle import encode_bundle
from fragments.errors import BundleFormatError
from fragments.slots import CachePolicy
from tests.edge.bundles import candidate, small_bundle

STORED = 1_000_000.0
POLICY = CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=3600)


def entry(policy: CachePolicy = POLICY) -> CacheEntry:
    return CacheEntry(small_bundle([candidate("A", 1.0)], policy=policy), STORED)


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (-5.0, Freshness.FRESH),  # stored "in the future" (clock skew): age counts as 0
        (0.0, Freshness.FRESH),
        (59.999, Freshness.FRESH),
        (60.0, Freshness.STALE),
        (359.999, Freshness.STALE),
        (360.0, Freshness.EXPIRED),
        (10_000.0, Freshness.EXPIRED),
    ],
)
def test_classify_boundaries(age: float, state: Freshness) -> None:
    assert classify(entry(), STORED + age) is state


def test_no_entry_is_missing() -> None:
    assert classify(None, STORED) is Freshness.MISSING


def test_zero_max_age_is_stale_at_once_and_zero_swr_skips_stale() -> None:
    assert classify(entry(CachePolicy(0, 10, 0)), STORED) is Freshness.STALE
    assert classify(entry(CachePolicy(10, 0, 0)), STORED + 10) is Freshness.EXPIRED


@pytest.mark.parametrize(
    ("policy", "age", "usable"),
    [
        (POLICY, 0.0, True),
        (POLICY, 360.0, True),
        (POLICY, 60 + 3600 - 0.001, True),
        (POLICY, 60 + 3600, False),
        # When stale-while-revalidate is longer, a stale entry stays usable on errors as long.
        (CachePolicy(60, 300, 0), 359.0, True),
        (CachePolicy(60, 300, 0), 360.0, False),
        (CachePolicy(0, 0, 0), 0.0, False),
    ],
)
def test_within_stale_if_error(policy: CachePolicy, age: float, usable: bool) -> None:
    assert entry(policy).within_stale_if_error(STORED + age) is usable


def test_age_refresh_and_etag() -> None:
    e = entry()
    assert e.age(STORED + 12.5) == 12.5
    assert e.age(STORED - 1) == 0.0
    assert e.etag == e.bundle.etag
    refreshed = e.refreshed(STORED + 500)
    assert refreshed.bundle is e.bundle
    assert refreshed.stored_at == STORED + 500
    assert classify(refreshed, STORED + 500) is Freshness.FRESH


def test_entry_from_bytes() -> None:
    bundle = small_bundle([candidate("A", 1.0)])
    assert entry_from_bytes(encode_bundle(bundle), STORED) == CacheEntry(bundle, STORED)
    with pytest.raises(BundleFormatError):
        entry_from_bytes(b"<html>origin error page</html>", STORED)


def test_tracker_allows_one_revalidation_per_key() -> None:
    tracker = RevalidationTracker()

    assert tracker.try_begin("k1", 100.0)
    assert not tracker.try_begin("k1", 100.1)
    assert not tracker.try_begin("k1", 100.0 + REVALIDATION_LOCK_SECONDS - 0.001)
    assert tracker.try_begin("k2", 100.1)  # keys are independent
    tracker.end("k1")
    assert tracker.try_begin("k1", 101.0)


def test_tracker_lock_expires_so_a_lost_revalidation_is_retried() -> None:
    tracker = RevalidationTracker()
    assert tracker.try_begin("k", 100.0)

    assert tracker.try_begin("k", 100.0 + REVALIDATION_LOCK_SECONDS)
    assert not tracker.try_begin("k", 100.0 + REVALIDATION_LOCK_SECONDS + 1)


def test_tracker_end_is_idempotent() -> None:
    tracker = RevalidationTracker()
    tracker.end("never-started")
    assert tracker.try_begin("k", 1.0)
    tracker.end("k")
    tracker.end("k")
    assert tracker.in_flight == {}


@pytest.mark.parametrize(
    ("age_at_purge", "state_after"),
    [
        (0.0, Freshness.STALE),  # fresh: now stale, served while revalidated
        (100.0, Freshness.STALE),  # already stale: unchanged
        (400.0, Freshness.EXPIRED),  # already expired: a soft purge never makes it younger
    ],
)
def test_a_soft_purge_marks_an_entry_stale_never_younger(
    age_at_purge: float, state_after: Freshness
) -> None:
    now = STORED + age_at_purge
    marked = entry().marked_stale(now)
    assert classify(marked, now) is state_after
    assert marked.stored_at <= STORED
    assert marked.bundle == entry().bundle


def test_the_memory_store_marks_tagged_entries_stale_and_keeps_them() -> None:
    store = MemoryCacheStore()
    kept = entry()
    store.put(kept)
    [tag] = [t for t in kept.bundle.tags if t.startswith("sku:")][:1]
    assert store.invalidate([tag, "sku:NOT-CACHED"], STORED) == 1
    marked = store.get(kept.bundle.key.cache_key)
    assert marked is not None
    assert classify(marked, STORED) is Freshness.STALE
    assert len(store) == 1
    assert store.purge([tag]) == 1
    assert len(store) == 0
