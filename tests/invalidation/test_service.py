"""`invalidation.service`: what the service does to its process before it consumes."""

from __future__ import annotations

import gc

from invalidation.service import freeze_startup_heap


def test_the_startup_heap_leaves_the_collectors_generations() -> None:
    survivor = [object() for _ in range(1000)]
    try:
        freeze_startup_heap()
        counts, frozen = gc.get_count(), gc.get_freeze_count()
        assert frozen >= len(survivor)
        assert counts == (0, 0, 0), "every generation is empty right after the freeze"
    finally:
        gc.unfreeze()
