"""Keep the shopper's signed segment cookie current without a round trip on the hot path.

The edge always serves from the segment cookie it has (`fragments.segment_cookie`); when that
cookie is due for a refresh it asks the origin's context service in the background
(``GET /v1/context/{visitor}/segment``: ``waitUntil`` in the Worker, a task in the local edge),
keeps the freshly signed cookie here, and the NEXT response of that visitor is decided with it
and sets it (``Set-Cookie``). The decisions are pure functions; `SegmentRefresher` holds the
per-visitor state, bounded; the adapters do the I/O.

A refresh is due (`refresh_due`) for a consenting visitor with a well-formed id when their
cookie is missing, or older than the configured age (``segment_refresh_after_s``, issue time =
expiry minus `fragments.segment_cookie.LIFETIME_S`), or when this edge forwarded behaviour of
theirs (`SegmentRefresher.note_behaviour`, at the events' own time) that the origin's last
answer did not reflect yet (its ``as_of``, the newest event time in the profile the segment was
decided from, is older). A refresh whose answer does not reflect the behaviour yet is asked
again after `RETRY_DELAY_S`, at most `MAX_ATTEMPTS` times for the same behaviour (`next_attempt`;
behaviour noted meanwhile is chased too, with a fresh budget, up to `MAX_ASKS` asks in all): the
context processor folds the clickstream within a few hundred milliseconds; when it lags longer,
the next refresh of that visitor waits `GIVE_UP_DELAY_S`. At most one refresh per visitor is in
flight, and a visitor is not asked about again sooner than `RETRY_DELAY_S` after the last ask
ended.

Behaviour starts the chase itself (`note_behaviour` says so; the adapter runs `refresh_visitor`
in the background of the beacon), so the first page after the processor folded it is decided
with the new segment. Were the chase left to the next page request, a request that came within
`RETRY_DELAY_S` of the previous refresh's end would start none, and the segment would wait for
the page after it.

Which cookie decides a request (`choose`): a kept cookie (every one verified for its visitor)
that the browser does not have yet, unless the browser's expires later; otherwise the
browser's, and a kept cookie the browser already has (or has outgrown) is forgotten.

Where the kept cookies live: in the edge's memory (an isolate's in the Worker), at most
`MAX_VISITORS` visitors, least recently used evicted. Not KV: KV is eventually consistent (a
write may take up to a minute to be read elsewhere, which defeats the one-second target), is
billed and rate-limited per write, and would replicate per-visitor data across the world. Not
the Cache API: a visitor id would become a cache key. A visitor whose next request reaches
another isolate simply gets it refreshed there; losing the kept cookie costs one refresh,
never a wrong segment (every kept cookie is signed for its visitor).

Pure: standard library, `edge.context`, `edge.event_buffer` and `fragments` only;
`refresh_visitor` runs one refresh through the adapter's `Ask` (its only I/O) and
``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from edge.context import CONSENT_COOKIE, VISITOR_ID, parse_cookies
from edge.event_buffer import CLICKSTREAM_FLUSH_DELAY_S
from fragments.segment_cookie import COOKIE_NAME, LIFETIME_S, VISITOR_COOKIE, read_segment

DEFAULT_REFRESH_AFTER_S = 60.0
"""Default age (seconds) after which a segment cookie is refreshed in the background."""
MAX_REFRESH_AFTER_S = LIFETIME_S / 2
"""Largest allowed age: a cookie must be refreshed well before it expires."""
RETRY_DELAY_S = 0.1
"""Between two asks of a chase, and from a visitor's last ask to the next refresh. The context
processor folds a view 0.13-0.3 s after its beacon; the edge sees the new segment at the first
ask after that, so this is what the chase adds at worst (0.2 s before the sixth session put a
visible second step into the behaviour -> segment p99, bench.context_latency)."""
MAX_ATTEMPTS = 20
"""Asks for one behaviour before a refresh gives up on it (2 s)."""
MAX_ASKS = 3 * MAX_ATTEMPTS
"""Asks of one refresh in all, however long the visitor's behaviour keeps moving on."""
BEHAVIOUR_ASK_DELAY_S = CLICKSTREAM_FLUSH_DELAY_S
"""A chase a beacon started asks first this long after it: the behaviour leaves the edge in
the clickstream's next batch, so no answer sooner could reflect it."""
GIVE_UP_DELAY_S = 5.0
"""After `MAX_ATTEMPTS` without the behaviour reflected (the processor lags or is down), the
visitor's next refresh waits this long."""
MAX_VISITORS = 10_000
MAX_IN_FLIGHT = 256
"""Refreshes of one edge process or isolate running at once. Beacons start chases, and a
hostile caller can send them under ever new visitor ids: this bounds the asks the origin gets
from one edge (at most `MAX_IN_FLIGHT` / `RETRY_DELAY_S` a second, when the context processor
lags). A refresh not started for it is started by a later request of that visitor."""
REFRESH_SETTING = "SEGMENT_REFRESH_AFTER_S"


def refresh_after_seconds(raw: object) -> float:
    """The refresh age setting (seconds, 0 < age <= `MAX_REFRESH_AFTER_S`); None or blank is
    the default. ValueError names the setting and the fix."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return DEFAULT_REFRESH_AFTER_S
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(raw, bool) or not 0 < value <= MAX_REFRESH_AFTER_S:
        raise ValueError(
            f"{REFRESH_SETTING}: expected seconds in (0, {MAX_REFRESH_AFTER_S:g}], got {raw!r}"
        )
    return value


def segment_path(visitor: str) -> str:
    """The origin's path for a visitor's segment (the refresh call)."""
    return f"/v1/context/{visitor}/segment"


@dataclass(frozen=True, slots=True)
class Refreshed:
    """The origin's answer to a refresh: a cookie value signed for the visitor."""

    cookie: str
    expires_at: int
    as_of: float | None
    """The newest event time the segment reflects (None: no profile yet)."""


def parse_answer(
    status: int, body: bytes, visitor: str, now: float, secret: str
) -> Refreshed | None:
    """The refresh answer, or None when it is not a 200 carrying a cookie that verifies for
    `visitor` (anything else is ignored: the edge keeps what it has)."""
    if status != 200:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    cookie = doc.get("cookie")
    grant = read_segment(cookie if isinstance(cookie, str) else None, now, secret, visitor)
    if grant is None or not isinstance(cookie, str):
        return None
    as_of = doc.get("as_of")
    if isinstance(as_of, bool) or not isinstance(as_of, int | float):
        return Refreshed(cookie, grant.expires_at, None)
    return Refreshed(cookie, grant.expires_at, float(as_of))


def choose(
    browser: str | None, browser_expires_at: int | None, kept: Refreshed | None
) -> Refreshed | None:
    """The kept cookie when it should decide the request, else None (the browser's valid
    cookie `browser`, expiring at `browser_expires_at`, decides): when the browser does not
    have it already and its is not newer. Expiry is in whole seconds, so a kept cookie signed
    in the same second as the browser's still wins (kept cookies are the newest answers)."""
    if kept is None or kept.cookie == browser:
        return None
    if browser_expires_at is not None and kept.expires_at < browser_expires_at:
        return None
    return kept


def refresh_due(
    issued_at: float | None, now: float, max_age: float, behaved_at: float, reflected: float
) -> bool:
    """Whether a consenting visitor's segment should be asked for: no cookie (`issued_at`
    None), a cookie older than `max_age`, or behaviour newer than what the last answer
    reflected."""
    if issued_at is None or now - issued_at >= max_age:
        return True
    return behaved_at > reflected


def next_attempt(answer: Refreshed | None, behaved_at: float, asked: int) -> float | None:
    """Seconds to wait before asking again, or None when this refresh is done: it reflects
    the visitor's behaviour (or there is none to wait for), or `asked` (the asks made for the
    behaviour chased, 0 when newer behaviour just came) reached `MAX_ATTEMPTS`. A failed ask
    (None) is retried the same way."""
    if asked >= MAX_ATTEMPTS:
        return None
    if answer is not None and (behaved_at == 0 or (answer.as_of or 0.0) >= behaved_at):
        return None
    return RETRY_DELAY_S


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    """What a request does about the segment cookie."""

    visitor: str
    use_cookie: str | None = None
    """A kept cookie that decides this request instead of the browser's (and is set)."""
    set_cookie: str | None = None
    """The ``Set-Cookie`` value that hands the kept cookie to the browser."""
    refresh: bool = False
    """Ask the origin in the background (the caller began it: `SegmentRefresher.end` it)."""


def set_cookie_value(cookie: str, expires_at: int, now: float) -> str:
    """The ``Set-Cookie`` header value of a segment cookie."""
    max_age = max(0, int(expires_at - now))
    return f"{COOKIE_NAME}={cookie}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=Lax"


def with_cookie(
    headers: Mapping[str, str], cookies: Mapping[str, str], value: str
) -> dict[str, str]:
    """Lower-cased request headers as if the browser had sent segment cookie `value`."""
    merged = {**cookies, COOKIE_NAME: value}
    out = dict(headers)
    out["cookie"] = "; ".join(f"{name}={v}" for name, v in merged.items())
    return out


@dataclass(frozen=True, slots=True)
class Prepared:
    """`SegmentRefresher.prepare`'s answer."""

    headers: Mapping[str, str]
    set_cookie: str | None = None
    refresh: str | None = None
    """The visitor whose segment to refresh in the background (then `refresh_visitor`)."""


@dataclass(slots=True)
class _Visitor:
    kept: Refreshed | None = None
    behaved_at: float = 0.0
    reflected: float = 0.0
    in_flight: bool = False
    quiet_until: float = 0.0
    gave_up: bool = False
    """The last refresh gave up: `quiet_until` is its longer pause."""


class SegmentRefresher:
    """Per-visitor refresh state of one edge process or isolate (bounded, LRU)."""

    def __init__(self, max_age: float, *, max_visitors: int = MAX_VISITORS) -> None:
        self.max_age = refresh_after_seconds(max_age)
        if max_visitors < 1:
            raise ValueError(f"max_visitors must be at least 1, got {max_visitors}")
        self.max_visitors = max_visitors
        self._visitors: OrderedDict[str, _Visitor] = OrderedDict()
        self.in_flight = 0
        """Refreshes begun and not ended (at most `MAX_IN_FLIGHT`)."""

    def __len__(self) -> int:
        return len(self._visitors)

    def _get(self, visitor: str) -> _Visitor:
        state = self._visitors.get(visitor)
        if state is None:
            state = self._visitors[visitor] = _Visitor()
            while len(self._visitors) > self.max_visitors:
                self._visitors.popitem(last=False)
        else:
            self._visitors.move_to_end(visitor)
        return state

    def note_behaviour(self, visitor: str, at: float) -> bool:
        """This edge forwarded behaviour of `visitor` at `at` (their segment may move).

        True: the caller starts the chase now, in the background (`refresh_visitor` with
        ``first_delay=BEHAVIOUR_ASK_DELAY_S``, marked in flight here): no refresh of this
        visitor is in flight and the last one did not give up less than `GIVE_UP_DELAY_S` ago.
        The chase waits out the short pause after the last ask itself (`pause_s`)."""
        state = self._get(visitor)
        state.behaved_at = max(state.behaved_at, at)
        if state.in_flight or (state.gave_up and at < state.quiet_until):
            return False
        return self._begin(state)

    def _begin(self, state: _Visitor) -> bool:
        """Mark a refresh of `state`'s visitor in flight, unless `MAX_IN_FLIGHT` already are."""
        if self.in_flight >= MAX_IN_FLIGHT:
            return False
        self.in_flight += 1
        state.in_flight = True
        return True

    def pause_s(self, visitor: str, now: float) -> float:
        """Seconds before `visitor` may be asked about again (0: now)."""
        state = self._visitors.get(visitor)
        return 0.0 if state is None else max(0.0, state.quiet_until - now)

    def behind(self, visitor: str) -> bool:
        """Whether this edge forwarded behaviour of `visitor` newer than any answer of the
        origin reflected."""
        state = self._visitors.get(visitor)
        return state is not None and state.behaved_at > state.reflected

    def behaved_at(self, visitor: str) -> float:
        state = self._visitors.get(visitor)
        return 0.0 if state is None else state.behaved_at

    def plan(self, cookies: Mapping[str, str], now: float, secret: str) -> SegmentPlan | None:
        """What this request does about the segment (None: nothing, e.g. no consent); when
        the plan says `refresh`, the refresh is marked in flight."""
        visitor = cookies.get(VISITOR_COOKIE, "")
        if cookies.get(CONSENT_COOKIE) != "1" or not VISITOR_ID.fullmatch(visitor):
            return None
        browser = read_segment(cookies.get(COOKIE_NAME), now, secret, visitor)
        state = self._visitors.get(visitor)
        kept = None if state is None else state.kept
        if kept is not None and kept.expires_at < now:
            kept = None
        use = choose(
            cookies.get(COOKIE_NAME) if browser else None,
            browser.expires_at if browser else None,
            kept,
        )
        if state is not None and kept is not None and use is None:
            state.kept = None  # the browser has it (or newer)
        issued = use.expires_at - LIFETIME_S if use else (browser.issued_at if browser else None)
        behaved = 0.0 if state is None else state.behaved_at
        reflected = 0.0 if state is None else state.reflected
        refresh = refresh_due(issued, now, self.max_age, behaved, reflected)
        if refresh:
            state = state or self._get(visitor)
            refresh = not (state.in_flight or now < state.quiet_until) and self._begin(state)
        if use is None:
            return SegmentPlan(visitor, refresh=refresh)
        return SegmentPlan(
            visitor, use.cookie, set_cookie_value(use.cookie, use.expires_at, now), refresh
        )

    def prepare(self, headers: Mapping[str, str], now: float, secret: str) -> Prepared:
        """A request's lower-cased headers as the decision should see them (with the kept
        cookie when it decides), the ``Set-Cookie`` to add, and the visitor to refresh in the
        background (already marked in flight)."""
        cookies = parse_cookies(headers.get("cookie"))
        plan = self.plan(cookies, now, secret)
        if plan is None:
            return Prepared(headers)
        refresh = plan.visitor if plan.refresh else None
        if plan.use_cookie is None:
            return Prepared(headers, None, refresh)
        return Prepared(with_cookie(headers, cookies, plan.use_cookie), plan.set_cookie, refresh)

    def settle(self, visitor: str, answer: Refreshed | None) -> None:
        """Keep an answer (when it is newer than what is kept)."""
        if answer is None:
            return
        state = self._get(visitor)
        if state.kept is None or answer.expires_at >= state.kept.expires_at:
            state.kept = answer
        if answer.as_of is not None:
            state.reflected = max(state.reflected, answer.as_of)

    def end(self, visitor: str, now: float, *, gave_up: bool = False) -> None:
        """The refresh of `visitor` is over: caught up with their behaviour, or (`gave_up`)
        not, and then the next one waits `GIVE_UP_DELAY_S`. Call it once per refresh begun
        (`refresh_visitor` does), even when the visitor's state was evicted meanwhile."""
        self.in_flight = max(0, self.in_flight - 1)
        state = self._visitors.get(visitor)
        if state is not None:
            state.in_flight = False
            state.gave_up = gave_up
            state.quiet_until = now + (GIVE_UP_DELAY_S if gave_up else RETRY_DELAY_S)

    def kept(self, visitor: str) -> Refreshed | None:
        state = self._visitors.get(visitor)
        return None if state is None else state.kept


Ask = Callable[[str], Awaitable[Refreshed | None]]
"""The adapter's I/O: ask the origin for a visitor's segment (None: no usable answer)."""


async def refresh_visitor(
    refresher: SegmentRefresher,
    visitor: str,
    ask: Ask,
    clock: Callable[[], float],
    *,
    first_delay: float = 0.0,
) -> Refreshed | None:
    """One background refresh (the adapter runs it in ``waitUntil`` or a task): wait out
    the pause after the visitor's last ask (`SegmentRefresher.pause_s`), or `first_delay`
    when longer (`BEHAVIOUR_ASK_DELAY_S` for a chase a beacon started), ask, keep the answer,
    ask again while it does not reflect the visitor's latest behaviour yet (`next_attempt`;
    behaviour noted while it runs is chased too, each newer behaviour with a fresh budget of
    `MAX_ATTEMPTS`, `MAX_ASKS` in all), then end it. Returns the last answer kept."""
    last: Refreshed | None = None
    gave_up = True
    try:
        pause = max(refresher.pause_s(visitor, clock()), first_delay)
        if pause > 0:
            await asyncio.sleep(pause)
        chasing, asked = refresher.behaved_at(visitor), 0
        for _ in range(MAX_ASKS):
            answer = await ask(visitor)
            refresher.settle(visitor, answer)
            last = answer or last
            if answer is not None and not refresher.behind(visitor):
                gave_up = False
                break
            behaved = refresher.behaved_at(visitor)
            if behaved > chasing:  # newer behaviour: its own budget, from none asked
                chasing, asked = behaved, 0
            else:
                asked += 1
            delay = next_attempt(answer, behaved, asked)
            if delay is None:
                break
            await asyncio.sleep(delay)
    finally:
        refresher.end(visitor, clock(), gave_up=gave_up)
    return last
