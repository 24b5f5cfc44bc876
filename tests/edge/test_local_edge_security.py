"""The local edge proves itself to the origin and guards its own surface: signed event
batches the origin accepts (and a wrong key it refuses), the edge-config token, the
``/se/purge`` token, and bodies read with a limit."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from edge.adapters.config_refresher import ConfigRefresher
from edge.adapters.event_batcher import EventBatcher
from edge.adapters.local_server import MAX_PROXY_BODY, EdgeCredentials, create_edge_app
from edge.config import EdgeConfig
from fragments.batch_signing import SigningKeys
from fragments.slots import load_slots
from fragments.wire_events import ExperimentEvent, validate_event
from origin.settings import Settings
from tests.origin.events.support import EVENT_KEYS, event, put_hero
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS

SECRET = "local-edge-secret-0123456789"
EDGE_TOKEN = "edge-config-token-0123456789"
PURGE_TOKEN = "purge-token-0123456789"


@pytest.fixture(scope="module")
def origin(redis_url: str, kafka_bootstrap: str) -> Iterator[OriginServer]:
    settings = Settings(
        redis_url=redis_url,
        redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS,
        kafka_bootstrap=kafka_bootstrap,
        segment_secret=SECRET,
        env="prod",
        event_keys=EVENT_KEYS,
        edge_config_token=EDGE_TOKEN,
    )
    with OriginServer.for_origin(settings) as server:
        yield server


async def test_batches_are_signed_and_a_wrong_key_is_refused(
    origin: OriginServer, redis_client: Redis
) -> None:
    await put_hero(redis_client)
    wrong = SigningKeys.parse("edge-new=not-the-origins-key-0123456789abcdef")
    async with httpx.AsyncClient() as client:
        good: EventBatcher[ExperimentEvent] = EventBatcher(client, origin.url, keys=EVENT_KEYS)
        bad: EventBatcher[ExperimentEvent] = EventBatcher(client, origin.url, keys=wrong)
        deadline = time.monotonic() + 15
        while good.sent == 0 and time.monotonic() < deadline:  # the sink connects in the bg
            good.add(validate_event(event(), time.time()))
            await good.drain()
        bad.add(validate_event(event(), time.time()))
        await bad.drain()

    assert good.sent >= 1
    assert bad.dropped["rejected"] == 1
    statuses = [r.status for r in origin.log.requests if r.path == "/v1/events"]
    assert 401 in statuses


async def test_the_config_refresher_sends_the_edge_token(origin: OriginServer) -> None:
    async with httpx.AsyncClient() as client:
        with_token = await ConfigRefresher(client, origin.url, token=EDGE_TOKEN).refresh()
        without = await ConfigRefresher(client, origin.url).refresh()

    assert with_token == "updated"
    assert without.startswith("failed")


@pytest.fixture
async def guarded_edge(origin: OriginServer) -> AsyncIterator[Starlette]:
    credentials = EdgeCredentials(EVENT_KEYS, EDGE_TOKEN, PURGE_TOKEN)
    app = create_edge_app(
        EdgeConfig.from_slots(load_slots(), SECRET), origin.url, credentials=credentials
    )
    async with app.router.lifespan_context(app):
        yield app


async def test_purge_needs_its_token(guarded_edge: Starlette) -> None:
    transport = httpx.ASGITransport(app=guarded_edge)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as edge:
        body = {"tags": ["sku:SKU-00001"]}
        anonymous = await edge.post("/se/purge", json=body)
        wrong = await edge.post("/se/purge", json=body, headers={"authorization": "Bearer x"})
        odd = await edge.post(
            "/se/purge", json=body, headers={b"authorization": "Bearer \xe9".encode("latin-1")}
        )
        allowed = await edge.post(
            "/se/purge", json=body, headers={"authorization": f"Bearer {PURGE_TOKEN}"}
        )

    assert [anonymous.status_code, wrong.status_code, odd.status_code] == [403, 403, 403]
    assert allowed.status_code == 200


async def test_bodies_are_read_with_a_limit(guarded_edge: Starlette, origin: OriginServer) -> None:
    transport = httpx.ASGITransport(app=guarded_edge)
    origin.log.clear()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_PROXY_BODY // 65536 + 2):
            yield b"x" * 65536

    async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as edge:
        proxied = await edge.post("/v1/anything", content=chunks())
        beacon = await edge.post("/se/events", content=json.dumps({"x": "y" * 70_000}))

    assert proxied.status_code == 413
    assert beacon.status_code == 413  # edge.surface: an oversized /se body is a 413
    assert origin.log.count("/v1/anything") == 0
