"""`invalidation.window_policy`: when a coalescing window closes, table-driven."""

from __future__ import annotations

import pytest

from invalidation.consumer import ConsumerConfig
from invalidation.window_policy import Close, WindowPolicy

POLICY = WindowPolicy(window_s=0.100, quiet_s=0.025, max_records=1000)


@pytest.mark.parametrize(
    ("name", "records", "first_at", "last_at", "now", "expected"),
    [
        ("a full window closes at once", 1000, 10.0, 10.0, 10.0, Close.FULL),
        ("full wins over waiting", 1500, 10.0, 10.01, 10.01, Close.FULL),
        ("a flowing stream waits for the window", 50, 10.0, 10.040, 10.041, 0.024),
        ("the wait ends at the window's end", 50, 10.0, 10.090, 10.091, 0.009),
        ("a flowing stream closes when due", 900, 10.0, 10.099, 10.100, Close.DUE),
        ("a quiet stream closes early", 1, 10.0, 10.0, 10.030, Close.QUIET),
        ("a lone record waits only the quiet time", 1, 10.0, 10.0, 10.0, 0.025),
        ("records that waited a whole window go at once", 700, 9.0, 9.9, 10.0, Close.DUE),
    ],
)
def test_when_a_window_closes(
    name: str, records: int, first_at: float, last_at: float, now: float, expected: Close | float
) -> None:
    decided = POLICY.decide(records, first_at, last_at, now)
    if isinstance(expected, Close):
        assert decided is expected, name
    else:
        assert isinstance(decided, float), name
        assert decided == pytest.approx(expected), name


@pytest.mark.parametrize(
    ("window_s", "quiet_s", "max_records"), [(0.0, 0.01, 1), (0.1, 0.0, 1), (0.1, 0.01, 0)]
)
def test_a_policy_that_could_never_close_or_never_wait_is_refused(
    window_s: float, quiet_s: float, max_records: int
) -> None:
    with pytest.raises(ValueError, match="window policy needs"):
        WindowPolicy(window_s, quiet_s, max_records)


def test_the_consumer_derives_its_policy_from_its_settings() -> None:
    policy = ConsumerConfig("127.0.0.1:1", "g", window_ms=100, max_in_flight=3000).policy
    assert policy == WindowPolicy(0.1, 0.025, 1000)
