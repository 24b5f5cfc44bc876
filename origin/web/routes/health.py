"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from origin.errors import StoreUnavailable
from origin.web import problems
from origin.web.state import OriginState


async def healthz(request: Request) -> Response:
    """The process is up (no dependency checks)."""
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    """Ready when Redis answers within the request timeout."""
    state: OriginState = request.app.state.origin
    try:
        await state.store.ping()
    except StoreUnavailable as exc:
        return problems.store_unavailable(exc)
    return JSONResponse({"status": "ready", "redis": "ok"}, headers={"Cache-Control": "no-store"})


async def metrics(request: Request) -> Response:
    state: OriginState = request.app.state.origin
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
