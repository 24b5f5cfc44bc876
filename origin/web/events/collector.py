"""``POST /v1/events``: accept a batch of experiment events and produce them to Kafka.

Body ``{"events": [...]}`` (see `origin.events.schema`). Limits, in order: the client's token
bucket (429 + Retry-After), the body size (413), valid JSON with an ``events`` list (400), the
number of events (413), each event's fields (400 naming ``events[i].field``). Then the whole
batch goes to Kafka or the answer is 503 (never a hang): 202 means every event was
acknowledged by the broker. The client key is the peer address; proxies in front of the
origin should be trusted explicitly before forwarded addresses are (they are not here).
It never logs events and never waits on Kafka beyond the sink's send timeout.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from origin.events.errors import EventRejected, EventsUnavailable
from origin.events.schema import ExperimentEvent, parse_event
from origin.events.sink import EventSink
from origin.web import problems
from origin.web.events.ratelimit import ClientRateLimiter

MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS = 500


@dataclass(slots=True)
class CollectorState:
    """Reached through ``app.state.events``."""

    sink: EventSink
    limiter: ClientRateLimiter
    accepted: int = 0
    rejected: int = 0
    unavailable: int = 0


async def post_events(request: Request) -> Response:
    state: CollectorState = request.app.state.events
    client = request.client.host if request.client else "unknown"
    wait = state.limiter.take(client)
    if wait > 0:
        state.rejected += 1
        seconds = ClientRateLimiter.retry_after(wait)
        return problems.problem(
            429,
            "Too many requests",
            f"this client sends events too fast; retry after {seconds}s (batch events instead)",
            headers={"Retry-After": str(seconds)},
        )
    body = await _bounded_body(request)
    if body is None:
        state.rejected += 1
        return problems.problem(
            413,
            "Payload too large",
            f"the body is over {MAX_BODY_BYTES} bytes; send smaller batches",
            invalid={"body": f"at most {MAX_BODY_BYTES} bytes"},
        )
    try:
        events = _parse(body, time.time())
    except EventRejected as exc:
        state.rejected += 1
        status = 413 if exc.field == "events" and "at most" in exc.reason else 400
        title = "Payload too large" if status == 413 else "Bad request"
        return problems.problem(status, title, str(exc), invalid={exc.field: exc.reason})
    try:
        await state.sink.send(events)
    except EventsUnavailable as exc:
        state.unavailable += 1
        return problems.unavailable(str(exc), retry_after=2)
    state.accepted += len(events)
    return JSONResponse({"accepted": len(events)}, status_code=202)


async def _bounded_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return body


def _parse(body: bytes, now: float) -> list[ExperimentEvent]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise EventRejected("body", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise EventRejected("events", 'send {"events": [...]}')
    raw = doc["events"]
    if not raw:
        raise EventRejected("events", "send at least one event")
    if len(raw) > MAX_EVENTS:
        raise EventRejected("events", f"at most {MAX_EVENTS} events per request, got {len(raw)}")
    return [parse_event(item, now, f"events[{i}]") for i, item in enumerate(raw)]
