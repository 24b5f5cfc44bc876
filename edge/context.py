"""The shopper's coarse context, parsed from request cookies and headers.

Inputs are untrusted: oversized or garbage cookies and headers are ignored, never an error. What
comes out is coarse (segment, consent, cart SKUs, recent categories, a price reference, country,
device); the visitor id is kept for routing and tracking only and never enters a cache key.
Pure: the adapter passes in the time, the secret and a fresh visitor id candidate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fragments.ids import ID_PATTERN, VISITOR_ID_PATTERN, check_sku
from fragments.segment_cookie import COOKIE_NAME as SEGMENT_COOKIE
from fragments.segment_cookie import VISITOR_COOKIE, verify_segment

CONSENT_COOKIE = "se_consent"
CART_COOKIE = "se_cart"
RECENT_COOKIE = "se_rv"
MAX_COOKIE_HEADER = 8192
MAX_COOKIE_VALUE = 1024
MAX_CART_ITEMS = 20
MAX_RECENT_ITEMS = 10
MAX_HEADER_VALUE = 512
VISITOR_ID = re.compile(VISITOR_ID_PATTERN)
"""The visitor id grammar of the ``se_vid`` cookie (32 lower-case hex digits)."""
_CATEGORY = re.compile(ID_PATTERN)
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True, slots=True)
class ShopperContext:
    """What the edge knows about this request's shopper."""

    visitor_id: str
    """Anonymous id from the cookie, or a new one (then `new_visitor` is True)."""
    new_visitor: bool
    segment: str
    """Verified segment, or the default segment."""
    personalize: bool
    """Consent to personalization and tracking."""
    cart_skus: frozenset[str] = frozenset()
    recent_categories: tuple[str, ...] = ()
    """Most recent first, without repeats."""
    price_reference_cents: int | None = None
    """Median price of recently viewed products (price-band affinity)."""
    country: str | None = None
    device: str = "desktop"

    @classmethod
    def anonymous(cls, segment: str) -> ShopperContext:
        """No cookies, no consent: default ranking, no tracking."""
        return cls(visitor_id="", new_visitor=False, segment=segment, personalize=False)


def is_visitor_id(value: str) -> bool:
    """Whether `value` is a well-formed visitor id (32 lowercase hex digits)."""
    return VISITOR_ID.fullmatch(value) is not None


def parse_cookies(header: str | None) -> dict[str, str]:
    """Lenient Cookie header parsing; oversized headers and values are dropped."""
    if not header or len(header) > MAX_COOKIE_HEADER:
        return {}
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep or not name or len(value) > MAX_COOKIE_VALUE:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out.setdefault(name, value)
    return out


def read_context(
    headers: Mapping[str, str],
    *,
    now: float,
    secret: str,
    default_segment: str,
    fresh_visitor_id: str,
    cookies: Mapping[str, str] | None = None,
) -> ShopperContext:
    """Build the context from lower-cased request headers (and their parsed cookies)."""
    if cookies is None:
        cookies = parse_cookies(headers.get("cookie"))
    visitor = cookies.get(VISITOR_COOKIE, "")
    new_visitor = not VISITOR_ID.fullmatch(visitor)
    if new_visitor:
        visitor = fresh_visitor_id
    segment = verify_segment(cookies.get(SEGMENT_COOKIE), now, secret, visitor) or default_segment
    personalize = cookies.get(CONSENT_COOKIE) == "1"
    if not personalize:
        return ShopperContext(
            visitor_id=visitor,
            new_visitor=new_visitor,
            segment=segment,
            personalize=False,
            country=_country(headers),
            device=_device(headers),
        )
    categories, prices = _recent(cookies.get(RECENT_COOKIE, ""))
    return ShopperContext(
        visitor_id=visitor,
        new_visitor=new_visitor,
        segment=segment,
        personalize=True,
        cart_skus=_cart(cookies.get(CART_COOKIE, "")),
        recent_categories=categories,
        price_reference_cents=_median(prices),
        country=_country(headers),
        device=_device(headers),
    )


@dataclass(frozen=True, slots=True)
class RequestShopper:
    """A request's parsed cookies and the context read from them and its headers: read once
    and shared by every slot decided for that request (a composed page's slots)."""

    cookies: Mapping[str, str]
    context: ShopperContext


def read_shopper(
    headers: Mapping[str, str],
    *,
    now: float,
    secret: str,
    default_segment: str,
    fresh_visitor_id: str,
) -> RequestShopper:
    """`parse_cookies` and `read_context` of lower-cased request headers, at once."""
    cookies = parse_cookies(headers.get("cookie"))
    context = read_context(
        headers,
        now=now,
        secret=secret,
        default_segment=default_segment,
        fresh_visitor_id=fresh_visitor_id,
        cookies=cookies,
    )
    return RequestShopper(cookies, context)


def _cart(raw: str) -> frozenset[str]:
    skus: list[str] = []
    for item in raw.split("|")[:MAX_CART_ITEMS]:
        try:
            skus.append(check_sku(item))
        except ValueError:
            continue
    return frozenset(skus)


def _recent(raw: str) -> tuple[tuple[str, ...], list[int]]:
    """``category~price_cents|...`` most recent first."""
    categories: dict[str, None] = {}
    prices: list[int] = []
    for item in raw.split("|")[:MAX_RECENT_ITEMS]:
        category, _, price = item.partition("~")
        if not _CATEGORY.fullmatch(category):
            continue
        categories.setdefault(category, None)
        if price.isascii() and price.isdigit() and len(price) <= 9:
            prices.append(int(price))
    return tuple(categories), prices


def _median(values: list[int]) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _country(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("cf-ipcountry", "")
    return raw if _COUNTRY.fullmatch(raw) else None


def _device(headers: Mapping[str, str]) -> str:
    mobile_hint = headers.get("sec-ch-ua-mobile", "")
    if mobile_hint == "?1":
        return "mobile"
    agent = headers.get("user-agent", "")[:MAX_HEADER_VALUE]
    return "mobile" if "Mobi" in agent else "desktop"
