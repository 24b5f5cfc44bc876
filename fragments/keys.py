"""Every shared name in shelfedge: bundle cache keys, cache tags and the Redis key layout.

This is the one module that formats keys and tags. The edge, the origin and the invalidation
consumer all call it; nothing else may build one with an f-string. It never performs I/O.

Redis layout (see docs/redis-keys.md): every key that takes part in a multi-key atomic update
carries a hash tag (`{...}`) so that all keys of one update live in one Redis Cluster slot:

- per SKU bucket, hash tag ``{p:<bucket>}``: the product documents and recent event ids (dedupe)
  of the SKUs in one of `SKU_BUCKETS` buckets, so one script applies a whole bucket's events;
- per (slot, segment) partition, hash tag ``{b:<slot>/<segment>}``: the stored bundles of every
  variant and locale, the partition's SKU -> bundle-keys index and its ranked candidate lists;
- experiments, hash tag ``{x}``: every experiment definition, their audit logs and the published
  edge configuration versions (one optimistic transaction spans them);
- per experiment, hash tag ``{e:<experiment>}``: the exposure / conversion aggregates and the
  event ids already folded into them (dedupe).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from functools import lru_cache

from fragments.errors import InvalidIdentifier

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LOCALE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")

NAMESPACE = "se"
"""Prefix of every Redis key shelfedge writes."""

CONTROL_VARIANT = "control"
DEFAULT_LOCALE = "en-US"


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid slot/segment/variant id, else raise InvalidIdentifier."""
    if not _ID.fullmatch(value):
        raise InvalidIdentifier(kind, value, "expected 1-64 chars of a-z, 0-9, '-', '_'")
    return value


def check_sku(value: str) -> str:
    """Return ``value`` if it is a valid SKU, else raise InvalidIdentifier."""
    if not _SKU.fullmatch(value):
        raise InvalidIdentifier("sku", value, "expected 1-64 chars of A-Z, a-z, 0-9, '-', '_', '.'")
    return value


def check_locale(value: str) -> str:
    """Return ``value`` if it is a BCP 47 language(-REGION) tag such as en-US."""
    if not _LOCALE.fullmatch(value):
        raise InvalidIdentifier("locale", value, "expected a language tag such as 'en-US'")
    return value


@dataclass(frozen=True, slots=True)
class FragmentKey:
    """Identifies one shared, cacheable bundle. Never carries anything about a visitor."""

    slot: str
    """Slot id from the slot config, e.g. ``home-hero``."""
    segment: str
    """Coarse shopper segment id, e.g. ``bargain-hunters``."""
    variant: str = CONTROL_VARIANT
    """Experiment variant id; ``control`` when no experiment applies."""
    locale: str = DEFAULT_LOCALE
    """Language-region tag used for rendering prices and text."""

    def __post_init__(self) -> None:
        check_id("slot", self.slot)
        check_id("segment", self.segment)
        check_id("variant", self.variant)
        check_locale(self.locale)

    @property
    def cache_key(self) -> str:
        """The edge cache key: a path-like string, shared by all visitors of this key."""
        return f"bundle/{self.slot}/{self.segment}/{self.variant}/{self.locale}"

    @property
    def partition(self) -> str:
        """The (slot, segment) partition that owns this bundle in Redis."""
        return partition_of(self.slot, self.segment)

    def bundle_path(self) -> str:
        """Origin URL path (with query) that serves this bundle."""
        return (
            f"/v1/bundles/{self.slot}?segment={self.segment}"
            f"&variant={self.variant}&locale={self.locale}"
        )

    def fragment_path(self) -> str:
        """Origin URL path (with query) that serves this bundle fully rendered."""
        return (
            f"/v1/fragments/{self.slot}?segment={self.segment}"
            f"&variant={self.variant}&locale={self.locale}"
        )

    @classmethod
    def from_cache_key(cls, cache_key: str) -> FragmentKey:
        """Parse what `cache_key` produced."""
        parts = cache_key.split("/")
        if len(parts) != 5 or parts[0] != "bundle":
            raise InvalidIdentifier(
                "cache key", cache_key, "expected bundle/slot/segment/variant/locale"
            )
        return cls(parts[1], parts[2], parts[3], parts[4])


def partition_of(slot: str, segment: str) -> str:
    """The partition id of a (slot, segment) pair."""
    return f"{slot}/{segment}"


# --- cache tags ---------------------------------------------------------------------------------

GLOBAL_TAG = "shelfedge"
"""Carried by every bundle: purging it empties every shelfedge entry of a zone."""


def sku_tag(sku: str) -> str:
    return f"sku:{sku}"


def slot_tag(slot: str) -> str:
    return f"slot:{slot}"


def segment_tag(segment: str) -> str:
    return f"segment:{segment}"


def slot_segment_tag(slot: str, segment: str) -> str:
    return f"slotseg:{slot}/{segment}"


BUNDLE_TAG_PREFIX = "bundle:"


def bundle_tag(key: FragmentKey) -> str:
    """The tag that names exactly one bundle (all its cached representations)."""
    return f"{BUNDLE_TAG_PREFIX}{key.slot}/{key.segment}/{key.variant}/{key.locale}"


def key_of_bundle_tag(tag: str) -> FragmentKey | None:
    """The key a `bundle_tag` names, or None for any other (or malformed) tag."""
    if not tag.startswith(BUNDLE_TAG_PREFIX):
        return None
    try:
        slot, segment, variant, locale = tag.removeprefix(BUNDLE_TAG_PREFIX).split("/")
        return FragmentKey(slot, segment, variant, locale)
    except (ValueError, InvalidIdentifier):
        return None


def coarse_tags(key: FragmentKey) -> tuple[str, ...]:
    """Tags that always fit in a header, used when per-SKU tags would be too long."""
    return (
        GLOBAL_TAG,
        slot_tag(key.slot),
        segment_tag(key.segment),
        slot_segment_tag(key.slot, key.segment),
        bundle_tag(key),
    )


def bundle_tags(key: FragmentKey, skus: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """All tags of a bundle: its coarse tags, then one per SKU it shows (in order, no repeats)."""
    seen: dict[str, None] = dict.fromkeys(coarse_tags(key))
    for sku in skus:
        seen.setdefault(sku_tag(sku), None)
    return tuple(seen)


# --- Redis keys -----------------------------------------------------------------------------------


SKU_BUCKETS = 256
"""SKUs are spread over this many hash tags: enough to balance a Redis Cluster of dozens of
shards, few enough that a window's events for thousands of SKUs are a few hundred script calls."""


@lru_cache(maxsize=65_536)
def sku_bucket(sku: str) -> int:
    """The bucket (hash tag) of a SKU's keys: stable across processes and versions.

    CRC-32 from `binascii`, which every runtime of the edge has built in (WASI builds have no
    `zlib`). Memoised: the consumer asks for every SKU of every window."""
    return binascii.crc32(sku.encode()) % SKU_BUCKETS


def _sku_slot(sku: str) -> str:
    return "{p:" + str(sku_bucket(sku)) + "}"


def _partition_slot(partition: str) -> str:
    return "{b:" + partition + "}"


def product_key(sku: str) -> str:
    """HASH: the product document of one SKU (fields in origin.catalog)."""
    return f"{NAMESPACE}:{_sku_slot(sku)}:product:{sku}"


def event_seen_key(sku: str) -> str:
    """LIST: the SKU's most recent applied event ids (dedupe), capped, in the SKU's slot.

    Memory is bounded by catalog size times the cap, whatever the event rate.
    """
    return f"{NAMESPACE}:{_sku_slot(sku)}:seen:{sku}"


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


PARTITIONS_KEY = f"{NAMESPACE}:partitions"
"""SET: every partition id that has stored bundles (read-only fan-out; never in a transaction)."""

CATALOG_SKUS_KEY = f"{NAMESPACE}:catalog:skus"
"""SET: every SKU in the catalog."""

CATALOG_META_KEY = f"{NAMESPACE}:catalog:meta"
"""HASH: catalog-wide facts (seed, loaded at, popularity/margin normalisers)."""


def partition_hashes_key(partition: str) -> str:
    """HASH: cache key -> content hash of the stored bundle (compare-and-set guard)."""
    return f"{NAMESPACE}:{_partition_slot(partition)}:hashes"


SEGMENTS_KEY = f"{NAMESPACE}:catalog:segments"
"""STRING: JSON list of segment definitions."""


def purge_queue_key(partition: str, purger: str) -> str:
    """ZSET: bundle tags of the partition awaiting purge by `purger`.

    Score = priority * PURGE_PRIORITY_SPAN + milliseconds of the oldest change it covers.
    Written in the same Lua call as the bundle it purges, so a stored change always has its
    purge obligation recorded (crash-safe).
    """
    return f"{NAMESPACE}:{_partition_slot(partition)}:purgeq:{purger}"


def purge_generation_key(partition: str, purger: str) -> str:
    """HASH: tag -> generation, bumped on every enqueue (a drained purge is removed only if
    no newer change was enqueued while it was in flight)."""
    return f"{NAMESPACE}:{_partition_slot(partition)}:purgegen:{purger}"


PURGE_PRIORITY_SPAN = 10**13
"""Priority multiplier in purge queue scores: priority 0 (sell-outs) sorts before 1."""


def purge_lease_key(purger: str) -> str:
    """STRING with TTL: which consumer instance currently drains `purger`'s queues."""
    return f"{NAMESPACE}:purge:lease:{purger}"


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
