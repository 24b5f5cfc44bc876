"""The local edge: an ASGI server running the edge core in front of the origin (dev and tests).

``GET /se/slot/{slot}`` personalized slot HTML; ``POST /se/purge`` {"tags": [...]} purge by tag
(the invalidation consumer's local purger); ``POST /se/events`` the storefront's click /
add-to-cart / purchase beacons (attributed to experiment variants here); ``GET /se/metrics``
Prometheus; everything else is proxied to the origin, like a CDN in front of a whole site.

Experiments (``follow_experiments=True``, as `serve_edge` runs it): the published configuration
comes from the origin's ``/v1/edge-config`` with stale-while-revalidate
(`edge.adapters.config_refresher`), and exposures and attributed conversions leave in background
batches to the origin's ``/v1/events`` (`edge.adapters.event_batcher`), never on the response
path. A thin adapter: decisions come from `edge.flow` and `edge.router`; this module only
performs the effects. With a tracer provider configured (``shelfedge.tracing``) a slot request is
a span that continues the caller's ``traceparent`` and its origin fetch sends its own.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import replace
from typing import Any

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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.adapters.browser_events import MAX_BEACON_BODY, attribute
from edge.adapters.config_refresher import ConfigRefresher
from edge.adapters.event_batcher import EventBatcher
from edge.adapters.memory_store import MemoryCacheStore
from edge.cache import RevalidationTracker
from edge.config import EdgeConfig
from edge.context import parse_cookies
from edge.flow import (
    CacheRead,
    CacheWrite,
    Effect,
    Exposure,
    FetchResult,
    OriginFetch,
    SlotRequest,
    drive_async,
    handle_slot,
    revalidate,
    with_server_timing,
)
from fragments.ids import FragmentKey
from fragments.slots import load_slots

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
MAX_PURGE_BODY = 256 * 1024
_tracer = trace.get_tracer("shelfedge.edge")


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

    async def perform(self, effect: Effect) -> Any:
        if isinstance(effect, CacheRead):
            return self.cache.get(effect.key.cache_key)
        if isinstance(effect, CacheWrite):
            self.cache.put(effect.entry)
            return None
        return await self.fetch(effect)

    async def fetch(self, effect: OriginFetch) -> FetchResult:
        """Fetch from the origin, continuing the current trace (``traceparent``) when on."""
        headers = {"If-None-Match": effect.if_none_match} if effect.if_none_match else {}
        with _span("shelfedge.edge.origin_fetch", SpanKind.CLIENT, {"url.path": effect.path}):
            propagate.inject(headers)
            try:
                response = await self.client.get(self.origin_url + effect.path, headers=headers)
            except httpx.HTTPError as exc:
                return FetchResult(0, error=f"{type(exc).__name__}: {exc}")
        return FetchResult(response.status_code, response.content)

    def schedule_revalidation(self, key: FragmentKey) -> None:
        if not self.tracker.try_begin(key.cache_key, time.time()):
            return
        task = asyncio.create_task(self._revalidate(key))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _revalidate(self, key: FragmentKey) -> None:
        try:
            outcome, _ = await drive_async(revalidate(key, time.time()), self.perform)
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


async def slot(request: Request) -> Response:
    slot_id = request.path_params["slot"]
    with _span(
        "shelfedge.edge.slot", SpanKind.SERVER, {"shelfedge.slot": slot_id}, request.headers
    ):
        return await _slot(request)


async def _slot(request: Request) -> Response:
    edge: LocalEdge = request.app.state.edge
    req = SlotRequest(
        slot=request.path_params["slot"],
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        now=time.time(),
        fresh_visitor_id=secrets.token_hex(16),
    )
    response, core_seconds = await drive_async(
        handle_slot(req, edge.current_config()), edge.perform
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


async def purge(request: Request) -> Response:
    edge: LocalEdge = request.app.state.edge
    body = await request.body()
    try:
        if len(body) > MAX_PURGE_BODY:
            raise ValueError(f"body over {MAX_PURGE_BODY} bytes")
        tags = json.loads(body)["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError("'tags' must be a list of strings")
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"error": f'expected {{"tags": [...]}}: {exc}'}, status_code=400)
    removed = edge.cache.purge(tags)
    edge.purged.inc(removed)
    return JSONResponse({"purged": removed, "tags": len(tags)})


async def beacon(request: Request) -> Response:
    """The storefront's conversion beacons: attribute to variants, queue for the origin."""
    edge: LocalEdge = request.app.state.edge
    body = await request.body()
    try:
        if len(body) > MAX_BEACON_BODY:
            raise ValueError(f"body over {MAX_BEACON_BODY} bytes")
        doc = json.loads(body)
    except ValueError as exc:
        return JSONResponse({"error": f'expected {{"events": [...]}}: {exc}'}, status_code=400)
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
    return JSONResponse({"queued": queued, "skipped": result.skipped}, status_code=202)


async def metrics(request: Request) -> Response:
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
        routes=[
            Route("/se/slot/{slot}", slot),
            Route("/se/purge", purge, methods=["POST"]),
            Route("/se/events", beacon, methods=["POST"]),
            Route("/se/metrics", metrics),
            Route("/{path:path}", proxy, methods=["GET", "POST", "HEAD", "PUT", "DELETE"]),
        ],
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
        log_config=None,  # uvicorn logs through the root logger: JSON lines (shelfedge.logs)
        access_log=False,
        lifespan="on",
    )
    return 0
