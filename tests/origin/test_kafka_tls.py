"""Kafka over mutual TLS, against the session's Apache Kafka node and its SSL listener (a client
certificate required, as on Aiven or MSK with TLS client authentication): the settings read from
``SHELFEDGE_KAFKA_SSL_*`` connect; no certificate, a stranger's certificate or an untrusted
broker do not; bad certificate settings are refused when read, naming the variable."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fragments import topics
from fragments.topics import ALL_TOPICS
from origin.core.kafka_security import KafkaSecurity
from origin.errors import SettingsError
from origin.settings import Settings
from shelfedge.localstack import ApacheKafka, ensure_topics
from tests.support.cli import run_shelfedge
from tests.support.kafka_engines import assert_refused
from tests.support.kafka_tls import KafkaTlsFiles


def tls_env(files: KafkaTlsFiles) -> dict[str, str]:
    return {
        "SHELFEDGE_KAFKA_SECURITY_PROTOCOL": "SSL",
        "SHELFEDGE_KAFKA_SSL_CAFILE": str(files.ca),
        "SHELFEDGE_KAFKA_SSL_CERTFILE": str(files.client_cert),
        "SHELFEDGE_KAFKA_SSL_KEYFILE": str(files.client_key),
    }


@pytest.fixture
async def tls_node(apache_kafka: ApacheKafka) -> ApacheKafka:
    await ensure_topics(apache_kafka.bootstrap, ALL_TOPICS, timeout=60.0)
    return apache_kafka


async def test_the_client_certificate_from_the_settings_reaches_the_broker(
    tls_node: ApacheKafka, kafka_tls: KafkaTlsFiles
) -> None:
    security = Settings.from_env(tls_env(kafka_tls)).kafka_security
    marker = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(
        bootstrap_servers=tls_node.ssl_bootstrap, acks="all", **security.client_kwargs()
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(topics.INVENTORY.name, marker, key=marker)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=tls_node.ssl_bootstrap, enable_auto_commit=False,
        **security.client_kwargs(),
    )  # fmt: skip
    await consumer.start()
    try:
        partition = TopicPartition(topics.INVENTORY.name, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        batch = await consumer.getmany(partition, timeout_ms=10_000)
        assert [r.value for r in batch[partition]][:1] == [marker]
    finally:
        await consumer.stop()


@pytest.mark.parametrize("missing", ["certificate", "stranger", "trust"])
async def test_the_listener_refuses_what_mutual_tls_must_refuse(
    tls_node: ApacheKafka, kafka_tls: KafkaTlsFiles, missing: str
) -> None:
    security = {
        "certificate": KafkaSecurity("SSL", ssl_cafile=str(kafka_tls.ca)),
        "stranger": KafkaSecurity(
            "SSL", ssl_cafile=str(kafka_tls.ca), ssl_certfile=str(kafka_tls.stranger_cert)
        ),
        "trust": KafkaSecurity(  # the system's trust store does not know the test CA
            "SSL", ssl_certfile=str(kafka_tls.client_cert), ssl_keyfile=str(kafka_tls.client_key)
        ),
    }[missing]
    await assert_refused(tls_node.ssl_bootstrap, security)


async def test_the_dlq_command_speaks_mutual_tls(
    tls_node: ApacheKafka, kafka_tls: KafkaTlsFiles
) -> None:
    env = {**tls_env(kafka_tls), "KAFKA_BOOTSTRAP_SERVERS": tls_node.ssl_bootstrap}
    listed = (await run_shelfedge("dlq", "list", env=env)).check()
    assert "dead letters" in listed.stderr
    plain = await run_shelfedge(
        "dlq",
        "list",
        env={**env, "SHELFEDGE_KAFKA_SSL_CERTFILE": "", "SHELFEDGE_KAFKA_SSL_KEYFILE": ""},
    )
    assert plain.returncode != 0


def test_bad_certificate_settings_are_refused_by_name(
    kafka_tls: KafkaTlsFiles, tmp_path: Path
) -> None:
    env = tls_env(kafka_tls)
    cases = {
        "SHELFEDGE_KAFKA_SSL_CERTFILE": {**env, "SHELFEDGE_KAFKA_SSL_CERTFILE": ""},  # key alone
        "SHELFEDGE_KAFKA_SSL_KEYFILE": {**env, "SHELFEDGE_KAFKA_SSL_KEYFILE": str(tmp_path / "no")},
        "SHELFEDGE_KAFKA_SECURITY_PROTOCOL": {
            **env,
            "SHELFEDGE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        },
    }
    for variable, environ in cases.items():
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env(environ)
    mismatched = {**env, "SHELFEDGE_KAFKA_SSL_KEYFILE": str(kafka_tls.stranger_cert)}
    with pytest.raises(SettingsError, match="SHELFEDGE_KAFKA_SSL_CERTFILE") as caught:
        Settings.from_env(mismatched)
    assert "SSLError" in str(caught.value)
