"""Profiles and segment decisions in a real Redis: fold, TTL, consent off, rule versions and
erasure (nothing keyed by the visitor is left)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from fragments.clickstream import ClickEvent
from origin.context.rules import parse_rules
from origin.context.store import ContextStore
from origin.core import keys
from tests.origin.context.test_rules import RULES, T0, cart, view

VISITOR = "0123456789abcdef0123456789abcdef"


def mine(event: ClickEvent) -> ClickEvent:
    return replace(event, visitor=VISITOR)


async def test_fold_keeps_a_profile_decides_and_sets_a_ttl(redis_client: Redis) -> None:
    store = ContextStore(redis_client, ttl_seconds=3600)
    version = await store.put_rules(parse_rules(RULES))
    rules = await store.current_rules()
    assert rules[0] == version == 1
    first = await store.fold(VISITOR, [mine(view(1, 0))], rules, now=T0)
    assert first is not None
    assert (first.segment, first.rule) == ("everyone", None)
    later = await store.fold(VISITOR, [mine(view(2, 60)), mine(view(3, 120))], rules, now=T0 + 120)
    assert later is not None
    assert (later.segment, later.explanation) == (
        "outdoor-fans",
        "matched rule 1 (outdoor-browsers)",
    )
    assert await store.assignment(VISITOR) == later
    again = await store.fold(VISITOR, [mine(view(2, 60))], rules, now=T0 + 120)  # a duplicate
    assert again == later
    profile = await store.profile(VISITOR)
    assert profile is not None
    assert len(profile.views) == 3
    for key in (keys.visitor_profile_key(VISITOR), keys.visitor_segment_key(VISITOR)):
        assert 0 < await redis_client.ttl(key) <= 3600


async def test_no_consent_no_profile(redis_client: Redis) -> None:
    store = ContextStore(redis_client)
    rules = await store.current_rules()
    assert rules[0] == 0
    outcome = await store.fold(VISITOR, [replace(mine(view(1, 0)), consent=False)], rules, T0)
    assert outcome is None
    assert await store.profile(VISITOR) is None
    assert await store.assignment(VISITOR) is None
    assert [k async for k in redis_client.scan_iter(match=f"*{VISITOR}*")] == []


async def test_rule_versions_and_rollback(redis_client: Redis) -> None:
    store = ContextStore(redis_client)
    one = await store.put_rules(parse_rules(RULES))
    two = await store.put_rules(parse_rules({**RULES, "rules": RULES["rules"][1:]}))
    assert (one, two) == (1, 2)
    assert len((await store.current_rules())[1].rules) == 2
    await store.rollback_rules(1)
    assert (await store.current_rules())[0] == 1
    with pytest.raises(KeyError, match="version 7"):
        await store.rollback_rules(7)


async def test_erasure_leaves_nothing_keyed_by_the_visitor(redis_client: Redis) -> None:
    store = ContextStore(redis_client)
    rules = await store.current_rules()
    await store.fold(VISITOR, [mine(view(1, 0)), mine(cart(2, 500))], rules, T0)
    other = "f" * 32
    await store.fold(other, [replace(view(3, 0), visitor=other)], rules, T0)
    assert [k async for k in redis_client.scan_iter(match=f"*{VISITOR}*")]
    assert await store.erase(VISITOR) == 2
    assert [k async for k in redis_client.scan_iter(match=f"*{VISITOR}*")] == []
    assert await store.profile(other) is not None


class _RacedStore(ContextStore):
    """A store whose window write meets a concurrent fold of one visitor (fault injection: the
    other writer commits between the window's read and its compare-and-set)."""

    raced: ClickEvent | None = None

    async def _cas_all(self, writes: list[Any]) -> list[bool]:
        if self.raced is not None:
            await ContextStore(self.redis).fold(
                self.raced.visitor, [self.raced], await self.current_rules(), T0 + 200
            )
        return await super()._cas_all(writes)


async def test_a_window_folds_like_one_visitor_at_a_time_and_loses_no_raced_write(
    redis_client: Redis,
) -> None:
    store = _RacedStore(redis_client, ttl_seconds=3600)
    await store.put_rules(parse_rules(RULES))
    rules = await store.current_rules()
    others = [f"window-visitor-{n}" for n in range(3)]
    window = {v: [replace(view(n, n * 60), visitor=v) for n in range(3)] for v in others}
    store.raced = replace(view(9, 150), visitor=others[0])

    profiled, _ = await store.fold_window(window, rules, T0 + 180)

    assert profiled == 3
    for visitor in others:
        assignment = await store.assignment(visitor)
        assert assignment is not None
        assert assignment.explanation == "matched rule 1 (outdoor-browsers)"
        assert 0 < await redis_client.ttl(keys.visitor_profile_key(visitor)) <= 3600
    raced = await store.profile(others[0])
    assert raced is not None
    assert {v.id for v in raced.views} == {"event-0000", "event-0001", "event-0002", "event-0009"}
    clean = await store.profile(others[1])
    assert clean is not None
    assert len(clean.views) == 3
