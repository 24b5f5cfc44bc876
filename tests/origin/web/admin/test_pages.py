"""The admin pages against the real origin app and Redis, driven like a browser without JS.

Login and sessions, CSRF and the origin check, viewer vs editor, the form with server-side
validation and the no-JS variant rows, the live-validation endpoint, optimistic concurrency
with the difference shown, start / pause / stop (with the confirmation), preview links, the
results page with its sample-ratio banner and the list page. The browser flow with JavaScript
is `tests/browser/test_admin_flow.py`.
"""

from __future__ import annotations

import re
import time
from html import unescape
from typing import Any

import pytest

from origin.core.redis_client import RedisLike
from origin.events.counters import EventCounters
from origin.events.schema import parse_event
from tests.origin.events.support import event
from tests.origin.experiments.support import (
    EDITOR,
    EDITOR_TOKEN,
    VIEWER_TOKEN,
    hero_experiment,
    if_match,
)
from tests.origin.web.admin.conftest import AdminClient

HERO = "/admin/experiments/hero"


def form(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    """The new-experiment form as a browser posts it (control vs compact, 50/50)."""
    data: dict[str, str | list[str]] = {
        "mode": "new",
        "key": "hero",
        "name": "Hero layout",
        "slots": ["home-hero"],
        "coverage": "1",
        "holdout": "0",
        "hash_version": "2",
        "bucket_version": "0",
        "variants[0].id": "control",
        "variants[0].name": "Control",
        "variants[0].weight": "0.5",
        "variants[1].id": "compact",
        "variants[1].name": "Compact cards",
        "variants[1].weight": "0.5",
        "variants[1].changes.card_template": "card_compact.html.j2",
        "op": "save",
    }
    data.update(overrides)
    return data


def error_at(page: str, name: str) -> str:
    """The text of the error shown next to field `name` ("" when hidden)."""
    found = re.search(
        rf'<p class="field-error"[^>]*data-error-for="{re.escape(name)}"( hidden)?>([^<]*)</p>',
        page,
    )
    assert found is not None, f"no error slot for {name}"
    return "" if found.group(1) else found.group(2)


async def api_get(tab: AdminClient, path: str) -> dict[str, Any]:
    response = await tab.http.get(path, headers=EDITOR)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


async def create_hero(tab: AdminClient) -> None:
    await tab.get("/admin/new")
    response = await tab.post("/admin/new", form())
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{HERO}?done=created"


# --- login, sessions, CSRF ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "login"),
    [("/admin", "/admin"), (f"{HERO}/results", f"{HERO}/results"), ("/admin/new", "/admin/new")],
)
async def test_pages_send_strangers_to_the_login_page(
    anonymous: AdminClient, path: str, login: str
) -> None:
    response = await anonymous.get(path)

    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/login?next={login}"


async def test_posts_without_a_session_change_nothing(anonymous: AdminClient) -> None:
    posted = await anonymous.post("/admin/new", form())
    validated = await anonymous.post("/admin/validate", form())

    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/admin/login")
    assert validated.status_code == 401
    assert validated.json() == {"error": "log in again"}
    assert (await anonymous.http.get("/v1/experiments", headers=EDITOR)).json() == {
        "experiments": []
    }


async def test_a_wrong_token_is_refused_without_echoing_it(anonymous: AdminClient) -> None:
    typed = "typed-secret-0123456789abcdef"

    response = await anonymous.post("/admin/login", {"token": typed, "next": "/admin"})

    assert response.status_code == 401
    assert "not known here" in response.text
    assert typed not in response.text
    assert "se_admin" not in response.headers.get("set-cookie", "")


async def test_login_sets_a_strict_http_only_cookie_and_no_page_shows_the_token(
    anonymous: AdminClient,
) -> None:
    response = await anonymous.post("/admin/login", {"token": EDITOR_TOKEN, "next": HERO})

    cookie = response.headers["set-cookie"].lower()
    assert response.status_code == 303
    assert response.headers["location"] == HERO
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin" in cookie
    assert EDITOR_TOKEN.lower() not in cookie
    await create_hero(anonymous)
    for path in ("/admin", HERO, f"{HERO}/results", "/admin/new", f"{HERO}/stop"):
        page = await anonymous.get(path)
        assert page.status_code == 200, path
        assert EDITOR_TOKEN not in page.text, path


@pytest.mark.parametrize("target", ["//evil.example/admin", "https://evil.example", "/v1/x"])
async def test_login_only_redirects_into_the_admin(anonymous: AdminClient, target: str) -> None:
    response = await anonymous.post("/admin/login", {"token": EDITOR_TOKEN, "next": target})

    assert response.headers["location"] == "/admin"


async def test_a_cross_origin_login_is_refused(anonymous: AdminClient) -> None:
    response = await anonymous.post(
        "/admin/login", {"token": EDITOR_TOKEN}, origin="http://shop.test"
    )

    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_logout_needs_the_nonce_and_ends_the_session(editor: AdminClient) -> None:
    refused = await editor.post("/admin/logout", {}, with_csrf=False)
    assert refused.status_code == 403
    assert (await editor.get("/admin")).status_code == 200

    await editor.get("/admin")
    done = await editor.post("/admin/logout", {})

    assert done.status_code == 303
    assert done.headers["location"] == "/admin/login?done=logout"
    assert (await editor.get("/admin")).status_code == 303


async def test_pages_carry_strict_security_headers(editor: AdminClient) -> None:
    response = await editor.get("/admin")

    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("with_csrf", "origin"),
    [(False, "http://admin.test"), (True, "http://shop.test"), (True, "null")],
)
async def test_forms_without_the_nonce_or_from_elsewhere_are_refused(
    editor: AdminClient, with_csrf: bool, origin: str
) -> None:
    await editor.get("/admin/new")

    response = await editor.post("/admin/new", form(), with_csrf=with_csrf, origin=origin)

    assert response.status_code == 403
    assert "Form refused" in response.text
    assert (await editor.http.get("/v1/experiments", headers=EDITOR)).json() == {"experiments": []}


async def test_the_nonce_of_another_session_does_not_work(
    editor: AdminClient, viewer: AdminClient
) -> None:
    await editor.get("/admin/new")
    response = await editor.post("/admin/new", form(csrf=viewer.csrf))

    assert response.status_code == 403


# --- roles --------------------------------------------------------------------------------------


async def test_viewers_read_but_cannot_write(editor: AdminClient, viewer: AdminClient) -> None:
    await create_hero(editor)

    page = await viewer.get(HERO)
    new = await viewer.get("/admin/new")
    save = await viewer.post(HERO, form(version="1", status="draft", name="Renamed"))
    start = await viewer.post(f"{HERO}/start", {"version": "1"})

    assert page.status_code == 200
    assert "read-only (viewer)" in page.text
    assert 'name="name" type="text" value="Hero layout"' in page.text
    assert re.search(r'name="name"[^>]* disabled', page.text)
    assert "Save changes" not in page.text
    assert 'data-action="start"' not in page.text
    assert "/static/admin.js" not in page.text
    assert (new.status_code, save.status_code, start.status_code) == (403, 403, 403)
    assert "needs an editor token" in save.text
    assert (await api_get(viewer, "/v1/experiments/hero"))["name"] == "Hero layout"
    assert (await viewer.get(f"{HERO}/results")).status_code == 200
    assert VIEWER_TOKEN not in page.text


# --- creating and editing -------------------------------------------------------------------


async def test_create_saves_a_draft_with_the_audit_naming_the_editor(editor: AdminClient) -> None:
    await create_hero(editor)

    stored = await api_get(editor, "/v1/experiments/hero")
    audit = await api_get(editor, "/v1/experiments/hero/audit")
    page = await editor.get(f"{HERO}?done=created")

    assert stored["status"] == "draft"
    assert stored["slots"] == ["home-hero"]
    assert [(v["id"], v["weight"]) for v in stored["variants"]] == [
        ("control", 0.5),
        ("compact", 0.5),
    ]
    assert stored["variants"][1]["changes"] == {"card_template": "card_compact.html.j2"}
    assert (audit["entries"][0]["who"], audit["entries"][0]["action"]) == ("alice", "create")
    assert "Draft created" in page.text
    assert "data-status>draft<" in page.text


async def test_invalid_forms_come_back_with_each_problem_next_to_its_field(
    editor: AdminClient,
) -> None:
    await editor.get("/admin/new")

    response = await editor.post(
        "/admin/new",
        form(
            key="Bad Key!",
            slots=[],
            coverage="1.5",
            **{"variants[1].weight": "0.7", "variants[1].changes.shown": "500"},
        ),
    )

    page = response.text
    assert response.status_code == 422
    assert error_at(page, "key").startswith("use 1-64 chars")
    assert error_at(page, "slots") == "choose at least one slot"
    assert error_at(page, "coverage") == "use a share between 0 and 1"
    assert error_at(page, "variants.weight").startswith("weights sum to 1.200")
    assert error_at(page, "variants[1].changes.shown") == "show between 1 and 100 products"
    assert error_at(page, "name") == ""
    assert 'value="Bad Key!"' in page  # what was typed stays
    assert 'value="1.5"' in page
    assert "5 problems to fix" in re.sub(r"<[^>]+>", "", page)
    assert (await api_get(editor, "/v1/experiments"))["experiments"] == []


async def test_a_taken_key_is_a_problem_of_the_key(editor: AdminClient) -> None:
    await create_hero(editor)
    await editor.get("/admin/new")

    response = await editor.post("/admin/new", form(name="Again"))

    assert response.status_code == 409
    assert "already exists" in error_at(response.text, "key")


async def test_variant_rows_are_added_and_removed_without_javascript(
    editor: AdminClient,
) -> None:
    await editor.get("/admin/new")

    added = await editor.post("/admin/new", form(op="add-variant"))
    removed = await editor.post("/admin/new", form(op="remove-variant-1"))

    assert added.status_code == 200
    assert 'name="variants[2].id"' in added.text
    assert 'name="variants[2].id"' not in removed.text
    assert 'name="variants[1].id"' not in removed.text
    assert 'value="Compact cards"' in added.text
    assert (await api_get(editor, "/v1/experiments"))["experiments"] == []


async def test_editing_saves_through_the_service_with_the_forms_version(
    editor: AdminClient,
) -> None:
    await create_hero(editor)
    await editor.get(HERO)

    changes: dict[str, str | list[str]] = {
        "targeting.segments": ["bargain-hunters"],
        "targeting.devices": ["mobile"],
        "targeting.countries": "de, at",
        "variants[1].changes.scoring.popularity": "3",
    }
    response = await editor.post(
        HERO, form(version="1", status="draft", name="Hero layout, compact", **changes)
    )

    stored = await api_get(editor, "/v1/experiments/hero")
    assert response.status_code == 303
    assert response.headers["location"] == f"{HERO}?done=saved"
    assert stored["version"] == 2
    assert stored["name"] == "Hero layout, compact"
    assert stored["targeting"]["segments"] == ["bargain-hunters"]
    assert stored["targeting"]["countries"] == ["DE", "AT"]
    assert stored["variants"][1]["changes"]["scoring"] == {"popularity": 3.0}


async def test_label_rules_are_edited_shown_again_and_kept_by_a_save_of_other_fields(
    editor: AdminClient,
) -> None:
    labels = {
        "variants[1].changes.labels.include": "custom_label_0: Summer, clearance",
        "variants[1].changes.labels.boost": "custom_label_2: best seller 1.5",
    }
    await editor.get("/admin/new")
    created = await editor.post("/admin/new", form(**labels))
    assert created.status_code == 303, created.text
    rule = {
        "include": {"custom_label_0": ["clearance", "summer"]},
        "boost": [{"custom_label_2": "best seller", "factor": 1.5}],
    }
    stored = await api_get(editor, "/v1/experiments/hero")
    assert stored["variants"][1]["changes"]["labels"] == rule

    page = unescape((await editor.get(HERO)).text)
    include = re.search(
        r'<textarea[^>]*name="variants\[1\]\.changes\.labels\.include"[^>]*>([^<]*)', page
    )
    boost = re.search(
        r'<textarea[^>]*name="variants\[1\]\.changes\.labels\.boost"[^>]*>([^<]*)', page
    )
    assert include is not None
    assert boost is not None
    assert include.group(1) == "custom_label_0: clearance, summer"
    assert boost.group(1) == "custom_label_2: best seller 1.5"

    # The page posts back what it shows: a save of another field keeps the rule.
    shown = {
        "variants[1].changes.labels.include": include.group(1),
        "variants[1].changes.labels.boost": boost.group(1),
    }
    saved = await editor.post(HERO, form(version="1", status="draft", name="Renamed", **shown))
    assert saved.status_code == 303, saved.text
    stored = await api_get(editor, "/v1/experiments/hero")
    assert stored["name"] == "Renamed"
    assert stored["variants"][1]["changes"]["labels"] == rule


@pytest.mark.parametrize(
    ("part", "typed", "problem"),
    [
        ("exclude", "clearance", "&#39;clearance&#39;: write one label a line"),
        (
            "include",
            "custom_label_9: summer",
            "variants[1].changes.labels.include.custom_label_9: unknown label",
        ),
        ("boost", "custom_label_2: bestseller", "&#39;custom_label_2: bestseller&#39;: write"),
        (
            "boost",
            "custom_label_2: bestseller 1",
            "variants[1].changes.labels.boost[0].factor: 1.0: a number",
        ),
    ],
)
async def test_unreadable_or_unknown_label_rules_are_named_next_to_their_field(
    editor: AdminClient, part: str, typed: str, problem: str
) -> None:
    await editor.get("/admin/new")
    name = f"variants[1].changes.labels.{part}"
    response = await editor.post("/admin/new", form(**{name: typed}))
    assert response.status_code == 422
    assert error_at(response.text, name).startswith(problem), error_at(response.text, name)
    assert typed in unescape(response.text), "what was typed stays"
    assert (await api_get(editor, "/v1/experiments"))["experiments"] == []


async def test_a_stale_form_shows_who_changed_what_and_saves_nothing(editor: AdminClient) -> None:
    await create_hero(editor)
    await editor.get(HERO)
    theirs = hero_experiment(name="Renamed by Bob", coverage=0.5)
    assert (
        await editor.http.put("/v1/experiments/hero", json=theirs, headers=if_match(1))
    ).status_code == 200

    response = await editor.post(HERO, form(version="1", status="draft", name="Mine"))

    page = response.text
    assert response.status_code == 409
    assert "Someone else changed this — reload" in page
    assert re.search(
        r'<th scope="row" class="mono">name</th><td class="mono">'
        r'&#34;Renamed by Bob&#34;</td><td class="mono">&#34;Mine&#34;</td>',
        page,
    )
    assert re.search(r">coverage</th><td[^>]*>0.5</td><td[^>]*>1.0</td>", page)
    assert 'href="/admin/experiments/hero">Reload the saved version' in page
    assert (await api_get(editor, "/v1/experiments/hero"))["name"] == "Renamed by Bob"


# --- live validation ------------------------------------------------------------------------


async def test_the_dry_run_names_every_problem_and_saves_nothing(editor: AdminClient) -> None:
    await editor.get("/admin/new")
    headers = {"x-csrf-token": editor.csrf, "origin": "http://admin.test"}

    bad = await editor.http.post(
        "/admin/validate",
        data=form(**{"variants[1].changes.card_template": "nope.j2", "coverage": "x"}),
        headers=headers,
    )
    good = await editor.http.post("/admin/validate", data=form(), headers=headers)
    no_nonce = await editor.http.post("/admin/validate", data=form())

    assert bad.status_code == 200
    problems = bad.json()["problems"]
    assert bad.json()["ok"] is False
    assert problems["coverage"] == "'x' is not a number"
    assert problems["variants[1].changes.card_template"].startswith("unknown template 'nope.j2'")
    assert good.json()["ok"] is True
    assert good.json()["problems"] == {}
    assert good.json()["plan"]["message"].startswith("No recent traffic on these slots yet")
    assert no_nonce.status_code == 403
    assert (await api_get(editor, "/v1/experiments"))["experiments"] == []


async def test_the_dry_run_knows_taken_keys_only_when_creating(editor: AdminClient) -> None:
    await create_hero(editor)
    headers = {"x-csrf-token": editor.csrf}

    creating = await editor.http.post("/admin/validate", data=form(), headers=headers)
    editing = await editor.http.post("/admin/validate", data=form(mode="edit"), headers=headers)

    assert "exists already" in creating.json()["problems"]["key"]
    assert editing.json()["ok"] is True


# --- lifecycle and preview --------------------------------------------------------------------


async def test_start_pause_resume_and_stop_with_confirmation(editor: AdminClient) -> None:
    await create_hero(editor)
    await editor.get(HERO)

    started = await editor.post(f"{HERO}/start", {"version": "1"})
    paused = await editor.post(f"{HERO}/pause", {"version": "2"})
    resumed = await editor.post(f"{HERO}/start", {"version": "3"})
    unconfirmed = await editor.post(f"{HERO}/stop", {"version": "4"})
    confirm_page = await editor.get(f"{HERO}/stop")
    stopped = await editor.post(f"{HERO}/stop", {"version": "4", "confirmed": "yes"})
    restart = await editor.post(f"{HERO}/start", {"version": "5"})
    page = await editor.get(f"{HERO}?error=transition")

    assert [r.headers["location"] for r in (started, paused, resumed)] == [
        f"{HERO}?done=start",
        f"{HERO}?done=pause",
        f"{HERO}?done=start",
    ]
    assert unconfirmed.headers["location"] == f"{HERO}/stop"
    assert "Everyone sees control" in confirm_page.text
    assert 'name="confirmed" value="yes"' in confirm_page.text
    assert stopped.headers["location"] == f"{HERO}?done=stop"
    assert restart.headers["location"] == f"{HERO}?error=transition"
    assert "not possible in the current status" in page.text
    assert (await api_get(editor, "/v1/experiments/hero"))["status"] == "stopped"
    actions = [
        e["action"] for e in (await api_get(editor, "/v1/experiments/hero/audit"))["entries"]
    ]
    assert actions == ["stop", "start", "pause", "start", "create"]


async def test_a_start_that_would_clash_with_a_running_experiment_says_why(
    editor: AdminClient,
) -> None:
    await create_hero(editor)
    await editor.get("/admin/new")
    await editor.post("/admin/new", form(key="hero-two", name="Same ids"))
    await editor.get(HERO)
    await editor.post(f"{HERO}/start", {"version": "1"})

    response = await editor.post("/admin/experiments/hero-two/start", {"version": "1"})

    assert response.status_code == 422
    assert "variants[1].id: variant id &#39;compact&#39; is already used" in response.text
    assert (await api_get(editor, "/v1/experiments/hero-two"))["status"] == "draft"


async def test_a_lifecycle_click_on_a_stale_page_changes_nothing(editor: AdminClient) -> None:
    await create_hero(editor)
    await editor.get(HERO)
    await editor.http.post("/v1/experiments/hero/start", headers=if_match(1))

    response = await editor.post(f"{HERO}/pause", {"version": "1"})

    assert response.headers["location"] == f"{HERO}?error=stale"
    assert (await api_get(editor, "/v1/experiments/hero"))["status"] == "running"


async def test_preview_links_open_the_storefront_with_the_variant_forced(
    editor: AdminClient,
) -> None:
    await create_hero(editor)
    await editor.get(HERO)
    await editor.post(f"{HERO}/start", {"version": "1"})
    page = await editor.get(HERO)
    assert 'name="variant" value="compact"' in page.text

    response = await editor.post(f"{HERO}/preview", {"variant": "compact"})
    unknown = await editor.post(f"{HERO}/preview", {"variant": "nope"})

    links = re.findall(r'href="(http://edge\.test/[^"]+)"', response.text)
    assert response.status_code == 200
    assert len(links) == 1
    assert re.fullmatch(
        r"http://edge\.test/se/preview\?code=[\w-]{20,}&amp;sx_hero=compact", links[0]
    )
    assert "sx_token" not in response.text  # the token never sits in a shareable URL
    assert 'action="/admin/preview/rotate"' in response.text
    assert unknown.status_code == 422
    assert "unknown variant 'nope'" in unescape(unknown.text)


async def test_unknown_experiments_are_a_404_page(editor: AdminClient) -> None:
    for path in ("/admin/experiments/nope", "/admin/experiments/nope/results"):
        response = await editor.get(path)
        assert response.status_code == 404
        assert "No such experiment" in response.text


# --- results and list ------------------------------------------------------------------------


async def fold_traffic(redis: RedisLike, exposed: dict[str, int], buyers: dict[str, int]) -> None:
    now = time.time()
    raw: list[dict[str, Any]] = []
    for variant, n in exposed.items():
        for i in range(n):
            visitor = f"{variant}-visitor-{i:04d}"
            raw.append(event("exposure", variant=variant, visitor=visitor))
            if i < buyers.get(variant, 0):
                raw.append(event("purchase", variant=variant, visitor=visitor, value_cents=2500))
    await EventCounters(redis).fold([parse_event(r, now) for r in raw])


def cells(page: str, variant: str) -> list[str]:
    """The text of each cell of a variant's row of the results table."""
    row = re.search(rf'<tr data-variant="{variant}">(.*?)</tr>', page, re.S)
    assert row is not None, f"no row for {variant}"
    found = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in found]


def near(shown: str, expected: int) -> bool:
    """HyperLogLog counts distinct visitors to within about 1 % (Redis: 0.81 % std error)."""
    return abs(int(shown.replace(",", "")) - expected) <= max(1, expected // 50)


async def test_results_show_rates_uplift_and_a_loud_sample_ratio_banner(
    editor: AdminClient, seeded: RedisLike
) -> None:
    await create_hero(editor)
    await editor.get(HERO)
    await editor.post(f"{HERO}/start", {"version": "1"})
    await fold_traffic(seeded, {"control": 300, "compact": 150}, {"control": 30, "compact": 30})

    page = (await editor.get(f"{HERO}/results")).text
    listing = (await editor.get("/admin")).text

    control, compact = cells(page, "control"), cells(page, "compact")
    assert "Sample ratio mismatch: do not trust these results" in page
    assert near(re.findall(r"data-total-exposures>([\d,]+)<", page)[0], 450)
    assert near(control[2].split()[0], 300)  # exposures (expected)
    assert near(compact[2].split()[0], 150)
    assert (control[3], compact[3]) == ("30", "30")  # converted visitors
    assert compact[4].startswith(("19.", "20.")), compact  # 30 of ~150
    assert compact[6].startswith(("+9", "+10")), compact  # uplift against ~10 %
    assert compact[10] == "better"
    assert control[10] == "control"
    assert 'data-verdict="blocked"' in page  # the sample-ratio check blocks any verdict
    assert "The sample-ratio check failed" in page
    assert "Fixed-horizon verdict" in page
    assert '<svg class="chart"' in page
    assert '<span class="badge action">start</span>' in page
    assert '<span class="badge srm"' in listing
    assert re.search(r"compact \+(9\d|10\d)\.\d %", listing)


async def test_results_without_traffic_say_so(editor: AdminClient) -> None:
    await create_hero(editor)

    page = (await editor.get(f"{HERO}/results?metric=click&granularity=hour")).text

    assert "No exposures yet" in page
    assert "Sample ratio mismatch" not in page
    assert 'aria-current="page">Click<' in page
    assert 'aria-current="page">per hour<' in page


async def test_the_list_says_what_to_do_when_empty(editor: AdminClient) -> None:
    page = (await editor.get("/admin")).text

    assert "No experiments yet" in page
    assert "Create the first experiment" in page


async def test_html_pages_are_documented_as_admin_ui_in_openapi(editor: AdminClient) -> None:
    doc = (await editor.http.get("/openapi.json")).json()

    admin = {p: ops for p, ops in doc["paths"].items() if p.startswith("/admin")}
    assert set(admin) >= {"/admin", "/admin/login", "/admin/experiments/{key}/results"}
    for ops in admin.values():
        for op in ops.values():
            assert op["tags"] == ["admin-ui"]
            assert "not part of the JSON API" in op["description"]


async def test_results_give_an_always_valid_verdict_with_its_reason_and_lift_chart(
    editor: AdminClient, seeded: RedisLike
) -> None:
    await create_hero(editor)
    await editor.get(HERO)
    await editor.post(f"{HERO}/start", {"version": "1"})
    await fold_traffic(seeded, {"control": 700, "compact": 700}, {"control": 35, "compact": 140})

    page = (await editor.get(f"{HERO}/results")).text

    assert 'data-verdict="ship"' in page
    assert re.search(r"data-verdict-reason>Compact beats control on purchase by \+300\.0 %", page)
    assert "Always-valid interval" in page
    assert "Fixed-horizon interval" in page
    assert "Holm (family-wise error)" in page
    assert '<svg class="chart lift-chart"' in page
    assert re.search(r'<span class="verdict verdict-better" data-metric-verdict>better<', page)
    listing = (await editor.get("/admin")).text
    assert re.search(r'data-decision="ship">Ship compact<', listing)


async def test_the_edit_form_estimates_duration_from_the_slots_recent_traffic(
    editor: AdminClient, seeded: RedisLike
) -> None:
    await create_hero(editor)
    before = (await editor.get(HERO)).text
    assert "No recent traffic on these slots yet" in before

    await fold_traffic(seeded, {"control": 700, "compact": 700}, {"control": 35, "compact": 40})
    page = (await editor.get(HERO)).text

    message = re.search(r"data-plan-message[^>]*>([^<]+)<", page)
    assert message is not None
    assert message.group(1).startswith("Cannot reach +5.0 % within 56 days"), message.group(1)
    assert "(437 days at 1,400 a day)" in message.group(1)  # 5 % of a 5.4 % baseline: tiny
    assert 'data-reachable="no"' in page
    headers = {"x-csrf-token": editor.csrf, "origin": "http://admin.test"}
    larger = await editor.http.post(
        "/admin/validate", data=form(**{"analysis.mde": "50"}), headers=headers
    )
    plan = larger.json()["plan"]
    assert plan["reachable"] is True, plan  # the live dry run re-estimates as the marketer types
    assert "visitors a day, to detect +50.0 % with 80 % power" in plan["message"]
    assert "Primary metric" in page
    assert "Benjamini-Hochberg" in page


async def test_the_preview_secret_rotates_from_the_admin_ui(editor: AdminClient) -> None:
    await create_hero(editor)
    before = await api_get(editor, "/v1/edge-config")
    await editor.get(HERO)

    rotated = await editor.post("/admin/preview/rotate", {})
    after = await api_get(editor, "/v1/edge-config")

    assert rotated.status_code == 303
    assert after["version"] > before["version"]
    assert after["preview_secret_hash"] not in ("", before["preview_secret_hash"])
