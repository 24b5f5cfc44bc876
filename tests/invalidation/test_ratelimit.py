"""`invalidation.ratelimit.TokenBucket`: refill, capacity, wait time (pure, clock passed in)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invalidation.ratelimit import CLOUDFLARE_PLANS, BucketSpec, TokenBucket
from invalidation.settings import CLOUDFLARE_PLANS as PLAN_NAMES


def takes(bucket: TokenBucket, now: float, attempts: int) -> int:
    return sum(bucket.take(now) for _ in range(attempts))


@pytest.mark.parametrize(
    ("spec", "steps"),
    [
        # (time, attempts, granted, wait_time after) ...
        (BucketSpec(5.0, 5), [(0.0, 7, 5, 0.2), (0.2, 2, 1, 0.2), (0.3, 1, 0, 0.1)]),
        (BucketSpec(5.0, 5), [(0.0, 5, 5, 0.2), (1.0, 9, 5, 0.2), (1.1, 1, 0, 0.1)]),
        (BucketSpec(1.0, 3), [(0.0, 3, 3, 1.0), (100.0, 10, 3, 1.0)]),
        (BucketSpec(0.5, 1), [(0.0, 1, 1, 2.0), (1.0, 1, 0, 1.0), (2.0, 1, 1, 2.0)]),
        (BucketSpec(10.0, 50), [(0.0, 49, 49, 0.0), (0.0, 1, 1, 0.1), (0.05, 1, 0, 0.05)]),
    ],
    ids=["burst-then-refill", "refill-caps-at-capacity", "long-idle", "slow-rate", "exact"],
)
def test_bucket_steps(spec: BucketSpec, steps: list[tuple[float, int, int, float]]) -> None:
    bucket = TokenBucket(spec, now=0.0)
    for now, attempts, granted, wait in steps:
        assert takes(bucket, now, attempts) == granted, f"at t={now}"
        assert bucket.wait_time(now) == pytest.approx(wait), f"wait at t={now}"


def test_wait_time_is_zero_while_tokens_remain_and_does_not_spend() -> None:
    bucket = TokenBucket(BucketSpec(1.0, 2), now=10.0)
    for _ in range(5):
        assert bucket.wait_time(10.0) == 0.0
    assert takes(bucket, 10.0, 3) == 2


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(BucketSpec(1.0, 1), now=100.0)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert not bucket.take(100.5)
    assert bucket.take(101.0)


@pytest.mark.parametrize(
    "spec", [BucketSpec(0.0, 5), BucketSpec(-1.0, 5), BucketSpec(5.0, 0)], ids=str
)
def test_invalid_specs_are_refused(spec: BucketSpec) -> None:
    with pytest.raises(ValueError, match="invalid bucket"):
        TokenBucket(spec, now=0.0)


def test_every_configurable_plan_has_a_bucket() -> None:
    assert set(CLOUDFLARE_PLANS) == set(PLAN_NAMES)
    for spec in CLOUDFLARE_PLANS.values():
        TokenBucket(spec, now=0.0)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 50.0),
    capacity=st.integers(1, 30),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=300),
)
def test_grants_never_exceed_the_token_bucket_bound(
    rate: float, capacity: int, gaps: list[float]
) -> None:
    """In any interval T, granted takes <= capacity + rate * T."""
    bucket = TokenBucket(BucketSpec(rate, capacity), now=0.0)
    now, granted = 0.0, []
    for gap in gaps:
        now += gap
        if bucket.take(now):
            granted.append(now)
    for i, start in enumerate(granted):
        for j in range(i, len(granted)):
            assert j - i + 1 <= capacity + rate * (granted[j] - start) + 1e-9
