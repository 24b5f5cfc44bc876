"""The Worker's page composition: an origin HTML response streamed out with its slots filled.

`compose_stream` (the default) runs `edge.composer.StreamComposer` in Python over the origin
body's chunks and answers with a pull-based JavaScript ``ReadableStream``: each pull awaits the
composer's next piece, so the head leaves before any slot is decided, decisions start as soon
as their placeholder is read, and the page is never buffered whole.

`compose_htmlrewriter` is the alternative measured against it (``COMPOSE_REWRITER=htmlrewriter``):
Cloudflare's ``HTMLRewriter`` (lol-html) with a Python element handler for ``se-slot`` reached
through Pyodide's JavaScript bridge. It is kept for the comparison in docs/edge.md only: its
handlers run one element at a time (a slot decision cannot start before the previous slot is
settled), the handler cannot read a placeholder's fallback content, ESI includes would need a
second handler, and every element crosses the bridge.

Runs only inside workerd (`js` and `pyodide` exist nowhere else): nothing but
`edge.adapters.cloudflare` may import it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import create_proxy, to_js  # type: ignore[import-not-found]

from edge.compose import Placeholder, is_composable
from edge.composer import (
    TIMEOUT,
    Adopt,
    Decide,
    StreamComposer,
    decided_fill,
    late_fill,
    stream_headers,
)

_NO_BODY = frozenset({101, 103, 204, 205, 304})
Budget = Callable[[str], float]


def composable(upstream: Any) -> bool:
    """Whether the origin's answer (a workers fetch response) is a page to compose: HTML with
    a body. Its content encoding does not matter: workerd hands ``fetch`` bodies over decoded
    (and encodes the answer for the client itself, so the composed answer drops the header)."""
    return int(upstream.status) not in _NO_BODY and is_composable(
        upstream.headers.get("content-type")
    )


def _shell_headers(upstream: Any) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in upstream.headers.items()]


def _js_headers(headers: list[tuple[str, str]]) -> Any:
    out = js.Headers.new()
    for name, value in headers:
        out.append(name, value)  # append: repeated headers (Set-Cookie) must all survive
    return out


def compose_stream(
    upstream: Any,
    chunks: AsyncIterator[bytes],
    decide: Decide,
    budget: Budget,
    adopt: Adopt,
    set_cookies: Sequence[str],
    shell_seconds: float,
) -> Any:
    """A JavaScript Response streaming the composed page (see the module docstring)."""
    composer = StreamComposer(chunks, decide, budget, adopt=adopt)
    parts = composer.stream().__aiter__()
    proxies: list[Any] = []

    def release() -> None:
        for proxy in proxies:
            proxy.destroy()
        proxies.clear()

    async def pull(controller: Any) -> None:
        try:
            part = await parts.__anext__()
        except StopAsyncIteration:
            controller.close()
            release()
            return
        except Exception as exc:  # the origin broke mid-page: the stream errors
            controller.error(f"{type(exc).__name__}: {exc}")
            release()
            return
        controller.enqueue(to_js(part))

    async def cancel(reason: Any = None) -> None:
        await parts.aclose()  # type: ignore[attr-defined]
        release()

    pull_proxy, cancel_proxy = create_proxy(pull), create_proxy(cancel)
    proxies += [pull_proxy, cancel_proxy]
    headers = stream_headers(_shell_headers(upstream), None, shell_seconds)
    headers += [("Set-Cookie", cookie) for cookie in set_cookies]
    body = js.ReadableStream.new(pull=pull_proxy, cancel=cancel_proxy)
    return js.Response.new(body, status=int(upstream.status), headers=_js_headers(headers))


def compose_htmlrewriter(
    upstream: Any,
    decide: Decide,
    budget: Budget,
    adopt: Adopt,
    set_cookies: Sequence[str],
    shell_seconds: float,
) -> Any:
    """The same composition with the Workers HTMLRewriter (``se-slot`` elements only)."""
    seen = 0

    async def element(el: Any) -> None:
        nonlocal seen
        slot = str(el.getAttribute("name") or "")
        anchor = str(el.getAttribute("anchor") or "")
        placeholder = Placeholder(seen, slot, anchor, b"", b"", "se-slot")
        seen += 1
        started = time.perf_counter()
        task = asyncio.ensure_future(decide(placeholder))
        try:
            response, core = await asyncio.wait_for(asyncio.shield(task), budget(slot))
            fill = decided_fill(placeholder, response, core, time.perf_counter() - started)
        except TimeoutError:
            adopt(task)
            fill = late_fill(placeholder, TIMEOUT, time.perf_counter() - started)
        el.replace(fill.markup.decode("utf-8"), _js_object({"html": True}))

    handler = create_proxy(element)
    rewriter = js.HTMLRewriter.new().on("se-slot", _js_object({"element": handler}))
    transformed = rewriter.transform(upstream.js_object)
    headers = stream_headers(_shell_headers(upstream), None, shell_seconds)
    headers += [("Set-Cookie", cookie) for cookie in set_cookies]
    headers.append(("X-Shelfedge-Rewriter", "htmlrewriter"))
    return js.Response.new(
        transformed.body, status=int(upstream.status), headers=_js_headers(headers)
    )


def _js_object(values: dict[str, Any]) -> Any:
    return to_js(values, dict_converter=js.Object.fromEntries)


async def settled(work: Awaitable[object]) -> None:
    """Await ``work`` whatever its outcome (a slot decision finishing in ``waitUntil``)."""
    try:
        await work
    except Exception:  # its page has its fallback already; nothing waits for this one
        return
