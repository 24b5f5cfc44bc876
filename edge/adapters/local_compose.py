"""The local edge's page composition: an origin HTML response streamed with its slots filled.

`compose_response` turns the proxied origin response (opened with ``stream=True``) into a
streaming response: `edge.composer.StreamComposer` over the origin's body chunks, each slot
decided by `edge.flow.handle_slot` on the local edge's transport (the ``/se/slot`` decision,
counted, revalidated and exposed the same way). A decision that misses its page's budget is
handed to the edge to finish in the background. Only HTML (`edge.compose.is_composable`) with
a body, in a content encoding httpx undoes (gzip, deflate), is composed. The slots are decided
with the segment cookie `edge.segment_refresh` prepares (a newer kept one is used and set).

A thin adapter: what goes where is decided in `edge.composer`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
from starlette.requests import Request
from starlette.responses import StreamingResponse

from edge import surface
from edge.compose import Placeholder, is_composable
from edge.composer import StreamComposer, page_request, slot_request, stream_headers
from edge.flow import EdgeResponse, drive_async, handle_slot

if TYPE_CHECKING:
    from edge.adapters.local_server import LocalEdge

_NO_BODY = frozenset({204, 304})


_DECODED = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
"""Content encodings httpx always undoes (brotli and zstd only with optional packages)."""


def composable(upstream: httpx.Response) -> bool:
    """Whether the origin's answer is a page to compose: HTML with a body, in an encoding
    httpx undoes (anything else is passed through as the proxy always did)."""
    encoding = upstream.headers.get("content-encoding", "").strip().lower()
    return (
        upstream.status_code not in _NO_BODY
        and encoding in _DECODED
        and is_composable(upstream.headers.get("content-type"))
    )


def compose_response(
    edge: LocalEdge, request: Request, upstream: httpx.Response, shell_seconds: float
) -> StreamingResponse:
    """The composed page, streamed; the origin response is closed when the stream ends."""
    config = edge.current_config()
    now = time.time()
    segment = edge.prepare_segment({k.lower(): v for k, v in request.headers.items()}, now)
    headers = dict(segment.headers)
    page, set_cookie = page_request(
        headers,
        request.url.path,
        surface.parse_query(request.url.query),
        now,
        config,
        secrets.token_hex(16),
    )

    async def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        outcome = await drive_async(
            handle_slot(slot_request(page, placeholder), config), edge.transport
        )
        edge.after_slot(outcome[0])
        return outcome

    composer = StreamComposer(
        upstream.aiter_bytes(), decide, config.compose_budget, adopt=edge.keep_running
    )

    async def body() -> AsyncIterator[bytes]:
        try:
            async for part in composer.stream():
                yield part
        finally:
            await upstream.aclose()

    out = StreamingResponse(body(), status_code=upstream.status_code)
    for name, value in stream_headers(upstream.headers.multi_items(), set_cookie, shell_seconds):
        out.headers.append(name, value)
    if segment.set_cookie is not None:
        out.headers.append("Set-Cookie", segment.set_cookie)
    return out
