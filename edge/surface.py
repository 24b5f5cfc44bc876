"""The edge's own HTTP surface, ``/se/*``: one route table, body parsing and limits for all
adapters.

    GET|HEAD  /se/slot/<slot>   the personalized slot (one path segment, non-empty)
    POST      /se/purge         {"tags": [...]}: purge by tag, at most `MAX_PURGE_BODY` bytes;
                                {"tags": [...], "soft": true} marks the entries stale instead
                                (served while revalidated; an adapter without stale marking
                                evicts); the answer is {"purged": n, "tags": len(tags)}
    POST      /se/events        the storefront's beacons {"events": [...]}, at most
                                `MAX_BEACON_BODY` bytes: experiment conversions
                                (`edge.browser_events`) and behaviour for the clickstream
                                (`edge.clickstream_beacons`); 202 {"queued": n, "skipped":
                                {reason: n}, "tracked": n, "untracked": {reason: n}}
    GET|HEAD  /se/metrics       Prometheus metrics (the local edge only; elsewhere not served)

`match_route` tells an adapter which endpoint a path is; a known path asked with another method
is answered 405 with ``Allow`` (`Route.allow`); any other path is not the edge's own (a CDN
adapter passes it through to the origin, the WASI CGI mode answers 404). Bodies are read with
`read_bounded` (never more than the limit plus one chunk) and parsed here; a refused body is
`BadSeRequest` with its status (400 malformed, 413 too large) and the JSON error answer
(`error_answer`). A purge needs ``Authorization: Bearer <token>`` when the adapter is configured
with a token (`purge_authorized`). A query string is read up to `MAX_QUERY_STRING` characters.

Pure: standard library and `edge.errors` only.
"""

from __future__ import annotations

import enum
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from edge.errors import BadSeRequest

SLOT_PREFIX = "/se/slot/"
PURGE_PATH = "/se/purge"
EVENTS_PATH = "/se/events"
METRICS_PATH = "/se/metrics"
PREVIEW_PATH = "/se/preview"
"""A one-time preview link: traded at the origin for a scoped preview token kept in a cookie."""
MAX_PURGE_BODY = 256 * 1024
"""Largest purge body an edge reads (bytes): about 10,000 tags."""
MAX_BEACON_BODY = 16 * 1024
"""Largest beacon body an edge reads (bytes)."""
MAX_QUERY_STRING = 4096
"""Characters of a query string the edge reads; the rest is ignored."""
PURGE_FORBIDDEN = "forbidden: set PURGE_TOKEN and send it as a Bearer token\n"


class Endpoint(enum.Enum):
    SLOT = "slot"
    PURGE = "purge"
    EVENTS = "events"
    METRICS = "metrics"
    PREVIEW = "preview"


_METHODS: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.SLOT: ("GET", "HEAD"),
    Endpoint.PURGE: ("POST",),
    Endpoint.EVENTS: ("POST",),
    Endpoint.METRICS: ("GET", "HEAD"),
    Endpoint.PREVIEW: ("GET",),
}
_PATHS = {
    PURGE_PATH: Endpoint.PURGE,
    EVENTS_PATH: Endpoint.EVENTS,
    METRICS_PATH: Endpoint.METRICS,
    PREVIEW_PATH: Endpoint.PREVIEW,
}


@dataclass(frozen=True, slots=True)
class Route:
    """A path of the edge's own surface."""

    endpoint: Endpoint
    slot: str = ""
    """The slot id (`Endpoint.SLOT` only)."""

    def allows(self, method: str) -> bool:
        return method.upper() in _METHODS[self.endpoint]

    @property
    def allow(self) -> str:
        """The ``Allow`` header of a 405 answer."""
        return ", ".join(_METHODS[self.endpoint])


def match_route(path: str) -> Route | None:
    """The edge endpoint at ``path``, or None when the path is not the edge's own."""
    if path.startswith(SLOT_PREFIX):
        slot = path[len(SLOT_PREFIX) :]
        return Route(Endpoint.SLOT, slot) if slot and "/" not in slot else None
    endpoint = _PATHS.get(path)
    return None if endpoint is None else Route(endpoint)


def parse_query(query_string: str) -> dict[str, str]:
    """The query parameters (blank values kept, the last value wins); characters past
    `MAX_QUERY_STRING` are ignored."""
    return dict(parse_qsl(query_string[:MAX_QUERY_STRING], keep_blank_values=True))


def declared_length_fits(content_length: str | None, limit: int) -> None:
    """Refuse early (413) a body whose Content-Length is already over ``limit``."""
    declared = (content_length or "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BadSeRequest(413, f"body over {limit} bytes")


async def read_bounded(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body from ``chunks``, reading no further once it is over ``limit`` (then 413)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BadSeRequest(413, f"body over {limit} bytes")
    return bytes(body)


async def read_purge_tags(
    chunks: AsyncIterator[bytes], content_length: str | None
) -> tuple[str, ...]:
    """Read (bounded) and parse a purge body's tags; BadSeRequest when it is refused."""
    return (await read_purge_order(chunks, content_length)).tags


async def read_purge_order(chunks: AsyncIterator[bytes], content_length: str | None) -> PurgeOrder:
    """Read (bounded) and parse a purge body; BadSeRequest when it is refused."""
    declared_length_fits(content_length, MAX_PURGE_BODY)
    return parse_purge_order(await read_bounded(chunks, MAX_PURGE_BODY))


async def read_beacon(chunks: AsyncIterator[bytes], content_length: str | None) -> Any:
    """Read (bounded) and parse a beacon body; BadSeRequest when it is refused."""
    declared_length_fits(content_length, MAX_BEACON_BODY)
    return parse_beacon_body(await read_bounded(chunks, MAX_BEACON_BODY))


@dataclass(frozen=True, slots=True)
class PurgeOrder:
    """What a purge body asks: these tags, evicted or (soft) marked stale."""

    tags: tuple[str, ...]
    soft: bool = False


def parse_purge_body(body: bytes) -> tuple[str, ...]:
    """The tags of a purge body ``{"tags": [str, ...]}``; BadSeRequest(400) otherwise."""
    return parse_purge_order(body).tags


def parse_purge_order(body: bytes) -> PurgeOrder:
    """A purge body ``{"tags": [str, ...], "soft": bool (optional)}``; BadSeRequest(400)
    otherwise."""
    if len(body) > MAX_PURGE_BODY:
        raise BadSeRequest(413, f"body over {MAX_PURGE_BODY} bytes")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise BadSeRequest(400, f'expected {{"tags": [...]}}: {exc}') from exc
    except RecursionError as exc:
        raise BadSeRequest(400, 'expected {"tags": [...]}: JSON nested too deeply') from exc
    tags = doc.get("tags") if isinstance(doc, dict) else None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadSeRequest(400, "expected {\"tags\": [...]}: 'tags' must be a list of strings")
    soft = doc.get("soft", False)
    if not isinstance(soft, bool):
        raise BadSeRequest(400, "'soft' must be true or false")
    return PurgeOrder(tuple(tags), soft)


def parse_beacon_body(body: bytes) -> Any:
    """The parsed JSON of a beacon body (its items are checked by `edge.browser_events`)."""
    if len(body) > MAX_BEACON_BODY:
        raise BadSeRequest(413, f"body over {MAX_BEACON_BODY} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BadSeRequest(400, f'expected {{"events": [...]}}: {exc}') from exc
    except RecursionError as exc:
        raise BadSeRequest(400, 'expected {"events": [...]}: JSON nested too deeply') from exc


def purge_authorized(required_token: str | None, authorization: str | None) -> bool:
    """Whether a purge may run: always when no token is required (None: the local edge),
    never when the required token is empty (not configured), else on a matching Bearer token."""
    if required_token is None:
        return True
    if not required_token:
        return False
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {required_token}".encode())


def error_answer(exc: BadSeRequest) -> str:
    """The JSON body of a refused ``/se/*`` request."""
    return json.dumps({"error": str(exc)})


def purge_answer(purged: int, tags: int) -> str:
    """The JSON body of a purge."""
    return json.dumps({"purged": purged, "tags": tags})


def beacon_answer(
    queued: int,
    skipped: dict[str, int],
    tracked: int = 0,
    untracked: dict[str, int] | None = None,
) -> str:
    """The JSON body of a beacon (202): experiment events queued and skipped, clickstream
    events tracked and not."""
    return json.dumps(
        {"queued": queued, "skipped": skipped, "tracked": tracked, "untracked": untracked or {}}
    )
