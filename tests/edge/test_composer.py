"""`edge.composer`: what goes where a slot was, budgets, concurrency and the timing report.

Decisions are the real `handle_slot` on a `MemoryTransport` (bundles from tests/edge/bundles.py)
or scripted coroutines where a test needs a slow or failing decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from edge.compose import Placeholder
from edge.composer import (
    ERROR,
    TIMEOUT,
    PageRequest,
    SlotFill,
    StreamComposer,
    buffered_headers,
    client_fill_marker,
    compose_buffered,
    page_request,
    page_visitor,
    slot_request,
    stream_headers,
    timing_comment,
)
from edge.config import EdgeConfig
from edge.flow import EdgeResponse, drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import FetchResult, OriginFetch
from fragments.bundle import encode_bundle
from fragments.slots import load_slots
from tests.edge.bundles import candidate, settings, small_bundle

SECRET = "composer-secret-0123456789"
CONFIG = EdgeConfig.from_slots(load_slots(), SECRET)
HEADERS = {"cookie": "se_vid=" + "ab" * 16}


def page(query: dict[str, str] | None = None) -> PageRequest:
    return PageRequest(HEADERS, "/products/SKU-1", query or {}, time.time(), "ab" * 16)


def response(body: str, status: str = "HIT", code: int = 200) -> EdgeResponse:
    return EdgeResponse(code, body, (), status, "control")


async def chunks(*parts: bytes, pause: float = 0.0) -> AsyncIterator[bytes]:
    for part in parts:
        if pause:
            await asyncio.sleep(pause)
        yield part


async def collect(composer: StreamComposer) -> bytes:
    return b"".join([part async for part in composer.stream()])


def test_slot_request_carries_the_page_its_previews_and_the_anchor() -> None:
    placeholder = Placeholder(0, "pdp-cross-sell", "SKU-9", b"", b"", "se-slot")
    query = {"sx_exp": "b", "sx_token": "t", "utm_source": "x", "locale": "de-DE"}
    request = slot_request(page(query), placeholder)
    assert request.query == {
        "sx_exp": "b", "sx_token": "t", "locale": "de-DE", "page": "/products/SKU-1",
        "sku": "SKU-9",
    }  # fmt: skip
    assert request.slot == "pdp-cross-sell"
    bad_anchor = Placeholder(0, "x", "not a sku!", b"", b"", "se-slot")
    assert "sku" not in slot_request(page(), bad_anchor).query


def test_a_new_visitor_gets_one_cookie_a_returning_one_none() -> None:
    visitor, cookie = page_visitor({}, time.time(), CONFIG, "cd" * 16)
    assert visitor == "cd" * 16
    assert cookie is not None
    assert cookie.startswith("se_vid=" + "cd" * 16)
    assert page_visitor(HEADERS, time.time(), CONFIG, "cd" * 16) == ("ab" * 16, None)


def _origin(fetch: OriginFetch) -> FetchResult:
    """Every key's bundle: a dozen candidates in three categories, the first two pinned."""
    cands = [
        candidate(f"SKU-{i}", 1.0 / (i + 1), f"c{i % 3}", price=500 * (i + 1)) for i in range(12)
    ]
    bundle = small_bundle(cands, key=fetch.key, rerank=settings(4, 2, pin=("SKU-5", "SKU-7")))
    return FetchResult(200, encode_bundle(bundle))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        HEADERS,
        {"cookie": "se_vid=" + "ab" * 16 + "; se_consent=1; se_rv=c2~900|c1~3000; se_cart=SKU-3"},
        {"cookie": "se_vid=not-an-id; se_consent=1", "accept-language": "de-DE"},
    ],
    ids=["new", "returning", "consenting-with-history-and-cart", "bad-id"],
)
def test_a_page_read_once_decides_its_slots_as_each_slot_reading_for_itself(
    headers: dict[str, str],
) -> None:
    """`page_request` reads the shopper once for every slot; each slot's response (body,
    headers, cookies, context, assignment, exposure) is what it is when the slot reads the
    headers itself, as a page without the shared read (`PageRequest.shopper` None) does."""
    now = time.time()
    shared, set_cookie = page_request(headers, "/p", {}, now, CONFIG, "cd" * 16)
    assert shared.shopper is not None
    assert (shared.visitor_id, set_cookie) == page_visitor(headers, now, CONFIG, "cd" * 16)
    alone = PageRequest(headers, "/p", {}, now, shared.visitor_id)
    with_shared, with_own = MemoryTransport(_origin), MemoryTransport(_origin)
    slots = ["home-hero", "pdp-cross-sell", "cart-complete", "home-hero", "nope"]
    for index, slot in enumerate(slots):
        placeholder = Placeholder(index, slot, "", b"", b"", "se-slot")
        got = drive_sync(handle_slot(slot_request(shared, placeholder), CONFIG), with_shared)[0]
        own = drive_sync(handle_slot(slot_request(alone, placeholder), CONFIG), with_own)[0]
        assert got == own
    assert got.status == 404
    assert own.cache_status == "FALLBACK"


def test_buffered_composition_with_the_real_decision() -> None:
    transport = MemoryTransport(lambda fetch: FetchResult(0, error="no origin"))
    request = page()

    def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        return drive_sync(handle_slot(slot_request(request, placeholder), CONFIG), transport)

    body = (
        b'<p>a</p><se-slot name="home-hero"><i>mine</i></se-slot><se-slot name="nope">n</se-slot>'
    )
    composed, fills = compose_buffered(body, decide)
    assert [f.status for f in fills] == ["FALLBACK", "UNKNOWN"]
    assert composed.startswith(b"<p>a</p><i>mine</i>n\n<!-- shelfedge composed\n")
    headers = dict(buffered_headers([("Content-Type", "text/html"), ("ETag", "x")], None, fills))
    assert headers["Cache-Control"] == "private, no-store"
    assert "ETag" not in headers
    assert headers["X-Shelfedge-Slots"] == "0-home-hero=FALLBACK, 1-nope=UNKNOWN"


def test_buffered_composition_survives_a_broken_decision() -> None:
    def broken(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        raise RuntimeError("boom")

    composed, fills = compose_buffered(b'<se-slot name="a" anchor="S1">f</se-slot>', broken)
    assert [f.status for f in fills] == [ERROR]
    assert composed.startswith(b'<se-slot name="a" anchor="S1" data-se-fill="">f</se-slot>')


def test_a_fallback_decision_without_page_fallback_uses_the_slots_default() -> None:
    composed, _ = compose_buffered(
        b'<esi:include src="/se/slot/home-hero"/>',
        lambda p: (response("<p>default</p>", "FALLBACK"), 0.0),
    )
    assert composed.startswith(b"<p>default</p>")


def test_client_fill_marker_escapes() -> None:
    placeholder = Placeholder(0, 'a"b', "", b"<b>f</b>", b"", "se-slot")
    assert client_fill_marker(placeholder) == (
        b'<se-slot name="a&quot;b" data-se-fill=""><b>f</b></se-slot>'
    )


def test_headers_of_a_streamed_page() -> None:
    shell = [("Content-Type", "text/html"), ("Content-Length", "10"), ("Cache-Control", "public")]
    headers = stream_headers(shell, "se_vid=x", 0.0123)
    assert ("Cache-Control", "private, no-store") in headers
    assert ("Server-Timing", "shell;dur=12.300") in headers
    assert ("Set-Cookie", "se_vid=x") in headers
    assert not any(k in ("Content-Length", "Cache-Control") and v != "private, no-store"
                   for k, v in headers)  # fmt: skip


def test_timing_comment_names_every_slot() -> None:
    placeholder = Placeholder(0, "home-hero", "", b"", b"", "esi")
    fill = SlotFill(placeholder, b"", "HIT", 0.0004, 0.002)
    assert timing_comment([fill]) == (
        b"\n<!-- shelfedge composed\n"
        b"slot 0-home-hero HIT decision=0.400ms wait=2.000ms (esi)\n-->\n"
    )


async def test_decisions_start_when_seen_and_run_concurrently() -> None:
    started: list[str] = []

    async def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        started.append(placeholder.slot)
        await asyncio.sleep(0.3)
        return response(f"[{placeholder.slot}]"), 0.001

    parts = (b"<h>", b"<se-slot name=a>x</se-slot>", b"<se-slot name=b>y</se-slot>", b"</h>")
    composer = StreamComposer(chunks(*parts), decide, lambda slot: 2.0)
    began = time.perf_counter()
    body = await collect(composer)
    elapsed = time.perf_counter() - began

    assert body.startswith(b"<h>[a][b]</h>\n<!--")
    assert started == ["a", "b"]
    assert elapsed < 0.55, f"two 0.3 s decisions took {elapsed:.3f} s: not concurrent"


async def test_a_slot_over_its_budget_gets_the_marker_and_is_adopted() -> None:
    adopted: list[asyncio.Future[tuple[EdgeResponse, float]]] = []

    async def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        await asyncio.sleep(0.5 if placeholder.slot == "slow" else 0.0)
        return response(f"[{placeholder.slot}]"), 0.0

    parts = (b"<se-slot name=slow>s</se-slot>", b"<se-slot name=fast>f</se-slot>")
    budgets = {"slow": 0.1, "fast": 0.1}
    composer = StreamComposer(chunks(*parts), decide, budgets.__getitem__, adopt=adopted.append)
    began = time.perf_counter()
    body = await collect(composer)

    assert time.perf_counter() - began < 0.35
    assert body.startswith(b'<se-slot name="slow" data-se-fill="">s</se-slot>[fast]')
    assert [f.status for f in composer.fills] == [TIMEOUT, "HIT"]
    assert len(adopted) == 1
    assert await adopted[0] == (response("[slow]"), 0.0)


async def test_a_failing_decision_gets_the_marker() -> None:
    async def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        raise RuntimeError("decision broke")

    composer = StreamComposer(chunks(b"<se-slot name=a>f</se-slot>"), decide, lambda s: 1.0)
    body = await collect(composer)
    assert body.startswith(b'<se-slot name="a" data-se-fill="">f</se-slot>')
    assert [f.status for f in composer.fills] == [ERROR]


async def test_a_page_without_placeholders_is_unchanged() -> None:
    async def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        raise AssertionError("no decision expected")

    parts: Sequence[bytes] = (b"<html>", b"<se-sl", b"ots>", b"</html>")
    body = await collect(StreamComposer(chunks(*parts), decide, lambda s: 1.0))
    assert body == b"".join(parts)


async def test_an_upstream_that_breaks_mid_page_ends_the_stream_with_its_error() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"<html>"
        raise ConnectionError("origin went away")

    async def decide(placeholder: Placeholder) -> tuple[EdgeResponse, float]:
        return response(""), 0.0

    composer = StreamComposer(broken(), decide, lambda s: 1.0)
    received: list[bytes] = []

    async def read_all() -> None:
        async for part in composer.stream():
            received.append(part)

    with pytest.raises(ConnectionError, match="origin went away"):
        await read_all()
    assert received == [b"<html>"]
