"""Experiment aggregates in Redis: the idempotent fold of events and the reads behind results.

Per experiment (hash tag ``{e:<experiment>}``, keys in `origin.core.keys`) and UTC hour:

- event counts per (metric, variant, hour) in one hash, plus purchase value;
- distinct visitors per (metric, variant, hour) in HyperLogLogs. Why HLL rather than sets: an
  experiment can see millions of visitors; a set costs tens of bytes per visitor per variant and
  hour, a HyperLogLog at most 12 KB whatever the traffic, its union over any hours is one
  PFCOUNT, and its standard error (0.81 %) is far below the sampling noise the confidence
  intervals already carry at the sample sizes where it matters (small counts are nearly exact);
- the hours that have data (for the time series);
- the ids of the events folded per hour of the *event's* time, with an 8-day TTL, so a redelivery
  always meets its first delivery's set: the fold is idempotent per event id.

- the sums the statistics need (`origin.events.moment_table`): per variant and UTC day, exposed
  visitors, the pre-exposure covariate, each metric's per-visitor outcome, squares and
  cross-products. They are folded against a working set of visitor states (a 64-bit digest of
  the visitor -> first variant, covariate, conversions and revenue so far), which is what makes
  per-visitor squares and the multiple-exposure count exact; the working set is capped
  (`MAX_TRACKED_VISITORS`) and expires with the experiment, and results never read it.

Every key expires: the dedupe sets after `DEDUPE_TTL_S`, the rest `retention_s` (default
`RETENTION_S`) after the last event folded into them, so an experiment nobody reports on any
more, or keys made up by a client, never hold Redis memory for ever.

Each event is folded by one Lua script (dedupe and every counter change in one step); a batch is
one pipeline. It never decides what an event means; it never stores visitor ids in clear
beyond the HyperLogLog registers (the working set holds digests).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.core.redis_text import as_text
from origin.events.moment_table import MomentTable
from origin.events.schema import ExperimentEvent
from origin.experiments.stats import SeriesPoint

DEDUPE_TTL_S = 8 * 24 * 3600
"""Longer than the collector's accepted event age (7 days) plus a day of redelivery."""
VISITOR_STATE_TTL_S = 35 * 24 * 3600
"""The visitor working set expires 35 days after the experiment's last event."""
MOMENTS_TTL_S = 400 * 24 * 3600
"""Results stay readable for 400 days after the experiment's last event."""
MAX_TRACKED_VISITORS = 1_000_000
"""Visitor cap of the working set (about 80 MB): later first exposures are counted as
``untracked`` and results say so."""
VALUE_METRIC = "value"
RETENTION_S = 400 * 24 * 3600
"""Aggregates are kept this long after their last event (a year of results, and some)."""

_FOLD = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
if ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[8], ARGV[7]) end
redis.call('PFADD', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
local kind, variant = ARGV[15], ARGV[16]
local function bump(stat, on, by)
  redis.call('HINCRBYFLOAT', KEYS[6], stat .. '|' .. on .. '|' .. ARGV[10], by)
end
local function split(raw)
  local out = {}
  for part in string.gmatch(raw, '[^|]+') do out[#out + 1] = part end
  return out
end
local function store(s)
  redis.call('HSET', KEYS[5], ARGV[9], table.concat(s, '|'))
end
-- visitor state: variant|x|multi|click|add_to_cart|purchase|revenue|exposed
local raw = redis.call('HGET', KEYS[5], ARGV[9])
local flags = {click = 4, add_to_cart = 5, purchase = 6}
local function credit(s, on)
  -- add an exposed visitor's outcomes so far to the sums (on first exposure)
  local x = tonumber(s[2])
  bump('n', on, 1)
  bump('x', on, x)
  bump('xx', on, x * x)
  for metric, i in pairs(flags) do
    if s[i] == '1' then
      bump('y:' .. metric, on, 1)
      bump('xy:' .. metric, on, x)
    end
  end
  local r = tonumber(s[7])
  if r > 0 then
    bump('y:revenue', on, r)
    bump('yy:revenue', on, r * r)
    bump('xy:revenue', on, x * r)
  end
end
local full = redis.call('HLEN', KEYS[5]) >= tonumber(ARGV[14])
if kind == 'exposure' then
  if not raw then
    if full then
      bump('untracked', variant, 1)
    else
      local s = {variant, tostring(tonumber(ARGV[11]) or 0), '0', '0', '0', '0', '0', '1'}
      store(s)
      credit(s, variant)
    end
  else
    local s = split(raw)
    if s[8] == '0' and s[1] == variant then
      s[2] = tostring(tonumber(ARGV[11]) or 0)
      s[8] = '1'
      store(s)
      credit(s, variant)
    elseif s[8] == '1' and s[1] ~= variant and s[3] == '0' then
      s[3] = '1'
      store(s)
      bump('multi', s[1], 1)
    end
  end
else
  local s
  if raw then
    s = split(raw)
  elseif not full then
    -- a conversion ahead of its exposure (they travel on different topics): held, not counted
    s = {variant, '0', '0', '0', '0', '0', '0', '0'}
  end
  if s and s[1] == variant then
    local counted = s[8] == '1'
    local x = tonumber(s[2])
    local flag = flags[kind]
    if flag and s[flag] == '0' then
      s[flag] = '1'
      if counted then
        bump('y:' .. kind, variant, 1)
        bump('xy:' .. kind, variant, x)
      end
    end
    if kind == 'purchase' and ARGV[7] ~= '' then
      local r, v = tonumber(s[7]), tonumber(ARGV[7])
      s[7] = string.format('%.0f', r + v)
      if counted then
        bump('y:revenue', variant, v)
        bump('yy:revenue', variant, 2 * r * v + v * v)
        bump('xy:revenue', variant, x * v)
      end
    end
    store(s)
  end
end
redis.call('EXPIRE', KEYS[5], ARGV[12])
redis.call('EXPIRE', KEYS[6], ARGV[13])
for i = 2, 4 do redis.call('EXPIRE', KEYS[i], ARGV[17]) end
return 1
"""


def hour_of(at: float) -> tuple[str, int]:
    """The UTC hour bucket ``YYYYMMDDHH`` of a unix time, and the bucket's start."""
    start = int(at // 3600 * 3600)
    return time.strftime("%Y%m%d%H", time.gmtime(start)), start


def visitor_digest(experiment: str, visitor: str) -> str:
    """The visitor's pseudonymous key in the working set (64 bits of SHA-256)."""
    return hashlib.sha256(f"{experiment}:{visitor}".encode()).hexdigest()[:16]


def count_field(metric: str, variant: str, hour: str) -> str:
    return f"{metric}|{variant}|{hour}"


@dataclass(frozen=True, slots=True)
class VariantTotals:
    """Everything counted for one variant over the whole experiment."""

    variant: str
    visitors: dict[str, int] = field(default_factory=dict)
    """Metric -> distinct visitors (exposure, click, add_to_cart, purchase)."""
    events: dict[str, int] = field(default_factory=dict)
    """Metric -> events."""
    value_cents: int = 0


class EventCounters:
    """Fold and read experiment aggregates."""

    def __init__(
        self,
        redis: RedisLike,
        timeout: float = 2.0,
        max_tracked_visitors: int = MAX_TRACKED_VISITORS,
        retention_s: int = RETENTION_S,
    ) -> None:
        if retention_s < DEDUPE_TTL_S:
            raise ValueError(f"retention_s must be at least {DEDUPE_TTL_S}, got {retention_s}")
        self.redis = redis
        self.timeout = timeout
        self.max_tracked_visitors = max_tracked_visitors
        self.retention_s = retention_s
        self._fold = redis.register_script(_FOLD)

    async def fold(self, events: Sequence[ExperimentEvent]) -> int:
        """Count each event once; returns how many were new (the rest were duplicates)."""
        if not events:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:  # reset even on failure
            return await self._fold_in(pipe, events)

    async def _fold_in(self, pipe: Any, events: Sequence[ExperimentEvent]) -> int:
        for e in events:
            hour, start = hour_of(e.at)
            value = "" if e.value_cents is None else str(e.value_cents)
            covariate = "" if e.pre_activity is None else str(e.pre_activity)
            await queue_script(
                self._fold,
                pipe,
                [
                    keys.experiment_event_ids_key(e.experiment, hour),
                    keys.experiment_counts_key(e.experiment),
                    keys.experiment_visitors_key(e.experiment, e.type, e.variant, hour),
                    keys.experiment_hours_key(e.experiment),
                    keys.experiment_visitor_state_key(e.experiment),
                    keys.experiment_moments_key(e.experiment),
                ],
                [
                    e.id, DEDUPE_TTL_S, count_field(e.type, e.variant, hour), e.visitor,
                    hour, start, value, count_field(VALUE_METRIC, e.variant, hour),
                    visitor_digest(e.experiment, e.visitor), hour[:8], covariate,
                    VISITOR_STATE_TTL_S, MOMENTS_TTL_S, self.max_tracked_visitors, e.type,
                    e.variant,
                    self.retention_s,
                ],
            )  # fmt: skip
        results: list[Any] = await bounded(pipe.execute(), max(self.timeout, 5.0), "fold events")
        return sum(int(r) for r in results)

    async def moments(self, experiment: str) -> MomentTable:
        """The per-variant, per-day sums behind the statistics."""
        raw = await bounded(
            self.redis.hgetall(keys.experiment_moments_key(experiment)),
            self.timeout,
            "read moments",
        )
        return MomentTable.parse({as_text(k): as_text(v) for k, v in raw.items()})

    async def hours(self, experiment: str) -> list[tuple[str, int]]:
        """Every hour with data, oldest first: (``YYYYMMDDHH``, start)."""
        rows: list[Any] = await bounded(
            self.redis.zrange(keys.experiment_hours_key(experiment), 0, -1, withscores=True),
            self.timeout,
            "read hours",
        )
        return sorted((as_text(h), int(score)) for h, score in rows)

    async def totals(
        self, experiment: str, variants: Sequence[str], metrics: Sequence[str]
    ) -> dict[str, VariantTotals]:
        hours = [h for h, _ in await self.hours(experiment)]
        raw = await bounded(
            self.redis.hgetall(keys.experiment_counts_key(experiment)), self.timeout, "read counts"
        )
        counts = {as_text(k): int(v) for k, v in raw.items()}
        visitors = await self._union_counts(
            experiment, [(m, v, hours) for v in variants for m in metrics]
        )
        out: dict[str, VariantTotals] = {}
        for v in variants:
            events = {m: sum(counts.get(count_field(m, v, h), 0) for h in hours) for m in metrics}
            value = sum(counts.get(count_field(VALUE_METRIC, v, h), 0) for h in hours)
            uniques = {m: visitors[(m, v, len(hours))] for m in metrics}
            out[v] = VariantTotals(v, uniques, events, value)
        return out

    async def series(
        self, experiment: str, variants: Sequence[str], metric: str, by_day: bool = True
    ) -> dict[str, list[SeriesPoint]]:
        """Distinct exposed and converted visitors per bucket and cumulatively, per variant."""
        hours = [h for h, _ in await self.hours(experiment)]
        buckets: dict[str, list[str]] = {}
        for h in hours:
            buckets.setdefault(h[:8] if by_day else h, []).append(h)
        names = list(buckets)
        upto: list[list[str]] = []
        seen: list[str] = []
        for name in names:
            seen = seen + buckets[name]
            upto.append(seen)
        requests: list[tuple[str, str, list[str]]] = []
        for v in variants:
            for i, name in enumerate(names):
                for m in ("exposure", metric):
                    requests += [(m, v, buckets[name]), (m, v, upto[i])]
        counted = await self._pfcounts(experiment, requests)
        out: dict[str, list[SeriesPoint]] = {v: [] for v in variants}
        it = iter(counted)
        for v in variants:
            for name in names:
                exposed, exposed_upto, converted, converted_upto = (next(it) for _ in range(4))
                out[v].append(SeriesPoint(name, exposed, converted, exposed_upto, converted_upto))
        return out

    async def _union_counts(
        self, experiment: str, requests: Iterable[tuple[str, str, list[str]]]
    ) -> dict[tuple[str, str, int], int]:
        listed = list(requests)
        counted = await self._pfcounts(experiment, listed)
        return {(m, v, len(hours)): n for (m, v, hours), n in zip(listed, counted, strict=True)}

    async def _pfcounts(
        self, experiment: str, requests: Sequence[tuple[str, str, list[str]]]
    ) -> list[int]:
        """PFCOUNT (union) of each (metric, variant, hours) request, in one pipeline."""
        async with self.redis.pipeline(transaction=False) as pipe:  # reset even on failure
            return await self._pfcounts_in(pipe, experiment, requests)

    async def _pfcounts_in(
        self, pipe: Any, experiment: str, requests: Sequence[tuple[str, str, list[str]]]
    ) -> list[int]:
        for metric, variant, hours in requests:
            if hours:
                # By name: redis-py blocks `pfcount` in cluster pipelines (it cannot know the
                # keys share a slot); these all carry the experiment's hash tag, so they do.
                pipe.execute_command(
                    "PFCOUNT",
                    *(keys.experiment_visitors_key(experiment, metric, variant, h) for h in hours),
                )
        rows: list[Any] = await bounded(pipe.execute(), max(self.timeout, 5.0), "count visitors")
        counted = iter(rows)
        return [int(next(counted)) if hours else 0 for _metric, _variant, hours in requests]
