"""The demo storefront page: server-rendered, with slots filled by the edge in front of it.

Open it through the local edge (which proxies everything but its own ``/se/*`` paths to the
origin), so slot requests carry the shopper's first-party cookies. ``?persona=<segment>`` makes
the origin set a signed segment cookie, as a real login or CDP integration would. It is a
development tool: the app mounts it only when ``SHELFEDGE_ENV=dev`` (anyone may pick a
persona here), never in staging or production.
"""

from __future__ import annotations

import re
import secrets
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from fragments.segment_cookie import COOKIE_NAME, VISITOR_COOKIE, sign_segment
from origin.core.canary import RESERVED_SEGMENTS
from origin.errors import StoreUnavailable
from origin.web.state import OriginState

SEGMENT_COOKIE_TTL = 30 * 24 * 3600
"""The edge's visitor cookie (`edge.context`): the segment cookie is bound to its value."""
VISITOR_COOKIE_TTL = 365 * 24 * 3600
_VISITOR_ID = re.compile(r"[0-9a-f]{32}")


async def storefront(request: Request) -> Response:
    state: OriginState = request.app.state.origin
    try:
        segments = [s for s in await state.store.segments() if s.id not in RESERVED_SEGMENTS]
    except StoreUnavailable:
        segments = []
    persona = request.query_params.get("persona")
    known = {s.id for s in segments}
    html = request.app.state.templates.get_template("storefront.html.j2").render(
        segments=segments,
        persona=persona if persona in known else None,
        slots=list(state.slots.slots.values()),
    )
    response = HTMLResponse(html, headers={"Cache-Control": "private, no-store"})
    if persona in known:
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
