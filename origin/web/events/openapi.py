"""OpenAPI operation of the event collector (merged by `origin.web.openapi`). Describes only."""

from __future__ import annotations

from typing import Any

from fragments.batch_signing import REPLAY_WINDOW_S, SIGNATURE_HEADER
from origin.web.events.collector import MAX_BODY_BYTES, MAX_EVENTS
from origin.web.schemas import event_batch_schema

SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": SIGNATURE_HEADER,
    "description": "kid=<key id>,ts=<unix s>,id=<batch id>,sig=<64 hex>: HMAC-SHA256 over "
    "kid, ts, id and the exact body under a key the edges and the collector share; ts within "
    f"{REPLAY_WINDOW_S} s of the origin's clock, a batch id accepted once (docs/security.md)",
}
"""The ``eventSignature`` security scheme POST /v1/events names."""

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def event_operations() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "/v1/events": {
            "post": {
                "summary": f"Edges report exposures and conversions ({{events: [...]}}, at most "
                f"{MAX_EVENTS}), in batches signed with HMAC-SHA256",
                "security": [{"eventSignature": []}],
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
