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

from origin.web.admin.session import csrf_valid, same_origin
from origin.web.admin.web import (
    CSRF_FIELD,
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
    if sessions.of(request) is not None:
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
    sessions = admin_state(request).sessions
    if not same_origin(request):
        return error_page(request, 403, "Form refused", "Log in from this admin's own page.")
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
    session = sessions.of(request)
    try:
        form = await read_form(request)
    except FormRejected as exc:
        return exc.response
    if session is not None and (
        not same_origin(request) or not csrf_valid(session, form.get(CSRF_FIELD))
    ):
        return error_page(request, 403, "Form refused", "Log out from this admin's own page.")
    response = redirect("/admin/login?done=logout")
    sessions.clear_cookie(response, request)
    return response
