"""The origin's OpenAPI 3.1 document, built from the same route table the app serves.

`operations` describes each (method, path); `openapi_document` assembles the document. Parameter
and body schemas come from `origin.web.schemas`, which takes them from the validators. Tests:
`tests/origin/web/test_openapi.py` checks the document matches the app's routes both ways, and
`tests/origin/web/test_contract.py` runs schemathesis (every check, stateful phase included)
against a running origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fragments.ids import CONTROL_VARIANT, DEFAULT_LOCALE
from origin.web.admin.openapi import SECURITY_SCHEME, TAG, TAG_DESCRIPTION, admin_operations
from origin.web.catalog_openapi import catalog_operations
from origin.web.events.openapi import SECURITY_SCHEME as EVENT_SIGNATURE_SCHEME
from origin.web.events.openapi import event_operations
from origin.web.experiments.openapi import experiment_operations
from origin.web.routes.clickstream import clickstream_operations
from origin.web.routes.context import context_operations
from origin.web.routes.ingest import ingest_operations
from origin.web.schemas import ID, LOCALE, SKU, experiment_example, experiment_schema

_KEY_PARAMS: list[dict[str, Any]] = [
    {"name": "slot", "in": "path", "required": True, "schema": ID},
    {
        "name": "segment",
        "in": "query",
        "description": "The segment id (per-segment slots); give exactly one of segment, anchor",
        "schema": ID,
    },
    {
        "name": "anchor",
        "in": "query",
        "description": "The anchor SKU (anchored slots: product cross-sell, cart items)",
        "schema": SKU,
    },
    {"name": "variant", "in": "query", "schema": {**ID, "default": CONTROL_VARIANT}},
    {"name": "locale", "in": "query", "schema": {**LOCALE, "default": DEFAULT_LOCALE}},
    {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
]
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ERRORS = {
    "404": {
        "description": "Unknown slot, segment, anchor product, variant or locale",
        "content": _PROBLEM,
    },
    "422": {"description": "Invalid parameters", "content": _PROBLEM},
    "503": {"description": "Redis unavailable (Retry-After)", "content": _PROBLEM},
}


def operations() -> dict[str, dict[str, dict[str, Any]]]:
    """Path -> method -> operation."""
    return {
        "/v1/bundles/{slot}": {
            "get": {
                "summary": "A fragment bundle with its cache headers and tags",
                "parameters": _KEY_PARAMS,
                "responses": {
                    "200": {
                        "description": "The bundle (wire format v1)",
                        "content": {"application/vnd.shelfedge.bundle+json": {}},
                    },
                    "304": {"description": "Not modified (ETag matched)"},
                    **_ERRORS,
                },
            }
        },
        "/v1/fragments/{slot}": {
            "get": {
                "summary": "The fully rendered fragment (no edge; default ranking)",
                "parameters": _KEY_PARAMS,
                "responses": {
                    "200": {"description": "HTML", "content": {"text/html": {}}},
                    "304": {"description": "Not modified (ETag matched)"},
                    **_ERRORS,
                },
            }
        },
        "/v1/products/{sku}": {
            "get": {
                "summary": "One product document",
                "parameters": [{"name": "sku", "in": "path", "required": True, "schema": SKU}],
                "responses": {"200": {"description": "Product JSON"}, **_ERRORS},
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
        "/readyz": {
            "get": {
                "summary": "Readiness (Redis reachable)",
                "responses": {"200": {"description": "Ready"}, "503": _ERRORS["503"]},
            }
        },
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text"}}}
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "JSON"}}}
        },
        "/": {
            "get": {
                "summary": "Demo storefront page (dev only): a shell with slot placeholders",
                "responses": {"200": {"description": "HTML"}},
            }
        },
        "/products/{sku}": {
            "get": {
                "summary": "Demo product page (dev only): the product and its cross-sell slot",
                "parameters": [{"name": "sku", "in": "path", "required": True, "schema": SKU}],
                "responses": {
                    "200": {"description": "HTML"},
                    "404": {"description": "No such product (HTML)"},
                    "503": {"description": "The store is unavailable (HTML)"},
                },
            }
        },
        "/cart": {
            "get": {
                "summary": "Demo cart page (dev only): the cart and its upsell slot",
                "responses": {"200": {"description": "HTML"}},
            }
        },
        "/static/img/{name}.svg": {
            "get": {
                "summary": "Generated placeholder image of a category (demo catalog)",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "SVG", "content": {"image/svg+xml": {}}}},
            }
        },
    }


def openapi_document(
    *,
    slots: Sequence[str],
    templates: Sequence[str],
    extra: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The document for an origin serving `slots`, whose variants may choose `templates`."""
    paths = {
        **operations(),
        **experiment_operations(),
        **event_operations(),
        **catalog_operations(),
        **admin_operations(),
        **ingest_operations(),
        **context_operations(),
        **clickstream_operations(),
    }
    for path, methods in (extra or {}).items():
        paths.setdefault(path, {}).update(methods)
    if slots:
        create = paths["/v1/experiments"]["post"]["requestBody"]["content"]["application/json"]
        paths["/v1/experiments"]["post"]["requestBody"]["content"]["application/json"] = {
            **create,
            "example": experiment_example(slots),
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "shelfedge origin", "version": "1"},
        "paths": paths,
        "tags": [{"name": TAG, "description": TAG_DESCRIPTION}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "adminSession": SECURITY_SCHEME,
                "eventSignature": EVENT_SIGNATURE_SCHEME,
            },
            "schemas": {
                "Experiment": experiment_schema(slots, templates),
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "invalid_params": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "reason": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    }


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.openapi)
