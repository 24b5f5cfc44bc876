"""Consumer lag drill: ``docs/runbooks/consumer-lag.md``, followed as written.

A real broker of the test's own and a seeded Redis. The group's only member is undersized (its
``max_in_flight`` of 3 makes one-record windows: every event pays a commit), a real Prometheus
(1 s scrapes, the drill copy of ``deploy/prometheus/rules.yml``: windows and ``for:`` divided
by 60) scrapes its metrics, and a flood of price events (a campaign peak, a backfill) outruns
it: ``ShelfedgeConsumerLagGrowing`` must go pending, then firing. The runbook's drilled line
(``shelfedge consume``: a member with the default settings, same group) is started as the
operator would start it, the undersized member is stopped once the new one holds partitions;
while the flood goes on the alert resolves and the lag falls under the alert's threshold, and
once the flood ends the lag drains to (about) nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import start_http_server
from redis.asyncio import Redis

from invalidation.events import PriceEvent, encode_event, topic_of
from shelfedge.localstack import KafkaBroker, free_port
from tests.deploy.drill_rules import compress
from tests.deploy.drills import StateLog, alert_state, drilled_blocks, until
from tests.deploy.support import ROOT, RULES
from tests.invalidation.support import consumer_config, running_consumer, seed_world
from tests.support.cli import running_command_line
from tests.support.prometheus import PrometheusServer

RUNBOOK = ROOT / "docs" / "runbooks" / "consumer-lag.md"
ALERT = "ShelfedgeConsumerLagGrowing"
LAG_THRESHOLD = 10_000
"""The alert's threshold in deploy/prometheus/rules.yml (the drill keeps it as it is)."""
DRILL_FACTOR = 60
FLOOD_PER_S = 1_000
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_the_drilled_block_starts_a_consumer() -> None:
    assert drilled_blocks(RUNBOOK) == [["shelfedge consume"]]


@contextlib.asynccontextmanager
async def flood(
    bootstrap: str, make: Callable[[int], PriceEvent], per_s: int
) -> AsyncIterator[list[int]]:
    """Produce `make(n)` at `per_s` events a second (bursts every 100 ms, acks=all) until the
    block exits; yields a one-element list counting what was sent."""
    sent = [0]
    stop = asyncio.Event()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()

    async def loop() -> None:
        burst = max(1, per_s // 10)
        started = time.monotonic()
        while not stop.is_set():
            futures = []
            for _ in range(burst):
                event = make(sent[0])
                futures.append(
                    await producer.send(
                        topic_of(event), encode_event(event), key=event.sku.encode()
                    )
                )
                sent[0] += 1
            await asyncio.gather(*futures)
            ahead = started + sent[0] / per_s - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, ahead))

    task = asyncio.create_task(loop())
    try:
        yield sent
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            await producer.stop()


def _lag_sum(prometheus: PrometheusServer) -> float | None:
    rows = prometheus.query("shelfedge:consumer_lag:sum")
    return float(rows[0]["value"][1]) if rows else None


async def test_consumer_lag_alert_fires_and_the_runbook_drains_it(
    redis_client: Redis, redis_url: str, fresh_kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    [[add_member]] = drilled_blocks(RUNBOOK)
    bootstrap = fresh_kafka_broker.bootstrap
    world = await seed_world(redis_client)
    skus = [p.sku for p in world.products]
    now = datetime.now(UTC)
    base = time.time_ns() // 1000

    def price(n: int) -> PriceEvent:
        return PriceEvent(f"peak-{n}", skus[n % len(skus)], 1000 + n % 5000, "USD", base + n, now)

    group = f"drill-lag-{uuid.uuid4().hex[:6]}"
    rules = tmp_path / "rules.drill.yml"
    rules.write_text(compress(RULES.read_text(), DRILL_FACTOR))
    slow_port, new_port = free_port(), free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REDIS_URL": redis_url,
        "SHELFEDGE_CONSUMER_GROUP": group,
        "SHELFEDGE_CONSUMER_METRICS_PORT": str(new_port),
        "SHELFEDGE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
        "SHELFEDGE_PURGERS": "",
    }
    targets = {
        "shelfedge-consumer-undersized": (f"127.0.0.1:{slow_port}", "/metrics"),
        "shelfedge-consumer-added": (f"127.0.0.1:{new_port}", "/metrics"),
    }
    undersized = consumer_config(bootstrap, group, max_in_flight=3, window_ms=100)
    with PrometheusServer(targets, [rules]) as prometheus:
        log = StateLog(prometheus, ALERT)
        async with contextlib.AsyncExitStack() as undersized_member:
            slow = await undersized_member.enter_async_context(
                running_consumer(undersized, world.pipeline(purgers=()))
            )
            server, thread = start_http_server(
                slow_port, "127.0.0.1", slow.consumer.metrics.registry
            )

            @undersized_member.callback
            def _close_metrics() -> None:
                server.shutdown()
                server.server_close()
                thread.join(5)

            async with contextlib.AsyncExitStack() as flood_ended:
                sent = await flood_ended.enter_async_context(flood(bootstrap, price, FLOOD_PER_S))
                await asyncio.to_thread(prometheus.wait_for_scrape, "shelfedge-consumer-undersized")
                await until("the undersized member to report lag", lambda: bool(
                    prometheus.query("shelfedge:consumer_lag:sum")), 30)  # fmt: skip
                assert alert_state(prometheus, ALERT) == "inactive"
                fired_after = await until(f"{ALERT} firing", lambda: log.see() == "firing", 90)
                assert log.states[-2:] == ["pending", "firing"], log.states
                peak = _lag_sum(prometheus) or 0.0
                assert peak > LAG_THRESHOLD, peak

                # The runbook: a member with the default settings joins the group; once it
                # holds partitions the undersized one leaves (its window completes first).
                started = time.monotonic()
                async with running_command_line(add_member, env) as added:
                    await asyncio.to_thread(
                        prometheus.wait_for_scrape, "shelfedge-consumer-added", 60
                    )
                    await until("the added member to report lag", lambda: bool(prometheus.query(
                        'shelfedge_consumer_lag{job="shelfedge-consumer-added"}')), 60)  # fmt: skip
                    await undersized_member.aclose()

                    resolved_after = await until(
                        f"{ALERT} resolved", lambda: log.see() == "inactive", 60
                    )
                    lags: list[float | None] = []

                    def below(limit: float) -> Callable[[], bool]:
                        def check() -> bool:
                            lags.append(_lag_sum(prometheus))
                            return (lags[-1] if lags[-1] is not None else limit) < limit

                        return check

                    try:
                        # While the flood goes on the member keeps up (windows of thousands
                        # of records: the lag saws between commits, under the threshold) ...
                        kept_up_after = await until(
                            "the lag under the alert's threshold", below(LAG_THRESHOLD), 60
                        )
                        assert added.returncode is None, "the added member keeps running"
                        flooded = sent[0]
                        await flood_ended.aclose()
                        # ... and once the peak ends it drains to (about) nothing.
                        drained_after = await until("the lag to drain", below(100), 60)
                    except AssertionError as exc:
                        raise AssertionError(f"{exc}: lag sums seen {lags[::5]}") from None
    print(
        f"drill: {ALERT} firing {fired_after:.1f} s into the flood (states {log.states}, "
        f"peak lag {peak:.0f}); after 'shelfedge consume': resolved in {resolved_after:.1f} s, "
        f"lag under the threshold {kept_up_after:.1f} s later with the flood on; drained "
        f"{drained_after:.1f} s after the flood ended ({time.monotonic() - started:.1f} s in all);"
        f" {flooded} events flooded"
    )
