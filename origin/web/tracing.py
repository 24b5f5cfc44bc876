"""`TraceContextMiddleware`: the origin continues the caller's trace (W3C ``traceparent``).

A plain ASGI middleware: for each HTTP request it extracts the trace context from the request
headers (the local edge sends one with its origin fetches) and runs the app inside a SERVER span
``<METHOD> <route path>`` (``http.response.status_code`` recorded). With no tracer provider
configured it passes requests straight through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

tracer = trace.get_tracer("shelfedge.origin")


class TraceContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or isinstance(
            trace.get_tracer_provider(), trace.ProxyTracerProvider
        ):
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name in (b"traceparent", b"tracestate")
        }
        path: str = scope.get("path", "")
        with tracer.start_as_current_span(
            f"{scope.get('method', 'GET')} {path}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope.get("method", ""), "url.path": path},
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, traced_send)
