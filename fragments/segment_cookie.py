"""The signed segment cookie: the origin signs a shopper's segment, the edge verifies it.

Format (version 2)::

    v2.<key id>.<segment>.<expires unix seconds>.<hex HMAC-SHA256, 32 chars>

The MAC covers ``v2.<kid>.<segment>.<expires>`` and the visitor id (the ``se_vid`` cookie) the
cookie was issued to, so a cookie copied to another browser (another visitor id) does not
verify, nor does a tampered, malformed, expired or unknown-key value: each verifies to None
and the edge uses the default segment. Version 1 cookies (no key id, no visitor) are refused.

Keys and rotation: the secret setting is either one secret (key id ``0``) or a list
``kid1=secret1,kid2=secret2`` (each secret 16+ characters); the last listed signs, all of them
verify. Rotate by appending a new key on the edges first, then on the origin, then removing
the old one once its cookies have expired. The secrets never leave origin and edge
configuration. Pure: the caller passes the time in.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass

from fragments.errors import InvalidIdentifier
from fragments.ids import check_id

COOKIE_NAME = "se_seg"
DEV_SEGMENT_SECRET = "shelfedge-dev-secret-change-me"
"""The development default of the shared secret (refused outside ``SHELFEDGE_ENV=dev``)."""
VERSION = "v2"
SIGNATURE_CHARS = 32
MAX_COOKIE_LENGTH = 192
LIFETIME_S = 24 * 3600
"""Seconds a segment cookie the origin signs stays valid: its issue time is its expiry minus
this (the edge reads a cookie's age so, `edge.segment_refresh`)."""
_HEX = re.compile(r"[0-9a-f]+")
_KID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_KEYRING = re.compile(r"[A-Za-z0-9_-]{1,16}=[^,]{16,}(,[A-Za-z0-9_-]{1,16}=[^,]{16,})*")


@functools.lru_cache(maxsize=8)
def segment_keys(secret: str) -> tuple[tuple[str, bytes], ...]:
    """(key id, secret) pairs, oldest first, from the setting: a ``kid=secret,...`` list, or
    a single secret whose key id is ``0``."""
    compact = ",".join(p.strip() for p in secret.split(","))
    if _KEYRING.fullmatch(compact):
        pairs = [p.partition("=") for p in compact.split(",")]
        return tuple((kid, key.encode("utf-8")) for kid, _, key in pairs)
    return (("0", secret.encode("utf-8")),)


def _signature(key: bytes, payload: str, visitor: str) -> str:
    message = f"{payload}\n{visitor}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:SIGNATURE_CHARS]


VISITOR_COOKIE = "se_vid"
"""The visitor id cookie (32 lower-case hex digits) the segment cookie is bound to."""


def sign_segment(segment: str, expires_at: int, secret: str, visitor: str) -> str:
    """Cookie value carrying `segment` for `visitor` until `expires_at` (unix seconds), signed
    by the newest key of `secret`."""
    check_id("segment", segment)
    kid, key = segment_keys(secret)[-1]
    payload = f"{VERSION}.{kid}.{segment}.{int(expires_at)}"
    return f"{payload}.{_signature(key, payload, visitor)}"


@dataclass(frozen=True, slots=True)
class SegmentGrant:
    """What a verified segment cookie says: the segment, until when."""

    segment: str
    expires_at: int

    @property
    def issued_at(self) -> int:
        """When the origin signed it (expiry minus `LIFETIME_S`)."""
        return self.expires_at - LIFETIME_S


def verify_segment(value: str | None, now: float, secret: str, visitor: str) -> str | None:
    """The segment in a valid, unexpired cookie value issued to `visitor`, else None."""
    grant = read_segment(value, now, secret, visitor)
    return None if grant is None else grant.segment


def read_segment(value: str | None, now: float, secret: str, visitor: str) -> SegmentGrant | None:
    """The grant of a valid, unexpired cookie value issued to `visitor`, else None."""
    if not value or len(value) > MAX_COOKIE_LENGTH or not value.isascii():
        return None
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != VERSION:
        return None
    _, kid, segment, expires, signature = parts
    # str.isdigit() accepts digits such as '²' that int() rejects: ASCII was checked above.
    if not (expires.isdigit() and _KID.fullmatch(kid)):
        return None
    if len(signature) != SIGNATURE_CHARS or not _HEX.fullmatch(signature):
        return None
    try:
        check_id("segment", segment)
    except InvalidIdentifier:
        return None
    key = dict(segment_keys(secret)).get(kid)
    if key is None:
        return None
    expected = _signature(key, f"{VERSION}.{kid}.{segment}.{expires}", visitor)
    if not hmac.compare_digest(expected, signature) or int(expires) < now:
        return None
    return SegmentGrant(segment, int(expires))
