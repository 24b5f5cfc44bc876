"""``shelfedge canary``: run the freshness canary (`invalidation.canary`) against the local or
configured edge, exporting its metrics on its own port.

Reads the edge URL and Kafka from the invalidation settings (``SHELFEDGE_LOCAL_EDGE_URL`` or the
edge port, ``KAFKA_BOOTSTRAP_SERVERS``) and the segment secret from the origin's
(``SHELFEDGE_SEGMENT_SECRET``). The canary product and segment must be seeded (``shelfedge seed``
does it) before the consumer starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import httpx
from aiokafka.errors import KafkaError
from prometheus_client import start_http_server

from invalidation.canary import CanaryConfig, CanaryMetrics, FreshnessCanary
from invalidation.producer import EventProducer
from invalidation.settings import InvalidationSettings
from origin.core.env import env_int
from origin.core.kafka_security import KafkaSecurity
from origin.core.signals import stop_on_signals
from origin.errors import SettingsError
from origin.settings import Settings

log = logging.getLogger("shelfedge.canary")

DEFAULT_METRICS_PORT = 8602


def metrics_port_of(flag: int | None) -> int:
    """The ``--metrics-port`` flag, else ``SHELFEDGE_CANARY_METRICS_PORT``, else 8602."""
    if flag is not None:
        return flag
    return env_int(os.environ, "SHELFEDGE_CANARY_METRICS_PORT", DEFAULT_METRICS_PORT, 0, 65535)


async def run_canary(
    settings: Settings,
    consumer: InvalidationSettings,
    *,
    interval_s: float,
    timeout_s: float,
    rounds: int,
    metrics_port: int,
) -> int:
    """Run `rounds` canary rounds (0: until SIGINT/SIGTERM); 1 if the last round failed."""
    if consumer.kafka_bootstrap is None:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "host:port (or run 'shelfedge dev')", None)
    config = CanaryConfig(
        edge_url=consumer.local_edge_url,
        segment_secret=settings.segment_secret,
        interval_s=interval_s,
        timeout_s=timeout_s,
    )
    metrics = CanaryMetrics.create()
    if metrics_port:
        start_http_server(metrics_port, "127.0.0.1", metrics.registry)
        log.info("canary metrics on http://127.0.0.1:%d/metrics", metrics_port)
    stop = stop_on_signals()
    try:
        return await _rounds(
            config, consumer.kafka_bootstrap, consumer.kafka_security, metrics, stop, rounds
        )
    except KafkaError as exc:
        print(
            f"shelfedge canary: cannot reach Kafka at {consumer.kafka_bootstrap}: {exc}",
            file=sys.stderr,
        )
        return 1


async def _rounds(
    config: CanaryConfig,
    bootstrap: str,
    security: KafkaSecurity,
    metrics: CanaryMetrics,
    stop: asyncio.Event,
    rounds: int,
) -> int:
    interval_s = config.interval_s
    async with (
        EventProducer(bootstrap, "shelfedge-canary", security) as producer,
        httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http,
    ):
        canary = FreshnessCanary(config, producer, http, metrics)
        if rounds == 0:
            await canary.run(stop)
            return 0
        ok = True
        for n in range(rounds):
            result = await canary.round()
            ok = result.outcome == "ok"
            print(f"round {n + 1}: {result.outcome} {result.seconds:.3f}s {result.event_id}")
            if n + 1 < rounds and not stop.is_set():
                await asyncio.sleep(max(0.0, interval_s - result.seconds))
        return 0 if ok else 1
