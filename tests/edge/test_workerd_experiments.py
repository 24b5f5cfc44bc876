"""The Worker under real workerd routes shoppers by the experiment config in its KV binding and
reports exposures to the origin in the background.

A real origin (Redis, Kafka for its event collector) gets an experiment through its API; the
published `/v1/edge-config` is written into the Worker's local KV (`wrangler kv key put
--local`, as docs/experiments.md tells operators to do with `--remote`) before `wrangler dev`
starts. Proved: the variant's bundle is served with its routing reason, a new visitor gets both
its visitor and its sticky-assignment cookie (two Set-Cookie headers), and the exposure reaches
the origin's `POST /v1/events` (202) and Kafka's `exposures.v1`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from fragments import topics
from fragments.slots import load_slots
from fragments.sticky_cookie import sign_sticky
from origin.core.seed import seed_demo
from origin.core.store import Store
from tests.origin.experiments.support import (
    EDITOR,
    SECRET,
    hero_experiment,
    if_match,
    origin_settings,
)
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import connect
from tests.support.workerd import DevSettings, WranglerDev, prepare_worker

VISITOR = "0123456789abcdef0123456789abcdef"
ALL_COMPACT = [
    {"id": "control", "weight": 0.0},
    {"id": "compact", "weight": 1.0, "changes": {"card_template": "card_compact.html.j2"}},
]


@pytest.fixture(scope="module")
async def seeded_redis(redis_url: str) -> AsyncIterator[None]:
    client = connect(redis_url)
    try:
        await client.flushall()
        await seed_demo(Store(client, 5.0), load_slots(), 42, 200)
        yield
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def origin(redis_url: str, tansu_bootstrap: str, seeded_redis: None) -> Iterator[OriginServer]:
    settings = origin_settings(redis_url, kafka_bootstrap=tansu_bootstrap, segment_secret=SECRET)
    with OriginServer.for_origin(settings) as server:
        with httpx.Client(base_url=server.url, timeout=30.0) as admin:
            created = admin.post(
                "/v1/experiments", json=hero_experiment(variants=ALL_COMPACT), headers=EDITOR
            )
            assert created.status_code == 201, created.text
            started = admin.post("/v1/experiments/hero/start", headers=if_match(1))
            assert started.status_code == 200, started.text
            # The preview secret exists before the config is copied to KV (its hash travels there).
            warm = admin.post("/v1/experiments/hero/preview-link?variant=control", headers=EDITOR)
            assert warm.status_code == 200, warm.text
        yield server


@pytest.fixture(scope="module")
def worker(origin: OriginServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WranglerDev]:
    worker_dir = prepare_worker(tmp_path_factory.mktemp("workerd") / "worker")
    settings = DevSettings(
        worker_dir=worker_dir,
        state_dir=tmp_path_factory.mktemp("wrangler-state"),
        variables={
            "ORIGIN_URL": origin.url,
            "SEGMENT_SECRET": SECRET,
            "SHELFEDGE_ENV": "dev",
            "DEBUG_HEADERS": "1",
        },
    )
    dev = WranglerDev(settings)
    published = httpx.get(origin.url + "/v1/edge-config", timeout=30.0)
    assert published.status_code == 200, published.text
    config_file = Path(settings.state_dir) / "edge-config.json"
    config_file.write_text(published.text)
    toolchain = dev.toolchain
    put = subprocess.run(
        [
            str(toolchain.node), str(toolchain.wrangler), "kv", "key", "put", "edge-config",
            "--path", str(config_file), "--binding", "CONFIG", "--local", "--env", "test",
            "--config", str(worker_dir / "wrangler.toml"),
            "--persist-to", str(settings.state_dir / "persist"),
        ],
        env=dev.environment(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert put.returncode == 0, put.stdout + put.stderr
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()


async def _event_in_kafka(
    bootstrap: str, topic: str, visitor: str, seconds: float
) -> dict[str, object]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value)
                    if event.get("visitor") == visitor:
                        return dict(event)
        raise AssertionError(f"no event of visitor {visitor} in {topic}")
    finally:
        await consumer.stop()


@pytest.mark.timeout(240)
async def test_worker_routes_by_kv_config_and_reports_exposures(
    worker: WranglerDev, origin: OriginServer, tansu_bootstrap: str
) -> None:
    async with httpx.AsyncClient(base_url=worker.base_url, timeout=30.0, trust_env=False) as http:
        new_visitor = await http.get("/se/slot/home-hero", headers={"cookie": "se_consent=1"})
        assert new_visitor.status_code == 200
        assert new_visitor.headers["x-shelfedge-variant"] == "compact"
        assert new_visitor.headers["x-shelfedge-experiment"] == "hero;assigned"
        cookies = new_visitor.headers.get_list("set-cookie")
        assert any(c.startswith("se_vid=") for c in cookies), cookies
        assert any(c.startswith("se_exp=hero.1.") for c in cookies), cookies
        assert "se-card--compact" in new_visitor.text

        known = await http.get(
            "/se/slot/home-hero", headers={"cookie": f"se_vid={VISITOR}; se_consent=1"}
        )
        assert known.headers["x-shelfedge-variant"] == "compact"

    deadline = time.monotonic() + 30
    while not any(
        r.path == "/v1/events" and r.method == "POST" and r.status == 202
        for r in origin.log.requests
    ):
        assert time.monotonic() < deadline, [
            r for r in origin.log.requests if r.path == "/v1/events"
        ]
        await asyncio.sleep(0.2)
    exposure = await _event_in_kafka(tansu_bootstrap, topics.EXPOSURES.name, VISITOR, seconds=30)
    assert exposure["experiment"] == "hero"
    assert exposure["variant"] == "compact"
    assert exposure["slot"] == "home-hero"


@pytest.mark.timeout(240)
async def test_worker_attributes_storefront_beacons_to_the_sticky_variant(
    worker: WranglerDev, tansu_bootstrap: str
) -> None:
    sticky = sign_sticky("hero.1.0", VISITOR, SECRET)
    cookie = f"se_vid={VISITOR}; se_consent=1; se_exp={sticky}"
    async with httpx.AsyncClient(base_url=worker.base_url, timeout=30.0, trust_env=False) as http:
        beacon = await http.post(
            "/se/events",
            json={"events": [{"type": "add_to_cart", "slot": "home-hero", "sku": "SKU-00001"}]},
            headers={"cookie": cookie},
        )
        assert beacon.status_code == 202, beacon.text
        assert beacon.json()["queued"] == 1
        refused = await http.post("/se/events", content=b"not json", headers={"cookie": cookie})
        assert refused.status_code == 400
        unsigned = await http.post(
            "/se/events",
            json={"events": [{"type": "click", "slot": "home-hero"}]},
            headers={"cookie": f"se_vid={VISITOR}; se_consent=1; se_exp=hero.1.0"},
        )
        assert unsigned.json()["queued"] == 0  # a hand-written sticky cookie picks nothing
    conversion = await _event_in_kafka(
        tansu_bootstrap, topics.CONVERSIONS.name, VISITOR, seconds=30
    )
    assert conversion["experiment"] == "hero"
    assert conversion["variant"] == "compact"


@pytest.mark.timeout(240)
async def test_worker_trades_a_one_time_preview_link_for_a_cookie(
    worker: WranglerDev, origin: OriginServer
) -> None:
    async with httpx.AsyncClient(base_url=origin.url, timeout=30.0) as admin:
        made = await admin.post("/v1/experiments/hero/preview-link?variant=control", headers=EDITOR)
    link = made.json()
    exchange = "/se/preview?" + link["exchange_url"].split("?", 1)[1]
    consent = f"se_vid={VISITOR}; se_consent=1"
    async with httpx.AsyncClient(base_url=worker.base_url, timeout=30.0, trust_env=False) as http:
        first = await http.get(exchange)
        again = await http.get(exchange)
        cookie = first.headers["set-cookie"].split(";")[0]
        forced = await http.get(
            "/se/slot/home-hero?sx_hero=control", headers={"cookie": f"{consent}; {cookie}"}
        )
        natural = await http.get("/se/slot/home-hero?sx_hero=control", headers={"cookie": consent})

    assert first.status_code == 303, first.text
    assert first.headers["location"] == "/?sx_hero=control"
    assert cookie.startswith("se_preview=p1.hero.control.")
    assert again.status_code == 410
    assert forced.headers["x-shelfedge-variant"] == "control"
    assert forced.headers["x-shelfedge-experiment"] == "hero;forced"
    assert natural.headers["x-shelfedge-variant"] == "compact"
