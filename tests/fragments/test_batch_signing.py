"""Signed event batches: a signature holds only for its body, key, time and batch id; every
listed key verifies, the newest signs; secrets never show in reprs or errors."""

from __future__ import annotations

import pytest

from fragments.batch_signing import (
    SIGNATURE_HEADER,
    SigningKeys,
    sign_batch,
    verify_batch,
)
from fragments.errors import BatchSignatureInvalid

KEYS = SigningKeys.parse(
    "k1=first-secret-0123456789abcdef0123456789,k2=second-secret-0123456789abcdef012345"
)
BODY = b'{"events": []}'
NOW = 1_765_000_000.0


def test_a_signed_batch_verifies_and_names_the_newest_key() -> None:
    header = sign_batch(KEYS, BODY, NOW, batch_id="b" * 32)[SIGNATURE_HEADER]
    signed = verify_batch(KEYS, header, BODY, NOW + 10)

    assert (signed.kid, signed.timestamp, signed.batch_id) == ("k2", int(NOW), "b" * 32)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b, t: (h, b + b" ", t), "bad_signature"),
        (lambda h, b, t: (h.replace("kid=k2", "kid=k1"), b, t), "bad_signature"),
        (lambda h, b, t: (h.replace("id=bbbb", "id=cccc"), b, t), "bad_signature"),
        (lambda h, b, t: (h.replace("kid=k2", "kid=k9"), b, t), "unknown_key"),
        (lambda h, b, t: (h, b, t + 301), "expired"),
        (lambda h, b, t: (h, b, t - 301), "expired"),
        (lambda h, b, t: (None, b, t), "missing"),
        (lambda h, b, t: ("kid=k2,ts=1,sig=00", b, t), "malformed"),
        (lambda h, b, t: (h + "é", b, t), "malformed"),
        (lambda h, b, t: (h + "," * 300, b, t), "malformed"),
    ],
)
def test_any_change_breaks_the_signature(change: object, reason: str) -> None:
    header = sign_batch(KEYS, BODY, NOW, batch_id="b" * 32)[SIGNATURE_HEADER]
    h, body, now = change(header, BODY, NOW)  # type: ignore[operator]

    with pytest.raises(BatchSignatureInvalid) as caught:
        verify_batch(KEYS, h, body, now)
    assert caught.value.reason == reason


def test_an_older_key_still_verifies_during_a_rotation() -> None:
    old_edge = SigningKeys((KEYS.keys[0],))
    header = sign_batch(old_edge, BODY, NOW)[SIGNATURE_HEADER]

    assert verify_batch(KEYS, header, BODY, NOW).kid == "k1"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "k1",
        "k1=short",
        "bad kid=0123456789abcdef0123456789abcdef",
        "k=" + "x" * 40 + ",k=" + "y" * 40,
    ],
)
def test_bad_key_lists_are_refused_without_echoing_secrets(raw: str) -> None:
    with pytest.raises(ValueError, match="signing keys") as caught:
        SigningKeys.parse(raw)
    assert "short" not in str(caught.value) or raw == "k1=short"
    assert "x" * 40 not in str(caught.value)


def test_reprs_hide_secrets() -> None:
    assert "secret" not in repr(KEYS).replace("SigningKeys", "")
    assert "first-secret" not in repr(KEYS.keys[0])
