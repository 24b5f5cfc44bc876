"""An independent client: an inventory event produced by kcat (librdkafka) is applied."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from fragments.topics import ALL_TOPICS, INVENTORY
from invalidation.events import InventoryEvent, encode_event
from shelfedge.localstack import ensure_topics
from tests.invalidation.kafka_shim import AdvertisedKafkaBroker, ApiVersionsShim
from tests.invalidation.support import WHEN, World, consumer_config, eventually, running_consumer


@pytest.fixture
async def kcat_bootstrap() -> AsyncIterator[str]:
    """A broker of this test's own, reached through the ApiVersions shim kcat needs."""
    async with ApiVersionsShim() as shim:
        with AdvertisedKafkaBroker(shim.port) as broker:
            shim.broker_port = broker.port
            await ensure_topics(shim.bootstrap, ALL_TOPICS)
            yield shim.bootstrap
            assert shim.downgraded > 0, "kcat never asked for ApiVersions v3: shim not needed?"


async def kcat_produce(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    process = await asyncio.create_subprocess_exec(
        "kcat", "-P", "-b", bootstrap, "-t", topic, "-k", key,
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(value + b"\n"), timeout=30)
    assert process.returncode == 0, f"kcat -P failed ({process.returncode}): {err.decode()}"


async def test_an_event_produced_by_kcat_is_applied(world: World, kcat_bootstrap: str) -> None:
    product = world.products[5]
    event = InventoryEvent("kcat-1", product.sku, "warehouse-west", 3, 42, WHEN)
    await kcat_produce(kcat_bootstrap, INVENTORY.name, product.sku, encode_event(event))
    config = consumer_config(kcat_bootstrap, f"test-{uuid.uuid4().hex[:12]}")
    async with running_consumer(config, world.pipeline()) as run:

        async def applied() -> bool:
            current = await world.store.product(product.sku)
            return current is not None and current.stock_version == 42

        await eventually(applied, within=30, what="the kcat event was applied")
        reports = run.reports
    current = await world.store.product(product.sku)
    assert current is not None
    assert current.locations["warehouse-west"] == 3
    assert sum(r.applied for r in reports) == 1
