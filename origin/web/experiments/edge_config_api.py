"""The published edge configuration over HTTP: ``/v1/edge-config`` and its versions.

``GET /v1/edge-config`` is what every edge polls: the current version's JSON exactly as stored,
``ETag: "<version>"``, ``Cache-Control: public, max-age=5, stale-while-revalidate=30`` (a CDN or
the edge may serve it 5 s fresh and 30 s more while refreshing), 304 on a matching
If-None-Match. It holds targeting rules and hash seeds, so it needs a token: the edge's
``SHELFEDGE_EDGE_CONFIG_TOKEN`` or an admin viewer/editor token (only a dev origin with no
edge token configured serves it to anyone), and a shared cache keeps it ``private``.
Listing versions needs a viewer, rollback and preview-token rotation an editor. Handlers
never log.
"""

from __future__ import annotations

import hmac
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fragments import strict_json
from fragments.errors import JsonRejected
from fragments.experiment_codec import config_to_json
from fragments.experiments import EMPTY_CONFIG
from fragments.headers import etag_matches
from origin.errors import StoreUnavailable
from origin.experiments.principal import Principal
from origin.settings import Settings
from origin.web import problems
from origin.web.auth import TokenAuthority
from origin.web.experiments.api import guarded
from origin.web.experiments.http import etag, json_response
from origin.web.experiments.state import ExperimentsState
from origin.web.schemas import MAX_VERSION_DIGITS, PREVIEW_CODE_PATTERN

EDGE_CONFIG_CACHE_CONTROL = "private, max-age=5, stale-while-revalidate=30"
EDGE_CONFIG_MEDIA_TYPE = "application/vnd.shelfedge.edge-config+json"


async def get_edge_config(request: Request) -> Response:
    """GET /v1/edge-config"""
    state: ExperimentsState = request.app.state.experiments
    if not edge_may_read(request):
        return problems.problem(
            401,
            "Unauthorized",
            "send 'Authorization: Bearer <SHELFEDGE_EDGE_CONFIG_TOKEN>' (or an admin token)",
            invalid={"Authorization": "missing, malformed or unknown token"},
            headers={"WWW-Authenticate": 'Bearer realm="shelfedge-edge"'},
        )
    try:
        version = await state.configs.current_version()
        text = (
            config_to_json(EMPTY_CONFIG)
            if version == 0
            else await state.configs.version_json(version)
        )
    except StoreUnavailable as exc:
        return problems.store_unavailable(exc)
    if text is None:
        return problems.unavailable(f"edge config version {version} is current but missing")
    headers = {"ETag": etag(version), "Cache-Control": EDGE_CONFIG_CACHE_CONTROL}
    if etag_matches(request.headers.get("if-none-match"), str(version)):
        return Response(status_code=304, headers=headers)
    return Response(text, headers=headers, media_type=EDGE_CONFIG_MEDIA_TYPE)


def edge_may_read(request: Request) -> bool:
    """Whether the request carries the edge's token (or an admin token; anything on a dev
    origin without an edge token)."""
    settings: Settings = request.app.state.origin.settings
    authorization = request.headers.get("authorization")
    if settings.edge_config_token is None and settings.env == "dev":
        return True
    if settings.edge_config_token is not None and authorization is not None:
        sent = authorization.encode("latin-1")  # headers are latin-1 decoded: exact bytes
        wanted = f"Bearer {settings.edge_config_token}".encode()
        if hmac.compare_digest(sent, wanted):
            return True
    authority: TokenAuthority = request.app.state.token_authority
    return authority.authenticate(authorization) is not None


async def list_versions(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """GET /v1/edge-config/versions"""
    current = await s.configs.current_version()
    versions = [v.to_dict() for v in await s.configs.versions()]
    targets = [t.to_dict() for t in await s.targets.all()]
    return json_response({"current": current, "versions": versions, "targets": targets})


async def get_version(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """GET /v1/edge-config/versions/{version}"""
    raw = request.path_params["version"]
    text = await s.configs.version_json(int(raw)) if _is_version(raw) else None
    if text is None:
        return problems.not_found("version", raw)
    return Response(
        text, headers={"ETag": etag(int(raw)), "Cache-Control": "no-store"},
        media_type=EDGE_CONFIG_MEDIA_TYPE,
    )  # fmt: skip


async def rollback(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """POST /v1/edge-config/rollback/{version}"""
    raw = request.path_params["version"]
    if not _is_version(raw):
        return problems.unprocessable({"version": "a published version number (1 or more)"})
    published = await s.service.rollback(int(raw), who)
    return json_response(published.to_dict(), 201)


def _is_version(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) <= MAX_VERSION_DIGITS and int(raw) >= 1


async def rotate_preview_token(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """POST /v1/edge-config/preview-token"""
    published = await s.service.rotate_preview(who)
    return json_response(published.to_dict(), 201)


async def exchange_preview_code(request: Request) -> Response:
    """POST /v1/preview/exchange {"code": ...}: the edge trades a one-time preview link's
    code for its scoped token (then sets it as a cookie). Needs the edge's token; a code
    works once (404 afterwards, or when unknown or expired)."""
    if not edge_may_read(request):
        return problems.problem(
            401,
            "Unauthorized",
            "send 'Authorization: Bearer <SHELFEDGE_EDGE_CONFIG_TOKEN>'",
            invalid={"Authorization": "missing, malformed or unknown token"},
            headers={"WWW-Authenticate": 'Bearer realm="shelfedge-edge"'},
        )
    state: ExperimentsState = request.app.state.experiments
    try:
        doc = strict_json.loads(await request.body())
    except JsonRejected as exc:
        return problems.problem(400, "Bad request", str(exc), invalid={"body": str(exc)})
    code = doc.get("code") if isinstance(doc, dict) else None
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return problems.unprocessable({"code": "the code of a preview link"})
    try:
        token = await state.service.exchange_preview_code(code)
    except StoreUnavailable as exc:
        return problems.store_unavailable(exc)
    if token is None:
        return problems.not_found("code", "(one-time preview code)")
    return json_response({"token": token})


_CODE = re.compile(PREVIEW_CODE_PATTERN)


def routes() -> list[Route]:
    return [
        Route("/v1/preview/exchange", exchange_preview_code, methods=["POST"]),
        Route("/v1/edge-config", get_edge_config, methods=["GET"]),
        Route("/v1/edge-config/versions", guarded("viewer", list_versions), methods=["GET"]),
        Route(
            "/v1/edge-config/versions/{version}",
            guarded("viewer", get_version),
            methods=["GET"],
        ),
        Route("/v1/edge-config/rollback/{version}", guarded("editor", rollback), methods=["POST"]),
        Route(
            "/v1/edge-config/preview-token",
            guarded("editor", rotate_preview_token),
            methods=["POST"],
        ),
    ]
