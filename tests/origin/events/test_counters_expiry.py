"""Every aggregate key the fold writes expires (a client or a forgotten experiment can never
hold Redis memory for ever), and the expiry moves with the last event."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from origin.core import keys
from origin.events.counters import DEDUPE_TTL_S, RETENTION_S, EventCounters
from origin.events.schema import parse_event
from tests.origin.events.support import event


async def test_every_key_of_an_experiment_expires(redis_client: Redis) -> None:
    now = time.time()
    raw = [event("exposure"), event("purchase", value_cents=500), event("click", variant="b")]
    await EventCounters(redis_client).fold([parse_event(r, now) for r in raw])

    written = [k async for k in redis_client.scan_iter(match="*{e:hero}*")]
    ttls = {k.decode(): await redis_client.ttl(k) for k in written}

    assert len(written) >= 5  # counts, hours, ids, and an HLL per (metric, variant)
    assert all(0 < ttl <= RETENTION_S for ttl in ttls.values()), ttls
    ids = [ttl for k, ttl in ttls.items() if ":ids:" in k]
    assert ids
    assert all(ttl <= DEDUPE_TTL_S for ttl in ids)


async def test_a_new_event_pushes_the_expiry_back(redis_client: Redis) -> None:
    counters = EventCounters(redis_client, retention_s=DEDUPE_TTL_S)
    now = time.time()
    await counters.fold([parse_event(event(), now)])
    key = keys.experiment_counts_key("hero")
    await redis_client.expire(key, 60)

    await counters.fold([parse_event(event(), now)])

    assert await redis_client.ttl(key) > 60
