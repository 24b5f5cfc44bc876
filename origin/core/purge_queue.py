"""The durable purge queues in Redis, whole: enqueue, peek the most urgent tags, acknowledge what
was purged, park what the API refuses, and list and re-drive what was parked.

One ZSET per (partition, purger) holds the tags awaiting purge, scored by urgency
(`PURGE_PRIORITY_SPAN`), and a HASH beside it counts each tag's generation. The priority also
says how the tag is purged (`PurgeMode`): 0 (a sell-out) and 1 (a price or stock change, or a
reconciliation) evict; 2 (other content: rank order, a SKU newly entering a bundle, lists) marks
entries stale so the edge keeps serving them while it revalidates with their ETag. A tag queued
both ways keeps the lower priority, so a hard request always wins over a soft one. Enqueuing is
a Lua function (`ENQUEUE_PURGES_LUA`) that the store's bundle-write script embeds, so a stored
change always has its purge obligation recorded in the same atomic call; `enqueue_purge` runs it
alone. A tag is removed only if its generation did not move while its purge was in flight, so a
change stored after the purge request was sent is purged again, never lost.

A tag the purger's API refuses on its own (`PurgeRejected` for a one-tag request) is parked: its
record is written to the purger's parked HASH first, then the tag leaves its partition queue
(two slots, so two steps; a crash between them leaves it both parked and queued, and it is
refused and parked again: never lost). `redrive` puts parked tags back into their queue with
their original priority, through the same enqueue script, then forgets the record.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio.cluster import RedisCluster

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag, key_of_bundle_tag
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.core.redis_text import as_text
from origin.errors import CannotRedrive

PURGE_PRIORITY_SPAN = 10**13
"""Priority multiplier in purge queue scores: priority 0 (sell-outs) sorts before 1; the rest of
the score is the millisecond timestamp of the oldest change the purge covers."""

PRIORITY_SELL_OUT = 0
"""A bundle showing a SKU that sold out: evicted, before anything else."""
PRIORITY_HARD = 1
"""A bundle showing a SKU whose price or stock state changed: evicted (never served stale)."""
PRIORITY_SOFT = 2
"""Any other content change (rank order, a SKU entering, a list): marked stale, revalidated."""


class PurgeMode(enum.Enum):
    """How a cache drops a tag's entries."""

    HARD = "hard"
    """Evict: the next request is a miss."""
    SOFT = "soft"
    """Mark stale: served while the cache revalidates it (If-None-Match with its ETag)."""


def mode_of(priority: int) -> PurgeMode:
    """How a tag queued with `priority` is purged."""
    return PurgeMode.SOFT if priority >= PRIORITY_SOFT else PurgeMode.HARD


def priority_of(score: float) -> int:
    """The priority a queue score encodes (0: sell-out)."""
    return int(score // PURGE_PRIORITY_SPAN)


def since_ms_of(score: float) -> int:
    """The millisecond timestamp of the oldest change a queue score covers."""
    return int(score % PURGE_PRIORITY_SPAN)


ENQUEUE_PURGES_LUA = """
local function enqueue_purges(first_key, tag, priority, at_ms)
  for i = first_key, #KEYS, 2 do
    local p, at = priority, at_ms
    local existing = redis.call('ZSCORE', KEYS[i], tag)
    if existing then
      local old = tonumber(existing)
      local old_p = math.floor(old / PURGE_PRIORITY_SPAN)
      p = math.min(p, old_p)
      at = math.min(at, old - old_p * PURGE_PRIORITY_SPAN)
    end
    local score = p * PURGE_PRIORITY_SPAN + at
    if (not existing) or score ~= tonumber(existing) then
      redis.call('ZADD', KEYS[i], score, tag)
    end
    redis.call('HINCRBY', KEYS[i + 1], tag, 1)
  end
end
""".replace("PURGE_PRIORITY_SPAN", str(PURGE_PRIORITY_SPAN))
"""Lua: ``enqueue_purges(first_key, tag, priority, at_ms)`` adds `tag` to the queues named by
KEYS[first_key..] (queue, generation pairs: `PurgeRequest.queue_keys`), keeping the lower
priority (hard wins over soft) and the older change time of the two, and bumping the tag's
generation."""

_ENQUEUE_ONLY = (
    ENQUEUE_PURGES_LUA
    + """
enqueue_purges(1, ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"""
)


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    """Which purgers must purge a changed bundle, how urgently, and since when."""

    purgers: tuple[str, ...]
    priority: int = PRIORITY_HARD
    """`PRIORITY_SELL_OUT` (purged first), `PRIORITY_HARD` or `PRIORITY_SOFT` (`mode_of`)."""
    at_ms: int = 0
    """Milliseconds timestamp of the oldest change this purge covers (latency metric)."""

    def queue_keys(self, partition: str) -> list[str]:
        out: list[str] = []
        for purger in self.purgers:
            out += [
                keys.purge_queue_key(partition, purger),
                keys.purge_generation_key(partition, purger),
            ]
        return out


async def enqueue_purge(
    redis: RedisLike, key: FragmentKey, purge: PurgeRequest, within_s: float
) -> None:
    """Enqueue a bundle's tag for each of `purge`'s purgers, without touching the bundle."""
    if not purge.purgers:
        return
    queue_keys = purge.queue_keys(key.partition)
    script = redis.register_script(_ENQUEUE_ONLY)  # EVALSHA, loaded on first use
    await bounded(
        script(keys=queue_keys, args=[bundle_tag(key), str(purge.priority), str(purge.at_ms)]),
        within_s,
        "enqueue purge",
    )


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


_HEAD = """
-- KEYS: each partition's queue (ZSET) and generations (HASH), in pairs; ARGV[1]: a limit.
-- Returns {tags queued in all, then for each of the first `limit` tags of every queue: the
-- 1-based index of its partition, the tag, its score, its generation (nil: none)}.
local limit, depth, out = tonumber(ARGV[1]), 0, {0}
for i = 1, #KEYS, 2 do
  local rows = redis.call('ZRANGE', KEYS[i], 0, limit - 1, 'WITHSCORES')
  if #rows / 2 < limit then depth = depth + #rows / 2
  else depth = depth + redis.call('ZCARD', KEYS[i]) end
  for j = 1, #rows, 2 do
    local gen = redis.call('HGET', KEYS[i + 1], rows[j])
    out[#out + 1] = (i + 1) / 2
    out[#out + 1] = rows[j]
    out[#out + 1] = rows[j + 1]
    out[#out + 1] = gen
  end
end
out[1] = depth
return out
"""
"""One node only (its keys span the partitions' hash slots): `PurgeQueue.head` in one call and
one small reply, where a pipeline costs a reply per partition and a round trip more."""


@dataclass(frozen=True, slots=True)
class PendingPurge:
    """One tag waiting to be purged."""

    partition: str
    tag: str
    score: float
    generation: str

    @property
    def priority(self) -> int:
        return priority_of(self.score)

    @property
    def since_ms(self) -> int:
        """Timestamp of the oldest change this purge covers."""
        return since_ms_of(self.score)

    @property
    def mode(self) -> PurgeMode:
        return mode_of(self.priority)


@dataclass(frozen=True, slots=True)
class QueueHead:
    """The most urgent pending tags of a queue, and how many it holds in all."""

    pending: list[PendingPurge]
    depth: int


class PurgeQueue:
    """The queues of one purger over a set of partitions."""

    def __init__(
        self, redis: RedisLike, purger: str, partitions: Sequence[str], timeout: float = 5.0
    ) -> None:
        self.redis = redis
        self.purger = purger
        self.partitions = tuple(partitions)
        self.timeout = timeout
        self._ack = redis.register_script(_ACK)
        self._head = redis.register_script(_HEAD)

    async def peek(self, limit: int) -> list[PendingPurge]:
        """The `limit` most urgent pending tags (sell-outs first, then oldest)."""
        return (await self.head(limit)).pending

    async def head(self, limit: int) -> QueueHead:
        """The `limit` most urgent pending tags and how many are queued in all: one script
        call on one node; on a Redis Cluster, where the partitions' queues live in many hash
        slots, pipelines."""
        if isinstance(self.redis, RedisCluster):
            return QueueHead(await self._peek_pipelined(limit), await self.depth())
        keys_ = [
            key
            for partition in self.partitions
            for key in (
                keys.purge_queue_key(partition, self.purger),
                keys.purge_generation_key(partition, self.purger),
            )
        ]
        reply: list[Any] = await bounded(
            self._head(keys=keys_, args=[limit]), self.timeout, "peek purge queues"
        )
        found = [
            (float(reply[i + 2]), self.partitions[int(reply[i]) - 1], as_text(reply[i + 1]),
             reply[i + 3])
            for i in range(1, len(reply), 4)
        ]  # fmt: skip
        found.sort(key=lambda row: row[:3])
        return QueueHead(
            [
                PendingPurge(partition, tag, score, as_text(gen) if gen is not None else "")
                for score, partition, tag, gen in found[:limit]
            ],
            int(reply[0]),
        )

    async def _peek_pipelined(self, limit: int) -> list[PendingPurge]:
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
        """Remove purged tags unless they were re-enqueued meanwhile; return how many (one
        script call per partition, all in one pipeline)."""
        by_partition: dict[str, list[str]] = {}
        for item in purged:
            by_partition.setdefault(item.partition, []).extend((item.tag, item.generation))
        if not by_partition:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition, args in by_partition.items():
                await queue_script(
                    self._ack,
                    pipe,
                    [
                        keys.purge_queue_key(partition, self.purger),
                        keys.purge_generation_key(partition, self.purger),
                    ],
                    args,
                )
            removed: list[Any] = await bounded(pipe.execute(), self.timeout, "ack purges")
        return sum(int(n) for n in removed)

    async def depth(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for partition in self.partitions:
            pipe.zcard(keys.purge_queue_key(partition, self.purger))
        counts: list[Any] = await bounded(pipe.execute(), self.timeout, "purge queue depth")
        return sum(int(c) for c in counts)


class ParkedPurge(msgspec.Struct, frozen=True):
    """A tag `purger`'s API refused on its own, set aside where an operator sees it."""

    tag: str
    partition: str
    score: float
    """Its queue score when parked (priority and the time of the oldest change it covers)."""
    reason: str
    """Low-cardinality label, as on the parked-purges metric (``http_400``)."""
    status: int | None
    detail: str
    """What the API answered (truncated)."""
    parked_at_ms: int

    @property
    def priority(self) -> int:
        return priority_of(self.score)

    @property
    def since_ms(self) -> int:
        return since_ms_of(self.score)


_PARKED_DECODER = msgspec.json.Decoder(ParkedPurge)


async def park(
    redis: RedisLike, purger: str, parked: Sequence[ParkedPurge], within: float = 5.0
) -> None:
    """Record `parked` in the purger's parked HASH, then take them out of their queues."""
    if not parked:
        return
    mapping = {p.tag: msgspec.json.encode(p) for p in parked}
    await bounded(
        redis.hset(keys.purge_parked_key(purger), mapping=mapping),  # type: ignore[arg-type]
        within,
        "park purges",
    )
    by_partition: dict[str, list[str]] = {}
    for p in parked:
        by_partition.setdefault(p.partition, []).append(p.tag)
    pipe = redis.pipeline(transaction=False)
    for partition, tags in by_partition.items():
        pipe.zrem(keys.purge_queue_key(partition, purger), *tags)
        pipe.hdel(keys.purge_generation_key(partition, purger), *tags)
    await bounded(pipe.execute(), within, "unqueue parked purges")


async def parked_purges(redis: RedisLike, purger: str, within: float = 5.0) -> list[ParkedPurge]:
    """Every purge parked for `purger`, oldest first."""
    raw: dict[Any, Any] = await bounded(
        redis.hgetall(keys.purge_parked_key(purger)),
        within,
        "list parked purges",
    )
    records = [_PARKED_DECODER.decode(value) for value in raw.values()]
    return sorted(records, key=lambda p: (p.parked_at_ms, p.tag))


async def redrive(
    redis: RedisLike, purger: str, tags: Sequence[str] | None = None, within: float = 5.0
) -> list[ParkedPurge]:
    """Put parked purges back into their queues (all of them, or the named `tags`) with their
    original priority; return what was re-driven.

    Each tag is re-enqueued first (which bumps its generation, as a fresh change would) and only
    then forgotten, so a crash between the two leaves it queued and still listed, never lost.
    """
    records = await parked_purges(redis, purger, within)
    if tags is not None:
        by_tag = {p.tag: p for p in records}
        missing = [t for t in tags if t not in by_tag]
        if missing:
            raise CannotRedrive(f"not parked for purger {purger!r}: {', '.join(missing)}")
        records = [by_tag[t] for t in dict.fromkeys(tags)]
    for record in records:
        key = key_of_bundle_tag(record.tag)
        if key is None:
            raise CannotRedrive(
                f"parked tag {record.tag!r} of purger {purger!r} is not a bundle tag: only bundle"
                " tags are queued, so it cannot be re-driven (delete it from"
                f" {keys.purge_parked_key(purger)} by hand)"
            )
        request = PurgeRequest((purger,), priority=record.priority, at_ms=record.since_ms)
        await enqueue_purge(redis, key, request, within)
        await bounded(
            redis.hdel(keys.purge_parked_key(purger), record.tag),
            within,
            "forget re-driven purge",
        )
    return records
