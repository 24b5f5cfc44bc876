"""Run the origin under uvicorn, and the seed command, from `Settings`."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from fragments.slots import load_slots
from origin.core.redis_client import redis_client
from origin.core.seed import seed_demo
from origin.core.segments_config import DEMO_SEGMENTS_FILE, load_segments_file
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
        access_log=False,
        lifespan="on",
    )
    return 0


async def seed_command(settings: Settings, seed: int | None) -> int:
    client = redis_client(_redis_url(settings), timeout_ms=settings.redis_timeout_ms)
    try:
        segments = load_segments_file(
            Path(settings.segments_file) if settings.segments_file else DEMO_SEGMENTS_FILE
        )
        report = await seed_demo(
            Store(client, 5.0),
            load_slots(),
            settings.catalog_seed if seed is None else seed,
            settings.catalog_skus,
            segments,
        )
    finally:
        await client.aclose()
    print(
        f"seeded {report.products} products, {report.segments} segments, "
        f"{report.bundles} bundles in {report.seconds:.1f}s"
    )
    return 0
