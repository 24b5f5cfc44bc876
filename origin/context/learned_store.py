"""Learned item-to-item lists in RedisLike: one ZSET per anchor (`keys.learned_list_key`), top K.

`add` sums a window's co-views per (anchor, other) pair in Python (`origin.context.learned.
aggregate`), then applies them with one script call per group of anchors: on one node a group is
up to `MAX_ANCHORS_PER_CALL` anchors, on a Redis Cluster the anchors of one hash slot (a script
touches one slot only); every call of the window goes in one pipeline. For each anchor the
script adds its pairs (ZINCRBY for members it has, one ZADD for the new ones), trims to the top
`TOP_K` and reports whether the top-K membership changed (it did unless the members trimmed are
exactly the members this call added). Anchored bundles read the list when the edge next asks
for them (`origin.core.anchored_bundles`), so a changed list is rebuilt within the slot's
max-age. The profile write and these increments are separate transactions: a crash between them
can lose (never double) one batch's co-views.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from origin.context.learned import TOP_K, CoView, Increments, aggregate
from origin.core import keys
from origin.core.lists import RankedItem
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.core.redis_text import as_text

MAX_ANCHORS_PER_CALL = 256
"""On one node, anchors per script call: bounds how long one call holds the server."""
_ADD = """
-- KEYS: the anchors' ZSETs. ARGV: K, then per key: n, then n (member, increment) pairs.
-- Returns per key 1 if its top-K membership changed, else 0.
local k = tonumber(ARGV[1])
local out = {}
local at = 2
for n = 1, #KEYS do
  local key = KEYS[n]
  local count = tonumber(ARGV[at])
  local members = {}
  for i = at + 1, at + 2 * count, 2 do members[#members + 1] = ARGV[i] end
  local new = {}
  local fresh = 0
  for first = 1, #members, 500 do  -- in slices: Lua's stack is bounded
    local last = math.min(first + 499, #members)
    local scores = redis.call('ZMSCORE', key, unpack(members, first, last))
    local adds = {}
    for j = first, last do
      local i = at + 2 * j - 1
      if scores[j - first + 1] then
        redis.call('ZINCRBY', key, ARGV[i + 1], ARGV[i])
      else
        -- A new member's score is its increment (0 + x): one ZADD for all of them, the
        -- increment passed as the same string ZINCRBY would parse.
        new[ARGV[i]] = true
        fresh = fresh + 1
        adds[#adds + 1] = ARGV[i + 1]
        adds[#adds + 1] = ARGV[i]
      end
    end
    if #adds > 0 then redis.call('ZADD', key, unpack(adds)) end
  end
  at = at + 1 + 2 * count
  -- The top K after = (before + new members) - popped, so it moved unless popped = new.
  local over = redis.call('ZCARD', key) - k
  local moved = 0
  if over > 0 then
    local popped = redis.call('ZPOPMIN', key, over)
    if over ~= fresh then moved = 1 end
    for j = 1, #popped, 2 do if not new[popped[j]] then moved = 1 end end
  elseif fresh > 0 then
    moved = 1
  end
  out[n] = moved
end
return out
"""


class LearnedLists:
    """Co-view top-K lists per anchor."""

    def __init__(self, redis: RedisLike, timeout: float = 2.0, top_k: int = TOP_K) -> None:
        self.redis = redis
        self.timeout = timeout
        self.top_k = top_k
        self._add = redis.register_script(_ADD)
        self._cluster = isinstance(redis, RedisCluster)

    async def add(self, coviews: Sequence[CoView]) -> list[str]:
        """Apply co-views; the anchors whose top-K membership changed."""
        return await self.add_increments(aggregate(coviews))

    async def add_increments(self, increments: Increments) -> list[str]:
        """Apply summed co-views (`origin.context.learned.aggregate`); the anchors whose top-K
        membership changed."""
        if not increments:
            return []
        groups = anchor_groups(sorted(increments), self._cluster)
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:
                args: list[Any] = [self.top_k]
                for anchor in group:
                    row = increments[anchor]
                    args.append(len(row))
                    for other, weight in row.items():
                        args += [other, repr(weight)]
                group_keys = [keys.learned_list_key(anchor) for anchor in group]
                await queue_script(self._add, pipe, group_keys, args)
            moved = await bounded(pipe.execute(), self.timeout, "learn co-views")
        return [
            anchor
            for group, flags in zip(groups, moved, strict=True)
            for anchor, did in zip(group, flags, strict=True)
            if int(did)
        ]

    async def top(self, anchor: str) -> list[RankedItem]:
        """The anchor's learned list, best first."""
        rows: list[Any] = await bounded(
            self.redis.zrevrange(keys.learned_list_key(anchor), 0, self.top_k - 1, withscores=True),
            self.timeout,
            "read learned list",
        )
        return [RankedItem(as_text(sku), float(score)) for sku, score in rows]


def anchor_groups(anchors: Sequence[str], cluster: bool) -> list[list[str]]:
    """The anchors in script-call groups: on a cluster, one group per hash slot of their lists'
    keys; on one node, runs of at most `MAX_ANCHORS_PER_CALL` (in the given order)."""
    if not cluster:
        return [
            list(anchors[i : i + MAX_ANCHORS_PER_CALL])
            for i in range(0, len(anchors), MAX_ANCHORS_PER_CALL)
        ]
    by_slot: dict[int, list[str]] = defaultdict(list)
    for anchor in anchors:
        by_slot[key_slot(keys.learned_list_key(anchor).encode())].append(anchor)
    return [by_slot[slot] for slot in sorted(by_slot)]
