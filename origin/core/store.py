"""The Redis store: catalog state, segment lists, stored bundles and the SKU -> bundle index.

Layout and hash tags come from `origin.core.keys` (documented in docs/redis-keys.md). Each
multi-key atomic update touches one hash slot:

- a bundle write (bundle bytes, content hash, SKU index, bundle->SKUs) is one Lua script in the
  bundle's (slot, segment) partition, with compare-and-set on the content hash, so the index is
  never out of step with the bundles and concurrent recomputes cannot lose an update;
- product state changes (apply scripts in `invalidation`) stay within the SKU's slot.

Cross-slot reads (fan-out over partitions) are plain pipelines: they need no atomicity.
All calls are bounded by the store's timeout and raise StoreUnavailable (never hang).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
from redis.typing import EncodableT

from fragments.bundle import Bundle
from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from origin.core import keys
from origin.core.catalog import (
    DOCUMENT_FIELDS,
    Product,
    Segment,
    segments_from_json,
    segments_to_json,
)
from origin.core.envelope import seal
from origin.core.purge_queue import ENQUEUE_PURGES_LUA, PurgeRequest, enqueue_purge
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.core.redis_text import as_bytes, as_text, decode_map

LIST_DEPTH_FACTOR = 5
MIN_LIST_DEPTH = 200


def list_depth(candidates: int) -> int:
    """How many products a ranked list keeps: several times what its bundles carry, so a
    product leaving the top is replaced from the list itself; the list is ranked again from
    the whole catalog only when it runs short (`ListTop.short`)."""
    return max(candidates * LIST_DEPTH_FACTOR, MIN_LIST_DEPTH)


DOCUMENT_CACHE_SIZE = 8_192
"""Decoded product documents kept (`_document`, about 1.5 KB each): several times the products
that one window's recomputes read (the candidates of every impacted list)."""

_PUT_BUNDLE = (
    ENQUEUE_PURGES_LUA
    + """
local cache_key, expected, new_hash, payload, skus = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local current = redis.call('HGET', KEYS[2], cache_key) or ''
local current_hash = string.match(current, '^(%S*)') or ''
if current_hash ~= expected then return {0, current} end
redis.call('SET', KEYS[1], payload)
redis.call('HSET', KEYS[2], cache_key, new_hash .. ' ' .. ARGV[6])
local old = redis.call('HGET', KEYS[4], cache_key) or ''
local old_set, new_set = {}, {}
for sku in string.gmatch(old, '%S+') do old_set[sku] = true end
for sku in string.gmatch(skus, '%S+') do new_set[sku] = true end
for sku in pairs(old_set) do
  if not new_set[sku] then
    local kept = {}
    for k in string.gmatch(redis.call('HGET', KEYS[3], sku) or '', '%S+') do
      if k ~= cache_key then table.insert(kept, k) end
    end
    if #kept == 0 then redis.call('HDEL', KEYS[3], sku)
    else redis.call('HSET', KEYS[3], sku, table.concat(kept, ' ')) end
  end
end
for sku in pairs(new_set) do
  if not old_set[sku] then
    local v = redis.call('HGET', KEYS[3], sku)
    if v then redis.call('HSET', KEYS[3], sku, v .. ' ' .. cache_key)
    else redis.call('HSET', KEYS[3], sku, cache_key) end
  end
end
redis.call('HSET', KEYS[4], cache_key, skus)
enqueue_purges(5, ARGV[9], tonumber(ARGV[7]), tonumber(ARGV[8]))
return {1, current}
"""
)


_MERGE_SCORES = """
-- KEYS[1]: a ranked list (ZSET), KEYS[2]: the partition's list floors (HASH).
-- ARGV: list id, depth, within, msgpack [score, sku, ...] to set, msgpack [sku, ...] to
-- remove, then a floor hint: score and SKU of the best product scored but left out of the
-- scores set ('' when none).
-- Order is the ZSET's: by score, then by SKU. A list keeps its best `depth` products; every
-- member is above the list's floor (a score and a SKU), which no product outside it is above.
-- Returns {the SKUs of the scores set that are now among the best `within`, each followed by
-- its 0-based rank, members, floor score ('0' without a floor)}: what the caller needs to
-- find the bundles a change enters, without the whole top on the wire.
local lid, depth, within = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function after(a, b)  -- a > b byte by byte, as the ZSET orders members (never locale)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local function above(s, m, fs, fm)
  return fs == nil or s > fs or (s == fs and after(m, fm))
end
local stored = redis.call('HGET', KEYS[2], lid)
local fs, fm, moved = nil, nil, false
if stored then
  local at = string.find(stored, ' ', 1, true)
  fs, fm = tonumber(string.sub(stored, 1, at - 1)), string.sub(stored, at + 1)
end
if ARGV[6] ~= '' then
  local hs, hm = tonumber(ARGV[6]), ARGV[7]
  if not above(hs, hm, fs, fm) then hs = nil end
  if hs then
    fs, fm, moved = hs, hm, true
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6])
    local tied = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[6], ARGV[6])
    for _, m in ipairs(tied) do
      if not after(m, fm) then redis.call('ZREM', KEYS[1], m) end
    end
  end
end
local adds, removes = cmsgpack.unpack(ARGV[4]), cmsgpack.unpack(ARGV[5])
local keep, drop = {}, {}
for i = 1, #adds, 2 do
  if above(adds[i], adds[i + 1], fs, fm) then
    keep[#keep + 1] = adds[i] keep[#keep + 1] = adds[i + 1]
  else drop[#drop + 1] = adds[i + 1] end
end
for i = 1, #removes do drop[#drop + 1] = removes[i] end
for i = 1, #drop, 1000 do
  redis.call('ZREM', KEYS[1], unpack(drop, i, math.min(i + 999, #drop)))
end
for i = 1, #keep, 1000 do
  redis.call('ZADD', KEYS[1], unpack(keep, i, math.min(i + 999, #keep)))
end
local n = redis.call('ZCARD', KEYS[1])
if n > depth then
  local edge = redis.call('ZRANGE', KEYS[1], n - depth - 1, n - depth - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - depth - 1)
  fs, fm, moved = tonumber(edge[2]), edge[1], true
  n = depth
end
local floor = fs and string.format('%.17g', fs) or '0'
if moved then redis.call('HSET', KEYS[2], lid, floor .. ' ' .. fm) end
local entered, top = {}, redis.call('ZREVRANGE', KEYS[1], 0, within - 1)
if #keep > 0 then
  local added = {}
  for i = 2, #keep, 2 do added[keep[i]] = true end
  for rank, m in ipairs(top) do
    if added[m] then entered[#entered + 1] = m entered[#entered + 1] = rank - 1 end
  end
end
return {entered, n, floor}
"""
_PACK = msgspec.msgpack.Encoder().encode


@dataclass(frozen=True, slots=True)
class ListChange:
    """Scores to merge into one ranked list."""

    adds: Mapping[str, float]
    """SKU -> score; a score not above the list's floor takes the SKU out of the list."""
    removes: Sequence[str] = ()
    """SKUs that left (score 0)."""
    floor: tuple[float, str] | None = None
    """(score, SKU) of the best product scored for this list but left out of `adds` (order:
    score, then SKU, as in the list), None when none was."""


@dataclass(frozen=True, slots=True)
class ListTop:
    """A ranked list after a merge."""

    entered: Mapping[str, int]
    """SKU -> 0-based rank, for the SKUs of the merged change's scores (or, after a ranking
    from the whole catalog, of every SKU) that are among the best `within`."""
    size: int
    floor: float
    """The score of the list's floor (0: no product outside the list scores above 0)."""
    within: int

    @property
    def short(self) -> bool:
        """True when the list holds fewer than `within` products while products outside it
        may still score above 0: it must be ranked again from the whole catalog."""
        return self.size < self.within and self.floor > 0.0


@dataclass(frozen=True, slots=True)
class StoredState:
    """The content hash and version currently stored for a bundle key."""

    content_hash: str
    version: int

    @classmethod
    def parse(cls, raw: str | bytes | None) -> StoredState | None:
        if not raw:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        hash_, _, version = text.partition(" ")
        return cls(hash_, int(version or "0"))


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """Result of a compare-and-set bundle write."""

    written: bool
    """False when another writer changed the bundle first (recompute and retry)."""
    current: StoredState | None
    """What was stored before this call."""


class Store:
    """Async access to everything shelfedge keeps in Redis."""

    def __init__(self, redis: RedisLike, timeout: float = 0.25) -> None:
        self.redis = redis
        self.timeout = timeout
        self._put_bundle = redis.register_script(_PUT_BUNDLE)
        self._merge_scores = redis.register_script(_MERGE_SCORES)

    # --- health ---------------------------------------------------------------------------

    async def ping(self) -> bool:
        return bool(await bounded(self.redis.ping(), self.timeout, "ping"))

    # --- catalog ---------------------------------------------------------------------------

    async def load_catalog(self, products: Sequence[Product], segments: Sequence[Segment]) -> None:
        """Write products and segments (idempotent; overwrites documents)."""
        for start in range(0, len(products), 500):
            pipe = self.redis.pipeline(transaction=False)
            for p in products[start : start + 500]:
                pipe.delete(keys.product_key(p.sku))
                fields: dict[EncodableT, EncodableT] = {}
                fields.update(p.to_hash())
                pipe.hset(keys.product_key(p.sku), mapping=fields)
                pipe.sadd(keys.CATALOG_SKUS_KEY, p.sku)
            await bounded(pipe.execute(), max(self.timeout, 10.0), "load catalog")
        await bounded(
            self.redis.set(keys.SEGMENTS_KEY, segments_to_json(list(segments))),
            self.timeout,
            "store segments",
        )

    async def segments(self) -> list[Segment]:
        raw = await bounded(self.redis.get(keys.SEGMENTS_KEY), self.timeout, "read segments")
        return segments_from_json(raw) if raw else []

    async def product(self, sku: str) -> Product | None:
        """The SKU's product, or None when it is not in the catalog (or was deleted by a
        catalog.v1 event: its document is a tombstone)."""
        fields = await bounded(
            self.redis.hgetall(keys.product_key(sku)), self.timeout, "read product"
        )
        doc = decode_map(fields)
        return Product.from_hash(doc) if doc and "deleted" not in doc else None

    async def products(self, skus: Iterable[str], *, locations: bool = True) -> dict[str, Product]:
        """Products by SKU (missing SKUs are absent from the result).

        ``locations=False`` reads only `DOCUMENT_FIELDS` (no per-location stock): what bundle
        recomputes need, at a fraction of the reply-parsing cost.
        """
        sku_list = list(skus)
        async with self.redis.pipeline(transaction=False) as pipe:
            for sku in sku_list:
                if locations:
                    pipe.hgetall(keys.product_key(sku))
                else:
                    pipe.hmget(keys.product_key(sku), DOCUMENT_FIELDS)
            rows: list[Any] = await bounded(pipe.execute(), max(self.timeout, 2.0), "read products")
        if locations:
            return {
                sku: Product.from_hash(decode_map(row))
                for sku, row in zip(sku_list, rows, strict=True)
                if row
            }
        return {
            sku: _document(tuple(row))
            for sku, row in zip(sku_list, rows, strict=True)
            if row[0] is not None
        }

    async def all_skus(self) -> list[str]:
        members = await bounded(
            self.redis.smembers(keys.CATALOG_SKUS_KEY), max(self.timeout, 5.0), "list skus"
        )
        return sorted(as_text(m) for m in members)

    # --- segment lists -----------------------------------------------------------------------

    async def replace_list(
        self, list_id: str, scores: Mapping[str, float], floor: tuple[float, str] | None = None
    ) -> None:
        """Replace a ranked list and its floor atomically (one hash slot, one transaction):
        `scores` are its best products, `floor` the (score, SKU) of the best product left out
        (None: every product with a positive score is in `scores`)."""
        key = keys.segment_list_key(list_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if scores:
            pipe.zadd(key, dict(scores))
        if floor is not None:
            pipe.hset(keys.list_floors_key(list_id), list_id, f"{floor[0]!r} {floor[1]}")
        else:
            pipe.hdel(keys.list_floors_key(list_id), list_id)
        await bounded(pipe.execute(), max(self.timeout, 5.0), "replace segment list")

    async def merge_scores(
        self, changes: Mapping[str, ListChange], within: Mapping[str, int], depth: Mapping[str, int]
    ) -> dict[str, ListTop]:
        """Merge new scores into ranked lists (one Lua call per list, one pipeline for all):
        each list keeps its best `depth[list]` products above its floor. Returns each list's
        SKUs of `changes[list].adds` now among its best `within[list]`, with its size and
        floor."""
        ids = list(changes)
        async with self.redis.pipeline(transaction=False) as pipe:
            for list_id in ids:
                change = changes[list_id]
                flat = [part for sku, value in change.adds.items() for part in (value, sku)]
                await queue_script(
                    self._merge_scores,
                    pipe,
                    [keys.segment_list_key(list_id), keys.list_floors_key(list_id)],
                    [
                        list_id,
                        depth[list_id],
                        within[list_id],
                        _PACK(flat),
                        _PACK(list(change.removes)),
                        *((repr(change.floor[0]), change.floor[1]) if change.floor else ("", "")),
                    ],
                )
            results: list[Any] = await bounded(
                pipe.execute(), max(self.timeout, 5.0), "merge scores"
            )
        return {
            list_id: ListTop(
                {as_text(entered[i]): int(entered[i + 1]) for i in range(0, len(entered), 2)},
                int(size),
                float(as_text(floor)),
                within[list_id],
            )
            for list_id, (entered, size, floor) in zip(ids, results, strict=True)
        }

    async def tops(self, limits: Mapping[str, int]) -> dict[str, list[tuple[str, float]]]:
        """The best `limit` (SKU, score) of each partition's list, best first (one pipeline)."""
        pipe = self.redis.pipeline(transaction=False)
        for partition, limit in limits.items():
            pipe.zrevrange(keys.segment_list_key(partition), 0, limit - 1, withscores=True)
        rows: list[Any] = await bounded(pipe.execute(), max(self.timeout, 2.0), "read lists")
        return {
            partition: [(as_text(sku), float(value)) for sku, value in members]
            for partition, members in zip(limits, rows, strict=True)
        }

    # --- bundles ---------------------------------------------------------------------------

    async def get_envelope(self, key: FragmentKey) -> bytes | None:
        """The hot path: one GET of the stored bundle envelope (origin.core.envelope)."""
        raw = await bounded(self.redis.get(keys.bundle_key(key)), self.timeout, "read bundle")
        return None if raw is None else as_bytes(raw)

    async def stored_states(
        self, bundle_keys: Sequence[FragmentKey]
    ) -> dict[FragmentKey, StoredState | None]:
        """Content hash and version currently stored for each key (one pipeline)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in bundle_keys:
            pipe.hget(keys.partition_hashes_key(key.partition), key.cache_key)
        rows: list[Any] = await bounded(pipe.execute(), max(self.timeout, 2.0), "read states")
        return {key: StoredState.parse(raw) for key, raw in zip(bundle_keys, rows, strict=True)}

    async def stored_state(self, key: FragmentKey) -> StoredState | None:
        return (await self.stored_states([key]))[key]

    async def put_bundle(
        self,
        bundle: Bundle,
        expected: StoredState | None,
        purge: PurgeRequest | None = None,
    ) -> PutOutcome:
        """Write a bundle and its index entries atomically if the stored hash is `expected`.

        With `purge`, the bundle's tag is enqueued for each named purger in the same call.
        """
        return (await self.put_bundles([(bundle, expected, purge)]))[0]

    async def put_bundles(
        self, writes: Sequence[tuple[Bundle, StoredState | None, PurgeRequest | None]]
    ) -> list[PutOutcome]:
        """`put_bundle` for several bundles in one round trip (each write stays atomic on its
        own, in its own partition's slot)."""
        if not writes:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for bundle, expected, purge in writes:
                key = bundle.key
                partition = key.partition
                request = purge or PurgeRequest(())
                await queue_script(
                    self._put_bundle,
                    pipe,
                    [
                        keys.bundle_key(key),
                        keys.partition_hashes_key(partition),
                        keys.partition_index_key(partition),
                        keys.partition_bundles_key(partition),
                        *request.queue_keys(partition),
                    ],
                    [
                        key.cache_key,
                        expected.content_hash if expected else "",
                        bundle.content_hash,
                        seal(bundle),
                        " ".join(bundle.skus),
                        str(bundle.version),
                        str(request.priority),
                        str(request.at_ms),
                        bundle_tag(key),
                    ],
                )
            results: list[Any] = await bounded(
                pipe.execute(), max(self.timeout, 2.0), "write bundles"
            )
        return [
            PutOutcome(bool(written), StoredState.parse(current)) for written, current in results
        ]

    async def enqueue_purge(self, key: FragmentKey, purge: PurgeRequest) -> None:
        """Enqueue a bundle's tag for purging without changing the bundle."""
        await enqueue_purge(self.redis, key, purge, max(self.timeout, 2.0))

    async def bundles_showing(
        self, skus: Sequence[str], partitions: Sequence[str]
    ) -> dict[str, set[FragmentKey]]:
        """Per SKU, every stored bundle key (over `partitions`) whose candidates include it.

        One HMGET per partition for all SKUs, in one pipeline.
        """
        found: dict[str, set[FragmentKey]] = {sku: set() for sku in skus}
        if not skus:
            return found
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.hmget(keys.partition_index_key(partition), list(skus))
            rows: list[Any] = await bounded(
                pipe.execute(), max(self.timeout, 5.0), "read sku index"
            )
        for values in rows:
            for sku, value in zip(skus, values, strict=True):
                if value:
                    found[sku].update(FragmentKey.from_cache_key(k) for k in as_text(value).split())
        return found

    async def bundle_skus(self, key: FragmentKey) -> list[str]:
        raw = await bounded(
            self.redis.hget(keys.partition_bundles_key(key.partition), key.cache_key),
            self.timeout,
            "read bundle skus",
        )
        return as_text(raw).split() if raw else []


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def _document(row: tuple[bytes | str | None, ...]) -> Product:
    """A product from its `DOCUMENT_FIELDS` values as stored.

    Memoised on the stored values: a recompute reads every candidate of a bundle, most of them
    unchanged, and an unchanged document then costs a lookup (and is the same object, which
    makes the builder's candidate cache hit at once).
    """
    return Product.from_hash(
        {name: as_text(v) for name, v in zip(DOCUMENT_FIELDS, row, strict=True) if v is not None}
    )
