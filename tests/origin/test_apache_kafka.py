"""`shelfedge.localstack.ApacheKafka`: its configuration, its jars, and a durable restart.

The broker itself is the session's node (`apache_kafka`): it starts once per session, so the
tests here that need it share it, and the restart test leaves it running.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fragments.topics import ALL_TOPICS, PRICE
from shelfedge.localstack import APACHE_KAFKA_VERSION, ApacheKafka, ServiceBinaryNotFound
from shelfedge.localstack.apache_kafka import (
    KAFKA_LIBS_ENV,
    kafka_libs_dir,
    random_cluster_id,
    server_properties,
)
from tests.support.kafka_engines import empty_topics

POM = Path(__file__).resolve().parents[2] / "tools" / "kafka" / "pom.xml"


def test_the_launcher_runs_the_version_the_pom_fetches() -> None:
    declared = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert declared is not None, f"{POM} declares no kafka.version"
    assert declared.group(1) == APACHE_KAFKA_VERSION


def test_missing_jars_say_how_to_fetch_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KAFKA_LIBS_ENV, str(tmp_path))
    with pytest.raises(ServiceBinaryNotFound, match="make kafka-jars") as missing:
        kafka_libs_dir()
    assert str(tmp_path) in str(missing.value)
    assert "\n" not in str(missing.value)


def test_cluster_ids_are_kafka_uuids() -> None:
    """Base64url UUIDs; none starts with "-" (the format tool would read it as an option: one
    id in 64 did, and its broker failed to start). 2,000 draws hold about 31 such ids."""
    ids = {random_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cluster_id) for cluster_id in ids)


def test_the_node_listens_on_loopback_only() -> None:
    properties = server_properties(
        host="127.0.0.1", port=9092, controller_port=9093, data_dir=Path("data")
    )
    assert properties["process.roles"] == "broker,controller"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:9093"


async def test_records_survive_a_kill_9(apache_kafka: ApacheKafka) -> None:
    node = apache_kafka
    await empty_topics(node.bootstrap, ALL_TOPICS)
    producer = AIOKafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(PRICE.name, b"%d" % n, key=b"k") for n in range(20)]
    finally:
        await producer.stop()
    partition = TopicPartition(PRICE.name, sent[0].partition)

    node.kill()
    assert node.returncode == -signal.SIGKILL
    node.start()  # a clean stop and start: test_localstack's restart test, on both engines
    assert node.formatted

    consumer = AIOKafkaConsumer(bootstrap_servers=node.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, 0)
        values: list[bytes] = []
        while len(values) < len(sent):
            batch = await consumer.getmany(partition, timeout_ms=2000)
            assert batch, f"only {len(values)} of {len(sent)} records came back"
            values += [record.value for record in batch[partition]]
    finally:
        await consumer.stop()
    assert values == [b"%d" % n for n in range(20)]
    await empty_topics(node.bootstrap, ALL_TOPICS)
