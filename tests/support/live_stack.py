"""The local pipeline end to end, in one test process: a seeded Redis (demo catalog plus the
freshness canary), a real origin and a real local edge (each under uvicorn on a loopback port),
and the invalidation service (`invalidation.service.running_service`: consumer and purge
workers, purging the local edge) on a real broker.

`live_stack` is an async context manager yielding `LiveStack`; the consumer loop and the purge
workers run as tasks and are stopped (and their failures raised) on exit. Test support only:
loopback only, never a service the test did not start.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from edge.adapters.local_server import create_edge_app
from edge.config import EdgeConfig
from fragments.slots import load_slots
from invalidation.service import InvalidationService, running_service
from invalidation.settings import InvalidationSettings
from origin.core.seed import seed_canary, seed_demo
from origin.core.store import Store
from origin.settings import Settings
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect

SECRET = "live-stack-segment-secret-0123456789"
SKUS = 200


@dataclass(frozen=True, slots=True)
class LiveStack:
    origin: OriginServer
    edge: OriginServer
    service: InvalidationService
    settings: InvalidationSettings
    segment_secret: str = SECRET


async def seed_with_canary(redis_url: str, skus: int = SKUS) -> None:
    """Flush the database, seed the demo catalog and the canary."""
    client = connect(redis_url)
    try:
        await client.flushall()
        store = Store(client, 5.0)
        slots = load_slots()
        await seed_demo(store, slots, 42, skus)
        await seed_canary(store, slots)
    finally:
        await client.aclose()


@asynccontextmanager
async def live_stack(
    redis_url: str, bootstrap: str, *, consume: bool = True
) -> AsyncIterator[LiveStack]:
    """Seed, then run origin, edge and the invalidation service until exit (`consume=False`:
    the consumer joins its group but never fetches, as if it were stuck)."""
    await seed_with_canary(redis_url)
    origin_settings = Settings(
        redis_url=redis_url, segment_secret=SECRET, redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS
    )
    with OriginServer.for_origin(origin_settings) as origin:
        edge_app = create_edge_app(EdgeConfig.from_slots(load_slots(), SECRET), origin.url)
        with OriginServer(edge_app) as edge:
            settings = InvalidationSettings(
                redis_url=redis_url,
                kafka_bootstrap=bootstrap,
                coalesce_ms=20,
                consumer_session_timeout_ms=3000,
                consumer_metrics_port=0,
                local_edge_url=edge.url,
            )
            group = f"live-{uuid.uuid4().hex[:8]}"
            async with running_service(settings, group_id=group) as service:
                stop = asyncio.Event()
                tasks = [asyncio.create_task(w.run(stop)) for w in service.workers]
                if consume:
                    tasks.append(asyncio.create_task(service.consumer.run(stop)))
                try:
                    yield LiveStack(origin, edge, service, settings)
                finally:
                    stop.set()
                    ended = asyncio.gather(*tasks, return_exceptions=True)
                    done = await asyncio.wait_for(ended, 30)
                    failures = [d for d in done if isinstance(d, BaseException)]
                    if failures:
                        raise failures[0]
