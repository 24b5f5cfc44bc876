"""``shelfedge aggregate``: wire the aggregator from `Settings` and run it until a signal.

Resources (Redis client, Kafka consumer) are created here and closed on exit; the decisions
are the aggregator's. Logs a one-line summary every `REPORT_EVERY_S` seconds, never event
contents.
"""

from __future__ import annotations

import asyncio
import logging

from origin.core.redis_client import redis_client
from origin.core.signals import stop_on_signals
from origin.errors import SettingsError
from origin.events.aggregator import Aggregator
from origin.events.counters import EventCounters
from origin.settings import Settings

log = logging.getLogger("shelfedge.aggregator")
REPORT_EVERY_S = 30.0


async def run_aggregator(settings: Settings, stop: asyncio.Event) -> None:
    if settings.redis_url is None or settings.kafka_bootstrap is None:
        missing = "REDIS_URL" if settings.redis_url is None else "KAFKA_BOOTSTRAP_SERVERS"
        raise SettingsError(missing, "a value (or run 'shelfedge dev')", None)
    redis = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    aggregator = Aggregator(
        settings.kafka_bootstrap,
        settings.aggregator_group,
        EventCounters(redis, 5.0),
        security=settings.kafka_security,
    )
    try:
        await aggregator.start()
        reporter = asyncio.create_task(_report(aggregator, stop))
        log.info("aggregator running in group %s", settings.aggregator_group)
        try:
            await aggregator.run(stop)
        finally:
            stop.set()
            await reporter
            await aggregator.stop()
    finally:
        await redis.aclose()


async def _report(aggregator: Aggregator, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with asyncio.timeout(REPORT_EVERY_S):
                await stop.wait()
        except TimeoutError:
            s = aggregator.stats
            log.info(
                "aggregated %d records: %d counted, %d duplicates, %d undecodable",
                s.records, s.counted, s.duplicates, s.undecodable,
            )  # fmt: skip


def aggregate_command(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main() -> None:
        await run_aggregator(settings, stop_on_signals())

    asyncio.run(main())
    return 0
