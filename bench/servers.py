"""HTTP servers under test, each a uvicorn process of its own on a loopback port.

`AppServer` reuses the local services' lifecycle (`shelfedge.localstack.LocalService`: own process
group, log file, `start()` returns only once the probe passes, stop then SIGKILL by group) for
a ``python -m <module> ...`` that serves HTTP on the port it is given. The probe is a real GET
that must answer 200, so a server whose dependencies are down never counts as started.

The subclasses name what runs: the origin and the local edge through the product's own CLI
(``python -m shelfedge origin|edge``), the baselines through `bench.baseline_apps`.
It must never serve on anything but loopback or signal a process it did not start.
"""

from __future__ import annotations

import abc
import http.client
from collections.abc import Mapping
from dataclasses import dataclass

from bench.errors import BenchRunError
from bench.processes import child_env, python_module_argv
from shelfedge.localstack.ports import LOOPBACK, free_port
from shelfedge.localstack.service import LocalService, ProbeFailed

STARTUP_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
PROBE_TIMEOUT_S = 10.0
ORIGIN_REDIS_TIMEOUT_MS = 2_000
"""The benchmarked origin's Redis deadline. Production's 250 ms is a latency budget; a
throughput run drives the origin to saturation on a shared two-core machine, where a reply
waits its turn in a busy event loop, and the budget would turn that queueing into 503s (which
the benchmarks count as broken) instead of measuring it. The bare-GET baseline sets none."""


class AppServer(LocalService):
    """``python -m <module> <args>`` serving HTTP on `self.port`, probed with GET `probe_path`."""

    def __init__(self, probe_path: str) -> None:
        self.probe_path = probe_path
        # The port is fixed up front: the origin and edge read theirs from the environment.
        super().__init__(
            binary=python_module_argv("")[0],
            port=free_port(),
            workdir=None,
            startup_timeout=STARTUP_TIMEOUT_S,
            stop_grace=STOP_GRACE_S,
        )

    @abc.abstractmethod
    def _command(self, port: int) -> tuple[str, list[str]]:
        """The module to run and its arguments, serving on `port`."""

    def _extra_env(self, port: int) -> dict[str, str]:
        """Environment variables the server needs besides this process's."""
        return {}

    def _argv(self, port: int) -> list[str]:
        module, args = self._command(port)
        return python_module_argv(module, args)

    def _env(self) -> dict[str, str]:
        return child_env(self._extra_env(self.port))

    def _probe(self, port: int, pid: int, timeout: float) -> None:
        connection = http.client.HTTPConnection(self.host, port, timeout=timeout)
        try:
            connection.request("GET", self.probe_path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise ProbeFailed(f"GET {self.probe_path} answered {response.status}: {body[:200]!r}")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Fetched:
    """One HTTP answer, read whole."""

    status: int
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


def http_get(port: int, path: str, headers: Mapping[str, str] | None = None) -> Fetched:
    """GET `path` from the loopback `port` (setup and checks, not measurement)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=PROBE_TIMEOUT_S)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        raise BenchRunError(f"GET {path} on port {port} failed: {exc}") from exc
    finally:
        connection.close()
    return Fetched(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


class OriginServer(AppServer):
    """The origin context service as `make run` starts it: ``python -m shelfedge origin``."""

    display_name = "bench-origin"

    def __init__(self, redis_url: str, probe_path: str) -> None:
        self.redis_url = redis_url
        super().__init__(probe_path)

    def _command(self, port: int) -> tuple[str, list[str]]:
        return "shelfedge", ["origin"]

    def _extra_env(self, port: int) -> dict[str, str]:
        return {
            "REDIS_URL": self.redis_url,
            "SHELFEDGE_ORIGIN_PORT": str(port),
            "SHELFEDGE_REDIS_TIMEOUT_MS": str(ORIGIN_REDIS_TIMEOUT_MS),
        }


class EdgeServer(AppServer):
    """The local edge in front of an origin: ``python -m shelfedge edge``."""

    display_name = "bench-edge"

    def __init__(self, origin_url: str, segment_secret: str, probe_path: str) -> None:
        self.origin_url = origin_url
        self.segment_secret = segment_secret
        super().__init__(probe_path)

    def _command(self, port: int) -> tuple[str, list[str]]:
        return "shelfedge", ["edge"]

    def _extra_env(self, port: int) -> dict[str, str]:
        return {
            "SHELFEDGE_EDGE_ORIGIN_URL": self.origin_url,
            "SHELFEDGE_EDGE_PORT": str(port),
            "SHELFEDGE_SEGMENT_SECRET": self.segment_secret,
        }


class RedisGetBaseline(AppServer):
    """Bare Starlette doing one Redis GET of `redis_key` per request (`bench.baseline_apps`)."""

    display_name = "bench-baseline-redis-get"

    def __init__(self, redis_url: str, redis_key: str) -> None:
        self.redis_url = redis_url
        self.redis_key = redis_key
        super().__init__("/raw")

    def _command(self, port: int) -> tuple[str, list[str]]:
        args = ["redis-get", "--port", str(port), "--redis-url", self.redis_url]
        return "bench.baseline_apps", [*args, "--key", self.redis_key]


class StaticBaseline(AppServer):
    """Bare Starlette answering a static body of `body_bytes` bytes (`bench.baseline_apps`)."""

    display_name = "bench-baseline-static"

    def __init__(self, body_bytes: int) -> None:
        self.body_bytes = body_bytes
        super().__init__("/static")

    def _command(self, port: int) -> tuple[str, list[str]]:
        args = ["static", "--port", str(port), "--bytes", str(self.body_bytes)]
        return "bench.baseline_apps", args
