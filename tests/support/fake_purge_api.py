"""A local stand-in for the purge APIs shelfedge calls, checking their documented request shapes.

One stdlib HTTP server on a free loopback port, served from a background thread, answers:

- Cloudflare ``POST /client/v4/zones/{zone_id}/purge_cache`` (hard) or ``.../invalidate_cache``
  (soft): ``Authorization: Bearer <token>``, ``Content-Type: application/json``, body exactly
  ``{"tags": [...]}`` with 1..100 non-empty strings; answers
  ``{"success": true, "errors": [], "messages": [], "result": {"id": ...}}``.
- Fastly ``POST /service/{service_id}/purge``: ``Fastly-Key`` header, ``Surrogate-Key`` header
  of 1..256 space-separated keys, optional ``Fastly-Soft-Purge: 1``; answers ``{key: purge id}``.
- Akamai Fast Purge v3 ``POST /ccu/v3/{delete|invalidate}/tag/{production|staging}`` (delete:
  hard): ``Content-Type: application/json``, body exactly ``{"objects": [...]}`` of 1.. non-empty
  tags of at most 128 characters, at most 50,000 bytes (else 413), and an EdgeGrid
  ``Authorization`` whose tokens match and whose signature verifies with the client secret (else
  401); answers 201 ``{"httpStatus": 201, "detail": "Request accepted", "purgeId": ...}``. With
  `akamai_limits` it also keeps Akamai's published token buckets (100 requests refilling 50/s;
  5,000 tags refilling 500/min) and answers 429 when a request does not fit (spending nothing).
- The local edge ``POST /se/purge``: body ``{"tags": [...]}`` or ``{"tags": [...], "soft": true}``;
  answers ``{"purged": n, "tags": n}``.

Every request is recorded (monotonic receive time, API, path, headers, tags, soft or hard, status
answered).
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

import calendar
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from invalidation.purgers import edgegrid
from invalidation.ratelimit import AKAMAI_REQUESTS, AKAMAI_TAGS, PurgeBudget, TokenBucket
from tests.support.fake_http import Answer, LoopbackApiServer

Api = Literal["cloudflare", "fastly", "local-edge", "akamai"]

CLOUDFLARE_MAX_TAGS = 100
FASTLY_MAX_KEYS = 256
DEFAULT_CLOUDFLARE_TOKEN = "cf-test-token-0123456789"
DEFAULT_FASTLY_KEY = "fastly-test-key-0123456789"
DEFAULT_ZONE_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_FASTLY_SERVICE = "SU1Z0isxPaozGVKXdv0eY"
AKAMAI_MAX_BODY = 50_000
AKAMAI_MAX_TAG_CHARS = 128
DEFAULT_AKAMAI = edgegrid.EdgeGridCredentials(
    client_token="akab-client-token-0123456789abcdef",
    client_secret="akab-client-secret-SGVsbG8gd29ybGQ=",
    access_token="akab-access-token-0123456789abcdef",
)

_CLOUDFLARE_PATH = re.compile(
    r"/client/v4/zones/(?P<zone>[0-9a-f]{32})/(?P<kind>purge_cache|invalidate_cache)"
)
_AKAMAI_PATH = re.compile(r"/ccu/v3/(?P<action>delete|invalidate)/tag/(?P<network>[a-z]+)")
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
    soft: bool = False
    """The request asked to mark stale rather than evict (as its API spells it)."""
    observed: object = None
    """What the `on_accept` hook returned for this request (accepted requests only)."""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def network(self) -> str | None:
        """Akamai: the network the path names."""
        match = _AKAMAI_PATH.fullmatch(self.path)
        return match["network"] if match else None


@dataclass(frozen=True, slots=True)
class _Injected:
    status: int
    retry_after: int | None


class _Rejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{status}: {detail}")


class FakePurgeApi(LoopbackApiServer):
    """The fake purge server; use as a context manager (starts on enter, stops on exit)."""

    name = "fake purge API"
    max_body = _MAX_BODY

    def __init__(
        self,
        *,
        cloudflare_token: str = DEFAULT_CLOUDFLARE_TOKEN,
        fastly_key: str = DEFAULT_FASTLY_KEY,
        akamai: edgegrid.EdgeGridCredentials = DEFAULT_AKAMAI,
        akamai_limits: bool = False,
        on_accept: Callable[[Api, tuple[str, ...]], object] | None = None,
    ) -> None:
        super().__init__()
        self.cloudflare_token = cloudflare_token
        self.fastly_key = fastly_key
        self.akamai = akamai
        self._akamai_budget = (
            PurgeBudget(
                TokenBucket(AKAMAI_REQUESTS, time.monotonic()),
                TokenBucket(AKAMAI_TAGS, time.monotonic()),
            )
            if akamai_limits
            else None
        )
        self.on_accept = on_accept
        self._lock = threading.Lock()
        self._calls: list[PurgeCall] = []
        self._injected: list[_Injected] = []
        self._refused: dict[str, int] = {}

    # --- addresses ------------------------------------------------------------------------

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

    def spend_akamai_tags(self, count: int) -> None:
        """Take `count` tokens from the Akamai tag bucket (`akamai_limits`), as other API
        clients of the same account would."""
        if self._akamai_budget is None or self._akamai_budget.tags is None:
            raise RuntimeError("the fake keeps no Akamai buckets: start it with akamai_limits")
        with self._lock:
            if not self._akamai_budget.tags.take(time.monotonic(), count):
                raise ValueError(f"the Akamai tag bucket holds fewer than {count} tokens")

    def calls(self, api: Api | None = None) -> list[PurgeCall]:
        """Every request so far (of one API if given), in arrival order."""
        with self._lock:
            return [c for c in self._calls if api is None or c.api == api]

    def accepted(self, api: Api | None = None) -> list[PurgeCall]:
        return [c for c in self.calls(api) if c.accepted]

    def accepted_tags(self, api: Api | None = None) -> set[str]:
        return {tag for call in self.accepted(api) for tag in call.tags}

    # --- request handling (server thread) -------------------------------------------------

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        at = time.monotonic()
        api = _api_of(path)
        tags: tuple[str, ...] = ()
        soft = False
        try:
            tags, soft = self._check(api, method, path, headers, body)
            injected = self._take_injected()
            if injected is not None:
                extra = {}
                if injected.retry_after is not None:
                    extra["Retry-After"] = str(injected.retry_after)
                self._record(PurgeCall(at, api, path, headers, tags, injected.status, soft))
                return injected.status, extra, _error_body(api, injected.status, "injected")
            self._check_refused(tags)
            assert api is not None
            if api == "akamai":
                self._spend_akamai_tokens(len(tags))
            observed = self.on_accept(api, tags) if self.on_accept is not None else None
            status = 201 if api == "akamai" else 200
            self._record(PurgeCall(at, api, path, headers, tags, status, soft, observed))
            return status, {}, _success_body(api, tags)
        except _Rejected as exc:
            self._record(PurgeCall(at, api, path, headers, tags, exc.status, soft))
            return exc.status, {}, _error_body(api, exc.status, exc.detail)

    def _spend_akamai_tokens(self, tags: int) -> None:
        """Akamai's buckets (with `akamai_limits`): 429, spending nothing, when it does not fit."""
        if self._akamai_budget is None:
            return
        with self._lock:
            now = time.monotonic()
            if self._akamai_budget.affordable(now, tags) < tags:
                raise _Rejected(429, f"rate limit: no room for a request of {tags} cache tags")
            self._akamai_budget.spend(now, tags)

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
    ) -> tuple[tuple[str, ...], bool]:
        """The request's tags and whether it is soft; `_Rejected` when it is malformed."""
        if api is None:
            raise _Rejected(404, f"no purge API at {method} {path}")
        if method != "POST":
            raise _Rejected(400, f"purge must be POST, not {method}")
        if api == "cloudflare":
            match = _CLOUDFLARE_PATH.fullmatch(path)
            if match is None:
                raise _Rejected(400, f"bad zone id in {path!r} (expected 32 hex chars)")
            return self._check_cloudflare(headers, body), match["kind"] == "invalidate_cache"
        if api == "fastly":
            return self._check_fastly(headers), headers.get("fastly-soft-purge") == "1"
        if api == "akamai":
            return self._check_akamai(method, path, headers, body)
        doc = _json_doc(headers, body, {"tags"}, {"soft"})
        soft = doc.get("soft", False)
        if not isinstance(soft, bool):
            raise _Rejected(400, "'soft' must be true or false")
        return _tag_list(doc, "tags", None), soft

    def _check_akamai(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[tuple[str, ...], bool]:
        match = _AKAMAI_PATH.fullmatch(path)
        if match is None or match["network"] not in ("production", "staging"):
            raise _Rejected(400, f"{path!r} names no network (production or staging)")
        if len(body) > AKAMAI_MAX_BODY:
            raise _Rejected(413, f"body of {len(body)} bytes > {AKAMAI_MAX_BODY}")
        self._check_edgegrid(method, path, headers, body)
        tags = _tag_list(_json_doc(headers, body, {"objects"}, set()), "objects", None)
        long = [t for t in tags if len(t) > AKAMAI_MAX_TAG_CHARS]
        if long:
            raise _Rejected(400, f"cache tag over {AKAMAI_MAX_TAG_CHARS} characters: {long[0]!r}")
        return tags, match["action"] == "invalidate"

    def _check_edgegrid(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        header = headers.get("authorization", "")
        try:
            fields = edgegrid.parse_authorization(header)
            unsigned = edgegrid.unsigned_part(header)
        except ValueError as exc:
            raise _Rejected(401, f"EdgeGrid: {exc}") from exc
        for name in ("client_token", "access_token", "timestamp", "nonce", "signature"):
            if not fields.get(name):
                raise _Rejected(401, f"EdgeGrid Authorization without {name}")
        if fields["client_token"] != self.akamai.client_token:
            raise _Rejected(401, "EdgeGrid: unknown client_token")
        if fields["access_token"] != self.akamai.access_token:
            raise _Rejected(401, "EdgeGrid: unknown access_token")
        try:
            signed_at = calendar.timegm(time.strptime(fields["timestamp"], "%Y%m%dT%H:%M:%S+0000"))
        except ValueError as exc:
            raise _Rejected(401, f"EdgeGrid timestamp {fields['timestamp']!r}: {exc}") from exc
        if abs(signed_at - time.time()) > 300:
            raise _Rejected(401, "EdgeGrid timestamp more than 5 minutes off")
        url = f"http://{headers.get('host', '')}{path}"
        expected = edgegrid.signature(
            self.akamai.client_secret, method, url, body, unsigned, fields["timestamp"]
        )
        if fields["signature"] != expected:
            raise _Rejected(401, "EdgeGrid: the signature does not match the request")

    def _check_cloudflare(self, headers: dict[str, str], body: bytes) -> tuple[str, ...]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise _Rejected(400, "Authorization header must be 'Bearer <token>'")
        if auth.removeprefix("Bearer ") != self.cloudflare_token:
            raise _Rejected(403, "Authentication error: unknown API token")
        return _tag_list(_json_doc(headers, body, {"tags"}, set()), "tags", CLOUDFLARE_MAX_TAGS)

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
    if urlsplit(path).path.startswith("/ccu/v3/"):
        return "akamai"
    if path == _LOCAL_EDGE_PATH:
        return "local-edge"
    return None


def _json_doc(
    headers: dict[str, str], body: bytes, required: set[str], optional: set[str]
) -> dict[str, Any]:
    """The JSON object body with exactly the `required` keys (and maybe `optional` ones)."""
    content_type = headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        raise _Rejected(400, f"Content-Type must be application/json, got {content_type!r}")
    try:
        doc: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Rejected(400, f"body is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not required <= set(doc) <= required | optional:
        raise _Rejected(400, f"body must have exactly the keys {sorted(required)}")
    return doc


def _tag_list(doc: dict[str, Any], field: str, limit: int | None) -> tuple[str, ...]:
    tags = doc[field]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise _Rejected(400, f"{field!r} must be a list of non-empty strings")
    if not tags:
        raise _Rejected(400, f"{field!r} must not be empty")
    if limit is not None and len(tags) > limit:
        raise _Rejected(400, f"{len(tags)} tags > {limit} per request")
    return tuple(tags)


def _success_body(api: Api, tags: tuple[str, ...]) -> bytes:
    doc: dict[str, Any]
    if api == "cloudflare":
        doc = {"success": True, "errors": [], "messages": [], "result": {"id": uuid.uuid4().hex}}
    elif api == "fastly":
        doc = {tag: uuid.uuid4().hex for tag in tags}
    elif api == "akamai":
        doc = {
            "httpStatus": 201,
            "detail": "Request accepted",
            "estimatedSeconds": 5,
            "purgeId": str(uuid.uuid4()),
            "supportId": uuid.uuid4().hex,
        }
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
    elif api == "akamai":
        doc = {"type": "about:blank", "title": "purge refused", "status": status, "detail": detail}
    else:
        doc = {"msg": detail, "status": status}
    return json.dumps(doc).encode()
