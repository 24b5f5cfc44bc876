"""``GET /v1/bundles/{slot}`` and ``GET /v1/fragments/{slot}``: stored bundles, with cache headers.

The bundle endpoint is the hot path: validate, one Redis GET, compare the ETag, answer. It never
decodes the bundle or renders a template. An anchored slot's bundle (``?anchor=SKU`` instead of
``?segment=``) is built from current state on each request (`origin.core.anchored_bundles`):
the edge asks only on a miss or a revalidation. The fragment endpoint (for clients without an edge,
and as a fallback) reranks with an anonymous context and joins stored cards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from edge.assemble import assemble
from edge.context import ShopperContext
from edge.rerank import rerank
from fragments.bundle import decode_bundle
from fragments.errors import InvalidIdentifier
from fragments.headers import etag_matches
from fragments.ids import CONTROL_VARIANT, DEFAULT_LOCALE, FragmentKey
from origin.core.anchored_bundles import AnchoredBundles
from origin.core.builder import BundleBuilder
from origin.core.envelope import Envelope, open_envelope
from origin.errors import StoreUnavailable
from origin.web import problems
from origin.web.state import OriginState

BUNDLE_MEDIA_TYPE = "application/vnd.shelfedge.bundle+json"


def _key(request: Request) -> FragmentKey | Response:
    parsed = _parse_key(request.path_params["slot"], request.scope["query_string"])
    if isinstance(parsed, FragmentKey):
        return parsed
    return problems.unprocessable(dict(parsed))


@lru_cache(maxsize=4096)
def _parse_key(slot: str, query_string: bytes) -> FragmentKey | tuple[tuple[str, str], ...]:
    """The key a request names, or its invalid parameters (memoised: the same few URLs repeat)."""
    q = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    unknown = sorted(set(q) - {"segment", "anchor", "variant", "locale"})
    if unknown:
        return tuple((name, "unknown query parameter") for name in unknown)
    if ("segment" in q) == ("anchor" in q):
        return (("segment", "give exactly one of segment (a segment id) or anchor (a SKU)"),)
    variant, locale = q.get("variant", CONTROL_VARIANT), q.get("locale", DEFAULT_LOCALE)
    try:
        if "anchor" in q:
            return FragmentKey.anchored(slot, q["anchor"], variant, locale)
        return FragmentKey(slot, q["segment"], variant, locale)
    except InvalidIdentifier as exc:
        return ((exc.kind, str(exc)),)


async def _load(state: OriginState, key: FragmentKey) -> Envelope | Response:
    slot = state.slots.get(key.slot)
    if slot is not None and (slot.anchor is None) != (key.anchor is None):
        field = "segment" if key.anchor is not None else "anchor"
        kind = "per-segment" if slot.anchor is None else "anchored"
        return problems.unprocessable({field: f"slot {key.slot!r} is {kind}: use ?{field}="})
    try:
        if key.anchor is not None:
            return await _load_anchored(state, key)
        raw = await state.store.get_envelope(key)
        if raw is None:
            return await _missing(state, key)
    except StoreUnavailable as exc:
        state.metrics.store_errors.inc()
        return problems.store_unavailable(exc)
    return open_envelope(raw)


async def _load_anchored(state: OriginState, key: FragmentKey) -> Envelope | Response:
    if state.slots.get(key.slot) is None:
        return problems.not_found("slot", key.slot)
    if key.locale not in state.slots.locales:
        return problems.not_found("locale", key.locale)
    if state.anchored is None:
        state.anchored = AnchoredBundles(
            state.store, BundleBuilder(state.slots), max_hot=state.settings.max_hot_anchors
        )
    if not await state.anchored.known_variant(key.slot, key.variant):
        return problems.not_found("variant", key.variant)
    assert key.anchor is not None
    built = await state.anchored.envelope(key)
    if built is None:
        return problems.not_found("product", key.anchor)
    return open_envelope(built.envelope)


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
    response = Response(envelope.body, media_type=BUNDLE_MEDIA_TYPE)
    response.raw_headers.extend(envelope.stored.raw)
    return response


def _fragment_body(key: FragmentKey, envelope: Envelope) -> Response:
    bundle = decode_bundle(envelope.body)
    chosen = rerank(bundle.candidates, bundle.rerank, ShopperContext.anonymous(key.segment))
    html = assemble(bundle, chosen, key.variant)
    response = Response(html, media_type="text/html")
    response.raw_headers.extend(envelope.stored.raw)
    return response


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
        elif etag_matches(request.headers.get("if-none-match"), loaded.etag):
            response = Response(status_code=304)
            response.raw_headers.extend(loaded.stored.raw)
        else:
            response = body(key, loaded)
    _observe(state, endpoint, response.status_code, started)
    return response


def _observe(state: OriginState, endpoint: str, status: int, started: float) -> None:
    state.metrics.observe_request(endpoint, status, time.perf_counter() - started)
