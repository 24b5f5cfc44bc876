"""The experiment config API under ``/v1/experiments`` (Starlette routes).

Thin handlers: authenticate (viewer reads, editor writes), read the body or If-Match, call the
service, map errors to problems (`origin.web.experiments.http`). Representations are the JSON codec
of `fragments.experiments`; every single-experiment response carries ``ETag: "<version>"``.
`routes()` lists them for the app and the OpenAPI document. Handlers never log requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fragments.experiment_codec import experiment_from_dict, experiment_to_dict
from fragments.experiments import Experiment
from fragments.headers import etag_matches
from fragments.ids import is_id
from origin.experiments.principal import Principal, Role
from origin.experiments.service import ACTIONS, PREVIEW_TTL_S, Action, Outcome
from origin.web import problems
from origin.web.auth import require
from origin.web.errors import BadRequest
from origin.web.experiments.http import (
    error_response,
    etag,
    if_match,
    json_response,
    read_json,
)
from origin.web.experiments.state import ExperimentsState
from origin.web.schemas import AUDIT_LIMIT_MAX, RESULT_GRANULARITIES, RESULT_METRICS

Handler = Callable[[Request, Principal, ExperimentsState], Awaitable[Response]]


def guarded(role: Role, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate with `role`, then run `handler`, mapping service errors to problems."""

    async def endpoint(request: Request) -> Response:
        principal = require(request, role)
        if isinstance(principal, Response):
            return principal
        try:
            return await handler(request, principal, request.app.state.experiments)
        except BadRequest as exc:
            return exc.response
        except Exception as exc:  # every known error becomes a problem; others re-raise
            return error_response(exc)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def representation(e: Experiment) -> dict[str, Any]:
    return experiment_to_dict(e)


def _experiment(e: Experiment, status: int = 200, **extra: Any) -> Response:
    return json_response({**representation(e), **extra}, status, {"ETag": etag(e.version)})


def _outcome(o: Outcome, status: int = 200) -> Response:
    return _experiment(o.experiment, status, published_config_version=o.config_version)


async def list_experiments(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """GET /v1/experiments"""
    return json_response({"experiments": [representation(e) for e in await s.service.list_all()]})


async def create_experiment(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """POST /v1/experiments"""
    proposed = experiment_from_dict(await read_json(request))
    outcome = await s.service.create(proposed, who)
    response = _outcome(outcome, 201)
    response.headers["Location"] = f"/v1/experiments/{outcome.experiment.key}"
    return response


async def get_experiment(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """GET /v1/experiments/{key}"""
    experiment = await s.service.get(request.path_params["key"])
    tag = etag(experiment.version)
    if etag_matches(request.headers.get("if-none-match"), tag.strip('"')):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-store"})
    return _experiment(experiment)


async def update_experiment(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """PUT /v1/experiments/{key}"""
    expected = if_match(request)
    proposed = experiment_from_dict(await read_json(request))
    return _outcome(await s.service.update(request.path_params["key"], expected, proposed, who))


def _transition(action: Action) -> Handler:
    async def transition(request: Request, who: Principal, s: ExperimentsState) -> Response:
        expected = if_match(request)
        return _outcome(
            await s.service.transition(request.path_params["key"], expected, action, who)
        )

    transition.__name__ = f"{action}_experiment"
    transition.__doc__ = f"POST /v1/experiments/{{key}}/{action}"
    return transition


async def get_audit(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """GET /v1/experiments/{key}/audit"""
    raw = request.query_params.get("limit", "100")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= AUDIT_LIMIT_MAX):
        return problems.unprocessable({"limit": f"an integer in 1..{AUDIT_LIMIT_MAX}"})
    entries = await s.service.audit(request.path_params["key"], int(raw))
    return json_response({"entries": [e.to_dict() for e in entries]})


async def get_results(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """GET /v1/experiments/{key}/results"""
    q = request.query_params
    metric = q.get("metric", "purchase")
    granularity = q.get("granularity", "day")
    problems_found: dict[str, str] = {}
    if metric not in RESULT_METRICS:
        problems_found["metric"] = f"one of {', '.join(RESULT_METRICS)}"
    if granularity not in RESULT_GRANULARITIES:
        problems_found["granularity"] = f"one of {', '.join(RESULT_GRANULARITIES)}"
    if problems_found:
        return problems.unprocessable(problems_found)
    doc = await s.results.results(request.path_params["key"], metric, granularity == "day")
    return json_response(doc)


async def preview_link(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """POST /v1/experiments/{key}/preview-link?variant=<id>"""
    variant = request.query_params.get("variant")
    if not variant or not is_id(variant):
        return problems.unprocessable({"variant": "required: the id of the variant to force"})
    known = (await s.service.get(request.path_params["key"])).variant_ids()
    if variant not in known:  # a sub-resource that does not exist: 404, naming the choices
        return problems.problem(
            404,
            "Not found",
            f"unknown variant {variant!r}",
            invalid={"variant": f"choose from {', '.join(known)}"},
        )
    ttl = request.query_params.get("ttl", "")
    if ttl and not (ttl.isdigit() and len(ttl) < 8):
        return problems.unprocessable({"ttl": "seconds the link forces the variant (60..604800)"})
    link = await s.service.preview_link(
        request.path_params["key"], variant, who, s.public_edge_url, int(ttl or PREVIEW_TTL_S)
    )
    urls = dict(link.slot_urls)
    return json_response(
        {
            "exchange_url": link.exchange_url,
            "url": next(iter(urls.values())),
            "slot_urls": urls,
            "expires": link.expires,
            "config_version": link.config_version,
            "note": "open exchange_url once (it sets the preview cookie); the token forces only "
            "this experiment and variant until it expires. Edges honour it once they fetched "
            "this config version (about 5 s)",
        }
    )


async def publish(request: Request, who: Principal, s: ExperimentsState) -> Response:
    """POST /v1/experiments/publish"""
    published = await s.service.publish(who)
    return json_response(published.to_dict(), 201)


def routes() -> list[Route]:
    """The experiment API routes (the literal /publish before /{key})."""
    return [
        Route("/v1/experiments", guarded("viewer", list_experiments), methods=["GET"]),
        Route("/v1/experiments", guarded("editor", create_experiment), methods=["POST"]),
        Route("/v1/experiments/publish", guarded("editor", publish), methods=["POST"]),
        Route("/v1/experiments/{key}", guarded("viewer", get_experiment), methods=["GET"]),
        Route("/v1/experiments/{key}", guarded("editor", update_experiment), methods=["PUT"]),
        *(
            Route(
                f"/v1/experiments/{{key}}/{action}",
                guarded("editor", _transition(action)),
                methods=["POST"],
            )
            for action in ACTIONS
        ),
        Route("/v1/experiments/{key}/audit", guarded("viewer", get_audit), methods=["GET"]),
        Route("/v1/experiments/{key}/results", guarded("viewer", get_results), methods=["GET"]),
        Route(
            "/v1/experiments/{key}/preview-link",
            guarded("editor", preview_link),
            methods=["POST"],
        ),
    ]
