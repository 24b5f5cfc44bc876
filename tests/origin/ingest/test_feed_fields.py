"""Merchant Center field rules, table-driven: what is accepted, normalised, or rejected why."""

from __future__ import annotations

import pytest

from origin.ingest.errors import Rejected
from origin.ingest.feed_fields import FeedItem, parse_item

BASE = {
    "id": "SKU-1",
    "title": "Trail Tent",
    "link": "https://shop.example/p/1",
    "image_link": "https://cdn.shop.example/1.jpg",
    "price": "105.29 USD",
    "availability": "in_stock",
}


def parse(**changes: object) -> FeedItem:
    raw = {**BASE, **changes}
    return parse_item({k: v for k, v in raw.items() if v is not None}, "USD")


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"price": "105.29 USD"}, "price_cents", 10529),
        ({"price": "USD 105.29"}, "price_cents", 10529),
        ({"price": "105 usd"}, "price_cents", 10500),
        ({"sale_price": "99.00 USD"}, "price_cents", 9900),
        ({"sale_price": "99.00 USD"}, "compare_at_cents", 10529),
        ({"sale_price": "120.00 USD"}, "compare_at_cents", None),  # not a sale: ignored
        ({"availability": "in stock"}, "availability", "in_stock"),
        ({"availability": "Out Of Stock"}, "availability", "out_of_stock"),
        ({"availability": "preorder"}, "availability", "preorder"),
        ({"availability": "backorder"}, "availability", "backorder"),
        ({"description": "<p>Sleeps <b>4</b>&nbsp;&amp; more</p><script>x()</script>"},
         "description", "Sleeps 4 & more"),
        ({"title": "Tent &amp; <i>Tarp</i>"}, "title", "Tent & Tarp"),
        ({"brand": {"name": "Acme"}}, "brand", "Acme"),
        ({"brand": ["Acme"]}, "brand", "Acme"),
        ({"brand": None}, "brand", ""),
        ({"product_type": "Outdoor > Camping > Tents"}, "category", "tents"),
        ({"product_type": "Home & Garden"}, "category", "home-and-garden"),
        ({"google_product_category": "Sporting Goods > Outdoor Recreation"},
         "category", "outdoor-recreation"),
        ({"google_product_category": "1013"}, "category", "uncategorized"),
        ({"gtin": "4006381-333931"}, "gtin", "4006381333931"),
        ({"custom_label_2": "clearance"}, "labels", ("", "", "clearance", "", "")),
        ({"g:price": "1.00 USD", "price": None}, "price_cents", 100),
        ({"Image Link": "https://cdn.shop.example/2.jpg", "image_link": None},
         "image_link", "https://cdn.shop.example/2.jpg"),
        ({"link": "HTTPS://shop.example/p/1"}, "link", "https://shop.example/p/1"),
    ],
)  # fmt: skip
def test_accepted_and_normalised(changes: dict[str, object], field: str, value: object) -> None:
    assert getattr(parse(**changes), field) == value


def test_zero_decimal_currencies_use_whole_units() -> None:
    item = parse_item({**BASE, "price": "1500 JPY"}, "JPY")
    assert item.price_cents == 1500


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"price": None}, "price", "missing (required by the Merchant Center spec)"),
        ({"price": "9.99 EUR"}, "price", "currency EUR is not the catalog's (USD)"),
        ({"sale_price": "9.99 GBP"}, "sale_price", "currency GBP is not the catalog's (USD)"),
        ({"price": "9,99 USD"}, "price", "'9,99 USD': '9,99' is not an amount like 105.29"),
        ({"price": "9.999 USD"}, "price", "'9.999 USD': more decimals than USD has"),
        ({"price": "free"}, "price", "'free': expected an amount and a currency, '105.29 USD'"),
        ({"id": "a/b"}, "id", "'a/b' is not a SKU (letters, digits, '_', '.', '-'; 64 max)"),
        ({"title": "<b></b>"}, "title", "empty once HTML is removed"),
        ({"title": "x" * 151}, "title", "151 characters, more than 150"),
        ({"link": "javascript:alert(1)"}, "link",
         "'javascript:alert(1)': expected an absolute http(s) URL"),
        ({"link": "//evil.example/x"}, "link",
         "'//evil.example/x': expected an absolute http(s) URL"),
        ({"image_link": 'https://x.example/"onerror=1'}, "image_link",
         "'https://x.example/\"onerror=1': spaces, quotes and angle brackets must be encoded"),
        ({"availability": "maybe"}, "availability",
         "'maybe': expected in_stock, out_of_stock, preorder or backorder"),
        ({"brand": {"id": 3}}, "brand", "an object without 'name' (keys: id)"),
        ({"brand": {"name": 3}}, "brand", "expected text or {'name': text}, got int"),
        ({"brand": 42}, "brand", "expected text or {'name': text}, got int"),
        ({"title": ["a"]}, "title", "expected text, got list"),
        ({"gtin": "12ab"}, "gtin", "'12ab': expected 8, 12, 13 or 14 digits"),
    ],
)  # fmt: skip
def test_rejected_with_field_and_reason(
    changes: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(Rejected) as rejected:
        parse(**changes)
    assert (rejected.value.field, rejected.value.reason) == (field, reason)


BLACK_FRIDAY = "2026-11-27T00:00:00-05:00/2026-11-30T23:59:59-0500"
OPENS = 1_795_755_600.0  # 2026-11-27T05:00:00Z, the window's start


@pytest.mark.parametrize(
    ("window", "now", "price", "compare_at"),
    [
        (BLACK_FRIDAY, OPENS - 1, 10529, None),  # not yet: the regular price
        (BLACK_FRIDAY, OPENS, 9900, 10529),  # the start is inside
        (BLACK_FRIDAY, OPENS + 4 * 86400 - 1.5, 9900, 10529),
        (BLACK_FRIDAY, OPENS + 4 * 86400, 10529, None),  # the end is outside
        ("2026-11-27/2026-11-28", 1_795_737_600.0, 9900, 10529),  # dates without offset: UTC
        ("2026-11-27/2026-11-28", 1_795_737_599.0, 10529, None),
        (" 2026-11-27T00:00Z / 2026-11-28T00:00Z ", 1_795_737_600.0, 9900, 10529),
    ],
)
def test_a_sale_price_applies_only_inside_its_effective_dates(
    window: str, now: float, price: int, compare_at: int | None
) -> None:
    raw = {**BASE, "sale_price": "99.00 USD", "sale_price_effective_date": window}
    item = parse_item(raw, "USD", now=now)
    assert (item.price_cents, item.compare_at_cents) == (price, compare_at)


@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ("2026-11-27T00:00-05:00", "expected start/end in ISO 8601"),
        ("2026-11-27/", "expected start/end in ISO 8601"),
        ("soon/later", "'soon' is not an ISO 8601 date or time"),
        ("2026-11-30/2026-11-27", "ends before it starts"),
    ],
)
def test_a_malformed_sale_window_is_rejected_by_name(window: str, reason: str) -> None:
    raw = {**BASE, "sale_price": "99.00 USD", "sale_price_effective_date": window}
    with pytest.raises(Rejected) as caught:
        parse_item(raw, "USD", now=OPENS)
    assert caught.value.field == "sale_price_effective_date"
    assert reason in caught.value.reason


def test_json_numbers_and_nulls_are_read_as_text_or_nothing() -> None:
    """A JSON Lines item may give numbers and nulls where the spec says text: each value is read
    as its text, and a null as no value (the fast path for all-text rows is not taken)."""
    item = parse_item(
        {**BASE, "gtin": 4006381333931, "mpn": 12, "item_group_id": None, "brand": " Acme "},
        "USD",
    )
    assert (item.gtin, item.mpn, item.item_group_id, item.brand) == (
        "4006381333931",
        "12",
        "",
        "Acme",
    )
    assert item.title == parse_item(BASE, "USD").title
    with pytest.raises(Rejected) as refused:
        parse_item({**BASE, "mpn": [1, 2]}, "USD")
    assert (refused.value.field, refused.value.reason) == ("mpn", "expected text, got list")
