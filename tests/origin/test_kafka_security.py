"""Kafka TLS/SASL settings reach the clients: parsed and validated from the environment, and
a client configured for TLS really speaks TLS (it cannot talk to a plaintext broker)."""

from __future__ import annotations

import ssl

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from invalidation.settings import InvalidationSettings
from origin.core.kafka_security import KafkaSecurity, env_kafka_security
from origin.errors import SettingsError
from origin.events.sink import KafkaEventSink
from origin.settings import Settings

SASL = {
    "SHELFEDGE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "SHELFEDGE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "SHELFEDGE_KAFKA_SASL_USERNAME": "shelfedge",
    "SHELFEDGE_KAFKA_SASL_PASSWORD": "kafka-password-123",
}


def test_defaults_are_plaintext_and_sasl_needs_a_user_and_password() -> None:
    assert Settings.from_env({}).kafka_security == KafkaSecurity()
    assert InvalidationSettings.from_env(SASL).kafka_security.sasl_mechanism == "SCRAM-SHA-256"
    for missing in ("SHELFEDGE_KAFKA_SASL_USERNAME", "SHELFEDGE_KAFKA_SASL_PASSWORD"):
        environ = {k: v for k, v in SASL.items() if k != missing}
        with pytest.raises(SettingsError, match=missing):
            Settings.from_env(environ)
    with pytest.raises(SettingsError, match="SHELFEDGE_KAFKA_SECURITY_PROTOCOL"):
        Settings.from_env({"SHELFEDGE_KAFKA_SECURITY_PROTOCOL": "TLS"})
    with pytest.raises(SettingsError, match="SHELFEDGE_KAFKA_SSL_CAFILE"):
        Settings.from_env({"SHELFEDGE_KAFKA_SSL_CAFILE": "/no/such/ca.pem"})


def test_the_password_never_shows() -> None:
    environ = {**SASL, "REDIS_URL": "redis://:redis-password-456@127.0.0.1:6379/0"}
    for settings in (Settings.from_env(environ), InvalidationSettings.from_env(environ)):
        assert settings.redis_url == environ["REDIS_URL"]
        assert "kafka-password-123" not in repr(settings)
        assert "redis-password-456" not in repr(settings)


async def test_client_arguments_are_accepted_by_aiokafka() -> None:
    kwargs = env_kafka_security(SASL).client_kwargs()
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["sasl_plain_password"] == "kafka-password-123"
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **kwargs)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", **kwargs)
    await producer.stop()
    await consumer.stop()


async def test_a_tls_client_does_not_talk_plaintext_to_the_broker(kafka_bootstrap: str) -> None:
    sink = KafkaEventSink(kafka_bootstrap, security=KafkaSecurity(protocol="SSL"))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, request_timeout_ms=2000, **sink.security.client_kwargs()
    )
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, **KafkaSecurity().client_kwargs())
    await plain.start()  # the same broker, plaintext: it answers
    await plain.stop()
