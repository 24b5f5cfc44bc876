"""``POST /v1/events`` on the real origin: 202 only when Kafka acknowledged every event, and
400 / 401 / 413 / 429 / 503 with problems that say why (never a hang)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from fragments import topics
from fragments.batch_signing import SIGNATURE_HEADER, SigningKeys, sign_batch
from shelfedge.localstack import free_port
from tests.invalidation.support import eventually
from tests.origin.events.support import (
    EVENT_KEYS,
    event,
    events_settings,
    post_signed,
    put_hero,
    signed,
)
from tests.support.kafka_engines import Broker
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import connect


@pytest.fixture(scope="module")
async def hero(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        await put_hero(redis)
    finally:
        await redis.aclose()


@pytest.fixture(scope="module")
def collector(redis_url: str, kafka_bootstrap: str, hero: None) -> Iterator[OriginServer]:
    settings = events_settings(redis_url, kafka_bootstrap, events_rate=1000.0, events_burst=1000)
    with OriginServer.for_origin(settings) as server:
        yield server


@pytest.fixture
async def client(collector: OriginServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=collector.url, timeout=30.0) as c:
        yield c


async def post_until_connected(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """The sink connects in the background after start-up: retry 503s for a few seconds."""
    response: httpx.Response | None = None

    async def accepted() -> bool:
        nonlocal response
        response = await post_signed(client, body)
        return response.status_code != 503

    await eventually(accepted, within=15, what="the collector connected to Kafka")
    assert response is not None
    return response


async def post_until_connected_raw(
    client: httpx.AsyncClient, request: dict[str, Any]
) -> httpx.Response:
    """Like `post_until_connected` for a prepared request (retried only while it is 503,
    which never records its batch id)."""
    response: httpx.Response | None = None

    async def accepted() -> bool:
        nonlocal response
        response = await client.post("/v1/events", **request)
        return response.status_code != 503

    await eventually(accepted, within=15, what="the collector connected to Kafka")
    assert response is not None
    return response


async def read_ids(bootstrap: str, topic: str, wanted: set[str]) -> set[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: set[str] = set()
    try:
        deadline = time.monotonic() + 15
        while wanted - found and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    found.add(json.loads(r.value)["id"])
    finally:
        await consumer.stop()
    return found & wanted


async def test_accepted_events_land_on_their_topics_keyed_by_visitor(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    exposures = [event("exposure") for _ in range(5)]
    conversions = [event("purchase", value_cents=1999), event("click"), event("add_to_cart")]
    response = await post_until_connected(client, {"events": exposures + conversions})

    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 8,
        "rejected": {"unknown_experiment": 0, "unknown_variant": 0},
    }
    exposure_ids = {e["id"] for e in exposures}
    conversion_ids = {e["id"] for e in conversions}
    assert await read_ids(kafka_bootstrap, topics.EXPOSURES.name, exposure_ids) == exposure_ids
    assert (
        await read_ids(kafka_bootstrap, topics.CONVERSIONS.name, conversion_ids) == conversion_ids
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{", "body"),
        (b"[]", "events"),
        (b'{"events": []}', "events"),
        (b'{"events": "x"}', "events"),
        (json.dumps({"events": [event(), event(kind="view")]}).encode(), "events[1].type"),
        (json.dumps({"events": [event(visitor="")]}).encode(), "events[0].visitor"),
        (json.dumps({"events": [event(at=0)]}).encode(), "events[0].at"),
    ],
)
async def test_malformed_batches_are_400_naming_the_event(
    client: httpx.AsyncClient, body: bytes, field: str
) -> None:
    response = await post_signed(client, body)
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalid_params"]] == [field]


async def test_limits_are_413(client: httpx.AsyncClient) -> None:
    too_many = await post_signed(client, {"events": [event() for _ in range(501)]})
    too_big = await post_signed(client, b'{"events": [' + b" " * 300_000 + b"]}")

    assert too_many.status_code == 413
    assert "at most 500" in too_many.json()["detail"]
    assert too_big.status_code == 413


async def test_a_fast_client_gets_429_with_retry_after(
    redis_url: str, kafka_bootstrap: str
) -> None:
    # A key id of its own: the bucket lives in Redis (shared by origin processes) for seconds.
    slow = SigningKeys.parse(
        f"slow-{uuid.uuid4().hex[:8]}=slow-edge-key-0123456789abcdef0123456789"
    )
    settings = events_settings(redis_url, kafka_bootstrap, events_rate=0.5, events_burst=2)
    settings = replace(settings, event_keys=slow)
    with OriginServer.for_origin(settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            answers = [await post_signed(c, b"{", keys=slow) for _ in range(3)]
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert answers[2].headers["retry-after"] == "2"
    assert answers[2].json()["title"] == "Too many requests"


async def test_without_kafka_it_is_503_at_once(redis_url: str) -> None:
    with OriginServer.for_origin(events_settings(redis_url, None)) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            response = await post_signed(c, {"events": [event()]})
    assert response.status_code == 503
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in response.json()["detail"]
    assert response.headers["retry-after"] == "2"


async def test_an_unreachable_broker_is_503_never_a_hang(redis_url: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with OriginServer.for_origin(events_settings(redis_url, dead)) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            started = time.monotonic()
            response = await post_signed(c, {"events": [event()]})
            elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert "not connected" in response.json()["detail"]
    assert elapsed < 3.0


async def test_a_broker_lost_after_connecting_is_503_within_the_send_timeout(
    redis_url: str, fresh_kafka_broker: Broker
) -> None:
    settings = events_settings(redis_url, fresh_kafka_broker.bootstrap)
    with OriginServer.for_origin(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as c:
            first = await post_until_connected(c, {"events": [event()]})
            fresh_kafka_broker.stop()
            started = time.monotonic()
            lost = await post_signed(c, {"events": [event()]})
            elapsed = time.monotonic() - started
    assert first.status_code == 202
    assert lost.status_code == 503
    assert elapsed < 5.0


async def test_an_unsigned_batch_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json={"events": [event()]})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["invalid_params"] == [{"name": SIGNATURE_HEADER, "reason": "missing"}]


def _reason(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return str(response.json()["invalid_params"][0]["reason"])


async def test_forged_expired_and_unknown_key_batches_are_401(client: httpx.AsyncClient) -> None:
    body = json.dumps({"events": [event()]}).encode()
    forged = SigningKeys.parse("edge-new=a-forger-guessing-the-key-0123456789abcdef")
    unknown = SigningKeys.parse("edge-x=some-other-edge-key-0123456789abcdef0123")
    stale = signed(body, at=time.time() - 301)
    tampered = signed(body)
    tampered["content"] = body.replace(b"control", b"compact")

    assert _reason(await client.post("/v1/events", **signed(body, keys=forged))) == "bad_signature"
    assert _reason(await client.post("/v1/events", **signed(body, keys=unknown))) == "unknown_key"
    assert _reason(await client.post("/v1/events", **stale)) == "expired"
    assert _reason(await client.post("/v1/events", **tampered)) == "bad_signature"
    garbled = {**signed(body), "headers": {SIGNATURE_HEADER: "kid=edge-new,ts=1"}}
    assert _reason(await client.post("/v1/events", **garbled)) == "malformed"


async def test_a_replayed_batch_is_401(client: httpx.AsyncClient) -> None:
    request = signed({"events": [event()]})
    first = await post_until_connected_raw(client, request)
    replay = await client.post("/v1/events", **request)

    assert first.status_code == 202
    assert _reason(replay) == "replayed"


async def test_every_listed_key_verifies_during_a_rotation(client: httpx.AsyncClient) -> None:
    old_only = SigningKeys((EVENT_KEYS.keys[0],))
    body = json.dumps({"events": [event()]}).encode()
    headers = sign_batch(old_only, body, time.time())

    response = await post_until_connected_raw(client, {"content": body, "headers": headers})

    assert response.status_code == 202
    assert EVENT_KEYS.newest.kid == "edge-new"  # what the edge signs with after rotating


async def test_events_about_unknown_experiments_or_variants_are_dropped_and_counted(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "events": [
            event(),
            event(experiment="made-up-experiment"),
            event(variant="made-up-variant"),
        ]
    }
    response = await post_until_connected(client, body)
    metrics = (await client.get("/metrics")).text

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "rejected": {"unknown_experiment": 1, "unknown_variant": 1},
    }
    assert 'shelfedge_events_rejected_total{reason="unknown_experiment"}' in metrics
    assert 'shelfedge_events_rejected_total{reason="unknown_variant"}' in metrics


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"events": [{"at": NaN}]}', "body"),
        (b'{"events": [{"at": Infinity}]}', "body"),
        (b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body"),
        (b'{"events": ' + b"[" * 40 + b"]" * 40 + b"}", "body"),
        (json.dumps({"events": [event("purchase", value_cents=10**8 + 1)]}).encode(),
         "events[0].value_cents"),
    ],
)  # fmt: skip
async def test_non_finite_numbers_deep_nesting_and_huge_amounts_are_400(
    client: httpx.AsyncClient, body: bytes, field: str
) -> None:
    response = await post_signed(client, body)

    assert response.status_code == 400, response.text
    assert [p["name"] for p in response.json()["invalid_params"]] == [field]
