"""A publication reaches the Worker under real workerd by itself, through the Workers KV API.

The origin (real uvicorn app on the suite's Redis) has SHELFEDGE_KV_* pointed at `FakeKvApi`,
which checks each "Write key-value pair" request and mirrors the accepted value into the
Worker's *local* KV with ``wrangler kv key put --local`` on the same persistence folder that
`wrangler dev` serves from, so the path is: publish -> origin's KV write -> the Worker's KV.
Proved: with the Worker running, stopping the experiment (a new config version) changes what new
visitors get within the Worker's config TTL plus KV mirroring time, and preview-mode responses
name the serving version in ``X-Shelfedge-Config-Version`` (shoppers get no such header).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fragments.slots import load_slots
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.experiments.kv_push import CONFIG_KEY
from tests.origin.experiments.support import (
    EDITOR,
    SECRET,
    hero_experiment,
    if_match,
    origin_settings,
)
from tests.support.fake_kv_api import DEFAULT_ACCOUNT, DEFAULT_NAMESPACE, DEFAULT_TOKEN, FakeKvApi
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import connect
from tests.support.workerd import DevSettings, WranglerDev, prepare_worker

CONFIG_TTL_S = 5.0
"""`edge.adapters.cloudflare.CONFIG_TTL_S` (that module imports only inside workerd)."""
ALL_COMPACT = [
    {"id": "control", "weight": 0.0},
    {"id": "compact", "weight": 1.0, "changes": {"card_template": "card_compact.html.j2"}},
]
VERSION_HEADER = "x-shelfedge-config-version"


class LocalKvMirror:
    """Writes a value into the Worker's local KV (``CONFIG`` binding) with wrangler."""

    def __init__(self, dev: WranglerDev, scratch: Path) -> None:
        self.dev = dev
        self.scratch = scratch
        self.seconds: list[float] = []

    def __call__(self, key: str, value: bytes) -> None:
        started = time.monotonic()
        settings, toolchain = self.dev.settings, self.dev.toolchain
        path = self.scratch / "kv-value.json"
        path.write_bytes(value)
        put = subprocess.run(
            [
                str(toolchain.node), str(toolchain.wrangler), "kv", "key", "put", key,
                "--path", str(path), "--binding", "CONFIG", "--local", "--env", "test",
                "--config", str(settings.worker_dir / "wrangler.toml"),
                "--persist-to", str(settings.state_dir / "persist"),
            ],
            env=self.dev.environment(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if put.returncode != 0:
            raise RuntimeError(f"wrangler kv key put failed: {put.stdout}{put.stderr}")
        self.seconds.append(time.monotonic() - started)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> WranglerDev:
    """The Worker's folders and toolchain (the KV mirror writes into its persistence folder
    before the origin, and so the `worker` process, exists)."""
    worker_dir = prepare_worker(tmp_path_factory.mktemp("workerd-kv") / "worker")
    settings = DevSettings(worker_dir=worker_dir, state_dir=tmp_path_factory.mktemp("wrangler"))
    return WranglerDev(settings)


@pytest.fixture(scope="module")
def kv(dev: WranglerDev, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKvApi]:
    mirror = LocalKvMirror(dev, tmp_path_factory.mktemp("kv-scratch"))
    with FakeKvApi(on_write=mirror) as fake:
        yield fake


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
def origin(redis_url: str, seeded_redis: None, kv: FakeKvApi) -> Iterator[OriginServer]:
    settings = origin_settings(
        redis_url,
        segment_secret=SECRET,
        kv_account_id=DEFAULT_ACCOUNT,
        kv_namespace_id=DEFAULT_NAMESPACE,
        kv_api_token=DEFAULT_TOKEN,
        kv_api_base=kv.api_base,
    )
    with OriginServer.for_origin(settings) as server:
        yield server


@pytest.fixture(scope="module")
def worker(dev: WranglerDev, origin: OriginServer) -> Iterator[WranglerDev]:
    """`wrangler dev` on the same folders, pointed at the origin."""
    variables = {"ORIGIN_URL": origin.url, "SEGMENT_SECRET": SECRET, "SHELFEDGE_ENV": "dev"}
    running = WranglerDev(replace(dev.settings, variables=variables), dev.toolchain)
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def _preview_token(admin: httpx.AsyncClient) -> tuple[str, int]:
    link = await admin.post("/v1/experiments/hero/preview-link?variant=compact", headers=EDITOR)
    assert link.status_code == 200, link.text
    token = parse_qs(urlsplit(link.json()["url"]).query)["sx_token"][0]
    return token, int(link.json()["config_version"])


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_publication_reaches_the_worker_through_the_kv_api(
    worker: WranglerDev, origin: OriginServer, kv: FakeKvApi
) -> None:
    async with httpx.AsyncClient(base_url=origin.url, timeout=90.0) as admin:
        created = await admin.post(
            "/v1/experiments", json=hero_experiment(variants=ALL_COMPACT), headers=EDITOR
        )
        assert created.status_code == 201, created.text
        started = await admin.post("/v1/experiments/hero/start", headers=if_match(1))
        assert started.status_code == 200, started.text
        token, version = await _preview_token(admin)
        served = await admin.get("/v1/edge-config")
        assert int(served.headers["etag"].strip('"')) == version
        assert kv.values[CONFIG_KEY] == served.content  # written through the API, by itself

    async with httpx.AsyncClient(base_url=worker.base_url, timeout=30.0, trust_env=False) as http:
        shopper = await http.get("/se/slot/home-hero", headers={"cookie": "se_consent=1"})
        assert shopper.status_code == 200
        assert shopper.headers["x-shelfedge-variant"] == "compact"
        assert VERSION_HEADER not in shopper.headers
        qa = await http.get("/se/slot/home-hero", params={"sx_token": token})
        assert qa.headers[VERSION_HEADER] == str(version)

        async with httpx.AsyncClient(base_url=origin.url, timeout=90.0) as admin:
            published_at = time.monotonic()
            stopped = await admin.post("/v1/experiments/hero/stop", headers=if_match(2))
            assert stopped.status_code == 200, stopped.text
            pushed_at = time.monotonic()
            newer = int(stopped.json()["published_config_version"])
        assert newer == version + 1
        assert kv.calls()[-1].accepted

        # New visitors route by the stopped experiment once the isolate's TTL has passed.
        deadline = pushed_at + CONFIG_TTL_S + 10.0
        while True:
            qa = await http.get("/se/slot/home-hero", params={"sx_token": token})
            if qa.headers.get(VERSION_HEADER) == str(newer):
                break
            assert time.monotonic() < deadline, (qa.headers, [c.status for c in kv.calls()])
            await asyncio.sleep(0.25)
        reached = time.monotonic() - published_at
        shopper = await http.get("/se/slot/home-hero", headers={"cookie": "se_consent=1"})
        assert shopper.headers["x-shelfedge-variant"] == "control"
    print(f"publication reached the Worker in {reached:.1f} s ({len(kv.calls())} KV writes)")
