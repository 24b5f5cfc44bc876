"""Sub-commands of ``shelfedge`` for invalidation: consume, events, sell-out, replay, dlq (they
speak Kafka) and purges (list and re-drive the purges a CDN refused)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import suppress

from fragments.slots import load_slots
from invalidation.apply import EventApplier
from invalidation.demo_events import DemoEventStream
from invalidation.errors import InvalidationError
from invalidation.pipeline import InvalidationPipeline
from invalidation.producer import EventProducer
from invalidation.replay import dry_run, read_range, replay
from invalidation.service import run_service
from invalidation.settings import InvalidationSettings
from origin.core.builder import BundleBuilder
from origin.core.demo_catalog import generate_catalog
from origin.core.purge_queue import ParkedPurge, parked_purges, redrive
from origin.core.recompute import Recomputer
from origin.core.redis_client import redis_client
from origin.core.signals import stop_on_signals
from origin.core.store import Store
from origin.errors import SettingsError, UnknownEntity
from shelfedge.dlq_command import run_dlq


def run_invalidation_command(
    command: str, args: argparse.Namespace, settings: InvalidationSettings
) -> int:
    try:
        return _run(command, args, settings)
    except InvalidationError as exc:
        print(f"shelfedge {command}: {exc}", file=sys.stderr)
        return 1


def _run(command: str, args: argparse.Namespace, settings: InvalidationSettings) -> int:
    if command == "consume":
        return asyncio.run(_consume(settings))
    if command == "events":
        return asyncio.run(_events(settings, args.rate, args.duration))
    if command == "sell-out":
        return asyncio.run(_sell_out(settings, args.sku))
    if command == "replay":
        return asyncio.run(
            _replay(settings, args.topic, args.from_offset, args.from_timestamp, args.dry_run)
        )
    if command == "purges":
        return asyncio.run(_purges(settings, args))
    if command == "dlq":
        return asyncio.run(run_dlq(settings, args))
    raise AssertionError(command)


def _bootstrap(settings: InvalidationSettings) -> str:
    if settings.kafka_bootstrap is None:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "host:port (or run 'shelfedge dev')", None)
    return settings.kafka_bootstrap


def _version_base() -> int:
    """Time-based versions: a new producer run never looks stale against an earlier one."""
    return time.time_ns() // 1000


async def _consume(settings: InvalidationSettings) -> int:
    await run_service(settings, stop_on_signals())
    return 0


async def _events(settings: InvalidationSettings, rate: float, duration: float) -> int:
    catalog = generate_catalog(settings.catalog_seed, settings.catalog_skus)
    stream = DemoEventStream(
        catalog.products,
        seed=int(time.time()),
        version_base=_version_base(),
        id_prefix=f"demo-{time.time_ns()}",
    )
    interval = 1.0 / rate
    sent = 0
    started = time.monotonic()
    async with EventProducer(_bootstrap(settings), security=settings.kafka_security) as producer:
        while duration <= 0 or time.monotonic() - started < duration:
            for event in stream.next_change():
                await producer.send(event)
                sent += 1
            delay = started + sent * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
    print(f"produced {sent} events in {time.monotonic() - started:.1f}s")
    return 0


async def _sell_out(settings: InvalidationSettings, sku: str) -> int:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL", None)
    redis = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    try:
        product = await Store(redis, 5.0).product(sku)
    finally:
        await redis.aclose()
    if product is None:
        raise UnknownEntity("sku", sku)
    stream = DemoEventStream(
        [product], version_base=_version_base(), id_prefix=f"sellout-{time.time_ns()}"
    )
    async with EventProducer(_bootstrap(settings), security=settings.kafka_security) as producer:
        count = await producer.send_all(stream.sell_out(sku))
    print(f"produced {count} inventory events taking {sku} to zero")
    return 0


async def _replay(
    settings: InvalidationSettings,
    topic_names: list[str],
    from_offset: int | None,
    from_timestamp: int | None,
    dry: bool,
) -> int:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL", None)
    records = await read_range(
        _bootstrap(settings),
        topic_names,
        from_offset=from_offset,
        from_timestamp_ms=from_timestamp,
        security=settings.kafka_security,
    )
    redis = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    try:
        if dry:
            report = await dry_run(redis, records)
            print("dry run, nothing changed or purged: " + report.summary())
            return 0
        store = Store(redis, 5.0)
        recomputer = Recomputer(store, BundleBuilder(load_slots()), await store.segments())
        pipeline = InvalidationPipeline(EventApplier(redis), recomputer, settings.purgers)
        report = await replay(pipeline, records)
        print("replayed: " + report.summary())
        return 0
    finally:
        with suppress(Exception):
            await redis.aclose()


async def _purges(settings: InvalidationSettings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL", None)
    redis = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    try:
        if args.purges_command == "parked":
            count = 0
            for purger in args.purger or settings.purgers:
                for record in await parked_purges(redis, purger):
                    print(_parked_line(purger, record))
                    count += 1
            print(f"{count} parked purges", file=sys.stderr)
            return 0
        tags = None if args.all else list(args.tags)
        done = await redrive(redis, args.purger, tags)
        for record in done:
            print(f"re-driven\t{args.purger}\t{record.tag}")
        print(f"{len(done)} parked purges re-driven for {args.purger}", file=sys.stderr)
        return 0
    finally:
        with suppress(Exception):
            await redis.aclose()


def _parked_line(purger: str, record: ParkedPurge) -> str:
    """One tab-separated line: purger, tag, reason, parked at (UTC), priority, API answer."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.parked_at_ms / 1000))
    detail = " ".join(record.detail.split())
    return f"{purger}\t{record.tag}\t{record.reason}\t{at}\tpriority={record.priority}\t{detail}"
