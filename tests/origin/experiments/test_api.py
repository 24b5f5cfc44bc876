"""The experiment config API against the real origin and Redis: auth, CRUD with ETags, every
validation error, optimistic concurrency, the lifecycle and the audit log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from tests.origin.experiments.support import (
    EDITOR,
    EDITOR_TOKEN,
    VIEWER,
    VIEWER_TOKEN,
    hero_experiment,
    if_match,
)


async def create(api: httpx.AsyncClient, doc: dict[str, Any] | None = None) -> httpx.Response:
    response = await api.post("/v1/experiments", json=doc or hero_experiment(), headers=EDITOR)
    assert response.status_code == 201, response.text
    return response


def invalid_names(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/problem+json"
    return {p["name"]: p["reason"] for p in response.json()["invalid_params"]}


# --- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/experiments"),
        ("PUT", "/v1/experiments/hero"),
        ("POST", "/v1/experiments/hero/start"),
        ("POST", "/v1/experiments/hero/pause"),
        ("POST", "/v1/experiments/hero/stop"),
        ("POST", "/v1/experiments/publish"),
        ("POST", "/v1/experiments/hero/preview-link?variant=compact"),
        ("POST", "/v1/edge-config/rollback/1"),
        ("POST", "/v1/edge-config/preview-token"),
    ],
)
async def test_writes_need_an_editor(api: httpx.AsyncClient, method: str, path: str) -> None:
    await create(api)
    anonymous = await api.request(method, path, json=hero_experiment())
    unknown = await api.request(
        method, path, json=hero_experiment(), headers={"Authorization": "Bearer nope-nope-nope"}
    )
    viewer = await api.request(method, path, json=hero_experiment(), headers=VIEWER)

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert unknown.status_code == 401
    assert viewer.status_code == 403
    assert "victor is a viewer" in viewer.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/experiments",
        "/v1/experiments/hero",
        "/v1/experiments/hero/audit",
        "/v1/experiments/hero/results",
        "/v1/edge-config/versions",
    ],
)
async def test_reads_need_a_viewer(api: httpx.AsyncClient, path: str) -> None:
    await create(api)
    assert (await api.get(path)).status_code == 401
    assert (await api.get(path, headers=VIEWER)).status_code == 200
    assert (await api.get(path, headers=EDITOR)).status_code == 200


async def test_edge_config_needs_no_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/edge-config")).status_code == 200


async def test_tokens_never_reach_the_logs(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await create(api)
    await api.get("/v1/experiments/hero", headers=VIEWER)
    await api.post("/v1/experiments/hero/start", headers=if_match(1))
    await api.post("/v1/experiments/hero/start", headers=if_match(1))  # 412
    await api.put("/v1/experiments/hero", json={"key": 1}, headers=if_match(2))  # 422
    await api.post("/v1/experiments", json=hero_experiment(), headers=VIEWER)  # 403
    await api.post("/v1/experiments", headers={"Authorization": "Bearer " + EDITOR_TOKEN[:-1]})
    await api.post("/v1/experiments/publish", headers=EDITOR)
    problems = (await api.post("/v1/experiments", headers={"Authorization": "Basic x"})).text

    assert caplog.records, "the test must capture something to be meaningful"
    for token in (EDITOR_TOKEN, VIEWER_TOKEN, EDITOR_TOKEN[:-1]):
        assert token not in caplog.text
        assert token not in problems


# --- create / read ------------------------------------------------------------------------------


async def test_create_then_get_with_etag(api: httpx.AsyncClient) -> None:
    created = await create(api)
    got = await api.get("/v1/experiments/hero", headers=VIEWER)
    unchanged = await api.get(
        "/v1/experiments/hero", headers={**VIEWER, "If-None-Match": got.headers["etag"]}
    )
    listed = await api.get("/v1/experiments", headers=VIEWER)

    assert created.headers["location"] == "/v1/experiments/hero"
    assert created.headers["etag"] == got.headers["etag"] == '"1"'
    assert got.json()["status"] == "draft"
    assert got.json()["variants"][1]["changes"]["card_template"] == "card_compact.html.j2"
    assert unchanged.status_code == 304
    assert [e["key"] for e in listed.json()["experiments"]] == ["hero"]
    assert created.json()["published_config_version"] is None


async def test_create_twice_is_a_conflict(api: httpx.AsyncClient) -> None:
    await create(api)
    again = await api.post("/v1/experiments", json=hero_experiment(), headers=EDITOR)
    assert again.status_code == 409


async def test_unknown_experiment_is_404(api: httpx.AsyncClient) -> None:
    for response in (
        await api.get("/v1/experiments/nope", headers=VIEWER),
        await api.put("/v1/experiments/nope", json=hero_experiment("nope"), headers=if_match(1)),
        await api.post("/v1/experiments/nope/start", headers=if_match(1)),
        await api.get("/v1/experiments/nope/audit", headers=VIEWER),
        await api.get("/v1/experiments/nope/results", headers=VIEWER),
    ):
        assert response.status_code == 404
        assert invalid_names(response) == {"experiment": "does not exist"}


# --- validation: every error names its field and the fix -------------------------------------

VARIANTS_OK = hero_experiment()["variants"]
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("bad key", {"key": "Bad Key!"}, "key", "a-z"),
    ("reserved key", {"key": "publish"}, "key", "reserved"),
    ("empty name", {"name": " "}, "name", "give the experiment a name"),
    ("no slots", {"slots": []}, "slots", "at least one slot"),
    ("unknown slot", {"slots": ["nope"]}, "slots", "choose from home-hero"),
    ("unknown segment", {"targeting": {"segments": ["ghosts"]}}, "targeting.segments", "everyone"),
    ("one variant", {"variants": VARIANTS_OK[:1]}, "variants", "at least two"),
    (
        "control not first",
        {"variants": [VARIANTS_OK[1], VARIANTS_OK[0]]},
        "variants[0].id",
        "must be 'control'",
    ),
    (
        "weights sum",
        {"variants": [{**VARIANTS_OK[0], "weight": 0.2}, VARIANTS_OK[1]]},
        "variants.weight",
        "sum to 1",
    ),
    (
        "negative weight",
        {"variants": [{**VARIANTS_OK[0], "weight": 1.5}, {**VARIANTS_OK[1], "weight": -0.5}]},
        "variants[1].weight",
        "negative",
    ),
    (
        "duplicate ids",
        {"variants": [VARIANTS_OK[0], {**VARIANTS_OK[1], "id": "control"}]},
        "variants",
        "unique",
    ),
    (
        "bad variant id",
        {"variants": [VARIANTS_OK[0], {**VARIANTS_OK[1], "id": "B B"}]},
        "variants[1].id",
        "a-z",
    ),
    (
        "unknown template",
        {"variants": [VARIANTS_OK[0], {**VARIANTS_OK[1], "changes": {"card_template": "x.j2"}}]},
        "variants[1].changes.card_template",
        "choose from",
    ),
    (
        "card template as wrapper",
        {
            "variants": [
                VARIANTS_OK[0],
                {**VARIANTS_OK[1], "changes": {"wrapper_template": "card.html.j2"}},
            ]
        },
        "variants[1].changes.wrapper_template",
        "choose a wrapper template",
    ),
    (
        "unknown scoring weight",
        {"variants": [VARIANTS_OK[0], {**VARIANTS_OK[1], "changes": {"scoring": {"luck": 1}}}]},
        "variants[1].changes.scoring.luck",
        "affinity, popularity, margin",
    ),
    (
        "scoring out of range",
        {
            "variants": [
                VARIANTS_OK[0],
                {**VARIANTS_OK[1], "changes": {"scoring": {"margin": 11}}},
            ]
        },
        "variants[1].changes.scoring.margin",
        "between 0 and 10",
    ),
    (
        "shown out of range",
        {"variants": [VARIANTS_OK[0], {**VARIANTS_OK[1], "changes": {"shown": 0}}]},
        "variants[1].changes.shown",
        "between 1 and 100",
    ),
    (
        "price floor out of range",
        {"variants": [VARIANTS_OK[0], {**VARIANTS_OK[1], "changes": {"price_floor": 2}}]},
        "variants[1].changes.price_floor",
        "between 0 and 1",
    ),
    (
        "recency boost out of range",
        {"variants": [VARIANTS_OK[0], {**VARIANTS_OK[1], "changes": {"recency_boost": -1}}]},
        "variants[1].changes.recency_boost",
        "between 0 and 10",
    ),
    (
        "control with changes",
        {"variants": [{**VARIANTS_OK[0], "changes": {"shown": 3}}, VARIANTS_OK[1]]},
        "variants[0].changes",
        "challenger",
    ),
    ("coverage", {"coverage": 1.5}, "coverage", "between 0 and 1"),
    ("holdout", {"holdout": 1}, "holdout", "below 1"),
    ("hash version", {"hash_version": 3}, "hash_version", "1 or 2"),
    ("window", {"starts_at": 200, "ends_at": 100}, "ends_at", "after the start"),
    ("namespace range", {"namespace": {"id": "n", "start": 0.6, "end": 0.2}}, "namespace", "<"),
    (
        "condition",
        {"targeting": {"conditions": [{"attribute": "shoe", "op": "eq", "value": 1}]}},
        "targeting.conditions[0]",
        "attribute must be one of",
    ),
    ("status on create", {"status": "running"}, "status", "drafts"),
    ("type of slots", {"slots": "home-hero"}, "slots", "list of strings"),
    ("type of coverage", {"coverage": "all"}, "coverage", "number"),
    (
        "missing weight",
        {"variants": [{"id": "control"}, VARIANTS_OK[1]]},
        "variants[0].weight",
        "number",
    ),
]


@pytest.mark.parametrize(("case", "patch", "field", "fix"), INVALID, ids=[c[0] for c in INVALID])
async def test_every_validation_error_names_field_and_fix(
    api: httpx.AsyncClient, case: str, patch: dict[str, Any], field: str, fix: str
) -> None:
    response = await api.post("/v1/experiments", json=hero_experiment(**patch), headers=EDITOR)

    assert response.status_code == 422, response.text
    names = invalid_names(response)
    assert field in names, names
    assert fix in names[field]


async def test_overlapping_namespace_and_shared_variant_id_name_the_other_experiment(
    api: httpx.AsyncClient,
) -> None:
    ns = {"id": "hero-ns", "start": 0.0, "end": 0.5}
    first = await create(api, hero_experiment("first", namespace=ns))
    await api.post("/v1/experiments/first/start", headers=if_match(1))
    overlapping = await api.post(
        "/v1/experiments",
        json=hero_experiment("second", namespace={**ns, "start": 0.4, "end": 0.9}),
        headers=EDITOR,
    )

    assert first.status_code == 201
    names = invalid_names(overlapping)
    assert "overlaps experiment 'first'" in names["namespace"]
    assert "already used by experiment 'first'" in names["variants[1].id"]


async def test_malformed_bodies(api: httpx.AsyncClient) -> None:
    not_json = await api.post("/v1/experiments", content=b"{", headers=EDITOR)
    array = await api.post("/v1/experiments", json=[1], headers=EDITOR)
    huge = await api.post("/v1/experiments", content=b" " * 70_000, headers=EDITOR)

    assert not_json.status_code == 400
    assert array.status_code == 422
    assert invalid_names(array) == {"body": "send a JSON object describing the experiment"}
    assert huge.status_code == 413


# --- updates, If-Match and concurrency ---------------------------------------------------------


async def test_update_needs_if_match(api: httpx.AsyncClient) -> None:
    await create(api)
    missing = await api.put("/v1/experiments/hero", json=hero_experiment(), headers=EDITOR)
    star = await api.put(
        "/v1/experiments/hero", json=hero_experiment(), headers={**EDITOR, "If-Match": "*"}
    )
    malformed = await api.put(
        "/v1/experiments/hero", json=hero_experiment(), headers={**EDITOR, "If-Match": '"v1"'}
    )
    missing_on_start = await api.post("/v1/experiments/hero/start", headers=EDITOR)

    assert missing.status_code == star.status_code == missing_on_start.status_code == 428
    assert "If-Match" in invalid_names(missing)
    assert malformed.status_code == 400


async def test_update_with_the_current_version_then_a_stale_one(api: httpx.AsyncClient) -> None:
    await create(api)
    renamed = await api.put(
        "/v1/experiments/hero", json=hero_experiment(name="Renamed"), headers=if_match(1)
    )
    stale = await api.put(
        "/v1/experiments/hero", json=hero_experiment(name="Lost"), headers=if_match(1)
    )

    assert renamed.status_code == 200
    assert renamed.headers["etag"] == '"2"'
    assert renamed.json()["name"] == "Renamed"
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert stale.headers["etag"] == '"2"'
    assert "current version is 2" in invalid_names(stale)["If-Match"]
    assert (await api.get("/v1/experiments/hero", headers=VIEWER)).json()["name"] == "Renamed"


async def test_two_concurrent_puts_with_the_same_if_match_one_wins(api: httpx.AsyncClient) -> None:
    await create(api)
    await api.post("/v1/experiments/hero/start", headers=if_match(1))  # publishing edits

    for round_ in range(5):
        current = int((await api.get("/v1/experiments/hero", headers=VIEWER)).headers["etag"][1:-1])
        responses = await asyncio.gather(
            *(
                api.put(
                    "/v1/experiments/hero",
                    json=hero_experiment(name=f"edit {round_}-{i}", status="running"),
                    headers=if_match(current),
                )
                for i in range(2)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 412], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200)
        stored = (await api.get("/v1/experiments/hero", headers=VIEWER)).json()
        assert stored["name"] == winner.json()["name"]
        assert stored["version"] == current + 1


async def test_update_cannot_change_key_or_status(api: httpx.AsyncClient) -> None:
    await create(api)
    response = await api.put(
        "/v1/experiments/hero", json=hero_experiment("other", status="running"), headers=if_match(1)
    )
    names = invalid_names(response)
    assert "cannot be renamed" in names["key"]
    assert "/start" in names["status"]


# --- lifecycle and audit -----------------------------------------------------------------------


async def test_lifecycle_and_disallowed_transitions(api: httpx.AsyncClient) -> None:
    await create(api)
    pause_draft = await api.post("/v1/experiments/hero/pause", headers=if_match(1))
    started = await api.post("/v1/experiments/hero/start", headers=if_match(1))
    paused = await api.post("/v1/experiments/hero/pause", headers=if_match(2))
    resumed = await api.post("/v1/experiments/hero/start", headers=if_match(3))
    stopped = await api.post("/v1/experiments/hero/stop", headers=if_match(4))
    restart = await api.post("/v1/experiments/hero/start", headers=if_match(5))

    assert pause_draft.status_code == 409
    assert [r.json()["status"] for r in (started, paused, resumed, stopped)] == [
        "running", "paused", "running", "stopped",
    ]  # fmt: skip
    assert [r.json()["published_config_version"] for r in (started, paused, resumed, stopped)] == [
        1, 2, 3, 4,
    ]  # fmt: skip
    assert restart.status_code == 409
    assert "while it is stopped" in restart.json()["detail"]


async def test_audit_log_records_who_when_and_the_changed_fields(api: httpx.AsyncClient) -> None:
    await create(api)
    await api.put(
        "/v1/experiments/hero",
        json=hero_experiment(name="Renamed", coverage=0.5),
        headers=if_match(1),
    )
    await api.post("/v1/experiments/hero/start", headers=if_match(2))
    entries = (await api.get("/v1/experiments/hero/audit", headers=VIEWER)).json()["entries"]
    limited = await api.get("/v1/experiments/hero/audit?limit=1", headers=VIEWER)
    bad_limit = await api.get("/v1/experiments/hero/audit?limit=0", headers=VIEWER)

    assert [e["action"] for e in entries] == ["start", "update", "create"]
    assert {e["who"] for e in entries} == {"alice"}
    assert {e["role"] for e in entries} == {"editor"}
    assert entries[0]["changes"] == {"status": {"from": "draft", "to": "running"}}
    assert entries[0]["config_version"] == 1
    assert entries[1]["changes"] == {
        "name": {"from": "Hero layout", "to": "Renamed"},
        "coverage": {"from": 1.0, "to": 0.5},
    }
    assert entries[1]["config_version"] is None  # draft edits publish nothing
    assert entries[2]["changes"]["key"] == {"from": None, "to": "hero"}
    assert entries[0]["at"] >= entries[1]["at"] >= entries[2]["at"]
    assert [e["version"] for e in entries] == [3, 2, 1]
    assert len(limited.json()["entries"]) == 1
    assert bad_limit.status_code == 422
