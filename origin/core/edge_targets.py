"""Which published edge-config version each edge target holds (Workers KV, ...), in RedisLike.

The config pusher (`origin.experiments.kv_push`) records here every write it made and every write
that failed; the admin UI and ``GET /v1/edge-config/versions`` show it, so an operator sees an
edge that is behind. One hash (`keys.EDGE_CONFIG_TARGETS_KEY`, in the experiments' hash slot),
field per target. A failed write keeps the version the target last held. It never talks to a
target itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text


@dataclass(frozen=True, slots=True)
class TargetState:
    """What one edge target holds."""

    target: str
    """The target's name, e.g. ``workers-kv``."""
    version: int
    """The config version the target last accepted (0: none yet)."""
    written_at: float | None = None
    """Unix time of that write."""
    failed_version: int | None = None
    """The version of the last write that failed after its retries (None: the last succeeded)."""
    failed_at: float | None = None
    error: str = ""
    """Why that write failed (never carries a credential)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, text: str) -> TargetState:
        doc = json.loads(text)
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


@dataclass(frozen=True, slots=True)
class EdgeTargets:
    """Read and record target states."""

    redis: RedisLike
    timeout: float = 2.0

    async def all(self) -> list[TargetState]:
        """Every target's state, by name."""
        rows = await bounded(
            self.redis.hvals(keys.EDGE_CONFIG_TARGETS_KEY), self.timeout, "read edge targets"
        )
        return sorted((TargetState.from_json(as_text(r)) for r in rows), key=lambda t: t.target)

    async def get(self, target: str) -> TargetState:
        raw = await bounded(
            self.redis.hget(keys.EDGE_CONFIG_TARGETS_KEY, target), self.timeout, "read edge target"
        )
        return TargetState(target, 0) if raw is None else TargetState.from_json(as_text(raw))

    async def written(self, target: str, version: int, at: float) -> TargetState:
        """Record that `target` accepted `version`."""
        return await self._put(TargetState(target, version, written_at=at))

    async def failed(self, target: str, version: int, at: float, error: str) -> TargetState:
        """Record that writing `version` to `target` failed; it still holds what it held."""
        held = await self.get(target)
        return await self._put(
            replace(held, failed_version=version, failed_at=at, error=error[:500])
        )

    async def _put(self, state: TargetState) -> TargetState:
        await bounded(
            self.redis.hset(
                keys.EDGE_CONFIG_TARGETS_KEY, state.target, json.dumps(state.to_dict())
            ),
            self.timeout,
            "record edge target",
        )
        return state
