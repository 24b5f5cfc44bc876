"""The context service's HTTP surface against a real Redis: segment rules (validated, versioned,
rolled back, with history), a visitor's segment with its explanation and signed cookie, the
explain tool, CDP audience messages (ingest token) and erasure."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from fragments.clickstream import ClickEvent
from fragments.segment_cookie import verify_segment
from origin.context.store import ContextStore
from origin.core.catalog import Segment
from origin.core.store import Store
from origin.web.app import create_app
from tests.origin.context.test_rules import RULES
from tests.origin.experiments.support import (
    EDITOR,
    EDITOR_TOKEN,
    VIEWER,
    VIEWER_TOKEN,
    origin_settings,
)

VISITOR = "c" * 32
INGEST_TOKEN = "ingest-token-0123456789abcdef"
INGEST = {"Authorization": f"Bearer {INGEST_TOKEN}"}
VIP_RULE = {
    "name": "vip",
    "segment": "bargain-hunters",
    "when": [{"feature": "audience:spring_vip", "op": "eq", "value": True}],
}


@pytest.fixture
async def api(redis_client: Redis, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    store = Store(redis_client)
    segments = ["everyone", "outdoor-fans", "big-spenders", "bargain-hunters"]
    await store.load_catalog([], [Segment(s, s.title(), {}, (0, 10**6)) for s in segments])
    tokens = {EDITOR_TOKEN: "editor", VIEWER_TOKEN: "viewer", INGEST_TOKEN: "ingest"}
    names = {EDITOR_TOKEN: "alice", VIEWER_TOKEN: "victor", INGEST_TOKEN: "cdp"}
    settings = origin_settings(redis_url, admin_tokens=tokens, admin_token_names=names)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://o.test") as client:
            client.headers["x-secret"] = settings.segment_secret
            yield client


async def test_rules_are_validated_versioned_and_rolled_back(api: httpx.AsyncClient) -> None:
    assert (await api.put("/v1/segment-rules", json=RULES)).status_code == 401
    assert (await api.put("/v1/segment-rules", json=RULES, headers=VIEWER)).status_code == 403
    bad = {**RULES, "rules": [{**RULES["rules"][1], "segment": "nobody"}]}
    refused = await api.put("/v1/segment-rules", json=bad, headers=EDITOR)
    assert refused.status_code == 422
    assert refused.json()["invalid_params"][0]["name"] == "rules[1] (big-cart).segment"
    one = await api.put("/v1/segment-rules", json=RULES, headers=EDITOR)
    assert one.json()["version"] == 1
    two = await api.put("/v1/segment-rules", json={**RULES, "rules": []}, headers=EDITOR)
    assert two.json()["version"] == 2
    current = await api.get("/v1/segment-rules", headers=VIEWER)
    assert (current.json()["version"], current.json()["rules"]) == (2, [])
    back = await api.post("/v1/segment-rules/1/rollback", headers=EDITOR)
    assert back.json()["version"] == 1
    assert len(back.json()["rules"]) == 3
    assert (await api.post("/v1/segment-rules/9/rollback", headers=EDITOR)).status_code == 404


async def test_segment_endpoint_explains_and_signs_and_erasure_removes_everything(
    api: httpx.AsyncClient, redis_client: Redis
) -> None:
    await api.put("/v1/segment-rules", json=RULES, headers=EDITOR)
    secret = api.headers["x-secret"]
    unknown = await api.get(f"/v1/context/{VISITOR}/segment", headers=VIEWER)
    assert unknown.json()["segment"] == "everyone"
    assert unknown.json()["explanation"] == "no profile: the default segment"
    store = ContextStore(redis_client)
    cart = ClickEvent(
        "cart-000001", "add_to_cart", VISITOR, "s", time.time(), True, "S1", None, 20_000
    )
    await store.fold(VISITOR, [cart], await store.current_rules())
    got = await api.get(f"/v1/context/{VISITOR}/segment", headers=VIEWER)
    assert got.status_code == 200
    doc = got.json()
    assert (doc["segment"], doc["rule"], doc["explanation"]) == (
        "big-spenders", 2, "matched rule 2 (big-cart)",
    )  # fmt: skip
    assert verify_segment(doc["cookie"], time.time(), secret, VISITOR) == "big-spenders"
    assert got.headers["cache-control"] == "private, no-store"
    assert (await api.delete(f"/v1/context/{VISITOR}", headers=VIEWER)).status_code == 403
    erased = await api.delete(f"/v1/context/{VISITOR}", headers=EDITOR)
    assert erased.json()["keys_deleted"] == 2
    assert [k async for k in redis_client.scan_iter(match=f"*{VISITOR}*")] == []
    bad = await api.get("/v1/context/not%20a%20visitor/segment", headers=VIEWER)
    assert bad.status_code == 422


async def test_cdp_audiences_need_an_ingest_token_name_bad_fields_and_decide(
    api: httpx.AsyncClient, redis_client: Redis
) -> None:
    rules = {**RULES, "rules": [VIP_RULE, *RULES["rules"]]}
    assert (await api.put("/v1/segment-rules", json=rules, headers=EDITOR)).status_code == 200
    entered = {
        "type": "track",
        "event": "Audience Entered",
        "userId": VISITOR,
        "properties": {"audience_key": "spring_vip"},
    }
    assert (await api.post("/v1/audiences", json=entered)).status_code == 401
    assert (await api.post("/v1/audiences", json=entered, headers=VIEWER)).status_code == 403
    bad = await api.post(
        "/v1/audiences", json={"batch": [entered, {**entered, "event": "Nope"}]}, headers=INGEST
    )
    assert bad.status_code == 400
    assert bad.json()["invalid_params"][0]["name"] == "batch[1].event"
    assert [k async for k in redis_client.scan_iter(match=f"*{VISITOR}*")] == []

    ok = await api.post("/v1/audiences", json={"batch": [entered]}, headers=INGEST)
    assert ok.json() == {"memberships": 1, "visitors": 1}
    segment = (await api.get(f"/v1/context/{VISITOR}/segment", headers=VIEWER)).json()
    assert (segment["segment"], segment["explanation"]) == (
        "bargain-hunters", "matched rule 1 (vip)",
    )  # fmt: skip
    explained = (await api.get(f"/v1/context/{VISITOR}/explain", headers=VIEWER)).json()
    assert explained["audiences"] == ["spring_vip"]
    assert [r["matched"] for r in explained["rules"]] == [True, False, False, False]
    assert explained["rules"][0]["conditions"][0]["text"] == (
        "audience:spring_vip eq true: is true, holds"
    )

    left = {"type": "identify", "userId": VISITOR, "traits": {"spring_vip": False}}
    assert (await api.post("/v1/audiences", json=left, headers=INGEST)).status_code == 200
    again = (await api.get(f"/v1/context/{VISITOR}/segment", headers=VIEWER)).json()
    assert again["segment"] == "everyone"

    erased = await api.delete(f"/v1/context/{VISITOR}", headers=EDITOR)
    assert erased.json()["keys_deleted"] == 2  # the decision and the audiences (no profile)
    assert [k async for k in redis_client.scan_iter(match=f"*{VISITOR}*")] == []


async def test_rules_history_names_who_put_and_rolled_back(api: httpx.AsyncClient) -> None:
    await api.put("/v1/segment-rules", json=RULES, headers=EDITOR)
    await api.put("/v1/segment-rules", json={**RULES, "rules": []}, headers=EDITOR)
    await api.post("/v1/segment-rules/1/rollback", headers=EDITOR)
    history = (await api.get("/v1/segment-rules/history", headers=VIEWER)).json()
    assert (history["current"], history["versions"]) == (1, 2)
    steps = [(h["version"], h["action"], h["by"], h["previous"]) for h in history["history"]]
    assert steps == [(1, "rollback", "alice", 2), (2, "put", "alice", 1), (1, "put", "alice", 0)]
