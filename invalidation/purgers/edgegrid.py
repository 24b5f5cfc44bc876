"""Akamai EdgeGrid request signing (``EG1-HMAC-SHA256``), pure: the clock and nonce are passed in.

Per Akamai's published EdgeGrid client authentication: the signing key is
``base64(HMAC-SHA256(client_secret, timestamp))``; the signed data is the tab-joined method,
scheme, host, path with query, canonical headers (none are signed here), the base64 SHA-256 of a
POST body (empty otherwise) and the ``Authorization`` header so far; the signature is
``base64(HMAC-SHA256(signing_key, data))``, appended as ``signature=...``. The timestamp is UTC
``YYYYMMDDTHH:MM:SS+0000``. The same functions check a signature (the test API does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

ALGORITHM = "EG1-HMAC-SHA256"
MAX_SIGNED_BODY = 131_072
"""Bytes of a POST body that the content hash covers (EdgeGrid's default ``max_body``)."""


@dataclass(frozen=True, slots=True)
class EdgeGridCredentials:
    client_token: str
    client_secret: str
    access_token: str


def edgegrid_timestamp(unix_seconds: float) -> str:
    """``YYYYMMDDTHH:MM:SS+0000`` in UTC."""
    return time.strftime("%Y%m%dT%H:%M:%S+0000", time.gmtime(unix_seconds))


def new_nonce() -> str:
    return str(uuid.uuid4())


def _b64_hmac(key: bytes, message: str) -> str:
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def content_hash(method: str, body: bytes) -> str:
    """The body's hash as EdgeGrid signs it: POST bodies only, at most `MAX_SIGNED_BODY`."""
    if method.upper() != "POST" or not body:
        return ""
    return base64.b64encode(hashlib.sha256(body[:MAX_SIGNED_BODY]).digest()).decode()


def signature(
    secret: str, method: str, url: str, body: bytes, unsigned_header: str, timestamp: str
) -> str:
    """The signature of a request whose ``Authorization`` header starts `unsigned_header`."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data = "\t".join(
        [
            method.upper(),
            parts.scheme.lower(),
            parts.netloc.lower(),
            path,
            "",  # canonical headers: none signed
            content_hash(method, body),
            unsigned_header,
        ]
    )
    signing_key = _b64_hmac(secret.encode(), timestamp)
    return _b64_hmac(signing_key.encode(), data)


def authorization(
    credentials: EdgeGridCredentials,
    method: str,
    url: str,
    body: bytes,
    *,
    timestamp: str,
    nonce: str,
) -> str:
    """The ``Authorization`` header value for this request."""
    unsigned = (
        f"{ALGORITHM} client_token={credentials.client_token};"
        f"access_token={credentials.access_token};timestamp={timestamp};nonce={nonce};"
    )
    sig = signature(credentials.client_secret, method, url, body, unsigned, timestamp)
    return f"{unsigned}signature={sig}"


def parse_authorization(header: str) -> dict[str, str]:
    """The fields of an EdgeGrid ``Authorization`` header (ValueError when it is not one)."""
    prefix = f"{ALGORITHM} "
    if not header.startswith(prefix):
        raise ValueError(f"not an {ALGORITHM} Authorization header")
    fields: dict[str, str] = {}
    for item in header.removeprefix(prefix).split(";"):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"malformed EdgeGrid field {item!r}")
        fields[name] = value
    return fields


def unsigned_part(header: str) -> str:
    """The header up to and including the ``;`` before ``signature=`` (what was signed)."""
    cut = header.rfind("signature=")
    if cut < 0:
        raise ValueError("EdgeGrid Authorization header without a signature")
    return header[:cut]
