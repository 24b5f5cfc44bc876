"""Apply events to catalog state in Redis: atomic, deduplicated, version-gated.

Each event is one Lua call whose keys share the SKU's hash slot (product document and recent
event ids), so the check-and-apply is atomic and Redis Cluster-safe:

1. dedupe: an event id among the SKU's last `SEEN_CAP` applied ids is a duplicate;
2. gating: inventory versions are gated per (SKU, location), price versions per SKU: an event
   whose version is not newer than the applied one is stale and changes nothing;
3. apply, remember the id, and report what a shopper could see change.

A batch of events is sent as one pipeline; Redis runs the scripts in order, so events of the same
SKU apply in log order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from fragments import keys
from fragments.cards import stock_state
from invalidation.events import Event, InventoryEvent
from origin.redis_errors import bounded

SEEN_CAP = 64
SEEN_TTL_SECONDS = 7 * 24 * 3600

_COMMON = f"""
local seen_key = KEYS[2]
if redis.call('LPOS', seen_key, ARGV[1]) then return {{'duplicate'}} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {{'unknown_sku'}} end
local function remember()
  redis.call('LPUSH', seen_key, ARGV[1])
  redis.call('LTRIM', seen_key, 0, {SEEN_CAP - 1})
  redis.call('EXPIRE', seen_key, {SEEN_TTL_SECONDS})
end
"""

_APPLY_INVENTORY = (
    _COMMON
    + """
local location, available, version = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local applied = tonumber(redis.call('HGET', KEYS[1], 'ver:' .. location) or '0')
if version <= applied then remember() return {'stale'} end
local before = tonumber(redis.call('HGET', KEYS[1], 'loc:' .. location) or '0')
local old_total = tonumber(redis.call('HGET', KEYS[1], 'stock') or '0')
local new_total = old_total - before + available
local sku_version = tonumber(redis.call('HGET', KEYS[1], 'stock_version') or '0')
if version > sku_version then sku_version = version end
redis.call('HSET', KEYS[1], 'loc:' .. location, available, 'ver:' .. location, version,
           'stock', new_total, 'stock_version', sku_version)
remember()
return {'applied', old_total, new_total}
"""
)

_APPLY_PRICE = (
    _COMMON
    + """
local version = tonumber(ARGV[2])
local applied = tonumber(redis.call('HGET', KEYS[1], 'price_version') or '0')
if version <= applied then remember() return {'stale'} end
local old = redis.call('HMGET', KEYS[1], 'price_cents', 'currency', 'compare_at_cents', 'promo')
local changed = 0
if old[1] ~= ARGV[3] or old[2] ~= ARGV[4] or (old[3] or '') ~= ARGV[5]
   or (old[4] or '') ~= ARGV[6] then changed = 1 end
redis.call('HSET', KEYS[1], 'price_cents', ARGV[3], 'currency', ARGV[4],
           'compare_at_cents', ARGV[5], 'promo', ARGV[6], 'price_version', version)
remember()
return {'applied', changed}
"""
)

Status = Literal["applied", "duplicate", "stale", "unknown_sku"]


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What applying one event did."""

    event: Event
    status: Status
    visible_change: bool
    """True when what a shopper sees of the SKU may have changed (stock state or price)."""
    sold_out: bool
    """True when this event took the SKU from available to sold out."""


class EventApplier:
    """Applies batches of events to one Redis."""

    def __init__(self, redis: Redis, timeout: float = 5.0) -> None:
        self.redis = redis
        self.timeout = timeout
        self._inventory = redis.register_script(_APPLY_INVENTORY)
        self._price = redis.register_script(_APPLY_PRICE)

    async def apply(self, events: Sequence[Event]) -> list[ApplyOutcome]:
        """Apply in order (one pipeline); outcomes in the same order."""
        if not events:
            return []
        # The context manager returns the pipeline's connection to the pool even when Redis
        # fails while the scripts load (redis-py keeps it otherwise).
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                event_keys = [keys.product_key(event.sku), keys.event_seen_key(event.sku)]
                if isinstance(event, InventoryEvent):
                    await self._inventory(
                        keys=event_keys,
                        args=[event.event_id, event.location, event.available, event.version],
                        client=pipe,
                    )
                else:
                    await self._price(
                        keys=event_keys,
                        args=[
                            event.event_id,
                            event.version,
                            event.price_cents,
                            event.currency,
                            "" if event.compare_at_cents is None else event.compare_at_cents,
                            event.promo or "",
                        ],
                        client=pipe,
                    )
            replies: list[Any] = await bounded(pipe.execute(), self.timeout, "apply events")
        return [_outcome(e, r) for e, r in zip(events, replies, strict=True)]


def _outcome(event: Event, reply: list[Any]) -> ApplyOutcome:
    status_raw = reply[0]
    status = status_raw.decode() if isinstance(status_raw, bytes) else str(status_raw)
    if status != "applied":
        return ApplyOutcome(event, _status(status), visible_change=False, sold_out=False)
    if isinstance(event, InventoryEvent):
        before, after = stock_state(int(reply[1])), stock_state(int(reply[2]))
        return ApplyOutcome(
            event,
            "applied",
            visible_change=before != after,
            sold_out=after == "sold_out" and before != "sold_out",
        )
    return ApplyOutcome(event, "applied", visible_change=bool(int(reply[1])), sold_out=False)


def _status(raw: str) -> Status:
    if raw == "duplicate":
        return "duplicate"
    if raw == "stale":
        return "stale"
    return "unknown_sku"
