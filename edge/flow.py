"""The per-request decision as a generator of effects, in the spirit of httpx's auth flows.

`handle_slot` never performs I/O: it *yields* what it needs (the effects of `edge.transport`:
`CacheRead`, `OriginFetch`, `CacheWrite`) and is sent their typed replies; it *returns* the
response, which may ask the adapter to revalidate a key in the background and may carry an
exposure to report. `revalidate` is the background flow. `drive_sync` and `drive_async` are the
only code that runs a flow: they carry each effect out on a transport (`edge.transport.Transport`
or `AsyncTransport`) and time the core's own CPU share (the time spent inside the generator),
which the response reports in ``Server-Timing``.

A request in preview mode (it carries the valid QA preview token, ``sx_token``) also gets
``X-Shelfedge-Config-Version``: the experiment config version that decided it, so QA can tell when
a publication reached this edge. Shoppers never get it (the disclosure rule).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from edge.anchors import cart_anchors, cart_items, merge_anchored, product_anchor
from edge.assemble import assemble
from edge.cache import CacheEntry, Freshness, classify, entry_from_bytes
from edge.config import EdgeConfig
from edge.context import (
    CONSENT_COOKIE,
    RequestShopper,
    ShopperContext,
    is_visitor_id,
    parse_cookies,
    read_shopper,
)
from edge.rerank import RerankOverrides, rerank
from edge.router import (
    CONTROL,
    OVERRIDE_PREFIX,
    PREVIEW_TOKEN_PARAM,
    STICKY_COOKIE,
    Assignment,
    RouteInput,
    encode_sticky,
    parse_sticky,
    preview_grant,
    route,
)
from edge.transport import (
    AsyncTransport,
    CacheRead,
    CacheWrite,
    Effect,
    FetchResult,
    OriginFetch,
    Reply,
    Transport,
)
from fragments.bundle import Bundle
from fragments.errors import BundleFormatError, InvalidIdentifier
from fragments.ids import CONTROL_VARIANT, FragmentKey
from fragments.preview_tokens import PREVIEW_COOKIE
from fragments.segment_cookie import VISITOR_COOKIE
from fragments.sticky_cookie import sign_sticky, verify_sticky
from fragments.wire_events import ExperimentEvent

VISITOR_COOKIE_MAX_AGE = 365 * 24 * 3600
STICKY_COOKIE_MAX_AGE = 90 * 24 * 3600
_T = TypeVar("_T")

Flow = Generator[Effect, Reply, _T]
"""A decision: yields effects, is sent their replies, returns its result."""


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """One shopper's request for one slot."""

    slot: str
    headers: Mapping[str, str]
    """Lower-cased request headers."""
    query: Mapping[str, str]
    now: float
    fresh_visitor_id: str
    """A new random id the adapter made, used if the request has none."""
    shopper: RequestShopper | None = None
    """The cookies and context already read from these same headers, time and fresh id
    (`edge.context.read_shopper`: a composed page reads them once for all its slots);
    None: the decision reads them."""


@dataclass(frozen=True, slots=True)
class EdgeResponse:
    """What the adapter sends to the browser, plus background work."""

    status: int
    body: str
    headers: tuple[tuple[str, str], ...]
    cache_status: str
    """HIT, STALE, MISS, REVALIDATED or FALLBACK."""
    variant: str
    revalidate: FragmentKey | None = None
    """Revalidate this key in the background (STALE)."""
    context: ShopperContext | None = None
    assignment: Assignment | None = None
    exposure: Exposure | None = None
    """An exposure to report (in the background) when the shopper is in an experiment and
    consented to tracking."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """A shopper saw a variant of an experiment in a slot."""

    experiment: str
    variant: str
    visitor_id: str
    slot: str
    segment: str
    at: float
    pre_activity: int = 0
    """What the visitor did before this exposure, as the context cookie tells it (recently viewed
    categories plus cart items): the covariate CUPED adjusts results with (only the first
    exposure's value counts)."""
    bundle_version: int | None = None
    """The shown bundle's version (a merged cart slot: its most recent anchor's bundle)."""
    content_hash: str | None = None
    """The shown bundle's content hash: what the shopper saw, for temporal alignment."""

    def to_event(self, event_id: str) -> ExperimentEvent:
        """The ``exposure`` event the origin's ``POST /v1/events`` takes
        (`fragments.wire_events`)."""
        return ExperimentEvent(
            id=event_id,
            type="exposure",
            experiment=self.experiment,
            variant=self.variant,
            visitor=self.visitor_id,
            at=self.at,
            slot=self.slot,
            segment=self.segment,
            pre_activity=self.pre_activity,
            bundle_version=self.bundle_version,
            content_hash=self.content_hash,
        )


CONFIG_VERSION_HEADER = "X-Shelfedge-Config-Version"
"""The serving experiment config version; debug-mode and preview responses only."""


def handle_slot(req: SlotRequest, config: EdgeConfig) -> Flow[EdgeResponse]:
    """Context -> route -> cache -> rerank -> assemble, for one slot request.

    A per-segment slot reads one bundle. An anchored slot (`EdgeConfig.anchors`) reads the
    bundle of the viewed product (``?sku=``), or of up to three cart items and merges them
    (`edge.anchors`); without an anchor it serves the slot's safe default.
    """
    shopper = req.shopper or read_shopper(
        req.headers,
        now=req.now,
        secret=config.segment_secret,
        default_segment=config.default_segment,
        fresh_visitor_id=req.fresh_visitor_id,
    )
    response = yield from _handle_slot(req, config, shopper.cookies, shopper.context)
    token = req.query.get(PREVIEW_TOKEN_PARAM) or shopper.cookies.get(PREVIEW_COOKIE)
    if not config.debug_headers and preview_grant(token, config.experiments, req.now) is None:
        return response
    version = (CONFIG_VERSION_HEADER, str(config.experiments.version))
    return replace(response, headers=(*response.headers, version))


def _handle_slot(
    req: SlotRequest, config: EdgeConfig, cookies: Mapping[str, str], ctx: ShopperContext
) -> Flow[EdgeResponse]:
    if req.slot not in config.fallbacks:
        return _response(config, 404, "", "FALLBACK", ctx, None, cookies)
    locale = config.pick_locale(req.query.get("locale"), req.headers.get("accept-language"))
    if config.experiments.for_slot(req.slot):
        assignment = route(config.experiments, _route_input(req, ctx, locale, cookies, config))
    else:  # what `route` answers when no experiment runs in the slot
        assignment = CONTROL
    kind = config.anchors.get(req.slot)
    cart = cart_items(cookies)
    try:
        if kind is None:
            keys = [FragmentKey(req.slot, ctx.segment, assignment.variant, locale)]
        else:
            anchors = _anchors(kind, req.query, cart)
            keys = [FragmentKey.anchored(req.slot, a, assignment.variant, locale) for a in anchors]
    except InvalidIdentifier:
        return _fallback(config, req.slot, ctx, assignment, cookies)
    bundles: list[Bundle] = []
    statuses: list[str] = []
    revalidate_key: FragmentKey | None = None
    for key in keys:
        obtained = yield from _obtain(key, req.now)
        if obtained is None:
            continue
        entry, status, stale = obtained
        bundles.append(entry.bundle)
        statuses.append(status)
        revalidate_key = revalidate_key or stale
    bundle = bundles[0] if kind is None and bundles else merge_anchored(bundles, frozenset(cart))
    if bundle is None:
        return _fallback(config, req.slot, ctx, assignment, cookies)
    changes = assignment.changes
    rank_ctx = ShopperContext.anonymous(ctx.segment) if changes.origin_rendered else ctx
    if kind is not None:
        # The cart cookie is functional: what is in the cart never shows, consent or not.
        rank_ctx = replace(rank_ctx, cart_skus=rank_ctx.cart_skus | frozenset(cart))
    overrides = RerankOverrides(changes.shown, changes.recency_boost, changes.price_floor)
    chosen = rerank(bundle.candidates, bundle.rerank, rank_ctx, overrides)
    html = assemble(bundle, chosen, assignment.variant)
    status = max(statuses, key=_STATUS_ORDER.index)
    return _response(
        config,
        200,
        html,
        status,
        ctx,
        assignment,
        cookies,
        revalidate_key,
        req.now,
        req.slot,
        bundle,
    )


_STATUS_ORDER = ("HIT", "STALE", "REVALIDATED", "MISS")
"""A merged (cart) slot reports the least fresh of its anchors' statuses."""


def _anchors(kind: str, query: Mapping[str, str], cart: tuple[str, ...]) -> tuple[str, ...]:
    """The anchor SKUs of an anchored slot request: the viewed product, or the cart's latest."""
    if kind == "product":
        anchor = product_anchor(query)
        return (anchor,) if anchor is not None else ()
    return cart_anchors(cart)


def _obtain(
    key: FragmentKey, now: float
) -> Flow[tuple[CacheEntry, str, FragmentKey | None] | None]:
    """One bundle through the cache: (entry, cache status, key to revalidate) or None when
    neither the cache nor the origin can give one."""
    read = CacheRead(key)
    entry = read.reply((yield read))
    state = classify(entry, now)
    if entry is not None and state is Freshness.FRESH:
        return entry, "HIT", None
    if entry is not None and state is Freshness.STALE:
        return entry, "STALE", key
    fetch = OriginFetch(key, key.bundle_path(), entry.etag if entry is not None else None)
    result = fetch.reply((yield fetch))
    fetched = _from_origin(entry, result, now)
    if fetched is not None:
        write = CacheWrite(fetched)
        write.reply((yield write))
        status = "REVALIDATED" if entry is not None and result.status == 304 else "MISS"
        return fetched, status, None
    if entry is not None and entry.within_stale_if_error(now):
        return entry, "STALE", None
    return None


def visitor_cookie(visitor_id: str) -> str:
    """The ``Set-Cookie`` value that gives a new visitor their id."""
    return (
        f"{VISITOR_COOKIE}={visitor_id}; Max-Age={VISITOR_COOKIE_MAX_AGE}; Path=/; "
        "HttpOnly; Secure; SameSite=Lax"
    )


def _route_input(
    req: SlotRequest,
    ctx: ShopperContext,
    locale: str,
    cookies: Mapping[str, str],
    config: EdgeConfig,
) -> RouteInput:
    return RouteInput(
        visitor_id=ctx.visitor_id,
        slot=req.slot,
        now=req.now,
        attributes={
            "segment": ctx.segment,
            "country": ctx.country or "",
            "device": ctx.device,
            "locale": locale,
            "consent": "1" if ctx.personalize else "0",
            "cart_size": float(len(ctx.cart_skus)),
            "page": req.query.get("page", "")[:256],
        },
        sticky=_sticky(cookies, ctx, config),
        overrides={
            k.removeprefix(OVERRIDE_PREFIX): v
            for k, v in req.query.items()
            if k.startswith(OVERRIDE_PREFIX) and k != PREVIEW_TOKEN_PARAM
        },
        preview_token=req.query.get(PREVIEW_TOKEN_PARAM) or cookies.get(PREVIEW_COOKIE),
    )


def _sticky(
    cookies: Mapping[str, str], ctx: ShopperContext, config: EdgeConfig
) -> dict[str, tuple[int, int]]:
    """The sticky assignments signed for this visitor (anything else: none)."""
    return parse_sticky(
        verify_sticky(cookies.get(STICKY_COOKIE), ctx.visitor_id, config.segment_secret)
    )


def revalidate(key: FragmentKey, now: float) -> Flow[str]:
    """Background refresh of one key; returns what happened (for logs and tests)."""
    read = CacheRead(key)
    entry = read.reply((yield read))
    fetch = OriginFetch(key, key.bundle_path(), entry.etag if entry is not None else None)
    result = fetch.reply((yield fetch))
    fetched = _from_origin(entry, result, now)
    if fetched is None:
        return f"failed: {result.error or result.status}"
    write = CacheWrite(fetched)
    write.reply((yield write))
    return "not-modified" if result.status == 304 else "updated"


def _from_origin(entry: CacheEntry | None, result: FetchResult, now: float) -> CacheEntry | None:
    """The entry to store after an origin answer, or None if the answer is unusable."""
    if result.status == 304 and entry is not None:
        return entry.refreshed(now)
    if result.status == 200:
        try:
            return entry_from_bytes(result.body, now)
        except BundleFormatError:
            return None
    return None


def _fallback(
    config: EdgeConfig,
    slot: str,
    ctx: ShopperContext,
    assignment: Assignment,
    cookies: Mapping[str, str],
) -> EdgeResponse:
    body = config.fallbacks.get(slot, "")
    return _response(config, 200, body, "FALLBACK", ctx, assignment, cookies, slot=slot)


def _response(
    config: EdgeConfig,
    status: int,
    body: str,
    cache_status: str,
    ctx: ShopperContext,
    assignment: Assignment | None,
    cookies: Mapping[str, str],
    revalidate_key: FragmentKey | None = None,
    now: float = 0.0,
    slot: str = "",
    bundle: Bundle | None = None,
) -> EdgeResponse:
    variant = assignment.variant if assignment is not None else CONTROL_VARIANT
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "private, no-store"),
        ("X-Shelfedge-Cache", cache_status),
        ("X-Shelfedge-Variant", variant),
    ]
    debug = assignment is not None and (config.debug_headers or assignment.reason == "forced")
    if assignment is not None and assignment.experiment is not None and debug:
        headers.append(("X-Shelfedge-Experiment", f"{assignment.experiment};{assignment.reason}"))
    may_store = ctx.personalize or not config.consent_required
    if ctx.new_visitor and may_store:
        headers.append(("Set-Cookie", visitor_cookie(ctx.visitor_id)))
    exposure = None
    shown = status == 200 and cache_status != "FALLBACK"  # a fallback shows no variant
    if assignment is not None and assignment.experiment is not None and shown:
        if assignment.sticky_new and may_store:
            sticky = _sticky(cookies, ctx, config)
            sticky[assignment.experiment] = (assignment.variant_index, assignment.bucket_version)
            value = sign_sticky(encode_sticky(sticky), ctx.visitor_id, config.segment_secret)
            headers.append(
                (
                    "Set-Cookie",
                    f"{STICKY_COOKIE}={value}; Max-Age={STICKY_COOKIE_MAX_AGE}; "
                    "Path=/; HttpOnly; Secure; SameSite=Lax",
                )
            )
        if assignment.in_experiment and ctx.personalize:
            exposure = Exposure(
                assignment.experiment, variant, ctx.visitor_id, slot, ctx.segment, now,
                min(1000, len(ctx.recent_categories) + len(ctx.cart_skus)),
                bundle.version if bundle is not None else None,
                bundle.content_hash if bundle is not None else None,
            )  # fmt: skip
    return EdgeResponse(
        status, body, tuple(headers), cache_status, variant, revalidate_key, ctx, assignment,
        exposure,
    )  # fmt: skip


def page_visitor_cookie(
    cookie_header: str | None, fresh_visitor_id: str, config: EdgeConfig
) -> str | None:
    """The ``Set-Cookie`` value an adapter adds to a page it passes through when the browser
    has no visitor id yet (and the consent policy allows one), else None.

    Why: a page's slots are fetched in parallel; without an id each slot response would mint
    its own and the last one would win, so the sticky cookie (signed for one id) and the
    exposures (under another) would no longer match the visitor the browser keeps.
    """
    cookies = parse_cookies(cookie_header)
    if is_visitor_id(cookies.get(VISITOR_COOKIE, "")):
        return None
    if config.consent_required and cookies.get(CONSENT_COOKIE) != "1":
        return None
    return visitor_cookie(fresh_visitor_id)


class _Stepper(Generic[_T]):
    """Advances a flow one effect at a time and sums the seconds spent inside it (the core)."""

    __slots__ = ("_result", "core", "flow")

    def __init__(self, flow: Flow[_T]) -> None:
        self.flow = flow
        self.core = 0.0
        self._result: _T

    def send(self, reply: Reply) -> Effect | None:
        """The flow's next effect, or None once it has returned."""
        started = time.perf_counter()
        try:
            effect: Effect | None = self.flow.send(reply)
        except StopIteration as stop:
            self._result, effect = stop.value, None
        self.core += time.perf_counter() - started
        return effect

    def outcome(self) -> tuple[_T, float]:
        return self._result, self.core


def drive_sync(flow: Flow[_T], transport: Transport) -> tuple[_T, float]:
    """Run a flow on a synchronous transport; return its result and the core's seconds."""
    stepper = _Stepper(flow)
    effect = stepper.send(None)
    while effect is not None:
        effect = stepper.send(effect.via(transport))
    return stepper.outcome()


async def drive_async(flow: Flow[_T], transport: AsyncTransport) -> tuple[_T, float]:
    """Run a flow on an asynchronous transport; return its result and the core's seconds."""
    stepper = _Stepper(flow)
    effect = stepper.send(None)
    while effect is not None:
        effect = stepper.send(await effect.via_async(transport))
    return stepper.outcome()


def with_server_timing(response: EdgeResponse, core_seconds: float) -> list[tuple[str, str]]:
    """The response headers plus ``Server-Timing`` with the edge's decision time."""
    return [*response.headers, ("Server-Timing", f"edge;dur={core_seconds * 1000:.3f}")]
