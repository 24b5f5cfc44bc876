"""A throwaway single-node Apache Kafka (KRaft, broker and controller in one JVM) on loopback.

The jars are Apache Kafka's own, from Maven Central (`org.apache.kafka:kafka_2.13`, main class
`kafka.Kafka`), fetched once by `tools/kafka/fetch.sh` (`make setup`) into
the repository's `.toolchain/kafka/<version>/libs`, or found at `SHELFEDGE_KAFKA_LIBS`.
Java 17+ comes from `JAVA_HOME` or PATH.

Unlike Tansu's memory storage, the log is durable: the data dir lives in the work dir, is
formatted once (`kafka.tools.StorageTool format`, the `kafka-storage.sh format` of the
distribution, with a cluster id made like `kafka-storage random-uuid`), and every later start,
after `stop()` or a `kill()` (SIGKILL), recovers the same log on the same ports. Records a
producer had acknowledged are still there: the page cache outlives the process.

The configuration is a production broker's, made small for one node and for tests: every
internal topic has replication factor 1, the first group rebalance is not delayed, the group
session timeout may go down to 500 ms (tests use short ones), a killed broker's registration
expires after 2 s (so a restart is not refused for 9 s), and the heap is 512 MB. The JVM flags
favour start-up over peak throughput (serial GC, client compiler only): a test broker lives for
one session on a small shared machine.

With `scram` set, the node also has a SASL_PLAINTEXT listener (`sasl_bootstrap`) that admits
that one SCRAM-SHA-512 user (created when the log is formatted, `kafka-storage format
--add-scram`): how a managed cluster (MSK, Confluent, Aiven) is reached, minus the TLS, so the
tests can prove every client of the project carries its SASL settings.

With `tls` set, it also has an SSL listener (`ssl_bootstrap`) that requires a client certificate
signed by the given CA (mutual TLS, as Aiven and MSK's TLS client authentication do); the
keystore and truststore are PEM files (Kafka's ``ssl.keystore.type=PEM``).

It must never listen on anything but loopback, read a configuration from the caller's
environment (`KAFKA_*`), or download anything.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shelfedge.localstack.errors import ServiceBinaryNotFound, ServiceStartError
from shelfedge.localstack.kafka_probe import probe_api_versions
from shelfedge.localstack.ports import free_port
from shelfedge.localstack.service import LocalService

APACHE_KAFKA_VERSION = "4.1.1"
"""The version `tools/kafka/pom.xml` fetches (a test keeps the two in step)."""
KAFKA_LIBS_ENV = "SHELFEDGE_KAFKA_LIBS"
NODE_ID = 1
HEAP = ("-Xms256m", "-Xmx512m")
_REPO_ROOT = Path(__file__).resolve().parents[2]
_FORMAT_TIMEOUT_S = 120.0
_LOG4J2_CONFIG = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


def kafka_libs_dir(version: str = APACHE_KAFKA_VERSION) -> Path:
    """The folder of Kafka's jars; ServiceBinaryNotFound (saying how to fetch them) if absent."""
    configured = os.environ.get(KAFKA_LIBS_ENV)
    libs = (
        Path(configured) if configured else _REPO_ROOT / ".toolchain" / "kafka" / version / "libs"
    )
    if not (libs / f"kafka_2.13-{version}.jar").is_file():
        raise ServiceBinaryNotFound(
            f"Apache Kafka {version} jars not found in {libs}: run 'make kafka-jars' "
            f"(tools/kafka/fetch.sh {version}) or point {KAFKA_LIBS_ENV} at a Kafka libs/ folder"
        )
    return libs


def java_binary() -> str:
    """`$JAVA_HOME/bin/java`, else `java` on PATH; ServiceBinaryNotFound if neither exists."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else "java"
    found = shutil.which(candidate)
    if found is None:
        raise ServiceBinaryNotFound(
            "java not found (JAVA_HOME or PATH): Apache Kafka 4 needs Java 17+; "
            "install it with 'apt-get install -y openjdk-17-jre-headless' (Debian/Ubuntu)"
        )
    return found


SCRAM_MECHANISM = "SCRAM-SHA-512"
"""The SCRAM listener's mechanism: shelfedge's default `SHELFEDGE_KAFKA_SASL_MECHANISM`."""
_NOT_IN_CREDENTIAL = frozenset(',=[]" \t\r\n')
"""Characters `kafka-storage format --add-scram` cannot take inside its [name=...,password=...]."""


@dataclass(frozen=True, slots=True)
class ScramUser:
    """The one user the SCRAM listener admits."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for name, value in (("username", self.username), ("password", self.password)):
            if not value or _NOT_IN_CREDENTIAL.intersection(value):
                raise ValueError(
                    f'ScramUser: {name} must be non-empty, without , = [ ] " or spaces'
                )


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The SSL listener's files, PEM: the broker's PKCS#8 key followed by its certificate
    chain, and the CA certificates its clients' certificates must chain to."""

    keystore: Path
    truststore: Path


def random_cluster_id() -> str:
    """A cluster id as `kafka-storage random-uuid` prints it: a UUID, base64url, no padding,
    never starting with ``-`` (Kafka's `Uuid.randomUuid` draws again: `kafka-storage format
    --cluster-id -...` would read the id as an option and refuse to format)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def server_properties(
    *,
    host: str,
    port: int,
    controller_port: int,
    data_dir: Path,
    sasl_port: int | None = None,
    tls: tuple[int, BrokerTls] | None = None,
) -> dict[str, str]:
    """The combined broker+controller configuration of the single node (with a SCRAM
    listener on `sasl_port`, and a mutual-TLS one on ``tls[0]``, when given)."""
    listeners = [f"PLAINTEXT://{host}:{port}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    sasl: dict[str, str] = {}
    if tls is not None:
        ssl_port, files = tls
        listeners.append(f"SSL://{host}:{ssl_port}")
        protocols.append("SSL:SSL")
        sasl.update({
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(files.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(files.truststore),
            "ssl.client.auth": "required",
        })  # fmt: skip
    if sasl_port is not None:
        listeners.append(f"SASL_PLAINTEXT://{host}:{sasl_port}")
        protocols.append("SASL_PLAINTEXT:SASL_PLAINTEXT")
        jaas = f"listener.name.sasl_plaintext.{SCRAM_MECHANISM.lower()}.sasl.jaas.config"
        sasl.update({
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            jaas: "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        })  # fmt: skip
    return {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{host}:{controller_port}",
        "listeners": ",".join([*listeners, f"CONTROLLER://{host}:{controller_port}"]),
        "advertised.listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(protocols),
        **sasl,
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "500",
        # After a SIGKILL the controller keeps the old broker registration until this timeout
        # and refuses the restarted broker until then (DUPLICATE_BROKER_REGISTRATION).
        "broker.session.timeout.ms": "2000",
        "broker.heartbeat.interval.ms": "500",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }


def _properties_text(properties: Mapping[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in properties.items())


class ApacheKafka(LocalService):
    """A real Apache Kafka 4 node (`java -cp 'libs/*' kafka.Kafka`) with a durable log."""

    display_name = "apache kafka"
    # SIGTERM is Kafka's controlled shutdown (it flushes and writes a clean-shutdown marker).
    stop_signal = signal.SIGTERM
    # The JVM exits with 128 + SIGTERM once Kafka's shutdown hook has run.
    graceful_exit_codes = frozenset({0, 128 + signal.SIGTERM})

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: Path | None = None,
        libs: Path | None = None,
        java: str | None = None,
        startup_timeout: float = 90.0,
        stop_grace: float = 20.0,
        scram: ScramUser | None = None,
        tls: BrokerTls | None = None,
    ) -> None:
        """Find the jars and Java now (failing loudly); pick ports and work dir at first start.
        `scram`: also listen for SASL_PLAINTEXT clients, admitting this user; `tls`: also
        listen for SSL clients holding a certificate of its CA."""
        self._libs = kafka_libs_dir() if libs is None else libs
        self._controller_port: int | None = None
        self._sasl_port: int | None = None
        self._ssl_port: int | None = None
        self.scram = scram
        self.tls = tls
        super().__init__(
            binary=java_binary() if java is None else java,
            port=port,
            workdir=workdir,
            startup_timeout=startup_timeout,
            stop_grace=stop_grace,
        )

    @property
    def bootstrap(self) -> str:
        """`127.0.0.1:PORT`, the form `bootstrap_servers` and `KAFKA_BOOTSTRAP_SERVERS` take."""
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """`127.0.0.1:PORT` of the SCRAM listener (only with `scram`, once started)."""
        if self.scram is None or self._sasl_port is None:
            raise ServiceStartError("this Apache Kafka node has no SASL listener (scram=None)")
        return f"{self.host}:{self._sasl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        """`127.0.0.1:PORT` of the mutual-TLS listener (only with `tls`, once started)."""
        if self.tls is None or self._ssl_port is None:
            raise ServiceStartError("this Apache Kafka node has no SSL listener (tls=None)")
        return f"{self.host}:{self._ssl_port}"

    @property
    def data_dir(self) -> Path:
        """The KRaft log directory (metadata and topic partitions); it survives restarts."""
        return self.workdir / "data"

    @property
    def config_path(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def formatted(self) -> bool:
        """True once the data dir holds a formatted log (`meta.properties`)."""
        return (self.data_dir / "meta.properties").is_file()

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            self.binary,
            *HEAP,
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            str(self._libs / "*"),
            main_class,
            *args,
        ]

    def _argv(self, port: int) -> list[str]:
        return self._java("kafka.Kafka", str(self.config_path))

    def _env(self) -> dict[str, str]:
        # Kafka's scripts read KAFKA_* variables (heap, JMX, log4j); the JVM reads these two.
        dropped = ("CLASSPATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS")
        return {
            name: value
            for name, value in super()._env().items()
            if not name.startswith("KAFKA_") and name not in dropped
        }

    def _prepare(self, port: int) -> None:
        if self._controller_port is None:
            self._controller_port = _other_free_port(self.host, port)
        if self.scram is not None and self._sasl_port is None:
            self._sasl_port = _other_free_port(self.host, port, self._controller_port)
        if self.tls is not None and self._ssl_port is None:
            taken = (port, self._controller_port, self._sasl_port or 0)
            self._ssl_port = _other_free_port(self.host, *taken)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j2.properties").write_text(_LOG4J2_CONFIG)
        properties = server_properties(
            host=self.host,
            port=port,
            controller_port=self._controller_port,
            data_dir=self.data_dir,
            sasl_port=self._sasl_port,
            tls=None if self.tls is None or self._ssl_port is None else (self._ssl_port, self.tls),
        )
        self.config_path.write_text(_properties_text(properties))
        if not self.formatted:
            self._format()

    def _format(self) -> None:
        """Format the data dir once with a new cluster id (`kafka-storage.sh format`), and the
        SCRAM user's credential when there is one."""
        scram: tuple[str, ...] = ()
        if self.scram is not None:
            user = self.scram
            credential = f"{SCRAM_MECHANISM}=[name={user.username},password={user.password}]"
            scram = ("--add-scram", credential)
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            random_cluster_id(),
            "--config",
            str(self.config_path),
            *scram,
        )
        try:
            done = subprocess.run(
                argv,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_FORMAT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceStartError(
                f"formatting {self.data_dir} did not finish in {_FORMAT_TIMEOUT_S:g} s"
            ) from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-4000:]
            raise ServiceStartError(
                f"kafka.tools.StorageTool format of {self.data_dir} exited with code "
                f"{done.returncode}:\n{output}"
            )

    def _probe(self, port: int, pid: int, timeout: float) -> None:
        probe_api_versions(self.host, port, timeout)


def _other_free_port(host: str, *taken: int) -> int:
    while (port := free_port(host)) in taken:
        pass
    return port
