"""Compose a page at the edge: each placeholder filled with this shopper's slot, as it streams.

The page (the shared, cacheable shell from the origin or a storefront upstream) is read as it
arrives and cut by `edge.compose.PageRewriter`. Text goes out at once; for each placeholder a
slot decision starts as soon as it is seen (`Decide`: the adapter runs `edge.flow.handle_slot`,
the same decision core as ``/se/slot``, on its transport), so decisions run concurrently with
one another and with the rest of the page's download. Slots go out in document order; a slot
not decided within its budget (`EdgeConfig.compose_budget`, per slot from ``slots.toml``'s
``compose_budget_ms``) gets the placeholder's fallback inside a client-fill marker
(`client_fill_marker`: ``<se-slot ... data-se-fill>fallback</se-slot>``, which the page's script
may fill from ``/se/slot``), so a slow slot never stalls the page. The late decision is handed
to the adapter (`Adopt`) to finish in the background: it still warms the edge cache.

What goes where a slot was:
- a decided slot (HIT, STALE, MISS, REVALIDATED): its HTML;
- FALLBACK (no bundle could be had): the placeholder's own fallback markup when it has one,
  else the slot's safe default from the configuration;
- an unknown slot name (``/se/slot`` would answer 404): the placeholder's fallback;
- TIMEOUT (over budget) or ERROR (the decision raised): the client-fill marker.

Headers leave before the first slot is decided, so they say what is known then
(`stream_headers`): ``Cache-Control: private, no-store`` (the composed page is this shopper's;
the shell stays shared), the visitor cookie when the shopper is new (one id for every slot of
the page) and ``Server-Timing: shell;dur=<ms until the shell's headers>``. Each slot's cache
status and times go in a trailing HTML comment after the page (`timing_comment`), one line
per slot in document order. A buffered composition (`compose_buffered`, the WASI CGI mode)
knows everything before its headers and also reports each slot in ``Server-Timing``
(`buffered_headers`). Cookies a slot decision would set for an experiment's sticky bucket are
not sent with a composed page (its headers are gone by then); ``/se/slot`` responses set them.

Pure decisions and `asyncio` only (standard library, `fragments` and the edge core): it runs
under CPython and Pyodide.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from edge.anchors import ANCHOR_PARAM
from edge.compose import ESI_FORM, MAX_PLACEHOLDER_BYTES, PageRewriter, Placeholder
from edge.config import EdgeConfig
from edge.context import RequestShopper, read_shopper
from edge.flow import EdgeResponse, SlotRequest, visitor_cookie
from edge.router import OVERRIDE_PREFIX
from fragments.ids import is_id, is_sku

TIMEOUT = "TIMEOUT"
ERROR = "ERROR"
UNKNOWN = "UNKNOWN"
DECIDED = frozenset({"HIT", "STALE", "MISS", "REVALIDATED"})
READ_AHEAD = 32
"""Pieces read ahead of what was sent (bounds memory while a slot is awaited)."""
MAX_FORWARDED_PARAMS = 20
"""Page query parameters forwarded to slot decisions (``sx_*`` preview links, ``locale``)."""
_DROPPED_SHELL_HEADERS = frozenset({
    "content-length", "content-encoding", "transfer-encoding", "etag", "last-modified",
    "cache-control", "surrogate-control", "accept-ranges", "expires", "age", "server-timing",
    "connection", "keep-alive",
})  # fmt: skip

Decide = Callable[[Placeholder], Awaitable[tuple[EdgeResponse, float]]]
"""Runs the slot decision for a placeholder: (the `/se/slot` response, core seconds)."""
DecideSync = Callable[[Placeholder], tuple[EdgeResponse, float]]
Adopt = Callable[["asyncio.Future[tuple[EdgeResponse, float]]"], None]
"""Takes a decision that missed its budget, to let it finish in the background."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The shopper's request for the page being composed."""

    headers: Mapping[str, str]
    """Lower-cased request headers (cookies, Accept-Language, country...)."""
    path: str
    query: Mapping[str, str]
    now: float
    visitor_id: str
    """The shopper's id for every slot of this page (`page_visitor`)."""
    shopper: RequestShopper | None = None
    """The page's cookies and context, read once for all its slots (`page_request`); None: each
    slot decision reads them from `headers`."""


@dataclass(frozen=True, slots=True)
class SlotFill:
    """What went where one placeholder was, and how long it took."""

    placeholder: Placeholder
    markup: bytes
    status: str
    """HIT, STALE, MISS, REVALIDATED, FALLBACK, UNKNOWN, TIMEOUT or ERROR."""
    decision_seconds: float
    """CPU seconds of the decision core (0 when it did not finish in time)."""
    wait_seconds: float
    """Wall seconds from the placeholder being seen to its markup being settled."""


def page_visitor(
    headers: Mapping[str, str], now: float, config: EdgeConfig, fresh_visitor_id: str
) -> tuple[str, str | None]:
    """The visitor id for every slot of the page, and the ``Set-Cookie`` value when new."""
    page, set_cookie = page_request(headers, "", {}, now, config, fresh_visitor_id)
    return page.visitor_id, set_cookie


def page_request(
    headers: Mapping[str, str],
    path: str,
    query: Mapping[str, str],
    now: float,
    config: EdgeConfig,
    fresh_visitor_id: str,
) -> tuple[PageRequest, str | None]:
    """The page request with its shopper read once (what `page_visitor` reads, kept for every
    slot's decision), and the ``Set-Cookie`` value when the shopper is new."""
    shopper = read_shopper(
        headers,
        now=now,
        secret=config.segment_secret,
        default_segment=config.default_segment,
        fresh_visitor_id=fresh_visitor_id,
    )
    ctx = shopper.context
    page = PageRequest(headers, path, query, now, ctx.visitor_id, shopper)
    return page, visitor_cookie(ctx.visitor_id) if ctx.new_visitor else None


def slot_request(page: PageRequest, placeholder: Placeholder) -> SlotRequest:
    """The ``/se/slot`` request this placeholder stands for: the page's headers, its path as
    ``page``, its ``sx_*`` and ``locale`` parameters, and the placeholder's anchor."""
    query: dict[str, str] = {}
    for name, value in page.query.items():
        if len(query) < MAX_FORWARDED_PARAMS and (
            name.startswith(OVERRIDE_PREFIX) or name == "locale"
        ):
            query[name] = value
    query["page"] = page.path[:256]
    if is_sku(placeholder.anchor):
        query[ANCHOR_PARAM] = placeholder.anchor  # the slot request's ?sku=
    return SlotRequest(
        slot=placeholder.slot,
        headers=page.headers,
        query=query,
        now=page.now,
        fresh_visitor_id=page.visitor_id,
        shopper=page.shopper,
    )


def client_fill_marker(placeholder: Placeholder) -> bytes:
    """The placeholder's fallback in an element the page's script may fill from ``/se/slot``."""
    anchor = f' anchor="{html.escape(placeholder.anchor)}"' if placeholder.anchor else ""
    name = html.escape(placeholder.slot)
    return b'<se-slot name="%s"%s data-se-fill="">%s</se-slot>' % (
        name.encode(), anchor.encode(), placeholder.fallback,
    )  # fmt: skip


def decided_fill(
    placeholder: Placeholder, response: EdgeResponse, core_seconds: float, waited: float
) -> SlotFill:
    """The fill of a finished decision (see the module docstring for what goes there)."""
    if response.status == 404:
        return SlotFill(placeholder, placeholder.fallback, UNKNOWN, core_seconds, waited)
    if response.cache_status in DECIDED or not placeholder.fallback:
        markup = response.body.encode("utf-8")
    else:
        markup = placeholder.fallback
    return SlotFill(placeholder, markup, response.cache_status, core_seconds, waited)


def late_fill(placeholder: Placeholder, status: str, waited: float) -> SlotFill:
    """The fill of a decision that missed its budget or failed: the client-fill marker."""
    return SlotFill(placeholder, client_fill_marker(placeholder), status, 0.0, waited)


def _label(fill: SlotFill) -> str:
    slot = fill.placeholder.slot if is_id(fill.placeholder.slot) else "invalid"
    return f"{fill.placeholder.index}-{slot}"


def timing_comment(fills: Sequence[SlotFill]) -> bytes:
    """The trailing HTML comment: one line per slot (index-slot, status, decision and wait ms)."""
    lines = [
        f"slot {_label(f)} {f.status} decision={f.decision_seconds * 1000:.3f}ms "
        f"wait={f.wait_seconds * 1000:.3f}ms" + (" (esi)" if f.placeholder.form == ESI_FORM else "")
        for f in fills
    ]
    return ("\n<!-- shelfedge composed\n" + "\n".join(lines) + "\n-->\n").encode()


def slot_server_timing(fills: Sequence[SlotFill]) -> str:
    """``Server-Timing`` entries: ``slot-<i>-<slot>;dur=<decision ms>;desc=<status>``."""
    return ", ".join(
        f'slot-{_label(f)};dur={f.decision_seconds * 1000:.3f};desc="{f.status}"' for f in fills
    )


def stream_headers(
    shell: Iterable[tuple[str, str]], set_cookie: str | None, shell_seconds: float
) -> list[tuple[str, str]]:
    """Headers of a streamed composed page: the shell's (less what no longer holds: length,
    validators, caching, encoding), ``Cache-Control: private, no-store``, the visitor cookie,
    and the shell's time in ``Server-Timing`` (slots are reported in `timing_comment`)."""
    headers = [(k, v) for k, v in shell if k.lower() not in _DROPPED_SHELL_HEADERS]
    headers.append(("Cache-Control", "private, no-store"))
    headers.append(("Server-Timing", f"shell;dur={shell_seconds * 1000:.3f}"))
    headers.append(("X-Shelfedge-Compose", "stream"))
    if set_cookie is not None:
        headers.append(("Set-Cookie", set_cookie))
    return headers


def buffered_headers(
    shell: Iterable[tuple[str, str]], set_cookie: str | None, fills: Sequence[SlotFill]
) -> list[tuple[str, str]]:
    """Headers of a buffered composed page: as `stream_headers`, with every slot in
    ``Server-Timing`` and ``X-Shelfedge-Slots`` (``slot=STATUS`` in document order)."""
    headers = [(k, v) for k, v in shell if k.lower() not in _DROPPED_SHELL_HEADERS]
    headers.append(("Cache-Control", "private, no-store"))
    if fills:
        headers.append(("Server-Timing", slot_server_timing(fills)))
        headers.append(("X-Shelfedge-Slots", ", ".join(f"{_label(f)}={f.status}" for f in fills)))
    headers.append(("X-Shelfedge-Compose", "buffered"))
    if set_cookie is not None:
        headers.append(("Set-Cookie", set_cookie))
    return headers


def compose_buffered(
    page: bytes, decide: DecideSync, max_placeholder: int = MAX_PLACEHOLDER_BYTES
) -> tuple[bytes, list[SlotFill]]:
    """The whole page composed at once (hosts that cannot stream; decisions are local so there
    is no budget); the timing comment follows when the page had placeholders."""
    rewriter = PageRewriter(max_placeholder)
    out: list[bytes] = []
    fills: list[SlotFill] = []
    for piece in [*rewriter.feed(page), *rewriter.close()]:
        if isinstance(piece, bytes):
            out.append(piece)
            continue
        started = time.perf_counter()
        try:
            response, core = decide(piece)
        except Exception:  # a broken decision never breaks the page
            fill = late_fill(piece, ERROR, time.perf_counter() - started)
        else:
            fill = decided_fill(piece, response, core, time.perf_counter() - started)
        fills.append(fill)
        out.append(fill.markup)
    if fills:
        out.append(timing_comment(fills))
    return b"".join(out), fills


@dataclass(slots=True)
class _Pending:
    placeholder: Placeholder
    task: asyncio.Future[tuple[EdgeResponse, float]]
    started: float
    deadline: float


class _End:
    """The page has been read to its end."""


_END = _End()
_Item = bytes | _Pending | _End | BaseException


class StreamComposer:
    """Streams a composed page; `fills` is filled in as slots are settled (document order)."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        decide: Decide,
        budget: Callable[[str], float],
        *,
        adopt: Adopt | None = None,
        max_placeholder: int = MAX_PLACEHOLDER_BYTES,
        read_ahead: int = READ_AHEAD,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._chunks = chunks
        self._decide = decide
        self._budget = budget
        self._adopt = adopt
        self._rewriter = PageRewriter(max_placeholder)
        self._read_ahead = read_ahead
        self._clock = clock
        self._pending: list[_Pending] = []
        self.fills: list[SlotFill] = []

    async def stream(self) -> AsyncIterator[bytes]:
        """The composed page's bytes; the timing comment ends it when it had placeholders."""
        queue: asyncio.Queue[_Item] = asyncio.Queue(self._read_ahead)
        reader = asyncio.ensure_future(self._read(queue))
        held: _Item | None = None
        try:
            while True:
                item = held if held is not None else await queue.get()
                held = None
                if isinstance(item, _End):
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, bytes):
                    text = [item]
                    while not queue.empty():  # send what has arrived as one chunk
                        held = queue.get_nowait()
                        if not isinstance(held, bytes):
                            break
                        text.append(held)
                        held = None
                    if any(text):
                        yield b"".join(text)
                    continue
                fill = await self._settle(item)
                self.fills.append(fill)
                yield fill.markup
            if self.fills:
                yield timing_comment(self.fills)
        finally:
            reader.cancel()
            for pending in self._pending:
                if not pending.task.done():
                    self._hand_over(pending.task)

    async def _read(self, queue: asyncio.Queue[_Item]) -> None:
        try:
            async for chunk in self._chunks:
                for piece in self._rewriter.feed(chunk):
                    await queue.put(self._begin(piece))
            for piece in self._rewriter.close():
                await queue.put(self._begin(piece))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the upstream broke mid-page: the stream ends with it
            await queue.put(exc)
            return
        await queue.put(_END)

    def _begin(self, piece: bytes | Placeholder) -> bytes | _Pending:
        if isinstance(piece, bytes):
            return piece
        started = self._clock()
        task = asyncio.ensure_future(self._decide(piece))
        pending = _Pending(piece, task, started, started + self._budget(piece.slot))
        self._pending.append(pending)
        return pending

    async def _settle(self, pending: _Pending) -> SlotFill:
        placeholder, task = pending.placeholder, pending.task
        if not task.done():
            remaining = pending.deadline - self._clock()
            try:
                await asyncio.wait_for(asyncio.shield(task), max(remaining, 0.0))
            except TimeoutError:
                self._pending.remove(pending)
                self._hand_over(task)
                return late_fill(placeholder, TIMEOUT, self._clock() - pending.started)
            except Exception:  # the decision raised: recorded below
                pass
        self._pending.remove(pending)
        waited = self._clock() - pending.started
        if task.cancelled() or task.exception() is not None:
            return late_fill(placeholder, ERROR, waited)
        response, core = task.result()
        return decided_fill(placeholder, response, core, waited)

    def _hand_over(self, task: asyncio.Future[tuple[EdgeResponse, float]]) -> None:
        if self._adopt is not None:
            self._adopt(task)
        else:
            task.add_done_callback(_consume_outcome)


def _consume_outcome(task: asyncio.Future[tuple[EdgeResponse, float]]) -> None:
    """Read a background decision's outcome so its failure is not reported as unretrieved."""
    if not task.cancelled():
        task.exception()
