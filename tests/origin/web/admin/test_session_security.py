"""Admin sessions against a hostile client: logout revokes a copied cookie everywhere, login
attempts are throttled per address, and non-ASCII cookies or CSRF fields are refused cleanly
(never a 500)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from origin.web.admin.session import COOKIE_NAME
from tests.origin.web.admin.conftest import BASE, AdminClient


async def test_logout_revokes_a_copied_session_cookie(
    editor: AdminClient, admin_app: Starlette
) -> None:
    stolen = editor.http.cookies.get(COOKIE_NAME, path="/admin")
    assert stolen
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=admin_app), base_url=BASE
    ) as thief:
        before = await thief.get("/admin", headers={"cookie": f"{COOKIE_NAME}={stolen}"})
        await editor.post("/admin/logout", {})
        after = await thief.get("/admin", headers={"cookie": f"{COOKIE_NAME}={stolen}"})

    assert before.status_code == 200
    assert after.status_code == 303
    assert after.headers["location"].startswith("/admin/login")


async def test_login_attempts_are_throttled(anonymous: AdminClient) -> None:
    answers = [
        await anonymous.post("/admin/login", {"token": f"guess-{i:02d}-0123456789abcdef"})
        for i in range(11)
    ]

    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert answers[10].status_code == 429
    assert int(answers[10].headers["retry-after"]) >= 1


async def test_non_ascii_cookies_and_csrf_fields_are_refused_not_errors(
    editor: AdminClient, anonymous: AdminClient
) -> None:
    odd_cookie = await anonymous.http.get(
        "/admin", headers={b"cookie": f"{COOKIE_NAME}=v1.\xe9\xe9.\xe9".encode("latin-1")}
    )
    odd_csrf = await editor.post("/admin/logout", {"csrf": "\u00e9t\u00e9"})

    assert odd_cookie.status_code == 303  # no session: the login page
    assert odd_csrf.status_code == 400
