"""The Cloudflare Python Worker: the edge core carried out with the Cache API, KV, fetch and
waitUntil.

The ``/se/*`` surface is `edge.surface`'s (route table, bounded body reads, purge and beacon
parsing); ``POST /se/purge`` is refused unless ``PURGE_TOKEN`` is set and sent as a Bearer token
(local and dev runs: in production purges go through the zone's purge-by-tag API, which removes
Cache API entries stored with a ``Cache-Tag`` header). ``/se/metrics`` is not served by the
Worker. Only the allow-list ``PASS_THROUGH`` (default ``/`` and ``/static/``; never the admin
UI, the APIs or ``/metrics``) is passed through to ``ORIGIN_URL``; anything else is a 404
(`edge.deploy_policy`). ``GET /se/preview`` trades a one-time preview link at the origin for a
scoped preview token kept in an HttpOnly cookie.

Secrets and variables: ``SHELFEDGE_ENV`` (absent means production), ``SEGMENT_SECRET`` and
``EVENT_KEYS`` (outside dev both are required and must not be the public development values:
the Worker answers 500 naming the variable), ``DEBUG_HEADERS=1`` (X-Shelfedge-Experiment on
every slot), ``CONSENT_POLICY=required`` (no identifier before consent). Event batches to the
origin are signed with the newest ``EVENT_KEYS`` key (`fragments.batch_signing`).

An HTML page answered to a GET is composed on its way through: its slot placeholders are
filled with this shopper's slots as it streams (`edge.adapters.workers_compose`, over
`edge.composer`).

Experiments: the published configuration is read from the ``CONFIG`` KV namespace (key
``edge-config``, the JSON of `fragments.experiment_codec.config_to_json`, which the origin serves as
``GET /v1/edge-config``; docs/experiments.md shows how to copy it there) and kept per isolate
for `CONFIG_TTL_S`. No binding or no key means the empty configuration (everyone sees
control); a failed read or a value that does not decode keeps the last good configuration.
Exposures and attributed storefront beacons are buffered per isolate and sent to the origin's
``POST /v1/events`` in background batches (``waitUntil``), under `edge.event_buffer`'s policy;
the storefront's behaviour beacons (`edge.clickstream_beacons`) likewise, in their own buffer,
to ``POST /v1/clickstream``.

Segments: a consenting shopper's signed segment cookie is refreshed from the origin's context
service (``GET /v1/context/{visitor}/segment`` with ``EDGE_CONFIG_TOKEN``) in ``waitUntil`` when
it is older than ``SEGMENT_REFRESH_AFTER_S`` seconds (default 60; a bad value answers 500
naming it) or this isolate forwarded newer behaviour of theirs; the refreshed cookie is kept in
the isolate's memory (bounded; `edge.segment_refresh` says why not KV) and decides and is set on
their next response through this isolate.

Cloudflare's Cache API implements neither stale-while-revalidate nor stale-if-error, so entries
are stored for max-age + max(swr, sie) with their store time in a header, and `edge.flow` decides
freshness itself. Decoded bundles are memoised per isolate by (cache key, ETag, stored time), so
a hit costs one cache match and no JSON decode. `WorkersTransport` is the Worker's
`edge.transport.AsyncTransport`; JavaScript errors from fetch become an unanswered `FetchResult`.

Runs only inside workerd (`workers` and `js` exist nowhere else): nothing may import it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from js import Headers, caches  # type: ignore[import-not-found]
from workers import Response, WorkerEntrypoint, fetch  # type: ignore[import-not-found]

from edge import surface
from edge.adapters import workers_compose
from edge.browser_events import attribute
from edge.cache import CacheEntry, RevalidationTracker, entry_from_bytes
from edge.clickstream_beacons import track
from edge.compose import Placeholder
from edge.composer import page_request, slot_request
from edge.config import EdgeConfig
from edge.context import parse_cookies
from edge.deploy_policy import event_keys_for, parse_allow_list, pass_through_allowed, refusals
from edge.errors import BadSeRequest, WorkerMisconfigured
from edge.event_buffer import (
    CLICKSTREAM_FLUSH_DELAY_S,
    FLUSH_DELAY_S,
    ORIGIN_CLICKSTREAM_PATH,
    ORIGIN_EVENTS_PATH,
    Delivery,
    E,
    EventBuffer,
    encode_batch,
)
from edge.flow import (
    EdgeResponse,
    SlotRequest,
    drive_async,
    handle_slot,
    page_visitor_cookie,
    revalidate,
    with_server_timing,
)
from edge.segment_refresh import (
    BEHAVIOUR_ASK_DELAY_S,
    REFRESH_SETTING,
    Prepared,
    Refreshed,
    SegmentRefresher,
    parse_answer,
    refresh_after_seconds,
    refresh_visitor,
    segment_path,
)
from edge.transport import FetchResult, OriginFetch
from fragments.batch_signing import sign_batch
from fragments.bundle import encode_bundle
from fragments.clickstream import ClickEvent
from fragments.errors import BundleFormatError
from fragments.experiment_codec import config_from_json
from fragments.experiments import EMPTY_CONFIG, EdgeExperimentConfig
from fragments.headers import fit_tags
from fragments.ids import FragmentKey
from fragments.preview_tokens import PREVIEW_COOKIE
from fragments.segment_cookie import DEV_SEGMENT_SECRET
from fragments.slots import load_slots
from fragments.tags import key_of_bundle_tag
from fragments.wire_events import ExperimentEvent

CACHE_HOST = "https://shelfedge-cache.internal"
STORED_AT_HEADER = "x-shelfedge-stored-at"
ETAG_HEADER = "etag"
CONFIG_KEY = "edge-config"
"""Key of the published experiment configuration in the ``CONFIG`` KV namespace."""
CONFIG_TTL_S = 5.0
"""Seconds an isolate keeps the configuration before reading KV again (the origin's max-age)."""
_JSON_HEADERS = {"content-type": "application/json"}
_R = TypeVar("_R")
BodyReader = Callable[[AsyncIterator[bytes], str | None], Awaitable[_R]]


class _Events(Generic[E]):
    """The isolate's events of one stream waiting to leave (to `path`, `delay` seconds after
    the first), and whether a flush is scheduled."""

    def __init__(self, path: str, delay: float) -> None:
        self.buffer: EventBuffer[E] = EventBuffer()
        self.flush_pending = False
        self.path = path
        self.delay = delay

    def add(self, event: E) -> bool:
        """Buffer an event; True when the caller should schedule a flush."""
        if not self.buffer.add(event) or self.flush_pending:
            return False
        self.flush_pending = True
        return True


_events: _Events[ExperimentEvent] = _Events(ORIGIN_EVENTS_PATH, FLUSH_DELAY_S)
_clicks: _Events[ClickEvent] = _Events(ORIGIN_CLICKSTREAM_PATH, CLICKSTREAM_FLUSH_DELAY_S)
_segments: list[SegmentRefresher] = []
"""The isolate's segment refresher (made with the configuration, once)."""
_tracker = RevalidationTracker()
_decoded: dict[str, CacheEntry] = {}
_by_tag: dict[str, set[str]] = {}


MAX_PASS_THROUGH_BODY = 1024 * 1024


def _var(env: Any, name: str) -> str:
    return str(getattr(env, name, "") or "")


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
            try:
                refresh_after = refresh_after_seconds(_var(env, REFRESH_SETTING))
            except ValueError as exc:
                problems = [*problems, str(exc)]
            if problems:
                raise WorkerMisconfigured("; ".join(problems))
            self._base = replace(
                EdgeConfig.from_slots(load_slots(), secret or DEV_SEGMENT_SECRET),
                debug_headers=_var(env, "DEBUG_HEADERS") == "1",
                consent_required=_var(env, "CONSENT_POLICY") == "required",
                segment_refresh_after_s=refresh_after,
            )
            _segments[:] = [SegmentRefresher(refresh_after)]
        base = self._base
        experiments = await self._current(env)
        if self._edge is None or self._edge.experiments is not experiments:
            self._edge = replace(base, experiments=experiments)
        return self._edge

    def secret(self) -> str:
        """The segment secret (after `edge_config` ran once)."""
        return self._base.segment_secret if self._base is not None else DEV_SEGMENT_SECRET

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


def _origin(env: Any) -> str:
    return str(getattr(env, "ORIGIN_URL", "") or "").rstrip("/")


class WorkersTransport:
    """The Worker's `AsyncTransport`: the Cache API (with the isolate's decode memo) and fetch."""

    def __init__(self, env: Any) -> None:
        self.env = env

    async def cache_read(self, key: FragmentKey) -> CacheEntry | None:
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

    async def cache_write(self, entry: CacheEntry) -> None:
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

    async def origin_fetch(self, effect: OriginFetch) -> FetchResult:
        headers = {"if-none-match": effect.if_none_match} if effect.if_none_match else {}
        config = await _experiments.edge_config(self.env)
        try:
            response = await asyncio.wait_for(
                fetch(_origin(self.env) + effect.path, headers=headers),
                timeout=config.origin_timeout,
            )
            body = await response.bytes() if response.status == 200 else b""
        except Exception as exc:  # JavaScript errors and the timeout: no answer
            return FetchResult(0, error=f"{type(exc).__name__}: {exc}")
        return FetchResult(int(response.status), bytes(body))


async def _body_chunks(request: Any) -> AsyncGenerator[bytes, None]:
    """The request body as it arrives (a JavaScript ReadableStream), cancelled when abandoned."""
    stream = request.body
    if stream is None:
        return
    reader = stream.getReader()
    try:
        while True:
            chunk = await reader.read()
            if chunk.done:
                return
            if chunk.value is not None:
                yield chunk.value.to_bytes()
    finally:
        await reader.cancel()


async def _read_body(request: Any, read: BodyReader[_R]) -> _R:
    """A ``/se/*`` body read (bounded) and parsed by `edge.surface`; the stream is released."""
    chunks = _body_chunks(request)
    try:
        return await read(chunks, request.headers.get("content-length"))
    finally:
        await chunks.aclose()


class Default(WorkerEntrypoint):  # type: ignore[misc]
    """The Worker's default entrypoint."""

    async def fetch(self, request: Any) -> Any:
        try:
            await _experiments.edge_config(self.env)
        except WorkerMisconfigured as exc:
            return Response(f"edge misconfigured: {exc}\n", status=500)
        url = urlsplit(str(request.url))
        route = surface.match_route(url.path)
        if route is None or route.endpoint is surface.Endpoint.METRICS:
            if not pass_through_allowed(url.path, parse_allow_list(_var(self.env, "PASS_THROUGH"))):
                return Response("not found\n", status=404)
            return await self._pass_through(request, url.path, url.query)
        if not route.allows(str(request.method)):
            return Response("method not allowed\n", status=405, headers={"allow": route.allow})
        if route.endpoint is surface.Endpoint.SLOT:
            return await self._slot(request, route.slot, url.query)
        if route.endpoint is surface.Endpoint.PREVIEW:
            return await self._preview(url.query)
        try:
            if route.endpoint is surface.Endpoint.PURGE:
                return await self._purge(request)
            return await self._beacon(request)
        except BadSeRequest as exc:
            return Response(surface.error_answer(exc), status=exc.status, headers=_JSON_HEADERS)

    def _prepare_segment(self, request: Any, now: float) -> Prepared:
        """The request's headers with the isolate's newer segment cookie (if any) and its
        ``Set-Cookie``; a due refresh goes to ``waitUntil``."""
        headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
        refresher = _segments[0]
        prepared = refresher.prepare(headers, now, _experiments.secret())
        if prepared.refresh is not None:
            self.ctx.waitUntil(
                refresh_visitor(refresher, prepared.refresh, self._ask_segment, time.time)
            )
        return prepared

    async def _ask_segment(self, visitor: str) -> Refreshed | None:
        """The origin's signed segment for `visitor` (None: no usable answer)."""
        config = await _experiments.edge_config(self.env)
        token = _var(self.env, "EDGE_CONFIG_TOKEN")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            answer = await asyncio.wait_for(
                fetch(_origin(self.env) + segment_path(visitor), headers=headers),
                timeout=config.origin_timeout,
            )
            status = int(answer.status)
            body = bytes(await answer.bytes()) if status == 200 else b""
        except Exception:  # JavaScript errors and the timeout: no answer
            return None
        return parse_answer(status, body, visitor, time.time(), config.segment_secret)

    async def _slot(self, request: Any, slot: str, query: str) -> Any:
        config = await _experiments.edge_config(self.env)
        now = time.time()
        segment = self._prepare_segment(request, now)
        req = SlotRequest(
            slot=slot,
            headers=segment.headers,
            query=surface.parse_query(query),
            now=now,
            fresh_visitor_id=secrets.token_hex(16),
        )
        transport = WorkersTransport(self.env)
        response, core_seconds = await drive_async(handle_slot(req, config), transport)
        self._after_slot(response, transport)
        out = Headers.new()
        for name, value in with_server_timing(response, core_seconds):
            out.append(name, value)  # append: two Set-Cookie headers must both survive
        if segment.set_cookie is not None:
            out.append("set-cookie", segment.set_cookie)
        return Response(response.body, status=response.status, headers=out)

    def _after_slot(self, response: EdgeResponse, transport: WorkersTransport) -> None:
        """A slot decision's background work: revalidation, exposure (in ``waitUntil``)."""
        if response.revalidate is not None and _tracker.try_begin(
            response.revalidate.cache_key, time.time()
        ):
            self.ctx.waitUntil(self._revalidate(response.revalidate, transport))
        if response.exposure is not None and _events.add(
            response.exposure.to_event(secrets.token_hex(16))
        ):
            self.ctx.waitUntil(self._flush(_events))

    async def _compose(
        self, request: Any, upstream: Any, path: str, query: str, shell: float
    ) -> Any:
        """The origin's HTML page with this shopper's slots in it (`workers_compose`)."""
        config = await _experiments.edge_config(self.env)
        now = time.time()
        segment = self._prepare_segment(request, now)
        headers = dict(segment.headers)
        page, set_cookie = page_request(
            headers, path, surface.parse_query(query), now, config, secrets.token_hex(16)
        )
        set_cookies = [c for c in (set_cookie, segment.set_cookie) if c is not None]
        transport = WorkersTransport(self.env)

        async def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
            outcome = await drive_async(
                handle_slot(slot_request(page, placeholder), config), transport
            )
            self._after_slot(outcome[0], transport)
            return outcome

        def adopt(task: Any) -> None:
            self.ctx.waitUntil(workers_compose.settled(task))

        if str(getattr(self.env, "COMPOSE_REWRITER", "") or "") == "htmlrewriter":
            return workers_compose.compose_htmlrewriter(
                upstream, decide, config.compose_budget, adopt, set_cookies, shell
            )
        return workers_compose.compose_stream(
            upstream, _body_chunks(upstream), decide, config.compose_budget, adopt, set_cookies,
            shell,
        )  # fmt: skip

    async def _beacon(self, request: Any) -> Any:
        """Storefront clicks / add-to-carts: attributed to the visitor's sticky variants here
        (the browser cannot read the HttpOnly cookies), then batched like exposures; views,
        cart changes, purchases and searches go to the clickstream the same way."""
        doc = await _read_body(request, surface.read_beacon)
        config = await _experiments.edge_config(self.env)
        cookies = parse_cookies(request.headers.get("cookie"))
        now = time.time()
        result = attribute(
            doc,
            config.experiments,
            cookies,
            now,
            lambda: secrets.token_hex(16),
            config.segment_secret,
        )
        flush = False
        for event in result.events:
            flush = _events.add(event) or flush
        if flush:
            self.ctx.waitUntil(self._flush(_events))
        tracking = track(doc, cookies, now, lambda: secrets.token_hex(16))
        flush = False
        for click in tracking.events:
            flush = _clicks.add(click) or flush
        if flush:
            self.ctx.waitUntil(self._flush(_clicks))
        if tracking.events:
            visitor = tracking.events[0].visitor
            if _segments[0].note_behaviour(visitor, now):
                chase = refresh_visitor(
                    _segments[0],
                    visitor,
                    self._ask_segment,
                    time.time,
                    first_delay=BEHAVIOUR_ASK_DELAY_S,
                )
                self.ctx.waitUntil(chase)
        answer = surface.beacon_answer(
            len(result.events), result.skipped, len(tracking.events), tracking.skipped
        )
        return Response(answer, status=202, headers=_JSON_HEADERS)

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

    async def _flush(self, stream: _Events[Any]) -> None:
        """Send a stream's buffered events in batches, a moment later (in waitUntil: never
        on the response path); stop at the first batch that must be retried."""
        await asyncio.sleep(stream.delay)
        stream.flush_pending = False
        keys = event_keys_for(_var(self.env, "SHELFEDGE_ENV") or None, _var(self.env, "EVENT_KEYS"))
        while batch := stream.buffer.take():
            body = encode_batch(batch)
            headers = {**_JSON_HEADERS, **sign_batch(keys, body, time.time())}
            try:
                answer = await fetch(
                    _origin(self.env) + stream.path,
                    method="POST",
                    headers=headers,
                    body=body.decode("utf-8"),
                )
                status = int(answer.status)
            except Exception:  # a JavaScript network error: no answer, retried later
                status = 0
            if stream.buffer.settle(batch, status) is Delivery.RETRY:
                return

    async def _revalidate(self, key: FragmentKey, transport: WorkersTransport) -> None:
        try:
            await drive_async(revalidate(key, time.time()), transport)
        finally:
            _tracker.end(key.cache_key)

    async def _purge(self, request: Any) -> Any:
        token = str(getattr(self.env, "PURGE_TOKEN", "") or "")
        if not surface.purge_authorized(token, request.headers.get("authorization")):
            return Response(surface.PURGE_FORBIDDEN, status=403)
        tags = await _read_body(request, surface.read_purge_tags)
        doomed: set[str] = set()
        for tag in tags:
            doomed |= _by_tag.pop(tag, set())
            named = key_of_bundle_tag(tag)
            if named is not None:
                doomed.add(named.cache_key)
        for cache_key in doomed:
            await caches.default.delete(f"{CACHE_HOST}/{cache_key}")
            _decoded.pop(cache_key, None)
        return Response(surface.purge_answer(len(doomed), len(tags)), headers=_JSON_HEADERS)

    async def _pass_through(self, request: Any, path: str, query: str) -> Any:
        target = _origin(self.env) + path + (f"?{query}" if query else "")
        headers = {str(k): str(v) for k, v in request.headers.items() if str(k).lower() != "host"}
        body = None
        if request.method not in ("GET", "HEAD"):
            declared = str(request.headers.get("content-length") or "")
            if not declared.isdigit() or int(declared) > MAX_PASS_THROUGH_BODY:
                return Response("send a Content-Length of at most 1 MiB\n", status=413)
            body = await request.text()
        started = time.perf_counter()
        try:
            answer = await fetch(target, method=request.method, headers=headers, body=body)
        except Exception as exc:
            return Response(f"origin unavailable: {type(exc).__name__}\n", status=502)
        if request.method == "GET" and workers_compose.composable(answer):
            return await self._compose(request, answer, path, query, time.perf_counter() - started)
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
