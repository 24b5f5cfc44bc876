"""Scoped preview tokens: a token forces only its experiment (and variant), only until it
expires, only under the secret it was signed with; every bad value verifies to None."""

from __future__ import annotations

import pytest

from fragments.preview_tokens import PreviewGrant, sign_preview, verify_preview

KEY = "a" * 64
NOW = 1_700_000_000
GRANT = PreviewGrant("hero", "compact", NOW + 600)


def test_a_token_carries_its_scope_until_it_expires() -> None:
    token = sign_preview(KEY, GRANT)

    assert verify_preview(token, KEY, NOW) == GRANT
    assert verify_preview(token, KEY, NOW + 600) == GRANT
    assert verify_preview(token, KEY, NOW + 601) is None
    assert GRANT.allows("hero", "compact")
    assert not GRANT.allows("hero", "control")
    assert not GRANT.allows("other", "compact")
    assert PreviewGrant("hero", None, NOW).allows("hero", "control")


def _tamper(token: str, old: str, new: str) -> str:
    return token.replace(old, new, 1)


TOKEN = sign_preview(KEY, GRANT)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        _tamper(TOKEN, "compact", "control"),
        _tamper(TOKEN, ".hero.", ".other."),
        _tamper(TOKEN, str(NOW + 600), str(NOW + 10**6)),
        _tamper(TOKEN, "p1.", "p2."),
        TOKEN[:-1] + ("0" if not TOKEN.endswith("0") else "1"),
        TOKEN + ".x",
        TOKEN[:-2] + "\u00e9\u00e9",
        "x" * 500,
        sign_preview("b" * 64, GRANT),
    ],
    ids=["none", "empty", "variant", "experiment", "expiry", "version", "mac", "extra", "non-ascii",
         "long", "other-secret"],
)  # fmt: skip
def test_bad_tokens_verify_to_none(token: str | None) -> None:
    assert verify_preview(token, KEY, NOW) is None


def test_no_published_secret_means_no_previews() -> None:
    assert verify_preview(TOKEN, "", NOW) is None
    with pytest.raises(ValueError, match="preview secret"):
        sign_preview("", GRANT)
