"""Dead-letter surge drill: the runbook ``docs/runbooks/dead-letter-surge.md``, followed as written.

A real consumer (`InvalidationConsumer` on the suite's Redis, seeded) reads a broker of the
test's own and exports its metrics over HTTP; a real Prometheus scrapes it with the drill copy
of ``deploy/prometheus/rules.yml`` (windows and ``for:`` divided by 60). Good price events flow
all along; then events for SKUs the catalog does not hold yet arrive (a late catalog import):
``ShelfedgeDeadLetterSurge`` goes pending, then firing. The fix (the missing products are
loaded) is made, then the runbook's drilled command block is run line by line as the operator
would run it (`tests.support.cli`): the dead letters are listed and re-driven, the late events
are applied, the alert resolves, and running the block again re-drives nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import start_http_server
from redis.asyncio import Redis

from invalidation.events import PriceEvent, encode_event, topic_of
from shelfedge.localstack import KafkaBroker, free_port
from tests.deploy.drill_rules import compress
from tests.deploy.drills import drilled_blocks
from tests.deploy.support import ROOT, RULES
from tests.invalidation.support import consumer_config, running_consumer, seed_world
from tests.support.cli import run_command_line
from tests.support.prometheus import PrometheusServer

RUNBOOK = ROOT / "docs" / "runbooks" / "dead-letter-surge.md"
ALERT = "ShelfedgeDeadLetterSurge"
DRILL_FACTOR = 60
LATE_SKUS = ("SKU-LATE-1", "SKU-LATE-2", "SKU-LATE-3")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_the_drilled_block_holds_shelfedge_commands_only() -> None:
    assert drilled_blocks(RUNBOOK) == [
        [
            "shelfedge dlq list --reason unknown_sku --since 1h",
            "shelfedge dlq replay --reason unknown_sku --since 1h",
        ]
    ]


def _state(prometheus: PrometheusServer) -> str:
    states = {a.state for a in prometheus.alerts() if a.name == ALERT}
    return "firing" if "firing" in states else states.pop() if states else "inactive"


async def _until(what: str, condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def flowing(
    bootstrap: str, make: Callable[[int], PriceEvent], per_s: float
) -> AsyncIterator[list[PriceEvent]]:
    """Produce `make(n)` events at `per_s` (one producer, acks=all) until the block exits; yields
    what was sent. The loop is asked to stop, never cancelled mid-send."""
    sent: list[PriceEvent] = []
    stop = asyncio.Event()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()

    async def loop() -> None:
        n = 0
        while not stop.is_set():
            event = make(n)
            await producer.send_and_wait(
                topic_of(event), encode_event(event), key=event.sku.encode()
            )
            sent.append(event)
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / per_s)

    task = asyncio.create_task(loop())
    try:
        yield sent
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            await producer.stop()


async def test_dead_letter_surge_alert_fires_and_the_runbook_recovers(
    redis_client: Redis, redis_url: str, fresh_kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url}
    world = await seed_world(redis_client)
    known = [p.sku for p in world.products[:20]]
    now = datetime.now(UTC)
    base = time.time_ns() // 1000

    def good(n: int) -> PriceEvent:
        return PriceEvent(f"good-{n}", known[n % len(known)], 1000 + n, "USD", base + n, now)

    def late(n: int) -> PriceEvent:
        return PriceEvent(f"late-{n}", LATE_SKUS[n % 3], 2000 + n, "USD", base + n, now)

    rules = tmp_path / "rules.drill.yml"
    rules.write_text(compress(RULES.read_text(), DRILL_FACTOR))
    port = free_port()
    config = consumer_config(bootstrap, f"drill-{uuid.uuid4().hex[:6]}")
    async with running_consumer(config, world.pipeline()) as run:
        server, thread = start_http_server(port, "127.0.0.1", run.consumer.metrics.registry)
        try:
            targets = {"shelfedge-consumer": (f"127.0.0.1:{port}", "/metrics")}
            with PrometheusServer(targets, [rules]) as prometheus:
                async with flowing(bootstrap, good, per_s=20):
                    await asyncio.to_thread(prometheus.wait_for_scrape, "shelfedge-consumer")
                    await _until("healthy traffic", lambda: run.count("applied") > 20, 30)
                    assert _state(prometheus) == "inactive"

                    # The fault: events for products the catalog import has not delivered yet.
                    states: list[str] = []

                    def firing() -> bool:
                        state = _state(prometheus)
                        if not states or states[-1] != state:
                            states.append(state)
                        return state == "firing"

                    async with flowing(bootstrap, late, per_s=5) as late_sent:
                        await _until(f"{ALERT} firing", firing, 60)
                    assert states[-2:] == ["pending", "firing"], states
                    await _until(
                        "every late event dead-lettered",
                        lambda: run.count("dead_letter") == len(late_sent),
                        30,
                    )

                    # The fix: the late catalog import arrives.
                    template = world.products[0]
                    await world.store.load_catalog(
                        [replace(template, sku=sku, price_version=0) for sku in LATE_SKUS],
                        list(world.recomputer.segments.values()),
                    )
                    [[listing, replaying]] = drilled_blocks(RUNBOOK)
                    listed = (await run_command_line(listing, env)).check()
                    assert len(listed.stdout.splitlines()) == len(late_sent)
                    assert f"{len(late_sent)} dead letters (unknown_sku={len(late_sent)})" in (
                        listed.stderr
                    )
                    applied_before = run.count("applied")
                    replayed = (await run_command_line(replaying, env)).check()
                    assert (
                        f"{len(late_sent)} dead letters re-driven (unknown_sku={len(late_sent)}), "
                        "0 skipped" in replayed.stderr
                    ), replayed.stderr

                    async def late_applied() -> bool:
                        latest = {e.sku: e.version for e in late_sent}
                        products = await world.store.products(LATE_SKUS)
                        return all(
                            sku in products and products[sku].price_version == version
                            for sku, version in latest.items()
                        )

                    deadline = time.monotonic() + 30
                    while not await late_applied():
                        assert time.monotonic() < deadline, "the re-driven events were not applied"
                        await asyncio.sleep(0.2)
                    await _until(f"{ALERT} resolved", lambda: _state(prometheus) == "inactive", 60)
                    assert run.count("applied") - applied_before >= len(late_sent)

                    again = (await run_command_line(replaying, env)).check()
                    assert (
                        f"0 dead letters re-driven (none), {len(late_sent)} skipped" in again.stderr
                    ), again.stderr
                    assert run.count("dead_letter") == len(late_sent), "nothing dead-lettered again"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
