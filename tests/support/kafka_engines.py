"""The Kafka engines the Kafka-facing tests run on: Tansu (memory storage) and Apache Kafka.

Users run Apache Kafka (or another Kafka-compatible cluster); Tansu starts in a millisecond and
is what `shelfedge dev` uses. The fixtures in `tests/conftest.py` are parametrised over
`ENGINES`, so each such test runs once per engine and its id names the engine
(`test_x[tansu]`, `test_x[apache-kafka]`).

Tansu gives every test a broker of its own (it starts in a millisecond). Apache Kafka takes
seconds to start, so one node serves the whole session and `empty_topics` deletes and recreates
shelfedge's topics before each test that wants a fresh broker: offsets start at 0 again and no
test reads another's records (consumer groups are per-test uuids, and Kafka drops the committed
offsets of deleted topics).

Test support only; it never reaches beyond loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from fragments.topics import Topic
from origin.core.kafka_security import KafkaSecurity
from shelfedge.localstack import ApacheKafka, KafkaBroker, ensure_topics
from shelfedge.localstack.apache_kafka import ScramUser

TANSU: Final = "tansu"
APACHE_KAFKA: Final = "apache-kafka"
ENGINES: Final = (TANSU, APACHE_KAFKA)

SESSION_SCRAM: Final = ScramUser("shelfedge-tests", secrets.token_urlsafe(18))
"""The one user the session's Apache Kafka node admits on its SASL (SCRAM-SHA-512) listener."""
Broker: TypeAlias = KafkaBroker | ApacheKafka
"""A running broker of either engine: both have `bootstrap`, `start`, `stop` and `kill`."""


def engine_of(broker: Broker) -> str:
    """`tansu` or `apache-kafka`."""
    return APACHE_KAFKA if isinstance(broker, ApacheKafka) else TANSU


def is_durable(broker: Broker) -> bool:
    """True when the broker keeps its log across a restart (Apache Kafka; not Tansu's memory)."""
    return isinstance(broker, ApacheKafka)


async def empty_topics(
    bootstrap: str,
    topics: Iterable[Topic],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 (shared with ensure_topics)
) -> None:
    """Delete `topics` where they exist, wait until the metadata no longer lists them, then
    create them again (`ensure_topics`): every partition empty, offsets from 0."""
    wanted: Sequence[Topic] = tuple(topics)
    deadline = time.monotonic() + timeout
    await delete_topics(bootstrap, wanted, timeout=timeout)
    await ensure_topics(bootstrap, wanted, timeout=max(1.0, deadline - time.monotonic()))


async def delete_topics(
    bootstrap: str,
    topics: Iterable[Topic],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 (shared with ensure_topics)
) -> None:
    """Delete `topics` where they exist and wait until the metadata no longer lists them."""
    names = {topic.name for topic in topics}
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="shelfedge-tests")
    await admin.start()
    try:
        while present := names & set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise AssertionError(f"topics {sorted(present)} still listed after {timeout:g} s")
            with contextlib.suppress(KafkaError):  # e.g. being deleted: the listing decides
                await admin.delete_topics(sorted(present))
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def assert_refused(bootstrap: str, security: KafkaSecurity) -> None:
    """A producer with `security` cannot connect to `bootstrap` (a listener that must refuse)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=5000, **security.client_kwargs()
    )
    try:
        await producer.start()
    except KafkaConnectionError:
        return
    finally:
        await producer.stop()
    raise AssertionError(f"{bootstrap} accepted a client it must refuse: {security!r}")
