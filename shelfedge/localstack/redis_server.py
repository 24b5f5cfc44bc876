"""A throwaway `redis-server` on a loopback port, for the dev supervisor and the tests.

The server keeps everything in memory (no RDB snapshots, no AOF), so a restart starts empty.
Readiness is a real RESP exchange: PING must answer PONG and `INFO server` must report the
pid of the process we started, so a foreign Redis that happens to hold the port never passes.

It must never touch a Redis it did not start (such as the one on 6379) or write outside
its own work dir.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from shelfedge.localstack.errors import ServiceBinaryNotFound
from shelfedge.localstack.service import LocalService, ProbeFailed

REDIS_NOT_FOUND = (
    "redis-server not found on PATH: "
    "install it with 'apt-get install -y redis-server' (Debian/Ubuntu)"
)


class RedisServer(LocalService):
    """A real `redis-server` (binary from PATH) in its own process group and temp dir."""

    display_name = "redis-server"

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: Path | None = None,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
        stop_grace: float = 5.0,
    ) -> None:
        """Find the binary now (failing loudly); pick the port and work dir at first start.

        `extra_args` are appended to the command line (e.g. `["--maxmemory", "64mb"]`).
        """
        if binary is None:
            found = shutil.which("redis-server")
            if found is None:
                raise ServiceBinaryNotFound(REDIS_NOT_FOUND)
        else:
            found = shutil.which(binary)
            if found is None:
                raise ServiceBinaryNotFound(f"redis-server binary {binary!r} is not executable")
        self._extra_args = tuple(extra_args)
        super().__init__(
            binary=found,
            port=port,
            workdir=workdir,
            startup_timeout=startup_timeout,
            stop_grace=stop_grace,
        )

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT/0`, the form `REDIS_URL` and redis-py take."""
        return f"redis://{self.host}:{self.port}/0"

    def _argv(self, port: int) -> list[str]:
        return [
            self.binary,
            "--port",
            str(port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--daemonize",
            "no",
            "--logfile",
            "",
            *self._extra_args,
        ]

    def _probe(self, port: int, pid: int, timeout: float) -> None:
        with (
            socket.create_connection((self.host, port), timeout=timeout) as sock,
            sock.makefile("rb") as replies,
        ):
            pong = _command(sock, replies, b"PING")
            if pong != b"PONG":
                raise ProbeFailed(f"PING answered {pong[:60]!r}, not PONG")
            info = _command(sock, replies, b"INFO", b"server")
        served_by = _info_field(info, b"process_id")
        if served_by != str(pid).encode():
            raise ProbeFailed(f"port {port} is served by pid {served_by!r}, not by our pid {pid}")


def _command(sock: socket.socket, replies: BinaryIO, *args: bytes) -> bytes:
    """Send one RESP command; return a simple-string or bulk-string reply's payload."""
    request = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    sock.sendall(request)
    line = replies.readline()
    if not line.endswith(b"\r\n"):
        raise ProbeFailed(f"connection closed mid-reply after {line[:60]!r}")
    kind, payload = line[:1], line[1:-2]
    if kind == b"+":
        return payload
    if kind == b"$" and payload != b"-1":
        return replies.read(int(payload) + 2)[:-2]
    raise ProbeFailed(f"unexpected reply {line[:80]!r}")


def _info_field(info: bytes, field: bytes) -> bytes | None:
    for line in info.splitlines():
        name, _, value = line.partition(b":")
        if name == field:
            return value.strip()
    return None
