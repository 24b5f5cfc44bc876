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
_APPLIED, _DUPLICATE, _STALE, _UNKNOWN = 0, 1, 2, 3
_CHUNK = 1000
"""Arguments per Redis call from Lua (unpack has a stack limit)."""

_APPLY_SKU_EVENTS = f"""
-- KEYS[1] product hash, KEYS[2] seen list (one SKU, one hash slot).
-- ARGV: {_FIELDS} fields per event, in log order:
--   inventory: 'i', event_id, location, available, version, '', ''
--   price:     'p', event_id, version, price_cents, currency, compare_at_cents, promo
-- Returns 3 integers per event: status ({_APPLIED} applied, {_DUPLICATE} duplicate, {_STALE} stale,
-- {_UNKNOWN} unknown SKU), then (old total, new total) for inventory or (changed, 0) for price.
-- The SKU's state is read once per field and written once at the end, so a hot SKU's many
-- events cost table lookups, not Redis calls.
local out = {{}}
local state, dirty, order = {{}}, {{}}, {{}}
local function load(...)
  local want = {{}}
  for _, f in ipairs({{...}}) do if state[f] == nil then table.insert(want, f) end end
  if #want > 0 then
    local got = redis.call('HMGET', KEYS[1], unpack(want))
    for n, f in ipairs(want) do state[f] = got[n] or false end
  end
end
local function set(f, v)
  state[f] = v
  if not dirty[f] then dirty[f] = true table.insert(order, f) end
end
-- Every product document has a 'sku' field (origin.catalog): none means an unknown SKU.
load('sku')
local exists = state['sku'] ~= false
local fresh, pushed = {{}}, {{}}
for i = 1, #ARGV, {_FIELDS} do
  local kind, id = ARGV[i], ARGV[i + 1]
  if fresh[id] or redis.call('LPOS', KEYS[2], id) then
    table.insert(out, {_DUPLICATE}) table.insert(out, 0) table.insert(out, 0)
  elseif not exists then
    table.insert(out, {_UNKNOWN}) table.insert(out, 0) table.insert(out, 0)
  else
    local status, a, b = {_STALE}, 0, 0
    if kind == 'i' then
      local loc, ver = 'loc:' .. ARGV[i + 2], 'ver:' .. ARGV[i + 2]
      local version = tonumber(ARGV[i + 4])
      load(ver, loc, 'stock', 'stock_version')
      if version > tonumber(state[ver] or '0') then
        local old_total = tonumber(state['stock'] or '0')
        local new_total = old_total - tonumber(state[loc] or '0') + tonumber(ARGV[i + 3])
        set(loc, ARGV[i + 3]) set(ver, ARGV[i + 4]) set('stock', tostring(new_total))
        if version > tonumber(state['stock_version'] or '0') then
          set('stock_version', ARGV[i + 4])
        end
        status, a, b = {_APPLIED}, old_total, new_total
      end
    else
      load('price_version', 'price_cents', 'currency', 'compare_at_cents', 'promo')
      if tonumber(ARGV[i + 2]) > tonumber(state['price_version'] or '0') then
        local changed = 0
        if (state['price_cents'] or '') ~= ARGV[i + 3] or (state['currency'] or '') ~= ARGV[i + 4]
           or (state['compare_at_cents'] or '') ~= ARGV[i + 5]
           or (state['promo'] or '') ~= ARGV[i + 6] then changed = 1 end
        set('price_cents', ARGV[i + 3]) set('currency', ARGV[i + 4])
        set('compare_at_cents', ARGV[i + 5]) set('promo', ARGV[i + 6])
        set('price_version', ARGV[i + 2])
        status, a = {_APPLIED}, changed
      end
    end
    fresh[id] = true
    table.insert(pushed, id)
    table.insert(out, status) table.insert(out, a) table.insert(out, b)
  end
end
for n = 1, #order, {_CHUNK} do
  local args = {{}}
  for m = n, math.min(n + {_CHUNK - 1}, #order) do
    table.insert(args, order[m]) table.insert(args, state[order[m]])
  end
  redis.call('HSET', KEYS[1], unpack(args))
end
for n = 1, #pushed, {_CHUNK} do
  redis.call('LPUSH', KEYS[2], unpack(pushed, n, math.min(n + {_CHUNK - 1}, #pushed)))
end
if #pushed > 0 then
  redis.call('LTRIM', KEYS[2], 0, {SEEN_CAP - 1})
  redis.call('EXPIRE', KEYS[2], {SEEN_TTL_SECONDS})
end
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
                outcomes[index] = _outcome(events[index], *reply[3 * n : 3 * n + 3])
        return [o for o in outcomes if o is not None]


def _arguments(event: Event) -> tuple[str | int, ...]:
    if isinstance(event, InventoryEvent):
        return ("i", event.event_id, event.location, event.available, event.version, "", "")
    compare_at = "" if event.compare_at_cents is None else event.compare_at_cents
    return (
        "p", event.event_id, event.version, event.price_cents, event.currency, compare_at,
        event.promo or "",
    )  # fmt: skip


def _outcome(event: Event, status: int, a: int, b: int) -> ApplyOutcome:
    if status != _APPLIED:
        return ApplyOutcome(event, _STATUSES[status], visible_change=False, sold_out=False)
    if isinstance(event, InventoryEvent):
        before, after = stock_state(a), stock_state(b)
        return ApplyOutcome(
            event,
            "applied",
            visible_change=before != after,
            sold_out=after == "sold_out" and before != "sold_out",
        )
    return ApplyOutcome(event, "applied", visible_change=a == 1, sold_out=False)


_STATUSES: dict[int, Status] = {
    _APPLIED: "applied",
    _DUPLICATE: "duplicate",
    _STALE: "stale",
    _UNKNOWN: "unknown_sku",
}
