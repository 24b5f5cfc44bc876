"""Per-client token buckets, table-driven with a fake clock."""

from __future__ import annotations

import pytest

from origin.web.events.ratelimit import ClientRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "burst", "requests", "allowed"),
    [(1.0, 1, 3, 1), (1.0, 5, 10, 5), (100.0, 3, 3, 3)],
)
def test_burst_then_refused(rate: float, burst: int, requests: int, allowed: int) -> None:
    limiter = ClientRateLimiter(rate, burst, clock=Clock())
    results = [limiter.take("1.2.3.4") for _ in range(requests)]
    assert sum(1 for r in results if r == 0.0) == allowed
    assert all(r > 0 for r in results[allowed:])


def test_refill_and_retry_after() -> None:
    clock = Clock()
    limiter = ClientRateLimiter(2.0, 2, clock=clock)
    assert limiter.take("a") == limiter.take("a") == 0.0
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)
    assert ClientRateLimiter.retry_after(wait) == 1
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    clock.now += 100
    assert [limiter.take("a") for _ in range(3)][:2] == [0.0, 0.0]  # capped at the burst


def test_clients_are_independent_and_memory_is_bounded() -> None:
    limiter = ClientRateLimiter(1.0, 1, max_clients=2, clock=Clock())
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0
    assert limiter.take("a") > 0
    limiter.take("c")  # evicts the least recently seen ("b")
    assert limiter.take("b") == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (1.0, 0)])
def test_rejects_bad_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate"):
        ClientRateLimiter(rate, burst)
