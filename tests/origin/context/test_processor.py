"""The context processor through a real broker: clickstream.v1 -> consumer group -> profiles and
segments in Redis; duplicates, garbage, no-consent events and a full redelivery change nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from fragments import topics
from fragments.clickstream import ClickEvent
from origin.context.audiences import Membership
from origin.context.processor import ContextProcessor
from origin.context.rules import parse_rules
from origin.context.store import ContextStore
from tests.invalidation.support import TEST_SESSION_TIMEOUT_MS, eventually
from tests.origin.context.test_rules import RULES
from tests.origin.events.support import events_settings, signed
from tests.support.kafka_engines import Broker
from tests.support.origin_server import OriginServer

OUTDOOR = "a" * 32
SHY = "b" * 32


@asynccontextmanager
async def running(
    bootstrap: str, store: ContextStore, group: str
) -> AsyncIterator[ContextProcessor]:
    processor = ContextProcessor(
        bootstrap, group, store, session_timeout_ms=TEST_SESSION_TIMEOUT_MS
    )
    await processor.start()
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    try:
        yield processor
    finally:
        stop.set()
        await task
        await processor.stop()


def clicks(now: float) -> list[ClickEvent]:
    views = [
        ClickEvent(f"view-{i:04d}", "view", OUTDOOR, "s1", now - 60 * i, True, f"S{i}",
                   "outdoor", 4000)
        for i in range(3)
    ]  # fmt: skip
    shy = ClickEvent("shy-00001", "add_to_cart", SHY, "s9", now, False, "S1", None, 99_000)
    return [*views, views[0], shy]


async def produce(bootstrap: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topics.CLICKSTREAM.name, value, key=key)
    finally:
        await producer.stop()


async def test_clickstream_to_segment_and_redelivery_changes_nothing(
    redis_client: Redis, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    store = ContextStore(redis_client, ttl_seconds=600)
    await store.put_rules(parse_rules(RULES))
    events = clicks(time.time())
    records = [(e.visitor.encode(), e.to_json()) for e in events]
    await produce(bootstrap, [*records[:2], (b"x", b"not json"), *records[2:]])

    async with running(bootstrap, store, "test-context") as processor:

        async def decided() -> bool:
            got = await store.assignment(OUTDOOR)
            return got is not None and got.segment == "outdoor-fans"

        await eventually(decided, within=30, what="the outdoor visitor's segment")
        await eventually(
            lambda: _true(processor.stats.records == 6), within=10, what="every record read"
        )
        assert processor.stats.undecodable == 1
        assert processor.stats.without_consent == 1
    assignment = await store.assignment(OUTDOOR)
    assert assignment is not None
    assert assignment.explanation == "matched rule 1 (outdoor-browsers)"
    profile = await store.profile(OUTDOOR)
    assert profile is not None
    assert len(profile.views) == 3
    assert await store.profile(SHY) is None

    # Replay the whole topic (a new group): the profile is unchanged.
    async with running(bootstrap, store, "test-context-replay") as replay:
        await eventually(
            lambda: _true(replay.stats.records == 6), within=30, what="the replay read everything"
        )
    again = await store.profile(OUTDOOR)
    assert again == replace(profile)


async def _true(value: bool) -> bool:
    return value


async def test_beacons_through_the_origin_reach_the_segment(
    redis_client: Redis, redis_url: str, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    store = ContextStore(redis_client, ttl_seconds=600)
    await store.put_rules(parse_rules(RULES))
    events = clicks(time.time())
    body = {"events": [e.to_wire() for e in events]}
    with OriginServer.for_origin(events_settings(redis_url, bootstrap)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as api:
            unsigned = await api.post("/v1/clickstream", json=body)
            assert unsigned.status_code == 401  # only an edge's signed batches get in
            bad = await api.post("/v1/clickstream", **signed({"events": [{"type": "view"}]}))
            assert bad.status_code == 400
            assert bad.json()["invalid_params"][0]["name"].startswith("events[0].")

            async def posted() -> bool:
                r = await api.post("/v1/clickstream", **signed(body))
                if r.status_code == 503:
                    return False
                assert r.status_code == 202, r.text
                assert r.json() == {"accepted": 4, "dropped_without_consent": 1}
                return True

            await eventually(posted, within=20, what="the origin produced the clickstream")
    async with running(bootstrap, store, "test-context-beacons") as processor:

        async def decided() -> bool:
            got = await store.assignment(OUTDOOR)
            return got is not None and got.segment == "outdoor-fans"

        await eventually(decided, within=30, what="the segment from the beacons")
        assert processor.stats.without_consent == 0
    assert await store.profile(SHY) is None


async def test_a_cdp_audience_ranked_first_wins_over_behaviour_until_the_visitor_exits(
    redis_client: Redis, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    store = ContextStore(redis_client, ttl_seconds=600)
    vip = {
        "name": "vip",
        "segment": "vip-shoppers",
        "when": [{"feature": "audience:spring_vip", "op": "eq", "value": True}],
    }
    await store.put_rules(parse_rules({**RULES, "rules": [vip, *RULES["rules"]]}))
    now = time.time()
    joined = [Membership(OUTDOOR, "spring_vip", True, now - 600)]
    await store.apply_memberships(OUTDOOR, joined, await store.current_rules())
    views = [e for e in clicks(now) if e.visitor == OUTDOOR]
    await produce(bootstrap, [(e.visitor.encode(), e.to_json()) for e in views])

    async with running(bootstrap, store, "test-context-audience") as processor:
        await eventually(
            lambda: _true(processor.stats.folded == len(views)), within=30, what="the views folded"
        )
    folded = await store.assignment(OUTDOOR)
    assert folded is not None
    assert folded.explanation == "matched rule 1 (vip)"  # the audience outranks the views
    profile = await store.profile(OUTDOOR)
    assert profile is not None
    assert len(profile.views) == 3

    left = [Membership(OUTDOOR, "spring_vip", False, now)]
    after = await store.apply_memberships(OUTDOOR, left, await store.current_rules())
    assert after.explanation == "matched rule 2 (outdoor-browsers)"
