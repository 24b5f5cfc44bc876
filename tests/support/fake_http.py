"""The loopback HTTP server under the project's fakes of third-party APIs (KV, purge APIs).

A subclass implements `_handle(method, path, headers, body) -> (status, extra headers, JSON
body)`; this base serves it from a stdlib `ThreadingHTTPServer` on a free loopback port in a
background thread (HTTP/1.1, every body answered as JSON with its length), and is a context
manager that starts on enter and stops on exit. Request headers reach `_handle` with lower-cased
names; a declared body over `max_body` is answered 413 without being read.

Test support: it never listens beyond loopback nor forwards anything anywhere.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

Answer = tuple[int, dict[str, str], bytes]
"""Status, extra response headers, JSON body."""


class LoopbackApiServer:
    """A fake API's HTTP server; subclasses answer requests in `_handle` (server thread)."""

    name = "fake API"
    """How errors name this server."""
    max_body = 1 << 20
    """Declared request bodies larger than this are answered 413 unread."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self.name} already started")
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError(f"{self.name} not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


def _handler_for(fake: LoopbackApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > fake.max_body:
                self._answer(413, {}, b'{"msg": "body too large"}')
                return
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._answer(*fake._handle(self.command, self.path, headers, body))

        def _answer(self, status: int, extra: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET = do_PUT = do_DELETE = do_PURGE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return  # Requests are recorded by the fake; keep test output clean.

    return Handler
