"""Prometheus metrics of the origin, on a registry owned by the app (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class OriginMetrics:
    registry: CollectorRegistry
    bundle_requests: Counter
    request_seconds: Histogram
    store_errors: Counter
    events_rejected: Counter
    """Events and event batches the collector refused, by reason (signature_*, rate_limited,
    malformed, too_large, unknown_experiment, unknown_variant)."""
    _children: dict[tuple[str, int], tuple[Counter, Histogram]] = field(default_factory=dict)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count and time one request (label children resolved once per endpoint/status)."""
        children = self._children.get((endpoint, status))
        if children is None:
            children = (
                self.bundle_requests.labels(endpoint, str(status)),
                self.request_seconds.labels(endpoint),
            )
            self._children[(endpoint, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    @classmethod
    def create(cls) -> OriginMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            bundle_requests=Counter(
                "shelfedge_origin_bundle_requests",
                "Bundle and fragment requests by endpoint and status",
                ["endpoint", "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "shelfedge_origin_request_seconds",
                "Time to answer bundle and fragment requests",
                ["endpoint"],
                buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                registry=registry,
            ),
            store_errors=Counter(
                "shelfedge_origin_store_errors",
                "Redis failures seen on request paths",
                registry=registry,
            ),
            events_rejected=Counter(
                "shelfedge_events_rejected",
                "Event batches or events the collector refused, by reason",
                ["reason"],
                registry=registry,
            ),
        )
