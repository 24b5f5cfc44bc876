"""Apply events to catalog state in Redis: atomic, deduplicated, version-gated.

Each SKU's events of a batch are one Lua call whose keys share the SKU's hash slot (product
document and recent event ids), so every check-and-apply is atomic and Redis Cluster-safe:

1. dedupe: an event id among the SKU's last `SEEN_CAP` applied ids is a duplicate;
2. gating: inventory versions are gated per (SKU, location), price versions per SKU: an event
   whose version is not newer than the applied one is stale and changes nothing;
3. apply, remember the id, and report what a shopper could see change.

A batch is sent as one pipeline; within a SKU's call its events apply in log order.
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
_FIELDS = 7

_APPLY_SKU_EVENTS = f"""
-- KEYS[1] product hash, KEYS[2] seen list (one SKU, one hash slot).
-- ARGV: {_FIELDS} fields per event, in log order:
--   inventory: 'i', event_id, location, available, version, '', ''
--   price:     'p', event_id, version, price_cents, currency, compare_at_cents, promo
-- Returns 3 entries per event: status, then (old total, new total) or (changed, '').
local out = {{}}
local exists = redis.call('EXISTS', KEYS[1]) == 1
for i = 1, #ARGV, {_FIELDS} do
  local kind, id = ARGV[i], ARGV[i + 1]
  if redis.call('LPOS', KEYS[2], id) then
    table.insert(out, 'duplicate') table.insert(out, '') table.insert(out, '')
  elseif not exists then
    table.insert(out, 'unknown_sku') table.insert(out, '') table.insert(out, '')
  else
    local status, a, b = 'stale', '', ''
    if kind == 'i' then
      local location = ARGV[i + 2]
      local available, version = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
      local applied = tonumber(redis.call('HGET', KEYS[1], 'ver:' .. location) or '0')
      if version > applied then
        local before = tonumber(redis.call('HGET', KEYS[1], 'loc:' .. location) or '0')
        local old_total = tonumber(redis.call('HGET', KEYS[1], 'stock') or '0')
        local new_total = old_total - before + available
        local sku_version = tonumber(redis.call('HGET', KEYS[1], 'stock_version') or '0')
        if version > sku_version then sku_version = version end
        redis.call('HSET', KEYS[1], 'loc:' .. location, available, 'ver:' .. location, version,
                   'stock', new_total, 'stock_version', sku_version)
        status, a, b = 'applied', old_total, new_total
      end
    else
      local version = tonumber(ARGV[i + 2])
      local applied = tonumber(redis.call('HGET', KEYS[1], 'price_version') or '0')
      if version > applied then
        local old = redis.call('HMGET', KEYS[1], 'price_cents', 'currency',
                               'compare_at_cents', 'promo')
        local changed = 0
        if old[1] ~= ARGV[i + 3] or old[2] ~= ARGV[i + 4] or (old[3] or '') ~= ARGV[i + 5]
           or (old[4] or '') ~= ARGV[i + 6] then changed = 1 end
        redis.call('HSET', KEYS[1], 'price_cents', ARGV[i + 3], 'currency', ARGV[i + 4],
                   'compare_at_cents', ARGV[i + 5], 'promo', ARGV[i + 6], 'price_version', version)
        status, a = 'applied', changed
      end
    end
    redis.call('LPUSH', KEYS[2], id)
    table.insert(out, status) table.insert(out, a) table.insert(out, b)
  end
end
redis.call('LTRIM', KEYS[2], 0, {SEEN_CAP - 1})
redis.call('EXPIRE', KEYS[2], {SEEN_TTL_SECONDS})
return out
"""

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
        self._apply = redis.register_script(_APPLY_SKU_EVENTS)

    async def apply(self, events: Sequence[Event]) -> list[ApplyOutcome]:
        """Apply in log order; outcomes in the same order as `events`.

        One script call per SKU carries all of that SKU's events of the batch (in order), and
        all calls go in one pipeline: a hot SKU costs one round of Lua, not one per event.
        """
        if not events:
            return []
        by_sku: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            by_sku.setdefault(event.sku, []).append(index)
        # The context manager returns the pipeline's connection to the pool even when Redis
        # fails while the scripts load (redis-py keeps it otherwise).
        async with self.redis.pipeline(transaction=False) as pipe:
            for sku, indexes in by_sku.items():
                args: list[str | int] = []
                for index in indexes:
                    args.extend(_arguments(events[index]))
                await self._apply(
                    keys=[keys.product_key(sku), keys.event_seen_key(sku)], args=args, client=pipe
                )
            replies: list[Any] = await bounded(pipe.execute(), self.timeout, "apply events")
        outcomes: list[ApplyOutcome | None] = [None] * len(events)
        for indexes, reply in zip(by_sku.values(), replies, strict=True):
            for n, index in enumerate(indexes):
                outcomes[index] = _outcome(events[index], reply[3 * n : 3 * n + 3])
        return [o for o in outcomes if o is not None]


def _arguments(event: Event) -> tuple[str | int, ...]:
    if isinstance(event, InventoryEvent):
        return ("i", event.event_id, event.location, event.available, event.version, "", "")
    compare_at = "" if event.compare_at_cents is None else event.compare_at_cents
    return (
        "p", event.event_id, event.version, event.price_cents, event.currency, compare_at,
        event.promo or "",
    )  # fmt: skip


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
