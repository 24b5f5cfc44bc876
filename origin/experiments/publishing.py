"""Publishing: the configuration the edge reads, and the bundles it needs before it goes live.

`build_config` assembles an immutable `EdgeExperimentConfig` from the stored experiments (every
experiment that is not a draft). `Publisher.prepare` builds the ranked lists and bundles of the
variants the new configuration adds or changes compared with the current one, before the
configuration is committed, so an edge that picks it up never asks for a bundle that does not
exist. It never commits anything itself (the experiment store's transaction does).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence

from fragments.experiments import PUBLISHED_STATUSES, EdgeExperimentConfig, Experiment
from fragments.ids import CONTROL_VARIANT
from origin.core.builder import BundleBuilder
from origin.core.purge_queue import PurgeRequest
from origin.core.recompute import Recomputer
from origin.core.store import Store
from origin.core.variants import variants_of


def preview_hash(token: str | None) -> str:
    """SHA-256 hex of the preview token ("" when there is none: overrides stay off)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest() if token else ""


def build_config(
    experiments: Iterable[Experiment], version: int, preview_token: str | None
) -> EdgeExperimentConfig:
    """The configuration of every non-draft experiment, ordered by key (deterministic)."""
    published = sorted(
        (e for e in experiments if e.status in PUBLISHED_STATUSES), key=lambda e: e.key
    )
    return EdgeExperimentConfig(
        version=version,
        experiments=tuple(published),
        preview_secret_hash=preview_hash(preview_token),
    )


class Publisher:
    """Builds variant bundles against the origin's store."""

    def __init__(self, store: Store, builder: BundleBuilder, purgers: Sequence[str] = ()) -> None:
        self.store = store
        self.builder = builder
        self.purgers = tuple(purgers)
        """Purgers told about variant bundles whose content changed (an edge may hold an old
        copy from an earlier run of the variant)."""

    async def prepare(self, new: EdgeExperimentConfig, current: EdgeExperimentConfig) -> int:
        """Build the lists and bundles of variants `new` needs and `current` lacks.

        Returns how many bundles were (re)computed. Idempotent.
        """
        known = variants_of(current)
        fresh = [v for v in variants_of(new) if v.id != CONTROL_VARIANT and v not in known]
        if not fresh:
            return 0
        segments = await self.store.segments()
        recomputer = Recomputer(self.store, self.builder, segments, variants=())
        purge = PurgeRequest(self.purgers, 1, int(time.time() * 1000)) if self.purgers else None
        return len(await recomputer.prepare(fresh, purge))
