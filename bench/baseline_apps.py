"""Baseline servers: the practical limit of a Python ASGI service on this machine.

``python -m bench.baseline_apps redis-get --port P --redis-url URL --key KEY``
    ``GET /raw``: one Redis GET of KEY (the origin's stored bundle envelope) and its body bytes
    back, with the origin's media type: what the origin's bundle endpoint costs without its
    validation, ETag check, headers and metrics.
``python -m bench.baseline_apps static --port P --bytes N``
    ``GET /static``: a constant N-byte HTML body: what the local edge costs without the
    edge decision (and without its cache lookup).

Both run under uvicorn exactly as the origin does (`origin.web.serve.serve_origin`: same host,
log level, no access log, lifespan on, uvicorn's default loop and HTTP implementation) and
share the origin's Redis client settings, so the ratio isolates the application's own work.
They must never do more per request than described, or the ratio flatters the product.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from origin.core.redis_client import redis_client
from origin.web.routes.bundles import BUNDLE_MEDIA_TYPE

HOST = "127.0.0.1"
_CARD = (
    '<article class="se-card"><a href="/p/SKU"><img src="/static/img/x.svg" alt=""><h3>Product'
    '</h3></a><p class="price">19.99 USD</p></article>\n'
)


def redis_get_app(redis_url: str, key: str) -> Starlette:
    """One Redis GET per request; the stored envelope's body is the response."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Configured exactly as the origin app's client, so the baseline differs only by the
        # origin's own work.
        client = redis_client(redis_url, timeout_ms=250, per_reply_timeout=False)
        app.state.redis = client
        try:
            yield
        finally:
            await client.aclose()

    async def raw(request: Request) -> Response:
        stored = await request.app.state.redis.get(key)
        if stored is None:
            return PlainTextResponse(f"no value at {key}", status_code=404)
        _, _, body = bytes(stored).partition(b"\n")
        return Response(body, media_type=BUNDLE_MEDIA_TYPE)

    return Starlette(routes=[Route("/raw", raw)], lifespan=lifespan)


def static_body(size: int) -> bytes:
    """Deterministic HTML-like bytes of exactly `size` bytes."""
    repeats = size // len(_CARD) + 1
    return (_CARD * repeats).encode("ascii")[:size]


def static_app(size: int) -> Starlette:
    body = static_body(size)

    async def static(request: Request) -> Response:
        return Response(body, media_type="text/html; charset=utf-8")

    return Starlette(routes=[Route("/static", static)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_apps")
    sub = parser.add_subparsers(dest="app", required=True)
    redis_get = sub.add_parser("redis-get", help="one Redis GET per request")
    redis_get.add_argument("--port", type=int, required=True)
    redis_get.add_argument("--redis-url", required=True)
    redis_get.add_argument("--key", required=True)
    static = sub.add_parser("static", help="a constant body per request")
    static.add_argument("--port", type=int, required=True)
    static.add_argument("--bytes", type=int, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    app = redis_get_app(args.redis_url, args.key) if args.app == "redis-get" else None
    if app is None:
        if args.bytes < 1:
            print("--bytes must be positive", file=sys.stderr)
            return 2
        app = static_app(args.bytes)
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning", access_log=False,
                lifespan="on")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
