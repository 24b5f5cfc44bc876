"""Publishing writes the edge config to Workers KV through Cloudflare's API by itself.

`WorkersKvWriter` against `FakeKvApi` (which checks the documented request shape): the write
lands, 429/5xx are retried with backoff honouring Retry-After, other 4xx are final, the time
budget ends a long wait. The origin app with SHELFEDGE_KV_* pointed at the fake: starting an
experiment, publishing and rolling back each put the current config in KV (byte for byte what
``/v1/edge-config`` serves), the version each target holds is recorded and shown (API and admin
page), and a write that keeps failing never undoes the publication but is recorded.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from origin.errors import SettingsError
from origin.experiments.errors import EdgePushFailed
from origin.experiments.kv_push import CONFIG_KEY, KvTarget, RetryPolicy, WorkersKvWriter
from origin.settings import Settings
from origin.web.app import create_app
from tests.origin.experiments.support import (
    EDITOR,
    EDITOR_TOKEN,
    VIEWER,
    hero_experiment,
    if_match,
    origin_settings,
    seeded,
)
from tests.origin.web.admin.conftest import BASE, AdminClient
from tests.support.fake_kv_api import DEFAULT_ACCOUNT, DEFAULT_NAMESPACE, DEFAULT_TOKEN, FakeKvApi

ROOT = Path(__file__).resolve().parents[3]
__all__ = ["seeded"]


@pytest.fixture
def kv() -> Iterator[FakeKvApi]:
    with FakeKvApi() as fake:
        yield fake


def _target(fake: FakeKvApi, token: str = DEFAULT_TOKEN) -> KvTarget:
    return KvTarget(DEFAULT_ACCOUNT, DEFAULT_NAMESPACE, token, fake.api_base)


class _Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_a_write_lands_in_the_documented_shape(kv: FakeKvApi) -> None:
    async with httpx.AsyncClient() as http:
        tries = await WorkersKvWriter(_target(kv), http).put('{"version":1}')

    assert tries == 1
    assert kv.values == {CONFIG_KEY: b'{"version":1}'}
    (call,) = kv.calls()
    assert call.method == "PUT"
    assert call.path == (
        f"/client/v4/accounts/{DEFAULT_ACCOUNT}/storage/kv/namespaces/{DEFAULT_NAMESPACE}"
        f"/values/{CONFIG_KEY}"
    )
    assert call.headers["authorization"] == f"Bearer {DEFAULT_TOKEN}"


async def test_429_and_5xx_are_retried_with_backoff_honouring_retry_after(kv: FakeKvApi) -> None:
    kv.fail_next(1, 429, retry_after=3)
    kv.fail_next(1, 503, retry_after=None)
    kv.fail_next(1, 502, retry_after=None)
    sleeps = _Sleeps()
    policy = RetryPolicy(attempts=5, first_delay=0.5, max_delay=8.0, budget=60.0)
    async with httpx.AsyncClient() as http:
        tries = await WorkersKvWriter(_target(kv), http, policy, sleeps).put("v")

    assert tries == 4
    assert sleeps.waits == [3.0, 1.0, 2.0]  # Retry-After, then doubling backoff
    assert [c.status for c in kv.calls()] == [429, 503, 502, 200]
    assert kv.values[CONFIG_KEY] == b"v"


@pytest.mark.parametrize("status", [400, 404, 413])
async def test_other_4xx_are_final(kv: FakeKvApi, status: int) -> None:
    kv.refuse_next(1, status)
    sleeps = _Sleeps()
    async with httpx.AsyncClient() as http:
        with pytest.raises(EdgePushFailed) as caught:
            await WorkersKvWriter(_target(kv), http, sleep=sleeps).put("v")

    assert not caught.value.retriable
    assert str(status) in str(caught.value)
    assert len(kv.calls()) == 1
    assert sleeps.waits == []


async def test_a_wrong_token_is_final_and_never_shown(kv: FakeKvApi) -> None:
    secret = "wrong-token-0123456789abcdef"
    async with httpx.AsyncClient() as http:
        with pytest.raises(EdgePushFailed) as caught:
            await WorkersKvWriter(_target(kv, secret), http).put("v")

    assert "403" in str(caught.value)
    assert "10000" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(_target(kv, secret))
    assert len(kv.calls()) == 1


async def test_retries_stop_at_the_attempt_limit_and_the_time_budget(kv: FakeKvApi) -> None:
    kv.fail_next(3, 500, retry_after=None)
    sleeps = _Sleeps()
    async with httpx.AsyncClient() as http:
        with pytest.raises(EdgePushFailed) as caught:
            await WorkersKvWriter(_target(kv), http, RetryPolicy(attempts=3), sleeps).put("v")
    assert caught.value.retriable
    assert len(kv.calls()) == 3

    kv.fail_next(1, 429, retry_after=120)
    async with httpx.AsyncClient() as http:
        with pytest.raises(EdgePushFailed, match="budget"):
            await WorkersKvWriter(_target(kv), http, RetryPolicy(budget=20.0), sleeps).put("v")


async def test_an_unreachable_api_is_retried_then_reported(kv: FakeKvApi) -> None:
    target = KvTarget(DEFAULT_ACCOUNT, DEFAULT_NAMESPACE, DEFAULT_TOKEN, "http://127.0.0.1:9/x")
    sleeps = _Sleeps()
    async with httpx.AsyncClient() as http:
        with pytest.raises(EdgePushFailed, match="unreachable"):
            await WorkersKvWriter(target, http, RetryPolicy(attempts=2), sleeps).put("v")
    assert len(sleeps.waits) == 1


def test_the_key_is_the_one_the_worker_reads() -> None:
    source = (ROOT / "edge" / "adapters" / "cloudflare.py").read_text()
    found = re.search(r'^CONFIG_KEY = "([^"]+)"', source, re.MULTILINE)
    assert found is not None
    assert found.group(1) == CONFIG_KEY


def test_kv_settings_are_all_or_nothing_and_https_in_prod() -> None:
    full = {
        "SHELFEDGE_KV_ACCOUNT_ID": DEFAULT_ACCOUNT,
        "SHELFEDGE_KV_NAMESPACE_ID": DEFAULT_NAMESPACE,
        "SHELFEDGE_KV_API_TOKEN": DEFAULT_TOKEN,
    }
    settings = Settings.from_env(full)
    assert settings.kv_api_base == "https://api.cloudflare.com/client/v4"
    assert DEFAULT_TOKEN not in repr(settings)
    with pytest.raises(SettingsError, match="SHELFEDGE_KV_API_TOKEN"):
        Settings.from_env({k: v for k, v in full.items() if k != "SHELFEDGE_KV_API_TOKEN"})
    with pytest.raises(SettingsError, match="SHELFEDGE_KV_API_BASE"):
        Settings.from_env(
            {
                **full,
                "SHELFEDGE_ENV": "prod",
                "SHELFEDGE_SEGMENT_SECRET": "a-production-secret-0123456789",
                "SHELFEDGE_KV_API_BASE": "http://api.example",
            }
        )
    assert Settings.from_env({}).kv_account_id is None


# --- the origin pushes by itself -------------------------------------------------------------


@pytest.fixture
async def kv_app(redis_url: str, kv: FakeKvApi) -> AsyncIterator[Starlette]:
    settings = origin_settings(
        redis_url,
        kv_account_id=DEFAULT_ACCOUNT,
        kv_namespace_id=DEFAULT_NAMESPACE,
        kv_api_token=DEFAULT_TOKEN,
        kv_api_base=kv.api_base,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(kv_app: Starlette, seeded: Redis) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=kv_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def _served(api: httpx.AsyncClient) -> tuple[int, bytes]:
    response = await api.get("/v1/edge-config")
    assert response.status_code == 200
    return int(response.headers["etag"].strip('"')), response.content


async def _targets(api: httpx.AsyncClient) -> dict[str, dict[str, object]]:
    listing = await api.get("/v1/edge-config/versions", headers=VIEWER)
    assert listing.status_code == 200, listing.text
    return {t["target"]: t for t in listing.json()["targets"]}


async def test_start_publish_and_rollback_each_reach_kv(
    api: httpx.AsyncClient, kv: FakeKvApi
) -> None:
    created = await api.post("/v1/experiments", json=hero_experiment(), headers=EDITOR)
    assert created.status_code == 201
    assert kv.calls() == []  # a draft publishes nothing

    started = await api.post("/v1/experiments/hero/start", headers=if_match(1))
    assert started.status_code == 200
    version, served = await _served(api)
    assert kv.values[CONFIG_KEY] == served
    assert (await _targets(api))["workers-kv"]["version"] == version

    published = await api.post("/v1/experiments/publish", headers=EDITOR)
    assert published.status_code == 201
    newer, served = await _served(api)
    assert newer == version + 1
    assert kv.values[CONFIG_KEY] == served

    rolled = await api.post(f"/v1/edge-config/rollback/{version}", headers=EDITOR)
    assert rolled.status_code == 201
    latest, served = await _served(api)
    assert latest == newer + 1
    assert kv.values[CONFIG_KEY] == served
    assert (await _targets(api))["workers-kv"]["version"] == latest
    assert all(c.accepted for c in kv.calls())


async def test_a_failing_write_is_recorded_and_the_next_publication_catches_up(
    api: httpx.AsyncClient, kv: FakeKvApi, kv_app: Starlette
) -> None:
    await api.post("/v1/experiments", json=hero_experiment(), headers=EDITOR)
    kv.refuse_next(1, 400)
    started = await api.post("/v1/experiments/hero/start", headers=if_match(1))
    assert started.status_code == 200  # the publication stands
    version, _ = await _served(api)
    state = (await _targets(api))["workers-kv"]
    assert state["version"] == 0
    assert state["failed_version"] == version
    assert "400" in str(state["error"])
    assert CONFIG_KEY not in kv.values

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=kv_app),
        base_url=BASE,
        follow_redirects=False,
    ) as http:
        tab = AdminClient(http)
        await tab.log_in(EDITOR_TOKEN)
        page = (await tab.get("/admin")).text
    assert 'data-target="workers-kv"' in page
    assert "v0" in page
    assert "behind" in page
    assert f"v{version} failed" in page

    published = await api.post("/v1/experiments/publish", headers=EDITOR)
    assert published.status_code == 201
    latest, served = await _served(api)
    assert kv.values[CONFIG_KEY] == served
    state = (await _targets(api))["workers-kv"]
    assert state["version"] == latest
    assert state["failed_version"] is None
