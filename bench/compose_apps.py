"""Servers of the composition benchmark, each a uvicorn process of its own.

``python -m bench.compose_apps upstream --port P --redis-url URL --secret S``
    The origin app (over the seeded Redis) behind `tests.support.page_upstream.PageUpstream`,
    which also serves ``/pages/big`` (`bench.compose_inner.page`: 60 KB, three ``<se-slot>``
    placeholders) and ``/pages/big-client`` (the same page with the client-fetch version's
    "Loading" hosts in place of the placeholders).
``python -m bench.compose_apps edge --port P --origin-url URL --secret S [--no-compose]``
    The local edge (`edge.adapters.local_server.create_edge_app`) in front of it, composing
    pages or (``--no-compose``) passing them through.

Both run under uvicorn as the origin does (loopback, log level warning, no access log,
lifespan on). It must never serve on anything but loopback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from bench.compose_inner import SLOTS, page
from edge.adapters.local_server import create_edge_app
from edge.config import EdgeConfig
from fragments.slots import load_slots
from origin.settings import Settings
from origin.web.app import create_app
from tests.support.page_upstream import Page, PageUpstream

HOST = "127.0.0.1"
COMPOSED_PAGE = "/pages/big"
CLIENT_PAGE = "/pages/big-client"


def client_version(composed: bytes) -> bytes:
    """The page with a client-fetch host (filled by script after the page) per placeholder."""
    out = composed
    for slot in SLOTS:
        placeholder = b'<se-slot name="%s"><p>fallback</p></se-slot>' % slot.encode()
        host = b'<div class="slot-host" data-se-slot="%s"><p>Loading\xe2\x80\xa6</p></div>' % (
            slot.encode()
        )
        out = out.replace(placeholder, host)
    return out


def upstream_app(redis_url: str, secret: str) -> PageUpstream:
    settings = Settings(redis_url=redis_url, segment_secret=secret)
    app = PageUpstream(create_app(settings, load_slots()))
    body = page()
    app.pages[COMPOSED_PAGE.rsplit("/", 1)[1]] = Page.of(body)
    app.pages[CLIENT_PAGE.rsplit("/", 1)[1]] = Page.of(client_version(body))
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="kind", required=True)
    upstream = sub.add_parser("upstream")
    upstream.add_argument("--port", type=int, required=True)
    upstream.add_argument("--redis-url", required=True)
    upstream.add_argument("--secret", required=True)
    edge = sub.add_parser("edge")
    edge.add_argument("--port", type=int, required=True)
    edge.add_argument("--origin-url", required=True)
    edge.add_argument("--secret", required=True)
    edge.add_argument("--no-compose", action="store_true")
    args = parser.parse_args(argv)
    if args.kind == "upstream":
        app: object = upstream_app(args.redis_url, args.secret)
    else:
        config = EdgeConfig.from_slots(load_slots(), args.secret)
        app = create_edge_app(config, args.origin_url, compose_pages=not args.no_compose)
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=HOST,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
