"""The local edge: an ASGI server running the edge core in front of the origin (dev and tests).

The ``/se/*`` surface is `edge.surface`'s (route table, body limits and parsing): the slot, purge
by tag (the invalidation consumer's local purger; no token: a local edge trusts its callers), the
storefront's beacons and Prometheus metrics; everything else is proxied to the origin, like a
CDN in front of a whole site. HTML pages proxied for a GET are composed as they stream: their
slot placeholders are filled with this shopper's slots (`edge.adapters.local_compose` over
`edge.composer`); anything else passes through byte for byte.

Experiments (``follow_experiments=True``, as `serve_edge` runs it): the published configuration
comes from the origin's ``/v1/edge-config`` with stale-while-revalidate
(`edge.adapters.config_refresher`), and exposures and attributed conversions leave in background
batches to the origin's ``/v1/events`` (`edge.adapters.event_batcher`), never on the response
path. The storefront's behaviour beacons (views, cart changes, purchases, searches:
`edge.clickstream_beacons`) leave the same way to ``/v1/clickstream``. A consenting shopper's
segment cookie is refreshed from the origin's context service in a background task when due
(`edge.segment_refresh`); the refreshed cookie decides and is set on their next response.

A thin adapter: decisions come from `edge.flow` and `edge.router`; `LocalTransport`
carries the effects out (the in-memory `MemoryCacheStore` and the origin over httpx, whose
errors become an unanswered `FetchResult`). With a tracer provider configured
(``shelfedge.tracing``) a slot request is a span that continues the caller's ``traceparent`` and
its origin fetch sends its own.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import httpx
import uvicorn
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge import surface
from edge.adapters.config_refresher import ConfigRefresher
from edge.adapters.event_batcher import EventBatcher
from edge.adapters.local_compose import composable, compose_response
from edge.browser_events import attribute
from edge.cache import CacheEntry, RevalidationTracker
from edge.clickstream_beacons import track
from edge.config import EdgeConfig
from edge.context import parse_cookies
from edge.errors import BadSeRequest
from edge.event_buffer import CLICKSTREAM_FLUSH_DELAY_S, ORIGIN_CLICKSTREAM_PATH
from edge.flow import (
    EdgeResponse,
    Exposure,
    SlotRequest,
    drive_async,
    handle_slot,
    page_visitor_cookie,
    revalidate,
    with_server_timing,
)
from edge.memory import MemoryCacheStore
from edge.segment_refresh import (
    BEHAVIOUR_ASK_DELAY_S,
    DEFAULT_REFRESH_AFTER_S,
    Prepared,
    Refreshed,
    SegmentRefresher,
    parse_answer,
    refresh_visitor,
    segment_path,
)
from edge.transport import FetchResult, OriginFetch
from fragments.batch_signing import DEV_EVENT_KEYS, SigningKeys
from fragments.clickstream import ClickEvent
from fragments.ids import FragmentKey
from fragments.preview_tokens import PREVIEW_COOKIE
from fragments.slots import load_slots
from fragments.wire_events import ExperimentEvent

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
_JSON = "application/json"
_PROXIED_METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE")
_tracer = trace.get_tracer("shelfedge.edge")


def _span(
    name: str,
    kind: SpanKind,
    attributes: dict[str, str],
    parent: Mapping[str, str] | None = None,
) -> AbstractContextManager[object]:
    """A span when a tracer provider is configured, else nothing (no tracing cost)."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return nullcontext()
    context = propagate.extract(parent) if parent is not None else None
    return _tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)


MAX_PROXY_BODY = 1024 * 1024
"""Bodies the local edge forwards to the origin (admin forms, API calls) are at most this."""


@dataclass(frozen=True, slots=True)
class EdgeCredentials:
    """What the local edge proves itself with: the event batch keys it signs with, the token
    it reads the edge config with, and the token ``/se/purge`` requires (None: open, dev)."""

    event_keys: SigningKeys = field(default_factory=lambda: SigningKeys.parse(DEV_EVENT_KEYS))
    edge_config_token: str | None = None
    purge_token: str | None = field(default=None, repr=False)


async def bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is over `limit` bytes (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class LocalTransport:
    """The local edge's `AsyncTransport`: a memory store and the origin over httpx."""

    def __init__(self, store: MemoryCacheStore, client: httpx.AsyncClient, origin_url: str) -> None:
        self.store = store
        self.client = client
        self.origin_url = origin_url

    async def cache_read(self, key: FragmentKey) -> CacheEntry | None:
        return self.store.get(key.cache_key)

    async def cache_write(self, entry: CacheEntry) -> None:
        self.store.put(entry)

    async def origin_fetch(self, fetch: OriginFetch) -> FetchResult:
        """Fetch from the origin, continuing the current trace (``traceparent``) when on."""
        headers = {"If-None-Match": fetch.if_none_match} if fetch.if_none_match else {}
        with _span("shelfedge.edge.origin_fetch", SpanKind.CLIENT, {"url.path": fetch.path}):
            propagate.inject(headers)
            try:
                response = await self.client.get(self.origin_url + fetch.path, headers=headers)
            except httpx.HTTPError as exc:
                return FetchResult(0, error=f"{type(exc).__name__}: {exc}")
        return FetchResult(response.status_code, response.content)


class LocalEdge:
    """The edge's state in one process: cache, revalidation tracker, origin client, metrics."""

    def __init__(
        self,
        config: EdgeConfig,
        origin_url: str,
        follow_experiments: bool = False,
        credentials: EdgeCredentials | None = None,
        compose_pages: bool = True,
    ) -> None:
        self.config = config
        self.credentials = credentials or EdgeCredentials()
        self.origin_url = origin_url.rstrip("/")
        self.follow_experiments = follow_experiments
        self.compose_pages = compose_pages
        """Compose the slots of HTML pages passing through (`edge.adapters.local_compose`)."""
        self.cache = MemoryCacheStore()
        self.tracker = RevalidationTracker()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shelfedge_edge_requests",
            "Slot requests by cache status",
            ["cache"],
            registry=self.registry,
        )
        self.purged = Counter("shelfedge_edge_purged", "Entries purged", registry=self.registry)
        self.revalidations = Counter(
            "shelfedge_edge_revalidations",
            "Background revalidations",
            ["outcome"],
            registry=self.registry,
        )
        self.exposures = Counter(
            "shelfedge_edge_exposures",
            "Shoppers shown an experiment's variant (consenting, in the experiment), by variant",
            ["experiment", "variant"],
            registry=self.registry,
        )
        self.events_total = Counter(
            "shelfedge_edge_events",
            "Experiment events by outcome (sent, dropped_<reason>, skipped_<reason>)",
            ["outcome"],
            registry=self.registry,
        )
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(config.origin_timeout))
        self._background: set[asyncio.Task[None]] = set()
        self.configs = ConfigRefresher(
            self.client, self.origin_url, token=self.credentials.edge_config_token
        )
        if follow_experiments:
            Gauge(
                "shelfedge_edge_experiment_config_last_success_timestamp_seconds",
                "Unix time the experiment configuration last came from the origin (0: never)",
                registry=self.registry,
            ).set_function(lambda: self.configs.last_success_unix)
        self.events: EventBatcher[ExperimentEvent] = EventBatcher(
            self.client,
            self.origin_url,
            on_outcome=lambda outcome, n: self.events_total.labels(outcome).inc(n),
            keys=self.credentials.event_keys,
        )
        self.clicks_total = Counter(
            "shelfedge_edge_clickstream",
            "Clickstream events by outcome (sent, dropped_<reason>, skipped_<reason>)",
            ["outcome"],
            registry=self.registry,
        )
        self.clicks: EventBatcher[ClickEvent] = EventBatcher(
            self.client,
            self.origin_url,
            flush_interval=CLICKSTREAM_FLUSH_DELAY_S,
            on_outcome=lambda outcome, n: self.clicks_total.labels(outcome).inc(n),
            keys=self.credentials.event_keys,
            path=ORIGIN_CLICKSTREAM_PATH,
        )
        self.segments = SegmentRefresher(config.segment_refresh_after_s)
        self.segment_refreshes = Counter(
            "shelfedge_edge_segment_refreshes",
            "Background segment refreshes by outcome (refreshed, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self._edge_config = config
        self.transport = LocalTransport(self.cache, self.client, self.origin_url)

    def current_config(self) -> EdgeConfig:
        """The edge configuration with the current experiments (never waits for the origin)."""
        if not self.follow_experiments:
            return self.config
        experiments = self.configs.current()
        if experiments is not self._edge_config.experiments:
            self._edge_config = replace(self.config, experiments=experiments)
        return self._edge_config

    def report_exposure(self, exposure: Exposure) -> None:
        """Count an exposure and queue it for the origin (background batch; drops are counted)."""
        self.exposures.labels(exposure.experiment, exposure.variant).inc()
        self.events.add(exposure.to_event(uuid.uuid4().hex))

    def after_slot(self, response: EdgeResponse) -> None:
        """A slot decision's side effects: its count, background revalidation, exposure."""
        self.requests.labels(response.cache_status).inc()
        if response.revalidate is not None:
            self.schedule_revalidation(response.revalidate)
        if response.exposure is not None:
            self.report_exposure(response.exposure)

    def prepare_segment(self, headers: Mapping[str, str], now: float) -> Prepared:
        """The request as its decision should see it (the kept segment cookie, when it is
        newer), its ``Set-Cookie``; a due refresh is started in the background."""
        prepared = self.segments.prepare(headers, now, self.config.segment_secret)
        if prepared.refresh is not None:
            self.keep_running(self.refresh_segment(prepared.refresh))
        return prepared

    async def refresh_segment(self, visitor: str, *, first_delay: float = 0.0) -> None:
        """One background refresh of `visitor`'s segment (already marked in flight)."""
        answer = await refresh_visitor(
            self.segments, visitor, self._ask_segment, time.time, first_delay=first_delay
        )
        self.segment_refreshes.labels("refreshed" if answer else "failed").inc()

    async def _ask_segment(self, visitor: str) -> Refreshed | None:
        headers = {}
        if self.credentials.edge_config_token:
            headers["Authorization"] = f"Bearer {self.credentials.edge_config_token}"
        try:
            answer = await self.client.get(self.origin_url + segment_path(visitor), headers=headers)
        except httpx.HTTPError:
            return None
        return parse_answer(
            answer.status_code, answer.content, visitor, time.time(), self.config.segment_secret
        )

    def keep_running(self, work: Awaitable[object]) -> None:
        """Let ``work`` (a slot decision past its page's budget) finish in the background."""
        task = asyncio.ensure_future(_settled(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def schedule_revalidation(self, key: FragmentKey) -> None:
        if not self.tracker.try_begin(key.cache_key, time.time()):
            return
        task = asyncio.create_task(self._revalidate(key))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _revalidate(self, key: FragmentKey) -> None:
        try:
            outcome, _ = await drive_async(revalidate(key, time.time()), self.transport)
            self.revalidations.labels(outcome.split(":")[0]).inc()
        finally:
            self.tracker.end(key.cache_key)

    async def drain(self) -> None:
        """Wait for background revalidations (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def start(self) -> None:
        """Fetch the experiment configuration once before serving (a failure is not fatal)."""
        if self.follow_experiments:
            await self.configs.refresh()

    async def close(self) -> None:
        await self.drain()
        await self.configs.close()
        await self.events.close()
        await self.clicks.close()
        await self.client.aclose()


async def dispatch(request: Request) -> Response:
    """Every request: the edge's own ``/se/*`` endpoints (`edge.surface`), else the proxy."""
    route = surface.match_route(request.url.path)
    if route is None:
        return await proxy(request)
    if not route.allows(request.method):
        return Response("method not allowed\n", status_code=405, headers={"Allow": route.allow})
    length = request.headers.get("content-length")
    edge: LocalEdge = request.app.state.edge
    if route.endpoint is surface.Endpoint.PURGE and not surface.purge_authorized(
        edge.credentials.purge_token, request.headers.get("authorization")
    ):
        return Response(surface.PURGE_FORBIDDEN, status_code=403)
    if route.endpoint is surface.Endpoint.PREVIEW:
        return await preview(request)
    try:
        if route.endpoint is surface.Endpoint.PURGE:
            return purge(request, await surface.read_purge_order(request.stream(), length))
        if route.endpoint is surface.Endpoint.EVENTS:
            return beacon(request, await surface.read_beacon(request.stream(), length))
    except BadSeRequest as exc:
        return Response(surface.error_answer(exc), status_code=exc.status, media_type=_JSON)
    if route.endpoint is surface.Endpoint.SLOT:
        return await slot(request, route.slot)
    return metrics(request)


async def slot(request: Request, slot_id: str) -> Response:
    with _span(
        "shelfedge.edge.slot", SpanKind.SERVER, {"shelfedge.slot": slot_id}, request.headers
    ):
        return await _slot(request, slot_id)


async def _slot(request: Request, slot_id: str) -> Response:
    edge: LocalEdge = request.app.state.edge
    now = time.time()
    segment = edge.prepare_segment({k.lower(): v for k, v in request.headers.items()}, now)
    req = SlotRequest(
        slot=slot_id,
        headers=segment.headers,
        query=surface.parse_query(request.url.query),
        now=now,
        fresh_visitor_id=secrets.token_hex(16),
    )
    response, core_seconds = await drive_async(
        handle_slot(req, edge.current_config()), edge.transport
    )
    edge.after_slot(response)
    out = Response(response.body, status_code=response.status)
    for name, value in with_server_timing(response, core_seconds):
        out.headers.append(name, value)
    if segment.set_cookie is not None:
        out.headers.append("Set-Cookie", segment.set_cookie)
    return out


def purge(request: Request, order: surface.PurgeOrder) -> Response:
    """Evict the entries carrying the order's tags, or (soft) mark them stale."""
    edge: LocalEdge = request.app.state.edge
    if order.soft:
        touched = edge.cache.invalidate(order.tags, time.time())
    else:
        touched = edge.cache.purge(order.tags)
    edge.purged.inc(touched)
    return Response(surface.purge_answer(touched, len(order.tags)), media_type=_JSON)


def beacon(request: Request, doc: object) -> Response:
    """The storefront's beacons: conversions attributed to variants, behaviour to the
    clickstream; both queued for the origin."""
    edge: LocalEdge = request.app.state.edge
    cookies = parse_cookies(request.headers.get("cookie"))
    now = time.time()
    result = attribute(
        doc,
        edge.current_config().experiments,
        cookies,
        now,
        lambda: uuid.uuid4().hex,
        edge.config.segment_secret,
    )
    queued = sum(1 for event in result.events if edge.events.add(event))
    for reason, n in result.skipped.items():
        edge.events_total.labels(f"skipped_{reason}").inc(n)
    tracking = track(doc, cookies, now, lambda: uuid.uuid4().hex)
    tracked = sum(1 for event in tracking.events if edge.clicks.add(event))
    for reason, n in tracking.skipped.items():
        edge.clicks_total.labels(f"skipped_{reason}").inc(n)
    if tracking.events:
        visitor = tracking.events[0].visitor
        if edge.segments.note_behaviour(visitor, now):
            edge.keep_running(edge.refresh_segment(visitor, first_delay=BEHAVIOUR_ASK_DELAY_S))
    answer = surface.beacon_answer(queued, result.skipped, tracked, tracking.skipped)
    return Response(answer, status_code=202, media_type=_JSON)


async def preview(request: Request) -> Response:
    """GET /se/preview?code=<one-time code>&sx_<key>=<variant>: trade the code for the scoped
    preview token at the origin, keep it in an HttpOnly cookie, and redirect to the storefront
    with the override but without any secret in the URL."""
    edge: LocalEdge = request.app.state.edge
    code = request.query_params.get("code", "")
    headers = {}
    if edge.credentials.edge_config_token:
        headers["Authorization"] = f"Bearer {edge.credentials.edge_config_token}"
    try:
        answer = await edge.client.post(
            edge.origin_url + "/v1/preview/exchange", json={"code": code}, headers=headers
        )
    except httpx.HTTPError:
        return Response("preview: the origin is unavailable; try again", status_code=502)
    if answer.status_code != 200:
        return Response("preview: this link was already used or has expired", status_code=410)
    token = str(answer.json().get("token", ""))
    grant = token.split(".")
    max_age = (
        max(0, int(grant[3]) - int(time.time())) if len(grant) == 5 and grant[3].isdigit() else 0
    )
    forced = [(k, v) for k, v in request.query_params.items() if k.startswith("sx_")]
    target = "/" + ("?" + urlencode(forced[:4]) if forced else "")
    response = Response(status_code=303, headers={"Location": target, "Cache-Control": "no-store"})
    response.set_cookie(
        PREVIEW_COOKIE, token, max_age=max_age, httponly=True, secure=True, samesite="lax"
    )
    return response


def metrics(request: Request) -> Response:
    edge: LocalEdge = request.app.state.edge
    return Response(generate_latest(edge.registry), media_type=CONTENT_TYPE_LATEST)


async def proxy(request: Request) -> Response:
    """Forward anything else to the origin, as a CDN in front of the site would."""
    edge: LocalEdge = request.app.state.edge
    url = edge.origin_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    body = await bounded_body(request, MAX_PROXY_BODY)
    if body is None:
        return Response(f"body over {MAX_PROXY_BODY} bytes", status_code=413)
    started = time.perf_counter()
    try:
        upstream = await edge.client.send(
            edge.client.build_request(request.method, url, headers=headers, content=body),
            stream=True,
        )
    except httpx.HTTPError as exc:
        return Response(f"origin unavailable: {type(exc).__name__}", status_code=502)
    if edge.compose_pages and request.method == "GET" and composable(upstream):
        return compose_response(edge, request, upstream, time.perf_counter() - started)
    try:
        await upstream.aread()
    except httpx.HTTPError as exc:
        return Response(f"origin unavailable: {type(exc).__name__}", status_code=502)
    finally:
        await upstream.aclose()
    out = Response(upstream.content, status_code=upstream.status_code)
    for name, value in upstream.headers.multi_items():
        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-encoding":
            out.headers.append(name, value)
    sets_visitor = any(c.startswith("se_vid=") for c in upstream.headers.get_list("set-cookie"))
    if upstream.headers.get("content-type", "").startswith("text/html") and not sets_visitor:
        visitor = page_visitor_cookie(
            request.headers.get("cookie"), secrets.token_hex(16), edge.config
        )
        if visitor is not None:
            out.headers.append("Set-Cookie", visitor)
    return out


async def _settled(work: Awaitable[object]) -> None:
    """Await ``work``, whatever its outcome (a background slot decision)."""
    try:
        await work
    except Exception:  # its page has its fallback already; nothing waits for this one
        return


def create_edge_app(
    config: EdgeConfig,
    origin_url: str,
    *,
    follow_experiments: bool = False,
    credentials: EdgeCredentials | None = None,
    compose_pages: bool = True,
) -> Starlette:
    """The local edge app; `follow_experiments` polls the origin's published experiments;
    `compose_pages` fills the slot placeholders of HTML pages (off: pass them through)."""
    edge = LocalEdge(config, origin_url, follow_experiments, credentials, compose_pages)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await edge.start()
        try:
            yield
        finally:
            await edge.close()

    app = Starlette(
        routes=[Route("/{path:path}", dispatch, methods=list(_PROXIED_METHODS))],
        lifespan=lifespan,
    )
    app.state.edge = edge
    return app


def serve_edge(
    port: int,
    origin_url: str,
    segment_secret: str,
    host: str = "127.0.0.1",
    credentials: EdgeCredentials | None = None,
    *,
    consent_required: bool = False,
    debug_headers: bool = False,
    segment_refresh_after_s: float = DEFAULT_REFRESH_AFTER_S,
) -> int:
    config = replace(
        EdgeConfig.from_slots(load_slots(), segment_secret),
        consent_required=consent_required,
        debug_headers=debug_headers,
        segment_refresh_after_s=segment_refresh_after_s,
    )
    uvicorn.run(
        create_edge_app(config, origin_url, follow_experiments=True, credentials=credentials),
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # uvicorn logs through the root logger: JSON lines (shelfedge.logs)
        access_log=False,
        lifespan="on",
    )
    return 0
