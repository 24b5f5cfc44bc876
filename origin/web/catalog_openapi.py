"""OpenAPI operations of the catalog import API (merged by `origin.web.openapi`). Describes only."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_REPORT = {"application/json": {"schema": {"type": "object"}}}
_FEEDS = {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in (
        "text/tab-separated-values", "application/rss+xml", "application/atom+xml",
        "application/xml", "application/x-ndjson", "application/octet-stream",
    )
}  # fmt: skip
_AUTH = {
    "401": {"description": "No ingest or editor token", "content": _PROBLEM},
    "403": {"description": "The token's role may not import", "content": _PROBLEM},
}


def catalog_operations() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "/v1/catalog/imports": {
            "post": {
                "summary": "Import a Merchant Center product feed (TSV, RSS/Atom, JSON Lines)",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "mode",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["full", "delta"], "default": "full"},
                    },
                    {
                        "name": "reject_threshold",
                        "in": "query",
                        "schema": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.01},
                    },
                    {
                        "name": "currency",
                        "in": "query",
                        "schema": {"type": "string", "pattern": "^[A-Za-z]{3}$", "default": "USD"},
                    },
                ],
                "requestBody": {"required": True, "content": _FEEDS},
                "responses": {
                    "200": {"description": "Applied: the import's report", "content": _REPORT},
                    **_AUTH,
                    "409": {"description": "Another import is running", "content": _PROBLEM},
                    "413": {"description": "Feed over 2 GiB", "content": _PROBLEM},
                    "422": {
                        "description": "Bad parameters, an unreadable feed, or too many rejected "
                        "items (nothing applied; the problem's report lists them)",
                        "content": _PROBLEM,
                    },
                    "503": {"description": "Redis unavailable", "content": _PROBLEM},
                },
            }
        },
        "/v1/catalog/imports/last": {
            "get": {
                "summary": "The report of the last catalog import",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {"description": "The report", "content": _REPORT},
                    **_AUTH,
                    "404": {"description": "No import yet", "content": _PROBLEM},
                },
            }
        },
    }
