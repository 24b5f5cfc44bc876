"""``shelfedge context``: wire the context processor from `Settings` and run it until a signal.

Resources (Redis client, Kafka consumer) are created here and closed on exit.
"""

from __future__ import annotations

import asyncio
import logging

from origin.context.processor import ContextProcessor
from origin.context.store import ContextStore
from origin.core.redis_client import redis_client
from origin.core.signals import stop_on_signals
from origin.errors import SettingsError
from origin.settings import Settings

log = logging.getLogger("shelfedge.context")


async def run_processor(settings: Settings, stop: asyncio.Event) -> None:
    if settings.redis_url is None or settings.kafka_bootstrap is None:
        missing = "REDIS_URL" if settings.redis_url is None else "KAFKA_BOOTSTRAP_SERVERS"
        raise SettingsError(missing, "a value (or run 'shelfedge dev')", None)
    redis = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    store = ContextStore(redis, ttl_seconds=settings.profile_ttl_seconds, timeout=5.0)
    processor = ContextProcessor(
        settings.kafka_bootstrap,
        settings.context_group,
        store,
        security=settings.kafka_security,
    )
    try:
        await processor.start()
        log.info("context processor running in group %s", settings.context_group)
        try:
            await processor.run(stop)
        finally:
            await processor.stop()
    finally:
        await redis.aclose()


def context_command(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main() -> None:
        await run_processor(settings, stop_on_signals())

    asyncio.run(main())
    return 0
