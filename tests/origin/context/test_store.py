"""Profiles and segment decisions in a real Redis: fold, TTL, consent off, rule versions and
erasure (nothing keyed by the visitor is left)."""

from __future__ import annotations

from dataclasses import replace

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
