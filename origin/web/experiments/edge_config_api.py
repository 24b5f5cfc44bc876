"""The published edge configuration over HTTP: ``/v1/edge-config`` and its versions.

``GET /v1/edge-config`` is what every edge polls: the current version's JSON exactly as stored,
``ETag: "<version>"``, ``Cache-Control: public, max-age=5, stale-while-revalidate=30`` (a CDN or
the edge may serve it 5 s fresh and 30 s more while refreshing), 304 on a matching
If-None-Match. It needs no token (like bundles, it is served to edges), and it carries only the
preview token's hash. Listing versions needs a viewer, rollback and preview-token rotation an
editor. Handlers never log.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fragments.experiment_codec import config_to_json
from fragments.experiments import EMPTY_CONFIG
from fragments.headers import etag_matches
from origin.errors import StoreUnavailable
from origin.experiments.principal import Principal
from origin.web import problems
from origin.web.experiments.api import guarded
from origin.web.experiments.http import etag, json_response
from origin.web.experiments.state import ExperimentsState
from origin.web.schemas import MAX_VERSION_DIGITS

EDGE_CONFIG_CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30"
EDGE_CONFIG_MEDIA_TYPE = "application/vnd.shelfedge.edge-config+json"


async def get_edge_config(request: Request) -> Response:
    """GET /v1/edge-config"""
    state: ExperimentsState = request.app.state.experiments
    try:
        version = await state.configs.current_version()
        text = (
            config_to_json(EMPTY_CONFIG)
            if version == 0
            else await state.configs.version_json(version)
        )
    except StoreUnavailable as exc:
        return problems.unavailable(str(exc))
    if text is None:
        return problems.unavailable(f"edge config version {version} is current but missing")
    headers = {"ETag": etag(version), "Cache-Control": EDGE_CONFIG_CACHE_CONTROL}
    if etag_matches(request.headers.get("if-none-match"), str(version)):
        return Response(status_code=304, headers=headers)
    return Response(text, headers=headers, media_type=EDGE_CONFIG_MEDIA_TYPE)


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


def routes() -> list[Route]:
    return [
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
