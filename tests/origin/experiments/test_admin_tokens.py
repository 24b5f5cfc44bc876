"""Admin tokens: parsing SHELFEDGE_ADMIN_TOKENS (names, roles, errors that hide the token), the
authority's lookups, and the dev stack's generated editor token."""

from __future__ import annotations

import pytest

from origin.errors import SettingsError
from origin.settings import Settings, token_fingerprint
from origin.web.auth import TokenAuthority
from shelfedge.devstack import _child_env, _dev_admin_token

ALICE = "a" * 24
PLAIN = "b" * 20 + "=="


def test_named_and_unnamed_tokens() -> None:
    s = Settings.from_env({"SHELFEDGE_ADMIN_TOKENS": f"alice={ALICE}:editor, {PLAIN}:viewer"})
    assert s.admin_tokens == {ALICE: "editor", PLAIN: "viewer"}
    assert s.admin_token_names == {ALICE: "alice", PLAIN: token_fingerprint(PLAIN)}
    assert PLAIN not in token_fingerprint(PLAIN)


@pytest.mark.parametrize(
    "raw", ["short:editor", f"{ALICE}:admin", f"{ALICE}", f"bad name={ALICE}x:editor:x"]
)
def test_bad_tokens_fail_without_echoing_them(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SHELFEDGE_ADMIN_TOKENS": raw})
    assert "SHELFEDGE_ADMIN_TOKENS" in str(caught.value)
    assert ALICE not in str(caught.value)
    assert "short" not in str(caught.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {ALICE}", ("alice", "editor")),
        (f"bearer   {ALICE}  ", ("alice", "editor")),
        (f"Bearer {PLAIN}", ("viewer-one", "viewer")),
        ("Bearer nope-nope-nope-nope", None),
        (f"Basic {ALICE}", None),
        ("Bearer", None),
        (None, None),
        ("Bearer " + "x" * 600, None),
    ],
)
def test_authority(header: str | None, expected: tuple[str, str] | None) -> None:
    authority = TokenAuthority(
        {ALICE: "editor", PLAIN: "viewer"}, {ALICE: "alice", PLAIN: "viewer-one"}
    )
    principal = authority.authenticate(header)
    assert (None if principal is None else (principal.name, principal.role)) == expected


def test_dev_stack_makes_an_editor_token_only_when_none_is_configured() -> None:
    token = _dev_admin_token(Settings())
    assert token is not None
    assert len(token) >= 16
    env = _child_env(Settings(), 8601, token)
    child = Settings.from_env(env)
    assert child.admin_tokens == {token: "editor"}
    assert child.admin_token_names == {token: "dev"}
    assert _dev_admin_token(Settings(admin_tokens={ALICE: "editor"})) is None
