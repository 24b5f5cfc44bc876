"""Which experiments and variants exist, for the collector to refuse events about others.

A snapshot of ``experiment -> variant ids`` read from the experiment store, kept for `ttl_s`
seconds and re-read on a miss at most once per `miss_refresh_s` (so a client posting made-up
experiment keys cannot turn every request into a Redis read). Drafts count as known: a QA
preview of a draft produces exposures. It never writes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from origin.experiments.store import ExperimentStore

Loader = Callable[[], Awaitable[Mapping[str, frozenset[str]]]]


def store_loader(store: ExperimentStore) -> Loader:
    async def load() -> Mapping[str, frozenset[str]]:
        return {key: frozenset(e.variant_ids()) for key, e in (await store.all()).items()}

    return load


class KnownExperiments:
    """A cached ``experiment -> variants`` lookup."""

    def __init__(
        self,
        load: Loader,
        *,
        ttl_s: float = 5.0,
        miss_refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self.miss_refresh_s = miss_refresh_s
        self._clock = clock
        self._known: Mapping[str, frozenset[str]] = {}
        self._loaded_at = -float("inf")

    async def variants(self, experiment: str) -> frozenset[str] | None:
        """The variant ids of `experiment`, or None when it does not exist."""
        age = self._clock() - self._loaded_at
        if age > self.ttl_s or (experiment not in self._known and age > self.miss_refresh_s):
            self._known = await self._load()
            self._loaded_at = self._clock()
        return self._known.get(experiment)

    async def knows(self, experiment: str, variant: str) -> bool:
        variants = await self.variants(experiment)
        return variants is not None and variant in variants
