"""The per-request flow, driven synchronously against an in-memory cache and a scripted origin."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from edge.cache import CacheEntry
from edge.config import EdgeConfig
from edge.errors import EffectReplyError
from edge.flow import (
    VISITOR_COOKIE_MAX_AGE,
    EdgeResponse,
    SlotRequest,
    drive_async,
    drive_sync,
    handle_slot,
    revalidate,
    with_server_timing,
)
from edge.memory import MemoryTransport
from edge.transport import (
    CacheRead,
    Effect,
    FetchResult,
    OriginFetch,
    SyncAsAsync,
)
from fragments.bundle import Bundle, encode_bundle
from fragments.experiment_codec import config_from_json
from fragments.ids import FragmentKey
from fragments.segment_cookie import sign_segment
from fragments.slots import CachePolicy
from fragments.wire_events import validate_event
from tests.edge.bundles import candidate, small_bundle

NOW = 1_700_000_000.0
SECRET = "flow-secret-0123456789"
FRESH_ID = "a" * 32
VISITOR = "0123456789abcdef0123456789abcdef"
HERO = FragmentKey("home-hero", "everyone")
POLICY = CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=3600)
CONFIG = EdgeConfig(
    fallbacks={"home-hero": "<p>safe default</p>", "pdp-cross-sell": ""},
    locales=("en-US", "de-DE"),
    segment_secret=SECRET,
)


def bundle_for(key: FragmentKey = HERO, *, version: int = 1, skus: str = "ABCD") -> Bundle:
    return small_bundle(
        [candidate(s, 1.0 - i / 10) for i, s in enumerate(skus)],
        key=key,
        policy=POLICY,
        version=version,
    )


@dataclass
class Harness:
    """The in-memory transport with a scripted origin; it records every effect."""

    origin: FetchResult | None = None
    transport: MemoryTransport = field(init=False)

    def __post_init__(self) -> None:
        self.transport = MemoryTransport(self._answer)

    def _answer(self, fetch: OriginFetch) -> FetchResult:
        assert self.origin is not None, f"unscripted origin fetch {fetch}"
        return self.origin

    @property
    def cache(self) -> dict[str, CacheEntry]:
        return self.transport.store.snapshot()

    @property
    def effects(self) -> list[Effect]:
        return self.transport.effects()

    def store(self, bundle: Bundle, age: float) -> CacheEntry:
        entry = CacheEntry(bundle, NOW - age)
        self.transport.store.put(entry)
        return entry

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.effects]

    def run(self, slot: str = "home-hero", cookie: str | None = None, **extra: Any) -> EdgeResponse:
        headers: dict[str, str] = dict(extra.pop("headers", {}))
        if cookie is not None:
            headers["cookie"] = cookie
        request = SlotRequest(
            slot=slot,
            headers=headers,
            query=extra.pop("query", {}),
            now=extra.pop("now", NOW),
            fresh_visitor_id=FRESH_ID,
        )
        assert not extra
        response, core_seconds = drive_sync(handle_slot(request, CONFIG), self.transport)
        assert core_seconds >= 0.0
        return response


def shown(response: EdgeResponse) -> list[str]:
    return re.findall(r'data-se-sku="([^"]+)"', response.body)


def header_map(response: EdgeResponse) -> Mapping[str, str]:
    return dict(response.headers)


def ok(bundle: Bundle) -> FetchResult:
    return FetchResult(200, encode_bundle(bundle))


def test_miss_fetches_stores_and_serves() -> None:
    h = Harness(origin=ok(bundle_for()))

    response = h.run()

    assert (response.status, response.cache_status, response.revalidate) == (200, "MISS", None)
    assert h.kinds() == ["CacheRead", "OriginFetch", "CacheWrite"]
    fetch = h.effects[1]
    assert isinstance(fetch, OriginFetch)
    assert fetch.path == HERO.bundle_path()
    assert fetch.if_none_match is None
    assert h.cache[HERO.cache_key] == CacheEntry(bundle_for(), NOW)
    assert shown(response) == ["A", "B", "C"]


def test_fresh_entry_is_a_hit_without_origin() -> None:
    h = Harness()
    h.store(bundle_for(), age=59.9)

    response = h.run()

    assert (response.status, response.cache_status, response.revalidate) == (200, "HIT", None)
    assert h.kinds() == ["CacheRead"]
    assert shown(response) == ["A", "B", "C"]


def test_stale_entry_is_served_and_names_the_key_to_revalidate() -> None:
    h = Harness()
    h.store(bundle_for(), age=60)

    response = h.run()

    assert (response.cache_status, response.revalidate) == ("STALE", HERO)
    assert h.kinds() == ["CacheRead"]
    assert shown(response) == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("origin", "outcome", "stored_at", "version"),
    [
        (FetchResult(304), "not-modified", NOW + 5, 1),
        (ok(bundle_for(version=2, skus="DCBA")), "updated", NOW + 5, 2),
        (FetchResult(0, error="ConnectTimeout"), "failed: ConnectTimeout", NOW - 60, 1),
        (FetchResult(503), "failed: 503", NOW - 60, 1),
        (FetchResult(200, b"<html>"), "failed: 200", NOW - 60, 1),
    ],
)
def test_background_revalidation(
    origin: FetchResult, outcome: str, stored_at: float, version: int
) -> None:
    h = Harness(origin=origin)
    old = h.store(bundle_for(), age=60)

    result, _ = drive_sync(revalidate(HERO, NOW + 5), h.transport)

    assert result == outcome
    fetch = h.effects[1]
    assert isinstance(fetch, OriginFetch)
    assert fetch.if_none_match == old.etag
    entry = h.cache[HERO.cache_key]
    assert (entry.stored_at, entry.bundle.version) == (stored_at, version)


def test_expired_entry_revalidates_with_if_none_match_and_304_refreshes_it() -> None:
    h = Harness(origin=FetchResult(304))
    old = h.store(bundle_for(), age=360)

    response = h.run()

    assert response.cache_status == "REVALIDATED"
    assert h.kinds() == ["CacheRead", "OriginFetch", "CacheWrite"]
    fetch = h.effects[1]
    assert isinstance(fetch, OriginFetch)
    assert fetch.if_none_match == old.etag
    assert h.cache[HERO.cache_key] == CacheEntry(old.bundle, NOW)
    assert shown(response) == ["A", "B", "C"]


def test_expired_entry_replaced_by_a_new_bundle_is_a_miss() -> None:
    h = Harness(origin=ok(bundle_for(version=2, skus="XYZ")))
    h.store(bundle_for(), age=360)

    response = h.run()

    assert response.cache_status == "MISS"
    assert shown(response) == ["X", "Y", "Z"]
    assert h.cache[HERO.cache_key].bundle.version == 2


@pytest.mark.parametrize(
    "origin",
    [FetchResult(0, error="ConnectError"), FetchResult(500), FetchResult(200, b"not a bundle")],
    ids=["no-answer", "500", "garbage"],
)
def test_origin_failure_serves_stale_within_stale_if_error(origin: FetchResult) -> None:
    h = Harness(origin=origin)
    h.store(bundle_for(), age=60 + 3600 - 1)

    response = h.run()

    assert (response.status, response.cache_status, response.revalidate) == (200, "STALE", None)
    assert h.kinds() == ["CacheRead", "OriginFetch"]  # nothing written
    assert shown(response) == ["A", "B", "C"]


def test_origin_failure_beyond_stale_if_error_serves_the_slots_safe_default() -> None:
    h = Harness(origin=FetchResult(0, error="ConnectError"))
    h.store(bundle_for(), age=60 + 3600)

    response = h.run()

    assert (response.status, response.cache_status, response.body) == (
        200, "FALLBACK", "<p>safe default</p>",
    )  # fmt: skip


@pytest.mark.parametrize(
    "origin", [FetchResult(0, error="timeout"), FetchResult(404), FetchResult(304)]
)
def test_miss_with_origin_failure_serves_the_safe_default(origin: FetchResult) -> None:
    h = Harness(origin=origin)

    response = h.run()

    assert (response.status, response.cache_status, response.body) == (
        200, "FALLBACK", "<p>safe default</p>",
    )  # fmt: skip
    assert h.kinds() == ["CacheRead", "OriginFetch"]


def test_a_slot_without_safe_default_is_an_empty_200() -> None:
    h = Harness(origin=FetchResult(0, error="timeout"))

    response = h.run("pdp-cross-sell")

    assert (response.status, response.cache_status, response.body) == (200, "FALLBACK", "")


def test_unknown_slot_is_404_without_any_effect() -> None:
    h = Harness()

    response = h.run("no-such-slot")

    assert (response.status, response.body, response.cache_status) == (404, "", "FALLBACK")
    assert h.effects == []


def test_a_bundle_with_nothing_to_show_serves_its_fallback() -> None:
    bundle = small_bundle(
        [candidate("A", 1.0, stock="sold_out")], key=HERO, fallback_html="<p>bundle fb</p>"
    )
    h = Harness()
    h.store(bundle, age=0)

    response = h.run()

    assert (response.cache_status, response.body) == ("HIT", "<p>bundle fb</p>")


def test_response_headers_are_private_and_name_cache_status_and_variant() -> None:
    h = Harness()
    h.store(bundle_for(), age=0)

    response = h.run(cookie=f"se_vid={VISITOR}")

    assert response.headers == (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "private, no-store"),
        ("X-Shelfedge-Cache", "HIT"),
        ("X-Shelfedge-Variant", "control"),
    )
    assert response.variant == "control"
    timed = with_server_timing(response, 0.0012345)
    assert timed[:-1] == list(response.headers)
    assert timed[-1] == ("Server-Timing", "edge;dur=1.234")


@pytest.mark.parametrize("cookie", [None, "se_vid=not-an-id", f"se_vid={VISITOR.upper()}"])
def test_visitor_cookie_set_only_when_absent_or_invalid(cookie: str | None) -> None:
    h = Harness()
    h.store(bundle_for(), age=0)

    response = h.run(cookie=cookie)

    assert header_map(response)["Set-Cookie"] == (
        f"se_vid={FRESH_ID}; Max-Age={VISITOR_COOKIE_MAX_AGE}; Path=/; HttpOnly; Secure; "
        "SameSite=Lax"
    )
    assert response.context is not None
    assert response.context.visitor_id == FRESH_ID


def test_visitor_cookie_also_set_on_fallback_and_404() -> None:
    h = Harness(origin=FetchResult(0, error="x"))
    assert "Set-Cookie" in header_map(h.run())
    assert "Set-Cookie" in header_map(h.run("nope"))
    assert "Set-Cookie" not in header_map(h.run("nope", cookie=f"se_vid={VISITOR}"))


@pytest.mark.parametrize(
    ("query", "headers", "locale"),
    [
        ({}, {}, "en-US"),
        ({"locale": "de-DE"}, {}, "de-DE"),
        ({"locale": "fr-FR"}, {}, "en-US"),
        ({}, {"accept-language": "de-DE,de;q=0.9,en;q=0.5"}, "de-DE"),
        ({}, {"accept-language": "de"}, "de-DE"),
        ({}, {"accept-language": "fr-CH, fr;q=0.9"}, "en-US"),
        ({"locale": "en-US"}, {"accept-language": "de-DE"}, "en-US"),
    ],
)
def test_locale_selects_the_cache_key(
    query: dict[str, str], headers: dict[str, str], locale: str
) -> None:
    key = FragmentKey("home-hero", "everyone", "control", locale)
    h = Harness(origin=ok(bundle_for(key)))

    h.run(query=query, headers=headers)

    read = h.effects[0]
    assert isinstance(read, CacheRead)
    assert read.key == key


def test_verified_segment_selects_the_cache_key_and_bad_ones_fall_back() -> None:
    tech = FragmentKey("home-hero", "tech-enthusiasts")
    valid = sign_segment("tech-enthusiasts", int(NOW) + 60, SECRET, VISITOR)
    h = Harness()
    h.store(bundle_for(tech, skus="TUV"), age=0)
    h.store(bundle_for(HERO, skus="ABC"), age=0)

    assert shown(h.run(cookie=f"se_vid={VISITOR}; se_seg={valid}")) == ["T", "U", "V"]
    assert shown(h.run(cookie=f"se_vid={VISITOR}; se_seg={valid[:-3]}zzz")) == ["A", "B", "C"]
    assert shown(h.run(cookie=f"se_vid={'e' * 32}; se_seg={valid}")) == ["A", "B", "C"]


def test_consent_changes_the_ranking_not_the_cache_key() -> None:
    h = Harness()
    h.store(bundle_for(skus="ABCD"), age=0)

    anonymous = h.run(cookie="se_cart=A|B")
    personal = h.run(cookie="se_consent=1; se_cart=A|B")

    assert shown(anonymous) == ["A", "B", "C"]
    assert shown(personal) == ["C", "D"]
    reads = [e for e in h.effects if isinstance(e, CacheRead)]
    assert {r.key for r in reads} == {HERO}


async def test_drive_async_gives_the_same_response() -> None:
    sync_h, async_h = Harness(origin=ok(bundle_for())), Harness(origin=ok(bundle_for()))
    request = SlotRequest("home-hero", {}, {}, NOW, FRESH_ID)

    expected, _ = drive_sync(handle_slot(request, CONFIG), sync_h.transport)
    actual, core_seconds = await drive_async(
        handle_slot(request, CONFIG), Yielding(async_h.transport)
    )

    assert actual == expected
    assert core_seconds >= 0.0
    assert async_h.kinds() == sync_h.kinds()


class Yielding(SyncAsAsync):
    """The async view of a memory transport that yields to the event loop on every effect."""

    async def cache_read(self, key: FragmentKey) -> CacheEntry | None:
        await asyncio.sleep(0)
        return await super().cache_read(key)

    async def cache_write(self, entry: CacheEntry) -> None:
        await asyncio.sleep(0)
        await super().cache_write(entry)

    async def origin_fetch(self, fetch: OriginFetch) -> FetchResult:
        await asyncio.sleep(0)
        return await super().origin_fetch(fetch)


class WrongReplies:
    """A broken transport: the cache answers with the origin's reply type."""

    def cache_read(self, key: FragmentKey) -> Any:
        return FetchResult(200)

    def cache_write(self, entry: CacheEntry) -> None:
        return None

    def origin_fetch(self, fetch: OriginFetch) -> FetchResult:
        return FetchResult(0)


def test_a_wrong_reply_type_is_named_not_misread() -> None:
    request = SlotRequest("home-hero", {}, {}, NOW, FRESH_ID)

    with pytest.raises(EffectReplyError, match=r"CacheRead.*needs CacheEntry \| None"):
        drive_sync(handle_slot(request, CONFIG), WrongReplies())


def test_exposure_events_are_valid_wire_events() -> None:
    h = Harness()
    h.store(bundle_for(), age=0)
    experiment = {
        "key": "hero", "name": "Hero", "status": "running", "slots": ["home-hero"],
        "bucket_version": 0, "coverage": 1.0, "hash_seed": "", "hash_version": 2,
        "holdout": 0.0, "namespace": None, "starts_at": None, "ends_at": None, "version": 1,
        "targeting": {"conditions": [], "countries": [], "devices": [], "path_patterns": [],
                      "segments": []},
        "variants": [
            {"changes": {}, "id": "control", "name": "Control", "weight": 0.5},
            {"changes": {"shown": 2}, "id": "compact", "name": "Compact", "weight": 0.5},
        ],
    }  # fmt: skip
    experiments = config_from_json(json.dumps({"version": 1, "experiments": [experiment]}))
    cookie = f"se_consent=1; se_vid={VISITOR}"
    request = SlotRequest("home-hero", {"cookie": cookie}, {}, NOW, FRESH_ID)

    response, _ = drive_sync(
        handle_slot(request, replace(CONFIG, experiments=experiments)), h.transport
    )

    assert response.exposure is not None
    event = response.exposure.to_event("evt-00000001")
    assert validate_event(json.loads(event.to_json()), NOW) == event
    assert (event.type, event.experiment, event.visitor, event.slot) == (
        "exposure", "hero", VISITOR, "home-hero",
    )  # fmt: skip
    shown = h.cache[HERO.cache_key].bundle
    assert (event.bundle_version, event.content_hash) == (shown.version, shown.content_hash)
