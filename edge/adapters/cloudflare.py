"""The Cloudflare Python Worker: the edge core, carried out with the Cache API, fetch, waitUntil.

Routes: ``GET /se/slot/{slot}`` the personalized slot; ``POST /se/purge`` {"tags": [...]}
(local and dev runs; refused unless ``PURGE_TOKEN`` is set and sent, compared in constant
time: in production purges go through the zone's purge-by-tag API, which removes Cache API
entries stored with a ``Cache-Tag`` header); ``POST /se/events`` the storefront's beacons
(``Content-Length`` required and bounded). Only the allow-list ``PASS_THROUGH`` (default ``/``
and ``/static/``; never the admin UI, the APIs or ``/metrics``) is passed through to
``ORIGIN_URL``; anything else is a 404 (`edge.deploy_policy`).

Secrets and variables: ``SHELFEDGE_ENV`` (absent means production), ``SEGMENT_SECRET`` and
``EVENT_KEYS`` (outside dev both are required and must not be the public development values:
the Worker answers 500 naming the variable), ``DEBUG_HEADERS=1`` (X-Shelfedge-Experiment on
every slot), ``CONSENT_POLICY=required`` (no identifier before consent). Event batches to the
origin are signed with the newest ``EVENT_KEYS`` key (`fragments.batch_signing`).

Experiments: the published configuration is read from the ``CONFIG`` KV namespace (key
``edge-config``, the JSON of `fragments.experiment_codec.config_to_json`, which the origin serves as
``GET /v1/edge-config``; docs/experiments.md shows how to copy it there) and kept per isolate
for `CONFIG_TTL_S`. No binding or no key means the empty configuration (everyone sees
control); a failed read or a value that does not decode keeps the last good configuration.
Exposures and attributed beacons leave in signed batches to the origin inside waitUntil.

Cloudflare's Cache API implements neither stale-while-revalidate nor stale-if-error, so entries
are stored for max-age + max(swr, sie) with their store time in a header, and `edge.flow` decides
freshness itself. Decoded bundles are memoised per isolate by (cache key, ETag, stored time), so
a hit costs one cache match and no JSON decode.

Runs only inside workerd (`workers` and `js` exist nowhere else): nothing may import it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from js import Headers, caches  # type: ignore[import-not-found]
from workers import Response, WorkerEntrypoint, fetch  # type: ignore[import-not-found]

from edge.adapters.browser_events import MAX_BEACON_BODY, attribute
from edge.cache import CacheEntry, RevalidationTracker, entry_from_bytes
from edge.config import EdgeConfig
from edge.context import parse_cookies
from edge.deploy_policy import event_keys_for, parse_allow_list, pass_through_allowed, refusals
from edge.flow import (
    CacheRead,
    CacheWrite,
    Effect,
    FetchResult,
    OriginFetch,
    SlotRequest,
    drive_async,
    handle_slot,
    page_visitor_cookie,
    revalidate,
    with_server_timing,
)
from fragments.batch_signing import sign_batch
from fragments.bundle import encode_bundle
from fragments.errors import BundleFormatError
from fragments.experiment_codec import config_from_json
from fragments.experiments import EMPTY_CONFIG, EdgeExperimentConfig
from fragments.headers import fit_tags
from fragments.ids import FragmentKey
from fragments.preview_tokens import PREVIEW_COOKIE
from fragments.segment_cookie import DEV_SEGMENT_SECRET
from fragments.slots import load_slots
from fragments.tags import key_of_bundle_tag

CACHE_HOST = "https://shelfedge-cache.internal"
STORED_AT_HEADER = "x-shelfedge-stored-at"
ETAG_HEADER = "etag"
SLOT_PREFIX = "/se/slot/"
CONFIG_KEY = "edge-config"
"""Key of the published experiment configuration in the ``CONFIG`` KV namespace."""
CONFIG_TTL_S = 5.0
"""Seconds an isolate keeps the configuration before reading KV again (the origin's max-age)."""

EXPOSURE_BATCH_SECONDS = 0.5
EVENTS_PATH = "/v1/events"
MAX_BUFFERED_EXPOSURES = 1000
MAX_PASS_THROUGH_BODY = 1024 * 1024


class _ExposureBuffer:
    """Experiment events (exposures, attributed beacons) waiting to leave this isolate;
    bounded, drops counted (never silent)."""

    def __init__(self) -> None:
        self.events: list[dict[str, str | float]] = []
        self.flush_pending = False
        self.dropped = 0

    def add(self, event: dict[str, str | float]) -> bool:
        """Buffer an event; True when the caller should schedule a flush."""
        if len(self.events) >= MAX_BUFFERED_EXPOSURES:
            self.dropped += 1
            return False
        self.events.append(event)
        if self.flush_pending:
            return False
        self.flush_pending = True
        return True

    def take(self) -> list[dict[str, str | float]]:
        batch, self.events = self.events, []
        self.flush_pending = False
        return batch

    def give_back(self, batch: list[dict[str, str | float]]) -> None:
        room = MAX_BUFFERED_EXPOSURES - len(self.events)
        self.dropped += max(0, len(batch) - room)
        self.events[:0] = batch[: max(0, room)]


_exposures = _ExposureBuffer()
_tracker = RevalidationTracker()
_decoded: dict[str, CacheEntry] = {}
_by_tag: dict[str, set[str]] = {}


class _Experiments:
    """The isolate's experiment configuration, read from KV at most every `CONFIG_TTL_S`."""

    def __init__(self) -> None:
        self.config: EdgeExperimentConfig = EMPTY_CONFIG
        self.raw: str | None = None
        self.read_at = float("-inf")
        self._base: EdgeConfig | None = None
        self._edge: EdgeConfig | None = None

    async def edge_config(self, env: Any) -> EdgeConfig:
        """The isolate's edge configuration with the current experiments."""
        if self._base is None:  # once per isolate: slots, locales, the segment secret
            environment = _var(env, "SHELFEDGE_ENV") or None
            secret = _var(env, "SEGMENT_SECRET")
            problems = refusals(environment, secret, _var(env, "EVENT_KEYS"))
            if problems:
                raise WorkerMisconfigured("; ".join(problems))
            self._base = replace(
                EdgeConfig.from_slots(load_slots(), secret or DEV_SEGMENT_SECRET),
                debug_headers=_var(env, "DEBUG_HEADERS") == "1",
                consent_required=_var(env, "CONSENT_POLICY") == "required",
            )
        base = self._base
        experiments = await self._current(env)
        if self._edge is None or self._edge.experiments is not experiments:
            self._edge = replace(base, experiments=experiments)
        return self._edge

    async def _current(self, env: Any) -> EdgeExperimentConfig:
        now = time.time()
        if now - self.read_at < CONFIG_TTL_S:
            return self.config
        self.read_at = now  # concurrent requests keep the current one meanwhile
        namespace = getattr(env, "CONFIG", None)
        if namespace is None:
            self.config, self.raw = EMPTY_CONFIG, None
            return self.config
        try:
            raw = await namespace.get(CONFIG_KEY)
        except Exception as exc:  # a JS error from KV: keep the last good configuration
            print(f"shelfedge: KV read of {CONFIG_KEY!r} failed ({type(exc).__name__}); "
                  f"keeping config version {self.config.version}")  # fmt: skip
            return self.config
        if not isinstance(raw, str) or not raw:  # no key (JS null): nothing published
            self.config, self.raw = EMPTY_CONFIG, None
        elif raw != self.raw:
            try:
                self.config, self.raw = config_from_json(raw), raw
            except (ValueError, KeyError, TypeError) as exc:
                print(f"shelfedge: KV {CONFIG_KEY!r} does not decode ({type(exc).__name__}: "
                      f"{exc}); keeping config version {self.config.version}")  # fmt: skip
        return self.config


_experiments = _Experiments()


def _cache_url(key: FragmentKey) -> str:
    return f"{CACHE_HOST}/{key.cache_key}"


class WorkerMisconfigured(Exception):
    """A required secret is missing or is a public development value (names the variable)."""


def _var(env: Any, name: str) -> str:
    return str(getattr(env, name, "") or "")


class Default(WorkerEntrypoint):  # type: ignore[misc]
    """The Worker's default entrypoint."""

    async def fetch(self, request: Any) -> Any:
        try:
            await _experiments.edge_config(self.env)
        except WorkerMisconfigured as exc:
            return Response(f"edge misconfigured: {exc}\n", status=500)
        url = urlsplit(str(request.url))
        if url.path.startswith(SLOT_PREFIX) and request.method == "GET":
            return await self._slot(request, url.path[len(SLOT_PREFIX) :], url.query)
        if url.path == "/se/purge" and request.method == "POST":
            return await self._purge(request)
        if url.path == "/se/events" and request.method == "POST":
            return await self._beacon(request)
        if url.path == "/se/preview" and request.method == "GET":
            return await self._preview(url.query)
        if not pass_through_allowed(url.path, parse_allow_list(_var(self.env, "PASS_THROUGH"))):
            return Response("not found\n", status=404)
        return await self._pass_through(request, url.path, url.query)

    async def _slot(self, request: Any, slot: str, query: str) -> Any:
        config = await _experiments.edge_config(self.env)
        headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
        req = SlotRequest(
            slot=slot,
            headers=headers,
            query=dict(parse_qsl(query)),
            now=time.time(),
            fresh_visitor_id=secrets.token_hex(16),
        )
        response, core_seconds = await drive_async(handle_slot(req, config), self._perform)
        if response.revalidate is not None and _tracker.try_begin(
            response.revalidate.cache_key, time.time()
        ):
            self.ctx.waitUntil(self._revalidate(response.revalidate))
        if response.exposure is not None and _exposures.add(
            response.exposure.to_event(secrets.token_hex(16))
        ):
            self.ctx.waitUntil(self._flush_exposures())
        out = Headers.new()
        for name, value in with_server_timing(response, core_seconds):
            out.append(name, value)  # append: two Set-Cookie headers must both survive
        return Response(response.body, status=response.status, headers=out)

    async def _beacon(self, request: Any) -> Any:
        """Storefront clicks / add-to-carts: attributed to the visitor's sticky variants here
        (the browser cannot read the HttpOnly cookies), then batched like exposures."""
        declared = str(request.headers.get("content-length") or "")
        if not declared.isdigit() or int(declared) > MAX_BEACON_BODY:
            return Response(
                json.dumps({"error": f"send a Content-Length of at most {MAX_BEACON_BODY}"}),
                status=413 if declared.isdigit() else 411,
            )
        body = await request.text()
        try:
            if len(body) > MAX_BEACON_BODY:
                raise ValueError(f"body over {MAX_BEACON_BODY} bytes")
            doc = json.loads(body)
        except ValueError as exc:
            return Response(
                json.dumps({"error": f'expected {{"events": [...]}}: {exc}'}), status=400
            )
        config = await _experiments.edge_config(self.env)
        result = attribute(
            doc,
            config.experiments,
            parse_cookies(request.headers.get("cookie")),
            time.time(),
            lambda: secrets.token_hex(16),
            config.segment_secret,
        )
        flush = False
        for event in result.events:
            flush = _exposures.add(event) or flush
        if flush:
            self.ctx.waitUntil(self._flush_exposures())
        answer = {"queued": len(result.events), "skipped": result.skipped}
        return Response(
            json.dumps(answer), status=202, headers={"content-type": "application/json"}
        )

    async def _preview(self, query: str) -> Any:
        """A one-time preview link: trade its code at the origin (``EDGE_CONFIG_TOKEN``) for
        the scoped token, keep that in an HttpOnly cookie, redirect without it in the URL."""
        params = dict(parse_qsl(query))
        origin = _var(self.env, "ORIGIN_URL").rstrip("/")
        headers = {"content-type": "application/json"}
        token = _var(self.env, "EDGE_CONFIG_TOKEN")
        if token:
            headers["authorization"] = f"Bearer {token}"
        try:
            answer = await fetch(
                origin + "/v1/preview/exchange",
                method="POST",
                headers=headers,
                body=json.dumps({"code": params.get("code", "")}),
            )
            status = int(answer.status)
            doc = json.loads(await answer.text()) if status == 200 else {}
        except Exception:
            return Response("preview: the origin is unavailable; try again\n", status=502)
        grant = str(doc.get("token", "")).split(".")
        if status != 200 or len(grant) != 5 or not grant[3].isdigit():
            return Response("preview: this link was already used or has expired\n", status=410)
        forced = [(k, v) for k, v in params.items() if k.startswith("sx_")][:4]
        out = Headers.new()
        out.append("location", "/" + ("?" + urlencode(forced) if forced else ""))
        out.append("cache-control", "no-store")
        max_age = max(0, int(grant[3]) - int(time.time()))
        out.append(
            "set-cookie",
            f"{PREVIEW_COOKIE}={'.'.join(grant)}; Max-Age={max_age}; Path=/; HttpOnly; Secure; "
            "SameSite=Lax",
        )
        return Response("", status=303, headers=out)

    async def _flush_exposures(self) -> None:
        """Send the isolate's buffered exposures as one batch, a moment later (in waitUntil:
        never on the response path)."""
        await asyncio.sleep(EXPOSURE_BATCH_SECONDS)
        batch = _exposures.take()
        if not batch:
            return
        origin = str(getattr(self.env, "ORIGIN_URL", "") or "").rstrip("/")
        body = json.dumps({"events": batch}, separators=(",", ":"))
        keys = event_keys_for(_var(self.env, "SHELFEDGE_ENV") or None, _var(self.env, "EVENT_KEYS"))
        headers = {"content-type": "application/json"}
        headers.update(sign_batch(keys, body.encode(), time.time()))
        try:
            answer = await fetch(origin + EVENTS_PATH, method="POST", headers=headers, body=body)
            status = int(answer.status)
        except Exception:
            status = 0
        if status == 429 or status >= 500 or status == 0:
            _exposures.give_back(batch)
        elif status != 202:
            _exposures.dropped += len(batch)

    async def _revalidate(self, key: FragmentKey) -> None:
        try:
            await drive_async(revalidate(key, time.time()), self._perform)
        finally:
            _tracker.end(key.cache_key)

    async def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, CacheRead):
            return await self._cache_read(effect.key)
        if isinstance(effect, CacheWrite):
            await self._cache_write(effect.entry)
            return None
        return await self._origin_fetch(effect)

    async def _cache_read(self, key: FragmentKey) -> CacheEntry | None:
        cached = await caches.default.match(_cache_url(key))
        if cached is None:
            _decoded.pop(key.cache_key, None)
            return None
        stored_at = float(cached.headers.get(STORED_AT_HEADER) or 0)
        etag = cached.headers.get(ETAG_HEADER) or ""
        memo = _decoded.get(key.cache_key)
        if memo is not None and memo.stored_at == stored_at and memo.etag == etag:
            return memo
        try:
            entry = entry_from_bytes(await cached.text(), stored_at)
        except BundleFormatError:
            return None
        _decoded[key.cache_key] = entry
        return entry

    async def _cache_write(self, entry: CacheEntry) -> None:
        bundle = entry.bundle
        policy = bundle.policy
        keep = policy.max_age + max(policy.stale_while_revalidate, policy.stale_if_error)
        stored = Response(
            encode_bundle(bundle).decode("utf-8"),
            headers={
                "content-type": "application/json",
                "cache-control": f"public, max-age={keep}",
                "cache-tag": fit_tags(bundle.key, bundle.tags).cache_tag,
                ETAG_HEADER: bundle.etag,
                STORED_AT_HEADER: repr(entry.stored_at),
            },
        )
        await caches.default.put(_cache_url(bundle.key), stored.js_object)
        _decoded[bundle.key.cache_key] = entry
        for tag in bundle.tags:
            _by_tag.setdefault(tag, set()).add(bundle.key.cache_key)

    async def _origin_fetch(self, effect: OriginFetch) -> FetchResult:
        origin = str(getattr(self.env, "ORIGIN_URL", "") or "").rstrip("/")
        headers = {"if-none-match": effect.if_none_match} if effect.if_none_match else {}
        config = await _experiments.edge_config(self.env)
        try:
            response = await asyncio.wait_for(
                fetch(origin + effect.path, headers=headers), timeout=config.origin_timeout
            )
            body = await response.bytes() if response.status == 200 else b""
        except Exception as exc:
            return FetchResult(0, error=f"{type(exc).__name__}: {exc}")
        return FetchResult(int(response.status), bytes(body))

    async def _purge(self, request: Any) -> Any:
        token = _var(self.env, "PURGE_TOKEN")
        sent = str(request.headers.get("authorization") or "").encode("utf-8", "surrogateescape")
        if not token or not hmac.compare_digest(sent, f"Bearer {token}".encode()):
            return Response(
                "forbidden: set PURGE_TOKEN and send it as a Bearer token\n", status=403
            )
        try:
            tags = json.loads(await request.text())["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ValueError("'tags' must be a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            return Response(json.dumps({"error": str(exc)}), status=400)
        doomed: set[str] = set()
        for tag in tags:
            doomed |= _by_tag.pop(tag, set())
            named = key_of_bundle_tag(tag)
            if named is not None:
                doomed.add(named.cache_key)
        for cache_key in doomed:
            await caches.default.delete(f"{CACHE_HOST}/{cache_key}")
            _decoded.pop(cache_key, None)
        return Response(
            json.dumps({"purged": len(doomed)}), headers={"content-type": "application/json"}
        )

    async def _pass_through(self, request: Any, path: str, query: str) -> Any:
        origin = str(getattr(self.env, "ORIGIN_URL", "") or "").rstrip("/")
        target = origin + path + (f"?{query}" if query else "")
        headers = {str(k): str(v) for k, v in request.headers.items() if str(k).lower() != "host"}
        body = None
        if request.method not in ("GET", "HEAD"):
            declared = str(request.headers.get("content-length") or "")
            if not declared.isdigit() or int(declared) > MAX_PASS_THROUGH_BODY:
                return Response("send a Content-Length of at most 1 MiB\n", status=413)
            body = await request.text()
        try:
            answer = await fetch(target, method=request.method, headers=headers, body=body)
        except Exception as exc:
            return Response(f"origin unavailable: {type(exc).__name__}\n", status=502)
        if not str(answer.headers.get("content-type") or "").startswith("text/html"):
            return answer
        config = await _experiments.edge_config(self.env)
        visitor = page_visitor_cookie(request.headers.get("cookie"), secrets.token_hex(16), config)
        if visitor is None or "se_vid=" in str(answer.headers.get("set-cookie") or ""):
            return answer
        out = Headers.new()
        for name, value in answer.headers.items():
            out.append(str(name), str(value))
        out.append("set-cookie", visitor)  # one id for every slot of this page
        return Response(await answer.text(), status=int(answer.status), headers=out)
