"""Experiment events: the collector (``POST /v1/events`` -> Kafka) and the aggregator
(Kafka -> Redis counters per experiment, variant and hour).

Modules: `schema` (`fragments.wire_events` with origin's errors), `ratelimit` (per-client
token buckets), `sink` (the Kafka producer owned by the app's lifespan), `collector` (the
route), `counters` (the idempotent fold into Redis and the reads behind results),
`aggregator` (the consumer-group loop), `service` (wiring for ``shelfedge aggregate``).

Exceptions (all `origin.errors.OriginError`)::

    EventsError
     ├── EventRejected      an event failed validation (400; names the event and field)
     └── EventsUnavailable  Kafka is not configured or not reachable (503, retriable)

Events carry a pseudonymous visitor id, never personal data; nothing here logs it.
"""
