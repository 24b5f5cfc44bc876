"""Apply validated feed items to product documents, and remove products, in RedisLike.

One Lua call per SKU bucket (`origin.core.keys.sku_bucket`): its keys are the product documents
of the bucket's SKUs and the bucket's fingerprint hash, all in the bucket's hash slot (RedisLike
Cluster-safe). Per item, the script compares the feed's content with the document and writes
only what differs, then records the item's fingerprint.

Ownership rule: a feed carries no versions, events do. Once a price.v1 event has set a SKU's
price (``price_version`` > 0) the feed no longer writes its price; once an inventory.v1 event has
set its stock (``stock_version`` > 0) the feed no longer writes its stock. Content (title, links,
category, brand, labels, description) is written by the latest of a feed import and a
catalog.v1 event. A feed never changes popularity or margin; a new product starts with
`DEFAULT_POPULARITY` and `DEFAULT_MARGIN`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from origin.core import keys
from origin.core.catalog import LABEL_FIELDS
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.ingest.catalog_feed import FINGERPRINT_BYTES
from origin.ingest.feed_fields import FeedItem

DEFAULT_POPULARITY = 0.1
DEFAULT_MARGIN = 0.3
_CONTENT = (
    "title", "brand", "category", "link", "image_link", "description", "category_path",
    "availability", "item_group_id", "gtin", "mpn", *LABEL_FIELDS,
)  # fmt: skip
_PER_ITEM = 3
_ENCODE = msgspec.msgpack.Encoder().encode

_APPLY_ITEMS = f"""
-- KEYS: the product document of each item (one SKU bucket), then the bucket's fingerprints.
-- ARGV per item ({_PER_ITEM}): sku, fingerprint, and a msgpack array of
--   {", ".join(_CONTENT)}, price_cents, compare_at_cents, currency;
--   then (once, at the end) units for an available item, popularity and margin of a new product.
-- Returns per item 'c' when it created the product (new, or back from a deletion), else
-- {{status, price before, category before, stock before, relabelled}}: status 'm' changed,
-- 'u' unchanged; relabelled '1' when a custom label changed. Only an existing document is read
-- whole: a first import writes each new product without reading its fields.
local CONTENT = {{{", ".join(f"'{c}'" for c in _CONTENT)}}}
local prints = KEYS[#KEYS]
local units, popularity, margin = ARGV[#ARGV - 2], ARGV[#ARGV - 1], ARGV[#ARGV]
local NEW = {{}}  -- the fields of a document that does not exist
local out = {{}}
for k = 1, #KEYS - 1 do
  local at = (k - 1) * {_PER_ITEM}
  local sku, print = ARGV[at + 1], ARGV[at + 2]
  local V = cmsgpack.unpack(ARGV[at + 3])
  local c = 1
  local available = V[c + 7] ~= 'out_of_stock'
  local price_at = c + #CONTENT
  local head = redis.call('HMGET', KEYS[k], 'sku', 'deleted')
  local writes = {{}}
  local status = 'u'
  local relabelled = ''
  local doc = NEW
  if not head[1] or head[2] then
    -- new, or back from a catalog.v1 deletion (its tombstone keeps the versions it reached)
    status = 'c'
    writes = {{'sku', sku, 'promo', '', 'popularity', popularity, 'margin', margin,
      'price_cents', V[price_at], 'compare_at_cents', V[price_at + 1],
      'currency', V[price_at + 2], 'stock', available and units or '0'}}
    if head[2] then
      redis.call('HDEL', KEYS[k], 'deleted')
    else
      for _, name in ipairs({{'stock_version', 'price_version', 'content_version'}}) do
        writes[#writes + 1] = name writes[#writes + 1] = '0'
      end
    end
    for n = 1, #CONTENT do
      writes[#writes + 1] = CONTENT[n] writes[#writes + 1] = V[c + n - 1]
    end
  else
    doc = redis.call('HMGET', KEYS[k], 'sku', 'price_cents', 'category', 'stock',
      'price_version', 'stock_version', 'compare_at_cents', 'currency', 'deleted', unpack(CONTENT))
    for n = 1, #CONTENT do
      if (doc[9 + n] or '') ~= V[c + n - 1] then
        writes[#writes + 1] = CONTENT[n] writes[#writes + 1] = V[c + n - 1]
        if string.sub(CONTENT[n], 1, 5) == 'label' then relabelled = '1' end
      end
    end
    if tonumber(doc[5] or '0') == 0 then
      if doc[2] ~= V[price_at] then
        writes[#writes + 1] = 'price_cents' writes[#writes + 1] = V[price_at]
      end
      if (doc[7] or '') ~= V[price_at + 1] then
        writes[#writes + 1] = 'compare_at_cents' writes[#writes + 1] = V[price_at + 1]
      end
      if (doc[8] or '') ~= V[price_at + 2] then
        writes[#writes + 1] = 'currency' writes[#writes + 1] = V[price_at + 2]
      end
    end
    if tonumber(doc[6] or '0') == 0 then
      local stock = tonumber(doc[4] or '0')
      if available and stock <= 0 then
        writes[#writes + 1] = 'stock' writes[#writes + 1] = units
      elseif not available and stock > 0 then
        writes[#writes + 1] = 'stock' writes[#writes + 1] = '0'
      end
    end
    if #writes > 0 then status = 'm' end
  end
  if #writes > 0 then redis.call('HSET', KEYS[k], unpack(writes)) end
  redis.call('HSET', prints, sku, print)
  if status == 'c' then
    out[k] = 'c'
  else
    out[k] = {{status, doc[2] or '', doc[3] or '', doc[4] or '', relabelled}}
  end
end
return out
"""

_REMOVE_PRODUCTS = """
-- KEYS: the product documents of SKUs of one bucket, then the bucket's fingerprints.
-- ARGV: the SKUs in the same order. Deletes each document and its fingerprint.
for k = 1, #KEYS - 1 do
  redis.call('DEL', KEYS[k])
  redis.call('HDEL', KEYS[#KEYS], ARGV[k])
end
return #KEYS - 1
"""

PRINTS_SLICE = 1000
"""Fingerprints the comparison script reads per HMGET (Lua unpacks at most a few thousand)."""
_CHANGED_PRINTS = f"""
-- KEYS: one SKU bucket's fingerprints. ARGV: a msgpack array of SKUs of that bucket, their
-- fingerprints concatenated in the same order, the length of one fingerprint. Returns the
-- 0-based positions of the SKUs whose stored fingerprint is not the given one (or none is
-- stored): a re-import's reply names only what it must look into. -1 when the bucket has no
-- fingerprints at all (a first import): every SKU changed.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local skus = cmsgpack.unpack(ARGV[1])
local prints, width = ARGV[2], tonumber(ARGV[3])
local out = {{}}
local first = 1
while first <= #skus do
  local last = math.min(first + {PRINTS_SLICE - 1}, #skus)
  local stored = redis.call('HMGET', KEYS[1], unpack(skus, first, last))
  for i = first, last do
    if stored[i - first + 1] ~= string.sub(prints, (i - 1) * width + 1, i * width) then
      out[#out + 1] = i - 1
    end
  end
  first = last + 1
end
return out
"""

_COUNT_KNOWN = f"""
-- KEYS: the catalog's SKU set. ARGV: a msgpack array of SKUs. Returns how many of them the set
-- holds (a full import's removal check: one number back, not one reply per SKU).
local skus = cmsgpack.unpack(ARGV[1])
local known = 0
local first = 1
while first <= #skus do
  local last = math.min(first + {PRINTS_SLICE - 1}, #skus)
  for _, member in ipairs(redis.call('SMISMEMBER', KEYS[1], unpack(skus, first, last))) do
    known = known + member
  end
  first = last + 1
end
return known
"""

Status = Literal["created", "changed", "unchanged"]
_STATUS: dict[str, Status] = {"c": "created", "m": "changed", "u": "unchanged"}


class ItemOutcome(msgspec.Struct, frozen=True):
    """What applying one feed item did to its product document (a Struct: an import makes one
    per item it applies)."""

    item: FeedItem
    status: Status
    price_before: int | None
    category_before: str
    stock_before: int | None
    relabelled: bool = False
    """A custom label changed (a slot's label rule may rank the product differently)."""


class FeedApplier:
    """Writes feed items into product documents (see the module docstring for the rules)."""

    def __init__(self, redis: RedisLike, timeout: float = 30.0) -> None:
        self.redis = redis
        self.timeout = timeout
        self._apply = redis.register_script(_APPLY_ITEMS)
        self._remove = redis.register_script(_REMOVE_PRODUCTS)
        self._changed = redis.register_script(_CHANGED_PRINTS)
        self._count_known = redis.register_script(_COUNT_KNOWN)

    async def count_known(self, skus: Sequence[str]) -> int:
        """How many of `skus` the catalog's SKU set (`keys.CATALOG_SKUS_KEY`) holds."""
        return int(
            await bounded(
                self._count_known(keys=[keys.CATALOG_SKUS_KEY], args=[_ENCODE(list(skus))]),
                self.timeout,
                "count the feed's SKUs in the catalog",
            )
        )

    async def changed_prints(self, skus: Sequence[str], prints: Sequence[bytes]) -> list[int]:
        """The positions (into `skus`, ascending) of the items whose fingerprint is not the one
        last applied to their SKU: compared in Redis, one script call per SKU bucket (the SKUs
        as one msgpack array, the fingerprints as one string), so only the items that changed
        come back."""
        by_bucket = _bucket_positions(skus)
        width = str(FINGERPRINT_BYTES)
        async with self.redis.pipeline(transaction=False) as pipe:
            for positions in by_bucket:
                joined = b"".join(map(prints.__getitem__, positions))
                if len(joined) != FINGERPRINT_BYTES * len(positions):
                    raise ValueError(f"a feed fingerprint is not {FINGERPRINT_BYTES} bytes long")
                args: list[str | bytes] = [
                    _ENCODE(list(map(skus.__getitem__, positions))),
                    joined,
                    width,
                ]
                key = keys.feed_prints_key(skus[positions[0]])
                await queue_script(self._changed, pipe, [key], args)
            replies: list[Any] = await bounded(pipe.execute(), self.timeout, "read fingerprints")
        out: list[int] = []
        for positions, changed in zip(by_bucket, replies, strict=True):
            out += positions if changed == -1 else map(positions.__getitem__, changed)
        out.sort()
        return out

    async def apply(
        self, items: Sequence[tuple[FeedItem, bytes]], units: int, popularity: float, margin: float
    ) -> list[ItemOutcome]:
        """Apply (item, fingerprint) pairs; outcomes in no particular order."""
        by_bucket = [
            [items[at] for at in positions]
            for positions in _bucket_positions([item.sku for item, _ in items])
        ]
        tail = (str(units), repr(popularity), repr(margin))
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket in by_bucket:
                args: list[str | bytes] = []
                for item, digest in bucket:
                    compare_at = "" if item.compare_at_cents is None else str(item.compare_at_cents)
                    values = (*_content(item), str(item.price_cents), compare_at, item.currency)
                    args += (item.sku, digest, _ENCODE(values))
                await queue_script(
                    self._apply,
                    pipe,
                    [*keys.product_keys([i.sku for i, _ in bucket]),
                     keys.feed_prints_key(bucket[0][0].sku)],
                    [*args, *tail],
                )  # fmt: skip
            replies: list[Any] = await bounded(pipe.execute(), self.timeout, "apply feed items")
        return [
            _outcome(item, each)
            for bucket, reply in zip(by_bucket, replies, strict=True)
            for (item, _), each in zip(bucket, reply, strict=True)
        ]

    async def remove(self, skus: Sequence[str]) -> None:
        """Delete the product documents (and fingerprints) of `skus`."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for positions in _bucket_positions(skus):
                bucket = [skus[at] for at in positions]
                await queue_script(
                    self._remove,
                    pipe,
                    [*keys.product_keys(bucket), keys.feed_prints_key(bucket[0])],
                    bucket,
                )
            if skus:
                pipe.srem(keys.CATALOG_SKUS_KEY, *skus)
            await bounded(pipe.execute(), self.timeout, "remove products")


def _bucket_positions(skus: Sequence[str]) -> list[list[int]]:
    """The positions of `skus` grouped by SKU bucket (each group ascending): one script call
    per group, in the bucket's hash slot."""
    out: dict[int, list[int]] = {}
    for at, bucket in enumerate(keys.sku_buckets(skus)):
        out.setdefault(bucket, []).append(at)
    return list(out.values())


def _outcome(item: FeedItem, reply: Any) -> ItemOutcome:
    """The outcome of one item from the apply script's reply for it."""
    if reply == b"c":
        return ItemOutcome(item, "created", None, "", None)
    status, price, category, stock, relabelled = reply
    return ItemOutcome(
        item,
        _STATUS[status.decode()],
        int(price) if price else None,
        category.decode(),
        int(stock) if stock else None,
        bool(relabelled),
    )


def _content(item: FeedItem) -> tuple[str, ...]:
    return (
        item.title, item.brand, item.category, item.link, item.image_link, item.description,
        item.category_path, item.availability, item.item_group_id, item.gtin, item.mpn,
        *item.labels,
    )  # fmt: skip
