"""lists.v1 through a real broker: duplicates and reordering change nothing, bad lists are
dead-lettered, the bundles built from the list follow its newest version."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.topics import DEAD_LETTER, LISTS
from invalidation.apply import EventApplier
from invalidation.events import ListEvent, ListItem, encode_event
from invalidation.pipeline import InvalidationPipeline
from origin.core.builder import BundleBuilder
from origin.core.envelope import open_envelope
from origin.core.recompute import Recomputer
from origin.core.redis_client import RedisLike
from origin.core.seed import seed_demo
from origin.core.store import Store
from shelfedge.localstack import KafkaBroker
from tests.invalidation.support import (
    WHEN,
    consumer_config,
    eventually,
    read_topic,
    running_consumer,
)
from tests.origin.core.test_list_import import list_slots

SEGMENT = "tech-enthusiasts"


def event(version: int, skus: list[str], *, segment: str = SEGMENT, eid: str = "") -> ListEvent:
    return ListEvent(
        event_id=eid or f"l{version}",
        kind="segment",
        target=segment,
        name="top",
        version=version,
        occurred_at=WHEN,
        items=[ListItem(sku) for sku in skus],
    )


async def test_list_events_with_duplicates_and_reordering(
    redis_client: RedisLike, fresh_kafka_broker: KafkaBroker
) -> None:
    store = Store(redis_client, 5.0)
    slots = list_slots()
    await seed_demo(store, slots, 42, 300)
    recomputer = Recomputer(store, BundleBuilder(slots), await store.segments())
    skus = await store.all_skus()
    versions = {v: skus[v * 5 : v * 5 + 5] for v in range(1, 6)}
    order = [3, 1, 5, 5, 2, 4]  # reordered, v5 delivered twice
    events = [event(v, versions[v]) for v in order]
    good = encode_event(event(9, [skus[0], skus[1]], eid="dup-sku"))
    raw_bad = good.replace(skus[1].encode(), skus[0].encode())  # a SKU listed twice
    unknown = event(1, [skus[0]], segment="nobody", eid="nobody")
    bootstrap = fresh_kafka_broker.bootstrap
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in [*events, unknown]:
            await producer.send_and_wait(LISTS.name, encode_event(e), key=e.list_id.encode())
        await producer.send_and_wait(LISTS.name, raw_bad, key=f"segment/{SEGMENT}/top".encode())
    finally:
        await producer.stop()

    pipeline = InvalidationPipeline(EventApplier(redis_client), recomputer, ["local-edge"])
    group = f"lists-{uuid.uuid4().hex[:8]}"
    async with running_consumer(
        consumer_config(bootstrap, group, topics=(LISTS.name,)), pipeline
    ) as run:

        async def all_consumed() -> bool:
            return sum(r.records for r in run.consumer.reports) >= len(events) + 2

        await eventually(all_consumed, within=30, what="every list event consumed")
    stored = await recomputer.imported.get(f"segment/{SEGMENT}/top")
    assert stored is not None
    assert stored.version == 5
    assert [i.sku for i in stored.items] == versions[5]
    raw = await store.get_envelope(FragmentKey("cart-upsell", SEGMENT))
    assert raw is not None
    assert list(decode_bundle(open_envelope(raw).body).skus) == versions[5]
    reports = run.consumer.reports
    assert sum(r.stale for r in reports) == 4  # v1 after v3, v5 again, v2 and v4 after v5
    dead = await read_topic(bootstrap, DEAD_LETTER.name, DEAD_LETTER.partitions, 2)
    reasons = sorted(dict(m.headers)["shelfedge.error.reason"].decode() for m in dead)
    assert "duplicate SKU" in reasons[0] or "duplicate SKU" in reasons[1]
    assert any("unknown segment 'nobody'" in r for r in reasons)
