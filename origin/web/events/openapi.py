"""OpenAPI operation of the event collector (merged by `origin.web.openapi`). Describes only."""

from __future__ import annotations

from typing import Any

from origin.web.events.collector import MAX_BODY_BYTES, MAX_EVENTS
from origin.web.schemas import event_batch_schema

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def event_operations() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "/v1/events": {
            "post": {
                "summary": f"Edges report exposures and conversions ({{events: [...]}}, at most "
                f"{MAX_EVENTS}), in batches signed with HMAC-SHA256",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": event_batch_schema(MAX_EVENTS)}},
                },
                "responses": {
                    "202": {"description": "Every event was acknowledged by Kafka"},
                    "400": {"description": "Malformed event (names it)", "content": _PROBLEM},
                    "401": {
                        "description": "Unsigned, expired, replayed or unknown-key batch "
                        "(X-Shelfedge-Signature; see docs/security.md)",
                        "content": _PROBLEM,
                    },
                    "413": {
                        "description": f"Body over {MAX_BODY_BYTES} bytes or over {MAX_EVENTS} "
                        "events",
                        "content": _PROBLEM,
                    },
                    "429": {"description": "Rate limited (Retry-After)", "content": _PROBLEM},
                    "503": {"description": "Kafka unavailable (Retry-After)", "content": _PROBLEM},
                },
            }
        }
    }
