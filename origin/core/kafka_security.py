"""Kafka connection security (TLS and SASL), read from the environment once and handed to
every aiokafka client as keyword arguments.

``SHELFEDGE_KAFKA_SECURITY_PROTOCOL`` is PLAINTEXT (default: a private network or the dev
broker), SSL, SASL_PLAINTEXT or SASL_SSL; with SASL, ``SHELFEDGE_KAFKA_SASL_MECHANISM``
(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), ``SHELFEDGE_KAFKA_SASL_USERNAME`` and
``SHELFEDGE_KAFKA_SASL_PASSWORD``; with TLS, ``SHELFEDGE_KAFKA_SSL_CAFILE`` (a PEM bundle;
default: the system's trust store) and, for a cluster that authenticates clients by certificate
(mutual TLS: Aiven, MSK's TLS client authentication), ``SHELFEDGE_KAFKA_SSL_CERTFILE`` (the
client's PEM certificate chain, which may hold its key too), ``SHELFEDGE_KAFKA_SSL_KEYFILE`` and
``SHELFEDGE_KAFKA_SSL_KEY_PASSWORD``. The certificate and key are loaded once when the settings
are read, so a wrong file or password is a settings error naming the variable, not a failure in
the middle of a connection. Passwords never appear in a repr or an error. Stdlib only here (the
TLS context is `ssl`'s), so the catalog core stays free of aiokafka.
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
    ssl_certfile: str | None = None
    """The client's certificate chain (PEM) for mutual TLS; it may also hold the key."""
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: the broker verified against the CA file (or the system's trust
        store), and the client's certificate presented when one is set."""
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile is not None:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, self.ssl_key_password)
        return context


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
    files = {name: e.get(name) or None for name in _TLS_FILES}
    for name, path in files.items():
        if path is not None and not Path(path).is_file():
            raise SettingsError(name, "a readable PEM file", path)
        if path is not None and protocol not in ("SSL", "SASL_SSL"):
            raise SettingsError(
                "SHELFEDGE_KAFKA_SECURITY_PROTOCOL", f"SSL or SASL_SSL when {name} is set", protocol
            )
    cafile, certfile, keyfile = files.values()
    if keyfile is not None and certfile is None:
        raise SettingsError(
            "SHELFEDGE_KAFKA_SSL_CERTFILE", "the client certificate the key belongs to", None
        )
    security = KafkaSecurity(
        protocol, mechanism, username, password, cafile, certfile, keyfile,
        e.get("SHELFEDGE_KAFKA_SSL_KEY_PASSWORD") or None,
    )  # fmt: skip
    if certfile is not None:
        try:
            security.ssl_context()
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                "SHELFEDGE_KAFKA_SSL_CERTFILE",
                "a PEM certificate chain whose key (SHELFEDGE_KAFKA_SSL_KEYFILE, or in the same "
                "file) matches and opens with SHELFEDGE_KAFKA_SSL_KEY_PASSWORD",
                f"{type(exc).__name__} loading {Path(certfile).name}",
            ) from None
    return security


_TLS_FILES = (
    "SHELFEDGE_KAFKA_SSL_CAFILE", "SHELFEDGE_KAFKA_SSL_CERTFILE", "SHELFEDGE_KAFKA_SSL_KEYFILE"
)  # fmt: skip
