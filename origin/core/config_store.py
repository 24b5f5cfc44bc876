"""Read the published edge configuration: the current version, any version, the version list.

Published versions are immutable JSON documents in one Redis hash (`origin.core.keys`); the
current version number says which one the edge is served. Writes happen only inside the
experiment store's transaction (`origin.experiments.store`), so a change and the configuration
that publishes it commit together. This module only reads; it never writes nor decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fragments.experiment_codec import config_from_json
from fragments.experiments import EMPTY_CONFIG, EdgeExperimentConfig
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text


@dataclass(frozen=True, slots=True)
class PublishedVersion:
    """What the versions listing shows about one published configuration."""

    version: int
    at: float
    who: str
    reason: str
    """E.g. ``start home-hero-layout`` or ``rollback to 3``."""
    experiments: tuple[str, ...]
    """Keys of the experiments it contains."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "at": self.at,
                "who": self.who,
                "reason": self.reason,
                "experiments": list(self.experiments),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> PublishedVersion:
        doc = json.loads(text)
        return cls(
            int(doc["version"]),
            float(doc["at"]),
            str(doc["who"]),
            str(doc["reason"]),
            tuple(doc["experiments"]),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.to_json())
        return out


@dataclass(frozen=True, slots=True)
class ConfigReader:
    """Read-only access to published configurations."""

    redis: RedisLike
    timeout: float = 0.25

    async def current_version(self) -> int:
        """The current version number; 0 when nothing was ever published."""
        raw = await bounded(
            self.redis.get(keys.EDGE_CONFIG_CURRENT_KEY), self.timeout, "read edge config version"
        )
        return int(as_text(raw)) if raw else 0

    async def version_json(self, version: int) -> str | None:
        """A published version's JSON exactly as stored (what the edge is served)."""
        raw = await bounded(
            self.redis.hget(keys.EDGE_CONFIG_VERSIONS_KEY, str(version)),
            self.timeout,
            "read edge config",
        )
        return None if raw is None else as_text(raw)

    async def load(self, version: int) -> EdgeExperimentConfig | None:
        text = await self.version_json(version)
        return None if text is None else config_from_json(text)

    async def current(self) -> EdgeExperimentConfig:
        """The current configuration (`EMPTY_CONFIG` when nothing was published)."""
        version = await self.current_version()
        if version == 0:
            return EMPTY_CONFIG
        return await self.load(version) or EMPTY_CONFIG

    async def versions(self) -> list[PublishedVersion]:
        """Every published version, newest first."""
        rows = await bounded(
            self.redis.hvals(keys.EDGE_CONFIG_META_KEY), max(self.timeout, 2.0), "list versions"
        )
        found = [PublishedVersion.from_json(as_text(r)) for r in rows]
        return sorted(found, key=lambda v: v.version, reverse=True)
