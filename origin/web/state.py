"""What the origin app holds while it runs: created in the lifespan, reached via app.state."""

from __future__ import annotations

from dataclasses import dataclass

from fragments.slots import SlotCatalog
from origin.core.anchored_bundles import AnchoredBundles
from origin.core.store import Store
from origin.settings import Settings
from origin.web.metrics import OriginMetrics


@dataclass(slots=True)
class OriginState:
    settings: Settings
    store: Store
    slots: SlotCatalog
    metrics: OriginMetrics
    segment_ids: frozenset[str] = frozenset()
    """Known segments (refreshed from Redis on a miss)."""
    anchored: AnchoredBundles | None = None
    """Builds anchored bundles on request (made on first use)."""
