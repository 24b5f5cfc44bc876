"""OpenAPI operations of the experiment API and the edge configuration (merged by
`origin.web.openapi`). Describes; never serves."""

from __future__ import annotations

from typing import Any

from fragments.ids import ID_PATTERN, anchored

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_JSON: dict[str, Any] = {"application/json": {}}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM}


_AUTH = {"401": _err("Missing or unknown bearer token"), "503": _err("Redis unavailable")}
_WRITE = {**_AUTH, "403": _err("A viewer token cannot write")}
_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": 'The version you edited, as returned in ETag (e.g. "3")',
    "schema": {"type": "string"},
}
_EXPERIMENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Experiment"}}}
_CHANGED = {
    "200": {
        "description": "The changed experiment (ETag: its new version)",
        "content": _EXPERIMENT,
    },
    "404": _err("Unknown experiment"),
    "412": _err("If-Match is stale (current_version says the current one)"),
    "428": _err("If-Match is missing"),
    **_WRITE,
}
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _transition(action: str, meaning: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": f"{action.capitalize()} the experiment ({meaning}); publishes a config",
            "security": _SECURITY,
            "parameters": [_KEY, _IF_MATCH],
            "responses": {**_CHANGED, "409": _err(f"Cannot {action} from the current status")},
        }
    }


def experiment_operations() -> dict[str, dict[str, dict[str, Any]]]:
    """Path -> method -> operation."""
    return {
        "/v1/experiments": {
            "get": {
                "summary": "List experiments",
                "security": _SECURITY,
                "responses": {
                    "200": {"description": "{experiments: [...]}", "content": _JSON},
                    **_AUTH,
                },
            },
            "post": {
                "summary": "Create a draft experiment",
                "security": _SECURITY,
                "requestBody": {"required": True, "content": _EXPERIMENT},
                "responses": {
                    "201": {"description": "Created (ETag: version 1)", "content": _EXPERIMENT},
                    "409": _err("The key is taken"),
                    "413": _err("Body too large"),
                    "422": _err("Invalid experiment: invalid_params names each field and fix"),
                    **_WRITE,
                },
            },
        },
        "/v1/experiments/publish": {
            "post": {
                "summary": "Publish the stored experiments as a new edge config version",
                "security": _SECURITY,
                "responses": {
                    "201": {"description": "The published version", "content": _JSON},
                    **_WRITE,
                },
            }
        },
        "/v1/experiments/{key}": {
            "get": {
                "summary": "One experiment (ETag: its version)",
                "security": _SECURITY,
                "parameters": [_KEY],
                "responses": {
                    "200": {"description": "The experiment", "content": _EXPERIMENT},
                    "304": {"description": "Not modified"},
                    "404": _err("Unknown experiment"),
                    **_AUTH,
                },
            },
            "put": {
                "summary": "Replace an experiment's definition (status changes use the actions)",
                "security": _SECURITY,
                "parameters": [_KEY, _IF_MATCH],
                "requestBody": {"required": True, "content": _EXPERIMENT},
                "responses": {**_CHANGED, "422": _err("Invalid experiment")},
            },
        },
        "/v1/experiments/{key}/start": _transition("start", "draft or paused -> running"),
        "/v1/experiments/{key}/pause": _transition("pause", "running -> paused"),
        "/v1/experiments/{key}/stop": _transition("stop", "kill switch: everyone sees control"),
        "/v1/experiments/{key}/audit": {
            "get": {
                "summary": "Who changed what and when, newest first",
                "security": _SECURITY,
                "parameters": [
                    _KEY,
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100}},
                ],
                "responses": {
                    "200": {"description": "{entries: [...]}", "content": _JSON},
                    **_AUTH,
                },
            }
        },
        "/v1/experiments/{key}/results": {
            "get": {
                "summary": (
                    "The always-valid analysis (decision with its reason, checks, primary and "
                    "guardrail metrics, lift over time) and the fixed-horizon per-variant "
                    "rates, uplift, SRM and series"
                ),
                "security": _SECURITY,
                "parameters": [
                    _KEY,
                    {
                        "name": "metric",
                        "in": "query",
                        "schema": {"enum": ["purchase", "add_to_cart", "click"]},
                    },
                    {"name": "granularity", "in": "query", "schema": {"enum": ["day", "hour"]}},
                ],
                "responses": {
                    "200": {"description": "Results", "content": _JSON},
                    "404": _err("Unknown experiment"),
                    **_AUTH,
                },
            }
        },
        "/v1/experiments/{key}/preview-link": {
            "post": {
                "summary": "A QA link forcing one variant (sx_<key>=<variant>&sx_token=...)",
                "security": _SECURITY,
                "parameters": [
                    _KEY,
                    {
                        "name": "variant",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {"description": "{url, slot_urls, config_version}", "content": _JSON},
                    **_WRITE,
                },
            }
        },
        "/v1/edge-config": {
            "get": {
                "summary": "The current published edge config (ETag: its version; private, "
                "max-age=5, stale-while-revalidate=30); the edge's token or an admin token",
                "security": _SECURITY,
                "responses": {
                    "200": {
                        "description": "EdgeExperimentConfig JSON",
                        "content": {"application/vnd.shelfedge.edge-config+json": {}},
                    },
                    "304": {"description": "Not modified"},
                    "401": _err("Missing or unknown token"),
                    "503": _err("Redis unavailable"),
                },
            }
        },
        "/v1/preview/exchange": {
            "post": {
                "summary": "The edge trades a one-time preview code for its scoped token",
                "security": _SECURITY,
                "requestBody": {"required": True, "content": _JSON},
                "responses": {
                    "200": {"description": "{token}", "content": _JSON},
                    "400": _err("Not JSON"),
                    "401": _err("Missing or unknown token"),
                    "404": _err("Unknown, used or expired code"),
                    "422": _err("Malformed code"),
                    "503": _err("Redis unavailable"),
                },
            }
        },
        "/v1/edge-config/versions": {
            "get": {
                "summary": "Every published version (who, when, why), newest first",
                "security": _SECURITY,
                "responses": {
                    "200": {"description": "{current, versions}", "content": _JSON},
                    **_AUTH,
                },
            }
        },
        "/v1/edge-config/versions/{version}": {
            "get": {
                "summary": "One published version as the edge received it",
                "security": _SECURITY,
                "parameters": [
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {
                    "200": {"description": "EdgeExperimentConfig JSON"},
                    "404": _err("Never published"),
                    **_AUTH,
                },
            }
        },
        "/v1/edge-config/rollback/{version}": {
            "post": {
                "summary": "Make an earlier version current again (as a new version number)",
                "security": _SECURITY,
                "parameters": [
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {
                    "201": {"description": "The new version", "content": _JSON},
                    "404": _err("Never published"),
                    **_WRITE,
                },
            }
        },
        "/v1/edge-config/preview-token": {
            "post": {
                "summary": "Rotate the QA preview token (old preview links stop working)",
                "security": _SECURITY,
                "responses": {
                    "201": {"description": "The version carrying the new hash", "content": _JSON},
                    **_WRITE,
                },
            }
        },
    }


EXPERIMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "name", "slots", "variants"],
    "properties": {
        "key": {"type": "string", "pattern": anchored(ID_PATTERN)},
        "name": {"type": "string"},
        "status": {"enum": ["draft", "running", "paused", "stopped"]},
        "slots": {"type": "array", "items": {"type": "string"}},
        "variants": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "weight"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "weight": {"type": "number"},
                    "changes": {
                        "type": "object",
                        "properties": {
                            "wrapper_template": {"type": "string"},
                            "card_template": {"type": "string"},
                            "scoring": {
                                "type": "object",
                                "additionalProperties": {"type": "number"},
                            },
                            "shown": {"type": "integer"},
                            "recency_boost": {"type": "number"},
                            "price_floor": {"type": "number"},
                            "origin_rendered": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        "targeting": {"type": "object"},
        "coverage": {"type": "number"},
        "hash_seed": {"type": "string"},
        "hash_version": {"enum": [1, 2]},
        "bucket_version": {"type": "integer"},
        "namespace": {"type": ["object", "null"]},
        "holdout": {"type": "number"},
        "starts_at": {"type": ["number", "null"]},
        "ends_at": {"type": ["number", "null"]},
        "version": {"type": "integer", "readOnly": True},
    },
}
