"""The stored form of a bundle: its response headers and its wire bytes in one Redis value.

``<headers as a JSON array of [name, value]>\\n<bundle wire bytes>``. The hot path does one GET
and one split; it never decodes the bundle or renders anything. JSON escapes newlines inside
strings, so the first newline always ends the header line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from fragments.bundle import Bundle, encode_bundle
from fragments.headers import cache_headers


@dataclass(frozen=True, slots=True)
class StoredHeaders:
    """A bundle's response headers, decoded once per distinct header line."""

    pairs: tuple[tuple[str, str], ...]
    raw: tuple[tuple[bytes, bytes], ...]
    """ASGI form: lower-cased names, latin-1 values (ready for a response's raw headers)."""
    etag: str
    """The strong ETag's opaque value, without quotes."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A stored bundle ready to serve."""

    stored: StoredHeaders
    body: bytes

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return self.stored.pairs

    @property
    def etag(self) -> str:
        return self.stored.etag


def seal(bundle: Bundle) -> bytes:
    """Encode a bundle with its cache headers for storage."""
    headers = cache_headers(bundle.key, bundle.policy, bundle.tags, bundle.content_hash)
    head = json.dumps(headers, separators=(",", ":")).encode("utf-8")
    return head + b"\n" + encode_bundle(bundle)


def open_envelope(raw: bytes) -> Envelope:
    """Split a stored value into headers and body (the header line is decoded once per
    distinct value: every request for an unchanged bundle reuses it)."""
    head, _, body = raw.partition(b"\n")
    return Envelope(_decode_headers(head), body)


@lru_cache(maxsize=4096)
def _decode_headers(head: bytes) -> StoredHeaders:
    pairs = tuple((str(n), str(v)) for n, v in json.loads(head))
    raw = tuple((n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in pairs)
    etag = next((v for n, v in pairs if n == "ETag"), "").strip('"')
    return StoredHeaders(pairs, raw, etag)
