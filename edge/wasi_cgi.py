"""The CGI mode of the WASI entry (WAGI / WCGI conventions): one request per process.

``GET``/``HEAD`` of ``SCRIPT_NAME + PATH_INFO = /se/slot/<slot>`` (the slot route of
`edge.surface`, the only ``/se/*`` endpoint served here: other ``/se/*`` paths are 404); request
headers come from
``HTTP_*`` variables, the query from ``QUERY_STRING``. ``GET``/``HEAD`` of any other path
outside ``/se/*`` serves the page shell ``<data>/pages/<path>``, HTML composed with its slots
(buffered: `edge.wasi_pages`). The edge config is ``<data>/config.json``
and the edge cache is ``<data>/bundles/<cache key, "/" -> "_">.json`` (bundle wire JSON), stored
at the time in a ``.stored_at`` sidecar or else the file's mtime; ``<data>`` is
``$SHELFEDGE_DATA_DIR`` (default ``/data``), a preopened directory. There is no network, so the
origin never answers: a missing or expired bundle is served from stale-if-error or falls back
to the slot's safe default. A slot request never gets a 5xx: problems are one line on stderr and
an ``X-Shelfedge-Error`` header. `DataDirectory` is this mode's `edge.transport.Transport`.
`edge.wasi_main` chooses this mode; docs/wasi.md has the contract.

It must never reach the network, write a file or read anything but its data directory.
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO

from edge import wasi_pages
from edge.cache import CacheEntry, entry_from_bytes
from edge.config import EdgeConfig, parse_config
from edge.deploy_policy import segment_refusals
from edge.errors import ConfigUnavailable
from edge.flow import SlotRequest, drive_sync, handle_slot, with_server_timing
from edge.json_shape import json_object
from edge.surface import SLOT_PREFIX, Endpoint, match_route, parse_query
from edge.transport import FetchResult, OriginFetch
from fragments.errors import BundleFormatError
from fragments.ids import FragmentKey

PROGRAM = "shelfedge-edge"
DATA_DIR_VARIABLE = "SHELFEDGE_DATA_DIR"
DEFAULT_DATA_DIR = "/data"
CONFIG_FILE = "config.json"
BUNDLES_DIR = "bundles"
STORED_AT_SUFFIX = ".stored_at"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
SLOT_PATH_PREFIX = SLOT_PREFIX
NO_ORIGIN_IN_CGI = "no origin in the WASI CGI mode: bundles come from the data directory"

Log = Callable[[str], None]
"""Writes one line of diagnostics (stderr in the module)."""


def stderr_log(stream: IO[str]) -> Log:
    """A `Log` writing ``shelfedge-edge: <message>`` lines to ``stream``."""

    def log(message: str) -> None:
        stream.write(f"{PROGRAM}: {message}\n")
        stream.flush()

    return log


class DataDirectory:
    """The preopened directory that stands in for the edge cache and the config service.

    It is the CGI mode's `edge.transport.Transport`: cache reads come from its bundle files,
    an origin fetch is never answered (there is no network) and a cache write never happens
    (nothing is ever fetched to store).
    """

    def __init__(self, root: str, log: Log) -> None:
        self.root = root
        self._log = log

    def config_path(self) -> str:
        return os.path.join(self.root, CONFIG_FILE)

    def bundle_path(self, key: FragmentKey) -> str:
        """Where the bundle of ``key`` lives: its cache key with "/" replaced by "_"."""
        return os.path.join(self.root, BUNDLES_DIR, key.cache_key.replace("/", "_") + ".json")

    def read_config(self) -> EdgeConfig:
        """The edge config of ``config.json``; raises ConfigUnavailable naming the file."""
        path = self.config_path()
        try:
            raw = _read_capped(path, MAX_CONFIG_BYTES)
            return parse_config(json_object(json.loads(raw), "config"))
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON, UTF-8, shape
            raise ConfigUnavailable(f"{path}: {' '.join(str(exc).split())}") from exc

    def cache_read(self, key: FragmentKey) -> CacheEntry | None:
        """The cached bundle of ``key``, or None (logged) when it is absent or unusable."""
        path = self.bundle_path(key)
        try:
            raw = _read_capped(path, MAX_BUNDLE_BYTES)
            stored_at = self._stored_at(path)
            entry = entry_from_bytes(raw, stored_at)
        except FileNotFoundError:
            self._log(f"miss {key.cache_key}: no file {path}")
            return None
        except (OSError, ValueError, RecursionError, BundleFormatError) as exc:
            self._log(f"unusable bundle {path}: {' '.join(str(exc).split())}")
            return None
        if entry.bundle.key != key:
            self._log(f"unusable bundle {path}: it holds {entry.bundle.key.cache_key}")
            return None
        return entry

    def _stored_at(self, path: str) -> float:
        sidecar = path + STORED_AT_SUFFIX
        try:
            text = _read_capped(sidecar, 64).decode("ascii").strip()
        except FileNotFoundError:
            return os.stat(path).st_mtime
        try:
            stored_at = float(text)
        except ValueError:
            stored_at = math.nan
        if not math.isfinite(stored_at):
            raise ValueError(f"{sidecar} must hold Unix seconds, got {text!r}")
        return stored_at

    def origin_fetch(self, fetch: OriginFetch) -> FetchResult:
        """No origin in the CGI mode: the fetch goes unanswered (logged when it would refresh)."""
        if fetch.if_none_match is not None:
            self._log(
                f"expired {fetch.key.cache_key}: refresh {self.bundle_path(fetch.key)} "
                "from the origin"
            )
        return FetchResult(0, b"", NO_ORIGIN_IN_CGI)

    def cache_write(self, entry: CacheEntry) -> None:
        """Never called: the flow stores only what the origin answered, and it never answers."""
        raise RuntimeError(
            f"the flow stored {entry.bundle.key.cache_key}, but the CGI mode never "
            "has an origin answer to store"
        )


def _read_capped(path: str, limit: int) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is over {limit} bytes")
    return data


@dataclass(frozen=True, slots=True)
class CgiResponse:
    """What the CGI mode prints: the status line, headers, a blank line and the body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: str | bytes
    """Text (a slot; UTF-8 encoded when printed) or bytes (a page, printed as they are)."""

    def encode(self, *, with_body: bool = True) -> bytes:
        """The CGI output; a lone surrogate (from a ``\\ud800`` escape in a bundle) becomes "?"."""
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = ""
        lines = [f"Status: {self.status} {reason}".rstrip()]
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        head = ("\n".join(lines) + "\n\n").encode("utf-8", errors="replace")
        if not with_body:
            return head
        if isinstance(self.body, bytes):
            return head + self.body
        return head + self.body.encode("utf-8", errors="replace")


def serve_cgi(environ: Mapping[str, str], log: Log) -> bytes:
    """Answer the CGI request described by ``environ``; return the bytes to print."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    try:
        response = cgi_response(environ, method, log)
    except Exception as exc:  # the last line of "never a 5xx for a slot"
        _log_exception(log, exc, "serving an empty slot")
        response = _empty_slot("", "internal")
    return response.encode(with_body=method != "HEAD")


def cgi_response(environ: Mapping[str, str], method: str, log: Log) -> CgiResponse:
    """Route, read the config, decide; a slot request always gets a 200 or a 404."""
    path = environ.get("SCRIPT_NAME", "").rstrip("/") + environ.get("PATH_INFO", "")
    route = match_route(path)
    if route is None and not path.startswith("/se/"):
        return _page(environ, path, method, log)
    if route is None or route.endpoint is not Endpoint.SLOT:  # the only /se endpoint served here
        return _plain(404, "not found\n")
    if not route.allows(method):
        return _plain(405, "method not allowed\n", ("Allow", route.allow))
    slot = route.slot
    data = DataDirectory(environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR, log)
    try:
        config = data.read_config()
    except ConfigUnavailable as exc:
        log(f"config unavailable, serving an empty slot: {exc}")
        return _empty_slot("", "config")
    refused = segment_refusals(environ.get("SHELFEDGE_ENV"), config.segment_secret)
    if refused:  # never trust cookies anyone can sign: the safe default, and say why
        log(f"refusing to personalize ({'; '.join(refused)}): serving the safe default")
        return _empty_slot(config.fallbacks.get(slot, ""), "misconfigured")
    request = SlotRequest(
        slot=slot,
        headers=cgi_headers(environ),
        query=cgi_query(environ.get("QUERY_STRING", "")),
        now=time.time(),
        fresh_visitor_id=os.urandom(16).hex(),
    )
    try:
        decided, core_seconds = drive_sync(handle_slot(request, config), data)
    except Exception as exc:  # the config is known: serve the slot's safe default
        _log_exception(log, exc, "serving the safe default")
        return _empty_slot(config.fallbacks.get(slot, ""), "internal")
    if decided.revalidate is not None:
        log(
            f"stale {decided.revalidate.cache_key}: refresh "
            f"{data.bundle_path(decided.revalidate)} from the origin"
        )
    headers = tuple(with_server_timing(decided, core_seconds))
    return CgiResponse(decided.status, headers, decided.body)


def _page(environ: Mapping[str, str], path: str, method: str, log: Log) -> CgiResponse:
    """A page shell of the data directory, composed when it is HTML (`edge.wasi_pages`)."""
    if method not in ("GET", "HEAD"):
        return _plain(405, "method not allowed\n", ("Allow", "GET, HEAD"))
    data = DataDirectory(environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR, log)
    file = wasi_pages.page_file(data.root, path)
    body = wasi_pages.read_page(file) if file is not None else None
    if file is None or body is None:
        return _plain(404, "not found\n")
    status, headers, composed = wasi_pages.serve_page(
        body,
        wasi_pages.content_type(file),
        cgi_headers(environ),
        path,
        cgi_query(environ.get("QUERY_STRING", "")),
        data,
        data.read_config,
    )
    return CgiResponse(status, tuple(headers), composed)


def _log_exception(log: Log, exc: Exception, action: str) -> None:
    log(f"internal error, {action}: {type(exc).__name__}: {' '.join(str(exc).split())}")
    for line in traceback.format_exc().splitlines():
        log(line)


def cgi_headers(environ: Mapping[str, str]) -> dict[str, str]:
    """The request headers (lower-cased names) from the ``HTTP_*`` variables."""
    return {
        name[5:].lower().replace("_", "-"): value
        for name, value in environ.items()
        if name.startswith("HTTP_") and len(name) > 5
    }


def cgi_query(query_string: str) -> dict[str, str]:
    """The query parameters (`edge.surface.parse_query`)."""
    return parse_query(query_string)


def _plain(status: int, body: str, *extra: tuple[str, str]) -> CgiResponse:
    headers = (("Content-Type", "text/plain; charset=utf-8"), *extra)
    return CgiResponse(status, headers, body)


def _empty_slot(body: str, error: str) -> CgiResponse:
    headers = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "private, no-store"),
        ("X-Shelfedge-Cache", "FALLBACK"),
        ("X-Shelfedge-Error", error),
    )
    return CgiResponse(200, headers, body)
