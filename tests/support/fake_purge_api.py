"""A local stand-in for the purge APIs shelfedge calls, checking their documented request shapes.

One stdlib HTTP server on a free loopback port, served from a background thread, answers:

- Cloudflare ``POST /client/v4/zones/{zone_id}/purge_cache``: ``Authorization: Bearer <token>``,
  ``Content-Type: application/json``, body exactly ``{"tags": [...]}`` with 1..100 non-empty
  strings; answers ``{"success": true, "errors": [], "messages": [], "result": {"id": ...}}``.
- Fastly ``POST /service/{service_id}/purge``: ``Fastly-Key`` header, ``Surrogate-Key`` header
  of 1..256 space-separated keys, optional ``Fastly-Soft-Purge: 1``; answers ``{key: purge id}``.
- The local edge ``POST /se/purge``: body ``{"tags": [...]}``; answers ``{"purged": n, "tags": n}``.

Every request is recorded (monotonic receive time, API, path, headers, tags, status answered).
A malformed request gets 400, a wrong credential 403, an unknown path 404. `fail_next` makes the
next N well-formed requests answer 429 (with ``Retry-After``) or a 5xx instead. `refuse_tags`
makes every well-formed request that carries one of the given tags answer a 4xx (400 by
default, with an error naming the tag), as an API does for a tag it will not purge; injected
failures are answered first. An optional
`on_accept` hook runs in the server thread before an accepted request is answered; what it
returns is kept on the record (tests use it to look at the origin at the moment of a purge).

This module is test support: it must never listen beyond loopback nor forward anything anywhere.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

Api = Literal["cloudflare", "fastly", "local-edge"]

CLOUDFLARE_MAX_TAGS = 100
FASTLY_MAX_KEYS = 256
DEFAULT_CLOUDFLARE_TOKEN = "cf-test-token-0123456789"
DEFAULT_FASTLY_KEY = "fastly-test-key-0123456789"
DEFAULT_ZONE_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_FASTLY_SERVICE = "SU1Z0isxPaozGVKXdv0eY"

_CLOUDFLARE_PATH = re.compile(r"/client/v4/zones/(?P<zone>[0-9a-f]{32})/purge_cache")
_FASTLY_PATH = re.compile(r"/service/(?P<service>[A-Za-z0-9]+)/purge")
_LOCAL_EDGE_PATH = "/se/purge"
_MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class PurgeCall:
    """One request the fake received."""

    at: float
    """`time.monotonic()` when the request was read (same clock as the caller's process)."""
    api: Api | None
    """Which API the path named (None for an unknown path)."""
    path: str
    headers: Mapping[str, str]
    """Request headers, names lower-cased."""
    tags: tuple[str, ...]
    """Tags (Cloudflare, local edge) or surrogate keys (Fastly); empty when malformed."""
    status: int
    """The HTTP status the fake answered."""
    observed: object = None
    """What the `on_accept` hook returned for this request (accepted requests only)."""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class _Injected:
    status: int
    retry_after: int | None


class _Rejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{status}: {detail}")


class FakePurgeApi:
    """The fake purge server; use as a context manager (starts on enter, stops on exit)."""

    def __init__(
        self,
        *,
        cloudflare_token: str = DEFAULT_CLOUDFLARE_TOKEN,
        fastly_key: str = DEFAULT_FASTLY_KEY,
        on_accept: Callable[[Api, tuple[str, ...]], object] | None = None,
    ) -> None:
        self.cloudflare_token = cloudflare_token
        self.fastly_key = fastly_key
        self.on_accept = on_accept
        self._lock = threading.Lock()
        self._calls: list[PurgeCall] = []
        self._injected: list[_Injected] = []
        self._refused: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("fake purge API already started")
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

    # --- addresses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the local edge URL and the Fastly API base)."""
        if self._server is None:
            raise RuntimeError("fake purge API not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def cloudflare_api_base(self) -> str:
        """What `CloudflareSettings.api_base` must be to reach this fake."""
        return self.url + "/client/v4"

    # --- control and inspection -----------------------------------------------------------

    def fail_next(self, count: int, status: int = 429, retry_after: int | None = 1) -> None:
        """The next `count` well-formed requests answer `status` (429 or 5xx) instead."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"inject 429 or a 5xx, not {status}")
        with self._lock:
            self._injected.extend(_Injected(status, retry_after) for _ in range(count))

    def refuse_tags(self, *tags: str, status: int = 400) -> None:
        """Answer `status` to every well-formed request that carries one of `tags`."""
        if not 400 <= status <= 499 or status in (401, 403, 429):
            raise ValueError(f"refuse a tag with a 4xx other than 401/403/429, not {status}")
        with self._lock:
            self._refused.update(dict.fromkeys(tags, status))

    def accept_tags(self, *tags: str) -> None:
        """Stop refusing `tags` (the operator fixed what the API objected to)."""
        with self._lock:
            for tag in tags:
                self._refused.pop(tag, None)

    def calls(self, api: Api | None = None) -> list[PurgeCall]:
        """Every request so far (of one API if given), in arrival order."""
        with self._lock:
            return [c for c in self._calls if api is None or c.api == api]

    def accepted(self, api: Api | None = None) -> list[PurgeCall]:
        return [c for c in self.calls(api) if c.accepted]

    def accepted_tags(self, api: Api | None = None) -> set[str]:
        return {tag for call in self.accepted(api) for tag in call.tags}

    # --- request handling (server thread) -------------------------------------------------

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        at = time.monotonic()
        api = _api_of(path)
        tags: tuple[str, ...] = ()
        try:
            tags = self._check(api, method, path, headers, body)
            injected = self._take_injected()
            if injected is not None:
                extra = {}
                if injected.retry_after is not None:
                    extra["Retry-After"] = str(injected.retry_after)
                self._record(PurgeCall(at, api, path, headers, tags, injected.status))
                return injected.status, extra, _error_body(api, injected.status, "injected")
            self._check_refused(tags)
            assert api is not None
            observed = self.on_accept(api, tags) if self.on_accept is not None else None
            self._record(PurgeCall(at, api, path, headers, tags, 200, observed))
            return 200, {}, _success_body(api, tags)
        except _Rejected as exc:
            self._record(PurgeCall(at, api, path, headers, tags, exc.status))
            return exc.status, {}, _error_body(api, exc.status, exc.detail)

    def _check_refused(self, tags: tuple[str, ...]) -> None:
        with self._lock:
            refused = [(tag, self._refused[tag]) for tag in tags if tag in self._refused]
        if refused:
            tag, status = refused[0]
            raise _Rejected(status, f"cannot purge tag {tag!r}")

    def _take_injected(self) -> _Injected | None:
        with self._lock:
            return self._injected.pop(0) if self._injected else None

    def _record(self, call: PurgeCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _check(
        self, api: Api | None, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, ...]:
        if api is None:
            raise _Rejected(404, f"no purge API at {method} {path}")
        if method != "POST":
            raise _Rejected(400, f"purge must be POST, not {method}")
        if api == "cloudflare":
            if _CLOUDFLARE_PATH.fullmatch(path) is None:
                raise _Rejected(400, f"bad zone id in {path!r} (expected 32 hex chars)")
            return self._check_cloudflare(headers, body)
        if api == "fastly":
            return self._check_fastly(headers)
        return _json_tags(headers, body, None)

    def _check_cloudflare(self, headers: dict[str, str], body: bytes) -> tuple[str, ...]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise _Rejected(400, "Authorization header must be 'Bearer <token>'")
        if auth.removeprefix("Bearer ") != self.cloudflare_token:
            raise _Rejected(403, "Authentication error: unknown API token")
        return _json_tags(headers, body, CLOUDFLARE_MAX_TAGS)

    def _check_fastly(self, headers: dict[str, str]) -> tuple[str, ...]:
        if "fastly-key" not in headers:
            raise _Rejected(400, "missing Fastly-Key header")
        if headers["fastly-key"] != self.fastly_key:
            raise _Rejected(403, "Provided credentials are missing or invalid")
        soft = headers.get("fastly-soft-purge")
        if soft is not None and soft != "1":
            raise _Rejected(400, f"Fastly-Soft-Purge must be '1', got {soft!r}")
        keys = tuple(headers.get("surrogate-key", "").split())
        if not keys:
            raise _Rejected(400, "missing or empty Surrogate-Key header")
        if len(keys) > FASTLY_MAX_KEYS:
            raise _Rejected(400, f"{len(keys)} surrogate keys > {FASTLY_MAX_KEYS}")
        return keys


def _api_of(path: str) -> Api | None:
    if path.startswith("/client/v4/zones/"):
        return "cloudflare"
    if _FASTLY_PATH.fullmatch(path):
        return "fastly"
    if path == _LOCAL_EDGE_PATH:
        return "local-edge"
    return None


def _json_tags(headers: dict[str, str], body: bytes, limit: int | None) -> tuple[str, ...]:
    content_type = headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        raise _Rejected(400, f"Content-Type must be application/json, got {content_type!r}")
    try:
        doc: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Rejected(400, f"body is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) != {"tags"}:
        raise _Rejected(400, 'body must be exactly {"tags": [...]}')
    tags = doc["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise _Rejected(400, "'tags' must be a list of non-empty strings")
    if not tags:
        raise _Rejected(400, "'tags' must not be empty")
    if limit is not None and len(tags) > limit:
        raise _Rejected(400, f"{len(tags)} tags > {limit} per request")
    return tuple(tags)


def _success_body(api: Api, tags: tuple[str, ...]) -> bytes:
    doc: dict[str, Any]
    if api == "cloudflare":
        doc = {"success": True, "errors": [], "messages": [], "result": {"id": uuid.uuid4().hex}}
    elif api == "fastly":
        doc = {tag: uuid.uuid4().hex for tag in tags}
    else:
        doc = {"purged": len(tags), "tags": len(tags)}
    return json.dumps(doc).encode()


def _error_body(api: Api | None, status: int, detail: str) -> bytes:
    if api == "cloudflare":
        doc: dict[str, Any] = {
            "success": False,
            "errors": [{"code": status, "message": detail}],
            "messages": [],
            "result": None,
        }
    else:
        doc = {"msg": detail, "status": status}
    return json.dumps(doc).encode()


def _handler_for(fake: FakePurgeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._answer(413, {}, b'{"msg": "body too large"}')
                return
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, extra, payload = fake._handle(self.command, self.path, headers, body)
            self._answer(status, extra, payload)

        def _answer(self, status: int, extra: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_POST = _serve
        do_GET = _serve
        do_PUT = _serve
        do_DELETE = _serve
        do_PURGE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return  # Requests are recorded by the fake; keep test output clean.

    return Handler
