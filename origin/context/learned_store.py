"""Learned item-to-item lists in RedisLike: one ZSET per anchor (`keys.learned_list_key`), top K.

`add` applies co-views with one script per anchor (one hash slot each), all of a window's
anchors in one pipeline: ZINCRBY every pair, trim
to the top `TOP_K`, and report whether the top-K membership changed. Anchored bundles read the
list when the edge next asks for them (`origin.core.anchored_bundles`), so a changed list is
rebuilt within the slot's max-age. The profile write and these increments are separate
transactions: a crash between them can lose (never double) one batch's co-views.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from origin.context.learned import TOP_K, CoView
from origin.core import keys
from origin.core.lists import RankedItem
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.core.redis_text import as_text

_ADD = """
-- KEYS[1] the anchor's ZSET. ARGV: K, then (member, increment) pairs.
local before = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for i = 2, #ARGV, 2 do redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[1]) + 1))
local after = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #before ~= #after then return 1 end
local seen = {}
for _, m in ipairs(before) do seen[m] = true end
for _, m in ipairs(after) do if not seen[m] then return 1 end end
return 0
"""


class LearnedLists:
    """Co-view top-K lists per anchor."""

    def __init__(self, redis: RedisLike, timeout: float = 2.0, top_k: int = TOP_K) -> None:
        self.redis = redis
        self.timeout = timeout
        self.top_k = top_k
        self._add = redis.register_script(_ADD)

    async def add(self, coviews: Sequence[CoView]) -> list[str]:
        """Apply co-views; the anchors whose top-K membership changed."""
        by_anchor: dict[str, dict[str, float]] = defaultdict(dict)
        for c in coviews:
            by_anchor[c.anchor][c.other] = by_anchor[c.anchor].get(c.other, 0.0) + c.weight
        anchors = sorted(by_anchor)
        if not anchors:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for anchor in anchors:
                args: list[Any] = [self.top_k]
                for other, weight in sorted(by_anchor[anchor].items()):
                    args += [other, repr(weight)]
                await queue_script(self._add, pipe, [keys.learned_list_key(anchor)], args)
            moved = await bounded(pipe.execute(), self.timeout, "learn co-views")
        return [anchor for anchor, did in zip(anchors, moved, strict=True) if int(did)]

    async def top(self, anchor: str) -> list[RankedItem]:
        """The anchor's learned list, best first."""
        rows: list[Any] = await bounded(
            self.redis.zrevrange(keys.learned_list_key(anchor), 0, self.top_k - 1, withscores=True),
            self.timeout,
            "read learned list",
        )
        return [RankedItem(as_text(sku), float(score)) for sku, score in rows]
