"""shelfedge invalidation: keep the edge true while stock and prices move.

Consumes ``inventory.v1`` and ``price.v1`` from Kafka (a consumer group), applies each event
atomically with dedupe and per-SKU version gating, recomputes exactly the bundles whose visible
content changed, enqueues their purge atomically with the write, and commits offsets only after
that: at-least-once delivery with idempotent effects. Purge workers drain the queues to the
CDN(s) within their rate limits.

Every exception raised here derives from `InvalidationError`; the tree, and how `retriable`
drives each decision, is drawn in `invalidation.errors`.
"""

from __future__ import annotations
