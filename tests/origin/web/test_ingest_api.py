"""The ingest and segment routes on a real Redis: roles, validation problems, reports."""

from __future__ import annotations

import httpx

from fragments.slots import load_slots
from origin.core.redis_client import RedisLike
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from origin.web.app import create_app
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS

INGEST = "i" * 20
EDITOR = "e" * 20
VIEWER = "v" * 20


async def test_lists_and_segments_over_http(redis_client: RedisLike, redis_url: str) -> None:
    await seed_demo(Store(redis_client, 5.0), load_slots(), 42, 120)
    settings = Settings(
        redis_url=redis_url,
        redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS,
        admin_tokens={INGEST: "ingest", EDITOR: "editor", VIEWER: "viewer"},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://o.test") as c:

            def auth(token: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {token}"}

            url = "/v1/lists/segment/tech-enthusiasts/top"
            body = {"items": ["SKU-00001", "NOPE"], "version": 5}
            assert (await c.put(url, json=body, headers=auth(VIEWER))).status_code == 403
            assert (await c.put(url, json=body)).status_code == 401
            ok = await c.put(url, json=body, headers=auth(INGEST))
            assert ok.status_code == 200, ok.text
            assert ok.json()["created"] == 1
            assert ok.json()["unknown_skus"] == {"segment/tech-enthusiasts/top": ["NOPE"]}
            stale = await c.put(url, json=body, headers=auth(INGEST))
            assert stale.status_code == 409
            bad = await c.put(url, json={"items": ["A", "A"]}, headers=auth(INGEST))
            assert bad.status_code == 422
            assert bad.json()["invalid_params"][0]["name"] == "items[1]"
            got = await c.get(url, headers=auth(VIEWER))
            assert [i["sku"] for i in got.json()["items"]] == ["SKU-00001", "NOPE"]

            seg = {"name": "Gamers", "price_band": [100, 9000], "category_affinity": {"gaming": 2}}
            assert (
                await c.put("/v1/segments/gamers", json=seg, headers=auth(VIEWER))
            ).status_code == 403
            created = await c.put("/v1/segments/gamers", json=seg, headers=auth(EDITOR))
            assert created.status_code == 201, created.text
            assert created.json()["bundles_built"] > 0
            invalid = await c.put(
                "/v1/segments/gamers", json={**seg, "price_band": [5, 1]}, headers=auth(EDITOR)
            )
            assert invalid.status_code == 422
            assert invalid.json()["invalid_params"][0]["name"] == "price_band"
            listed = await c.get("/v1/segments", headers=auth(VIEWER))
            assert "gamers" in {s["id"] for s in listed.json()["segments"]}
            gone = await c.delete("/v1/segments/gamers", headers=auth(EDITOR))
            assert gone.status_code == 200
            assert gone.json()["purged_tags"] == ["segment:gamers"]
            assert (await c.get("/v1/segments/gamers", headers=auth(VIEWER))).status_code == 404
