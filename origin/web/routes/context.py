"""The context service's HTTP surface: segment rules, a visitor's segment, erasure.

- ``GET /v1/segment-rules`` (viewer) and ``PUT /v1/segment-rules`` (editor): the rule set in
  force and its version; a PUT validates (422 naming ``rules[i] (name).field``), stores a new
  version and makes it current. ``POST /v1/segment-rules/{version}/rollback`` (editor).
- ``GET /v1/context/{visitor}/segment`` (the edge's token, ``SHELFEDGE_EDGE_CONFIG_TOKEN``, or a
  viewer token: the edge's background refresh, `edge.segment_refresh`): the visitor's current
  segment, why (``matched rule 2 (big-cart)``), the rules version, when it was decided
  (``decided_at``), the time of the newest event it reflects (``as_of``: the edge's own event
  time, so the edge knows whether the behaviour it forwarded is in) and a signed segment cookie
  value (`fragments.segment_cookie`, valid `LIFETIME_S`) the edge sets on
  its next response. No profile: the default segment, ``decided_at`` null.
- ``DELETE /v1/context/{visitor}`` (editor): erasure of everything keyed by the visitor.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fragments import strict_json
from fragments.errors import JsonRejected
from fragments.ids import anchored
from fragments.segment_cookie import LIFETIME_S, sign_segment
from fragments.wire_events import VISITOR
from origin.context.rules import parse_rules
from origin.context.store import ContextStore
from origin.errors import RulesInvalid, StoreUnavailable
from origin.web import problems
from origin.web.auth import require
from origin.web.experiments.edge_config_api import edge_may_read
from origin.web.state import OriginState

MAX_RULES_BODY = 256 * 1024
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _store(request: Request) -> ContextStore:
    state: OriginState = request.app.state.origin
    return ContextStore(
        state.store.redis,
        ttl_seconds=state.settings.profile_ttl_seconds,
        timeout=max(state.store.timeout, 2.0),
    )


def _visitor(request: Request) -> str | Response:
    visitor: str = request.path_params["visitor"]
    if not VISITOR.fullmatch(visitor):
        return problems.unprocessable({"visitor": "1-64 chars of A-Z, a-z, 0-9, -, _"})
    return visitor


async def get_rules(request: Request) -> Response:
    principal = require(request, "viewer")
    if isinstance(principal, Response):
        return principal
    version, rules = await _store(request).current_rules()
    return JSONResponse({"version": version, **json.loads(rules.to_json())})


async def put_rules(request: Request) -> Response:
    principal = require(request, "editor")
    if isinstance(principal, Response):
        return principal
    body = await request.body()
    if len(body) > MAX_RULES_BODY:
        return problems.problem(413, "Payload too large", f"at most {MAX_RULES_BODY} bytes")
    try:
        doc: Any = strict_json.loads(body)  # no NaN/Infinity, bounded depth
    except JsonRejected as exc:
        return problems.problem(400, "Bad request", f"body is not JSON: {exc}")
    state: OriginState = request.app.state.origin
    known = frozenset(s.id for s in await state.store.segments())
    try:
        rules = parse_rules(doc, known or None)
    except RulesInvalid as exc:
        return problems.unprocessable({exc.where: exc.reason})
    version = await _store(request).put_rules(rules)
    return JSONResponse({"version": version, **json.loads(rules.to_json())})


async def rollback_rules(request: Request) -> Response:
    principal = require(request, "editor")
    if isinstance(principal, Response):
        return principal
    raw = request.path_params["version"]
    if not raw.isdigit():
        return problems.unprocessable({"version": "a positive integer"})
    try:
        await _store(request).rollback_rules(int(raw))
    except KeyError:
        return problems.not_found("segment rules version", raw)
    return await get_rules(request)


async def get_segment(request: Request) -> Response:
    if not edge_may_read(request):
        principal = require(request, "viewer")
        if isinstance(principal, Response):
            return principal
    visitor = _visitor(request)
    if isinstance(visitor, Response):
        return visitor
    store = _store(request)
    # the profile first: the assignment read after it is at least as new (one transaction
    # writes both), so as_of never claims behaviour the segment does not reflect
    profile = await store.profile(visitor)
    assignment = await store.assignment(visitor)
    state: OriginState = request.app.state.origin
    if assignment is None:
        version, rules = await store.current_rules()
        segment, rule, why = rules.default_segment, None, "no profile: the default segment"
        decided_at: float | None = None
    else:
        version, segment, rule = assignment.rules_version, assignment.segment, assignment.rule
        why = assignment.explanation
        decided_at = assignment.decided_at
    expires = int(time.time()) + LIFETIME_S
    return JSONResponse(
        {
            "visitor": visitor,
            "segment": segment,
            "rule": rule,
            "explanation": why,
            "rules_version": version,
            "decided_at": decided_at,
            "as_of": None if profile is None or assignment is None else profile.last_seen,
            "cookie": sign_segment(segment, expires, state.settings.segment_secret, visitor),
            "expires_at": expires,
        },
        headers={"Cache-Control": "private, no-store"},
    )


async def erase_visitor(request: Request) -> Response:
    principal = require(request, "editor")
    if isinstance(principal, Response):
        return principal
    visitor = _visitor(request)
    if isinstance(visitor, Response):
        return visitor
    deleted = await _store(request).erase(visitor)
    return JSONResponse({"visitor": visitor, "keys_deleted": deleted})


def _handled(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except StoreUnavailable as exc:
            return problems.unavailable(str(exc))

    endpoint.__name__ = handler.__name__
    return endpoint


def routes() -> list[Route]:
    return [
        Route("/v1/segment-rules", _handled(get_rules), methods=["GET"]),
        Route("/v1/segment-rules", _handled(put_rules), methods=["PUT"]),
        Route("/v1/segment-rules/{version}/rollback", _handled(rollback_rules), methods=["POST"]),
        Route("/v1/context/{visitor}/segment", _handled(get_segment), methods=["GET"]),
        Route("/v1/context/{visitor}", _handled(erase_visitor), methods=["DELETE"]),
    ]


def context_operations() -> dict[str, dict[str, dict[str, Any]]]:
    """The OpenAPI operations of these routes."""
    auth: dict[str, Any] = {"security": [{"bearer": []}]}
    denied = {
        "401": {"description": "No or unknown token", "content": _PROBLEM},
        "403": {"description": "Role too low", "content": _PROBLEM},
    }
    visitor = [
        {
            "name": "visitor",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": anchored(VISITOR.pattern)},
        }
    ]
    bad_visitor = {"422": {"description": "Not a visitor id", "content": _PROBLEM}}
    return {
        "/v1/segment-rules": {
            "get": {
                "summary": "The segment rules in force and their version (viewer)",
                **auth,
                "responses": {"200": {"description": "Rules"}, **denied},
            },
            "put": {
                "summary": "Replace the segment rules: a new version (editor)",
                **auth,
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": {
                    "200": {"description": "The stored version"},
                    "400": {"description": "The body is not JSON", "content": _PROBLEM},
                    "413": {"description": "The body is too large", "content": _PROBLEM},
                    "422": {"description": "Invalid: names rule and field", "content": _PROBLEM},
                    **denied,
                },
            },
        },
        "/v1/segment-rules/{version}/rollback": {
            "post": {
                "summary": "Make an earlier rules version current again (editor)",
                **auth,
                "parameters": [
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
                "responses": {
                    "200": {"description": "Rules"},
                    "404": {"description": "No such version"},
                    "422": {"description": "Not a version number", "content": _PROBLEM},
                    **denied,
                },
            }
        },
        "/v1/context/{visitor}/segment": {
            "get": {
                "summary": "A visitor's segment, why, when decided, and a signed cookie value "
                "(the edge's refresh: its edge token or a viewer token)",
                **auth,
                "parameters": visitor,
                "responses": {"200": {"description": "Segment"}, **bad_visitor, **denied},
            }
        },
        "/v1/context/{visitor}": {
            "delete": {
                "summary": "Erase everything keyed by the visitor (editor)",
                **auth,
                "parameters": visitor,
                "responses": {"200": {"description": "Keys deleted"}, **bad_visitor, **denied},
            }
        },
    }
