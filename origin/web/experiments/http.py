"""HTTP plumbing shared by the experiment routes: JSON bodies, ETags, errors as problems.

Every error of the experiment service maps to one RFC 9457 problem here (status, title, the
offending fields). Tokens never appear in any problem: the auth module only names principals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fragments import strict_json
from fragments.errors import JsonRejected
from fragments.experiments import ExperimentInvalid
from origin.errors import StoreUnavailable
from origin.experiments.errors import (
    ConcurrentModification,
    ConfigVersionNotFound,
    ExperimentExists,
    ExperimentNotFound,
    ExperimentsError,
    TransitionNotAllowed,
    VersionMismatch,
)
from origin.web import problems
from origin.web.errors import BadRequest
from origin.web.schemas import IF_MATCH

MAX_ADMIN_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}


def etag(version: int) -> str:
    return f'"{version}"'


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


async def read_json(request: Request, max_bytes: int = MAX_ADMIN_BODY) -> Any:
    """The request's JSON body; BadRequest 415 when declared as another media type, 413 when
    too large, 400 when not JSON."""
    media_type = request.headers.get("content-type", "application/json").partition(";")[0]
    if media_type.strip().lower() not in ("application/json", ""):
        raise BadRequest(
            problems.problem(
                415,
                "Unsupported media type",
                f"send the body as application/json, not {media_type[:60]!r}",
                invalid={"Content-Type": "application/json"},
            )
        )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise BadRequest(_too_large(max_bytes))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BadRequest(_too_large(max_bytes))
    try:
        return strict_json.loads(body)
    except JsonRejected as exc:
        raise BadRequest(
            problems.problem(400, "Bad request", f"the body: {exc}", invalid={"body": str(exc)})
        ) from exc


def _too_large(max_bytes: int) -> Response:
    return problems.problem(
        413,
        "Payload too large",
        f"the body is over {max_bytes} bytes",
        invalid={"body": f"send at most {max_bytes} bytes"},
    )


def if_match(request: Request) -> int:
    """The version named by If-Match; BadRequest 428 when absent, 400 when malformed."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        raise BadRequest(
            problems.problem(
                428,
                "Precondition required",
                'send If-Match: "<version>" with the version you edited (GET returns it as ETag)',
                invalid={"If-Match": "required: the experiment version you edited"},
            )
        )
    match = IF_MATCH.fullmatch(raw.strip())
    if match is None:
        raise BadRequest(
            problems.problem(
                400,
                "Bad request",
                f'If-Match must be a quoted version number such as "3", got {raw[:40]!r}',
                invalid={"If-Match": 'use the ETag from GET, e.g. "3"'},
            )
        )
    return int(match.group(1))


def error_response(exc: Exception) -> Response:
    """The problem for an experiment-service, validation or store error."""
    if isinstance(exc, ExperimentInvalid):
        return problems.unprocessable(exc.problems)
    if isinstance(exc, ExperimentNotFound):
        return problems.not_found("experiment", exc.key)
    if isinstance(exc, ConfigVersionNotFound):
        return problems.not_found("version", str(exc.version))
    if isinstance(exc, VersionMismatch):
        return _with_members(
            problems.problem(
                412,
                "Precondition failed",
                str(exc),
                invalid={"If-Match": f"stale: the current version is {exc.current}"},
                headers={"ETag": etag(exc.current)},
            ),
            current_version=exc.current,
        )
    if isinstance(exc, ExperimentExists | TransitionNotAllowed):
        return problems.problem(409, "Conflict", str(exc))
    if isinstance(exc, StoreUnavailable | ConcurrentModification):
        return problems.store_unavailable(exc)
    if isinstance(exc, ExperimentsError):
        return problems.problem(500, "Internal error", str(exc))
    raise exc


def _with_members(response: Response, **members: Any) -> Response:
    """Add RFC 9457 extension members to a problem response."""
    body = json.loads(bytes(response.body))
    body.update(members)
    return Response(
        json.dumps(body),
        status_code=response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() != "content-length"},
        media_type="application/problem+json",
    )
