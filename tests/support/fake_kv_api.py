"""A local stand-in for Cloudflare's Workers KV "Write key-value pair" API (request shape checked).

One stdlib HTTP server on a free loopback port, served from a background thread, answers
``PUT /client/v4/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}``
as Cloudflare documents it: ``Authorization: Bearer <token>``, ids of 1-32 letters and digits,
the key name percent-encoded (at most 512 bytes, not ``.`` or ``..``), the value as the raw body
(not multipart, since no metadata is sent; at most 25 MiB). It stores the value and answers
``{"success": true, "errors": [], "messages": [], "result": null}``. A malformed request gets 400,
a wrong token 403 (Cloudflare's error 10000), another path 404, all in Cloudflare's envelope with
``success: false``. `fail_next` makes the next N well-formed writes answer 429 (with
``Retry-After``) or a 5xx; `refuse_next` a 4xx. An optional `on_write(key, value)` hook runs in the
server thread before a write is acknowledged (the workerd test mirrors writes into the Worker's
local KV with it; if it raises, the fake answers 500).

Test support: it never listens beyond loopback nor forwards anything anywhere.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from tests.support.fake_http import Answer, LoopbackApiServer

DEFAULT_TOKEN = "kv-test-token-0123456789abcdef"
DEFAULT_ACCOUNT = "0123456789abcdef0123456789abcdef"
DEFAULT_NAMESPACE = "fedcba9876543210fedcba9876543210"
MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 25 * 1024 * 1024

_PATH = re.compile(
    r"/client/v4/accounts/(?P<account>[^/]+)/storage/kv/namespaces/(?P<namespace>[^/]+)"
    r"/values/(?P<key>[^/?]+)"
)
_ID = re.compile(r"[A-Za-z0-9]{1,32}")


@dataclass(frozen=True, slots=True)
class KvCall:
    """One request the fake received."""

    at: float
    """`time.monotonic()` when it was read."""
    method: str
    path: str
    headers: Mapping[str, str]
    """Names lower-cased."""
    key: str | None
    body: bytes
    status: int

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class _Rejected(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{status}: {message}")


class FakeKvApi(LoopbackApiServer):
    """The fake KV API; use as a context manager (starts on enter, stops on exit)."""

    name = "fake KV API"
    max_body = MAX_VALUE_BYTES + 1

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        account_id: str = DEFAULT_ACCOUNT,
        namespace_id: str = DEFAULT_NAMESPACE,
        on_write: Callable[[str, bytes], None] | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.account_id = account_id
        self.namespace_id = namespace_id
        self.on_write = on_write
        self.values: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._calls: list[KvCall] = []
        self._injected: list[tuple[int, int | None]] = []

    @property
    def api_base(self) -> str:
        """What SHELFEDGE_KV_API_BASE must be to reach this fake."""
        return self.url + "/client/v4"

    def fail_next(self, count: int, status: int = 429, retry_after: int | None = 1) -> None:
        """The next `count` well-formed writes answer `status` (429 or a 5xx) instead."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"inject 429 or a 5xx, not {status}")
        with self._lock:
            self._injected.extend((status, retry_after) for _ in range(count))

    def refuse_next(self, count: int, status: int = 400) -> None:
        """The next `count` well-formed writes answer a 4xx (other than 429)."""
        if not 400 <= status <= 499 or status == 429:
            raise ValueError(f"refuse with a 4xx other than 429, not {status}")
        with self._lock:
            self._injected.extend((status, None) for _ in range(count))

    def calls(self) -> list[KvCall]:
        with self._lock:
            return list(self._calls)

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        at = time.monotonic()
        key: str | None = None
        try:
            key = self._check(method, path, headers, body)
            with self._lock:
                injected = self._injected.pop(0) if self._injected else None
            if injected is not None:
                status, retry_after = injected
                extra = {} if retry_after is None else {"Retry-After": str(retry_after)}
                self._record(KvCall(at, method, path, headers, key, body, status))
                return status, extra, _envelope(False, 10013 if status < 500 else 10001, "injected")
            if self.on_write is not None:
                try:
                    self.on_write(key, body)
                except Exception as exc:  # the mirror failed: answer as a failing API would
                    raise _Rejected(500, 10001, f"storage error: {exc}") from exc
            with self._lock:
                self.values[key] = body
            self._record(KvCall(at, method, path, headers, key, body, 200))
            return 200, {}, _envelope(True)
        except _Rejected as exc:
            self._record(KvCall(at, method, path, headers, key, body, exc.status))
            return exc.status, {}, _envelope(False, exc.code, exc.message)

    def _record(self, call: KvCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _check(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        match = _PATH.fullmatch(path.partition("?")[0])
        if match is None:
            raise _Rejected(404, 7003, f"no route for {method} {path}")
        if method != "PUT":
            raise _Rejected(405, 10405, f"write a value with PUT, not {method}")
        account, namespace = match["account"], match["namespace"]
        if not (_ID.fullmatch(account) and _ID.fullmatch(namespace)):
            raise _Rejected(400, 10011, "account and namespace ids are 1-32 letters and digits")
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise _Rejected(400, 10000, "Authorization header must be 'Bearer <token>'")
        if auth.removeprefix("Bearer ") != self.token:
            raise _Rejected(403, 10000, "Authentication error")
        if (account, namespace) != (self.account_id, self.namespace_id):
            raise _Rejected(404, 10013, "namespace not found")
        raw_key = unquote_to_bytes(match["key"])
        if len(raw_key) > MAX_KEY_BYTES or raw_key in (b".", b".."):
            raise _Rejected(400, 10019, "key names are 1-512 bytes, not '.' or '..'")
        if headers.get("content-type", "").startswith("multipart/form-data"):
            raise _Rejected(400, 10022, "a multipart write needs a 'value' part (no metadata sent)")
        if not body or len(body) > MAX_VALUE_BYTES:
            raise _Rejected(400, 10033, "the value (the body) must be 1 byte to 25 MiB")
        return raw_key.decode("utf-8", "replace")


def _envelope(success: bool, code: int = 0, message: str = "") -> bytes:
    errors: list[dict[str, Any]] = [] if success else [{"code": code, "message": message}]
    return json.dumps(
        {"success": success, "errors": errors, "messages": [], "result": None}
    ).encode()
