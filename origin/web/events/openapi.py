"""OpenAPI operation of the event collector (merged by `origin.web.openapi`). Describes only."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def event_operations() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "/v1/events": {
            "post": {
                "summary": "Edges report exposures and conversions ({events: [...]}, at most 500), "
                "in batches signed with HMAC-SHA256",
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": {
                    "202": {"description": "Every event was acknowledged by Kafka"},
                    "400": {"description": "Malformed event (names it)", "content": _PROBLEM},
                    "401": {
                        "description": "Unsigned, expired, replayed or unknown-key batch "
                        "(X-Shelfedge-Signature; see docs/security.md)",
                        "content": _PROBLEM,
                    },
                    "413": {
                        "description": "Body over 256 KiB or over 500 events",
                        "content": _PROBLEM,
                    },
                    "429": {"description": "Rate limited (Retry-After)", "content": _PROBLEM},
                    "503": {"description": "Kafka unavailable (Retry-After)", "content": _PROBLEM},
                },
            }
        }
    }
