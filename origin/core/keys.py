"""The Redis key layout of shelfedge: the one module that names a Redis key.

The catalog core, the web service, the invalidation consumer and the aggregator all call it; none
builds a key with an f-string. It never performs I/O, and it never ships to the edge (the edge
holds no Redis keys).

Redis layout (see docs/redis-keys.md): every key that takes part in a multi-key atomic update
carries a hash tag (`{...}`) so that all keys of one update live in one Redis Cluster slot:

- per SKU bucket, hash tag ``{p:<bucket>}``: the product documents and recent event ids (dedupe)
  of the SKUs in one of `SKU_BUCKETS` buckets, so one script applies a whole bucket's events;
- per (slot, segment) partition, hash tag ``{b:<slot>/<segment>}``: the stored bundles of every
  variant and locale, the partition's SKU -> bundle-keys index and its ranked candidate lists;
- experiments, hash tag ``{x}``: every experiment definition, their audit logs and the published
  edge configuration versions (one optimistic transaction spans them);
- per experiment, hash tag ``{e:<experiment>}``: the exposure / conversion aggregates and the
  event ids already folded into them (dedupe);
- per purger, hash tag ``{pk:<purger>}``: the purges its API refused (parked);
- per imported recommendation list, hash tag ``{il:<kind>/<target>/<name>}``: the list's one
  HASH (version and items), replaced whole by one script;
- anchored bundles (product cross-sell) live in partitions like segment bundles, the anchor SKU
  standing where the segment would (``{b:<slot>/@<SKU>}``); `HOT_ANCHORS_KEY` caps how many
  anchors keep stored bundles.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import repeat
from operator import and_

from fragments.ids import CONTROL_VARIANT, FragmentKey, partition_of

NAMESPACE = "se"
"""Prefix of every Redis key shelfedge writes."""

SKU_BUCKETS = 256
"""SKUs are spread over this many hash tags: enough to balance a Redis Cluster of dozens of
shards, few enough that a window's events for thousands of SKUs are a few hundred script calls.
A power of two: a SKU's bucket is its CRC-32's low bits."""
assert SKU_BUCKETS & (SKU_BUCKETS - 1) == 0


@lru_cache(maxsize=65_536)
def sku_bucket(sku: str) -> int:
    """The bucket (hash tag) of a SKU's keys: stable across processes and versions.

    CRC-32 from `binascii`, which every runtime of the edge has built in (WASI builds have no
    `zlib`). Memoised: the consumer asks for every SKU of every window."""
    return sku_buckets((sku,))[0]


def sku_buckets(skus: Iterable[str]) -> list[int]:
    """`sku_bucket` of many SKUs at once, not memoised: an import asks for each of its
    hundreds of thousands of SKUs once, more than any cache keeps."""
    return list(map(and_, map(binascii.crc32, map(str.encode, skus)), repeat(SKU_BUCKETS - 1)))


def _sku_slot(sku: str) -> str:
    return _bucket_slot(sku_bucket(sku))


def _bucket_slot(bucket: int) -> str:
    return "{p:" + str(bucket) + "}"


def _partition_slot(partition: str) -> str:
    return "{b:" + partition + "}"


def product_key(sku: str) -> str:
    """HASH: the product document of one SKU (fields in origin.core.catalog)."""
    return _product_key(_sku_slot(sku), sku)


def product_keys(skus: Sequence[str]) -> list[str]:
    """`product_key` of many SKUs at once (buckets from `sku_buckets`, not memoised)."""
    return [
        _product_key(_bucket_slot(bucket), sku)
        for sku, bucket in zip(skus, sku_buckets(skus), strict=True)
    ]


def _product_key(slot: str, sku: str) -> str:
    return f"{NAMESPACE}:{slot}:product:{sku}"


def event_seen_key(sku: str) -> str:
    """LIST: the SKU's most recent applied event ids (dedupe), capped, in the SKU's slot.

    Memory is bounded by catalog size times the cap, whatever the event rate.
    """
    return f"{NAMESPACE}:{_sku_slot(sku)}:seen:{sku}"


def feed_prints_key(sku: str) -> str:
    """HASH: SKU -> fingerprint of the feed item last applied to it, one hash per SKU bucket
    (in the bucket's slot, so the import script updates it with the product documents).

    An import skips parsing an item whose fingerprint is unchanged; anything else that writes
    a product's content (a catalog.v1 event, a removal) deletes the SKU's fingerprint.
    """
    return f"{NAMESPACE}:{_sku_slot(sku)}:feedprints"


def bundle_key(key: FragmentKey) -> str:
    """STRING: the encoded bundle, ready to serve."""
    return f"{NAMESPACE}:{_partition_slot(key.partition)}:bundle:{key.variant}:{key.locale}"


def partition_index_key(partition: str) -> str:
    """HASH: SKU -> space-separated cache keys of the partition's bundles that show it."""
    return f"{NAMESPACE}:{_partition_slot(partition)}:skuindex"


def partition_bundles_key(partition: str) -> str:
    """HASH: cache key -> space-separated SKUs shown by that bundle (the index's inverse)."""
    return f"{NAMESPACE}:{_partition_slot(partition)}:bundleskus"


def list_id(slot: str, segment: str, variant: str = CONTROL_VARIANT) -> str:
    """The id of a ranked list: the partition's own (control scoring) or a scoring variant's.

    A variant that changes the scoring weights ranks the partition's products its own way;
    its list lives in the partition's hash slot next to the control list.
    """
    partition = partition_of(slot, segment)
    return partition if variant == CONTROL_VARIANT else f"{partition}/{variant}"


def segment_list_key(list_id_or_partition: str) -> str:
    """ZSET: SKU -> score, a ranked candidate list (see `list_id`).

    ``<slot>/<segment>`` is the partition's control list; ``<slot>/<segment>/<variant>`` the
    list of a variant with its own scoring weights, in the same hash slot.
    """
    slot, _, rest = list_id_or_partition.partition("/")
    segment, _, variant = rest.partition("/")
    partition = partition_of(slot, segment)
    suffix = f":{variant}" if variant else ""
    return f"{NAMESPACE}:{_partition_slot(partition)}:list{suffix}"


def list_floors_key(list_id_or_partition: str) -> str:
    """HASH: list id -> its floor, in the partition's hash slot next to its lists.

    A ranked list keeps only its best `origin.core.store.list_depth` products; the floor is a
    score no product outside the list beats (every member scores above it). Absent: 0, the
    list holds every product with a positive score.
    """
    slot, _, rest = list_id_or_partition.partition("/")
    segment, _, _variant = rest.partition("/")
    return f"{NAMESPACE}:{_partition_slot(partition_of(slot, segment))}:listfloors"


PARTITIONS_KEY = f"{NAMESPACE}:partitions"
"""SET: every partition id that has stored bundles (read-only fan-out; never in a transaction)."""

CATALOG_SKUS_KEY = f"{NAMESPACE}:catalog:skus"
"""SET: every SKU in the catalog."""

CATALOG_META_KEY = f"{NAMESPACE}:catalog:meta"
"""HASH: catalog-wide facts (seed, loaded at, popularity/margin normalisers)."""


CATALOG_IMPORT_LOCK_KEY = f"{NAMESPACE}:catalog:import:lock"
"""STRING with TTL: the id of the catalog import running now (one at a time)."""

CATALOG_IMPORT_PENDING_KEY = f"{NAMESPACE}:catalog:import:pending"
"""SET: SKUs an import has applied but whose bundles it has not yet recomputed (a crashed
import's are recomputed by the next one)."""

CATALOG_IMPORT_LAST_KEY = f"{NAMESPACE}:catalog:import:last"
"""STRING: JSON report of the last catalog import that finished or aborted."""


def partition_hashes_key(partition: str) -> str:
    """HASH: cache key -> content hash of the stored bundle (compare-and-set guard)."""
    return f"{NAMESPACE}:{_partition_slot(partition)}:hashes"


SEGMENTS_KEY = f"{NAMESPACE}:catalog:segments"
"""STRING: JSON list of segment definitions."""


# --- imported recommendation lists (hash tag {il:<list id>}) ------------------------------------


def imported_list_key(list_id: str) -> str:
    """HASH: one imported recommendation list (``version``, ``items`` JSON, ``updated_ms``).

    `list_id` is ``<kind>/<target>/<name>`` (`origin.core.lists.list_key_id`): its own hash
    slot, so one script replaces the whole list and a reader sees the old list or the new one.
    """
    return f"{NAMESPACE}:{{il:{list_id}}}:list"


IMPORTED_LISTS_KEY = f"{NAMESPACE}:importedlists"
"""SET: every imported list id (read-only listing; written before the list itself)."""


HOT_ANCHORS_KEY = f"{NAMESPACE}:anchors:hot"
"""ZSET: anchored partition (``<slot>/@<SKU>``) -> last time (ms) the origin served it; capped
(`origin.core.anchored_bundles`), the coldest partitions' bundles deleted when over the cap."""


def purge_queue_key(partition: str, purger: str) -> str:
    """ZSET: bundle tags of the partition awaiting purge by `purger`.

    Score = priority * `origin.core.purge_queue.PURGE_PRIORITY_SPAN` + milliseconds of the oldest
    change it covers.
    Written in the same Lua call as the bundle it purges, so a stored change always has its
    purge obligation recorded (crash-safe).
    """
    return f"{NAMESPACE}:{_partition_slot(partition)}:purgeq:{purger}"


def purge_generation_key(partition: str, purger: str) -> str:
    """HASH: tag -> generation, bumped on every enqueue (a drained purge is removed only if
    no newer change was enqueued while it was in flight)."""
    return f"{NAMESPACE}:{_partition_slot(partition)}:purgegen:{purger}"


def purge_lease_key(purger: str) -> str:
    """STRING with TTL: which consumer instance currently drains `purger`'s queues."""
    return f"{NAMESPACE}:purge:lease:{purger}"


def purge_parked_key(purger: str) -> str:
    """HASH: tag -> JSON record of a purge `purger`'s API refused (taken out of the queues so
    the rest proceeds; an operator lists and re-drives it). One key per purger, hash tag
    ``{pk:<purger>}``: every operation on it touches one slot."""
    return f"{NAMESPACE}:{{pk:{purger}}}:purgeparked"


DLQ_REPLAYED_KEY = f"{NAMESPACE}:dlq:replayed"
"""SET of dead-letter records already re-driven to their source topic, as
``<dead-letter topic>:<partition>:<offset>`` (``shelfedge dlq replay`` skips them)."""


# --- experiments (hash tag {x}) -------------------------------------------------------------------

_EXPERIMENTS_SLOT = "{x}"

EXPERIMENTS_KEY = f"{NAMESPACE}:{_EXPERIMENTS_SLOT}:experiments"
"""HASH: experiment key -> the experiment's JSON definition (its ``version`` is the ETag)."""


def experiment_audit_key(experiment: str) -> str:
    """LIST: the experiment's audit entries (JSON, oldest first, capped)."""
    return f"{NAMESPACE}:{_EXPERIMENTS_SLOT}:audit:{experiment}"


EDGE_CONFIG_VERSIONS_KEY = f"{NAMESPACE}:{_EXPERIMENTS_SLOT}:edgeconfig:versions"
"""HASH: version number -> the immutable published `EdgeExperimentConfig` JSON."""

EDGE_CONFIG_CURRENT_KEY = f"{NAMESPACE}:{_EXPERIMENTS_SLOT}:edgeconfig:current"
"""STRING: the version number the edge is served (the highest, unless rolled back)."""

EDGE_CONFIG_META_KEY = f"{NAMESPACE}:{_EXPERIMENTS_SLOT}:edgeconfig:meta"
"""HASH: version number -> JSON of who published it, when and why (versions listing)."""

EDGE_CONFIG_TARGETS_KEY = f"{NAMESPACE}:{_EXPERIMENTS_SLOT}:edgeconfig:targets"
"""HASH: edge target name (e.g. ``workers-kv``) -> JSON `TargetState`: the config version the
target holds, when it was written, and the last failed write (shown in the admin UI)."""

PREVIEW_TOKEN_KEY = f"{NAMESPACE}:{_EXPERIMENTS_SLOT}:preview-token"
"""STRING: the current QA preview token (its SHA-256 is published in the edge config)."""


# --- experiment aggregates (hash tag {e:<experiment>}) ------------------------------------------


def _experiment_slot(experiment: str) -> str:
    return "{e:" + experiment + "}"


def experiment_counts_key(experiment: str) -> str:
    """HASH: ``<metric>|<variant>|<hour>`` -> event count (metric: exposure, click,
    add_to_cart, purchase, conversion_value); hour is UTC ``YYYYMMDDHH``."""
    return f"{NAMESPACE}:{_experiment_slot(experiment)}:counts"


def experiment_visitors_key(experiment: str, metric: str, variant: str, hour: str) -> str:
    """HYPERLOGLOG: distinct visitors with a `metric` event (exposure or a conversion type)
    of `variant` in one UTC hour; PFCOUNT over several hours is their union."""
    return f"{NAMESPACE}:{_experiment_slot(experiment)}:hll:{metric}:{variant}:{hour}"


def experiment_hours_key(experiment: str) -> str:
    """ZSET: UTC hour ``YYYYMMDDHH`` -> its unix time, every hour with an event (time series)."""
    return f"{NAMESPACE}:{_experiment_slot(experiment)}:hours"


def experiment_event_ids_key(experiment: str, hour: str) -> str:
    """SET with TTL: ids of the events of one UTC hour already folded in (dedupe).

    Keyed by the event's own hour, so a redelivery always meets its first delivery's set.
    """
    return f"{NAMESPACE}:{_experiment_slot(experiment)}:ids:{hour}"


def experiment_moments_key(experiment: str) -> str:
    """HASH with TTL: ``<stat>|<variant>|<day>`` -> the increments, on that UTC day
    (``YYYYMMDD``), of the per-variant sums behind results (visitors, covariate, outcome, squares,
    cross-products; see `origin.events.moment_table`)."""
    return f"{NAMESPACE}:{_experiment_slot(experiment)}:moments"


def experiment_visitor_state_key(experiment: str) -> str:
    """HASH with TTL: pseudonymous visitor digest -> the visitor's running state (first variant,
    covariate, conversions so far, revenue so far), the working set the sums are folded with;
    bounded by a visitor cap, and never read by results."""
    return f"{NAMESPACE}:{_experiment_slot(experiment)}:vstate"


# --- public surface protection (one key per client, each with a TTL) ----------------------------


def event_batch_key(kid: str, batch_id: str) -> str:
    """STRING with TTL (twice the replay window): a signed event batch already accepted, so a
    replay of the same signed request inside the window is refused."""
    return f"{NAMESPACE}:{{eb:{kid}}}:batch:{batch_id}"


def rate_limit_key(scope: str, client: str) -> str:
    """HASH with TTL (time to refill the bucket): a token bucket (``tokens``, ``at`` in ms)
    of one client for one limit (`scope`: ``events``, ``login``); shared by every origin
    process."""
    return f"{NAMESPACE}:{{rl:{scope}:{client}}}:bucket"


def admin_session_revoked_key(sid: str) -> str:
    """STRING with TTL (the session's remaining lifetime): an admin session logged out."""
    return f"{NAMESPACE}:{{as:{sid}}}:revoked"


def preview_code_key(code: str) -> str:
    """STRING with TTL (at most 15 minutes): the preview token behind a one-time preview link;
    GETDEL on exchange, so a link works once."""
    return f"{NAMESPACE}:{{pc:{code}}}:preview-code"


# --- shopper context (hash tag {v:<visitor>}, rules {sr}) ----------------------------------------
# Everything keyed by a visitor lives under the visitor's own hash tag, so that one transaction
# updates it and erasure deletes it (`origin.context.store`); no shared key names a visitor.


def _visitor_slot(visitor: str) -> str:
    return "{v:" + visitor + "}"


def visitor_profile_key(visitor: str) -> str:
    """STRING with TTL: the visitor's bounded profile (`origin.context.profile`, JSON)."""
    return f"{NAMESPACE}:{_visitor_slot(visitor)}:profile"


def visitor_segment_key(visitor: str) -> str:
    """HASH with TTL: the visitor's segment decision (segment, rule, rule name, rules version,
    decided at)."""
    return f"{NAMESPACE}:{_visitor_slot(visitor)}:segment"


def visitor_audiences_key(visitor: str) -> str:
    """HASH with TTL: CDP audience key -> ``1:<time>`` (entered) or ``0:<time>`` (exited) of the
    latest membership event (`origin.context.audiences`; exits are kept so a late, older entry
    cannot undo them)."""
    return f"{NAMESPACE}:{_visitor_slot(visitor)}:audiences"


def visitor_keys(visitor: str) -> tuple[str, ...]:
    """Every key that names the visitor (what erasure deletes)."""
    return (
        visitor_profile_key(visitor),
        visitor_segment_key(visitor),
        visitor_audiences_key(visitor),
    )


_RULES_SLOT = "{sr}"

SEGMENT_RULES_VERSIONS_KEY = f"{NAMESPACE}:{_RULES_SLOT}:segmentrules:versions"
"""HASH: version number -> the immutable segment rule set (JSON) of that version."""

SEGMENT_RULES_CURRENT_KEY = f"{NAMESPACE}:{_RULES_SLOT}:segmentrules:current"
"""STRING: the version in force (the highest, unless rolled back)."""

SEGMENT_RULES_HISTORY_KEY = f"{NAMESPACE}:{_RULES_SLOT}:segmentrules:history"
"""LIST (newest first, capped): JSON entries of who made which version current, when and how
(``put`` or ``rollback`` from which version)."""


def learned_list_key(anchor: str) -> str:
    """ZSET: SKU -> forward-decayed co-view score with `anchor`, the top K kept
    (`origin.context.learned_store`); its own hash tag ``{ll:<anchor>}``."""
    return f"{NAMESPACE}:{{ll:{anchor}}}:coview"


def replication_barrier_key(n: int) -> str:
    """STRING counter: the marker `origin.core.redis_replication` writes before WAIT; `n` picks
    a hash slot (one such key per master, so the barrier reaches every master)."""
    return f"{NAMESPACE}:{{rb-{n}}}:replication-barrier"
