"""``shelfedge dlq list | show | replay`` against a real broker, consumer and Redis: dead letters
with their source coordinates and reason, filters, re-drive after a fix, idempotence."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace

from fragments import topics
from invalidation.events import PriceEvent
from shelfedge.dlq_command import parse_when
from shelfedge.localstack import KafkaBroker
from tests.invalidation.support import (
    WHEN,
    World,
    consumer_config,
    eventually,
    produce,
    produce_raw,
    running_consumer,
)
from tests.support.cli import run_shelfedge

NEW_SKUS = ("SKU-NEW-1", "SKU-NEW-2", "SKU-NEW-3")


def test_when_parses_rfc3339_unix_ms_and_ages() -> None:
    now = 1_767_225_600.0
    assert parse_when("2026-01-01T00:00:00Z", now) == 1_767_225_600_000
    assert parse_when("1767225600000", now) == 1_767_225_600_000
    assert parse_when("15m", now) == (now - 900) * 1000
    assert parse_when(None, now) is None


async def test_list_show_and_replay_dead_letters_idempotently(
    world: World, fresh_kafka_broker: KafkaBroker, redis_url: str
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url}
    before_ms = int(time.time() * 1000) - 1
    strays = [PriceEvent(f"new-{sku}", sku, 1999, "USD", 7, WHEN) for sku in NEW_SKUS]
    produced = await produce(bootstrap, strays)
    bad_json = await produce_raw(bootstrap, topics.INVENTORY.name, b"{not json", b"SKU-00001")
    bad_schema = await produce_raw(
        bootstrap, topics.PRICE.name, b'{"event_id": "x", "sku": "SKU-00001", "price": "12"}'
    )
    config = consumer_config(bootstrap, f"dlq-{uuid.uuid4().hex[:6]}")
    async with running_consumer(config, world.pipeline()) as run:
        await eventually(
            lambda: _at_least(run.count("dead_letter"), 5), within=30, what="5 dead letters"
        )
        registry = run.consumer.metrics.registry
        assert (
            registry.get_sample_value(
                "shelfedge_dead_letters_total", {"topic": "price.v1", "reason": "unknown_sku"}
            )
            == 3
        )
        assert (
            registry.get_sample_value(
                "shelfedge_dead_letters_total", {"topic": "inventory.v1", "reason": "not_json"}
            )
            == 1
        )

        listed = (await run_shelfedge("dlq", "list", env=env)).check()
        lines = listed.stdout.splitlines()
        assert len(lines) == 5
        assert "5 dead letters (not_json=1, schema_violation=1, unknown_sku=3)" in listed.stderr
        unknown = (
            await run_shelfedge("dlq", "list", "--reason", "unknown_sku", "--json", env=env)
        ).check()
        docs = [json.loads(line) for line in unknown.stdout.splitlines()]
        assert sorted(d["event_id"] for d in docs) == sorted(e.event_id for e in strays)
        coordinates = {(p.event.sku, p.partition, p.offset) for p in produced}
        assert {
            (json.loads(d["value"])["sku"], d["source_partition"], d["source_offset"]) for d in docs
        } == coordinates
        assert all(d["source_topic"] == "price.v1" for d in docs)
        only_inventory = (
            await run_shelfedge("dlq", "list", "--topic", "inventory.v1", env=env)
        ).check()
        [json_line] = only_inventory.stdout.splitlines()
        assert f"inventory.v1[{bad_json[0]}]@{bad_json[1]}" in json_line
        assert "not_json" in json_line
        none_yet = await run_shelfedge("dlq", "list", "--until", str(before_ms), env=env)
        assert none_yet.check().stdout == ""
        recent = await run_shelfedge("dlq", "list", "--since", "1h", "--reason", "schema", env=env)
        assert f"price.v1[{bad_schema[0]}]@{bad_schema[1]}" in recent.check().stdout

        shown = (await run_shelfedge("dlq", "show", docs[0]["dlq"], env=env)).check()
        detail = json.loads(shown.stdout)
        assert detail["reason"].startswith("unknown sku")
        assert detail["headers"]["shelfedge.error.class"] == "unknown_sku"
        missing = await run_shelfedge("dlq", "show", "0:999999", env=env)
        assert missing.returncode == 1
        assert "no dead letter at 0:999999" in missing.stderr

        refused = await run_shelfedge("dlq", "replay", env=env)
        assert refused.returncode == 2, "replay without a selection is refused"

        # The fix: the catalog import that was late arrives.
        template = world.products[0]
        await world.store.load_catalog(
            [replace(template, sku=sku, price_version=0) for sku in NEW_SKUS],
            list(world.recomputer.segments.values()),
        )
        applied_before = run.count("applied")
        first = (await run_shelfedge("dlq", "replay", "--reason", "unknown_sku", env=env)).check()
        assert "3 dead letters re-driven (unknown_sku=3), 0 skipped" in first.stderr
        await eventually(
            lambda: _prices_applied(world), within=30, what="the re-driven prices are applied"
        )
        await eventually(
            lambda: _at_least(run.count("applied") - applied_before, 3), within=10, what="3 applied"
        )
        again = (await run_shelfedge("dlq", "replay", "--reason", "unknown_sku", env=env)).check()
        assert "0 dead letters re-driven (none), 3 skipped (already re-driven)" in again.stderr
        forced = await run_shelfedge("dlq", "replay", "--reason", "unknown_sku", "--force", env=env)
        assert "3 dead letters re-driven" in forced.check().stderr
        await eventually(
            lambda: _at_least(run.count("duplicate"), 3), within=30, what="the forced copies dedupe"
        )
        assert run.count("applied") - applied_before == 3, "replaying twice applies once"
        assert run.count("dead_letter") == 5, "nothing re-driven was dead-lettered again"


async def _at_least(value: int, wanted: int) -> bool:
    return value >= wanted


async def _prices_applied(world: World) -> bool:
    products = await world.store.products(NEW_SKUS)
    return len(products) == 3 and all(p.price_version == 7 for p in products.values())
