"""``shelfedge purges parked|redrive`` against the real Redis: what an operator runs."""

from __future__ import annotations

import asyncio

import pytest

from fragments.tags import bundle_tag
from origin.core.purge_queue import ParkedPurge, PurgeQueue, PurgeRequest, park, parked_purges
from shelfedge.cli import main
from tests.invalidation.support import World

PURGER = "cloudflare"


async def park_one(world: World) -> ParkedPurge:
    """Enqueue a sell-out purge for one bundle and park it as a worker would."""
    key = min(world.recomputer.all_keys(), key=bundle_tag)
    await world.store.enqueue_purge(key, PurgeRequest((PURGER,), priority=0, at_ms=1234))
    [pending] = await PurgeQueue(world.redis, PURGER, [key.partition]).peek(10)
    record = ParkedPurge(
        tag=pending.tag,
        partition=pending.partition,
        score=pending.score,
        reason="http_400",
        status=400,
        detail='HTTP 400: {"message":\n "cannot purge tag"}',
        parked_at_ms=0,
    )
    await park(world.redis, PURGER, [record])
    assert await world.queued_tags(PURGER) == {}
    return record


async def shelfedge(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_an_operator_lists_and_redrives_parked_purges(
    world: World,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    record = await park_one(world)

    assert await shelfedge("purges", "parked", "--purger", PURGER) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{PURGER}\t{record.tag}\thttp_400\t1970-01-01T00:00:00Z\tpriority=0"
        '\tHTTP 400: {"message": "cannot purge tag"}'
    ]
    assert "1 parked purges" in err

    assert await shelfedge("purges", "redrive", "--purger", PURGER, "bundle:x/y/z/en") == 1
    _, err = capsys.readouterr()
    assert "not parked for purger 'cloudflare': bundle:x/y/z/en" in err
    assert [p.tag for p in await parked_purges(world.redis, PURGER)] == [record.tag]

    assert await shelfedge("purges", "redrive", "--purger", PURGER, "--all") == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [f"re-driven\t{PURGER}\t{record.tag}"]
    assert await parked_purges(world.redis, PURGER) == []
    assert await world.queued_tags(PURGER) == {record.tag: record.score}
    assert (record.priority, record.since_ms) == (0, 1234), "its sell-out priority and age"
