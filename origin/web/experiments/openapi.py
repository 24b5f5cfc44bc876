"""OpenAPI operations of the experiment API and the edge configuration (merged by
`origin.web.openapi`). Describes; never serves."""

from __future__ import annotations

from typing import Any

from origin.web.schemas import (
    AUDIT_LIMIT_MAX,
    ID,
    IF_MATCH_SCHEMA,
    RESULT_GRANULARITIES,
    RESULT_METRICS,
    VERSION,
    preview_exchange_schema,
)

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_JSON: dict[str, Any] = {"application/json": {}}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM}


_AUTH = {"401": _err("Missing or unknown bearer token"), "503": _err("Redis unavailable")}
_WRITE = {**_AUTH, "403": _err("A viewer token cannot write")}
_KEY = {"name": "key", "in": "path", "required": True, "schema": ID}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": 'The version you edited, as returned in ETag (e.g. "3")',
    "schema": IF_MATCH_SCHEMA,
}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": VERSION}
_BODY_ERRORS = {
    "400": _err("The body is not JSON"),
    "413": _err("Body too large"),
    "415": _err("The body is not application/json"),
    "422": _err("Invalid experiment: invalid_params names each field and its fix"),
}
_EXPERIMENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Experiment"}}}
_ACTIONS = ("start", "pause", "stop")


def _links() -> dict[str, Any]:
    """Where a response carrying an experiment (its key in the body, its version as ETag) leads:
    schemathesis's stateful phase follows these to walk the lifecycle."""
    key = {"path.key": "$response.body#/key"}
    write = {**key, "header.If-Match": "$response.header.ETag"}
    return {
        "GetExperiment": {"operationId": "getExperiment", "parameters": key},
        "UpdateExperiment": {"operationId": "updateExperiment", "parameters": write},
        **{
            f"{a.capitalize()}Experiment": {"operationId": f"{a}Experiment", "parameters": write}
            for a in _ACTIONS
        },
    }


_CHANGED = {
    "200": {
        "description": "The changed experiment (ETag: its new version)",
        "content": _EXPERIMENT,
        "links": _links(),
    },
    "400": _err("If-Match is not a quoted version number"),
    "404": _err("Unknown experiment"),
    "412": _err("If-Match is stale (current_version says the current one)"),
    "428": _err("If-Match is missing"),
    **_WRITE,
}
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _transition(action: str, meaning: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"{action}Experiment",
            "summary": f"{action.capitalize()} the experiment ({meaning}); publishes a config",
            "security": _SECURITY,
            "parameters": [_KEY, _IF_MATCH],
            "responses": {
                **_CHANGED,
                "409": _err(f"Cannot {action} from the current status"),
                "422": _err(
                    "The experiment is revalidated against the others: a variant id another "
                    "live experiment uses on the same slot, an overlapping namespace range, a "
                    "segment no longer in the catalog (invalid_params names each field)"
                ),
            },
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
                "operationId": "createExperiment",
                "summary": "Create a draft experiment",
                "security": _SECURITY,
                "requestBody": {"required": True, "content": _EXPERIMENT},
                "responses": {
                    "201": {
                        "description": "Created (ETag: version 1)",
                        "content": _EXPERIMENT,
                        "links": _links(),
                    },
                    "409": _err("The key is taken"),
                    **_BODY_ERRORS,
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
                "operationId": "getExperiment",
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
                "operationId": "updateExperiment",
                "summary": "Replace an experiment's definition (status changes use the actions)",
                "security": _SECURITY,
                "parameters": [_KEY, _IF_MATCH],
                "requestBody": {"required": True, "content": _EXPERIMENT},
                "responses": {**_CHANGED, **_BODY_ERRORS},
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
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": AUDIT_LIMIT_MAX,
                            "default": 100,
                        },
                    },
                ],
                "responses": {
                    "200": {"description": "{entries: [...]}", "content": _JSON},
                    "404": _err("Unknown experiment"),
                    "422": _err("limit is not an integer in range"),
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
                        "schema": {"enum": list(RESULT_METRICS), "default": "purchase"},
                    },
                    {
                        "name": "granularity",
                        "in": "query",
                        "schema": {"enum": list(RESULT_GRANULARITIES), "default": "day"},
                    },
                ],
                "responses": {
                    "200": {"description": "Results", "content": _JSON},
                    "404": _err("Unknown experiment"),
                    "422": _err("metric or granularity is not one of the listed values"),
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
                        "schema": ID,
                    },
                ],
                "responses": {
                    "200": {"description": "{url, slot_urls, config_version}", "content": _JSON},
                    "404": _err("Unknown experiment or variant"),
                    "422": _err("variant is missing or not a variant id"),
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
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": preview_exchange_schema()}},
                },
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
                    "200": {
                        "description": "{current, versions, targets (the version each edge holds)}",
                        "content": _JSON,
                    },
                    **_AUTH,
                },
            }
        },
        "/v1/edge-config/versions/{version}": {
            "get": {
                "summary": "One published version as the edge received it",
                "security": _SECURITY,
                "parameters": [_VERSION],
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
                "parameters": [_VERSION],
                "responses": {
                    "201": {"description": "The new version", "content": _JSON},
                    "404": _err("Never published"),
                    "422": _err("version is not a version number"),
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
