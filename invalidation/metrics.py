"""Prometheus metrics of the invalidation consumer and purge workers (a registry per process)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True, slots=True)
class InvalidationMetrics:
    registry: CollectorRegistry
    events: Counter
    """Events by topic and outcome (applied, duplicate, stale, dead_letter)."""
    batches: Counter
    batch_seconds: Histogram
    recomputes: Counter
    bundles_changed: Counter
    lag: Gauge
    purge_requests: Counter
    """Purge requests by purger and outcome (ok, retry, rejected, stopped)."""
    purge_split_requests: Counter
    purges_parked: Counter
    purger_stopped: Gauge
    purge_failures: Counter
    """Failed purge requests by purger and `purge_status_class` (429, 4xx, 5xx, other)."""
    tags_purged: Counter
    purge_queue_depth: Gauge
    purge_deferred: Counter
    event_to_purge_seconds: Histogram
    dead_letters: Counter
    """Dead letters by source topic and reason class (`invalidation.records.reason_class`)."""

    @classmethod
    def create(cls) -> InvalidationMetrics:
        r = CollectorRegistry()
        return cls(
            registry=r,
            events=Counter("shelfedge_events", "Events consumed", ["topic", "outcome"], registry=r),
            batches=Counter("shelfedge_batches", "Batches processed", registry=r),
            batch_seconds=Histogram("shelfedge_batch_seconds", "Batch processing time", registry=r),
            recomputes=Counter("shelfedge_recomputes", "Bundle recomputes", registry=r),
            bundles_changed=Counter(
                "shelfedge_bundles_changed", "Recomputes that changed content", registry=r
            ),
            lag=Gauge(
                "shelfedge_consumer_lag", "Records behind the log end", ["partition"], registry=r
            ),
            purge_requests=Counter(
                "shelfedge_purge_requests", "Purge requests", ["purger", "outcome"], registry=r
            ),
            purge_split_requests=Counter(
                "shelfedge_purge_split_requests",
                "Extra purge requests sent to isolate the tags an API refused (each took a token)",
                ["purger"],
                registry=r,
            ),
            purges_parked=Counter(
                "shelfedge_purges_parked",
                "Tags set aside because the purger's API refused them (list: shelfedge purges"
                " parked)",
                ["purger", "reason"],
                registry=r,
            ),
            purger_stopped=Gauge(
                "shelfedge_purger_stopped",
                "1 when a purger stopped because its API refused its credential or endpoint"
                " (its queue is kept)",
                ["purger"],
                registry=r,
            ),
            purge_failures=Counter(
                "shelfedge_purge_failures",
                "Failed purge requests by HTTP status class (429, 4xx, 5xx; other: no status)",
                ["purger", "status_class"],
                registry=r,
            ),
            tags_purged=Counter("shelfedge_tags_purged", "Tags purged", ["purger"], registry=r),
            purge_queue_depth=Gauge(
                "shelfedge_purge_queue_depth", "Tags waiting to be purged", ["purger"], registry=r
            ),
            purge_deferred=Counter(
                "shelfedge_purge_deferred",
                "Purge rounds deferred by the rate limit (tags stay queued and merge)",
                ["purger"],
                registry=r,
            ),
            event_to_purge_seconds=Histogram(
                "shelfedge_event_to_purge_seconds",
                "Event produced -> purge request accepted",
                ["purger"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            ),
            dead_letters=Counter(
                "shelfedge_dead_letters",
                "Dead-lettered records by source topic and reason class (list: shelfedge dlq list)",
                ["topic", "reason"],
                registry=r,
            ),
        )


def purge_status_class(status: int | None) -> str:
    """The `status_class` label of a failed purge: ``429`` (throttled) is kept apart from the
    other ``4xx`` (a request the API refuses: credentials, shape), ``5xx`` is the API failing,
    and ``other`` has no HTTP status (a network error, or a 2xx the API did not confirm)."""
    if status is None:
        return "other"
    if status == 429:
        return "429"
    if 400 <= status < 500:
        return "4xx"
    if 500 <= status < 600:
        return "5xx"
    return "other"
