"""The retailer-data routes: imported recommendation lists (ingest role) and segments (editors).

- ``PUT /v1/lists/{kind}/{target}/{name}`` (ingest token): replace one list whole; the body is
  ``{"items": [...], "scores": [...]?, "version": N?}`` (`origin.core.lists`). The answer is the
  import report: created / replaced / unchanged, SKUs the catalog does not hold, the bundles
  whose content changed (each purged). A version not above the stored one is 409.
- ``GET /v1/lists/{kind}/{target}/{name}`` (ingest or viewer token): the stored list.
- ``GET /v1/segments`` and ``GET /v1/segments/{id}`` (viewer); ``PUT`` and ``DELETE
  /v1/segments/{id}`` (editor): segments as configuration (`origin.core.segment_changes`).

Errors are RFC 9457 problems naming the field. Handlers only translate HTTP to the core.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from origin.core.builder import BundleBuilder
from origin.core.list_import import ListImportReport, apply_lists, segment_rejection
from origin.core.lists import (
    LIST_KINDS,
    MAX_LIST_ITEMS,
    MAX_VERSION,
    check_target,
    list_from_document,
    list_key_id,
)
from origin.core.purge_queue import PurgeRequest
from origin.core.recompute import Recomputer
from origin.core.segment_changes import SegmentEditor
from origin.core.segments_config import (
    MAX_AFFINITY,
    MAX_NAME,
    MAX_PRICE_CENTS,
    segment_fields,
    segment_from_fields,
)
from origin.errors import (
    ListInvalid,
    RecomputeConflict,
    SegmentInvalid,
    StoreUnavailable,
    UnknownEntity,
)
from origin.web import problems
from origin.web.auth import require, require_ingest
from origin.web.errors import BadRequest
from origin.web.experiments.http import json_response, read_json
from origin.web.schemas import ID, SKU
from origin.web.state import OriginState

MAX_LIST_BODY = 256 * 1024
_SCORE = {"type": "number", "minimum": 0}
_AFFINITY = {"type": "number", "minimum": 0, "maximum": MAX_AFFINITY}


def _state(request: Request) -> OriginState:
    state: OriginState = request.app.state.origin
    return state


def _builder(request: Request) -> BundleBuilder:
    """One bundle builder per app (its card cache outlives requests)."""
    builder: BundleBuilder | None = getattr(request.app.state, "ingest_builder", None)
    if builder is None:
        builder = BundleBuilder(_state(request).slots)
        request.app.state.ingest_builder = builder
    return builder


def _handled(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return exc.response
        except (StoreUnavailable, RecomputeConflict) as exc:
            return problems.unavailable(str(exc))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


async def put_list(request: Request) -> Response:
    """Replace one imported recommendation list."""
    who = require_ingest(request)
    if isinstance(who, Response):
        return who
    kind, target, name = (request.path_params[k] for k in ("kind", "target", "name"))
    body = await read_json(request, MAX_LIST_BODY)
    try:
        check_target(kind, target)
        if not isinstance(body, dict):
            raise ListInvalid("body", "must be a JSON object with 'items'")
        clash = sorted(set(body) & {"segment", "anchor", "name"})
        if clash:
            raise ListInvalid(clash[0], "is given by the URL, not the body")
        lst = list_from_document(
            {kind: target, "name": name, **body}, version=int(time.time() * 1000)
        )
    except ListInvalid as exc:
        return problems.unprocessable({exc.field: exc.reason})
    state = _state(request)
    recomputer = Recomputer(state.store, _builder(request), await state.store.segments())
    rejected = segment_rejection(lst, recomputer, 0)
    if rejected is not None:
        return problems.unprocessable({rejected.field: rejected.reason})
    report = ListImportReport(read=1)
    purge = PurgeRequest(state.settings.purgers, 1, int(time.time() * 1000))
    await apply_lists(recomputer, [lst], purge, report)
    if report.stale:
        stored = await recomputer.imported.get(lst.id)
        current = stored.version if stored else 0
        return problems.problem(
            409,
            "Conflict",
            f"list {lst.id} is at version {current}; send a higher version",
            invalid={"version": f"{lst.version} is not above the stored {current}"},
        )
    return json_response({"list": lst.id, "version": lst.version, **report.as_dict()})


async def get_list(request: Request) -> Response:
    """The stored imported list."""
    if isinstance(require_ingest(request), Response):
        principal = require(request, "viewer")
        if isinstance(principal, Response):
            return principal
    kind, target, name = (request.path_params[k] for k in ("kind", "target", "name"))
    try:
        check_target(kind, target)
    except ListInvalid as exc:
        return problems.unprocessable({exc.field: exc.reason})
    list_id = list_key_id(kind, target, name)
    recomputer = Recomputer(_state(request).store, _builder(request), [])
    stored = await recomputer.imported.get(list_id)
    if stored is None:
        return problems.not_found("list", list_id)
    items = [{"sku": i.sku, "score": i.score} for i in stored.items]
    return json_response({"list": list_id, "version": stored.version, "items": items})


async def list_segments(request: Request) -> Response:
    """Every segment."""
    principal = require(request, "viewer")
    if isinstance(principal, Response):
        return principal
    segments = await _state(request).store.segments()
    return json_response({"segments": [segment_fields(s) for s in segments]})


async def get_segment(request: Request) -> Response:
    """One segment."""
    principal = require(request, "viewer")
    if isinstance(principal, Response):
        return principal
    segment_id = request.path_params["segment"]
    for segment in await _state(request).store.segments():
        if segment.id == segment_id:
            return json_response(segment_fields(segment))
    return problems.not_found("segment", segment_id)


def _editor(request: Request) -> SegmentEditor:
    state = _state(request)
    return SegmentEditor(state.store, _builder(request), state.settings.purgers)


async def put_segment(request: Request) -> Response:
    """Add or replace a segment; its bundles are built (changed ones purged)."""
    principal = require(request, "editor")
    if isinstance(principal, Response):
        return principal
    segment_id = request.path_params["segment"]
    body: Any = await read_json(request)
    try:
        segment = segment_from_fields(segment_id, body, "body")
    except SegmentInvalid as exc:
        return problems.unprocessable({exc.field or "segment": exc.reason})
    report = await _editor(request).put(segment)
    _state(request).segment_ids = frozenset()
    status = 201 if report.added else 200
    return json_response({"segment": segment_fields(segment), **report.as_dict()}, status)


async def delete_segment(request: Request) -> Response:
    """Remove a segment; its bundles are retired and its cache tag purged."""
    principal = require(request, "editor")
    if isinstance(principal, Response):
        return principal
    segment_id = request.path_params["segment"]
    try:
        report = await _editor(request).delete(segment_id)
    except UnknownEntity:
        return problems.not_found("segment", segment_id)
    _state(request).segment_ids = frozenset()
    return json_response(report.as_dict())


def routes() -> list[Route]:
    return [
        Route("/v1/lists/{kind}/{target}/{name}", _handled(put_list), methods=["PUT"]),
        Route("/v1/lists/{kind}/{target}/{name}", _handled(get_list), methods=["GET"]),
        Route("/v1/segments", _handled(list_segments), methods=["GET"]),
        Route("/v1/segments/{segment}", _handled(get_segment), methods=["GET"]),
        Route("/v1/segments/{segment}", _handled(put_segment), methods=["PUT"]),
        Route("/v1/segments/{segment}", _handled(delete_segment), methods=["DELETE"]),
    ]


def _param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_AUTH = {
    "401": {"description": "Missing or unknown token", "content": _PROBLEM},
    "403": {"description": "The token's role may not do this", "content": _PROBLEM},
    "503": {"description": "Redis unavailable (Retry-After)", "content": _PROBLEM},
}
_LIST_PARAMS = [
    _param("kind", {"enum": list(LIST_KINDS)}),
    _param(
        "target",
        {
            **SKU,
            "description": "the list's owner: a segment id (1-64 of a-z, 0-9, '-', '_') for "
            "kind=segment, a SKU for kind=anchor; a segment id that is not one is 422",
        },
    ),
    _param("name", ID),
]
_SEGMENT_PARAM = [_param("segment", ID)]
_LIST_BODY = {
    "type": "object",
    "description": "Also checked, each answered with 422 naming the field: scores come "
    "either as a list (one per item) or per item (on all of them), best first (none above the "
    "one before); no SKU twice; a segment list's segment exists.",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {
            "type": "array",
            "maxItems": MAX_LIST_ITEMS,
            "uniqueItems": True,
            "items": {
                "oneOf": [
                    SKU,
                    {
                        "type": "object",
                        "required": ["sku"],
                        "additionalProperties": False,
                        "properties": {"sku": SKU, "score": _SCORE},
                    },
                ]
            },
        },
        "scores": {"type": "array", "items": _SCORE},
        "version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
    },
}
_SEGMENT_BODY = {
    "type": "object",
    "description": "Also checked (422 naming the field): price_band's low is at most its high.",
    "required": ["name", "price_band"],
    "additionalProperties": False,
    "properties": {
        "id": {**ID, "description": "if given, the segment id of the URL"},
        "name": {"type": "string", "pattern": r"\S", "maxLength": MAX_NAME},
        "category_affinity": {
            "type": "object",
            "propertyNames": ID,
            "additionalProperties": _AFFINITY,
        },
        "price_band": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": MAX_PRICE_CENTS},
            "minItems": 2,
            "maxItems": 2,
        },
        "default_affinity": _AFFINITY,
    },
}


def ingest_operations() -> dict[str, dict[str, dict[str, Any]]]:
    """The OpenAPI operations of these routes."""
    invalid = {"description": "Invalid (names the field)", "content": _PROBLEM}
    return {
        "/v1/lists/{kind}/{target}/{name}": {
            "put": {
                "summary": "Replace an imported recommendation list (ingest token)",
                "security": [{"bearer": []}],
                "parameters": _LIST_PARAMS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _LIST_BODY}},
                },
                "responses": {
                    "200": {"description": "Import report (unknown SKUs, bundles changed)"},
                    "400": {"description": "Body is not JSON", "content": _PROBLEM},
                    "409": {"description": "Version not above the stored one", "content": _PROBLEM},
                    "413": {"description": "Body too large", "content": _PROBLEM},
                    "422": invalid,
                    **_AUTH,
                },
            },
            "get": {
                "summary": "An imported recommendation list (ingest or viewer token)",
                "security": [{"bearer": []}],
                "parameters": _LIST_PARAMS,
                "responses": {
                    "200": {"description": "The list, best first"},
                    "404": {"description": "No such list", "content": _PROBLEM},
                    "422": invalid,
                    **_AUTH,
                },
            },
        },
        "/v1/segments": {
            "get": {
                "summary": "Every shopper segment (viewer token)",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "Segments"}, **_AUTH},
            }
        },
        "/v1/segments/{segment}": {
            "get": {
                "summary": "One shopper segment (viewer token)",
                "security": [{"bearer": []}],
                "parameters": _SEGMENT_PARAM,
                "responses": {
                    "200": {"description": "The segment"},
                    "404": {"description": "No such segment", "content": _PROBLEM},
                    **_AUTH,
                },
            },
            "put": {
                "summary": "Add or replace a segment and build its bundles (editor token)",
                "security": [{"bearer": []}],
                "parameters": _SEGMENT_PARAM,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _SEGMENT_BODY}},
                },
                "responses": {
                    "200": {"description": "Replaced; bundles rebuilt (changed ones purged)"},
                    "201": {"description": "Added; its bundles built"},
                    "400": {"description": "Body is not JSON", "content": _PROBLEM},
                    "413": {"description": "Body too large", "content": _PROBLEM},
                    "422": invalid,
                    **_AUTH,
                },
            },
            "delete": {
                "summary": "Remove a segment, retire its bundles, purge its tag (editor token)",
                "security": [{"bearer": []}],
                "parameters": _SEGMENT_PARAM,
                "responses": {
                    "200": {"description": "Removed; bundles retired"},
                    "404": {"description": "No such segment", "content": _PROBLEM},
                    **_AUTH,
                },
            },
        },
    }
