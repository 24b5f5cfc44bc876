"""The origin's uvicorn believes X-Forwarded-For only from configured proxies: by default a
client on loopback (the local edge's position) cannot pick the address rate limits see."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from origin.settings import Settings
from origin.web.serve import uvicorn_options
from shelfedge.localstack.ports import free_port


async def _peer(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.client.host if request.client else "?")


@contextmanager
def serving(options: dict[str, Any]) -> Iterator[str]:
    app = Starlette(routes=[Route("/", _peer)])
    server = uvicorn.Server(uvicorn.Config(app, **{**options, "lifespan": "off"}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{options['port']}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [((), "127.0.0.1"), (("10.0.0.0/8",), "127.0.0.1"), (("127.0.0.1",), "198.51.100.7")],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    trusted: tuple[str, ...], seen: str
) -> None:
    settings = replace(Settings(), trusted_proxies=trusted, origin_port=free_port())
    with serving(uvicorn_options(settings)) as url:
        answer = httpx.get(url, headers={"X-Forwarded-For": "198.51.100.7"})
    assert answer.text == seen


def test_uvicorn_defaults_would_believe_loopback() -> None:
    """Why the options are explicit: uvicorn alone trusts X-Forwarded-For from 127.0.0.1."""
    options = {"host": "127.0.0.1", "port": free_port(), "log_level": "warning"}
    with serving(options) as url:
        answer = httpx.get(url, headers={"X-Forwarded-For": "198.51.100.7"})
    assert answer.text == "198.51.100.7"


def test_the_trusted_proxies_setting_is_a_comma_list() -> None:
    settings = Settings.from_env({"SHELFEDGE_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16"})
    assert settings.trusted_proxies == ("10.0.0.1", "10.1.0.0/16")
    assert Settings.from_env({}).trusted_proxies == ()
