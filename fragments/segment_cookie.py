"""The signed segment cookie: the origin signs a shopper's segment, the edge verifies it.

Format: ``<segment>.<expires unix seconds>.<hex HMAC-SHA256 of "segment.expires", 32 chars>``.
A tampered, malformed or expired value verifies to None (the edge then uses the default
segment). The shared secret never leaves origin and edge configuration. Pure: the caller
passes the time in.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from fragments.errors import InvalidIdentifier
from fragments.ids import check_id

COOKIE_NAME = "se_seg"
DEV_SEGMENT_SECRET = "shelfedge-dev-secret-change-me"
"""The development default of the shared secret (production refuses it)."""
SIGNATURE_CHARS = 32
MAX_COOKIE_LENGTH = 160
_HEX = re.compile(r"[0-9a-f]+")


def _signature(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:SIGNATURE_CHARS]


def sign_segment(segment: str, expires_at: int, secret: str) -> str:
    """Cookie value carrying `segment` until `expires_at` (unix seconds)."""
    check_id("segment", segment)
    payload = f"{segment}.{expires_at}"
    return f"{payload}.{_signature(secret, payload)}"


def verify_segment(value: str | None, now: float, secret: str) -> str | None:
    """The segment in a valid, unexpired cookie value, else None."""
    if not value or len(value) > MAX_COOKIE_LENGTH:
        return None
    segment, sep1, rest = value.partition(".")
    expires, sep2, signature = rest.partition(".")
    # ASCII checks first: hmac.compare_digest raises TypeError on non-ASCII str, and
    # str.isdigit() accepts digits such as '²' that int() rejects.
    if not (sep1 and sep2 and expires.isascii() and expires.isdigit()):
        return None
    if len(signature) != SIGNATURE_CHARS or not _HEX.fullmatch(signature):
        return None
    try:
        check_id("segment", segment)
    except InvalidIdentifier:
        return None
    expected = _signature(secret, f"{segment}.{expires}")
    if not hmac.compare_digest(expected, signature) or int(expires) < now:
        return None
    return segment
