"""Plumbing of the admin pages: the session guard, CSRF checks, form bodies, HTML rendering.

`page(handler, role=..., write=...)` wraps a handler: no valid session -> the login page (or a
401 JSON for `api` endpoints); a viewer on an editor page -> 403; a write (POST) must pass the
origin check and carry the session's CSRF nonce (form field ``csrf`` or ``X-CSRF-Token``), and
its body is read once as ``application/x-www-form-urlencoded`` (bounded). Service errors a page
cannot handle itself become error pages (404, 409, 503). Every admin response is
``no-store`` and carries a strict Content-Security-Policy (scripts, styles and forms from this
origin only, no framing). Pages are Jinja2 templates under ``origin/web/templates/admin/``.
Nothing here logs a request, a form or a token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from fragments.experiments import ExperimentInvalid
from origin.core.token_bucket import RedisTokenBucket
from origin.errors import StoreUnavailable
from origin.experiments.errors import ConcurrentModification, ExperimentNotFound
from origin.web.admin.session import AdminSessions, Session, csrf_valid, same_origin
from origin.web.errors import FormRejected
from origin.web.experiments.state import ExperimentsState

MAX_FORM_BYTES = 64 * 1024
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
Role = Literal["viewer", "editor"]


@dataclass(slots=True)
class AdminState:
    """What the admin pages reach through ``app.state.admin`` (built by `create_app`; the
    Redis-backed parts are attached in the lifespan)."""

    sessions: AdminSessions
    login_limiter: RedisTokenBucket | None = None
    """Login attempts per client address (shared by every origin process)."""


@dataclass(frozen=True, slots=True)
class Ctx:
    """One admin request: its session, the experiment services and the posted form."""

    request: Request
    session: Session
    experiments: ExperimentsState
    form: ImmutableMultiDict[str, str]

    @property
    def key(self) -> str:
        return str(self.request.path_params["key"])


Handler = Callable[[Ctx], Awaitable[Response]]


def admin_state(request: Request) -> AdminState:
    state: AdminState = request.app.state.admin
    return state


async def read_form(request: Request) -> ImmutableMultiDict[str, str]:
    """The urlencoded body (413 over `MAX_FORM_BYTES`, 415 for other content types; an empty
    body is an empty form)."""
    if request.method != "POST":
        return ImmutableMultiDict()
    declared = request.headers.get("content-length", "")
    too_large = declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES
    body = b""
    if not too_large:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                too_large = True
                break
    if too_large:
        raise FormRejected(
            error_page(request, 413, "Form too large", f"Forms are limited to {MAX_FORM_BYTES} B.")
        )
    if not body:
        return ImmutableMultiDict()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FormRejected(
            error_page(request, 415, "Unsupported form", "Send the form as the page does.")
        )
    return ImmutableMultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def page(
    handler: Handler, *, role: Role = "viewer", write: bool = False, api: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Guard `handler` with a session of `role`; `write` adds the CSRF and origin checks."""

    async def endpoint(request: Request) -> Response:
        session = await admin_state(request).sessions.of(request)
        if session is None:
            if api:
                return JSONResponse({"error": "log in again"}, 401, headers=SECURITY_HEADERS)
            return login_redirect(request)
        if role == "editor" and not session.can_edit:
            return error_page(
                request,
                403,
                "Editors only",
                f"You are logged in as {session.principal.name} ({session.principal.role}); "
                "this needs an editor token.",
                session,
            )
        try:
            form = await read_form(request)
        except FormRejected as exc:
            return exc.response
        if write:
            submitted = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if submitted is not None and not submitted.isascii():
                return error_page(
                    request, 400, "Bad request", "The form's CSRF field is malformed.", session
                )
            if not same_origin(request) or not csrf_valid(session, submitted):
                return error_page(
                    request,
                    403,
                    "Form refused",
                    "The form did not come from this admin page (or it expired). "
                    "Reload the page and try again.",
                    session,
                )
        ctx = Ctx(request, session, request.app.state.experiments, form)
        try:
            return await handler(ctx)
        except ExperimentNotFound as exc:
            return error_page(request, 404, "No such experiment", f"{exc}.", session)
        except ExperimentInvalid as exc:  # e.g. starting it would clash with another one
            fixes = "; ".join(f"{name}: {reason}" for name, reason in exc.problems.items())
            return error_page(request, 422, "Not possible as it stands", fixes, session)
        except (StoreUnavailable, ConcurrentModification):
            return error_page(
                request,
                503,
                "Try again in a moment",
                "The store is busy or unreachable; retry shortly.",
                session,
            )

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def login_redirect(request: Request) -> Response:
    target = request.url.path if request.method == "GET" else "/admin"
    return RedirectResponse(
        f"/admin/login?next={quote(target, safe='/')}", 303, headers=SECURITY_HEADERS
    )


def redirect(url: str) -> Response:
    return RedirectResponse(url, 303, headers=SECURITY_HEADERS)


def render(
    request: Request,
    template: str,
    session: Session | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page of ``origin/web/templates/admin/``; `session` fills the header (user, logout)."""
    html = request.app.state.templates.get_template(f"admin/{template}").render(
        session=session,
        csrf=session.csrf if session is not None else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(
    request: Request, status: int, title: str, message: str, session: Session | None = None
) -> HTMLResponse:
    return render(request, "error.html.j2", session, status=status, title=title, message=message)


def json_reply(body: Mapping[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(dict(body), status, headers=SECURITY_HEADERS)
