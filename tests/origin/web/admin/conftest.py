"""Fixtures of the admin UI tests: the origin app (admin tokens) over the suite's seeded Redis,
and `AdminClient`, an httpx client that behaves like a browser tab on the admin pages.

The app runs in-process with its lifespan (`httpx.ASGITransport`); Redis is the suite's real
redis-server, flushed and seeded per test by `seeded` (`tests.origin.experiments.support`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from html import unescape

import httpx
import pytest
from starlette.applications import Starlette

from origin.core.redis_client import RedisLike
from origin.web.app import create_app
from tests.origin.experiments.support import EDITOR_TOKEN, VIEWER_TOKEN, origin_settings, seeded

BASE = "http://admin.test"
FormData = Mapping[str, str | list[str]]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class AdminClient:
    """A browser tab on the admin: keeps cookies, remembers the last page's CSRF nonce and
    sends the Origin header a browser sends with form posts."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client
        self.csrf = ""
        self.page = ""

    async def get(self, path: str) -> httpx.Response:
        response = await self.http.get(path)
        self._remember(response)
        return response

    async def post(
        self, path: str, data: FormData, *, with_csrf: bool = True, origin: str | None = BASE
    ) -> httpx.Response:
        body = dict(data)
        if with_csrf and self.csrf:
            body.setdefault("csrf", self.csrf)
        headers = {"origin": origin} if origin else {}
        response = await self.http.post(path, data=body, headers=headers)
        self._remember(response)
        return response

    async def log_in(self, token: str) -> httpx.Response:
        response = await self.post("/admin/login", {"token": token, "next": "/admin"})
        assert response.status_code == 303, response.text
        await self.get("/admin")
        return response

    def _remember(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/html"):
            self.page = response.text
            found = _CSRF.search(response.text)
            if found:
                self.csrf = unescape(found.group(1))


@pytest.fixture(scope="module")
async def admin_app(redis_url: str) -> AsyncIterator[Starlette]:
    app = create_app(origin_settings(redis_url, public_edge_url="http://edge.test"))
    async with app.router.lifespan_context(app):
        yield app


async def _client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False
    )


@pytest.fixture
async def anonymous(admin_app: Starlette, seeded: RedisLike) -> AsyncIterator[AdminClient]:
    """A tab that has not logged in (the catalog is seeded)."""
    async with await _client(admin_app) as client:
        yield AdminClient(client)


@pytest.fixture
async def editor(admin_app: Starlette, seeded: RedisLike) -> AsyncIterator[AdminClient]:
    """A tab logged in with the editor token (alice)."""
    async with await _client(admin_app) as client:
        tab = AdminClient(client)
        await tab.log_in(EDITOR_TOKEN)
        yield tab


@pytest.fixture
async def viewer(admin_app: Starlette, seeded: RedisLike) -> AsyncIterator[AdminClient]:
    """A tab logged in with the viewer token (victor)."""
    async with await _client(admin_app) as client:
        tab = AdminClient(client)
        await tab.log_in(VIEWER_TOKEN)
        yield tab


__all__ = ["AdminClient", "admin_app", "anonymous", "editor", "seeded", "viewer"]
