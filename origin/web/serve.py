"""Run the origin under uvicorn, and the seed command, from `Settings`."""

from __future__ import annotations

import uvicorn

from fragments.slots import load_slots
from origin.core.redis_client import redis_client
from origin.core.seed import seed_canary, seed_demo
from origin.core.store import Store
from origin.errors import SettingsError
from origin.settings import Settings
from origin.web.app import create_app


def _redis_url(settings: Settings) -> str:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL (or run 'shelfedge dev')", None)
    return settings.redis_url


def serve_origin(settings: Settings) -> int:
    _redis_url(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.origin_host,
        port=settings.origin_port,
        log_level="warning",
        log_config=None,  # uvicorn logs through the root logger: JSON lines (shelfedge.logs)
        access_log=False,
        lifespan="on",
    )
    return 0


async def seed_command(settings: Settings, seed: int | None) -> int:
    client = redis_client(_redis_url(settings), timeout_ms=settings.redis_timeout_ms)
    try:
        slots = load_slots()
        report = await seed_demo(
            Store(client, 5.0),
            slots,
            settings.catalog_seed if seed is None else seed,
            settings.catalog_skus,
        )
        canary_bundles = await seed_canary(Store(client, 5.0), slots)
    finally:
        await client.aclose()
    print(
        f"seeded {report.products} products, {report.segments} segments, "
        f"{report.bundles} bundles in {report.seconds:.1f}s; the freshness canary's product and"
        f" segment with {canary_bundles} bundles"
    )
    return 0
