"""CDP audience memberships in a real Redis (single and cluster): stored under the visitor's
hash tag with the profile TTL, re-deciding the segment at once, seen by later folds, explained,
and erased with everything else keyed by the visitor."""

from __future__ import annotations

from dataclasses import replace

from redis.asyncio import Redis

from origin.context.audiences import Membership
from origin.context.rules import parse_rules
from origin.context.store import ContextStore
from origin.core import keys
from tests.origin.context.test_rules import RULES, T0, cart, view

VISITOR = "aud-visitor-0123456789"
VIP = {
    "name": "vip",
    "segment": "vip-shoppers",
    "when": [{"feature": "audience:spring_vip", "op": "eq", "value": True}],
}


async def test_memberships_decide_expire_fold_and_erase(redis_client: Redis) -> None:
    store = ContextStore(redis_client, ttl_seconds=3600)
    await store.put_rules(parse_rules({**RULES, "rules": [*RULES["rules"], VIP]}), by="alice")
    rules = await store.current_rules()

    entered = await store.apply_memberships(
        VISITOR, [Membership(VISITOR, "spring_vip", True, T0)], rules, now=T0
    )
    assert (entered.segment, entered.explanation) == ("vip-shoppers", "matched rule 4 (vip)")
    assert await store.assignment(VISITOR) == entered
    assert await store.profile(VISITOR) is None  # an audience alone makes no profile
    assert 0 < await redis_client.ttl(keys.visitor_audiences_key(VISITOR)) <= 3600

    # behaviour ranks before the audience here: a big cart moves the visitor to rule 2
    big = await store.fold(VISITOR, [replace(cart(1, 20_000), visitor=VISITOR)], rules, T0)
    assert big is not None
    assert big.explanation == "matched rule 2 (big-cart)"

    # an older entry arriving after a newer exit changes nothing
    exits = [Membership(VISITOR, "spring_vip", False, T0 + 10)]
    await store.apply_memberships(VISITOR, exits, rules, now=T0 + 10)
    late = [Membership(VISITOR, "spring_vip", True, T0 + 5)]
    await store.apply_memberships(VISITOR, late, rules, now=T0 + 11)
    assert (await store.audiences(VISITOR))["spring_vip"] == (False, T0 + 10)

    explained = await store.explain(VISITOR, now=T0 + 11)
    assert explained.audiences == frozenset()
    assert explained.evaluation.decision.explanation == "matched rule 2 (big-cart)"
    assert [t.matched for t in explained.evaluation.traces] == [False, True, False, False]

    assert await store.erase(VISITOR) == 3
    assert [k async for k in redis_client.scan_iter(match=f"*{VISITOR}*")] == []


async def test_rules_history_records_puts_and_rollbacks(redis_client: Redis) -> None:
    store = ContextStore(redis_client)
    await store.put_rules(parse_rules(RULES), by="alice")
    await store.put_rules(parse_rules({**RULES, "rules": []}), by="bob")
    await store.rollback_rules(1, by="carol")
    history = [(c.version, c.action, c.by, c.previous) for c in await store.rules_history()]
    assert history == [(1, "rollback", "carol", 2), (2, "put", "bob", 1), (1, "put", "alice", 0)]
    assert (await store.current_rules())[0] == 1
    assert (await store.rules_version(2)).rules == ()
    assert await store.rules_version_count() == 2


async def test_views_then_audience_in_one_profile(redis_client: Redis) -> None:
    store = ContextStore(redis_client)
    await store.put_rules(parse_rules({**RULES, "rules": [VIP, *RULES["rules"]]}))
    rules = await store.current_rules()
    events = [replace(view(n, n * 60), visitor=VISITOR) for n in range(3)]
    outdoor = await store.fold(VISITOR, events, rules, T0 + 180)
    assert outdoor is not None
    assert outdoor.explanation == "matched rule 2 (outdoor-browsers)"
    vip = await store.apply_memberships(
        VISITOR, [Membership(VISITOR, "spring_vip", True, T0 + 200)], rules, now=T0 + 200
    )
    assert vip.explanation == "matched rule 1 (vip)"
