"""The local edge: an ASGI server running the edge core in front of the origin (dev and tests).

The ``/se/*`` surface is `edge.surface`'s (route table, body limits and parsing): the slot, purge
by tag (the invalidation consumer's local purger; no token: a local edge trusts its callers), the
storefront's beacons and Prometheus metrics; everything else is proxied to the origin, like a
CDN in front of a whole site.

Experiments (``follow_experiments=True``, as `serve_edge` runs it): the published configuration
comes from the origin's ``/v1/edge-config`` with stale-while-revalidate
(`edge.adapters.config_refresher`), and exposures and attributed conversions leave in background
batches to the origin's ``/v1/events`` (`edge.adapters.event_batcher`), never on the response
path. A thin adapter: decisions come from `edge.flow` and `edge.router`; `LocalTransport`
carries the effects out (the in-memory `MemoryCacheStore` and the origin over httpx, whose
errors become an unanswered `FetchResult`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import uvicorn
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
from edge.browser_events import attribute
from edge.cache import CacheEntry, RevalidationTracker
from edge.config import EdgeConfig
from edge.context import parse_cookies
from edge.errors import BadSeRequest
from edge.flow import (
    Exposure,
    SlotRequest,
    drive_async,
    handle_slot,
    revalidate,
    with_server_timing,
)
from edge.memory import MemoryCacheStore
from edge.transport import FetchResult, OriginFetch
from fragments.ids import FragmentKey
from fragments.slots import load_slots

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
_JSON = "application/json"
_PROXIED_METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE")


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
        headers = {"If-None-Match": fetch.if_none_match} if fetch.if_none_match else {}
        try:
            response = await self.client.get(self.origin_url + fetch.path, headers=headers)
        except httpx.HTTPError as exc:
            return FetchResult(0, error=f"{type(exc).__name__}: {exc}")
        return FetchResult(response.status_code, response.content)


class LocalEdge:
    """The edge's state in one process: cache, revalidation tracker, origin client, metrics."""

    def __init__(
        self, config: EdgeConfig, origin_url: str, follow_experiments: bool = False
    ) -> None:
        self.config = config
        self.origin_url = origin_url.rstrip("/")
        self.follow_experiments = follow_experiments
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
        self.events_total = Counter(
            "shelfedge_edge_events",
            "Experiment events by outcome (sent, dropped_<reason>, skipped_<reason>)",
            ["outcome"],
            registry=self.registry,
        )
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(config.origin_timeout))
        self._background: set[asyncio.Task[None]] = set()
        self.configs = ConfigRefresher(self.client, self.origin_url)
        if follow_experiments:
            Gauge(
                "shelfedge_edge_experiment_config_last_success_timestamp_seconds",
                "Unix time the experiment configuration last came from the origin (0: never)",
                registry=self.registry,
            ).set_function(lambda: self.configs.last_success_unix)
        self.events = EventBatcher(
            self.client,
            self.origin_url,
            on_outcome=lambda outcome, n: self.events_total.labels(outcome).inc(n),
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
        """Queue an exposure for the origin (background batch; drops are counted)."""
        self.events.add(exposure.to_event(uuid.uuid4().hex))

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
        await self.client.aclose()


async def dispatch(request: Request) -> Response:
    """Every request: the edge's own ``/se/*`` endpoints (`edge.surface`), else the proxy."""
    route = surface.match_route(request.url.path)
    if route is None:
        return await proxy(request)
    if not route.allows(request.method):
        return Response("method not allowed\n", status_code=405, headers={"Allow": route.allow})
    length = request.headers.get("content-length")
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
    edge: LocalEdge = request.app.state.edge
    req = SlotRequest(
        slot=slot_id,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=surface.parse_query(request.url.query),
        now=time.time(),
        fresh_visitor_id=secrets.token_hex(16),
    )
    response, core_seconds = await drive_async(
        handle_slot(req, edge.current_config()), edge.transport
    )
    edge.requests.labels(response.cache_status).inc()
    if response.revalidate is not None:
        edge.schedule_revalidation(response.revalidate)
    if response.exposure is not None:
        edge.report_exposure(response.exposure)
    out = Response(response.body, status_code=response.status)
    for name, value in with_server_timing(response, core_seconds):
        out.headers.append(name, value)
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
    """The storefront's conversion beacons: attribute to variants, queue for the origin."""
    edge: LocalEdge = request.app.state.edge
    result = attribute(
        doc,
        edge.current_config().experiments,
        parse_cookies(request.headers.get("cookie")),
        time.time(),
        lambda: uuid.uuid4().hex,
    )
    queued = sum(1 for event in result.events if edge.events.add(event))
    for reason, n in result.skipped.items():
        edge.events_total.labels(f"skipped_{reason}").inc(n)
    return Response(
        surface.beacon_answer(queued, result.skipped), status_code=202, media_type=_JSON
    )


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
    try:
        upstream = await edge.client.request(
            request.method, url, headers=headers, content=await request.body()
        )
    except httpx.HTTPError as exc:
        return Response(f"origin unavailable: {type(exc).__name__}", status_code=502)
    out = Response(upstream.content, status_code=upstream.status_code)
    for name, value in upstream.headers.multi_items():
        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-encoding":
            out.headers.append(name, value)
    return out


def create_edge_app(
    config: EdgeConfig, origin_url: str, *, follow_experiments: bool = False
) -> Starlette:
    """The local edge app; `follow_experiments` polls the origin's published experiments."""
    edge = LocalEdge(config, origin_url, follow_experiments)

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


def serve_edge(port: int, origin_url: str, segment_secret: str, host: str = "127.0.0.1") -> int:
    config = EdgeConfig.from_slots(load_slots(), segment_secret)
    uvicorn.run(
        create_edge_app(config, origin_url, follow_experiments=True),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    return 0
