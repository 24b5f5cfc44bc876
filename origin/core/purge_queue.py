"""The durable purge queues in Redis: peek the most urgent tags, acknowledge what was purged.

Tags are enqueued by the bundle-write Lua script (origin.core.store) into one ZSET per (partition,
purger). A tag is removed only if its generation did not move while its purge was in flight, so
a change stored after the purge request was sent is purged again, never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from origin.core import keys
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text

_ACK = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""


@dataclass(frozen=True, slots=True)
class PendingPurge:
    """One tag waiting to be purged."""

    partition: str
    tag: str
    score: float
    generation: str

    @property
    def priority(self) -> int:
        return int(self.score // keys.PURGE_PRIORITY_SPAN)

    @property
    def since_ms(self) -> int:
        """Timestamp of the oldest change this purge covers."""
        return int(self.score % keys.PURGE_PRIORITY_SPAN)


class PurgeQueue:
    """The queues of one purger over a set of partitions."""

    def __init__(
        self, redis: Redis, purger: str, partitions: Sequence[str], timeout: float = 5.0
    ) -> None:
        self.redis = redis
        self.purger = purger
        self.partitions = tuple(partitions)
        self.timeout = timeout
        self._ack = redis.register_script(_ACK)

    async def peek(self, limit: int) -> list[PendingPurge]:
        """The `limit` most urgent pending tags (sell-outs first, then oldest)."""
        pipe = self.redis.pipeline(transaction=False)
        for partition in self.partitions:
            pipe.zrange(keys.purge_queue_key(partition, self.purger), 0, limit - 1, withscores=True)
        rows: list[Any] = await bounded(pipe.execute(), self.timeout, "peek purge queues")
        candidates = [
            (float(score), partition, as_text(tag))
            for partition, members in zip(self.partitions, rows, strict=True)
            for tag, score in members
        ]
        candidates.sort()
        chosen = candidates[:limit]
        if not chosen:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for _, partition, tag in chosen:
            pipe.hget(keys.purge_generation_key(partition, self.purger), tag)
        generations: list[Any] = await bounded(pipe.execute(), self.timeout, "read purge gens")
        return [
            PendingPurge(partition, tag, score, as_text(gen) if gen is not None else "")
            for (score, partition, tag), gen in zip(chosen, generations, strict=True)
        ]

    async def ack(self, purged: Sequence[PendingPurge]) -> int:
        """Remove purged tags unless they were re-enqueued meanwhile; return how many."""
        by_partition: dict[str, list[str]] = {}
        for item in purged:
            by_partition.setdefault(item.partition, []).extend((item.tag, item.generation))
        removed = 0
        for partition, args in by_partition.items():
            removed += int(
                await bounded(
                    self._ack(
                        keys=[
                            keys.purge_queue_key(partition, self.purger),
                            keys.purge_generation_key(partition, self.purger),
                        ],
                        args=args,
                    ),
                    self.timeout,
                    "ack purges",
                )
            )
        return removed

    async def depth(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for partition in self.partitions:
            pipe.zcard(keys.purge_queue_key(partition, self.purger))
        counts: list[Any] = await bounded(pipe.execute(), self.timeout, "purge queue depth")
        return sum(int(c) for c in counts)
