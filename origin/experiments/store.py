"""Experiment definitions, audit logs and published configurations in Redis, changed atomically.

Every write goes through `ExperimentStore.transact`: WATCH the experiments hash, the current
config version and the preview token; read a `Snapshot`; let the caller plan a `Commit` (it may
validate and build bundles meanwhile); then MULTI/EXEC the experiment upserts, their audit
entries, the new configuration version and the preview token together. If anything watched
changed in between, EXEC fails and the whole plan is redone from a fresh snapshot, so a stale
If-Match can never win and an experiment change never commits without its configuration.
All keys carry the ``{x}`` hash tag (one Redis Cluster slot). It never decides what to write.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from fragments.experiment_codec import config_to_json, experiment_from_dict, experiment_to_dict
from fragments.experiments import EdgeExperimentConfig, Experiment
from origin.core import keys
from origin.core.config_store import ConfigReader, PublishedVersion
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text
from origin.experiments.audit import AuditEntry
from origin.experiments.errors import ConcurrentModification

MAX_TRANSACTION_ATTEMPTS = 16
AUDIT_ENTRIES_KEPT = 1000
_WATCHED = (keys.EXPERIMENTS_KEY, keys.EDGE_CONFIG_CURRENT_KEY, keys.PREVIEW_TOKEN_KEY)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a transaction planned from (the watched state)."""

    experiments: Mapping[str, Experiment]
    config_version: int
    """The current published version (0 = never published)."""
    preview_token: str | None

    @property
    def next_config_version(self) -> int:
        return self.config_version + 1


@dataclass(frozen=True, slots=True)
class Commit:
    """What a transaction writes (all or nothing)."""

    experiments: tuple[Experiment, ...] = ()
    """Experiments to store (insert or replace)."""
    audit: tuple[tuple[str, AuditEntry], ...] = ()
    """(experiment key, entry) to append."""
    config: EdgeExperimentConfig | None = None
    """A new configuration version to publish and make current."""
    published: PublishedVersion | None = None
    """The versions-listing entry of `config`."""
    preview_token: str | None = None
    """A new preview token to store."""


class ExperimentStore:
    """Async access to the ``{x}`` keys."""

    def __init__(self, redis: RedisLike, timeout: float = 0.25) -> None:
        self.redis = redis
        self.timeout = timeout
        self.configs = ConfigReader(redis, timeout)

    async def all(self) -> dict[str, Experiment]:
        raw = await bounded(
            self.redis.hgetall(keys.EXPERIMENTS_KEY), max(self.timeout, 2.0), "list experiments"
        )
        return _decode_all(raw)

    async def get(self, key: str) -> Experiment | None:
        raw = await bounded(
            self.redis.hget(keys.EXPERIMENTS_KEY, key), self.timeout, "read experiment"
        )
        return None if raw is None else experiment_from_dict(json.loads(raw))

    async def audit(self, key: str, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` audit entries of an experiment, newest first."""
        rows = await bounded(
            self.redis.lrange(keys.experiment_audit_key(key), -limit, -1),
            self.timeout,
            "read audit log",
        )
        return [AuditEntry.from_json(as_text(r)) for r in reversed(rows)]

    async def put_preview_code(self, code: str, token: str, ttl_s: int) -> None:
        """Remember a one-time preview link's code for `ttl_s` seconds."""
        await bounded(
            self.redis.set(keys.preview_code_key(code), token.encode(), ex=ttl_s),
            self.timeout,
            "store preview code",
        )

    async def take_preview_code(self, code: str) -> str | None:
        """The token behind `code`, deleting it in the same step (a link works once)."""
        raw = await bounded(
            self.redis.getdel(keys.preview_code_key(code)), self.timeout, "take preview code"
        )
        return None if raw is None else as_text(raw)

    async def preview_token(self) -> str | None:
        raw = await bounded(self.redis.get(keys.PREVIEW_TOKEN_KEY), self.timeout, "read token")
        return None if raw is None else as_text(raw)

    async def transact(self, plan: Callable[[Snapshot], Awaitable[Commit]]) -> Commit:
        """Plan from a watched snapshot and commit atomically; replan when it changed."""
        deadline = max(self.timeout, 2.0)
        async with self.redis.pipeline(transaction=True) as typed_pipe:
            pipe: Any = typed_pipe  # redis-py leaves Pipeline.multi / reset untyped
            for _attempt in range(MAX_TRANSACTION_ATTEMPTS):
                try:
                    await bounded(pipe.watch(*_WATCHED), deadline, "watch experiments")
                    snapshot = await _read_snapshot(pipe, deadline)
                    commit = await plan(snapshot)
                    pipe.multi()
                    _queue(pipe, commit, snapshot)
                    await bounded(pipe.execute(), deadline, "commit experiments")
                    return commit
                except WatchError:
                    continue
                finally:
                    await pipe.reset()
        raise ConcurrentModification(
            f"experiments changed concurrently {MAX_TRANSACTION_ATTEMPTS} times; retry"
        )


async def _read_snapshot(pipe: Any, deadline: float) -> Snapshot:
    raw = await bounded(pipe.hgetall(keys.EXPERIMENTS_KEY), deadline, "read experiments")
    version = await bounded(pipe.get(keys.EDGE_CONFIG_CURRENT_KEY), deadline, "read version")
    token = await bounded(pipe.get(keys.PREVIEW_TOKEN_KEY), deadline, "read preview token")
    return Snapshot(
        experiments=_decode_all(raw),
        config_version=int(as_text(version)) if version else 0,
        preview_token=None if token is None else as_text(token),
    )


def _queue(pipe: Any, commit: Commit, snapshot: Snapshot) -> None:
    for e in commit.experiments:
        pipe.hset(keys.EXPERIMENTS_KEY, e.key, json.dumps(experiment_to_dict(e)))
    for key, entry in commit.audit:
        pipe.rpush(keys.experiment_audit_key(key), entry.to_json())
        pipe.ltrim(keys.experiment_audit_key(key), -AUDIT_ENTRIES_KEPT, -1)
    if commit.config is not None:
        if commit.config.version != snapshot.next_config_version:
            raise AssertionError(
                f"config version {commit.config.version} planned from snapshot "
                f"{snapshot.config_version}: publish must use snapshot.next_config_version"
            )
        version = str(commit.config.version)
        pipe.hset(keys.EDGE_CONFIG_VERSIONS_KEY, version, config_to_json(commit.config))
        if commit.published is not None:
            pipe.hset(keys.EDGE_CONFIG_META_KEY, version, commit.published.to_json())
        pipe.set(keys.EDGE_CONFIG_CURRENT_KEY, version)
    if commit.preview_token is not None:
        pipe.set(keys.PREVIEW_TOKEN_KEY, commit.preview_token)


def _decode_all(raw: Mapping[Any, Any]) -> dict[str, Experiment]:
    return {as_text(k): experiment_from_dict(json.loads(v)) for k, v in raw.items()}
