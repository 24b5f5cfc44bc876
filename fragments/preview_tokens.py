"""Scoped QA preview tokens: which experiment (and optionally which variant) a tester may
force, until when, signed.

Format::

    p1.<experiment>.<variant or *>.<expires unix seconds>.<hex HMAC-SHA256, 32 chars>

The MAC key is the published ``preview_secret_hash`` of the edge configuration (the SHA-256
of the origin's preview secret): every edge holding the configuration can check a token, only
the origin (which holds the secret, and whose edge configuration needs a token to read) mints
them, and rotating the secret from the admin UI voids every token at the next config refresh.
A token for one experiment unlocks nothing else; an expired, tampered or malformed token, or
one signed under another secret, verifies to None. Pure and stdlib only (Pyodide, WASI).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from fragments.errors import InvalidIdentifier
from fragments.ids import check_id

VERSION = "p1"
ANY_VARIANT = "*"
SIGNATURE_CHARS = 32
MAX_TOKEN_CHARS = 200
PREVIEW_COOKIE = "se_preview"
"""Where the edge keeps an exchanged token (HttpOnly, Secure, until the token expires)."""
_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class PreviewGrant:
    experiment: str
    variant: str | None
    """None: any variant of the experiment."""
    expires: int

    def allows(self, experiment: str, variant: str) -> bool:
        return experiment == self.experiment and self.variant in (None, variant)


def _mac(key_hex: str, payload: str) -> str:
    return hmac.new(key_hex.encode(), payload.encode(), hashlib.sha256).hexdigest()[
        :SIGNATURE_CHARS
    ]


def sign_preview(key_hex: str, grant: PreviewGrant) -> str:
    """The token for `grant`, keyed by the configuration's ``preview_secret_hash``."""
    if not key_hex:
        raise ValueError("preview tokens need a preview secret (none is published)")
    check_id("experiment", grant.experiment)
    if grant.variant is not None:
        check_id("variant", grant.variant)
    payload = f"{VERSION}.{grant.experiment}.{grant.variant or ANY_VARIANT}.{int(grant.expires)}"
    return f"{payload}.{_mac(key_hex, payload)}"


def verify_preview(token: str | None, key_hex: str, now: float) -> PreviewGrant | None:
    """The grant of a valid, unexpired token, else None (never raises)."""
    if not token or not key_hex or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != VERSION:
        return None
    _, experiment, variant, expires, mac = parts
    if not (expires.isdigit() and _HEX.fullmatch(mac)):
        return None
    try:
        check_id("experiment", experiment)
        if variant != ANY_VARIANT:
            check_id("variant", variant)
    except InvalidIdentifier:
        return None
    expected = _mac(key_hex, ".".join(parts[:4]))
    if not hmac.compare_digest(expected, mac) or int(expires) < now:
        return None
    return PreviewGrant(experiment, None if variant == ANY_VARIANT else variant, int(expires))
