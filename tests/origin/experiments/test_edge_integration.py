"""The local edge follows the published experiments and reports events, against the real origin.

The origin (real app, Redis, a Kafka broker for its collector) runs under uvicorn; the local
edge app runs in-process with its lifespan (`follow_experiments=True`, as `shelfedge edge` runs
it). Covered: the edge picks up a started experiment and serves the variant's bundle, keeps the
last good configuration when the origin fails, stops the experiment at once (kill switch),
honours preview links, and sends exposures and attributed conversions in background batches
(never on the response path), counting every drop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from starlette.applications import Starlette

from edge.adapters.event_batcher import EventBatcher
from edge.adapters.local_server import LocalEdge, create_edge_app
from edge.config import EdgeConfig
from fragments import topics
from fragments.slots import load_slots
from fragments.wire_events import ExperimentEvent
from origin.core.redis_client import RedisLike
from shelfedge.localstack import free_port
from tests.invalidation.support import eventually
from tests.origin.experiments.support import (
    EDITOR,
    SECRET,
    hero_experiment,
    if_match,
    origin_settings,
)
from tests.support.origin_server import OriginServer

VISITOR = "0123456789abcdef0123456789abcdef"
CONSENTED = {"cookie": f"se_vid={VISITOR}; se_consent=1"}
SLOT = "/se/slot/home-hero"
ALL_COMPACT = [
    {"id": "control", "weight": 0.0},
    {"id": "compact", "weight": 1.0, "changes": {"card_template": "card_compact.html.j2"}},
]


@pytest.fixture(scope="module")
def origin_with_kafka(redis_url: str, kafka_bootstrap: str) -> Iterator[OriginServer]:
    settings = origin_settings(redis_url, kafka_bootstrap=kafka_bootstrap, segment_secret=SECRET)
    with OriginServer.for_origin(settings) as server:
        yield server


@pytest.fixture
async def admin(
    origin_with_kafka: OriginServer, seeded: RedisLike
) -> AsyncIterator[httpx.AsyncClient]:
    if not origin_with_kafka.running:
        origin_with_kafka.start()
    async with httpx.AsyncClient(base_url=origin_with_kafka.url, timeout=30.0) as client:
        yield client


@pytest.fixture
async def edge_app(
    origin_with_kafka: OriginServer, admin: httpx.AsyncClient
) -> AsyncIterator[Starlette]:
    config = replace(EdgeConfig.from_slots(load_slots(), SECRET), debug_headers=True)
    app = create_edge_app(config, origin_with_kafka.url, follow_experiments=True)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def edge(edge_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=edge_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
        yield client


def state(app: Starlette) -> LocalEdge:
    edge: LocalEdge = app.state.edge
    return edge


async def start_all_compact(admin: httpx.AsyncClient, edge_app: Starlette) -> None:
    doc = hero_experiment(variants=ALL_COMPACT)
    assert (await admin.post("/v1/experiments", json=doc, headers=EDITOR)).status_code == 201
    assert (await admin.post("/v1/experiments/hero/start", headers=if_match(1))).status_code == 200
    assert await state(edge_app).configs.refresh() == "updated"


async def read_events(bootstrap: str, topic: str, visitor: str, n: int) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 15
        while len(found) < n and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for r in records:
                    doc = json.loads(r.value)
                    if doc["visitor"] == visitor:
                        found.append(doc)
    finally:
        await consumer.stop()
    return found


async def test_the_edge_serves_a_started_experiments_variant(
    admin: httpx.AsyncClient, edge_app: Starlette, edge: httpx.AsyncClient
) -> None:
    before = await edge.get(SLOT, headers=CONSENTED)
    await start_all_compact(admin, edge_app)
    after = await edge.get(SLOT, headers=CONSENTED)

    assert before.headers["x-shelfedge-variant"] == "control"
    assert "x-shelfedge-experiment" not in before.headers
    assert after.headers["x-shelfedge-variant"] == "compact"
    assert after.headers["x-shelfedge-experiment"] == "hero;assigned"
    assert "se-card--compact" in after.text
    assert "se_exp=hero.1.0" in after.headers["set-cookie"]


async def test_stale_config_is_served_at_once_and_refreshed_in_the_background(
    admin: httpx.AsyncClient, edge_app: Starlette, edge: httpx.AsyncClient
) -> None:
    await start_all_compact(admin, edge_app)
    refresher = state(edge_app).configs
    refresher.fetched_at -= 60  # stale
    await admin.post("/v1/experiments/hero/stop", headers=if_match(2))

    served_stale = await edge.get(SLOT, headers=CONSENTED)

    async def refreshed() -> bool:
        return refresher.config.version == 2

    await eventually(refreshed, within=5, what="the background refresh picked up version 2")
    after = await edge.get(SLOT, headers=CONSENTED)
    assert served_stale.headers["x-shelfedge-variant"] == "compact"  # not blocked on the origin
    assert after.headers["x-shelfedge-variant"] == "control"  # kill switch
    assert after.headers["x-shelfedge-experiment"] == "hero;not_running"


async def test_the_last_good_config_survives_an_origin_outage(
    admin: httpx.AsyncClient,
    edge_app: Starlette,
    edge: httpx.AsyncClient,
    origin_with_kafka: OriginServer,
) -> None:
    await start_all_compact(admin, edge_app)
    refresher = state(edge_app).configs
    origin_with_kafka.stop()
    try:
        outcome = await refresher.refresh()
        response = await edge.get(SLOT, headers=CONSENTED)
    finally:
        origin_with_kafka.start()
    metrics = (await edge.get("/se/metrics")).text

    assert outcome.startswith("failed")
    assert refresher.config.version == 1
    assert response.headers["x-shelfedge-variant"] == "compact"
    assert refresher.outcomes["failed"] == 1
    assert "shelfedge_edge_requests_total" in metrics


async def test_a_preview_link_forces_a_variant_at_the_edge(
    admin: httpx.AsyncClient, edge_app: Starlette, edge: httpx.AsyncClient
) -> None:
    await start_all_compact(admin, edge_app)
    link = (
        await admin.post("/v1/experiments/hero/preview-link?variant=control", headers=EDITOR)
    ).json()
    await state(edge_app).configs.refresh()
    query = link["url"].split("?", 1)[1]

    forced = await edge.get(f"{SLOT}?{query}", headers=CONSENTED)
    wrong = await edge.get(f"{SLOT}?sx_hero=control&sx_token=not-the-token", headers=CONSENTED)

    assert forced.headers["x-shelfedge-variant"] == "control"
    assert forced.headers["x-shelfedge-experiment"] == "hero;forced"
    assert wrong.headers["x-shelfedge-variant"] == "compact"


async def test_a_one_time_preview_link_becomes_a_cookie_at_the_edge(
    admin: httpx.AsyncClient, edge_app: Starlette, edge: httpx.AsyncClient
) -> None:
    await start_all_compact(admin, edge_app)
    link = (
        await admin.post("/v1/experiments/hero/preview-link?variant=control", headers=EDITOR)
    ).json()
    await state(edge_app).configs.refresh()
    exchange = "/se/preview?" + link["exchange_url"].split("?", 1)[1]

    first = await edge.get(exchange)
    again = await edge.get(exchange)
    cookie = first.headers["set-cookie"].split(";")[0]
    forced = await edge.get(
        f"{SLOT}?sx_hero=control", headers={"cookie": f"{CONSENTED['cookie']}; {cookie}"}
    )
    natural = await edge.get(f"{SLOT}?sx_hero=control", headers=CONSENTED)

    assert first.status_code == 303
    assert first.headers["location"] == "/?sx_hero=control"
    assert "sx_token" not in first.headers["location"]
    assert "HttpOnly" in first.headers["set-cookie"]
    assert again.status_code == 410
    assert forced.headers["x-shelfedge-variant"] == "control"
    assert natural.headers["x-shelfedge-variant"] == "compact"


async def test_exposures_and_beacons_reach_kafka_in_background_batches(
    admin: httpx.AsyncClient,
    edge_app: Starlette,
    edge: httpx.AsyncClient,
    origin_with_kafka: OriginServer,
    kafka_bootstrap: str,
) -> None:
    await start_all_compact(admin, edge_app)
    visitor = f"{time.time_ns():032x}"[-32:]
    cookies = {"cookie": f"se_vid={visitor}; se_consent=1"}
    origin_with_kafka.log.set_delay("/v1/events", 2.0)  # a slow collector
    try:
        first = await edge.get(SLOT, headers=cookies)
        sticky = first.headers["set-cookie"].split(";")[0]
        started = time.monotonic()
        slots = [
            await edge.get(SLOT, headers={"cookie": f"{cookies['cookie']}; {sticky}"})
            for _ in range(3)
        ]
        slot_seconds = time.monotonic() - started
        beacon = await edge.post(
            "/se/events",
            json={
                "events": [
                    {"type": "purchase", "value_cents": 4200},
                    {"type": "click", "slot": "home-hero", "sku": "SKU-00002"},
                ]
            },
            headers={"cookie": f"{cookies['cookie']}; {sticky}"},
        )
        anonymous = await edge.post("/se/events", json={"events": [{"type": "click"}]})
    finally:
        origin_with_kafka.log.clear_delays()

    assert slot_seconds < 1.0, "slot responses must not wait for event delivery"
    assert all(s.headers["x-shelfedge-variant"] == "compact" for s in slots)
    # the purchase is behaviour too: it also goes to the clickstream (the click does not)
    assert beacon.json() == {"queued": 2, "skipped": {}, "tracked": 1, "untracked": {}}
    assert anonymous.json()["skipped"] == {"no_consent": 1}
    exposures = await read_events(kafka_bootstrap, topics.EXPOSURES.name, visitor, 4)
    conversions = await read_events(kafka_bootstrap, topics.CONVERSIONS.name, visitor, 2)
    assert len(exposures) == 4
    assert {(e["experiment"], e["variant"], e["slot"]) for e in exposures} == {
        ("hero", "compact", "home-hero")
    }
    assert sorted(str(c["type"]) for c in conversions) == ["click", "purchase"]
    assert {(c["experiment"], c["variant"]) for c in conversions} == {("hero", "compact")}
    assert state(edge_app).events.sent >= 6


def exposure_event(event_id: str) -> ExperimentEvent:
    return ExperimentEvent(event_id, "exposure", "hero", "compact", "v" * 32, time.time())


async def test_batcher_drops_are_counted_never_silent() -> None:
    async with httpx.AsyncClient(timeout=1.0) as client:
        batcher: EventBatcher[ExperimentEvent] = EventBatcher(
            client,
            f"http://127.0.0.1:{free_port()}",
            max_batch=2,
            max_buffer=3,
            flush_interval=0.05,
        )
        accepted = [batcher.add(exposure_event(f"evt-{i:08d}")) for i in range(5)]
        await asyncio.sleep(0.3)  # the background sender fails and puts batches back
        await batcher.close()

    assert accepted == [True, True, True, False, False]
    assert batcher.sent == 0
    assert batcher.dropped["buffer_full"] == 2
    assert batcher.dropped["undeliverable"] == 3
    assert not batcher.buffer
