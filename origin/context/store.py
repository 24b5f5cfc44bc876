"""Profiles, segment decisions and segment rule versions in RedisLike; erasure of a visitor.

A visitor's keys share the hash tag ``{v:<visitor>}`` (`origin.core.keys.visitor_keys`): one
optimistic transaction (WATCH the profile, MULTI/EXEC) folds a batch of the visitor's events
into the profile and writes the new decision, both with the profile TTL. Rule sets are
versioned: each PUT stores a new immutable version and makes it current; a rollback points
``current`` at an older one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from fragments.clickstream import ClickEvent
from origin.context.learned import CoView, new_coviews
from origin.context.profile import Profile, apply_events, features
from origin.context.rules import Decision, RuleSet, decide, parse_rules
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text

DEFAULT_PROFILE_TTL = 30 * 24 * 3600
MAX_TX_ATTEMPTS = 8
EMPTY_RULES = RuleSet("everyone", ())


@dataclass(frozen=True, slots=True)
class SegmentAssignment:
    """A visitor's current segment and why (what the edge's refresh endpoint answers)."""

    segment: str
    rule: int | None
    rule_name: str | None
    rules_version: int
    decided_at: float

    @property
    def explanation(self) -> str:
        return Decision(self.segment, self.rule, self.rule_name).explanation


class ContextStore:
    """Reads and updates visitor profiles and segment rules."""

    def __init__(
        self, redis: RedisLike, *, ttl_seconds: int = DEFAULT_PROFILE_TTL, timeout: float = 2.0
    ) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self.timeout = timeout

    # --- rules -------------------------------------------------------------------------------

    async def put_rules(self, rules: RuleSet) -> int:
        """Store `rules` as a new version and make it current; the version."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TX_ATTEMPTS):
                try:
                    await pipe.watch(keys.SEGMENT_RULES_VERSIONS_KEY)
                    version = int(await pipe.hlen(keys.SEGMENT_RULES_VERSIONS_KEY)) + 1
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(keys.SEGMENT_RULES_VERSIONS_KEY, str(version), rules.to_json())
                    pipe.set(keys.SEGMENT_RULES_CURRENT_KEY, str(version))
                    await bounded(pipe.execute(), self.timeout, "put segment rules")
                    return version
                except WatchError:
                    continue
        raise RuntimeError("segment rules changed concurrently: retry the PUT")

    async def rollback_rules(self, version: int) -> None:
        """Make an earlier version current again (KeyError when it does not exist)."""
        exists = await bounded(
            self.redis.hexists(keys.SEGMENT_RULES_VERSIONS_KEY, str(version)), self.timeout, "rules"
        )
        if not exists:
            raise KeyError(f"segment rules version {version} does not exist")
        await bounded(
            self.redis.set(keys.SEGMENT_RULES_CURRENT_KEY, str(version)), self.timeout, "rules"
        )

    async def current_rules(self) -> tuple[int, RuleSet]:
        """The version in force and its rules (version 0: no rules yet, the default only)."""
        raw = await bounded(self.redis.get(keys.SEGMENT_RULES_CURRENT_KEY), self.timeout, "rules")
        if raw is None:
            return 0, EMPTY_RULES
        version = int(as_text(raw))
        doc = await bounded(
            self.redis.hget(keys.SEGMENT_RULES_VERSIONS_KEY, str(version)), self.timeout, "rules"
        )
        if doc is None:
            raise KeyError(f"segment rules version {version} is current but not stored")
        return version, parse_rules(json.loads(as_text(doc)))

    # --- profiles ----------------------------------------------------------------------------

    async def profile(self, visitor: str) -> Profile | None:
        raw = await bounded(
            self.redis.get(keys.visitor_profile_key(visitor)), self.timeout, "read profile"
        )
        return None if raw is None else Profile.from_json(raw)

    async def assignment(self, visitor: str) -> SegmentAssignment | None:
        raw: dict[Any, Any] = await bounded(
            self.redis.hgetall(keys.visitor_segment_key(visitor)), self.timeout, "read segment"
        )
        if not raw:
            return None
        doc = {as_text(k): as_text(v) for k, v in raw.items()}
        return SegmentAssignment(
            segment=doc["segment"],
            rule=int(doc["rule"]) if doc["rule"] else None,
            rule_name=doc["rule_name"] or None,
            rules_version=int(doc["rules_version"]),
            decided_at=float(doc["decided_at"]),
        )

    async def fold(
        self,
        visitor: str,
        events: Sequence[ClickEvent],
        rules: tuple[int, RuleSet],
        now: float | None = None,
    ) -> SegmentAssignment | None:
        """Fold the visitor's events into their profile and decide their segment (one
        transaction); None when no consented event left anything to profile."""
        return (await self.fold_learning(visitor, events, rules, now))[0]

    async def fold_learning(
        self,
        visitor: str,
        events: Sequence[ClickEvent],
        rules: tuple[int, RuleSet],
        now: float | None = None,
    ) -> tuple[SegmentAssignment | None, list[CoView]]:
        """`fold`, plus the co-views the profile's new views make (`origin.context.learned`)."""
        at = time.time() if now is None else now
        version, rule_set = rules
        profile_key = keys.visitor_profile_key(visitor)
        segment_key = keys.visitor_segment_key(visitor)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TX_ATTEMPTS):
                try:
                    await pipe.watch(profile_key)
                    raw = await pipe.get(profile_key)
                    before = None if raw is None else Profile.from_json(raw)
                    after = apply_events(before, events)
                    if after is None:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return None, []
                    decision = decide(rule_set, features(after, at), at)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(profile_key, after.to_json(), ex=self.ttl)
                    pipe.hset(
                        segment_key,
                        mapping={
                            "segment": decision.segment,
                            "rule": "" if decision.rule is None else str(decision.rule),
                            "rule_name": decision.rule_name or "",
                            "rules_version": str(version),
                            "decided_at": repr(at),
                        },
                    )
                    pipe.expire(segment_key, self.ttl)
                    await bounded(pipe.execute(), self.timeout, "write profile")
                    assignment = SegmentAssignment(
                        decision.segment, decision.rule, decision.rule_name, version, at
                    )
                    return assignment, new_coviews(before, after)
                except WatchError:
                    continue
        raise RuntimeError(f"profile of visitor {visitor!r} changed concurrently too often")

    async def erase(self, visitor: str) -> int:
        """Delete everything keyed by the visitor (one hash slot); keys deleted."""
        deleted = await bounded(
            self.redis.delete(*keys.visitor_keys(visitor)), self.timeout, "erase visitor"
        )
        return int(deleted)
