"""Run the origin ASGI app under uvicorn on a loopback port, in a background thread, for tests.

`OriginServer` serves `origin.web.app.create_app(settings, slots)` (or any ASGI app) on a free
127.0.0.1 port. `stop()` takes it down (the port then refuses connections) and `start()`
brings it back on the same port, so a test can put an outage in front of a cache and end it.
Every request that reaches the app is recorded by an ASGI wrapper (`RequestLog`): tests count
how many fetches got through a cache to the origin, per path or per path and query.

Exceptions::

    OriginServerError (RuntimeError)
    ├── OriginStartError   uvicorn did not serve in time, or its thread died (names the cause)
    └── OriginStateError   start while running, a port before the first start, ...

Generic and pytest-free (edge and benchmark tests reuse it). It must never listen on anything
but loopback, never install signal handlers (it runs off the main thread) and never return
from `start()` before the port accepts connections.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

import uvicorn

from fragments.slots import SlotCatalog
from origin.settings import Settings
from origin.web.app import create_app
from shelfedge.localstack.ports import LOOPBACK, free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class OriginServerError(RuntimeError):
    """Base of everything this module raises."""


class OriginStartError(OriginServerError):
    """uvicorn did not accept connections in time, or its thread ended while starting."""


class OriginStateError(OriginServerError):
    """A lifecycle call that does not fit the current state."""


def normalize_target(target: str) -> str:
    """`path?query` with the query parameters sorted, so parameter order never matters.

    Caches such as the shelfedge VCL sort query strings; `FragmentKey.bundle_path()` does not.
    """
    path, _, query = target.partition("?")
    if not query:
        return path
    return f"{path}?{urlencode(sorted(parse_qsl(query, keep_blank_values=True)))}"


@dataclass(frozen=True, slots=True)
class OriginRequest:
    """One HTTP request that reached the app."""

    method: str
    """HTTP method, e.g. ``GET``."""
    path: str
    """URL path without the query, e.g. ``/v1/bundles/home-hero``."""
    target: str
    """Path and query, normalised by `normalize_target`."""
    status: int
    """Status the app answered (0 if it never started a response)."""
    conditional: bool
    """True when the request carried If-None-Match (a cache revalidating)."""


class RequestLog:
    """An ASGI wrapper that records every HTTP request it passes to the wrapped app.

    A request is recorded when its response starts (after any delay), before the first byte
    is sent, so a client holding the answer always sees it counted. It can also hold requests
    back before the app sees them (`set_delay`), to play a slow origin. Thread-safe: the
    server thread appends, the test thread reads.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._requests: list[OriginRequest] = []
        self._delays: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        delay = self._delay_for(scope)
        if delay > 0:
            await asyncio.sleep(delay)
        recorded = False

        async def recording_send(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                # Record before the first byte leaves: whoever got the answer sees the count.
                recorded = True
                self._record(scope, int(message["status"]))
            await send(message)

        try:
            await self._app(scope, receive, recording_send)
        finally:
            if not recorded:
                self._record(scope, 0)

    def set_delay(self, target: str, seconds: float) -> None:
        """Hold requests for `target` (path with query, or bare path) `seconds` before serving."""
        if seconds < 0:
            raise ValueError(f"delay for {target!r} must be >= 0 s, got {seconds}")
        with self._lock:
            self._delays[normalize_target(target)] = seconds

    def clear_delays(self) -> None:
        with self._lock:
            self._delays.clear()

    def _delay_for(self, scope: Scope) -> float:
        path, target = _path_and_target(scope)
        with self._lock:
            return self._delays.get(target, self._delays.get(path, 0.0))

    def _record(self, scope: Scope, status: int) -> None:
        path, target = _path_and_target(scope)
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        request = OriginRequest(
            method=str(scope["method"]),
            path=path,
            target=target,
            status=status,
            conditional=any(name.lower() == b"if-none-match" for name, _ in headers),
        )
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[OriginRequest]:
        """A copy of every recorded request, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, target: str) -> int:
        """Requests for `target`: a path with a query (any order) or a bare path (any query)."""
        wanted = normalize_target(target)
        by_path = "?" not in wanted
        return sum(
            1 for r in self.requests if (r.path == wanted if by_path else r.target == wanted)
        )

    def clear(self) -> None:
        """Forget the recorded requests (delays stay)."""
        with self._lock:
            self._requests.clear()


def _path_and_target(scope: Scope) -> tuple[str, str]:
    path = str(scope["path"])
    query = scope.get("query_string", b"").decode("latin-1")
    return path, normalize_target(f"{path}?{query}" if query else path)


class OriginServer:
    """An ASGI app under uvicorn on 127.0.0.1, in a daemon thread, restartable on its port."""

    def __init__(self, app: ASGIApp, *, port: int | None = None) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"origin server: port must be in 1..65535, got {port}")
        self.log = RequestLog(app)
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @classmethod
    def for_origin(cls, settings: Settings, slots: SlotCatalog | None = None) -> OriginServer:
        """The shelfedge origin app built from `settings` (which must carry `redis_url`)."""
        return cls(create_app(settings, slots))

    @property
    def port(self) -> int:
        if self._port is None:
            raise OriginStateError("the origin server has no port yet: call start() first")
        return self._port

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Serve on the port (a free one at first start); return once it accepts connections."""
        if self.running:
            raise OriginStateError(f"{self!r} is already running")
        if self._port is None:
            self._port = free_port()
        config = uvicorn.Config(
            self.log,
            host=LOOPBACK,
            port=self._port,
            lifespan="on",
            log_level="warning",
            access_log=False,
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._failure = None
        thread = threading.Thread(
            target=self._serve, args=(server,), name=f"origin-server:{self._port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        self._wait_until_serving(server, thread)
        return self

    def stop(self) -> None:
        """Stop serving and close the port; no-op when stopped."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise OriginServerError(f"origin server on port {self._port} did not stop")

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<OriginServer {LOOPBACK}:{self._port or '?'} {state}>"

    def _serve(self, server: uvicorn.Server) -> None:
        try:
            server.run()
        except BaseException as exc:  # reported by start(); uvicorn exits via SystemExit
            self._failure = exc

    def _wait_until_serving(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                cause = self._failure
                self._server = self._thread = None
                raise OriginStartError(
                    f"origin server thread ended while starting on {LOOPBACK}:{self._port}: "
                    f"{type(cause).__name__ if cause else 'no exception'}: {cause} "
                    "(port taken? lifespan failed? see uvicorn's log above)"
                ) from cause
            if time.monotonic() > deadline:
                self.stop()
                raise OriginStartError(
                    f"origin server did not start on {LOOPBACK}:{self._port} "
                    f"within {STARTUP_TIMEOUT_S:g} s"
                )
            time.sleep(0.01)
        with socket.create_connection((LOOPBACK, self.port), timeout=1.0):
            pass
