"""Login and logout of the admin UI.

``GET /admin/login`` shows the token form; ``POST /admin/login`` checks the pasted bearer token
and sets the session cookie (`origin.web.admin.session`), then redirects to ``next`` (only paths
under ``/admin``); ``POST /admin/logout`` (with the CSRF nonce) deletes it. A wrong token
re-renders the form with a 401 and never echoes what was typed. The login post has no session
yet, so its CSRF defence is the origin check plus SameSite=Strict on the cookie it sets.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from origin.core.token_bucket import RedisTokenBucket
from origin.errors import StoreUnavailable
from origin.web.admin.session import csrf_valid, same_origin
from origin.web.admin.web import (
    CSRF_FIELD,
    AdminState,
    admin_state,
    error_page,
    read_form,
    redirect,
    render,
)
from origin.web.errors import FormRejected

_SAFE_NEXT = re.compile(r"/admin(/[A-Za-z0-9_./-]*)?")


def safe_next(raw: str | None) -> str:
    """Where to go after login: a plain path under /admin, else the experiment list."""
    return raw if raw and _SAFE_NEXT.fullmatch(raw) and "//" not in raw else "/admin"


async def login_form(request: Request) -> Response:
    """GET /admin/login"""
    sessions = admin_state(request).sessions
    target = safe_next(request.query_params.get("next"))
    if await sessions.of(request) is not None:
        return redirect(target)
    return render(
        request,
        "login.html.j2",
        None,
        next=target,
        failed=False,
        configured=sessions.configured,
        logged_out=request.query_params.get("done") == "logout",
    )


async def login(request: Request) -> Response:
    """POST /admin/login"""
    admin = admin_state(request)
    sessions = admin.sessions
    if not same_origin(request):
        return error_page(request, 403, "Form refused", "Log in from this admin's own page.")
    throttled = await _throttled(request, admin)
    if throttled is not None:
        return throttled
    try:
        form = await read_form(request)
    except FormRejected as exc:
        return exc.response
    target = safe_next(form.get("next"))
    issued = sessions.login(form.get("token", ""))
    if issued is None:
        return render(
            request,
            "login.html.j2",
            None,
            status=401,
            next=target,
            failed=True,
            configured=sessions.configured,
            logged_out=False,
        )
    response = redirect(target)
    sessions.set_cookie(response, request, issued[1])
    return response


async def logout(request: Request) -> Response:
    """POST /admin/logout"""
    sessions = admin_state(request).sessions
    session = await sessions.of(request)
    try:
        form = await read_form(request)
    except FormRejected as exc:
        return exc.response
    submitted = form.get(CSRF_FIELD)
    if submitted is not None and not submitted.isascii():
        return error_page(request, 400, "Bad request", "The form's CSRF field is malformed.")
    if session is not None and (not same_origin(request) or not csrf_valid(session, submitted)):
        return error_page(request, 403, "Form refused", "Log out from this admin's own page.")
    if session is not None:
        try:
            await sessions.revoke(session)
        except StoreUnavailable:
            return error_page(
                request, 503, "Try again", "Logging out needs the session store; retry shortly."
            )
    response = redirect("/admin/login?done=logout")
    sessions.clear_cookie(response, request)
    return response


async def _throttled(request: Request, admin: AdminState) -> Response | None:
    """A 429 page when this client address tries to log in too often (shared in Redis)."""
    if admin.login_limiter is None:
        return None
    client = request.client.host if request.client else "unknown"
    try:
        wait = await admin.login_limiter.take(client)
    except StoreUnavailable:
        return error_page(request, 503, "Try again", "Logging in needs the session store.")
    if wait <= 0:
        return None
    seconds = RedisTokenBucket.retry_after(wait)
    response = error_page(
        request, 429, "Too many attempts", f"Too many login attempts; retry in {seconds}s."
    )
    response.headers["Retry-After"] = str(seconds)
    return response
