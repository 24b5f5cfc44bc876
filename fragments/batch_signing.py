"""Signed edge-to-origin event batches: HMAC-SHA256 over (key id, timestamp, batch id, body).

The edge signs every batch it POSTs to the origin's ``/v1/events`` with the newest of its
shared keys; the origin accepts any key it lists (rotation), refuses a timestamp outside the
replay window and, with Redis, a batch id it has already seen within that window. The
signature travels in one header::

    X-Shelfedge-Signature: kid=edge-2026,ts=1765000000,id=3f2a...,sig=<64 hex>

The signed message is ``kid \\n ts \\n id \\n`` followed by the exact body bytes, so any change
of the body, the time, the batch id or the key id breaks the signature. Keys are written
``kid1=secret1,kid2=secret2`` (`SigningKeys.parse`); the LAST one listed is the newest and is
the one `sign_batch` uses. Stdlib only (``hmac``, ``hashlib``, ``secrets``): it imports under
Pyodide and WASI. It never logs and never puts a secret in an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from fragments.errors import BatchSignatureInvalid

SIGNATURE_HEADER = "X-Shelfedge-Signature"
REPLAY_WINDOW_S = 300
"""A batch signed more than this many seconds before or after the origin's clock is refused."""
MIN_SECRET_CHARS = 32
DEV_EVENT_KEYS = "dev=shelfedge-development-event-key-not-for-production"
"""The key the dev stack uses when none is configured; refused outside ``SHELFEDGE_ENV=dev``."""
_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_HEADER = 256


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    secret: bytes

    def __repr__(self) -> str:  # never show the secret
        return f"SigningKey(kid={self.kid!r}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """The keys one side knows, oldest first; `newest` signs, all of them verify."""

    keys: tuple[SigningKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("signing keys: need at least one key")
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise ValueError(f"signing keys: duplicate key id in {kids}")

    @classmethod
    def parse(cls, raw: str) -> SigningKeys:
        """``kid1=secret1,kid2=secret2`` (the last is the newest). ValueError names the fault
        without echoing a secret."""
        keys: list[SigningKey] = []
        for i, item in enumerate(p.strip() for p in raw.split(",")):
            if not item:
                continue
            kid, has_eq, secret = item.partition("=")
            if not has_eq or not _KID.fullmatch(kid):
                raise ValueError(
                    f"signing keys: item {i + 1} must be <kid>=<secret>, kid of 1-32 chars "
                    "of A-Z a-z 0-9 _ . -"
                )
            if len(secret) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"signing keys: the secret of {kid!r} must have at least "
                    f"{MIN_SECRET_CHARS} characters"
                )
            keys.append(SigningKey(kid, secret.encode()))
        return cls(tuple(keys))

    @property
    def newest(self) -> SigningKey:
        return self.keys[-1]

    def by_kid(self) -> Mapping[str, SigningKey]:
        return {k.kid: k for k in self.keys}

    def __repr__(self) -> str:
        return f"SigningKeys(kids={[k.kid for k in self.keys]})"


@dataclass(frozen=True, slots=True)
class BatchSignature:
    """What a verified header said: which key signed, when, and the batch id (the nonce)."""

    kid: str
    timestamp: int
    batch_id: str


def _mac(secret: bytes, kid: str, timestamp: int, batch_id: str, body: bytes) -> str:
    message = f"{kid}\n{timestamp}\n{batch_id}\n".encode() + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_batch(
    keys: SigningKeys, body: bytes, now: float, batch_id: str | None = None
) -> dict[str, str]:
    """The header(s) to send with `body`, signed by the newest key at time `now`."""
    key = keys.newest
    nonce = batch_id or secrets.token_hex(16)
    if not _BATCH_ID.fullmatch(nonce):
        raise ValueError("batch id: 16-64 chars of A-Z a-z 0-9 _ -")
    ts = int(now)
    sig = _mac(key.secret, key.kid, ts, nonce, body)
    return {SIGNATURE_HEADER: f"kid={key.kid},ts={ts},id={nonce},sig={sig}"}


def verify_batch(
    keys: SigningKeys,
    header: str | None,
    body: bytes,
    now: float,
    window_s: int = REPLAY_WINDOW_S,
) -> BatchSignature:
    """The verified signature of `body`, or BatchSignatureInvalid saying why (missing,
    malformed, unknown key id, expired, bad signature). Replays inside the window are the
    caller's to refuse (by `BatchSignature.batch_id`): this function keeps no state."""
    if not header:
        raise BatchSignatureInvalid("missing", f"send a signed batch ({SIGNATURE_HEADER})")
    if len(header) > _MAX_HEADER or not header.isascii():
        raise BatchSignatureInvalid("malformed", f"{SIGNATURE_HEADER} is not well formed")
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    kid, ts, nonce, sig = (fields.get(n, "") for n in ("kid", "ts", "id", "sig"))
    if not (_KID.fullmatch(kid) and ts.isdigit() and _BATCH_ID.fullmatch(nonce)):
        raise BatchSignatureInvalid(
            "malformed", f"{SIGNATURE_HEADER} needs kid=..,ts=<unix s>,id=<batch id>,sig=<hex>"
        )
    if not _HEX64.fullmatch(sig):
        raise BatchSignatureInvalid("malformed", "sig must be 64 lowercase hex digits")
    key = keys.by_kid().get(kid)
    if key is None:
        raise BatchSignatureInvalid("unknown_key", f"unknown key id {kid!r}")
    timestamp = int(ts)
    if abs(now - timestamp) > window_s:
        raise BatchSignatureInvalid(
            "expired", f"timestamp is more than {window_s}s away from the origin's clock"
        )
    expected = _mac(key.secret, kid, timestamp, nonce, body)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise BatchSignatureInvalid("bad_signature", "the signature does not match the body")
    return BatchSignature(kid, timestamp, nonce)
