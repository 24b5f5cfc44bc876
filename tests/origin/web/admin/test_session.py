"""Admin sessions: the cookie carries no token, cannot be forged, raised or reused after expiry
or a token change; the CSRF nonce and the origin check."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from starlette.requests import Request

from origin.web.admin.session import AdminSessions, csrf_valid, same_origin
from origin.web.auth import TokenAuthority

EDITOR = "editor-token-0123456789abcdef"
VIEWER = "viewer-token-0123456789abcdef"
TOKENS = {EDITOR: "editor", VIEWER: "viewer"}
NAMES = {EDITOR: "alice", VIEWER: "victor"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def sessions(tokens: dict[str, str] = TOKENS, clock: Clock | None = None) -> AdminSessions:
    return AdminSessions(
        tokens, TokenAuthority(tokens, NAMES), lifetime_s=3600, clock=clock or Clock()
    )


def cookie_for(keeper: AdminSessions, token: str) -> str:
    issued = keeper.login(token)
    assert issued is not None
    return issued[1]


def test_a_valid_token_logs_in_and_the_cookie_names_the_principal() -> None:
    keeper = sessions()

    session = keeper.read(cookie_for(keeper, f"  {VIEWER}\n"))

    assert session is not None
    assert (session.principal.name, session.principal.role) == ("victor", "viewer")
    assert not session.can_edit


@pytest.mark.parametrize("token", ["", "   ", "not-a-token-0123456789", EDITOR + "x"])
def test_unknown_tokens_do_not_log_in(token: str) -> None:
    assert sessions().login(token) is None


def test_the_cookie_holds_neither_the_token_nor_its_plain_digest() -> None:
    cookie = cookie_for(sessions(), EDITOR)
    _, body, _ = cookie.split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()

    assert EDITOR not in cookie
    assert EDITOR not in payload
    assert hashlib.sha256(EDITOR.encode()).hexdigest() not in payload
    assert set(json.loads(payload)) == {"t", "c", "e", "s"}


def test_a_tampered_cookie_is_refused() -> None:
    keeper = sessions()
    viewer_cookie = cookie_for(keeper, VIEWER)
    editor_cookie = cookie_for(keeper, EDITOR)
    version, body, signature = viewer_cookie.split(".")
    _, editor_body, _ = editor_cookie.split(".")

    assert keeper.read(f"{version}.{editor_body}.{signature}") is None  # body swapped
    assert keeper.read(f"{version}.{body}.{signature[:-2]}AA") is None
    assert keeper.read(f"v2.{body}.{signature}") is None
    assert keeper.read("garbage") is None
    assert keeper.read("v1." + "A" * 2000) is None
    assert keeper.read(None) is None


def test_a_cookie_expires() -> None:
    clock = Clock()
    keeper = sessions(clock=clock)
    cookie = cookie_for(keeper, EDITOR)

    clock.now += 3599
    assert keeper.read(cookie) is not None
    clock.now += 2
    assert keeper.read(cookie) is None


def test_changing_the_tokens_ends_every_session() -> None:
    cookie = cookie_for(sessions(), EDITOR)

    assert sessions().read(cookie) is not None  # another process, same tokens
    assert sessions({EDITOR: "editor"}).read(cookie) is None  # the viewer token was removed


def test_the_role_comes_from_the_configuration_not_the_cookie() -> None:
    cookie = cookie_for(sessions(), EDITOR)

    demoted = sessions({EDITOR: "viewer", VIEWER: "viewer"}).read(cookie)

    assert demoted is not None
    assert demoted.principal.role == "viewer"
    assert not demoted.can_edit


def test_no_tokens_means_nobody_can_log_in() -> None:
    keeper = sessions({})

    assert not keeper.configured
    assert keeper.login(EDITOR) is None


def test_the_csrf_nonce_must_match() -> None:
    keeper = sessions()
    session = keeper.read(cookie_for(keeper, EDITOR))
    other = keeper.read(cookie_for(keeper, EDITOR))
    assert session is not None
    assert other is not None

    assert csrf_valid(session, session.csrf)
    assert not csrf_valid(session, other.csrf)
    assert not csrf_valid(session, "")
    assert not csrf_valid(session, None)


def request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/admin/new", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({"host": "admin.example:8600"}, True),
        ({"host": "admin.example:8600", "origin": "http://admin.example:8600"}, True),
        ({"host": "admin.example:8600", "origin": "http://admin.example:8700"}, False),
        ({"host": "admin.example:8600", "origin": "https://evil.example"}, False),
        ({"host": "admin.example:8600", "origin": "null"}, False),
        ({"host": "admin.example:8600", "referer": "http://admin.example:8600/admin"}, True),
        ({"host": "admin.example:8600", "referer": "http://shop.example/admin"}, False),
    ],
)
def test_posts_from_other_origins_are_recognised(headers: dict[str, str], same: bool) -> None:
    assert same_origin(request(headers)) is same
