"""The segment refresh's pure decisions: when a refresh is due, which cookie decides a request,
when a background refresh asks again, and the per-visitor state's bounds."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from edge import segment_refresh
from edge.config import EdgeConfig, parse_config
from edge.context import parse_cookies, read_context
from edge.errors import BadEdgeInput
from edge.segment_refresh import (
    BEHAVIOUR_ASK_DELAY_S,
    DEFAULT_REFRESH_AFTER_S,
    GIVE_UP_DELAY_S,
    MAX_ASKS,
    MAX_ATTEMPTS,
    MAX_IN_FLIGHT,
    MAX_REFRESH_AFTER_S,
    RETRY_DELAY_S,
    Refreshed,
    SegmentRefresher,
    choose,
    next_attempt,
    parse_answer,
    refresh_after_seconds,
    refresh_due,
    refresh_visitor,
)
from fragments.segment_cookie import LIFETIME_S, sign_segment

SECRET = "segment-refresh-test-secret-0123456789"
VISITOR = "a" * 32
OTHER = "b" * 32
NOW = 1_800_000_000.0


def cookie(segment: str, issued: float, visitor: str = VISITOR) -> str:
    return sign_segment(segment, int(issued) + LIFETIME_S, SECRET, visitor)


def cookies(value: str | None = None, *, consent: bool = True, visitor: str = VISITOR) -> str:
    parts = [f"se_vid={visitor}"] + (["se_consent=1"] if consent else [])
    return "; ".join(parts + ([f"se_seg={value}"] if value else []))


def answer(segment: str, issued: float, as_of: float | None) -> Refreshed:
    return Refreshed(cookie(segment, issued), int(issued) + LIFETIME_S, as_of)


@pytest.mark.parametrize(
    ("issued_at", "behaved", "reflected", "due"),
    [
        (None, 0.0, 0.0, True),  # no cookie yet
        (NOW - 10, 0.0, 0.0, False),  # young cookie, nothing new
        (NOW - 60, 0.0, 0.0, True),  # exactly the age
        (NOW - 59.9, 0.0, 0.0, False),
        (NOW - 10, NOW - 1, 0.0, True),  # behaviour no answer reflected yet
        (NOW - 10, NOW - 1, NOW - 0.5, False),  # an answer reflected it
        (NOW - 10, NOW - 1, NOW - 1, False),
        (NOW + 3600, 0.0, 0.0, False),  # a longer-lived cookie (persona link): fresh
    ],
)
def test_refresh_due(issued_at: float | None, behaved: float, reflected: float, due: bool) -> None:
    assert refresh_due(issued_at, NOW, 60.0, behaved, reflected) is due


@pytest.mark.parametrize(
    ("browser", "browser_expires", "kept_expires", "chosen"),
    [
        (None, None, None, False),
        (None, None, 100, True),
        ("old", 99, 100, True),
        ("old", 100, 100, True),  # signed in the same second, after the browser's
        ("v", 100, 100, False),  # the browser has it
        ("newer", 101, 100, False),  # the browser has newer
    ],
)
def test_choose_the_newer_cookie(
    browser: str | None, browser_expires: int | None, kept_expires: int | None, chosen: bool
) -> None:
    kept = None if kept_expires is None else Refreshed("v", kept_expires, None)
    assert (choose(browser, browser_expires, kept) is not None) is chosen


@pytest.mark.parametrize(
    ("got", "behaved", "asked", "wait"),
    [
        (None, 0.0, 1, RETRY_DELAY_S),  # no answer: ask again
        (None, 0.0, MAX_ATTEMPTS - 1, RETRY_DELAY_S),
        (None, 0.0, MAX_ATTEMPTS, None),  # ... but not forever
        (Refreshed("v", 1, None), 0.0, 1, None),  # nothing to chase: done
        (Refreshed("v", 1, None), NOW, 1, RETRY_DELAY_S),  # no profile yet
        (Refreshed("v", 1, NOW - 1), NOW, 1, RETRY_DELAY_S),  # reflects only older behaviour
        (Refreshed("v", 1, NOW - 1), NOW, 0, RETRY_DELAY_S),  # newer behaviour came: chase it
        (Refreshed("v", 1, NOW), NOW, 1, None),  # caught up
        (Refreshed("v", 1, NOW - 1), NOW, MAX_ATTEMPTS, None),  # gave up
    ],
)
def test_next_attempt(
    got: Refreshed | None, behaved: float, asked: int, wait: float | None
) -> None:
    assert next_attempt(got, behaved, asked) == wait


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, DEFAULT_REFRESH_AFTER_S), ("", DEFAULT_REFRESH_AFTER_S), ("0.5", 0.5), (30, 30.0)],
)
def test_refresh_age_setting(raw: object, expected: float) -> None:
    assert refresh_after_seconds(raw) == expected


@pytest.mark.parametrize(
    "raw", ["0", "-1", "soon", "nan", "inf", str(MAX_REFRESH_AFTER_S + 1), True, []]
)
def test_refresh_age_setting_refuses_nonsense_naming_it(raw: object) -> None:
    with pytest.raises(ValueError, match="SEGMENT_REFRESH_AFTER_S"):
        refresh_after_seconds(raw)


def test_edge_config_validates_the_refresh_age() -> None:
    with pytest.raises(ValueError, match="SEGMENT_REFRESH_AFTER_S"):
        EdgeConfig(
            fallbacks={}, locales=("en-US",), segment_secret=SECRET, segment_refresh_after_s=0
        )
    doc = {"fallbacks": {}, "locales": ["en-US"], "segment_secret": SECRET, "default_segment": "e"}
    assert parse_config(doc).segment_refresh_after_s == DEFAULT_REFRESH_AFTER_S
    assert parse_config({**doc, "segment_refresh_after_s": 5}).segment_refresh_after_s == 5.0
    with pytest.raises(BadEdgeInput, match=r"config\.segment_refresh_after_s"):
        parse_config({**doc, "segment_refresh_after_s": "often"})


def test_an_answer_counts_only_with_a_cookie_signed_for_this_visitor() -> None:
    value = cookie("outdoor-fans", NOW)
    good = {"cookie": value, "as_of": NOW - 1}
    parsed = parse_answer(200, json.dumps(good).encode(), VISITOR, NOW, SECRET)
    assert parsed == Refreshed(value, int(NOW) + LIFETIME_S, NOW - 1)
    assert parse_answer(200, json.dumps(good).encode(), OTHER, NOW, SECRET) is None
    assert parse_answer(503, json.dumps(good).encode(), VISITOR, NOW, SECRET) is None
    assert parse_answer(200, b"[1]", VISITOR, NOW, SECRET) is None
    assert parse_answer(200, b"{", VISITOR, NOW, SECRET) is None
    no_profile = {"cookie": good["cookie"], "as_of": None}
    none = parse_answer(200, json.dumps(no_profile).encode(), VISITOR, NOW, SECRET)
    assert none is not None
    assert none.as_of is None


def test_nothing_without_consent_or_a_visitor_id() -> None:
    refresher = SegmentRefresher(60.0)
    assert refresher.plan(parse_cookies(cookies(consent=False)), NOW, SECRET) is None
    assert refresher.plan(parse_cookies("se_consent=1; se_vid=nope"), NOW, SECRET) is None
    assert len(refresher) == 0


def test_a_kept_cookie_decides_the_next_request_and_is_set_once_the_browser_has_it() -> None:
    refresher = SegmentRefresher(60.0)
    old = cookie("everyone", NOW - 120)
    headers = {"cookie": cookies(old)}
    first = refresher.prepare(headers, NOW, SECRET)
    assert (first.refresh, first.set_cookie, first.headers) == (VISITOR, None, headers)
    again = refresher.prepare(headers, NOW, SECRET)
    assert again.refresh is None  # one refresh in flight per visitor
    refresher.settle(VISITOR, answer("outdoor-fans", NOW, NOW))
    refresher.end(VISITOR, NOW)
    later = refresher.prepare(headers, NOW + 1, SECRET)
    assert later.refresh is None
    assert later.set_cookie is not None
    assert later.set_cookie.startswith("se_seg=v2.")
    assert "HttpOnly" in later.set_cookie
    assert f"Max-Age={LIFETIME_S - 1}" in later.set_cookie
    ctx = read_context(
        later.headers,
        now=NOW + 1,
        secret=SECRET,
        default_segment="everyone",
        fresh_visitor_id=OTHER,
    )
    assert (ctx.segment, ctx.visitor_id, ctx.personalize) == ("outdoor-fans", VISITOR, True)
    # the browser now sends the kept cookie: nothing more to set, the kept one is forgotten
    kept = refresher.kept(VISITOR)
    assert kept is not None
    settled = refresher.prepare({"cookie": cookies(kept.cookie)}, NOW + 2, SECRET)
    assert (settled.set_cookie, settled.refresh) == (None, None)
    assert refresher.kept(VISITOR) is None


def test_a_kept_cookie_never_decides_for_another_visitor() -> None:
    refresher = SegmentRefresher(60.0)
    refresher.settle(VISITOR, answer("outdoor-fans", NOW, NOW))
    other = refresher.prepare({"cookie": cookies(visitor=OTHER)}, NOW, SECRET)
    assert other.set_cookie is None
    assert "outdoor-fans" not in other.headers.get("cookie", "")


def test_behaviour_makes_a_young_cookie_due_until_an_answer_reflects_it() -> None:
    refresher = SegmentRefresher(60.0)
    young = {"cookie": cookies(cookie("everyone", NOW - 5))}
    assert refresher.prepare(young, NOW, SECRET).refresh is None
    assert refresher.note_behaviour(VISITOR, NOW)  # the beacon starts the chase
    assert refresher.prepare(young, NOW + 0.01, SECRET).refresh is None  # in flight
    refresher.settle(VISITOR, answer("everyone", NOW, NOW - 1))  # reflects only older behaviour
    refresher.end(VISITOR, NOW + 0.02, gave_up=True)
    assert refresher.prepare(young, NOW + 0.03, SECRET).refresh is None  # pausing
    assert refresher.prepare(young, NOW + 0.02 + GIVE_UP_DELAY_S, SECRET).refresh == VISITOR
    refresher.settle(VISITOR, answer("outdoor-fans", NOW + 6, NOW + 0.2))
    refresher.end(VISITOR, NOW + 6)
    assert refresher.prepare(young, NOW + 7, SECRET).refresh is None


def test_state_is_bounded_least_recently_used_first() -> None:
    refresher = SegmentRefresher(60.0, max_visitors=2)
    for i in range(3):
        refresher.note_behaviour(f"{i}" * 32, NOW)
    assert len(refresher) == 2
    assert refresher.behaved_at("0" * 32) == 0.0
    assert refresher.behaved_at("2" * 32) == NOW


def test_a_background_refresh_asks_until_the_behaviour_is_reflected() -> None:
    refresher = SegmentRefresher(60.0)
    replies = [None, answer("everyone", NOW, NOW - 1), answer("outdoor-fans", NOW, NOW + 0.1)]
    asked: list[str] = []

    async def ask(visitor: str) -> Refreshed | None:
        asked.append(visitor)
        return replies[len(asked) - 1]

    assert refresher.note_behaviour(VISITOR, NOW)
    last = asyncio.run(refresh_visitor(refresher, VISITOR, ask, lambda: NOW + 1))
    assert len(asked) == 3
    assert last == replies[2]
    assert refresher.kept(VISITOR) == replies[2]


def test_behaviour_noted_while_a_refresh_runs_is_chased_by_it() -> None:
    refresher = SegmentRefresher(60.0)
    asked: list[str] = []

    async def ask(visitor: str) -> Refreshed:
        asked.append(visitor)
        if len(asked) == 1:  # caught up with the first behaviour, but more came meanwhile
            assert not refresher.note_behaviour(VISITOR, NOW + 1)  # this refresh chases it
            return answer("everyone", NOW, NOW + 0.5)
        return answer("outdoor-fans", NOW + 2, NOW + 1.5)

    plan = refresher.prepare({"cookie": cookies(cookie("everyone", NOW - 5))}, NOW, SECRET)
    assert plan.refresh is None  # nothing new yet: a young cookie
    assert refresher.note_behaviour(VISITOR, NOW)
    asyncio.run(refresh_visitor(refresher, VISITOR, ask, lambda: NOW + 3))
    assert len(asked) == 2
    kept = refresher.kept(VISITOR)
    assert kept is not None
    assert kept.as_of == NOW + 1.5


def test_a_refresh_that_cannot_catch_up_gives_up_and_waits_longer() -> None:
    refresher = SegmentRefresher(60.0)
    asked: list[str] = []

    async def ask(visitor: str) -> Refreshed | None:
        asked.append(visitor)
        return None if len(asked) % 2 else answer("everyone", NOW, NOW - 1)

    young = {"cookie": cookies(cookie("everyone", NOW - 5))}
    assert refresher.note_behaviour(VISITOR, NOW)
    asyncio.run(refresh_visitor(refresher, VISITOR, ask, lambda: NOW))
    assert len(asked) == MAX_ATTEMPTS
    assert refresher.prepare(young, NOW + GIVE_UP_DELAY_S - 0.1, SECRET).refresh is None
    assert not refresher.note_behaviour(VISITOR, NOW + GIVE_UP_DELAY_S - 0.1)  # nor a beacon
    assert refresher.prepare(young, NOW + GIVE_UP_DELAY_S, SECRET).refresh == VISITOR


def test_behaviour_right_after_a_refresh_starts_a_chase_that_waits_out_the_pause() -> None:
    """A page request in the pause after a refresh starts none; the beacon's chase does, so
    the first page after the fold has the new segment (not the page after it)."""
    refresher = SegmentRefresher(60.0)
    assert refresher.prepare({"cookie": cookies()}, NOW, SECRET).refresh == VISITOR
    refresher.settle(VISITOR, answer("everyone", NOW, None))
    refresher.end(VISITOR, NOW)
    assert refresher.note_behaviour(VISITOR, NOW + 0.05)
    young = {"cookie": cookies(cookie("everyone", NOW))}
    assert refresher.prepare(young, NOW + 0.1, SECRET).refresh is None  # the chase is on
    asked_after: list[float] = []
    started = time.monotonic()

    async def ask(visitor: str) -> Refreshed:
        asked_after.append(time.monotonic() - started)
        return answer("outdoor-fans", NOW + 1, NOW + 0.05)

    asyncio.run(refresh_visitor(refresher, VISITOR, ask, lambda: NOW + 0.05))
    assert len(asked_after) == 1
    assert asked_after[0] >= RETRY_DELAY_S - 0.05 - 0.01  # the rest of the pause first
    kept = refresher.kept(VISITOR)
    assert kept is not None
    assert kept.as_of == NOW + 0.05


def test_a_chase_a_beacon_started_asks_first_after_the_behaviour_could_be_folded() -> None:
    """Asked at once, the origin could not reflect the behaviour yet (it leaves in the next
    clickstream batch), and the answer reflecting it would wait for the next ask."""
    refresher = SegmentRefresher(60.0)
    assert refresher.note_behaviour(VISITOR, NOW)
    asked_after: list[float] = []
    started = time.monotonic()

    async def ask(visitor: str) -> Refreshed:
        asked_after.append(time.monotonic() - started)
        return answer("outdoor-fans", NOW + 1, NOW)

    asyncio.run(
        refresh_visitor(refresher, VISITOR, ask, lambda: NOW, first_delay=BEHAVIOUR_ASK_DELAY_S)
    )
    assert len(asked_after) == 1
    assert asked_after[0] >= BEHAVIOUR_ASK_DELAY_S - 0.01


@pytest.mark.parametrize(("moves", "caught"), [(MAX_ATTEMPTS + 5, True), (MAX_ASKS + 5, False)])
def test_newer_behaviour_gets_a_fresh_budget_up_to_max_asks(
    moves: int, caught: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behaviour that keeps coming while the processor trails it by one event is chased past
    `MAX_ATTEMPTS` asks (each behaviour has its own budget) and caught; never past
    `MAX_ASKS`."""
    monkeypatch.setattr(segment_refresh, "RETRY_DELAY_S", 0.001)
    refresher = SegmentRefresher(60.0)
    asked: list[str] = []

    async def ask(visitor: str) -> Refreshed:
        asked.append(visitor)
        behaved = refresher.behaved_at(visitor)
        if len(asked) <= moves:  # a beacon came meanwhile; the answer trails it
            refresher.note_behaviour(visitor, behaved + 1)
        return answer("outdoor-fans", NOW, behaved)

    assert refresher.note_behaviour(VISITOR, NOW)
    asyncio.run(refresh_visitor(refresher, VISITOR, ask, lambda: NOW + 100))
    assert len(asked) == (moves + 1 if caught else MAX_ASKS)
    assert refresher.behind(VISITOR) is not caught


def test_refreshes_in_flight_are_bounded_and_counted_back() -> None:
    """Beacons under ever new visitor ids start at most `MAX_IN_FLIGHT` chases at once (each
    asks the origin); one ending makes room; a page request is bounded the same way."""
    refresher = SegmentRefresher(60.0)
    visitors = [f"{i:032x}" for i in range(MAX_IN_FLIGHT + 1)]
    started = [refresher.note_behaviour(v, NOW) for v in visitors]
    assert started == [True] * MAX_IN_FLIGHT + [False]
    assert refresher.in_flight == MAX_IN_FLIGHT
    newcomer = {"cookie": cookies(visitor="f" * 32)}
    assert refresher.prepare(newcomer, NOW, SECRET).refresh is None  # no cookie, but no room
    refresher.end(visitors[0], NOW)
    assert refresher.in_flight == MAX_IN_FLIGHT - 1
    assert refresher.prepare(newcomer, NOW, SECRET).refresh == "f" * 32
    assert not refresher.note_behaviour(visitors[-1], NOW + 1)  # full again
