"""Slot config: the shipped slots.toml loads, and every kind of invalid config fails loudly.

Each invalid case must raise SlotConfigError whose message names the file, the slot (when the
problem is inside one) and the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fragments.errors import SlotConfigError
from fragments.slots import (
    DEFAULT_SLOTS_FILE,
    MAX_CANDIDATES,
    CachePolicy,
    RankAdjustment,
    load_slots,
    parse_slots,
)

SOURCE = "test-slots.toml"

VALID_SLOT = """
[slots.deal-row]
title = "Deals"
wrapper = "row_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = 20
shown = 4
max_per_category = 2
fallback_html = "<p>deals</p>"
[slots.deal-row.policy]
max_age = 30
stale_while_revalidate = 60
stale_if_error = 600
[slots.deal-row.scoring]
affinity = 1.0
[slots.deal-row.rules]
pin = ["SKU-00001", "SKU-00002"]
boost = [{category = "audio", factor = 1.5}]
bury = [{brand = "Acme", factor = 0.5}, {category = "books", brand = "Oak", factor = 0.9}]
"""


def test_shipped_slots_toml_loads_with_every_documented_slot() -> None:
    catalog = load_slots()

    assert set(catalog.slots) == {
        "home-hero", "pdp-cross-sell", "cart-upsell", "product-cross-sell", "cart-complete",
    }  # fmt: skip
    anchors = {s.id: s.anchor for s in catalog.slots.values()}
    assert anchors["product-cross-sell"] == "product"
    assert anchors["cart-complete"] == "cart"
    assert anchors["home-hero"] is None
    assert catalog.locales == ("en-US", "de-DE")
    hero = catalog.slots["home-hero"]
    assert (hero.candidates, hero.shown, hero.max_per_category) == (100, 12, 3)
    assert hero.policy == CachePolicy(60, 300, 86400)
    assert hero.fallback_html.startswith("<section")
    upsell = catalog.slots["cart-upsell"]
    assert upsell.rules.adjustments == (RankAdjustment(1.5, "accessories", None),)
    for slot in catalog.slots.values():
        assert 1 <= slot.shown <= slot.candidates <= MAX_CANDIDATES
        assert (DEFAULT_SLOTS_FILE.parent / "templates" / slot.card_template).is_file()
        assert (DEFAULT_SLOTS_FILE.parent / "templates" / slot.wrapper_template).is_file()


def test_a_full_valid_slot_parses_into_typed_values() -> None:
    catalog = parse_slots(VALID_SLOT, SOURCE)

    slot = catalog.slots["deal-row"]
    assert catalog.locales == ("en-US",)
    assert slot.rules.pin == ("SKU-00001", "SKU-00002")
    assert slot.rules.adjustments == (
        RankAdjustment(1.5, "audio", None),
        RankAdjustment(0.5, None, "Acme"),
        RankAdjustment(0.9, "books", "Oak"),
    )
    assert slot.scoring.affinity == 1.0
    assert slot.scoring.margin == 0.5  # unlisted exponents keep their defaults


def _edit(old: str, new: str) -> str:
    assert old in VALID_SLOT, old
    return VALID_SLOT.replace(old, new, 1)


INVALID = [
    pytest.param("[slots.x\ntitle = 1", None, "not valid TOML", id="bad-toml"),
    pytest.param("locales = ['en-US']\n", None, "no [slots.<id>] tables", id="no-slots"),
    pytest.param(
        "locale = ['de-DE']\n" + VALID_SLOT, None, "unknown top-level key(s) locale", id="typo-top"
    ),
    pytest.param("locales = []\n" + VALID_SLOT, None, "'locales' must be", id="empty-locales"),
    pytest.param(
        "locales = ['english']\n" + VALID_SLOT, None, "invalid locale 'english'", id="bad-locale"
    ),
    pytest.param(
        "locales = ['en_US']\n" + VALID_SLOT, None, "invalid locale 'en_US'", id="underscore-locale"
    ),
    pytest.param(
        _edit('title = "Deals"', 'title = "Deals"\ncolour = "red"'),
        "deal-row",
        "unknown key(s) colour",
        id="unknown-slot-key",
    ),
    pytest.param(
        _edit("max_age = 30", "max_age = 30\nmaxage = 1"),
        "deal-row",
        "unknown key(s) policy.maxage",
        id="unknown-policy-key",
    ),
    pytest.param(
        _edit("affinity = 1.0", "affinity = 1.0\npopularty = 1.0"),
        "deal-row",
        "unknown key(s) scoring.popularty",
        id="unknown-scoring-key",
    ),
    pytest.param(
        _edit('pin = ["SKU-00001", "SKU-00002"]', 'pins = ["SKU-00001"]'),
        "deal-row",
        "unknown key(s) rules.pins",
        id="unknown-rules-key",
    ),
    pytest.param(
        _edit('category = "audio", factor = 1.5', 'category = "audio", factor = 1.5, why = "x"'),
        "deal-row",
        "unknown key(s) rules.boost[0].why",
        id="unknown-boost-key",
    ),
    pytest.param(
        _edit("shown = 4", "shown = 21"),
        "deal-row",
        "'shown' must be an integer in 1..20, got 21",
        id="shown-over-candidates",
    ),
    pytest.param(
        _edit("shown = 4", "shown = 0"), "deal-row", "'shown' must be an integer", id="shown-zero"
    ),
    pytest.param(
        _edit("candidates = 20", "candidates = 501"),
        "deal-row",
        "'candidates' must be an integer in 1..500",
        id="too-many-candidates",
    ),
    pytest.param(
        _edit("candidates = 20", 'candidates = "20"'),
        "deal-row",
        "'candidates' must be an integer",
        id="candidates-string",
    ),
    pytest.param(
        _edit("candidates = 20", "candidates = true"),
        "deal-row",
        "'candidates' must be an integer",
        id="candidates-bool",
    ),
    pytest.param(
        _edit('title = "Deals"', 'title = ""'),
        "deal-row",
        "'title' must be a non-empty string",
        id="empty-title",
    ),
    pytest.param(
        _edit("[slots.deal-row.policy]\nmax_age = 30\n", "[slots.deal-row.policy]\n"),
        "deal-row",
        "'policy.max_age' must be an integer",
        id="policy-missing-max-age",
    ),
    pytest.param(
        _edit("stale_if_error = 600", "stale_if_error = -1"),
        "deal-row",
        "'policy.stale_if_error' must be an integer in 0..31536000, got -1",
        id="policy-negative",
    ),
    pytest.param(
        VALID_SLOT.replace(
            "[slots.deal-row.policy]\nmax_age = 30\nstale_while_revalidate = 60\n"
            "stale_if_error = 600\n",
            "",
        ),
        "deal-row",
        "missing table [policy]",
        id="policy-missing",
    ),
    pytest.param(
        _edit("affinity = 1.0", "affinity = 11.0"),
        "deal-row",
        "'scoring.affinity' must be a number in 0.0..10.0",
        id="scoring-out-of-range",
    ),
    pytest.param(
        _edit('pin = ["SKU-00001", "SKU-00002"]', "pin = [1, 2]"),
        "deal-row",
        "'rules.pin' must be a list of SKU strings",
        id="pin-not-strings",
    ),
    pytest.param(
        _edit('pin = ["SKU-00001", "SKU-00002"]', 'pin = ["bad sku!"]'),
        "deal-row",
        "invalid sku 'bad sku!'",
        id="pin-bad-sku",
    ),
    pytest.param(
        _edit('category = "audio", factor = 1.5', 'category = "audio", factor = 0.5'),
        "deal-row",
        "'rules.boost[0].factor' must be > 1",
        id="boost-not-above-one",
    ),
    pytest.param(
        _edit('brand = "Acme", factor = 0.5', 'brand = "Acme", factor = 2.0'),
        "deal-row",
        "'rules.bury[0].factor' must be < 1",
        id="bury-not-below-one",
    ),
    pytest.param(
        _edit('brand = "Acme", factor = 0.5', 'brand = "Acme", factor = 1.0'),
        "deal-row",
        "'rules.bury[0].factor' must be < 1",
        id="bury-neutral",
    ),
    pytest.param(
        _edit('category = "audio", factor = 1.5', 'category = "audio", factor = 500.0'),
        "deal-row",
        "'rules.boost[0].factor' must be a number in 0.0..100.0",
        id="boost-huge",
    ),
    pytest.param(
        _edit('category = "audio", factor = 1.5', "factor = 1.5"),
        "deal-row",
        "'rules.boost[0]' needs a 'category' and/or 'brand'",
        id="boost-without-target",
    ),
    pytest.param(
        _edit('category = "audio", factor = 1.5', 'category = "audio"'),
        "deal-row",
        "'rules.boost[0].factor' must be a number",
        id="boost-without-factor",
    ),
    pytest.param(
        _edit('category = "audio", factor = 1.5', "category = 7, factor = 1.5"),
        "deal-row",
        "'rules.boost[0].category' must be a non-empty string",
        id="boost-category-not-string",
    ),
    pytest.param(
        _edit('boost = [{category = "audio", factor = 1.5}]', 'boost = "audio"'),
        "deal-row",
        "'rules.boost' must be a list of tables",
        id="boost-not-a-list",
    ),
    pytest.param(
        VALID_SLOT.replace("slots.deal-row", "slots.Deal_Row"),
        "Deal_Row",
        "invalid slot 'Deal_Row'",
        id="bad-slot-id",
    ),
    pytest.param("[slots]\ndeal-row = 3\n", "deal-row", "must be a table", id="slot-not-a-table"),
]


@pytest.mark.parametrize(("text", "slot", "reason"), INVALID)
def test_invalid_config_names_file_slot_and_reason(
    text: str, slot: str | None, reason: str
) -> None:
    with pytest.raises(SlotConfigError) as caught:
        parse_slots(text, SOURCE)

    error = caught.value
    assert error.source == SOURCE
    assert error.slot == slot
    assert reason in error.reason
    message = str(error)
    assert message.startswith(SOURCE)
    assert reason in message
    if slot is not None:
        assert repr(slot) in message


def test_load_slots_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(SlotConfigError, match="cannot read") as caught:
        load_slots(missing)

    assert caught.value.source == str(missing)


def test_load_slots_reports_the_path_of_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "slots.toml"
    path.write_text(_edit("shown = 4", "shown = 99"), encoding="utf-8")

    with pytest.raises(SlotConfigError) as caught:
        load_slots(path)

    assert str(caught.value).startswith(f"{path}: slot 'deal-row': 'shown' must be")


def test_anchor_must_be_product_or_cart() -> None:
    text = """
[slots.x]
title = "X"
wrapper = "row_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = 10
shown = 4
anchor = "wishlist"
[slots.x.policy]
max_age = 1
stale_while_revalidate = 1
stale_if_error = 1
"""
    with pytest.raises(SlotConfigError, match="'anchor' 'wishlist': expected one of product, cart"):
        parse_slots(text)
    assert parse_slots(text.replace("wishlist", "cart")).slots["x"].anchor == "cart"
