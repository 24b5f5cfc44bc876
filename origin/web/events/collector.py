"""``POST /v1/events``: accept a signed batch of experiment events from an edge and produce
them to Kafka.

Body ``{"events": [...]}`` (see `origin.events.schema`), signed by the edge
(`fragments.batch_signing`). Checks, in order: the body size (413); the signature, its key id,
its timestamp (replay window) and its batch id not seen before (401, a problem naming which);
the edge key's token bucket, shared by every origin process in RedisLike (429 + Retry-After);
strict JSON with an ``events`` list (400); the number of events (413); each event's fields
(400 naming ``events[i].field``). Events about experiments or variants that do not exist are
dropped and counted (``shelfedge_events_rejected_total{reason=...}``), never forwarded. The
known rest goes to Kafka or the answer is 503 (never a hang): 202 means every accepted event
was acknowledged by the broker. Browsers never reach this endpoint: they post to the edge's
``/se/events``, and the edge signs. It never logs events and never waits on Kafka beyond the
sink's send timeout.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fragments.batch_signing import (
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    BatchSignature,
    SigningKeys,
    verify_batch,
)
from fragments.errors import BatchSignatureInvalid, JsonRejected
from fragments.strict_json import loads
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.token_bucket import RedisTokenBucket
from origin.errors import StoreUnavailable
from origin.events.errors import EventRejected, EventsUnavailable
from origin.events.known import KnownExperiments
from origin.events.schema import ExperimentEvent, parse_event
from origin.events.sink import EventSink
from origin.web import problems
from origin.web.metrics import OriginMetrics

MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS = 500


@dataclass(slots=True)
class CollectorState:
    """Reached through ``app.state.events``."""

    sink: EventSink
    limiter: RedisTokenBucket
    keys: SigningKeys
    known: KnownExperiments
    redis: RedisLike
    metrics: OriginMetrics
    redis_timeout: float = 0.25
    accepted: int = 0
    rejected: int = 0
    unavailable: int = 0

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected += n
        self.metrics.events_rejected.labels(reason).inc(n)


async def admit_signed_batch(
    request: Request, state: CollectorState
) -> tuple[bytes, BatchSignature] | Response:
    """The body and signature of a signed edge batch within its rate limit, or the problem to
    answer (413, 401, 429, 503). Every event endpoint admits batches through here."""
    body = await _bounded_body(request)
    if body is None:
        state.reject("too_large")
        return problems.problem(
            413,
            "Payload too large",
            f"the body is over {MAX_BODY_BYTES} bytes; send smaller batches",
            invalid={"body": f"at most {MAX_BODY_BYTES} bytes"},
        )
    try:
        signed = verify_batch(state.keys, request.headers.get(SIGNATURE_HEADER), body, time.time())
        await _first_use(state, signed)
        wait = await state.limiter.take(signed.kid)
    except BatchSignatureInvalid as exc:
        state.reject(f"signature_{exc.reason}")
        return problems.problem(
            401,
            "Unauthorized",
            f"event batches must be signed by an edge: {exc}",
            invalid={SIGNATURE_HEADER: exc.reason},
            headers={"WWW-Authenticate": 'Shelfedge-HMAC realm="events"'},
        )
    except StoreUnavailable:
        state.unavailable += 1
        return problems.unavailable("the event collector's state store is unavailable", 2)
    if wait > 0:
        state.reject("rate_limited")
        seconds = RedisTokenBucket.retry_after(wait)
        return problems.problem(
            429,
            "Too many requests",
            f"edge key {signed.kid!r} sends batches too fast; retry after {seconds}s "
            "(send larger batches less often)",
            headers={"Retry-After": str(seconds)},
        )
    return body, signed


async def post_events(request: Request) -> Response:
    state: CollectorState = request.app.state.events
    admitted = await admit_signed_batch(request, state)
    if isinstance(admitted, Response):
        return admitted
    body, signed = admitted
    try:
        events = _parse(body, time.time())
    except EventRejected as exc:
        state.reject("malformed")
        status = 413 if exc.field == "events" and "at most" in exc.reason else 400
        title = "Payload too large" if status == 413 else "Bad request"
        return problems.problem(status, title, str(exc), invalid={exc.field: exc.reason})
    try:
        known, unknown = await _known_only(state, events)
        if known:
            await state.sink.send(known)
    except StoreUnavailable:
        state.unavailable += 1
        return problems.unavailable("the experiment store is unavailable", 2)
    except EventsUnavailable as exc:
        state.unavailable += 1
        await _forget(state, signed)  # not accepted: the same signed batch may be retried
        return problems.unavailable(str(exc), retry_after=2)
    state.accepted += len(known)
    return JSONResponse({"accepted": len(known), "rejected": unknown}, status_code=202)


async def _first_use(state: CollectorState, signed: BatchSignature) -> None:
    """Remember the batch id for twice the replay window; a second use is a replay."""
    fresh = await bounded(
        state.redis.set(
            keys.event_batch_key(signed.kid, signed.batch_id), b"1", nx=True, ex=2 * REPLAY_WINDOW_S
        ),
        state.redis_timeout,
        "check batch id",
    )
    if not fresh:
        raise BatchSignatureInvalid("replayed", "this batch id was already accepted")


async def _forget(state: CollectorState, signed: BatchSignature) -> None:
    with contextlib.suppress(StoreUnavailable):  # the edge re-signs each attempt anyway
        await bounded(
            state.redis.delete(keys.event_batch_key(signed.kid, signed.batch_id)),
            state.redis_timeout,
            "forget batch id",
        )


async def _known_only(
    state: CollectorState, events: list[ExperimentEvent]
) -> tuple[list[ExperimentEvent], dict[str, int]]:
    known: list[ExperimentEvent] = []
    unknown = {"unknown_experiment": 0, "unknown_variant": 0}
    for e in events:
        variants = await state.known.variants(e.experiment)
        if variants is None:
            unknown["unknown_experiment"] += 1
        elif e.variant not in variants:
            unknown["unknown_variant"] += 1
        else:
            known.append(e)
    for reason, n in unknown.items():
        if n:
            state.reject(reason, n)
    return known, unknown


async def _bounded_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return body


def _parse(body: bytes, now: float) -> list[ExperimentEvent]:
    try:
        doc = loads(body)
    except JsonRejected as exc:
        raise EventRejected("body", str(exc)) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise EventRejected("events", 'send {"events": [...]}')
    raw = doc["events"]
    if not raw:
        raise EventRejected("events", "send at least one event")
    if len(raw) > MAX_EVENTS:
        raise EventRejected("events", f"at most {MAX_EVENTS} events per request, got {len(raw)}")
    return [parse_event(item, now, f"events[{i}]") for i, item in enumerate(raw)]
