"""The sticky assignment cookie (``se_exp``) signed for one visitor.

The edge records which variant a visitor was given per experiment so a re-weighted experiment
does not move them. Unsigned, that cookie let a visitor pick a variant (and be counted as
exposed to it). Now its value is::

    <entries>~<key id>~<hex HMAC-SHA256, 32 chars>

where ``<entries>`` is the router's encoding (``key.index.bucketversion|...``) and the MAC
covers the entries and the visitor id (``se_vid``), under the segment cookie's keys
(`fragments.segment_cookie.segment_keys`: the newest signs, all verify). A value that does not
verify, or belongs to another visitor, reads as no sticky assignment at all. Pure, stdlib only.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from fragments.segment_cookie import segment_keys

COOKIE_NAME = "se_exp"
SIGNATURE_CHARS = 32
MAX_COOKIE_CHARS = 1100
_HEX = re.compile(r"[0-9a-f]{32}")


def _mac(key: bytes, entries: str, visitor: str) -> str:
    message = f"se_exp\n{entries}\n{visitor}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:SIGNATURE_CHARS]


def sign_sticky(entries: str, visitor: str, secret: str) -> str:
    """The cookie value carrying `entries` for `visitor`."""
    kid, key = segment_keys(secret)[-1]
    return f"{entries}~{kid}~{_mac(key, entries, visitor)}"


def verify_sticky(value: str | None, visitor: str, secret: str) -> str | None:
    """The entries of a value signed for `visitor`, else None (never raises)."""
    if not value or len(value) > MAX_COOKIE_CHARS or not value.isascii():
        return None
    parts = value.rsplit("~", 2)
    if len(parts) != 3:
        return None
    entries, kid, mac = parts
    key = dict(segment_keys(secret)).get(kid)
    if key is None or not _HEX.fullmatch(mac):
        return None
    if not hmac.compare_digest(_mac(key, entries, visitor), mac):
        return None
    return entries
