"""``POST /v1/clickstream``: accept a batch of clickstream events and produce them to Kafka.

Body ``{"events": [...]}`` (`fragments.clickstream`). The same limits as ``POST /v1/events``
(the client's token bucket, body size, at most `MAX_EVENTS`), each event validated (400 naming
``events[i].field``). Events without consent are dropped here, never produced: nothing is
tracked without consent. 202 means every consented event was acknowledged by the broker; 503
when Kafka is not reachable (never a hang). It never logs events.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fragments.clickstream import ClickEvent, ClickInvalid, validate_click
from origin.events.errors import EventsUnavailable
from origin.web import problems
from origin.web.events.collector import MAX_EVENTS, CollectorState, admit_signed_batch

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def post_clickstream(request: Request) -> Response:
    state: CollectorState = request.app.state.events
    admitted = await admit_signed_batch(request, state)  # signed by an edge, rate-limited
    if isinstance(admitted, Response):
        return admitted
    body, _ = admitted
    try:
        events = _parse(body, time.time())
    except ClickInvalid as exc:
        return problems.problem(400, "Bad request", str(exc), invalid={exc.field: exc.reason})
    consented = [e for e in events if e.consent]
    if consented:
        try:
            await state.sink.send(consented)
        except EventsUnavailable as exc:
            return problems.unavailable(str(exc), retry_after=2)
    return JSONResponse(
        {"accepted": len(consented), "dropped_without_consent": len(events) - len(consented)},
        status_code=202,
    )


def _parse(body: bytes, now: float) -> list[ClickEvent]:
    try:
        doc: Any = json.loads(body)
    except ValueError as exc:
        raise ClickInvalid("body", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list) or not doc["events"]:
        raise ClickInvalid("events", 'send {"events": [...]} with at least one event')
    raw = doc["events"]
    if len(raw) > MAX_EVENTS:
        raise ClickInvalid("events", f"at most {MAX_EVENTS} events per request")
    out: list[ClickEvent] = []
    for i, item in enumerate(raw):
        try:
            out.append(validate_click(item, now))
        except ClickInvalid as exc:
            raise ClickInvalid(f"events[{i}].{exc.field}", exc.reason) from exc
    return out


def routes() -> list[Route]:
    return [Route("/v1/clickstream", post_clickstream, methods=["POST"])]


def clickstream_operations() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "/v1/clickstream": {
            "post": {
                "summary": "Shoppers' views, cart changes, purchases and searches "
                "(clickstream.v1), in batches an edge signs like POST /v1/events",
                "security": [{"eventSignature": []}],
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": {
                    "202": {"description": "Produced (events without consent dropped)"},
                    "401": {
                        "description": "Unsigned, expired, replayed or unknown-key batch",
                        "content": _PROBLEM,
                    },
                    "400": {"description": "Invalid: names events[i].field", "content": _PROBLEM},
                    "413": {"description": "Too large", "content": _PROBLEM},
                    "429": {"description": "Too fast", "content": _PROBLEM},
                    "503": {"description": "Kafka unreachable", "content": _PROBLEM},
                },
            }
        }
    }
