"""RFC 9457 problem details: every error response of the origin API.

A problem names what was wrong (`invalid` lists the offending parameters) so a client can fix its
request without reading logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from starlette.responses import Response

PROBLEM_TYPE_BASE = "https://shelfedge.dev/problems/"
log = logging.getLogger("shelfedge.origin")


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    invalid: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, object] | None = None,
) -> Response:
    """An ``application/problem+json`` response (`extensions`: extra members, RFC 9457 3.2)."""
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if invalid:
        body["invalid_params"] = [{"name": k, "reason": v} for k, v in invalid.items()]
    body.update(extensions or {})
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def not_found(kind: str, value: str) -> Response:
    return problem(404, "Not found", f"unknown {kind} {value!r}", invalid={kind: "does not exist"})


def unprocessable(invalid: Mapping[str, str]) -> Response:
    names = ", ".join(invalid)
    return problem(422, "Invalid parameters", f"invalid: {names}", invalid=invalid)


def unavailable(detail: str, retry_after: int = 1) -> Response:
    return problem(503, "Service unavailable", detail, headers={"Retry-After": str(retry_after)})


def store_unavailable(exc: BaseException, retry_after: int = 1) -> Response:
    """503 for a Redis failure. The body says only that the store is unavailable: the
    exception (with the internal host and port) goes to the operator's log, never to an
    anonymous client."""
    log.warning("store unavailable: %s", exc)
    return unavailable("the data store (redis) is unavailable; retry shortly", retry_after)
