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
- ``GET /v1/segment-rules/history`` (viewer): who made which version current, when, how.
- ``GET /v1/context/{visitor}/explain`` (viewer): every current rule evaluated for the visitor,
  condition by condition, the decision and the stored one.
- ``POST /v1/audiences`` (ingest token, a CDP's destination): audience membership messages
  (`origin.context.audiences`: track ``Audience Entered``/``Audience Exited``, identify with
  boolean traits; one, or ``{"batch": [...]}``); 400 naming ``batch[i].field``; each visitor's
  segment is decided again at once.
- ``DELETE /v1/context/{visitor}`` (editor): erasure of everything keyed by the visitor
  (profile, decision, audiences).
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
from fragments.ids import ID_PATTERN, anchored
from fragments.segment_cookie import LIFETIME_S, sign_segment
from fragments.wire_events import VISITOR
from origin.context.audiences import parse_body
from origin.context.rules import parse_rules
from origin.context.store import ContextStore, VisitorExplanation
from origin.errors import AudienceInvalid, RulesInvalid, StoreUnavailable
from origin.web import problems
from origin.web.auth import require, require_ingest
from origin.web.experiments.edge_config_api import edge_may_read
from origin.web.state import OriginState

MAX_RULES_BODY = 256 * 1024
MAX_AUDIENCE_BODY = 1024 * 1024
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
    version = await _store(request).put_rules(rules, by=principal.name)
    return JSONResponse({"version": version, **json.loads(rules.to_json())})


async def rollback_rules(request: Request) -> Response:
    principal = require(request, "editor")
    if isinstance(principal, Response):
        return principal
    raw = request.path_params["version"]
    if not raw.isdigit():
        return problems.unprocessable({"version": "a positive integer"})
    try:
        await _store(request).rollback_rules(int(raw), by=principal.name)
    except KeyError:
        return problems.not_found("segment rules version", raw)
    return await get_rules(request)


async def rules_history(request: Request) -> Response:
    principal = require(request, "viewer")
    if isinstance(principal, Response):
        return principal
    store = _store(request)
    version, _ = await store.current_rules()
    return JSONResponse(
        {
            "current": version,
            "versions": await store.rules_version_count(),
            "history": [
                {"version": c.version, "action": c.action, "by": c.by, "at": c.at,
                 "previous": c.previous}
                for c in await store.rules_history()
            ],
        }
    )  # fmt: skip


def explanation_doc(found: VisitorExplanation) -> dict[str, Any]:
    """The explain tool's answer as JSON (the API; the admin page renders the same value)."""
    decision = found.evaluation.decision
    stored = found.stored
    return {
        "visitor": found.visitor,
        "rules_version": found.rules_version,
        "has_profile": found.profile is not None,
        "audiences": sorted(found.audiences),
        "segment": decision.segment,
        "rule": decision.rule,
        "explanation": decision.explanation,
        "stored": None
        if stored is None
        else {
            "segment": stored.segment,
            "rule": stored.rule,
            "explanation": stored.explanation,
            "rules_version": stored.rules_version,
            "decided_at": stored.decided_at,
        },
        "rules": [
            {
                "rule": t.number,
                "name": t.rule.name,
                "segment": t.rule.segment,
                "matched": t.matched,
                "conditions": [
                    {"text": c.text, "holds": c.holds, "actual": c.actual} for c in t.conditions
                ],
            }
            for t in found.evaluation.traces
        ],
    }


async def explain_visitor(request: Request) -> Response:
    principal = require(request, "viewer")
    if isinstance(principal, Response):
        return principal
    visitor = _visitor(request)
    if isinstance(visitor, Response):
        return visitor
    found = await _store(request).explain(visitor)
    return JSONResponse(explanation_doc(found), headers={"Cache-Control": "private, no-store"})


async def post_audiences(request: Request) -> Response:
    who = require_ingest(request)
    if isinstance(who, Response):
        return who
    body = await request.body()
    if len(body) > MAX_AUDIENCE_BODY:
        return problems.problem(413, "Payload too large", f"at most {MAX_AUDIENCE_BODY} bytes")
    try:
        doc: Any = strict_json.loads(body)
    except JsonRejected as exc:
        return problems.problem(400, "Bad request", f"body is not JSON: {exc}")
    try:
        changes = parse_body(doc, time.time())
    except AudienceInvalid as exc:
        return problems.problem(400, "Bad request", str(exc), invalid={exc.where: exc.reason})
    applied = await _store(request).apply_membership_batch(changes)
    return JSONResponse({"memberships": len(changes), "visitors": applied})


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
        Route("/v1/segment-rules/history", _handled(rules_history), methods=["GET"]),
        Route("/v1/segment-rules/{version}/rollback", _handled(rollback_rules), methods=["POST"]),
        Route("/v1/audiences", _handled(post_audiences), methods=["POST"]),
        Route("/v1/context/{visitor}/segment", _handled(get_segment), methods=["GET"]),
        Route("/v1/context/{visitor}/explain", _handled(explain_visitor), methods=["GET"]),
        Route("/v1/context/{visitor}", _handled(erase_visitor), methods=["DELETE"]),
    ]


def _audience_schema() -> dict[str, Any]:
    """The JSON Schema of ``POST /v1/audiences`` bodies (`origin.context.audiences`)."""
    visitor = {"type": ["string", "null"], "pattern": anchored(VISITOR.pattern)}
    someone = {
        "anyOf": [
            {"required": ["userId"], "properties": {"userId": {"type": "string"}}},
            {"required": ["anonymousId"], "properties": {"anonymousId": {"type": "string"}}},
        ]
    }
    stamp = {"type": "string", "format": "date-time"}
    track = {
        "type": "object",
        "required": ["type", "event", "properties"],
        **someone,
        "properties": {
            "type": {"const": "track"},
            "event": {"enum": ["Audience Entered", "Audience Exited"]},
            "userId": visitor,
            "anonymousId": visitor,
            "timestamp": stamp,
            "properties": {
                "type": "object",
                "required": ["audience_key"],
                "properties": {"audience_key": {"type": "string", "pattern": anchored(ID_PATTERN)}},
            },
        },
    }
    identify = {
        "type": "object",
        "required": ["type", "traits"],
        **someone,
        "properties": {
            "type": {"const": "identify"},
            "userId": visitor,
            "anonymousId": visitor,
            "timestamp": stamp,
            "traits": {"type": "object", "description": "boolean traits are audiences"},
        },
    }
    message = {"oneOf": [track, identify]}
    batch = {
        "type": "object",
        "required": ["batch"],
        "properties": {"batch": {"type": "array", "minItems": 1, "maxItems": 1000,
                                 "items": message}},
    }  # fmt: skip
    return {"oneOf": [track, identify, batch]}


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
        "/v1/segment-rules/history": {
            "get": {
                "summary": "Who made which rules version current, when, by a put or rollback",
                **auth,
                "responses": {"200": {"description": "History, newest first"}, **denied},
            }
        },
        "/v1/audiences": {
            "post": {
                "summary": "CDP audience memberships: track Audience Entered/Exited or identify "
                "with boolean traits, one or a batch (ingest token)",
                **auth,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _audience_schema()}},
                },
                "responses": {
                    "200": {"description": "Applied; segments decided again"},
                    "400": {"description": "Invalid: names batch[i].field", "content": _PROBLEM},
                    "413": {"description": "The body is too large", "content": _PROBLEM},
                    **denied,
                },
            }
        },
        "/v1/context/{visitor}/explain": {
            "get": {
                "summary": "Every current rule evaluated for a visitor, and the decision (viewer)",
                **auth,
                "parameters": visitor,
                "responses": {"200": {"description": "Explanation"}, **bad_visitor, **denied},
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
                "summary": "Erase the visitor's profile, decision and audiences (editor)",
                **auth,
                "parameters": visitor,
                "responses": {"200": {"description": "Keys deleted"}, **bad_visitor, **denied},
            }
        },
    }
