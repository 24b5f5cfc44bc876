"""The origin ASGI application: routes, lifespan-managed resources, error handling.

Resources (the Redis pool, the store, metrics) are created in the lifespan and reached through
``app.state``; configuration comes from one `Settings` object passed to `create_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fragments.slots import SlotCatalog, load_slots
from origin.core.redis_client import redis_client
from origin.core.store import Store
from origin.core.token_bucket import RedisTokenBucket
from origin.events.known import KnownExperiments, store_loader
from origin.events.sink import EventSink, KafkaEventSink, NoKafkaSink
from origin.experiments.store import ExperimentStore
from origin.experiments.templates import TemplateCheck
from origin.settings import Settings
from origin.web.admin import routes as admin_routes
from origin.web.admin.session import AdminSessions, SessionRevocations
from origin.web.admin.web import AdminState
from origin.web.auth import TokenAuthority
from origin.web.events.collector import CollectorState, post_events
from origin.web.experiments import api as experiments_api
from origin.web.experiments import edge_config_api
from origin.web.experiments.state import create_experiments_state
from origin.web.metrics import OriginMetrics
from origin.web.openapi import openapi_document, openapi_json
from origin.web.routes import (
    bundles,
    catalog_imports,
    clickstream,
    context,
    health,
    ingest,
    products,
    storefront,
)
from origin.web.routing import one_route_per_path
from origin.web.state import OriginState
from origin.web.tracing import TraceContextMiddleware

HERE = Path(__file__).parent
LOGIN_BURST = 10
"""Login attempts a client address may make at once..."""
LOGIN_ATTEMPTS_PER_S = 1 / 30
"""...then one every 30 s (shared by every origin process)."""


def create_app(settings: Settings, slots: SlotCatalog | None = None) -> Starlette:
    """Build the origin app; Redis is connected in the lifespan."""
    if settings.redis_url is None:
        raise ValueError("create_app needs settings.redis_url (the dev supervisor sets it)")
    redis_url: str = settings.redis_url
    slot_catalog = slots or load_slots()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = redis_client(
            redis_url, timeout_ms=settings.redis_timeout_ms, per_reply_timeout=False
        )
        store = Store(client, settings.redis_timeout_ms / 1000)
        metrics = OriginMetrics.create()
        app.state.origin = OriginState(
            settings=settings, store=store, slots=slot_catalog, metrics=metrics
        )
        app.state.experiments = create_experiments_state(client, store, slot_catalog, settings)
        sink = _event_sink(settings)
        timeout = settings.redis_timeout_ms / 1000
        app.state.events = CollectorState(
            sink=sink,
            limiter=RedisTokenBucket(
                client, "events", settings.events_rate, settings.events_burst, timeout
            ),
            keys=settings.event_keys,
            known=KnownExperiments(store_loader(ExperimentStore(client, timeout))),
            redis=client,
            metrics=metrics,
            redis_timeout=timeout,
        )
        admin: AdminState = app.state.admin
        admin.sessions.revocations = SessionRevocations(client, max(timeout, 1.0))
        admin.login_limiter = RedisTokenBucket(
            client, "login", LOGIN_ATTEMPTS_PER_S, LOGIN_BURST, max(timeout, 1.0)
        )
        try:
            yield
        finally:
            await sink.close()
            await app.state.experiments.aclose()
            await client.aclose()

    routes = [
        Route("/v1/bundles/{slot}", bundles.get_bundle),
        Route("/v1/fragments/{slot}", bundles.get_fragment),
        Route("/v1/products/{sku}", products.get_product),
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Route("/openapi.json", openapi_json),
        *experiments_api.routes(),
        *edge_config_api.routes(),
        *ingest.routes(),
        *context.routes(),
        *clickstream.routes(),
        Route("/v1/events", post_events, methods=["POST"]),
        Route("/v1/catalog/imports", catalog_imports.post_import, methods=["POST"]),
        Route("/v1/catalog/imports/last", catalog_imports.last_import),
        *admin_routes.routes(),
        Route("/static/img/{name}.svg", storefront.placeholder_image),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    if settings.env == "dev":  # the demo storefront signs segment cookies for anyone
        routes += [
            Route("/", storefront.storefront),
            Route("/products/{sku}", storefront.product_page),
            Route("/cart", storefront.cart_page),
        ]
    app = Starlette(
        routes=one_route_per_path(routes),
        lifespan=lifespan,
        middleware=[Middleware(TraceContextMiddleware)],
    )
    app.state.openapi = openapi_document(
        slots=list(slot_catalog.slots), templates=TemplateCheck().names
    )
    app.state.token_authority = TokenAuthority(settings.admin_tokens, settings.admin_token_names)
    app.state.admin = AdminState(
        AdminSessions(
            settings.admin_tokens, app.state.token_authority, always_secure=settings.env != "dev"
        )
    )
    app.state.templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined
    )
    return app


def _event_sink(settings: Settings) -> EventSink:
    """Kafka for collected events when configured (connecting in the background)."""
    if settings.kafka_bootstrap is None:
        return NoKafkaSink()
    sink = KafkaEventSink(settings.kafka_bootstrap, security=settings.kafka_security)
    sink.start()
    return sink
