"""Profiles, CDP audiences, segment decisions and segment rule versions in RedisLike; erasure.

A visitor's keys share the hash tag ``{v:<visitor>}`` (`origin.core.keys.visitor_keys`): one
optimistic transaction (WATCH the profile and audiences, MULTI/EXEC) folds a batch of the
visitor's events (or audience memberships) and writes the new decision, all with the profile
TTL. Rule sets are versioned: each PUT stores a new immutable version and makes it current; a
rollback points ``current`` at an older one; both append to a capped history (who, when, how).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import WatchError

from fragments.clickstream import ClickEvent
from origin.context import audiences as cdp
from origin.context.learned import CoView, new_coviews
from origin.context.profile import Profile, apply_events, features
from origin.context.rules import Decision, Explanation, RuleSet, decide, explain, parse_rules
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_scripts import queue_script
from origin.core.redis_text import as_text

T = TypeVar("T")

DEFAULT_PROFILE_TTL = 30 * 24 * 3600
MAX_TX_ATTEMPTS = 8
MAX_HISTORY = 200
_CAS_FOLD = """
-- KEYS: the visitor's profile, segment, audiences (one hash slot).
-- ARGV: sha1 of the profile read ('' when absent), sha1 of the audiences read ('' when none),
-- the new profile, the TTL, then segment, rule, rule_name, rules_version, decided_at.
-- Writes only if neither was changed since it was read (else 0: the caller retries).
local current = redis.call('GET', KEYS[1])
local seen = ''
if current then seen = redis.sha1hex(current) end
if seen ~= ARGV[1] then return 0 end
local flat = redis.call('HGETALL', KEYS[3])
local items = {}
for i = 1, #flat, 2 do items[#items + 1] = flat[i] .. '=' .. flat[i + 1] end
table.sort(items)
local audiences = ''
if #items > 0 then audiences = redis.sha1hex(table.concat(items, '\\n')) end
if audiences ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
redis.call('HSET', KEYS[2], 'segment', ARGV[5], 'rule', ARGV[6], 'rule_name', ARGV[7],
           'rules_version', ARGV[8], 'decided_at', ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""
EMPTY_RULES = RuleSet("everyone", ())


@dataclass(frozen=True, slots=True)
class RulesChange:
    """One entry of the rules history: `version` made current by `by` at `at`, through a
    ``put`` or a ``rollback`` (then `previous` is the version it replaced)."""

    version: int
    action: str
    by: str
    at: float
    previous: int

    def to_json(self) -> str:
        return json.dumps(
            {"version": self.version, "action": self.action, "by": self.by, "at": self.at,
             "previous": self.previous},
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> RulesChange:
        doc = json.loads(text)
        return cls(
            int(doc["version"]), str(doc["action"]), str(doc["by"]), float(doc["at"]),
            int(doc["previous"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class VisitorExplanation:
    """What the explain tool shows: the visitor's profile (if any), audiences, the stored
    decision and a fresh evaluation of the current rules."""

    visitor: str
    profile: Profile | None
    audiences: frozenset[str]
    stored: SegmentAssignment | None
    rules_version: int
    evaluation: Explanation


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
        self._cas = redis.register_script(_CAS_FOLD)

    # --- rules -------------------------------------------------------------------------------

    async def put_rules(self, rules: RuleSet, by: str = "unknown") -> int:
        """Store `rules` as a new version and make it current; the version."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TX_ATTEMPTS):
                try:
                    await pipe.watch(
                        keys.SEGMENT_RULES_VERSIONS_KEY, keys.SEGMENT_RULES_CURRENT_KEY
                    )
                    version = int(await pipe.hlen(keys.SEGMENT_RULES_VERSIONS_KEY)) + 1
                    previous = int(as_text(await pipe.get(keys.SEGMENT_RULES_CURRENT_KEY) or "0"))
                    change = RulesChange(version, "put", by, time.time(), previous)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(keys.SEGMENT_RULES_VERSIONS_KEY, str(version), rules.to_json())
                    pipe.set(keys.SEGMENT_RULES_CURRENT_KEY, str(version))
                    self._record(pipe, change)
                    await bounded(pipe.execute(), self.timeout, "put segment rules")
                    return version
                except WatchError:
                    continue
        raise RuntimeError("segment rules changed concurrently: retry the PUT")

    async def rollback_rules(self, version: int, by: str = "unknown") -> None:
        """Make an earlier version current again (KeyError when it does not exist)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TX_ATTEMPTS):
                try:
                    await pipe.watch(keys.SEGMENT_RULES_CURRENT_KEY)
                    if not await pipe.hexists(keys.SEGMENT_RULES_VERSIONS_KEY, str(version)):
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        raise KeyError(f"segment rules version {version} does not exist")
                    previous = int(as_text(await pipe.get(keys.SEGMENT_RULES_CURRENT_KEY) or "0"))
                    change = RulesChange(version, "rollback", by, time.time(), previous)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(keys.SEGMENT_RULES_CURRENT_KEY, str(version))
                    self._record(pipe, change)
                    await bounded(pipe.execute(), self.timeout, "roll back segment rules")
                    return
                except WatchError:
                    continue
        raise RuntimeError("segment rules changed concurrently: retry the rollback")

    @staticmethod
    def _record(pipe: Any, change: RulesChange) -> None:
        pipe.lpush(keys.SEGMENT_RULES_HISTORY_KEY, change.to_json())
        pipe.ltrim(keys.SEGMENT_RULES_HISTORY_KEY, 0, MAX_HISTORY - 1)

    async def rules_history(self) -> list[RulesChange]:
        """Who made which version current, newest first (at most `MAX_HISTORY`)."""
        raw = await bounded(
            self.redis.lrange(keys.SEGMENT_RULES_HISTORY_KEY, 0, MAX_HISTORY - 1),
            self.timeout,
            "rules history",
        )
        return [RulesChange.from_json(as_text(r)) for r in raw]

    async def rules_version(self, version: int) -> RuleSet:
        """One stored version (KeyError when it does not exist)."""
        doc = await bounded(
            self.redis.hget(keys.SEGMENT_RULES_VERSIONS_KEY, str(version)), self.timeout, "rules"
        )
        if doc is None:
            raise KeyError(f"segment rules version {version} does not exist")
        return parse_rules(json.loads(as_text(doc)))

    async def rules_version_count(self) -> int:
        count = await bounded(
            self.redis.hlen(keys.SEGMENT_RULES_VERSIONS_KEY), self.timeout, "rules"
        )
        return int(count)

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

    async def fold_window(
        self,
        by_visitor: dict[str, list[ClickEvent]],
        rules: tuple[int, RuleSet],
        now: float | None = None,
    ) -> tuple[int, list[CoView]]:
        """`fold_learning` for a whole window of visitors in two pipelined round trips: read
        every profile and audience set, decide in Python, then write each visitor with a
        compare-and-set script (only if what was read is unchanged). A visitor whose state
        changed meanwhile is folded again on its own (`fold_learning`). Returns the visitors
        profiled and the co-views learned."""
        at = time.time() if now is None else now
        version, rule_set = rules
        visitors = list(by_visitor)
        async with self.redis.pipeline(transaction=False) as pipe:
            for visitor in visitors:
                pipe.get(keys.visitor_profile_key(visitor))
                pipe.hgetall(keys.visitor_audiences_key(visitor))
            read = await bounded(pipe.execute(), self.timeout, "read profiles")
        writes: list[tuple[str, list[str | bytes], list[CoView]]] = []
        for n, visitor in enumerate(visitors):
            raw, audiences_raw = read[2 * n], read[2 * n + 1]
            before = None if raw is None else Profile.from_json(raw)
            after = apply_events(before, by_visitor[visitor])
            if after is None:
                continue
            audiences = {as_text(k): as_text(v) for k, v in audiences_raw.items()}
            members = cdp.members({k: cdp.decode(v) for k, v in audiences.items()})
            decision = decide(rule_set, features(after, at, members), at)
            args: list[str | bytes] = [
                "" if raw is None else hashlib.sha1(_bytes(raw)).hexdigest(),
                _audiences_digest(audiences),
                after.to_json(),
                str(self.ttl),
                decision.segment,
                "" if decision.rule is None else str(decision.rule),
                decision.rule_name or "",
                str(version),
                repr(at),
            ]
            writes.append((visitor, args, new_coviews(before, after)))
        outcomes = await self._cas_all(writes)
        coviews: list[CoView] = []
        profiled = 0
        for (visitor, _, learned), written in zip(writes, outcomes, strict=True):
            if written:
                coviews += learned
                profiled += 1
                continue
            assignment, again = await self.fold_learning(visitor, by_visitor[visitor], rules, at)
            coviews += again
            profiled += assignment is not None
        return profiled, coviews

    async def _cas_all(
        self, writes: list[tuple[str, list[str | bytes], list[CoView]]]
    ) -> list[bool]:
        """Run the compare-and-set script for every write in one pipeline; which succeeded."""
        if not writes:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for visitor, args, _ in writes:
                visitor_keys = [
                    keys.visitor_profile_key(visitor),
                    keys.visitor_segment_key(visitor),
                    keys.visitor_audiences_key(visitor),
                ]
                await queue_script(self._cas, pipe, visitor_keys, args)
            done = await bounded(pipe.execute(), self.timeout, "write profiles")
        return [bool(int(d)) for d in done]

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

        def step(
            pipe: Any, before: Profile | None, stored: dict[str, cdp.State]
        ) -> tuple[bool, tuple[SegmentAssignment | None, list[CoView]]]:
            after = apply_events(before, events)
            if after is None:
                return False, (None, [])
            decision = decide(rule_set, features(after, at, cdp.members(stored)), at)
            pipe.multi()
            pipe.set(profile_key, after.to_json(), ex=self.ttl)
            self._write_decision(pipe, visitor, decision, version, at)
            assignment = SegmentAssignment(
                decision.segment, decision.rule, decision.rule_name, version, at
            )
            return True, (assignment, new_coviews(before, after))

        return await self._visitor_transaction(visitor, "profile", step)

    async def apply_memberships(
        self,
        visitor: str,
        changes: Sequence[cdp.Membership],
        rules: tuple[int, RuleSet],
        now: float | None = None,
    ) -> SegmentAssignment:
        """Fold one visitor's CDP audience changes (last writer wins) and decide their segment
        again from their profile (if any) and audiences, in one transaction."""
        at = time.time() if now is None else now
        version, rule_set = rules
        audiences_key = keys.visitor_audiences_key(visitor)

        def step(
            pipe: Any, profile: Profile | None, before: dict[str, cdp.State]
        ) -> tuple[bool, SegmentAssignment]:
            after = cdp.fold(before, changes)
            decision = decide(rule_set, features(profile, at, cdp.members(after)), at)
            pipe.multi()
            dropped = sorted(set(before) - set(after))
            if dropped:
                pipe.hdel(audiences_key, *dropped)
            if after:
                encoded = {name: cdp.encode(state) for name, state in after.items()}
                pipe.hset(audiences_key, mapping=encoded)
                pipe.expire(audiences_key, self.ttl)
            self._write_decision(pipe, visitor, decision, version, at)
            return True, SegmentAssignment(
                decision.segment, decision.rule, decision.rule_name, version, at
            )

        return await self._visitor_transaction(visitor, "audiences", step)

    async def _visitor_transaction(
        self,
        visitor: str,
        what: str,
        step: Callable[[Any, Profile | None, dict[str, cdp.State]], tuple[bool, T]],
    ) -> T:
        """Run `step` on the visitor's profile and audiences as read under WATCH, in one
        transaction: `step` calls ``pipe.multi()`` and queues its writes (answering True), or
        writes nothing (False). Tried again when either key changed meanwhile."""
        profile_key = keys.visitor_profile_key(visitor)
        audiences_key = keys.visitor_audiences_key(visitor)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TX_ATTEMPTS):
                try:
                    await pipe.watch(profile_key, audiences_key)
                    raw = await pipe.get(profile_key)
                    audiences = _audiences(await pipe.hgetall(audiences_key))
                    profile = None if raw is None else Profile.from_json(raw)
                    writes, outcome = step(pipe, profile, audiences)
                    if writes:
                        await bounded(pipe.execute(), self.timeout, f"write {what}")
                    else:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                    return outcome
                except WatchError:
                    continue
        raise RuntimeError(f"{what} of visitor {visitor!r} changed concurrently too often")

    async def apply_membership_batch(
        self, changes: Sequence[cdp.Membership], concurrency: int = 16, now: float | None = None
    ) -> int:
        """Apply memberships of many visitors (one transaction each, `concurrency` at a time,
        under the rules in force); the number of visitors."""
        by_visitor: dict[str, list[cdp.Membership]] = defaultdict(list)
        for change in changes:
            by_visitor[change.visitor].append(change)
        if not by_visitor:
            return 0
        rules = await self.current_rules()
        gate = asyncio.Semaphore(concurrency)

        async def one(visitor: str, mine: list[cdp.Membership]) -> None:
            async with gate:
                await self.apply_memberships(visitor, mine, rules, now)

        await asyncio.gather(*(one(v, mine) for v, mine in by_visitor.items()))
        return len(by_visitor)

    def _write_decision(
        self, pipe: Any, visitor: str, decision: Decision, version: int, at: float
    ) -> None:
        segment_key = keys.visitor_segment_key(visitor)
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

    async def audiences(self, visitor: str) -> dict[str, cdp.State]:
        """The visitor's audience states (members and exits kept as tombstones)."""
        raw = await bounded(
            self.redis.hgetall(keys.visitor_audiences_key(visitor)), self.timeout, "audiences"
        )
        return _audiences(raw)

    async def explain(self, visitor: str, now: float | None = None) -> VisitorExplanation:
        """The explain tool: every current rule evaluated for the visitor, and what is stored."""
        at = time.time() if now is None else now
        version, rule_set = await self.current_rules()
        profile = await self.profile(visitor)
        audiences = cdp.members(await self.audiences(visitor))
        evaluation = explain(rule_set, features(profile, at, audiences), at)
        return VisitorExplanation(
            visitor, profile, audiences, await self.assignment(visitor), version, evaluation
        )

    async def erase(self, visitor: str) -> int:
        """Delete everything keyed by the visitor (one hash slot); keys deleted."""
        deleted = await bounded(
            self.redis.delete(*keys.visitor_keys(visitor)), self.timeout, "erase visitor"
        )
        return int(deleted)


def _audiences(raw: dict[Any, Any]) -> dict[str, cdp.State]:
    return {as_text(k): cdp.decode(as_text(v)) for k, v in raw.items()}


def _bytes(raw: str | bytes) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


def _audiences_digest(audiences: dict[str, str]) -> str:
    """What `_CAS_FOLD` computes over the audiences hash: sha1 of sorted ``k=v`` lines."""
    if not audiences:
        return ""
    text = "\n".join(sorted(f"{k}={v}" for k, v in audiences.items()))
    return hashlib.sha1(text.encode()).hexdigest()
