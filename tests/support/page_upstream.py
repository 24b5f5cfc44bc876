"""An upstream for page-composition tests: scripted pages in front of a real origin app.

`PageUpstream` is an ASGI app: ``GET /pages/<name>`` serves a registered `Page` (its chunks,
with a pause before each chunk after the first, so a test sees whether the edge streams);
paths under a prefix in `failing` answer 503 (a failing origin for those paths); everything else,
lifespan included, goes to the wrapped origin app (bundles, the storefront). Serve it with
`tests.support.origin_server.OriginServer` (request log, delays per path).

Generic and pytest-free (edge tests and benchmarks reuse it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tests.support.origin_server import ASGIApp, Receive, Scope, Send

PAGES_PREFIX = "/pages/"


@dataclass(frozen=True, slots=True)
class Page:
    """A page as the upstream sends it."""

    chunks: tuple[bytes, ...]
    content_type: str = "text/html; charset=utf-8"
    pause: float = 0.0
    """Seconds before each chunk after the first."""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, body: bytes, content_type: str = "text/html; charset=utf-8") -> Page:
        return cls((body,), content_type)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class PageUpstream:
    """Scripted pages, failing path prefixes, and the origin app for everything else."""

    origin: ASGIApp
    pages: dict[str, Page] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and path.startswith(PAGES_PREFIX):
            await self._page(path[len(PAGES_PREFIX) :], send)
        elif scope["type"] == "http" and any(path.startswith(p) for p in self.failing):
            await _answer(send, 503, b"failing on purpose\n", "text/plain")
        else:
            await self.origin(scope, receive, send)

    async def _page(self, name: str, send: Send) -> None:
        page = self.pages.get(name)
        if page is None:
            await _answer(send, 404, b"no such page\n", "text/plain")
            return
        headers = [(b"content-type", page.content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in page.headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(page.chunks):
            if i and page.pause:
                await asyncio.sleep(page.pause)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _answer(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
