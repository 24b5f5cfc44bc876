"""Load the demo catalog (5,000 SKUs, every bundle built) into a Redis the benchmark started.

The same seed and size the dev stack uses (`Settings` defaults), so figures match `make run`.
It must never touch a Redis the benchmark did not start (callers pass their own server's URL).
"""

from __future__ import annotations

from fragments.slots import load_slots
from origin.core.redis_client import redis_client
from origin.core.seed import SeedReport, seed_demo
from origin.core.store import Store
from origin.settings import Settings

CATALOG_SEED = Settings().catalog_seed
CATALOG_SKUS = Settings().catalog_skus
SEED_TIMEOUT_S = 10.0


def seeded_line(report: SeedReport) -> str:
    return (
        f"seeded {report.products} products, {report.bundles} bundles "
        f"in {report.seconds:.1f} s (a fresh redis-server)"
    )


async def seed_catalog(redis_url: str, *, flush: bool = False) -> SeedReport:
    """Seed the demo catalog; with `flush`, empty that Redis first (a fresh starting state)."""
    client = redis_client(redis_url, timeout_ms=250)
    try:
        if flush:
            await client.flushall()
        return await seed_demo(
            Store(client, SEED_TIMEOUT_S), load_slots(), CATALOG_SEED, CATALOG_SKUS
        )
    finally:
        await client.aclose()
