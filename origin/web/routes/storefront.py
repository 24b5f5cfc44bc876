"""The demo storefront: home, product and cart page shells whose slots the edge fills.

Each page is a shell shared by every shopper (``Cache-Control: public``; it carries no visitor
data) with a slot placeholder per merchandising slot, ``<se-slot name=... anchor=...>`` holding
the slot's safe default. Served through the edge (`edge.composer`), the page arrives complete:
the edge puts this shopper's slot where each placeholder is, as the page streams. The home page
shows ``home-hero``, a product page (``/products/<sku>``) ``pdp-cross-sell`` anchored on its
product, the cart page ``cart-upsell`` (the edge reads the cart from its cookie).

It is a development tool: the app mounts it only when ``SHELFEDGE_ENV=dev`` (anyone may pick a
persona here), never in staging or production.

``?render=client`` serves the earlier client-fetch version of the same page instead: "Loading"
placeholders that `static/store.js` fills from ``/se/slot`` after the page (kept to measure
against, and for an origin without an edge in front). ``?persona=<segment>`` makes the origin
set a signed segment cookie, as a real login or CDP integration would (that answer is private).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from fragments.errors import InvalidIdentifier
from fragments.ids import VISITOR_ID_PATTERN, check_sku
from fragments.segment_cookie import COOKIE_NAME, VISITOR_COOKIE, sign_segment
from fragments.slots import SlotConfig
from origin.core.canary import RESERVED_SEGMENTS
from origin.core.catalog import Product
from origin.errors import StoreUnavailable
from origin.web.state import OriginState

SEGMENT_COOKIE_TTL = 30 * 24 * 3600
VISITOR_COOKIE_TTL = 365 * 24 * 3600
"""The edge's visitor cookie (`edge.context`): the segment cookie is bound to its value."""
_VISITOR_ID = re.compile(VISITOR_ID_PATTERN)
SHELL_CACHE_CONTROL = "public, max-age=30"
"""Page shells are the same for every shopper: any shared cache may keep them."""
HOME_SLOTS = ("home-hero",)
PRODUCT_SLOT = "product-cross-sell"
"""Anchored on the viewed product (fragments/slots.toml): the cross-sell is about it."""
CART_SLOT = "cart-complete"
"""Anchored on the cart: merged at the edge from the cart items' bundles."""
CLIENT_RENDER = "client"


@dataclass(frozen=True, slots=True)
class SlotRegion:
    """Where one slot goes on a page."""

    slot: SlotConfig
    anchor: str = ""


async def storefront(request: Request) -> Response:
    """The home page: the hero slot."""
    state: OriginState = request.app.state.origin
    regions = [SlotRegion(state.slots.slots[s]) for s in HOME_SLOTS if s in state.slots.slots]
    return await _page(request, "home", regions)


async def product_page(request: Request) -> Response:
    """A product page: the product and the cross-sell slot anchored on it."""
    state: OriginState = request.app.state.origin
    try:
        sku = check_sku(request.path_params["sku"])
        product = await state.store.product(sku)
    except InvalidIdentifier:
        product = None
    except StoreUnavailable:
        return HTMLResponse("<h1>The store is unavailable, try again</h1>", status_code=503)
    if product is None:
        return HTMLResponse("<h1>No such product</h1>", status_code=404)
    slot = state.slots.slots.get(PRODUCT_SLOT)
    regions = [SlotRegion(slot, product.sku)] if slot is not None else []
    return await _page(request, "product", regions, product)


async def cart_page(request: Request) -> Response:
    """The cart page: the items (from the cart cookie, by the page's script) and the upsell."""
    state: OriginState = request.app.state.origin
    slot = state.slots.slots.get(CART_SLOT)
    return await _page(request, "cart", [SlotRegion(slot)] if slot is not None else [])


async def _page(
    request: Request, kind: str, regions: list[SlotRegion], product: Product | None = None
) -> Response:
    state: OriginState = request.app.state.origin
    try:
        segments = [s for s in await state.store.segments() if s.id not in RESERVED_SEGMENTS]
    except StoreUnavailable:
        segments = []
    persona = request.query_params.get("persona")
    known = {s.id for s in segments}
    html = request.app.state.templates.get_template("storefront.html.j2").render(
        kind=kind,
        segments=segments,
        persona=persona if persona in known else None,
        regions=regions,
        product=product.card() if product is not None else None,
        client_render=request.query_params.get("render") == CLIENT_RENDER,
    )
    response = HTMLResponse(html, headers={"Cache-Control": SHELL_CACHE_CONTROL})
    if persona in known:
        response.headers["Cache-Control"] = "private, no-store"
        visitor = request.cookies.get(VISITOR_COOKIE, "")
        if not _VISITOR_ID.fullmatch(visitor):
            visitor = secrets.token_hex(16)
            response.set_cookie(
                VISITOR_COOKIE, visitor, max_age=VISITOR_COOKIE_TTL,
                httponly=True, secure=True, samesite="lax",
            )  # fmt: skip
        expires = int(time.time()) + SEGMENT_COOKIE_TTL
        value = sign_segment(persona, expires, state.settings.segment_secret, visitor)
        response.set_cookie(
            COOKIE_NAME, value, max_age=SEGMENT_COOKIE_TTL,
            httponly=True, secure=True, samesite="lax",
        )  # fmt: skip
    return response


_PALETTE = ("#0b7a75", "#2563eb", "#9333ea", "#c2410c", "#15803d", "#b91c1c", "#0369a1")


async def placeholder_image(request: Request) -> Response:
    """A small generated SVG per category (the demo catalog has no photos)."""
    name = request.path_params["name"][:32]
    color = _PALETTE[sum(map(ord, name)) % len(_PALETTE)]
    label = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="240" viewBox="0 0 240 240">'
        f'<rect width="240" height="240" fill="{color}" opacity="0.15"/>'
        f'<circle cx="120" cy="105" r="48" fill="{color}" opacity="0.55"/>'
        f'<text x="120" y="200" font-family="sans-serif" font-size="20" fill="{color}" '
        f'text-anchor="middle">{label}</text></svg>'
    )
    return Response(
        svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )
