"""`PurgeQueue.head` and `ack` on real Redis, one node (one script call) and a cluster
(pipelines): the most urgent tags across partitions in one order (sell-outs first, then the
oldest change, then partition and tag), each with its generation, and the depth of all queues."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from origin.core import keys
from origin.core.purge_queue import (
    PRIORITY_HARD,
    PRIORITY_SELL_OUT,
    PRIORITY_SOFT,
    PurgeQueue,
    PurgeRequest,
    enqueue_purge,
)

PURGER = "cdn"
SEGMENTS = ("a", "b", "c")
PARTITIONS = [f"home-hero/{s}" for s in SEGMENTS]


def key(segment: str, n: int) -> FragmentKey:
    return FragmentKey("home-hero", segment, f"v{n:02d}", "en-US")


# (segment, variant number, priority, at_ms): ties in score across partitions and within one.
ENQUEUED = [
    ("a", 1, PRIORITY_SOFT, 1_000),
    ("a", 2, PRIORITY_HARD, 5_000),
    ("a", 3, PRIORITY_HARD, 2_000),
    ("b", 1, PRIORITY_SELL_OUT, 9_000),
    ("b", 2, PRIORITY_HARD, 2_000),
    ("b", 3, PRIORITY_SOFT, 1_000),
    ("c", 1, PRIORITY_HARD, 2_000),
    ("c", 2, PRIORITY_SELL_OUT, 9_500),
    *(("c", n, PRIORITY_SOFT, 3_000 + n) for n in range(10, 22)),
]


async def filled(redis: Redis) -> PurgeQueue:
    for segment, n, priority, at_ms in ENQUEUED:
        await enqueue_purge(redis, key(segment, n), PurgeRequest((PURGER,), priority, at_ms), 5.0)
    # Enqueued again: the generation counts up (an ack of the first hand-out must not drop it).
    await enqueue_purge(redis, key("b", 2), PurgeRequest((PURGER,), PRIORITY_HARD, 2_000), 5.0)
    return PurgeQueue(redis, PURGER, PARTITIONS)


@pytest.mark.parametrize("limit", [1, 3, 5, 8, 30])
async def test_the_head_is_the_most_urgent_tags_of_all_partitions(
    redis_client: Redis, limit: int
) -> None:
    queue = await filled(redis_client)
    scores: dict[tuple[str, str], float] = {}
    for partition in PARTITIONS:
        rows: list[Any] = await redis_client.zrange(
            keys.purge_queue_key(partition, PURGER), 0, -1, withscores=True
        )
        scores.update({(partition, tag.decode()): score for tag, score in rows})
    assert len(scores) == len(ENQUEUED), "the queues are where this test reads them"
    want = sorted((score, partition, tag) for (partition, tag), score in scores.items())[:limit]
    head = await queue.head(limit)
    assert [(p.score, p.partition, p.tag) for p in head.pending] == want
    assert head.depth == len(ENQUEUED) == await queue.depth()
    assert [p.tag for p in await queue.peek(limit)] == [tag for _, _, tag in want]
    generations = {p.tag: p.generation for p in head.pending}
    assert set(generations.values()) <= {"1", "2"}
    if bundle_tag(key("b", 2)) in generations:
        assert generations[bundle_tag(key("b", 2))] == "2"
    first = head.pending[0]
    assert first.tag in {bundle_tag(key("b", 1)), bundle_tag(key("c", 2))}, "sell-outs first"


async def test_ack_removes_what_was_handed_out_unless_enqueued_again(redis_client: Redis) -> None:
    queue = await filled(redis_client)
    head = await queue.head(100)
    assert len(head.pending) == len(ENQUEUED)
    again = key("a", 1)
    await enqueue_purge(redis_client, again, PurgeRequest((PURGER,), PRIORITY_SOFT, 1_000), 5.0)
    assert await queue.ack(head.pending) == len(ENQUEUED) - 1
    after = await queue.head(100)
    assert [p.tag for p in after.pending] == [bundle_tag(again)]
    assert after.depth == 1
    assert await queue.ack([]) == 0
    assert await queue.ack(after.pending) == 1
    assert (await queue.head(10)).depth == 0 == len((await queue.head(10)).pending)
