"""Merchant Center fields: one raw feed item to a validated `FeedItem`, or why not.

The field names and spellings are Google Merchant Center's product data specification (the
format retailers already maintain for shopping ads). What the spec allows is accepted; what is
harmless is normalised (HTML in descriptions reduced to text, legacy availability spellings,
"USD 10.00" as well as "10.00 USD", a brand given as ``{"name": ...}``, a sale price not below
the price ignored); the rest is rejected with the field and the reason. A sale price with a
``sale_price_effective_date`` counts only at the times inside it: the caller says when "now"
is. Pure: never performs I/O.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from html.parser import HTMLParser
from typing import cast

import msgspec

from fragments.ids import SKU_PATTERN, anchored
from origin.core.catalog import LABEL_COUNT, category_id
from origin.ingest.errors import Rejected

PARSER_VERSION = "gmc-2"
"""Changes whenever parsing rules change: unchanged-row fingerprints of older imports then no
longer match, so every item is parsed again once."""

MAX_TITLE = 150
MAX_DESCRIPTION = 5000
MAX_URL = 2000
MAX_BRAND = 70
MAX_SHORT = 70
MAX_LABEL = 100
MAX_CATEGORY_PATH = 750
FEED_AVAILABLE_UNITS = 100
"""Stock units given to an available product whose stock no inventory event has set yet: a
feed says only in or out of stock, and a card shows only the stock state."""
REQUIRED = ("id", "title", "link", "image_link", "price", "availability")
SALE_WINDOW = "sale_price_effective_date"
"""The interval ("start/end", ISO 8601) in which `sale_price` applies; outside it, `price` does."""

AVAILABILITY = {
    "in_stock": "in_stock", "in stock": "in_stock", "available for order": "in_stock",
    "out_of_stock": "out_of_stock", "out of stock": "out_of_stock",
    "preorder": "preorder", "backorder": "backorder",
}  # fmt: skip
"""Every spelling the spec allows (and its legacy ones) -> the canonical one."""
AVAILABLE = frozenset({"in_stock", "preorder", "backorder"})
"""Availabilities a shopper can order (preorder and backorder ship later)."""

ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "ISK", "VND", "HUF", "TWD", "UGX"})
_SKU = re.compile(anchored(SKU_PATTERN))
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = re.compile(r"^\d{1,10}(\.\d{1,4})?$")
_GTIN = re.compile(r"^(\d{8}|\d{12}|\d{13}|\d{14})$")
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
_NEEDS_WORK = re.compile(r"[<&\t\n\r\x0b\x0c\u00a0\u2000-\u200a\u2028\u2029\u3000]|  ")
"""Markup, entities, or whitespace other than single spaces: what `_plain` must rework."""
_URL_UNSAFE = re.compile(r"[\s<>\"'`]")


class FeedItem(msgspec.Struct, frozen=True, array_like=True):
    """One valid feed item, normalised: what an import applies to a product document."""

    sku: str
    title: str
    description: str
    link: str
    image_link: str
    price_cents: int
    compare_at_cents: int | None
    currency: str
    availability: str
    brand: str
    category: str
    category_path: str
    item_group_id: str
    gtin: str
    mpn: str
    labels: tuple[str, ...]

    @property
    def stock_units(self) -> int:
        """Units an import sets where the feed owns stock (`FEED_AVAILABLE_UNITS` or 0)."""
        return FEED_AVAILABLE_UNITS if self.availability in AVAILABLE else 0


def parse_item(
    raw: Mapping[str, object],
    currency: str,
    *,
    normalized: bool = False,
    now: float | None = None,
) -> FeedItem:
    """The `FeedItem` of one raw item (field name -> value), or raise `Rejected`.

    `currency` is the catalog's ISO 4217 code: prices in another currency are rejected (a
    storefront shows one currency; converting would invent prices). `normalized` says the
    field names are already spelled as `field_name` spells them (a TSV header is read so).
    `now` (Unix seconds; default: the time of the call) decides whether a sale price with an
    effective date applies.
    """
    fields = dict(raw.items()) if normalized else {field_name(k): v for k, v in raw.items()}
    try:  # the common case, every value text (a TSV row always): stripped in one pass, in C;
        # str.strip refuses any other value with TypeError
        values = cast("Iterable[str]", fields.values())
        texts = dict(zip(fields, map(str.strip, values), strict=True))
    except TypeError:  # JSON numbers, nulls or objects: read (or refused) by _text
        texts = {k: v.strip() for k, v in fields.items() if type(v) is str}
        for name in _TEXT_FIELDS:
            if name not in texts and fields.get(name) is not None:
                texts[name] = _text(fields, name)
    get = texts.get

    for name in REQUIRED:
        if not get(name):
            raise Rejected(name, "missing (required by the Merchant Center spec)")
    sku = get("id", "")
    if not _SKU.match(sku):
        raise Rejected("id", f"{sku[:80]!r} is not a SKU (letters, digits, '_', '.', '-'; 64 max)")
    title = _plain(get("title", ""))
    if not title:
        raise Rejected("title", "empty once HTML is removed")
    if len(title) > MAX_TITLE:
        raise Rejected("title", f"{len(title)} characters, more than {MAX_TITLE}")
    price, price_currency = _money(get("price", ""), "price")
    if price_currency != currency:
        raise Rejected("price", f"currency {price_currency} is not the catalog's ({currency})")
    compare_at: int | None = None
    sale_text = get("sale_price", "")
    if sale_text:
        sale, sale_currency = _money(sale_text, "sale_price")
        if sale_currency != currency:
            raise Rejected(
                "sale_price", f"currency {sale_currency} is not the catalog's ({currency})"
            )
        window = get(SALE_WINDOW, "")
        if window:
            start, end = _sale_window(window)
            at = time.time() if now is None else now
            in_effect = start <= at < end
        else:
            in_effect = True
        if sale < price and in_effect:  # a sale price not below the price shows no sale
            price, compare_at = sale, price
    availability = _availability(get("availability", ""))
    path = _category_path(get("product_type", ""), get("google_product_category", ""))
    gtin = get("gtin", "").replace("-", "").replace(" ", "")
    if gtin and not _GTIN.match(gtin):
        raise Rejected("gtin", f"{gtin[:40]!r}: expected 8, 12, 13 or 14 digits")
    return FeedItem(
        sku=sku,
        title=title,
        description=_plain(get("description", ""))[:MAX_DESCRIPTION],
        link=_url(get("link", ""), "link"),
        image_link=_url(get("image_link", ""), "image_link"),
        price_cents=price,
        compare_at_cents=compare_at,
        currency=currency,
        availability=availability,
        brand=_brand(fields.get("brand")),
        category=category_id(path),
        category_path=path,
        item_group_id=_short(get("item_group_id", ""), "item_group_id", MAX_SHORT),
        gtin=gtin,
        mpn=_short(get("mpn", ""), "mpn", MAX_SHORT),
        labels=tuple(
            _short(label, name, MAX_LABEL) if (label := get(name, "")) else ""
            for name in _LABEL_NAMES
        ),
    )


_LABEL_NAMES = tuple(f"custom_label_{n}" for n in range(LABEL_COUNT))
_TEXT_FIELDS = (
    "id", "title", "description", "link", "image_link", "price", "sale_price", "availability",
    "product_type", "google_product_category", "item_group_id", "gtin", "mpn", SALE_WINDOW,
    *_LABEL_NAMES,
)  # fmt: skip
"""The fields read as text (brand is read by `_brand`: it may be an object)."""


@lru_cache(maxsize=256)
def _availability(given: str) -> str:
    """The canonical availability of a spelling the spec allows, else `Rejected`."""
    spelled = _SPACE.sub(" ", given.lower())
    availability = AVAILABILITY.get(spelled)
    if availability is None:
        raise Rejected(
            "availability",
            f"{spelled[:40]!r}: expected in_stock, out_of_stock, preorder or backorder",
        )
    return availability


def _sale_window(text: str) -> tuple[float, float]:
    """(start, end) in Unix seconds of a ``start/end`` interval; a time without a UTC offset is
    read as UTC. Else `Rejected`."""
    start_text, sep, end_text = text.partition("/")
    if not sep or not start_text.strip() or not end_text.strip():
        raise Rejected(
            SALE_WINDOW,
            f"{text[:80]!r}: expected start/end in ISO 8601, "
            "'2026-11-27T00:00-05:00/2026-11-30T23:59-05:00'",
        )
    start, end = _instant(start_text.strip()), _instant(end_text.strip())
    if end <= start:
        raise Rejected(SALE_WINDOW, f"{text[:80]!r}: ends before it starts")
    return start, end


@lru_cache(maxsize=4096)
def _instant(text: str) -> float:
    """Unix seconds of one ISO 8601 date or date-time (memoised: a feed repeats its sales)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected(SALE_WINDOW, f"{text[:40]!r} is not an ISO 8601 date or time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@lru_cache(maxsize=1024)
def field_name(name: str) -> str:
    """Header spellings seen in real feeds: ``g:price``, ``Price``, ``image link``."""
    return name.strip().lower().removeprefix("g:").replace(" ", "_")


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return str(value)
    raise Rejected(name, f"expected text, got {type(value).__name__}")


def _short(given: str, name: str, limit: int) -> str:
    text = _plain(given)
    if len(text) > limit:
        raise Rejected(name, f"{len(text)} characters, more than {limit}")
    return text


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment; tags, comments, scripts and styles are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_BLOCK_TAGS = frozenset(("br", "p", "li", "div", "tr", "h1", "h2", "h3", "h4"))
"""Start tags `_TextOnly` turns into a space (they separate words)."""
_SIMPLE_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[ \t\n\r\f]*/?>")
"""A tag with no attributes (``<b>``, ``</p>``, ``<br/>``): what most feed descriptions hold."""
_RAW_TEXT_TAGS = frozenset(
    ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
     "plaintext")
)  # fmt: skip
"""Tags whose content an HTML parser may treat other than as text: always the full parser."""


def _simple_markup_text(text: str) -> str | None:
    """`_TextOnly`'s text of `text` when every ``<`` in it opens a simple tag (`_SIMPLE_TAG`)
    and none holds raw text; None otherwise (the full parser is needed). Each run of text
    between tags has its character references resolved on its own, as the parser does."""
    tags = list(_SIMPLE_TAG.finditer(text))
    if len(tags) != text.count("<"):
        return None
    parts: list[str] = []
    at = 0
    for match in tags:
        name = match.group(2).lower()
        if name in _RAW_TEXT_TAGS:
            return None
        parts.append(html.unescape(text[at : match.start()]))
        if not match.group(1) and name in _BLOCK_TAGS:
            parts.append(" ")
        at = match.end()
    parts.append(html.unescape(text[at:]))
    return "".join(parts)


def _plain(text: str) -> str:
    """Text with HTML tags and entities resolved to plain characters, whitespace collapsed.

    The result is plain text, never markup: templates escape it when they render it.
    """
    if not _NEEDS_WORK.search(text):
        return text.strip()  # the common case: plain text already
    if "<" in text:
        simple = _simple_markup_text(text)
        if simple is None:
            parser = _TextOnly()
            parser.feed(text)
            parser.close()
            simple = "".join(parser.parts)
        text = _TAG.sub(" ", simple)  # an unclosed tag the parser kept as text
    elif "&" in text:
        text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def _money(text: str, name: str) -> tuple[int, str]:
    """Minor units and currency of "105.29 USD" (or "USD 105.29")."""
    parts = text.split()
    if len(parts) != 2:
        raise Rejected(name, f"{text[:40]!r}: expected an amount and a currency, '105.29 USD'")
    amount, code = (parts[1], parts[0]) if _CURRENCY.match(parts[0]) else parts
    code = code.upper()
    if not _CURRENCY.match(code):
        raise Rejected(name, f"{text[:40]!r}: {code[:10]!r} is not an ISO 4217 currency code")
    if not _AMOUNT.match(amount):
        raise Rejected(name, f"{text[:40]!r}: {amount[:20]!r} is not an amount like 105.29")
    exponent = 0 if code in ZERO_DECIMAL_CURRENCIES else 2
    whole, _, fraction = amount.partition(".")  # the pattern made both plain digits
    if fraction[exponent:].strip("0"):
        raise Rejected(name, f"{text[:40]!r}: more decimals than {code} has")
    cents = fraction[:exponent].ljust(exponent, "0")
    return int(whole) * 10**exponent + (int(cents) if cents else 0), code


def _url(url: str, name: str) -> str:
    if len(url) > MAX_URL:
        raise Rejected(name, f"{len(url)} characters, more than {MAX_URL}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise Rejected(name, f"{url[:80]!r}: expected an absolute http(s) URL")
    if _URL_UNSAFE.search(url):
        raise Rejected(name, f"{url[:80]!r}: spaces, quotes and angle brackets must be encoded")
    return scheme.lower() + "://" + rest


def _brand(value: object) -> str:
    """A brand given as text, as ``{"name": ...}`` (schema.org style) or as a one-item list."""
    if isinstance(value, Mapping):
        if "name" not in value:
            raise Rejected(
                "brand", f"an object without 'name' (keys: {', '.join(map(str, value))[:60]})"
            )
        value = value["name"]
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Rejected("brand", f"expected text or {{'name': text}}, got {type(value).__name__}")
    brand = _plain(value)
    if len(brand) > MAX_BRAND:
        raise Rejected("brand", f"{len(brand)} characters, more than {MAX_BRAND}")
    return brand


@lru_cache(maxsize=4096)
def _category_path(product_type: str, google_category: str) -> str:
    """The retailer's product_type, else Google's category path (a bare numeric id has no
    readable name: it is kept only when nothing else is given). Memoised: a feed repeats a
    few hundred category paths over all its items."""
    path = _plain(product_type)
    google = _plain(google_category)
    if not path:
        path = google if google and not google.isdigit() else ""
    if "," in path and ">" not in path:
        path = path.split(",", 1)[0].strip()  # several product types: the first is primary
    path = " > ".join(p.strip() for p in path.split(">") if p.strip())
    if len(path) > MAX_CATEGORY_PATH:
        raise Rejected("product_type", f"{len(path)} characters, more than {MAX_CATEGORY_PATH}")
    return path
