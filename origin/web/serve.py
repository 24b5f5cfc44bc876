"""Run the origin under uvicorn, and the seed command, from `Settings`.

Proxy headers: uvicorn believes ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only from the
addresses in ``SHELFEDGE_TRUSTED_PROXIES`` (none by default: the peer address is the client),
never from loopback or anyone else by default, so a client cannot pick its own address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import uvicorn

from fragments.slots import load_slots
from origin.core.redis_client import redis_client
from origin.core.seed import seed_canary, seed_demo
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
    uvicorn.run(create_app(settings), **uvicorn_options(settings))
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of uvicorn.run / uvicorn.Config for the origin."""
    trusted = list(settings.trusted_proxies)
    return {
        "host": settings.origin_host,
        "port": settings.origin_port,
        "log_level": "warning",
        "log_config": None,  # uvicorn logs through the root logger: JSON lines (shelfedge.logs)
        "access_log": False,
        "lifespan": "on",
        "proxy_headers": bool(trusted),
        # uvicorn's own default (FORWARDED_ALLOW_IPS or 127.0.0.1) must not apply: name them.
        "forwarded_allow_ips": trusted or [],
        "server_header": False,
    }


async def seed_command(settings: Settings, seed: int | None) -> int:
    client = redis_client(_redis_url(settings), timeout_ms=settings.redis_timeout_ms)
    try:
        slots = load_slots()
        segments = load_segments_file(
            Path(settings.segments_file) if settings.segments_file else DEMO_SEGMENTS_FILE
        )
        report = await seed_demo(
            Store(client, 5.0),
            slots,
            settings.catalog_seed if seed is None else seed,
            settings.catalog_skus,
            segments,
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
