"""Purgers against the fake purge API: documented request shapes, error translation, config."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from invalidation.errors import (
    PurgeFailed,
    PurgeRejected,
    PurgerUnusable,
    PurgeUnauthorized,
    PurgeUnavailable,
)
from invalidation.purgers.akamai import MAX_TAGS_PER_REQUEST as AKAMAI_MAX_TAGS
from invalidation.purgers.akamai import AkamaiPurger
from invalidation.purgers.base import Purger, retry_after_seconds
from invalidation.purgers.cloudflare import CloudflarePurger
from invalidation.purgers.fastly import FastlyPurger
from invalidation.purgers.local_edge import LocalEdgePurger
from invalidation.ratelimit import CLOUDFLARE_PLANS, BucketSpec
from invalidation.service import build_purgers
from invalidation.settings import (
    AkamaiSettings,
    CloudflareSettings,
    FastlySettings,
    InvalidationSettings,
)
from origin.core.purge_queue import PurgeMode
from tests.support.fake_purge_api import (
    DEFAULT_AKAMAI,
    DEFAULT_CLOUDFLARE_TOKEN,
    DEFAULT_FASTLY_KEY,
    DEFAULT_FASTLY_SERVICE,
    DEFAULT_ZONE_ID,
    FakePurgeApi,
)

TAGS = ["bundle:home-hero/everyone/control/en-US", "sku:SKU-00001", "slot:cart-upsell"]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def cloudflare(
    api: FakePurgeApi, token: str = DEFAULT_CLOUDFLARE_TOKEN, *, soft: bool = True
) -> CloudflareSettings:
    return CloudflareSettings(
        zone_id=DEFAULT_ZONE_ID, api_token=token, api_base=api.cloudflare_api_base, soft_purge=soft
    )


def akamai(
    api: FakePurgeApi, *, secret: str = DEFAULT_AKAMAI.client_secret, **kw: object
) -> AkamaiSettings:
    settings = AkamaiSettings(
        host=api.url,
        client_token=DEFAULT_AKAMAI.client_token,
        client_secret=secret,
        access_token=DEFAULT_AKAMAI.access_token,
    )
    return dataclasses.replace(settings, **kw)  # type: ignore[arg-type]


def fastly(api: FakePurgeApi, *, soft: bool, key: str = DEFAULT_FASTLY_KEY) -> FastlySettings:
    return FastlySettings(DEFAULT_FASTLY_SERVICE, key, soft_purge=soft, api_base=api.url)


async def test_cloudflare_request_shape(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    await CloudflarePurger(http, cloudflare(fake_purge_api)).purge(TAGS)
    [call] = fake_purge_api.calls()
    assert call.status == 200
    assert call.api == "cloudflare"
    assert call.path == f"/client/v4/zones/{DEFAULT_ZONE_ID}/purge_cache"
    assert call.headers["authorization"] == f"Bearer {DEFAULT_CLOUDFLARE_TOKEN}"
    assert call.tags == tuple(TAGS)


async def test_cloudflare_refuses_more_than_100_tags_before_sending(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    purger = CloudflarePurger(http, cloudflare(fake_purge_api))
    await purger.purge([f"t{i}" for i in range(100)])
    with pytest.raises(ValueError, match="at most 100 tags"):
        await purger.purge([f"t{i}" for i in range(101)])
    assert [len(c.tags) for c in fake_purge_api.calls()] == [100]


@pytest.mark.parametrize("soft", [True, False])
async def test_fastly_request_shape(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient, soft: bool
) -> None:
    await FastlyPurger(http, fastly(fake_purge_api, soft=soft)).purge(TAGS, PurgeMode.SOFT)
    [call] = fake_purge_api.calls()
    assert (call.status, call.api) == (200, "fastly")
    assert call.path == f"/service/{DEFAULT_FASTLY_SERVICE}/purge"
    assert call.headers["fastly-key"] == DEFAULT_FASTLY_KEY
    assert call.headers["surrogate-key"] == " ".join(TAGS)
    assert call.headers.get("fastly-soft-purge") == ("1" if soft else None)
    assert call.tags == tuple(TAGS)


async def test_local_edge_request_shape(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    await LocalEdgePurger(http, fake_purge_api.url + "/").purge(TAGS)
    [call] = fake_purge_api.calls()
    assert (call.status, call.api, call.path) == (200, "local-edge", "/se/purge")
    assert call.tags == tuple(TAGS)


@pytest.mark.parametrize(
    ("mode", "soft_enabled", "path"),
    [
        (PurgeMode.HARD, True, "purge_cache"),
        (PurgeMode.SOFT, True, "invalidate_cache"),
        (PurgeMode.SOFT, False, "purge_cache"),
    ],
)
async def test_cloudflare_soft_purges_invalidate_and_hard_ones_purge(
    fake_purge_api: FakePurgeApi,
    http: httpx.AsyncClient,
    mode: PurgeMode,
    soft_enabled: bool,
    path: str,
) -> None:
    await CloudflarePurger(http, cloudflare(fake_purge_api, soft=soft_enabled)).purge(TAGS, mode)
    [call] = fake_purge_api.calls()
    assert (call.status, call.path) == (200, f"/client/v4/zones/{DEFAULT_ZONE_ID}/{path}")
    assert call.soft is (path == "invalidate_cache")
    assert call.tags == tuple(TAGS)


@pytest.mark.parametrize("soft_enabled", [True, False])
async def test_fastly_sends_the_soft_header_only_for_soft_purges(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient, soft_enabled: bool
) -> None:
    purger = FastlyPurger(http, fastly(fake_purge_api, soft=soft_enabled))
    await purger.purge(TAGS, PurgeMode.HARD)
    await purger.purge(TAGS, PurgeMode.SOFT)
    assert [c.soft for c in fake_purge_api.accepted("fastly")] == [False, soft_enabled]


async def test_fastly_purges_up_to_256_keys_per_request(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    purger = FastlyPurger(http, fastly(fake_purge_api, soft=True))
    assert purger.max_tags_per_request == 256
    keys = [f"bundle:k{i}" for i in range(256)]
    await purger.purge(keys, PurgeMode.SOFT)
    with pytest.raises(ValueError, match="at most 256"):
        await purger.purge([*keys, "one-more"])
    [call] = fake_purge_api.calls()
    assert (call.status, call.tags, call.soft) == (200, tuple(keys), True)


async def test_local_edge_soft_purge_sends_the_soft_flag(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    purger = LocalEdgePurger(http, fake_purge_api.url)
    await purger.purge(TAGS, PurgeMode.SOFT)
    await purger.purge(TAGS)
    assert [(c.status, c.soft) for c in fake_purge_api.calls()] == [(200, True), (200, False)]


@pytest.mark.parametrize(
    ("mode", "network", "soft_enabled", "action"),
    [
        (PurgeMode.HARD, "production", True, "delete"),
        (PurgeMode.SOFT, "production", True, "invalidate"),
        (PurgeMode.SOFT, "staging", True, "invalidate"),
        (PurgeMode.SOFT, "production", False, "delete"),
    ],
)
async def test_akamai_request_shape_and_signature(
    fake_purge_api: FakePurgeApi,
    http: httpx.AsyncClient,
    mode: PurgeMode,
    network: str,
    soft_enabled: bool,
    action: str,
) -> None:
    settings = akamai(fake_purge_api, network=network, soft_purge=soft_enabled)
    await AkamaiPurger(http, settings).purge(TAGS, mode)
    [call] = fake_purge_api.calls()
    assert call.status == 201, "the fake verified the EdgeGrid signature with the same secret"
    assert (call.api, call.path) == ("akamai", f"/ccu/v3/{action}/tag/{network}")
    assert call.headers["authorization"].startswith(
        f"EG1-HMAC-SHA256 client_token={DEFAULT_AKAMAI.client_token};"
    )
    assert call.tags == tuple(TAGS)
    assert call.soft is (action == "invalidate")


async def test_akamai_signature_with_another_secret_is_refused(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    purger = AkamaiPurger(http, akamai(fake_purge_api, secret="not-the-secret"))
    with pytest.raises(PurgeUnauthorized) as caught:
        await purger.purge(TAGS)
    assert (caught.value.status, caught.value.retriable) == (401, False)
    assert "signature" in caught.value.detail


async def test_akamai_signs_every_request_afresh(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    """A replayed or stale signature would be refused: each request has its own nonce, and a
    clock far off the API's is refused by it."""
    purger = AkamaiPurger(http, akamai(fake_purge_api))
    await purger.purge(TAGS)
    await purger.purge(TAGS)
    first, second = (c.headers["authorization"] for c in fake_purge_api.accepted("akamai"))
    assert first != second
    skewed = AkamaiPurger(http, akamai(fake_purge_api), clock=lambda: 1_000_000_000.0)
    with pytest.raises(PurgeUnauthorized, match="timestamp"):
        await skewed.purge(TAGS)


async def test_akamai_body_limits(fake_purge_api: FakePurgeApi, http: httpx.AsyncClient) -> None:
    """The most tags a request carries, each of the longest length a cache tag may have, fit
    the 50,000-byte body limit; a longer tag is refused on its own (parked, never retried)."""
    purger = AkamaiPurger(http, akamai(fake_purge_api))
    longest = [f"{i:04d}".ljust(128, "x") for i in range(AKAMAI_MAX_TAGS)]
    await purger.purge(longest, PurgeMode.SOFT)
    with pytest.raises(ValueError, match=f"at most {AKAMAI_MAX_TAGS}"):
        await purger.purge([*longest, "one-more"])
    with pytest.raises(PurgeRejected, match="128"):
        await purger.purge(["x" * 129])
    assert [(c.status, len(c.tags)) for c in fake_purge_api.calls()] == [(201, AKAMAI_MAX_TAGS)]


def every_purger(api: FakePurgeApi, http: httpx.AsyncClient) -> list[Purger]:
    return [
        CloudflarePurger(http, cloudflare(api)),
        FastlyPurger(http, fastly(api, soft=True)),
        LocalEdgePurger(http, api.url),
        AkamaiPurger(http, akamai(api)),
    ]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_retriable(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient, status: int
) -> None:
    for purger in every_purger(fake_purge_api, http):
        fake_purge_api.fail_next(1, status=status, retry_after=7)
        with pytest.raises(PurgeUnavailable) as caught:
            await purger.purge(TAGS)
        assert (caught.value.status, caught.value.retriable) == (status, True)
        assert caught.value.retry_after == 7.0, "Retry-After is read at the boundary"
        assert caught.value.__cause__ is None, "an HTTP answer, not a client exception"
        assert purger.name in str(caught.value)
        await purger.purge(TAGS)  # the injected failure was used up
    assert [c.status for c in fake_purge_api.calls()] == [status, 200] * 3 + [status, 201]


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_a_refused_tag_is_a_final_rejection_of_the_request(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient, status: int
) -> None:
    fake_purge_api.refuse_tags(TAGS[1], status=status)
    for purger in every_purger(fake_purge_api, http):
        with pytest.raises(PurgeRejected) as caught:
            await purger.purge(TAGS)
        assert (caught.value.status, caught.value.retriable) == (status, False)
        assert caught.value.reason == f"http_{status}"
        assert TAGS[1] in caught.value.detail, "the API's answer is kept for the operator"
        await purger.purge([TAGS[0], TAGS[2]])  # the other tags are fine on their own


async def test_wrong_credentials_are_final(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    for purger in (
        CloudflarePurger(http, cloudflare(fake_purge_api, token="wrong-token")),
        FastlyPurger(http, fastly(fake_purge_api, soft=False, key="wrong-key")),
    ):
        with pytest.raises(PurgeUnauthorized) as caught:
            await purger.purge(TAGS)
        assert (caught.value.status, caught.value.retriable) == (403, False)


async def test_a_purge_endpoint_that_does_not_exist_makes_the_purger_unusable(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    purger = LocalEdgePurger(http, fake_purge_api.url + "/not-the-edge")
    with pytest.raises(PurgerUnusable) as caught:
        await purger.purge(TAGS)
    assert (caught.value.status, caught.value.retriable) == (404, False)
    assert not isinstance(caught.value, PurgeRejected), "never split: every tag would be parked"


async def test_network_failure_is_retriable(http: httpx.AsyncClient) -> None:
    with FakePurgeApi() as api:
        url = api.url
    with pytest.raises(PurgeUnavailable) as caught:
        await LocalEdgePurger(http, url).purge(TAGS)
    assert caught.value.retriable is True
    assert caught.value.status is None
    assert caught.value.reason == "network"
    assert isinstance(caught.value.__cause__, httpx.ConnectError), "translated with from exc"


async def test_a_timeout_is_retriable() -> None:
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        async with httpx.AsyncClient(timeout=0.2) as client:
            with pytest.raises(PurgeUnavailable) as caught:
                await LocalEdgePurger(client, f"http://{host}:{port}").purge(TAGS)
    assert caught.value.retriable is True
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("3", 3.0),
        (" 120 ", 120.0),
        ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0),  # an HTTP date, 40 s after "now" (60 s)
        ("Thu, 01 Jan 1970 00:00:30 GMT", 0.0),  # already past
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, now=60.0) == expected


def test_every_purge_failure_shares_the_root() -> None:
    for kind in (PurgeUnavailable, PurgeRejected, PurgerUnusable, PurgeUnauthorized):
        assert issubclass(kind, PurgeFailed)
    assert [k.retriable for k in (PurgeUnavailable, PurgeRejected, PurgeUnauthorized)] == [
        True,
        False,
        False,
    ]


CF_PATH = f"/client/v4/zones/{DEFAULT_ZONE_ID}/purge_cache"
CF_AUTH = {"Authorization": f"Bearer {DEFAULT_CLOUDFLARE_TOKEN}"}
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("POST", CF_PATH, {**CF_AUTH, **JSON}, {"tags": []}, 400),
        ("POST", CF_PATH, {**CF_AUTH, **JSON}, {"tags": [f"t{i}" for i in range(101)]}, 400),
        ("POST", CF_PATH, {**CF_AUTH, **JSON}, {"files": ["https://x/y"]}, 400),
        ("POST", CF_PATH, {**CF_AUTH, **JSON}, {"tags": ["ok"], "hosts": ["x"]}, 400),
        ("POST", CF_PATH, {**CF_AUTH, **JSON}, {"tags": ["ok", ""]}, 400),
        ("POST", CF_PATH, {**CF_AUTH, **JSON}, {"tags": "ok"}, 400),
        ("POST", CF_PATH, {**CF_AUTH, "Content-Type": "text/plain"}, {"tags": ["ok"]}, 400),
        ("POST", CF_PATH, {"Authorization": "token", **JSON}, {"tags": ["ok"]}, 400),
        ("POST", CF_PATH, JSON, {"tags": ["ok"]}, 400),
        (
            "POST",
            "/client/v4/zones/not-a-zone/purge_cache",
            {**CF_AUTH, **JSON},
            {"tags": ["a"]},
            400,
        ),
        ("GET", CF_PATH, CF_AUTH, None, 400),
        ("POST", f"/service/{DEFAULT_FASTLY_SERVICE}/purge", {"Surrogate-Key": "a"}, None, 400),
        (
            "POST",
            f"/service/{DEFAULT_FASTLY_SERVICE}/purge",
            {"Fastly-Key": DEFAULT_FASTLY_KEY},
            None,
            400,
        ),
        (
            "POST",
            f"/service/{DEFAULT_FASTLY_SERVICE}/purge",
            {"Fastly-Key": DEFAULT_FASTLY_KEY, "Surrogate-Key": "a", "Fastly-Soft-Purge": "yes"},
            None,
            400,
        ),
        (
            "POST",
            f"/service/{DEFAULT_FASTLY_SERVICE}/purge",
            {"Fastly-Key": DEFAULT_FASTLY_KEY, "Surrogate-Key": " ".join(map(str, range(257)))},
            None,
            400,
        ),
        ("POST", "/se/purge", JSON, {"tags": [1, 2]}, 400),
        ("POST", "/se/purge", JSON, None, 400),
        ("POST", "/se/purge", {}, {"tags": ["a"]}, 400),
        ("POST", "/somewhere/else", JSON, {"tags": ["a"]}, 404),
    ],
    ids=[
        "cf-empty-tags",
        "cf-101-tags",
        "cf-other-purge-kind",
        "cf-extra-key",
        "cf-empty-tag",
        "cf-tags-not-list",
        "cf-content-type",
        "cf-not-bearer",
        "cf-no-auth",
        "cf-bad-zone",
        "cf-get",
        "fastly-no-key",
        "fastly-no-surrogate-key",
        "fastly-bad-soft",
        "fastly-257-keys",
        "edge-non-string-tags",
        "edge-no-body",
        "edge-no-content-type",
        "unknown-path",
    ],
)
async def test_fake_rejects_malformed_requests(
    fake_purge_api: FakePurgeApi,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: object,
    status: int,
) -> None:
    content = b"" if body is None else json.dumps(body).encode()
    response = await http.request(
        method, fake_purge_api.url + path, headers=headers, content=content
    )
    assert response.status_code == status, response.text
    [call] = fake_purge_api.calls()
    assert call.status == status
    assert not call.accepted


async def test_build_purgers_applies_cloudflare_overrides(
    fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    unconfigured = InvalidationSettings(purgers=("local-edge", "cloudflare", "fastly", "varnish"))
    assert [p.name for p, _ in build_purgers(unconfigured, http)] == ["local-edge"]
    settings = InvalidationSettings(
        purgers=("cloudflare", "local-edge"),
        cloudflare=CloudflareSettings(
            zone_id=DEFAULT_ZONE_ID,
            api_token=DEFAULT_CLOUDFLARE_TOKEN,
            plan="pro",
            api_base=fake_purge_api.cloudflare_api_base,
            rate_per_second=2.5,
            bucket_size=3,
        ),
    )
    (cf, cf_bucket), (edge, edge_bucket) = build_purgers(settings, http)
    assert (cf.name, edge.name, edge_bucket) == ("cloudflare", "local-edge", None)
    assert cf_bucket is not None
    assert cf_bucket.requests is not None
    assert (cf_bucket.requests.spec, cf_bucket.tags) == (BucketSpec(2.5, 3), None)
    plan_only = InvalidationSettings(purgers=("cloudflare",), cloudflare=cloudflare(fake_purge_api))
    [(_, plan_bucket)] = build_purgers(plan_only, http)
    assert plan_bucket is not None
    assert plan_bucket.requests is not None
    assert plan_bucket.requests.spec == CLOUDFLARE_PLANS["free"]
