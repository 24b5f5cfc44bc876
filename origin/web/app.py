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
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fragments.slots import SlotCatalog, load_slots
from origin.core.redis_client import redis_client
from origin.core.store import Store
from origin.events.sink import EventSink, KafkaEventSink, NoKafkaSink
from origin.settings import Settings
from origin.web.admin import routes as admin_routes
from origin.web.admin.session import AdminSessions
from origin.web.admin.web import AdminState
from origin.web.auth import TokenAuthority
from origin.web.events.collector import CollectorState, post_events
from origin.web.events.ratelimit import ClientRateLimiter
from origin.web.experiments import api as experiments_api
from origin.web.experiments import edge_config_api
from origin.web.experiments.state import create_experiments_state
from origin.web.metrics import OriginMetrics
from origin.web.openapi import openapi_document, openapi_json
from origin.web.routes import (
    bundles,
    clickstream,
    context,
    health,
    ingest,
    products,
    storefront,
)
from origin.web.state import OriginState

HERE = Path(__file__).parent


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
        app.state.origin = OriginState(
            settings=settings, store=store, slots=slot_catalog, metrics=OriginMetrics.create()
        )
        app.state.experiments = create_experiments_state(client, store, slot_catalog, settings)
        sink = _event_sink(settings)
        app.state.events = CollectorState(
            sink, ClientRateLimiter(settings.events_rate, settings.events_burst)
        )
        try:
            yield
        finally:
            await sink.close()
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
        *admin_routes.routes(),
        Route("/", storefront.storefront),
        Route("/static/img/{name}.svg", storefront.placeholder_image),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.openapi = openapi_document()
    app.state.token_authority = TokenAuthority(settings.admin_tokens, settings.admin_token_names)
    app.state.admin = AdminState(
        AdminSessions(
            settings.admin_tokens, app.state.token_authority, always_secure=settings.env == "prod"
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
    sink = KafkaEventSink(settings.kafka_bootstrap)
    sink.start()
    return sink
