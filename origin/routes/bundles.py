"""``GET /v1/bundles/{slot}`` and ``GET /v1/fragments/{slot}``: stored bundles, with cache headers.

The bundle endpoint is the hot path: validate, one Redis GET, compare the ETag, answer. It never
decodes the bundle or renders a template. The fragment endpoint (for clients without an edge,
and as a fallback) reranks with an anonymous context and joins stored cards.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from edge.assemble import assemble
from edge.context import ShopperContext
from edge.rerank import rerank
from fragments.bundle import decode_bundle
from fragments.errors import InvalidIdentifier
from fragments.headers import etag_matches
from fragments.keys import CONTROL_VARIANT, DEFAULT_LOCALE, FragmentKey
from origin import problems
from origin.envelope import Envelope, open_envelope
from origin.errors import StoreUnavailable
from origin.state import OriginState

BUNDLE_MEDIA_TYPE = "application/vnd.shelfedge.bundle+json"


def _key(request: Request) -> FragmentKey | Response:
    q = request.query_params
    unknown = sorted(set(q) - {"segment", "variant", "locale"})
    if unknown:
        return problems.unprocessable(dict.fromkeys(unknown, "unknown query parameter"))
    if "segment" not in q:
        return problems.unprocessable({"segment": "required"})
    try:
        return FragmentKey(
            request.path_params["slot"],
            q["segment"],
            q.get("variant", CONTROL_VARIANT),
            q.get("locale", DEFAULT_LOCALE),
        )
    except InvalidIdentifier as exc:
        return problems.unprocessable({exc.kind: str(exc)})


async def _load(state: OriginState, key: FragmentKey) -> Envelope | Response:
    try:
        raw = await state.store.get_envelope(key)
        if raw is None:
            return await _missing(state, key)
    except StoreUnavailable as exc:
        state.metrics.store_errors.inc()
        return problems.unavailable(str(exc))
    return open_envelope(raw)


async def _missing(state: OriginState, key: FragmentKey) -> Response:
    """Name the part of the key that does not exist (cold path)."""
    if state.slots.get(key.slot) is None:
        return problems.not_found("slot", key.slot)
    if key.locale not in state.slots.locales:
        return problems.not_found("locale", key.locale)
    if key.segment not in state.segment_ids:
        state.segment_ids = frozenset(s.id for s in await state.store.segments())
        if key.segment not in state.segment_ids:
            return problems.not_found("segment", key.segment)
    return problems.not_found("variant", key.variant)


async def get_bundle(request: Request) -> Response:
    return await _serve(request, "bundle", _bundle_body)


async def get_fragment(request: Request) -> Response:
    return await _serve(request, "fragment", _fragment_body)


def _bundle_body(key: FragmentKey, envelope: Envelope) -> Response:
    return Response(envelope.body, headers=dict(envelope.headers), media_type=BUNDLE_MEDIA_TYPE)


def _fragment_body(key: FragmentKey, envelope: Envelope) -> Response:
    bundle = decode_bundle(envelope.body)
    chosen = rerank(bundle.candidates, bundle.rerank, ShopperContext.anonymous(key.segment))
    html = assemble(bundle, chosen, key.variant)
    return Response(html, headers=dict(envelope.headers), media_type="text/html")


async def _serve(
    request: Request, endpoint: str, body: Callable[[FragmentKey, Envelope], Response]
) -> Response:
    """Validate, load, answer 304 when the ETag matches, else build the body."""
    state: OriginState = request.app.state.origin
    started = time.perf_counter()
    key = _key(request)
    if isinstance(key, Response):
        response = key
    else:
        loaded = await _load(state, key)
        if isinstance(loaded, Response):
            response = loaded
        elif etag_matches(request.headers.get("if-none-match"), loaded.etag.strip('"')):
            response = Response(status_code=304, headers=dict(loaded.headers))
        else:
            response = body(key, loaded)
    _observe(state, endpoint, response.status_code, started)
    return response


def _observe(state: OriginState, endpoint: str, status: int, started: float) -> None:
    state.metrics.bundle_requests.labels(endpoint, str(status)).inc()
    state.metrics.request_seconds.labels(endpoint).observe(time.perf_counter() - started)
