"""The purge-failure status classes the alerting rules select on (deploy/prometheus/rules.yml)."""

from __future__ import annotations

import pytest

from invalidation.metrics import InvalidationMetrics, purge_status_class


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "other"),
        (200, "other"),
        (400, "4xx"),
        (403, "4xx"),
        (429, "429"),
        (499, "4xx"),
        (500, "5xx"),
        (503, "5xx"),
        (599, "5xx"),
    ],
)
def test_purge_status_class(status: int | None, expected: str) -> None:
    assert purge_status_class(status) == expected


def test_purge_failures_are_exported_under_the_name_the_rules_use() -> None:
    metrics = InvalidationMetrics.create()
    metrics.purge_failures.labels("cloudflare", purge_status_class(502)).inc()
    assert (
        metrics.registry.get_sample_value(
            "shelfedge_purge_failures_total", {"purger": "cloudflare", "status_class": "5xx"}
        )
        == 1.0
    )
