"""Apply events to catalog state in Redis: atomic, deduplicated, version-gated.

The events of a batch are one Lua call per SKU bucket, whose keys (each SKU's product document,
recent event ids and the bucket's feed fingerprints) share the bucket's hash slot, so every
check-and-apply is atomic and Redis Cluster-safe:

1. dedupe: an event id among the SKU's last `SEEN_CAP` applied ids is a duplicate;
2. gating: inventory versions are gated per (SKU, location), price versions per SKU, catalog
   content versions per SKU: an event whose version is not newer than the applied one is stale
   and changes nothing;
3. apply, remember the id, and report what a shopper could see change.

A catalog.v1 upsert writes the content fields it carries and forgets the SKU's feed fingerprint
(`origin.core.keys.feed_prints_key`), so the next feed import compares that item again. A
deletion leaves a tombstone (``deleted``, stock 0: the SKU leaves every list like a sell-out);
inventory, price and content events for a deleted SKU are then unknown-SKU dead letters, and
only a feed import brings the product back.

A batch is sent as one pipeline; within a call each SKU's events apply in log order. The
pipeline sends a collapsed window (`invalidation.collapse`): the events that can still leave a
trace, with the ids of the others, which the script looks up and remembers so every event is
counted as one-by-one application would count it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from fragments.bundle import StockState
from fragments.cards import stock_state
from invalidation.collapse import Answer, SkuWindow, every_event
from invalidation.events import LABELS, CatalogEvent, Event, InventoryEvent
from origin.core import keys
from origin.core.catalog import LABEL_FIELDS, category_id
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script

SEEN_CAP = 64
SEEN_TTL_SECONDS = 7 * 24 * 3600
_INVENTORY_FIELDS = 5
_PRICE_FIELDS = 7
_LPOS_MAX = 2
"""A SKU with at most this many events in a call looks each id up (LPOS); more read the list."""
_APPLIED, _SHOWN, _REPRICED, _DUPLICATE, _STALE, _UNKNOWN = "a", "A", "P", "d", "s", "u"
_RECATEGORISED = "R"
"""An applied content event that moved the SKU to another category or changed one of its custom
labels (slots' label rules score by them): its scores may move."""
_DELETE_FIELDS = 3
_KEYS_PER_SKU = 3
_CHUNK = 1000
"""Arguments per Redis call from Lua (unpack has a stack limit)."""

_APPLY_BUCKET_EVENTS = f"""
-- KEYS: per SKU of one bucket (one hash slot), its product hash, its seen list and the
-- bucket's feed fingerprints.
-- ARGV: per SKU, in KEYS order, the number of its events, then its events in log order:
--   inventory: 'i', event_id, location, available, version                              (5)
--   price:     'p', event_id, version, price_cents, currency, compare_at_cents, promo    (7)
--   content:   'c', event_id, version, n, then n (field, value) pairs              (4 + 2n)
--   deletion:  'x', event_id, version                                                   (3)
--   The kind in upper case ('I', 'P', 'C', 'X'): the same, then n and n event ids (events of
--   its key a collapse did not send, `invalidation.collapse`); report the version its key holds
--   before it and which of those ids the SKU remembers (one '1' or '0' each); the others are
--   remembered now, as if applied one by one.
-- Returns per SKU {{statuses, price before, price after, {{exists, before, remembered, ...}},
-- totals...}}:
-- statuses has one letter
-- per event ('{_APPLIED}' applied, '{_REPRICED}' applied price that changed the price,
-- '{_SHOWN}' applied price or content that changed another visible field,
-- '{_RECATEGORISED}' applied content that changed the category or a label, '{_DUPLICATE}' dup,
-- '{_STALE}' stale, '{_UNKNOWN}' unknown SKU); the price before the SKU's events and after them;
-- the stock total before the first applied inventory event and after each.
-- A document is read once and written once, so a hot SKU's many events cost table lookups; so
-- is its list of recent ids when it has more than {_LPOS_MAX} events (fewer ask LPOS each).
local PRICE_DOCUMENT = {{'price_cents', 'currency', 'compare_at_cents', 'promo', 'price_version'}}
local UPPER = {{I = 'i', P = 'p', C = 'c', X = 'x'}}
local function mark(dirty, order, field)
  if not dirty[field] then dirty[field] = true order[#order + 1] = field end
end
local function apply_sku(product, seen, prints, at, count)
  local doc = redis.call('HGETALL', product)
  local state = {{}}
  for n = 1, #doc, 2 do state[doc[n]] = doc[n + 1] end
  -- Every product document has a 'sku' field (origin.core.catalog): none means an unknown SKU.
  local exists = state['sku'] ~= nil and state['deleted'] == nil
  local dirty, order, statuses, totals, known, pushed = {{}}, {{}}, {{}}, {{}}, {{}}, {{}}
  local befores = {{exists and '1' or '0'}}
  local ask = count <= {_LPOS_MAX}
  if not ask then
    local recent = redis.call('LRANGE', seen, 0, -1)
    for n = 1, #recent do known[recent[n]] = true end
  end
  local total = tonumber(state['stock'] or '0')
  local stock_version = tonumber(state['stock_version'] or '0')
  local price_version = tonumber(state['price_version'] or '0')
  local price_before = state['price_cents'] or ''
  for e = 1, count do
    local kind, id, status = ARGV[at], ARGV[at + 1], '{_STALE}'
    local upper = UPPER[kind]
    if upper then
      kind = upper
      local before
      if kind == 'i' then before = state['ver:' .. ARGV[at + 2]]
      elseif kind == 'p' then before = state['price_version']
      else before = state['content_version'] end
      befores[#befores + 1] = before or '0'
    end
    if upper then
      local size
      if kind == 'i' then size = {_INVENTORY_FIELDS}
      elseif kind == 'p' then size = {_PRICE_FIELDS}
      elseif kind == 'x' then size = {_DELETE_FIELDS}
      else size = 4 + 2 * tonumber(ARGV[at + 3]) end
      local n = tonumber(ARGV[at + size])
      if ask and n > {_LPOS_MAX} then
        local recent = redis.call('LRANGE', seen, 0, -1)
        for r = 1, #recent do known[recent[r]] = true end
        ask = false
      end
      local flags = {{}}
      for d = 1, n do
        local other = ARGV[at + size + d]
        if known[other] or (ask and redis.call('LPOS', seen, other)) then
          flags[d] = '1'
        else
          flags[d] = '0'
          if exists then known[other] = true pushed[#pushed + 1] = other end
        end
      end
      befores[#befores + 1] = table.concat(flags)
    end
    if known[id] or (ask and redis.call('LPOS', seen, id)) then
      status = '{_DUPLICATE}'
    elseif not exists then
      status = '{_UNKNOWN}'
    elseif kind == 'i' then
      local loc, units, sent = ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
      local ver, version = 'ver:' .. loc, tonumber(sent)
      if version > tonumber(state[ver] or '0') then
        local field = 'loc:' .. loc
        if #totals == 0 then totals[1] = total end
        total = total - tonumber(state[field] or '0') + tonumber(units)
        totals[#totals + 1] = total
        state[field] = units mark(dirty, order, field)
        state[ver] = sent mark(dirty, order, ver)
        if version > stock_version then
          stock_version = version state['stock_version'] = sent
          mark(dirty, order, 'stock_version')
        end
        status = '{_APPLIED}'
      end
    elseif kind == 'c' or kind == 'x' then
      local sent = ARGV[at + 2]
      if tonumber(sent) > tonumber(state['content_version'] or '0') then
        status = '{_APPLIED}'
        if kind == 'x' then
          status = '{_SHOWN}'
          state['deleted'] = '1' mark(dirty, order, 'deleted')
          if #totals == 0 then totals[1] = total end
          total = 0
          totals[#totals + 1] = total
        else
          for f = 0, tonumber(ARGV[at + 3]) - 1 do
            local name, value = ARGV[at + 4 + 2 * f], ARGV[at + 5 + 2 * f]
            if (state[name] or '') ~= value then
              if name == 'category' or string.sub(name, 1, 5) == 'label' then
                status = '{_RECATEGORISED}'
              elseif status ~= '{_RECATEGORISED}' then status = '{_SHOWN}' end
              state[name] = value mark(dirty, order, name)
            end
          end
        end
        state['content_version'] = sent mark(dirty, order, 'content_version')
        redis.call('HDEL', prints, state['sku'])
      end
    else
      local sent = ARGV[at + 2]
      local version = tonumber(sent)
      if version > price_version then
        local price, currency, compare_at, promo = ARGV[at + 3], ARGV[at + 4], ARGV[at + 5],
          ARGV[at + 6]
        status = '{_APPLIED}'
        if (state['price_cents'] or '') ~= price then status = '{_REPRICED}'
        elseif (state['currency'] or '') ~= currency
           or (state['compare_at_cents'] or '') ~= compare_at
           or (state['promo'] or '') ~= promo then status = '{_SHOWN}' end
        state['price_cents'] = price state['currency'] = currency
        state['compare_at_cents'] = compare_at state['promo'] = promo
        state['price_version'] = sent price_version = version
        for _, field in ipairs(PRICE_DOCUMENT) do mark(dirty, order, field) end
      end
    end
    if status ~= '{_DUPLICATE}' and status ~= '{_UNKNOWN}' then
      known[id] = true
      pushed[#pushed + 1] = id
    end
    statuses[e] = status
    if kind == 'i' then at = at + {_INVENTORY_FIELDS}
    elseif kind == 'p' then at = at + {_PRICE_FIELDS}
    elseif kind == 'x' then at = at + {_DELETE_FIELDS}
    else at = at + 4 + 2 * tonumber(ARGV[at + 3]) end
    if upper then at = at + 1 + tonumber(ARGV[at]) end
  end
  if #totals > 0 then state['stock'] = tostring(total) mark(dirty, order, 'stock') end
  for n = 1, #order, {_CHUNK} do
    local args = {{}}
    for m = n, math.min(n + {_CHUNK - 1}, #order) do
      args[#args + 1] = order[m] args[#args + 1] = state[order[m]]
    end
    redis.call('HSET', product, unpack(args))
  end
  for n = 1, #pushed, {_CHUNK} do
    redis.call('LPUSH', seen, unpack(pushed, n, math.min(n + {_CHUNK - 1}, #pushed)))
  end
  if #pushed > 0 then
    redis.call('LTRIM', seen, 0, {SEEN_CAP - 1})
    redis.call('EXPIRE', seen, {SEEN_TTL_SECONDS})
  end
  local reply = {{table.concat(statuses), price_before, state['price_cents'] or '', befores}}
  for n = 1, #totals do reply[n + 4] = totals[n] end
  return reply, at
end
local results, at = {{}}, 1
for k = 1, #KEYS, {_KEYS_PER_SKU} do
  local count = tonumber(ARGV[at])
  results[#results + 1], at = apply_sku(KEYS[k], KEYS[k + 1], KEYS[k + 2], at + 1, count)
end
return results
"""

Status = Literal["applied", "duplicate", "stale", "unknown_sku"]

_STATUSES: dict[str, Status] = {
    _APPLIED: "applied",
    _SHOWN: "applied",
    _REPRICED: "applied",
    _RECATEGORISED: "applied",
    _DUPLICATE: "duplicate",
    _STALE: "stale",
    _UNKNOWN: "unknown_sku",
}


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What applying one event did."""

    event: Event
    status: Status
    visible_change: bool
    """True when what a shopper sees of the SKU may have changed (stock state or price)."""
    sold_out: bool
    """True when this event took the SKU from available to sold out."""


@dataclass(frozen=True, slots=True)
class SkuResult:
    """What applying one SKU's events of a batch did: the pipeline's unit of work.

    Read per SKU, not per event, so a window's bookkeeping grows with the SKUs it touches.
    """

    sku: str
    indexes: list[int]
    """Where the SKU's events are in the batch, in log order."""
    statuses: str
    """One letter per event (see the apply script)."""
    states: tuple[StockState, ...]
    """The stock state before the SKU's first applied inventory event, then after each one."""
    prices: tuple[int, int] | None
    """The price before and after the SKU's events, when one of them changed it."""
    unsent: tuple[int, ...] = ()
    """Batch indexes of the SKU's events a collapse did not send (`invalidation.collapse`)."""
    unsent_applied: int = 0
    """Of those, how many one-by-one application would have applied (then overwritten)."""
    unsent_stale: int = 0
    unsent_duplicates: int = 0
    unsent_unknown: tuple[int, ...] = ()
    """Batch indexes of unsent events naming a SKU not in the catalog (dead letters)."""

    @property
    def applied(self) -> int:
        s = self.statuses
        sent = s.count(_APPLIED) + s.count(_SHOWN) + s.count(_REPRICED) + s.count(_RECATEGORISED)
        return sent + self.unsent_applied

    @property
    def duplicates(self) -> int:
        return self.statuses.count(_DUPLICATE) + self.unsent_duplicates

    @property
    def stale(self) -> int:
        return self.statuses.count(_STALE) + self.unsent_stale

    @property
    def has_unknown(self) -> bool:
        return _UNKNOWN in self.statuses or bool(self.unsent_unknown)

    def unknown(self) -> list[int]:
        """Batch indexes of the events naming a SKU that is not in the catalog (events not sent
        too: every such event is a dead letter, never dropped by a collapse)."""
        sent = [i for i, s in zip(self.indexes, self.statuses, strict=True) if s == _UNKNOWN]
        return sorted(sent + list(self.unsent_unknown)) if self.unsent_unknown else sent

    def known(self) -> list[int]:
        """Batch indexes of the other events, sent or not."""
        bad = set(self.unknown())
        return sorted(i for i in self.every_index if i not in bad)

    @property
    def every_index(self) -> list[int]:
        """Batch indexes of all the SKU's events, sent or not."""
        return [*self.indexes, *self.unsent] if self.unsent else self.indexes

    @property
    def redelivered(self) -> bool:
        """Some event was a duplicate or stale: a redelivery, maybe after a crash."""
        return (
            _DUPLICATE in self.statuses
            or _STALE in self.statuses
            or self.unsent_stale > 0
            or self.unsent_duplicates > 0
        )

    @property
    def visible_change(self) -> bool:
        """What a shopper sees of the SKU may have changed: a stock state, a price, content."""
        return (
            _SHOWN in self.statuses
            or self.recategorised
            or self.prices is not None
            or self.stock_state_changed
        )

    @property
    def recategorised(self) -> bool:
        """A content event moved the SKU to another category or changed a custom label (its
        scores may move)."""
        return _RECATEGORISED in self.statuses

    @property
    def stock_state_changed(self) -> bool:
        """Some event moved the SKU's stock state (all that scores and cards show of stock)."""
        return len(set(self.states)) > 1

    @property
    def sold_out(self) -> bool:
        """Some event took the SKU from available to sold out."""
        return any(b == "sold_out" and a != "sold_out" for a, b in pairwise(self.states))

    def outcomes(self, events: Sequence[Event]) -> list[ApplyOutcome]:
        """Per event (`events` is the batch), in the SKU's log order."""
        out: list[ApplyOutcome] = []
        states = iter(self.states)
        old = next(states, None)
        for index, status in zip(self.indexes, self.statuses, strict=True):
            event = events[index]
            visible = sold_out = False
            if status in (_SHOWN, _REPRICED, _RECATEGORISED):
                visible = True
                if isinstance(event, CatalogEvent) and event.op == "delete":
                    new = next(states)
                    sold_out = new == "sold_out" and old != "sold_out"
                    old = new
            elif status == _APPLIED and isinstance(event, InventoryEvent):
                new = next(states)
                visible, sold_out = old != new, new == "sold_out" and old != "sold_out"
                old = new
            out.append(ApplyOutcome(event, _STATUSES[status], visible, sold_out))
        return out


class EventApplier:
    """Applies batches of events to one Redis."""

    def __init__(self, redis: RedisLike, timeout: float = 5.0) -> None:
        self.redis = redis
        self.timeout = timeout
        self._apply = redis.register_script(_APPLY_BUCKET_EVENTS)

    async def apply(self, events: Sequence[Event]) -> list[ApplyOutcome]:
        """Apply in log order; per-event outcomes in the same order as `events`."""
        outcomes: list[ApplyOutcome | None] = [None] * len(events)
        for result in await self.apply_by_sku(events):
            for index, outcome in zip(result.indexes, result.outcomes(events), strict=True):
                outcomes[index] = outcome
        return [o for o in outcomes if o is not None]

    async def apply_by_sku(
        self, events: Sequence[Event], windows: Sequence[SkuWindow] | None = None
    ) -> list[SkuResult]:
        """Apply in log order; one result per SKU.

        `windows` is the batch collapsed (`invalidation.collapse.collapse`): only the kept
        events are sent, and the others are counted from the stored versions the script reports.
        Without it every event is sent. All of a SKU's sent events go, in order, to one script
        call, which carries every SKU of that key bucket (`origin.core.keys.sku_bucket`: one hash
        slot); all calls go in one pipeline. A hot SKU costs one round of Lua, and a window of
        thousands of SKUs at most `SKU_BUCKETS` script calls.
        """
        if not events:
            return []
        if windows is None:
            windows = every_event(events)
        by_bucket: dict[int, list[SkuWindow]] = {}
        for window in windows:
            by_bucket.setdefault(keys.sku_bucket(window.sku), []).append(window)
        return await self._apply_buckets(events, list(by_bucket.values()))

    async def _apply_buckets(
        self, events: Sequence[Event], buckets: list[list[SkuWindow]]
    ) -> list[SkuResult]:
        # The context manager returns the pipeline's connection to the pool even when Redis
        # fails while the scripts load (redis-py keeps it otherwise).
        async with self.redis.pipeline(transaction=False) as pipe:
            for windows in buckets:
                redis_keys: list[str] = []
                args: list[str | int] = []
                for window in windows:
                    sku = window.sku
                    redis_keys += (
                        keys.product_key(sku),
                        keys.event_seen_key(sku),
                        keys.feed_prints_key(sku),
                    )
                    args.append(len(window.kept))
                    heads = {g.head: g for g in window.groups if g.reports}
                    for index in window.kept:
                        group = heads.get(index)
                        if group is None:
                            args += _arguments(events[index])
                            continue
                        kind, *rest = _arguments(events[index])
                        args += (str(kind).upper(), *rest, len(group.dropped))
                        args += [events[i].event_id for i in group.dropped]
                await queue_script(self._apply, pipe, redis_keys, args)
            replies: list[Any] = await bounded(pipe.execute(), self.timeout, "apply events")
        return [
            _sku_result(window, reply)
            for windows, bucket_reply in zip(buckets, replies, strict=True)
            for window, reply in zip(windows, bucket_reply, strict=True)
        ]


def _sku_result(window: SkuWindow, reply: list[Any]) -> SkuResult:
    """One SKU's answer of the apply script: statuses, price before and after (bulk strings),
    the versions reporting keys held before (bulk strings), stock totals (integers)."""
    statuses = reply[0].decode()
    prices = (int(reply[1]), int(reply[2])) if _REPRICED in statuses else None
    states = tuple(map(stock_state, reply[4:]))
    if not window.others:
        return SkuResult(window.sku, window.kept, statuses, states, prices)
    answers = reply[3]
    missing = answers[0] == b"0"
    unsent = window.classify(
        statuses,
        missing,
        [Answer(int(answers[n]), answers[n + 1].decode()) for n in range(1, len(answers), 2)],
    )
    return SkuResult(
        window.sku, window.kept, statuses, states, prices, tuple(window.others),
        unsent.applied, unsent.stale, unsent.duplicates, tuple(unsent.unknown),
    )  # fmt: skip


def _arguments(event: Event) -> tuple[str | int, ...]:
    if isinstance(event, InventoryEvent):
        return ("i", event.event_id, event.location, event.available, event.version)
    if isinstance(event, CatalogEvent):
        if event.op == "delete":
            return ("x", event.event_id, event.version)
        fields = _content_fields(event)
        pairs = [part for pair in fields for part in pair]
        return ("c", event.event_id, event.version, len(fields), *pairs)
    compare_at = "" if event.compare_at_cents is None else event.compare_at_cents
    return (
        "p", event.event_id, event.version, event.price_cents, event.currency, compare_at,
        event.promo or "",
    )  # fmt: skip


def _content_fields(event: CatalogEvent) -> list[tuple[str, str]]:
    """The product document fields a content upsert writes (only those it carries)."""
    fields: list[tuple[str, str]] = [
        (name, value)
        for name, value in (
            ("title", event.title),
            ("link", event.link),
            ("image_link", event.image_link),
            ("brand", event.brand),
            ("description", event.description),
        )
        if value is not None
    ]
    if event.category is not None:
        path = " > ".join(p.strip() for p in event.category.split(">") if p.strip())
        fields += [("category", category_id(path)), ("category_path", path)]
    if event.labels is not None:
        labels = [*event.labels, *([""] * LABELS)][:LABELS]
        fields += list(zip(LABEL_FIELDS, labels, strict=True))
    return fields
