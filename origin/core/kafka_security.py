"""Kafka connection security (TLS and SASL), read from the environment once and handed to
every aiokafka client as keyword arguments.

``SHELFEDGE_KAFKA_SECURITY_PROTOCOL`` is PLAINTEXT (default: a private network or the dev
broker), SSL, SASL_PLAINTEXT or SASL_SSL; with SASL, ``SHELFEDGE_KAFKA_SASL_MECHANISM``
(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), ``SHELFEDGE_KAFKA_SASL_USERNAME`` and
``SHELFEDGE_KAFKA_SASL_PASSWORD``; with TLS, ``SHELFEDGE_KAFKA_SSL_CAFILE`` (a PEM bundle;
default: the system's trust store). The password never appears in a repr or an error. Stdlib
only here (the TLS context is `ssl`'s), so the catalog core stays free of aiokafka.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from origin.core.env import env_choice
from origin.errors import SettingsError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


def env_kafka_security(e: Mapping[str, str]) -> KafkaSecurity:
    protocol = env_choice(e, "SHELFEDGE_KAFKA_SECURITY_PROTOCOL", PROTOCOLS, "PLAINTEXT")
    mechanism = username = password = None
    if protocol.startswith("SASL_"):
        mechanism = env_choice(e, "SHELFEDGE_KAFKA_SASL_MECHANISM", MECHANISMS, "SCRAM-SHA-512")
        username = e.get("SHELFEDGE_KAFKA_SASL_USERNAME") or None
        password = e.get("SHELFEDGE_KAFKA_SASL_PASSWORD") or None
        if username is None:
            raise SettingsError("SHELFEDGE_KAFKA_SASL_USERNAME", f"a user for {protocol}", None)
        if password is None:
            raise SettingsError("SHELFEDGE_KAFKA_SASL_PASSWORD", f"a password for {protocol}", None)
    cafile = e.get("SHELFEDGE_KAFKA_SSL_CAFILE") or None
    if cafile is not None and not Path(cafile).is_file():
        raise SettingsError("SHELFEDGE_KAFKA_SSL_CAFILE", "a readable PEM file", cafile)
    if cafile is not None and protocol not in ("SSL", "SASL_SSL"):
        raise SettingsError(
            "SHELFEDGE_KAFKA_SECURITY_PROTOCOL", "SSL or SASL_SSL when a CA file is set", protocol
        )
    return KafkaSecurity(protocol, mechanism, username, password, cafile)
