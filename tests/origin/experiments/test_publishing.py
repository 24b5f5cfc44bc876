"""Publishing to the edge: immutable config versions, the edge-config endpoint and its cache
headers, rollback, preview tokens, and the variant bundles built before a version goes live."""

from __future__ import annotations

import time
from typing import Any

import httpx

from fragments.bundle import decode_bundle
from fragments.experiment_codec import config_from_json
from fragments.ids import FragmentKey
from fragments.preview_tokens import verify_preview
from fragments.slots import load_slots
from origin.core.redis_client import RedisLike
from origin.core.store import Store
from tests.origin.experiments.support import EDITOR, VIEWER, hero_experiment, if_match

CACHE_CONTROL = "private, max-age=5, stale-while-revalidate=30"


async def edge_config(api: httpx.AsyncClient) -> tuple[httpx.Response, Any]:
    response = await api.get("/v1/edge-config")
    assert response.status_code == 200, response.text
    return response, config_from_json(response.content)


async def started(api: httpx.AsyncClient, key: str = "hero", **overrides: Any) -> None:
    created = await api.post(
        "/v1/experiments", json=hero_experiment(key, **overrides), headers=EDITOR
    )
    assert created.status_code == 201, created.text
    start = await api.post(f"/v1/experiments/{key}/start", headers=if_match(1))
    assert start.status_code == 200, start.text


async def test_nothing_published_is_an_empty_version_zero(api: httpx.AsyncClient) -> None:
    response, config = await edge_config(api)
    assert response.headers["etag"] == '"0"'
    assert response.headers["cache-control"] == CACHE_CONTROL
    assert (config.version, config.experiments, config.preview_secret_hash) == (0, (), "")


async def test_start_publishes_a_version_served_with_etag_and_short_caching(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/v1/experiments", json=hero_experiment("draft-only"), headers=EDITOR)
    await started(api)
    response, config = await edge_config(api)
    not_modified = await api.get("/v1/edge-config", headers={"If-None-Match": '"1"'})

    assert response.headers["etag"] == '"1"'
    assert response.headers["cache-control"] == CACHE_CONTROL
    assert response.headers["content-type"] == "application/vnd.shelfedge.edge-config+json"
    assert config.version == 1
    assert [(e.key, e.status) for e in config.experiments] == [("hero", "running")]
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == '"1"'


async def test_draft_edits_publish_nothing_live_edits_publish(api: httpx.AsyncClient) -> None:
    await api.post("/v1/experiments", json=hero_experiment(), headers=EDITOR)
    await api.put("/v1/experiments/hero", json=hero_experiment(name="x"), headers=if_match(1))
    assert (await edge_config(api))[1].version == 0

    await api.post("/v1/experiments/hero/start", headers=if_match(2))
    edit = await api.put(
        "/v1/experiments/hero",
        json=hero_experiment(name="y", status="running"),
        headers=if_match(3),
    )
    paused = await api.post("/v1/experiments/hero/pause", headers=if_match(4))
    _, config = await edge_config(api)

    assert edit.json()["published_config_version"] == 2
    assert paused.json()["published_config_version"] == 3
    assert (config.version, config.experiments[0].name, config.experiments[0].status) == (
        3, "y", "paused",
    )  # fmt: skip


async def test_versions_are_kept_listed_and_readable(api: httpx.AsyncClient) -> None:
    await started(api)
    explicit = await api.post("/v1/experiments/publish", headers=EDITOR)
    listing = (await api.get("/v1/edge-config/versions", headers=VIEWER)).json()
    one = await api.get("/v1/edge-config/versions/1", headers=VIEWER)
    missing = await api.get("/v1/edge-config/versions/99", headers=VIEWER)

    assert explicit.status_code == 201
    assert explicit.json()["version"] == 2
    assert listing["current"] == 2
    assert [(v["version"], v["reason"], v["who"]) for v in listing["versions"]] == [
        (2, "publish", "alice"),
        (1, "start hero", "alice"),
    ]
    assert config_from_json(one.content).version == 1
    assert missing.status_code == 404


async def test_rollback_makes_an_old_version_current_as_a_new_number(
    api: httpx.AsyncClient,
) -> None:
    await started(api)
    await api.post("/v1/experiments/hero/stop", headers=if_match(2))
    rolled = await api.post("/v1/edge-config/rollback/1", headers=EDITOR)
    unknown = await api.post("/v1/edge-config/rollback/42", headers=EDITOR)
    malformed = await api.post("/v1/edge-config/rollback/first", headers=EDITOR)
    response, config = await edge_config(api)

    assert rolled.status_code == 201
    assert rolled.json()["reason"] == "rollback to 1"
    assert response.headers["etag"] == '"3"'
    assert config.version == 3
    assert config.experiments[0].status == "running"
    assert unknown.status_code == 404
    assert malformed.status_code == 422


async def test_preview_link_token_hash_is_published_and_rotatable(api: httpx.AsyncClient) -> None:
    await started(api)
    link = await api.post("/v1/experiments/hero/preview-link?variant=compact", headers=EDITOR)
    again = await api.post("/v1/experiments/hero/preview-link?variant=control", headers=EDITOR)
    _, config = await edge_config(api)
    token = link.json()["url"].split("sx_token=")[1]
    grant = verify_preview(token, config.preview_secret_hash, time.time())
    rotated = await api.post("/v1/edge-config/preview-token", headers=EDITOR)
    _, after = await edge_config(api)
    unknown_variant = await api.post("/v1/experiments/hero/preview-link?variant=zz", headers=EDITOR)
    no_variant = await api.post("/v1/experiments/hero/preview-link", headers=EDITOR)

    assert link.status_code == 200
    assert link.json()["url"] == (
        f"http://edge.test/se/slot/home-hero?sx_hero=compact&sx_token={token}"
    )
    assert link.json()["config_version"] == 2
    assert again.json()["config_version"] == 2  # the token is reused, nothing republished
    assert grant is not None
    assert (grant.experiment, grant.variant) == ("hero", "compact")
    assert grant.expires == link.json()["expires"]
    assert link.json()["exchange_url"].startswith("http://edge.test/se/preview?code=")
    assert verify_preview(token, after.preview_secret_hash, time.time()) is None  # rotated
    assert rotated.status_code == 201
    assert after.version == 3
    assert after.preview_secret_hash not in ("", config.preview_secret_hash)
    assert unknown_variant.status_code == 404  # documented: an unknown variant is not found
    assert "compact" in unknown_variant.json()["invalid_params"][0]["reason"]
    assert no_variant.status_code == 422


async def test_variant_bundles_exist_before_the_config_goes_live(
    api: httpx.AsyncClient, seeded: RedisLike
) -> None:
    await started(api)
    slots = load_slots()
    segments = [s.id for s in await Store(seeded).segments()]
    for segment in segments:
        for locale in slots.locales:
            control = FragmentKey("home-hero", segment, "control", locale)
            compact = FragmentKey("home-hero", segment, "compact", locale)
            got = await api.get(compact.bundle_path())
            assert got.status_code == 200, compact.cache_key
            base = decode_bundle((await api.get(control.bundle_path())).content)
            bundle = decode_bundle(got.content)
            assert all("se-card--compact" in c.card_html for c in bundle.candidates)
            assert not any("se-card--compact" in c.card_html for c in base.candidates)
            assert 'data-variant="compact"' in bundle.head_html
    # Only the experiment's slots get variant bundles.
    other = FragmentKey("pdp-cross-sell", segments[0], "compact")
    assert (await api.get(other.bundle_path())).status_code == 404


async def test_a_scoring_variant_ranks_its_own_list(api: httpx.AsyncClient) -> None:
    await started(api)
    control = decode_bundle(
        (await api.get(FragmentKey("home-hero", "everyone").bundle_path())).content
    )
    compact = decode_bundle(
        (await api.get(FragmentKey("home-hero", "everyone", "compact").bundle_path())).content
    )
    assert [c.sku for c in control.candidates] != [c.sku for c in compact.candidates]
    assert {c.sku for c in compact.candidates} & {c.sku for c in control.candidates}


async def test_a_rerank_only_variant_gets_a_bundle_key_of_its_own(api: httpx.AsyncClient) -> None:
    variants = [
        {"id": "control", "weight": 0.5},
        {"id": "fewer", "weight": 0.5, "changes": {"shown": 4, "recency_boost": 2.0}},
    ]
    await started(api, "rerank", variants=variants)
    control = decode_bundle(
        (await api.get(FragmentKey("home-hero", "everyone").bundle_path())).content
    )
    fewer = await api.get(FragmentKey("home-hero", "everyone", "fewer").bundle_path())

    assert fewer.status_code == 200
    assert [c.sku for c in decode_bundle(fewer.content).candidates] == [
        c.sku for c in control.candidates
    ]


async def test_a_one_time_preview_code_is_exchanged_once_by_the_edge(
    api: httpx.AsyncClient,
) -> None:
    await started(api)
    link = (
        await api.post("/v1/experiments/hero/preview-link?variant=compact", headers=EDITOR)
    ).json()
    code = link["exchange_url"].split("code=")[1].split("&")[0]

    first = await api.post("/v1/preview/exchange", json={"code": code}, headers=EDITOR)
    again = await api.post("/v1/preview/exchange", json={"code": code}, headers=EDITOR)
    garbage = await api.post("/v1/preview/exchange", json={"code": "x"}, headers=EDITOR)

    assert first.status_code == 200
    assert first.json()["token"] == link["url"].split("sx_token=")[1]
    assert again.status_code == 404
    assert garbage.status_code == 422


async def test_preview_links_expire_within_the_chosen_ttl(api: httpx.AsyncClient) -> None:
    await started(api)
    before = time.time()
    link = await api.post(
        "/v1/experiments/hero/preview-link?variant=compact&ttl=120", headers=EDITOR
    )
    too_long = await api.post(
        "/v1/experiments/hero/preview-link?variant=compact&ttl=9999999", headers=EDITOR
    )

    assert before + 119 <= link.json()["expires"] <= time.time() + 121
    assert too_long.status_code == 422
