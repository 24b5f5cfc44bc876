"""An HTTP/1.1 keep-alive load generator, run in its own process: ``python -m bench.loadgen``.

`run_load(spec)` starts ``python -m bench.loadgen '<spec JSON>'`` and reads its `LoadResult`
from stdout. The child opens `connections` keep-alive connections on one asyncio loop (plain
`asyncio.Protocol`s, no HTTP library: the client must cost far less CPU than the servers it
drives on a two-core machine) and runs them for `warmup_s` (discarded) then `duration_s`:

- closed loop (`rate` None): each connection sends its next request as soon as the previous
  answer is complete; this finds the server's throughput at that concurrency.
- fixed offered rate: each connection follows its own schedule (`connections / rate` seconds
  apart); latency counts from the *scheduled* send time, so a server that falls behind shows
  its queueing delay instead of hiding it (no coordinated omission).

Responses must carry Content-Length (uvicorn and Starlette send it). A reset connection, a
chunked or malformed response are errors, counted and reported by the parent as a broken run.
It must never connect anywhere but the loopback address it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.errors import BenchRunError
from bench.processes import run_python_module
from bench.stats import Summary

DRAIN_GRACE_S = 5.0
"""After the measuring window, how long in-flight requests may take to finish."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to load and how hard."""

    port: int
    path: str
    host: str = "127.0.0.1"
    headers: tuple[tuple[str, str], ...] = ()
    connections: int = 32
    duration_s: float = 5.0
    """The measuring window (after the warm-up)."""
    warmup_s: float = 1.0
    rate: float | None = None
    """Offered requests/s over all connections; None runs a closed loop (as fast as answered)."""

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK_HOSTS:
            raise BenchRunError(f"load generator target {self.host!r} is not a loopback host")
        if self.connections < 1 or self.duration_s <= 0 or self.warmup_s < 0:
            raise BenchRunError(f"invalid load spec {self!r}")
        if self.rate is not None and self.rate <= 0:
            raise BenchRunError(f"offered rate must be positive, got {self.rate}")

    def request_bytes(self) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def to_json(self) -> str:
        return json.dumps(
            {
                "port": self.port,
                "path": self.path,
                "host": self.host,
                "headers": [list(h) for h in self.headers],
                "connections": self.connections,
                "duration_s": self.duration_s,
                "warmup_s": self.warmup_s,
                "rate": self.rate,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> LoadSpec:
        doc = json.loads(raw)
        return cls(
            port=int(doc["port"]),
            path=str(doc["path"]),
            host=str(doc["host"]),
            headers=tuple((str(n), str(v)) for n, v in doc["headers"]),
            connections=int(doc["connections"]),
            duration_s=float(doc["duration_s"]),
            warmup_s=float(doc["warmup_s"]),
            rate=None if doc["rate"] is None else float(doc["rate"]),
        )


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured in its window."""

    requests: int
    """Responses completed inside the measuring window."""
    seconds: float
    latency_ms: Summary
    """Latency of the requests sent and answered inside the window."""
    samples_ms: list[float]
    """Those latencies, to the microsecond (for percentiles over several runs)."""
    statuses: dict[int, int]
    errors: list[str]
    response_bytes: int
    """Size of the last response (head and body)."""

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    def to_json(self) -> str:
        return json.dumps(
            {
                "requests": self.requests,
                "seconds": self.seconds,
                "latency_ms": self.latency_ms.to_dict(),
                "samples_ms": self.samples_ms,
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "errors": self.errors,
                "response_bytes": self.response_bytes,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> LoadResult:
        doc = json.loads(raw)
        return cls(
            requests=int(doc["requests"]),
            seconds=float(doc["seconds"]),
            latency_ms=Summary.from_dict(doc["latency_ms"]),
            samples_ms=[float(x) for x in doc["samples_ms"]],
            statuses={int(k): int(v) for k, v in doc["statuses"].items()},
            errors=[str(e) for e in doc["errors"]],
            response_bytes=int(doc["response_bytes"]),
        )


def run_load(spec: LoadSpec) -> LoadResult:
    """Run the load generator in a child process; raise BenchRunError on errors or non-200s."""
    deadline = spec.warmup_s + spec.duration_s + DRAIN_GRACE_S + 30.0
    out = run_python_module("bench.loadgen", [spec.to_json()], timeout=deadline)
    result = LoadResult.from_json(out)
    bad = {status: n for status, n in result.statuses.items() if status != 200}
    if result.errors or bad:
        raise BenchRunError(
            f"GET {spec.path} on port {spec.port}: {len(result.errors)} connection errors "
            f"{result.errors[:3]}, non-200 answers {bad}"
        )
    if result.requests == 0:
        raise BenchRunError(f"GET {spec.path} on port {spec.port}: no answer in the window")
    return result


# --- the child process --------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """Shared state of one load run (one event loop, no locks needed)."""

    spec: LoadSpec
    loop: asyncio.AbstractEventLoop
    request: bytes
    window_start: float
    window_end: float
    latencies: list[float] = field(default_factory=list)
    completed_in_window: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    in_flight: int = 0
    response_bytes: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def interval(self) -> float | None:
        rate = self.spec.rate
        return None if rate is None else self.spec.connections / rate


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send, read one full response, repeat."""

    def __init__(self, run: _Run, index: int) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expected: int | None = None
        self.status = 0
        self.started = 0.0
        interval = run.interval
        # Spread the connections' schedules evenly over one interval.
        spread = 0.0 if interval is None else interval * index / run.spec.connections
        self.next_at = run.loop.time() + spread
        self.awaiting = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._schedule()

    def _schedule(self) -> None:
        run = self.run
        now = run.loop.time()
        if now >= run.window_end or self.closing:
            self.close()
            return
        if run.interval is None:
            self._send(now)
            return
        at = self.next_at
        self.next_at += run.interval
        if at <= now:
            self._send(at)
        else:
            run.loop.call_at(at, self._send, at)

    def _send(self, scheduled: float) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.started = scheduled
        self.awaiting = True
        self.run.in_flight += 1
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._parse()
        except BenchRunError as exc:
            self.run.errors.append(str(exc))
            self.close()

    def _parse(self) -> None:
        while True:
            if self.expected is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.status, length = _parse_head(bytes(self.buffer[:end]))
                self.expected = end + 4 + length
            if len(self.buffer) < self.expected:
                return
            size = self.expected
            del self.buffer[:size]
            self.expected = None
            self._completed(size)

    def _completed(self, size: int) -> None:
        run = self.run
        now = run.loop.time()
        self.awaiting = False
        run.in_flight -= 1
        run.response_bytes = size
        if run.window_start <= now <= run.window_end:
            run.completed_in_window += 1
            run.statuses[self.status] = run.statuses.get(self.status, 0) + 1
            if self.started >= run.window_start:
                run.latencies.append(now - self.started)
        self._schedule()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        run = self.run
        if not self.closing:
            run.errors.append(f"connection lost: {exc or 'closed by the server'}")
        if self.awaiting:
            self.awaiting = False
            run.in_flight -= 1
        self.closing = True
        run.idle.set()


def _parse_head(head: bytes) -> tuple[int, int]:
    """(status, content length) of a response head; BenchRunError if it cannot be framed."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise BenchRunError(f"malformed status line {lines[0][:80]!r}")
    length: int | None = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"transfer-encoding":
            raise BenchRunError("chunked responses are not supported by the load generator")
    if length is None:
        raise BenchRunError("response without Content-Length")
    return int(parts[1]), length


async def _generate(spec: LoadSpec) -> LoadResult:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    run = _Run(
        spec=spec,
        loop=loop,
        request=spec.request_bytes(),
        window_start=begin + spec.warmup_s,
        window_end=begin + spec.warmup_s + spec.duration_s,
    )
    connections: list[_Connection] = []
    for index in range(spec.connections):
        try:
            _, protocol = await loop.create_connection(
                functools.partial(_Connection, run, index), spec.host, spec.port
            )
        except OSError as exc:
            raise BenchRunError(f"cannot connect to {spec.host}:{spec.port}: {exc}") from exc
        connections.append(protocol)
    await asyncio.sleep(max(0.0, run.window_end - loop.time()))
    drain_deadline = loop.time() + DRAIN_GRACE_S
    while run.in_flight > 0 and loop.time() < drain_deadline:
        run.idle.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.idle.wait(), timeout=0.05)
    for connection in connections:
        connection.close()
    if not run.latencies:
        raise BenchRunError(f"no request completed in the {spec.duration_s:g} s window")
    return LoadResult(
        requests=run.completed_in_window,
        seconds=spec.duration_s,
        latency_ms=Summary.of(run.latencies).scaled(1000.0),
        samples_ms=[round(x * 1000.0, 3) for x in run.latencies],
        statuses=run.statuses,
        errors=run.errors,
        response_bytes=run.response_bytes,
    )


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.loadgen '<LoadSpec JSON>'", file=sys.stderr)
        return 2
    result = asyncio.run(_generate(LoadSpec.from_json(argv[0])))
    print(result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
