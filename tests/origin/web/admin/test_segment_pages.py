"""The segment-rules admin pages against the real origin app and Redis, driven like a browser
without JavaScript: the rules in force, the form with every problem next to its field (nothing
saved), reordering, a stale form refused, version history with rollback (CSRF-checked), the
explain tool, and viewers reading but not writing."""

from __future__ import annotations

import re
import time
from html import unescape

from fragments.clickstream import ClickEvent
from origin.context.store import ContextStore
from origin.core.redis_client import RedisLike
from tests.origin.experiments.support import EDITOR
from tests.origin.web.admin.conftest import AdminClient
from tests.origin.web.admin.test_pages import error_at

VISITOR = "shopper-0123456789"


def rules_form(base: str = "0", **overrides: str) -> dict[str, str]:
    """Two rules as a marketer fills them in: a spring-campaign rule and a big-cart rule."""
    data = {
        "base_version": base,
        "default_segment": "everyone",
        "rules[1].name": "spring",
        "rules[1].segment": "bargain-hunters",
        "rules[1].position": "1",
        "rules[1].when[0].feature": "campaign",
        "rules[1].when[0].op": "eq",
        "rules[1].when[0].value": "spring-sale",
        "rules[2].name": "big-cart",
        "rules[2].segment": "home-makers",
        "rules[2].position": "2",
        "rules[2].when[0].feature": "cart_value_cents",
        "rules[2].when[0].op": "gt",
        "rules[2].when[0].value": "15000",
        "rules[3].name": "",  # the blank row the page always offers
        "rules[3].segment": "",
        "rules[3].position": "3",
        "rules[3].when[0].feature": "",
        "rules[3].when[0].op": "",
        "rules[3].when[0].value": "",
    }
    data.update(overrides)
    return data


def rule_order(page: str) -> list[str]:
    return re.findall(r'<tr data-rule="\d+"><td class="num">\d+</td><td class="mono">([^<]+)', page)


async def current(tab: AdminClient) -> tuple[int, list[str]]:
    doc = (await tab.http.get("/v1/segment-rules", headers=EDITOR)).json()
    return doc["version"], [r["name"] for r in doc["rules"]]


async def test_problems_show_next_to_their_fields_and_nothing_is_saved(
    editor: AdminClient,
) -> None:
    await editor.get("/admin/segments/edit")
    bad = rules_form(
        **{
            "rules[1].when[0].op": "gt",
            "rules[2].when[0].value": "lots",
            "rules[2].segment": "nobody",
            "rules[3].name": "Bad Name",
            "rules[3].segment": "everyone",
            "rules[3].when[0].feature": "views:outdoor",
            "rules[3].when[0].op": "gte",
            "rules[3].when[0].value": "3",
        }
    )

    response = await editor.post("/admin/segments/edit", bad)

    assert response.status_code == 422
    page = unescape(response.text)
    assert error_at(page, "rules[1].when[0].op") == "'gt': for campaign use one of eq, ne"
    assert error_at(page, "rules[2].when[0].value") == "'lots' is not a number"
    assert error_at(page, "rules[3].name") == "1-64 chars of a-z, 0-9, -, _"
    assert error_at(page, "rules[1].name") == ""
    assert "rules[1] (spring).when[0].op" in page  # the summary names rule and field
    assert 'value="lots"' in page  # what was typed is kept
    assert await current(editor) == (0, [])


async def test_save_reorder_refuse_stale_history_and_rollback(editor: AdminClient) -> None:
    await editor.get("/admin/segments/edit")
    saved = await editor.post("/admin/segments/edit", rules_form())
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/admin/segments?done=saved&version=1"
    listing = await editor.get("/admin/segments")
    assert rule_order(listing.text) == ["spring", "big-cart"]
    assert "Made current by alice (put)" in listing.text

    await editor.get("/admin/segments/edit")
    assert 'name="base_version" value="1"' in editor.page
    reordered = rules_form("1", **{"rules[1].position": "5", "rules[2].delete": ""})
    assert (await editor.post("/admin/segments/edit", reordered)).status_code == 303
    assert await current(editor) == (2, ["big-cart", "spring"])

    stale = await editor.post("/admin/segments/edit", rules_form("1"))
    assert stale.status_code == 409
    assert "Version 2 was saved after you opened this form" in stale.text
    assert (await current(editor))[0] == 2

    history = await editor.get("/admin/segments/history")
    assert 'data-version="2"' in history.text
    assert 'data-version="1"' in history.text
    assert 'data-rollback="1"' in history.text
    assert 'data-rollback="2"' not in history.text
    no_csrf = await editor.post("/admin/segments/rollback", {"version": "1"}, with_csrf=False)
    assert no_csrf.status_code == 403
    back = await editor.post("/admin/segments/rollback", {"version": "1"})
    assert back.headers["location"] == "/admin/segments?done=rollback&version=1"
    assert await current(editor) == (1, ["spring", "big-cart"])
    page = (await editor.get("/admin/segments")).text
    assert "Made current by alice (rollback from version 2)" in page
    missing = await editor.post("/admin/segments/rollback", {"version": "9"})
    assert missing.status_code == 404


async def test_explain_tool_says_which_rule_matched_and_why(
    editor: AdminClient, seeded: RedisLike
) -> None:
    await editor.get("/admin/segments/edit")
    await editor.post("/admin/segments/edit", rules_form())
    store = ContextStore(seeded)
    cart = ClickEvent("cart-1", "add_to_cart", VISITOR, "s1", time.time(), True, "S1", None, 20_000)
    await store.fold(VISITOR, [cart], await store.current_rules())

    page = (await editor.get(f"/admin/segments/explain?visitor={VISITOR}")).text

    assert '<p class="strong" data-testid="why">matched rule 2 (big-cart)</p>' in page
    assert '<li data-rule="1" data-matched="no">' in page
    assert "✓ cart_value_cents gt 15000: is 20000, holds" in unescape(page)
    assert "✗ campaign eq &#34;spring-sale&#34;: is none, fails" in page
    bad = await editor.get("/admin/segments/explain?visitor=not%20an%20id")
    assert bad.status_code == 422
    assert error_at(bad.text, "visitor").startswith("A visitor id is 1-64 characters")


async def test_viewers_read_rules_and_explain_but_cannot_edit(viewer: AdminClient) -> None:
    assert (await viewer.get("/admin/segments")).status_code == 200
    assert "Edit rules" not in viewer.page
    assert (await viewer.get("/admin/segments/history")).status_code == 200
    assert (await viewer.get(f"/admin/segments/explain?visitor={VISITOR}")).status_code == 200
    assert (await viewer.get("/admin/segments/edit")).status_code == 403
    posted = await viewer.post("/admin/segments/edit", rules_form())
    assert posted.status_code == 403
    assert await current(viewer) == (0, [])


async def test_strangers_go_to_the_login_page(anonymous: AdminClient) -> None:
    response = await anonymous.get("/admin/segments/explain")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/segments/explain"
