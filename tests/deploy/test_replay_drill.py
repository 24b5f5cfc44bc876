"""Replay drill: ``docs/runbooks/replay-and-backfill.md`` ("Replay from the Kafka log"), as written.

A seeded Redis and a broker of the test's own; a real consumer applies a stream of price and
inventory events. Then the incident the runbook is for: a bug leaves Redis wrong (here every
product, list and bundle is put back to its state before the stream, as a faulty migration
restoring a stale backup would; the consumer has committed past those events). The runbook's
drilled block runs as written (`tests.support.cli`): the dry run reports the range and changes
nothing, the replay applies what the bug undid, and the state equals what the events say
(products, ranked lists and bundles all consistent). Running the replay again changes nothing
(every event a duplicate). No alert is specific to this runbook: it follows an incident.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from redis.asyncio import Redis

from invalidation.demo_events import DemoEventStream, EventMix
from invalidation.events import Event
from shelfedge.localstack import KafkaBroker
from tests.deploy.drills import drilled_blocks
from tests.deploy.support import ROOT
from tests.invalidation.support import (
    consumer_config,
    eventually,
    expected_product_fields,
    produce,
    restore_snapshot,
    running_consumer,
    seed_world,
    state_differences,
    take_snapshot,
)
from tests.support.cli import run_command_line

RUNBOOK = ROOT / "docs" / "runbooks" / "replay-and-backfill.md"
EVENTS = 300
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_the_drilled_block_is_a_dry_run_then_the_replay() -> None:
    [[dry, real]] = drilled_blocks(RUNBOOK)
    assert dry == real + " --dry-run"
    assert real.startswith("shelfedge replay --topic price.v1 --topic inventory.v1 ")


async def test_a_replay_from_the_log_repairs_what_a_bug_undid(
    redis_client: Redis, redis_url: str, fresh_kafka_broker: KafkaBroker
) -> None:
    [[dry, real]] = drilled_blocks(RUNBOOK)
    bootstrap = fresh_kafka_broker.bootstrap
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url, "SHELFEDGE_PURGERS": ""}
    world = await seed_world(redis_client)
    before_stream = await take_snapshot(redis_client)
    stream = DemoEventStream(
        world.products,
        seed=11,
        hot_skus=50,
        mix=EventMix(price=0.3, promo=0.05, sell_out=0.05, restock=0.05),
        id_prefix=f"drill-{uuid.uuid4().hex[:6]}",
        version_base=time.time_ns() // 1000,
    )
    events: list[Event] = []
    while len(events) < EVENTS:
        events.extend(stream.next_change())
    want = expected_product_fields(world.products, events)

    async def consistent() -> bool:
        return state_differences(await world.product_fields(), want) == []

    config = consumer_config(bootstrap, f"drill-replay-{uuid.uuid4().hex[:6]}")
    async with running_consumer(config, world.pipeline(purgers=())):
        await produce(bootstrap, events)
        await eventually(consistent, within=60, what="the consumer applied the stream")

    # The incident: a bug puts Redis back to its state before the stream; the consumer's
    # offsets are past those events, so nothing re-applies them by itself.
    await restore_snapshot(redis_client, before_stream)
    wrong = state_differences(await world.product_fields(), want)
    assert wrong, "the fault must leave the products wrong"

    faulty = await take_snapshot(redis_client)
    predicted = (await run_command_line(dry, env)).check()
    assert predicted.stdout.startswith("dry run, nothing changed or purged: "), predicted.stdout
    assert f"{len(events)} records" in predicted.stdout, predicted.stdout
    assert await take_snapshot(redis_client) == faulty, "the dry run wrote to Redis"

    replayed = (await run_command_line(real, env)).check()
    assert replayed.stdout.startswith(f"replayed: {len(events)} records"), replayed.stdout
    assert _outcomes(replayed.stdout) == _outcomes(predicted.stdout), (
        predicted.stdout,
        replayed.stdout,
    )
    assert state_differences(await world.product_fields(), want) == []
    assert await world.consistency_problems() == []

    again = (await run_command_line(real, env)).check()
    assert _outcomes(again.stdout) == {"duplicate": len(events)}, again.stdout
    assert "bundles changed: 0;" in again.stdout, again.stdout
    print(
        f"drill: {len(wrong)} products wrong after the fault; dry run: {predicted.stdout.strip()}"
        f"; replay: {replayed.stdout.strip()}"
    )


def _outcomes(summary: str) -> dict[str, int]:
    """The non-zero counts of the ``(applied=.., duplicate=.., ...)`` part of a summary."""
    found = re.search(r"records \(([^)]*)\)", summary)
    assert found is not None, summary
    pairs = (part.split("=") for part in found.group(1).split(", "))
    return {name: int(count) for name, count in pairs if int(count)}
