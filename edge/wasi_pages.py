"""Pages in the WASI CGI mode: the data directory's page shells, composed (buffered).

``GET``/``HEAD`` of a path outside ``/se/*`` serves ``<data>/pages/<path>`` (``index.html`` for
a path ending in ``/``). An HTML page (``.html``) is composed with `edge.composer.compose_buffered`
(the same rewriter and slot decision as every adapter; a CGI host cannot stream, so the page is
answered whole, every slot in ``Server-Timing`` and ``X-Shelfedge-Slots``); any other file is
answered byte for byte. Paths are checked before any file is opened: segments of letters,
digits, ``-``, ``_`` and ``.``, none starting with a dot; no file over `MAX_PAGE_BYTES`.

It reads only the data directory and never writes.
"""

from __future__ import annotations

import os
import posixpath
import re
import time
from collections.abc import Callable, Mapping

from edge.compose import Placeholder, is_composable
from edge.composer import buffered_headers, compose_buffered, page_request, slot_request
from edge.config import EdgeConfig
from edge.errors import ConfigUnavailable
from edge.flow import EdgeResponse, drive_sync, handle_slot
from edge.transport import Transport

PAGES_DIR = "pages"
MAX_PAGE_BYTES = 2 * 1024 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SHARED = (("Cache-Control", "public, max-age=60"),)


def page_file(root: str, path: str) -> str | None:
    """The file under ``<root>/pages`` that ``path`` names, or None when the path is refused."""
    if not path.startswith("/") or len(path) > 1024:
        return None
    relative = path[1:] + ("index.html" if path.endswith("/") else "")
    parts = relative.split("/")
    if not all(_SEGMENT.fullmatch(part) for part in parts):
        return None
    return os.path.join(root, PAGES_DIR, *parts)


def content_type(file: str) -> str:
    return _TYPES.get(posixpath.splitext(file)[1].lower(), "application/octet-stream")


def read_page(file: str) -> bytes | None:
    """The file's bytes, or None when it is absent, not a file or too large."""
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_PAGE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_PAGE_BYTES else None


def serve_page(
    body: bytes,
    kind: str,
    headers: Mapping[str, str],
    path: str,
    query: Mapping[str, str],
    data: Transport,
    read_config: Callable[[], EdgeConfig],
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a page: composed when it is HTML, else as it is.

    ``read_config`` is the data directory's config reader; a config that cannot be read
    leaves each slot to its client-fill marker (status ERROR)."""
    if not is_composable(kind):
        return 200, [("Content-Type", kind), *_SHARED], body
    now = time.time()
    try:
        config = read_config()
    except ConfigUnavailable:
        composed, fills = compose_buffered(body, _no_config)
        return 200, buffered_headers([("Content-Type", kind)], None, fills), composed
    page, set_cookie = page_request(headers, path, query, now, config, os.urandom(16).hex())

    def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        return drive_sync(handle_slot(slot_request(page, placeholder), config), data)

    composed, fills = compose_buffered(body, decide)
    return 200, buffered_headers([("Content-Type", kind)], set_cookie, fills), composed


def _no_config(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
    raise ConfigUnavailable(f"no edge config to decide slot {placeholder.slot!r}")
