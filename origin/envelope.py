"""The stored form of a bundle: its response headers and its wire bytes in one Redis value.

``<headers as a JSON array of [name, value]>\\n<bundle wire bytes>``. The hot path does one GET
and one split; it never decodes the bundle or renders anything. JSON escapes newlines inside
strings, so the first newline always ends the header line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fragments.bundle import Bundle, encode_bundle
from fragments.headers import cache_headers


@dataclass(frozen=True, slots=True)
class Envelope:
    """A stored bundle ready to serve."""

    headers: list[tuple[str, str]]
    body: bytes

    @property
    def etag(self) -> str:
        for name, value in self.headers:
            if name == "ETag":
                return value
        return ""


def seal(bundle: Bundle) -> bytes:
    """Encode a bundle with its cache headers for storage."""
    headers = cache_headers(bundle.key, bundle.policy, bundle.tags, bundle.content_hash)
    head = json.dumps(headers, separators=(",", ":")).encode("utf-8")
    return head + b"\n" + encode_bundle(bundle)


def open_envelope(raw: bytes) -> Envelope:
    """Split a stored value into headers and body."""
    head, _, body = raw.partition(b"\n")
    return Envelope([(str(n), str(v)) for n, v in json.loads(head)], body)
