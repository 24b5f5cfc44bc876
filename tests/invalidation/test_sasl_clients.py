"""Every Kafka client of shelfedge carries the SASL settings (``SHELFEDGE_KAFKA_*``).

The session's Apache Kafka node also listens for SASL clients (SCRAM-SHA-512, one user), and
that listener refuses a client without the credential: so each process below, wired from the
environment a managed cluster (MSK, Confluent, Aiven) would need, only works if its settings
reached every client it makes. Covered: the invalidation consumer and its dead-letter producer,
``shelfedge dlq list`` and ``dlq replay`` (reader, admin client and producer), and the context
processor (``shelfedge context``). `test_every_kafka_client_is_given_the_security_settings`
holds every other client to the same rule in the source.
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fragments import topics
from fragments.clickstream import ClickEvent
from fragments.topics import ALL_TOPICS
from invalidation.service import running_service
from invalidation.settings import InvalidationSettings
from origin.context.service import run_processor
from origin.context.store import ContextStore
from origin.core.kafka_security import KafkaSecurity
from origin.core.redis_client import RedisLike
from origin.settings import Settings
from shelfedge.localstack import ApacheKafka
from shelfedge.localstack.apache_kafka import SCRAM_MECHANISM
from tests.invalidation.support import World, eventually, produce_raw
from tests.support.cli import run_shelfedge
from tests.support.kafka_engines import SESSION_SCRAM, assert_refused, empty_topics

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("origin", "invalidation", "shelfedge", "edge", "fragments")
LOCAL_ONLY = ("shelfedge/localstack",)
"""The dev stack's own broker tooling: it only ever talks to the broker it started."""
KAFKA_CLIENTS = frozenset({"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"})


def sasl_env(node: ApacheKafka) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": node.sasl_bootstrap,
        "SHELFEDGE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SHELFEDGE_KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
        "SHELFEDGE_KAFKA_SASL_USERNAME": SESSION_SCRAM.username,
        "SHELFEDGE_KAFKA_SASL_PASSWORD": SESSION_SCRAM.password,
    }


@pytest.fixture
async def sasl_node(apache_kafka: ApacheKafka) -> AsyncIterator[ApacheKafka]:
    """The session's Apache Kafka node with shelfedge's topics empty, before and after."""
    await empty_topics(apache_kafka.bootstrap, ALL_TOPICS, timeout=60.0)
    yield apache_kafka
    await empty_topics(apache_kafka.bootstrap, ALL_TOPICS, timeout=60.0)


async def test_the_sasl_listener_refuses_a_client_without_the_credential(
    sasl_node: ApacheKafka,
) -> None:
    wrong = KafkaSecurity("SASL_PLAINTEXT", SCRAM_MECHANISM, SESSION_SCRAM.username, "not-it")
    for security in (KafkaSecurity(), wrong):
        await assert_refused(sasl_node.sasl_bootstrap, security)
    right = Settings.from_env(sasl_env(sasl_node)).kafka_security
    await produce_raw(sasl_node.sasl_bootstrap, topics.INVENTORY.name, b"{}", security=right)


async def test_consumer_dead_letters_and_the_dlq_commands_work_over_sasl(
    world: World, sasl_node: ApacheKafka, redis_url: str
) -> None:
    env = {**sasl_env(sasl_node), "REDIS_URL": redis_url}
    settings = InvalidationSettings.from_env(env)
    marker = uuid.uuid4().hex
    source = await produce_raw(
        sasl_node.sasl_bootstrap,
        topics.INVENTORY.name,
        b"{not json " + marker.encode(),
        security=settings.kafka_security,
    )

    async def dead_letters() -> list[dict[str, object]]:
        listed = (await run_shelfedge("dlq", "list", "--json", env=env)).check()
        return [json.loads(line) for line in listed.stdout.splitlines()]

    stop = asyncio.Event()
    async with running_service(settings, group_id=f"sasl-{marker[:8]}") as service:
        consuming = asyncio.create_task(service.consumer.run(stop))
        try:
            # Read over SASL, dead-lettered over SASL by the consumer's own producer.
            async def one_dead_letter() -> bool:
                return len(await dead_letters()) >= 1

            await eventually(one_dead_letter, within=60, what="the dead letter, listed")
            [letter] = await dead_letters()
            assert (letter["source_partition"], letter["source_offset"]) == source
            assert letter["reason_class"] == "not_json"

            where = str(letter["dlq"])  # the dead letter's own partition:offset
            replayed = (await run_shelfedge("dlq", "replay", where, env=env)).check()
            assert replayed.stdout.startswith("re-driven\t"), replayed.stdout

            # The re-driven record went back to inventory.v1 over SASL and was read again.
            async def two_dead_letters() -> bool:
                return len(await dead_letters()) >= 2

            await eventually(two_dead_letters, within=60, what="the re-driven record, again")
        finally:
            stop.set()
            await consuming


async def test_the_context_processor_reads_the_clickstream_over_sasl(
    sasl_node: ApacheKafka, redis_url: str, redis_client: RedisLike
) -> None:
    env = {**sasl_env(sasl_node), "REDIS_URL": redis_url}
    settings = Settings.from_env(
        {**env, "SHELFEDGE_CONTEXT_GROUP": f"sasl-context-{uuid.uuid4().hex[:8]}"}
    )
    visitor = uuid.uuid4().hex
    view = ClickEvent(
        f"view-{visitor[:8]}", "view", visitor, "s1", time.time(), True, "SKU-00001", "outdoor",
        4000,
    )  # fmt: skip
    await produce_raw(
        sasl_node.sasl_bootstrap,
        topics.CLICKSTREAM.name,
        view.to_json(),
        visitor.encode(),
        security=settings.kafka_security,
    )
    store = ContextStore(redis_client, ttl_seconds=600)
    stop = asyncio.Event()
    processing = asyncio.create_task(run_processor(settings, stop))
    try:

        async def folded() -> bool:
            if processing.done():
                processing.result()  # a client that could not connect fails here, loudly
            profile = await store.profile(visitor)
            return profile is not None

        await eventually(folded, within=60, what="the visitor's profile")
    finally:
        stop.set()
        await processing


def _kafka_calls_without_security(path: Path) -> list[str]:
    """`AIOKafka*(...)` calls in `path` given no ``**<security>.client_kwargs()``."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in KAFKA_CLIENTS:
            continue
        secured = any(
            keyword.arg is None
            and isinstance(keyword.value, ast.Call)
            and isinstance(keyword.value.func, ast.Attribute)
            and keyword.value.func.attr == "client_kwargs"
            for keyword in node.keywords
        )
        if not secured:
            found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {name}")
    return found


def test_every_kafka_client_is_given_the_security_settings() -> None:
    files = [
        path
        for package in PRODUCT_PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if not str(path.relative_to(REPO_ROOT)).startswith(LOCAL_ONLY)
    ]
    assert len(files) > 50
    unsecured = [call for path in files for call in _kafka_calls_without_security(path)]
    assert unsecured == [], (
        "Kafka clients made without KafkaSecurity.client_kwargs(): " + ", ".join(unsecured)
    )
