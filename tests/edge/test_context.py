"""Shopper context from untrusted cookies and headers: garbage is ignored, never an error."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from edge.context import (
    MAX_CART_ITEMS,
    MAX_COOKIE_HEADER,
    MAX_COOKIE_VALUE,
    MAX_HEADER_VALUE,
    MAX_RECENT_ITEMS,
    ShopperContext,
    parse_cookies,
    read_context,
)
from fragments.segment_cookie import sign_segment

SECRET = "context-secret-0123456789"
NOW = 1_700_000_000.0
FRESH = "f" * 32
VISITOR = "0123456789abcdef0123456789abcdef"
DEFAULT = "everyone"
TECH = sign_segment("tech-enthusiasts", int(NOW) + 3600, SECRET, VISITOR)


def ctx(cookie: str | None = None, **headers: str) -> ShopperContext:
    all_headers: dict[str, str] = {k.replace("_", "-"): v for k, v in headers.items()}
    if cookie is not None:
        all_headers["cookie"] = cookie
    return read(all_headers)


def read(headers: Mapping[str, str]) -> ShopperContext:
    return read_context(
        headers, now=NOW, secret=SECRET, default_segment=DEFAULT, fresh_visitor_id=FRESH
    )


@pytest.mark.parametrize(
    ("header", "cookies"),
    [
        (None, {}),
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("a=1;b=2;;", {"a": "1", "b": "2"}),
        ('a="quoted value"', {"a": "quoted value"}),
        ('a="', {"a": '"'}),
        ("a=1; a=2", {"a": "1"}),
        ("noequals; =novalue; b=", {"b": ""}),
        ("x=" + "v" * MAX_COOKIE_VALUE, {"x": "v" * MAX_COOKIE_VALUE}),
        ("x=" + "v" * (MAX_COOKIE_VALUE + 1) + "; y=2", {"y": "2"}),
        ("a=1; " + "z" * MAX_COOKIE_HEADER, {}),
        ("a=\x00\xff; b=\u00b2", {"a": "\x00\xff", "b": "\u00b2"}),
    ],
)
def test_parse_cookies_is_lenient_and_bounded(header: str | None, cookies: dict[str, str]) -> None:
    assert parse_cookies(header) == cookies


def test_no_cookies_is_a_new_anonymous_visitor_with_the_default_segment() -> None:
    context = ctx()

    assert context == ShopperContext(
        visitor_id=FRESH, new_visitor=True, segment=DEFAULT, personalize=False
    )


@pytest.mark.parametrize(
    ("value", "new"),
    [
        (VISITOR, False),
        (VISITOR.upper(), True),
        (VISITOR[:-1], True),
        (VISITOR + "0", True),
        ("g" * 32, True),
        ("", True),
    ],
)
def test_visitor_id_kept_only_when_well_formed(value: str, new: bool) -> None:
    context = ctx(f"se_vid={value}")

    assert context.new_visitor is new
    assert context.visitor_id == (FRESH if new else value)


@pytest.mark.parametrize(
    ("cookie", "segment"),
    [
        (f"se_vid={VISITOR}; se_seg={TECH}", "tech-enthusiasts"),
        (f'se_vid={VISITOR}; se_seg="{TECH}"', "tech-enthusiasts"),
        (f"se_vid={'e' * 32}; se_seg={TECH}", DEFAULT),
        (f"se_seg={TECH}", DEFAULT),
        (f"se_seg={TECH[:-1]}0" if not TECH.endswith("0") else f"se_seg={TECH[:-1]}1", DEFAULT),
        (f"se_seg={sign_segment('tech-enthusiasts', int(NOW) - 1, SECRET, VISITOR)}", DEFAULT),
        (f"se_seg={sign_segment('tech-enthusiasts', int(NOW) + 60, 'other-key-xyz1', VISITOR)}",
         DEFAULT),
        ("se_seg=tech-enthusiasts", DEFAULT),
        ("se_seg=garbage.garbage.garbage", DEFAULT),
        (f"se_seg={TECH[:-1]}\u00e9", DEFAULT),
        ("se_seg=" + "x" * 500, DEFAULT),
    ],
    ids=["valid", "quoted", "other-visitor", "no-visitor", "tampered", "expired", "other-key",
         "unsigned", "garbage", "non-ascii", "oversized"],
)  # fmt: skip
def test_segment_verified_or_default(cookie: str, segment: str) -> None:
    assert ctx(cookie).segment == segment


def test_an_oversized_cookie_header_is_ignored_entirely() -> None:
    cookie = f"se_vid={VISITOR}; se_consent=1; se_seg={TECH}; pad=" + "p" * MAX_COOKIE_HEADER

    context = ctx(cookie)

    assert context.new_visitor
    assert context.segment == DEFAULT
    assert not context.personalize


@pytest.mark.parametrize("consent", [None, "", "0", "yes", "true", "11", "1 1"])
def test_without_consent_no_personal_signal_is_read(consent: str | None) -> None:
    cookie = f"se_cart=SKU-1|SKU-2; se_rv=audio~4999|books~1999; se_vid={VISITOR}"
    if consent is not None:
        cookie += f"; se_consent={consent}"

    context = ctx(cookie, cf_ipcountry="DE")

    assert not context.personalize
    assert context.cart_skus == frozenset()
    assert context.recent_categories == ()
    assert context.price_reference_cents is None
    assert context.visitor_id == VISITOR  # routing and tracking still see the id
    assert context.country == "DE"


def test_with_consent_cart_and_recent_are_read() -> None:
    context = ctx("se_consent=1; se_cart=SKU-1|SKU-2; se_rv=audio~4999|books~1999|audio~5999")

    assert context.personalize
    assert context.cart_skus == frozenset({"SKU-1", "SKU-2"})
    assert context.recent_categories == ("audio", "books")
    assert context.price_reference_cents == 4999


@pytest.mark.parametrize(
    ("cart", "skus"),
    [
        ("", frozenset()),
        ("SKU-1", {"SKU-1"}),
        ("SKU-1|SKU-1", {"SKU-1"}),
        ("SKU-1||bad sku|<script>|SKU-2", {"SKU-1", "SKU-2"}),
        ("|".join(f"SKU-{i}" for i in range(MAX_CART_ITEMS + 5)),
         {f"SKU-{i}" for i in range(MAX_CART_ITEMS)}),
        ("x" * 65, frozenset()),
    ],
    ids=["empty", "one", "repeat", "garbage", "bounded", "too-long-sku"],
)  # fmt: skip
def test_cart_is_bounded_and_validated(cart: str, skus: set[str]) -> None:
    assert ctx(f"se_consent=1; se_cart={cart}").cart_skus == frozenset(skus)


@pytest.mark.parametrize(
    ("recent", "categories", "reference"),
    [
        ("", (), None),
        ("audio~4999", ("audio",), 4999),
        ("audio", ("audio",), None),
        ("audio~|books~", ("audio", "books"), None),
        ("audio~100|audio~300|books~200", ("audio", "books"), 200),
        ("audio~100|books~300", ("audio", "books"), 300),
        ("Audio~100|../x~5|~7|books~abc|toys~-5|kids~1e3", ("books", "toys", "kids"), None),
        ("audio~\u00b2\u00b2|books~\u0663", ("audio", "books"), None),
        ("audio~1234567890|books~123456789", ("audio", "books"), 123456789),
        ("|".join(f"c{i}~{i}" for i in range(MAX_RECENT_ITEMS + 3)),
         tuple(f"c{i}" for i in range(MAX_RECENT_ITEMS)), 5),
    ],
    ids=["empty", "one", "no-price", "empty-prices", "median-odd", "median-even-upper",
         "garbage", "unicode-digits", "price-too-long", "bounded"],
)  # fmt: skip
def test_recent_views_are_bounded_deduplicated_and_validated(
    recent: str, categories: tuple[str, ...], reference: int | None
) -> None:
    context = ctx(f"se_consent=1; se_rv={recent}")

    assert context.recent_categories == categories
    assert context.price_reference_cents == reference


@pytest.mark.parametrize(
    ("country", "expected"),
    [("DE", "DE"), ("US", "US"), ("de", None), ("DEU", None), ("", None), ("T1", None)],
)
def test_country_from_cf_ipcountry(country: str, expected: str | None) -> None:
    assert ctx(cf_ipcountry=country).country == expected


def test_country_absent() -> None:
    assert ctx().country is None


@pytest.mark.parametrize(
    ("headers", "device"),
    [
        ({}, "desktop"),
        ({"sec-ch-ua-mobile": "?1"}, "mobile"),
        ({"sec-ch-ua-mobile": "?0"}, "desktop"),
        ({"user-agent": "Mozilla/5.0 (iPhone) Mobile/15E148"}, "mobile"),
        ({"user-agent": "Mozilla/5.0 (X11; Linux x86_64)"}, "desktop"),
        ({"user-agent": "x" * MAX_HEADER_VALUE + "Mobi"}, "desktop"),
    ],
)
def test_device(headers: dict[str, str], device: str) -> None:
    assert read(headers).device == device


def test_anonymous_context() -> None:
    context = ShopperContext.anonymous("bargain-hunters")
    assert (context.segment, context.personalize, context.visitor_id) == (
        "bargain-hunters",
        False,
        "",
    )
