"""The signed sticky cookie: entries come back only for the visitor they were signed for,
under a known key; anything else reads as no sticky assignment."""

from __future__ import annotations

import pytest

from fragments.sticky_cookie import sign_sticky, verify_sticky

SECRET = "sticky-secret-0123456789"
VISITOR = "0123456789abcdef0123456789abcdef"
ENTRIES = "hero.1.0|upsell.0.2"


def test_signed_entries_verify_for_their_visitor_only() -> None:
    value = sign_sticky(ENTRIES, VISITOR, SECRET)

    assert verify_sticky(value, VISITOR, SECRET) == ENTRIES
    assert verify_sticky(value, "f" * 32, SECRET) is None


def test_rotation_keeps_older_cookies_valid() -> None:
    old = "k1=old-sticky-secret-0123"
    value = sign_sticky(ENTRIES, VISITOR, old)
    assert verify_sticky(value, VISITOR, f"{old},k2=new-sticky-secret-0123") == ENTRIES


VALUE = sign_sticky(ENTRIES, VISITOR, SECRET)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        ENTRIES,  # the unsigned format a visitor could write by hand
        VALUE.replace("hero.1", "hero.0"),
        VALUE[:-1] + ("0" if not VALUE.endswith("0") else "1"),
        VALUE.replace("~0~", "~k9~"),
        VALUE + "\u00e9",
        "x" * 2000,
        sign_sticky(ENTRIES, VISITOR, "another-secret-0123456789"),
    ],
)
def test_anything_else_reads_as_nothing(value: str | None) -> None:
    assert verify_sticky(value, VISITOR, SECRET) is None
