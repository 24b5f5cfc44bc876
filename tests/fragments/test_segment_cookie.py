"""The signed segment cookie: sign/verify, and every bad value verifies to None (never raises)."""

from __future__ import annotations

import pytest

from fragments.errors import InvalidIdentifier
from fragments.segment_cookie import MAX_COOKIE_LENGTH, sign_segment, verify_segment

SECRET = "test-secret-0123456789"
VISITOR = "0123456789abcdef0123456789abcdef"
NOW = 1_700_000_000
EXPIRES = NOW + 3600


def test_a_signed_value_verifies_until_it_expires() -> None:
    value = sign_segment("tech-enthusiasts", EXPIRES, SECRET, VISITOR)

    assert value.startswith(f"v2.0.tech-enthusiasts.{EXPIRES}.")
    assert len(value.rsplit(".", 1)[1]) == 32
    assert verify_segment(value, NOW, SECRET, VISITOR) == "tech-enthusiasts"
    assert verify_segment(value, EXPIRES, SECRET, VISITOR) == "tech-enthusiasts"
    assert verify_segment(value, EXPIRES + 0.5, SECRET, VISITOR) is None
    assert verify_segment(value, EXPIRES + 1, SECRET, VISITOR) is None


def test_a_cookie_is_bound_to_its_visitor() -> None:
    value = sign_segment("tech-enthusiasts", EXPIRES, SECRET, VISITOR)

    assert verify_segment(value, NOW, SECRET, "f" * 32) is None
    assert verify_segment(value, NOW, SECRET, "") is None


def test_keys_rotate_by_key_id() -> None:
    old = "k2025=old-secret-0123456789"
    both = f"{old},k2026=new-secret-0123456789"
    issued_before = sign_segment("everyone", EXPIRES, old, VISITOR)
    issued_after = sign_segment("everyone", EXPIRES, both, VISITOR)

    assert issued_before.split(".")[1] == "k2025"
    assert issued_after.split(".")[1] == "k2026"
    assert verify_segment(issued_before, NOW, both, VISITOR) == "everyone"
    assert verify_segment(issued_after, NOW, both, VISITOR) == "everyone"
    assert verify_segment(issued_after, NOW, old, VISITOR) is None  # unknown key id


def test_version_1_cookies_are_refused() -> None:
    v1 = f"tech-enthusiasts.{EXPIRES}.{'0' * 32}"
    assert verify_segment(v1, NOW, SECRET, VISITOR) is None


def test_signing_is_deterministic() -> None:
    assert sign_segment("everyone", EXPIRES, SECRET, VISITOR) == sign_segment(
        "everyone", EXPIRES, SECRET, VISITOR
    )


def test_sign_rejects_an_invalid_segment() -> None:
    with pytest.raises(InvalidIdentifier):
        sign_segment("Not Valid", EXPIRES, SECRET, VISITOR)


def _valid() -> str:
    return sign_segment("tech-enthusiasts", EXPIRES, SECRET, VISITOR)


def _tamper_signature(value: str) -> str:
    last = value[-1]
    return value[:-1] + ("0" if last != "0" else "1")


BAD = [
    pytest.param(None, id="absent"),
    pytest.param("", id="empty"),
    pytest.param(_tamper_signature(_valid()), id="tampered-signature"),
    pytest.param(_valid().replace("tech-enthusiasts", "bargain-hunters"), id="swapped-segment"),
    pytest.param(_valid().replace(str(EXPIRES), str(EXPIRES + 10**6)), id="extended-expiry"),
    pytest.param(
        sign_segment("tech-enthusiasts", EXPIRES, "another-secret-value", VISITOR), id="other-key"
    ),
    pytest.param(sign_segment("tech-enthusiasts", NOW - 1, SECRET, VISITOR), id="expired"),
    pytest.param("tech-enthusiasts", id="no-dots"),
    pytest.param("tech-enthusiasts.123", id="one-dot"),
    pytest.param(f"v2.0.tech-enthusiasts..{'0' * 32}", id="no-expiry"),
    pytest.param(f"v2.0.tech-enthusiasts.-5.{'0' * 32}", id="negative-expiry"),
    pytest.param(f"v2.0.tech-enthusiasts.12x.{'0' * 32}", id="non-numeric-expiry"),
    pytest.param(f"v2.0.tech-enthusiasts.\u00b2\u00b2.{'0' * 32}", id="superscript-digits"),
    pytest.param(f"v2.0..{EXPIRES}.{'0' * 32}", id="empty-segment"),
    pytest.param(f"v2.0.Tech Enthusiasts.{EXPIRES}.{'0' * 32}", id="invalid-segment"),
    pytest.param(f"v2.bad kid.everyone.{EXPIRES}.{'0' * 32}", id="invalid-kid"),
    pytest.param(_valid()[:-1], id="short-signature"),
    pytest.param(_valid() + "0", id="long-signature"),
    pytest.param(_valid().upper(), id="upper-case"),
    pytest.param(_valid()[:-1] + "\u00e9", id="non-ascii-signature"),
    pytest.param(_valid()[:-2] + "\U0001f600", id="emoji-signature"),
    pytest.param(_valid() + "." + "0" * 32, id="extra-part"),
    pytest.param("x" * (MAX_COOKIE_LENGTH + 1), id="oversized"),
    pytest.param(_valid() + " " * (MAX_COOKIE_LENGTH - len(_valid()) + 1), id="oversized-pad"),
]


@pytest.mark.parametrize("value", BAD)
def test_bad_values_verify_to_none(value: str | None) -> None:
    assert verify_segment(value, NOW, SECRET, VISITOR) is None
