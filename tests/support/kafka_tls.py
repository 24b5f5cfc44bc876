"""A test certificate authority for the session's Apache Kafka node: the broker's keystore and
truststore (PEM, as Kafka's ``ssl.keystore.type=PEM`` reads them) and a client certificate, as
a managed cluster with mutual TLS (Aiven, MSK) hands one to its users.

Made with trustme (a CA, a server certificate for 127.0.0.1 and a client certificate); Kafka
wants the broker's key in PKCS#8, so it is written so. Test support only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from shelfedge.localstack.apache_kafka import BrokerTls


@dataclass(frozen=True, slots=True)
class KafkaTlsFiles:
    broker: BrokerTls
    ca: Path
    """What clients verify the broker against (SHELFEDGE_KAFKA_SSL_CAFILE)."""
    client_cert: Path
    """The client's certificate chain (SHELFEDGE_KAFKA_SSL_CERTFILE)."""
    client_key: Path
    """The client's key (SHELFEDGE_KAFKA_SSL_KEYFILE)."""
    stranger_cert: Path
    """A client certificate from another CA, which the broker must refuse (key included)."""


def make_kafka_tls(folder: Path) -> KafkaTlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("shelfedge-client@example.com")
    stranger = trustme.CA().issue_cert("stranger@example.com")

    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    keystore = folder / "broker-keystore.pem"
    keystore.write_bytes(pkcs8 + b"".join(blob.bytes() for blob in server.cert_chain_pems))
    truststore = folder / "broker-truststore.pem"
    ca.cert_pem.write_to_path(str(truststore))
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client_cert, client_key = folder / "client.pem", folder / "client.key"
    client.private_key_pem.write_to_path(str(client_key))
    for blob in client.cert_chain_pems:
        blob.write_to_path(str(client_cert), append=True)
    stranger_cert = folder / "stranger.pem"
    stranger.private_key_and_cert_chain_pem.write_to_path(str(stranger_cert))
    return KafkaTlsFiles(
        BrokerTls(keystore, truststore), ca_file, client_cert, client_key, stranger_cert
    )
