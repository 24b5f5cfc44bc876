"""The lifecycle shared by the local servers: start on a loopback port, probe, stop, restart.

A `LocalService` owns at most one server process at a time, a work directory (a fresh temp dir
unless the caller passes one) and a log file in it that every start appends to. `start()`
returns only once the subclass's protocol probe succeeds against the process it just started;
the first successful start fixes the port, so a later `start()` after `stop()`/`kill()` comes
back on the same port and clients configured with `.port` reconnect.

It must never return from `start()` with a process that is not answering, listen on anything
but loopback, or leave a half-started process behind when `start()` fails.
"""

from __future__ import annotations

import abc
import os
import re
import signal
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from shelfedge.localstack.errors import PortInUseError, ServiceStartError, ServiceStateError
from shelfedge.localstack.ports import LOOPBACK, free_port, port_is_free
from shelfedge.localstack.process import ServiceProcess, log_tail, own_dir, release_dir, spawn

_PORT_ATTEMPTS = 5
"""First start on a kernel-chosen port: new ports to try when another process takes one."""
_ADDRESS_IN_USE = re.compile(r"address (already )?in use|AddrInUse", re.IGNORECASE)
_LONGEST_PROBE_S = 1.0
_LONGEST_BACKOFF_S = 0.1


class ProbeFailed(Exception):
    """The port answered, but not as a ready server of the expected kind (internal)."""


class LocalService(abc.ABC):
    """A server process on a loopback port with start / stop / kill / restart-on-same-port."""

    display_name: ClassVar[str]
    """What the server is called in messages and log file names, e.g. "redis-server"."""
    host: ClassVar[str] = LOOPBACK
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    """The signal `stop()` sends first; SIGKILL follows after the grace period."""
    graceful_exit_codes: ClassVar[frozenset[int]] = frozenset({0})
    """Exit codes of a server that shut down cleanly on `stop_signal`."""

    def __init__(
        self,
        *,
        binary: str,
        port: int | None,
        workdir: Path | None,
        startup_timeout: float,
        stop_grace: float,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"{self.display_name}: port must be in 1..65535, got {port}")
        if startup_timeout <= 0:
            raise ValueError(f"{self.display_name}: startup_timeout must be > 0 s")
        if stop_grace < 0:
            raise ValueError(f"{self.display_name}: stop_grace must be >= 0 s")
        self._binary = binary
        self._port = port
        self._workdir = workdir
        self._owns_workdir = workdir is None
        self._startup_timeout = startup_timeout
        self._stop_grace = stop_grace
        self._process: ServiceProcess | None = None
        self._returncode: int | None = None
        self._closed = False

    # -- what a subclass provides -------------------------------------------------------

    @abc.abstractmethod
    def _argv(self, port: int) -> list[str]:
        """The command line that serves on `self.host:port` in the foreground."""

    @abc.abstractmethod
    def _probe(self, port: int, pid: int, timeout: float) -> None:
        """Return if process `pid` serves its protocol on `port`; raise OSError or ProbeFailed."""

    def _env(self) -> dict[str, str]:
        """Environment of the child: the parent's, unless a subclass cleans it."""
        return dict(os.environ)

    def _prepare(self, port: int) -> None:
        """Write what the server needs on disk before each launch on `port` (default: nothing).

        Runs after the work dir exists and the port was found free, before the process starts.
        """
        return

    # -- state -----------------------------------------------------------------------------

    @property
    def binary(self) -> str:
        """Path of the server executable."""
        return self._binary

    @property
    def port(self) -> int:
        """The loopback port; fixed by the first successful start unless given explicitly."""
        if self._port is None:
            raise ServiceStateError(f"{self.display_name} has no port yet: call start() first")
        return self._port

    @property
    def running(self) -> bool:
        """True while the server process is alive (False after it crashed on its own)."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id (and process group id) of the running server, if any."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """Exit code of the last process ended by stop()/kill() (-9 after kill())."""
        return self._returncode

    @property
    def workdir(self) -> Path:
        """The server's own directory (data dir and log file)."""
        if self._workdir is None:
            raise ServiceStateError(f"{self.display_name} has no work dir yet: call start() first")
        return self._workdir

    @property
    def log_path(self) -> Path:
        """The log file every start of this server appends to."""
        return self.workdir / f"{self.display_name.replace(' ', '-')}.log"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log file."""
        return log_tail(self.log_path, lines)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it answers; raise ServiceStartError if it does not."""
        if self._closed:
            raise ServiceStateError(f"{self!r} was closed: create a new one")
        if self.running:
            raise ServiceStateError(f"{self!r} is already running")
        if self._process is not None:  # It exited on its own (`running` reaped it).
            self._returncode = self._process.poll()
            self._process = None
        self._ensure_workdir()
        if self._port is not None:
            self._launch(self._port)
            return self
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = free_port(self.host)
            try:
                self._launch(port)
            except PortInUseError:
                if attempt == _PORT_ATTEMPTS:
                    raise
                continue
            self._port = port
            break
        return self

    def stop(self) -> None:
        """Send `stop_signal` to the server's group, then SIGKILL after the grace; idempotent."""
        if self._process is not None:
            self._returncode = self._process.terminate(self._stop_grace, self.stop_signal)
            self._process = None

    def kill(self) -> None:
        """SIGKILL the server's process group at once (a crash); no-op if stopped."""
        if self._process is not None:
            self._returncode = self._process.kill()
            self._process = None

    def close(self) -> None:
        """Stop the server and delete its work dir if it created one; idempotent."""
        self.stop()
        if self._owns_workdir and self._workdir is not None and not self._closed:
            release_dir(self._workdir)
        self._closed = True

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self._port or '?'} {state}>"

    # -- internals -------------------------------------------------------------------------

    def _ensure_workdir(self) -> None:
        if self._workdir is None:
            slug = self.display_name.replace(" ", "-")
            self._workdir = Path(tempfile.mkdtemp(prefix=f"shelfedge-{slug}-"))
            own_dir(self._workdir)
        else:
            self._workdir.mkdir(parents=True, exist_ok=True)

    def _launch(self, port: int) -> None:
        if not port_is_free(self.host, port):
            raise PortInUseError(
                f"{self.display_name} cannot listen on {self.host}:{port}: "
                "another process is listening there"
            )
        self._prepare(port)
        log_start = self._mark_log(port)
        process = spawn(self._argv(port), log_path=self.log_path, env=self._env())
        try:
            self._wait_until_ready(process, port, log_start)
        except BaseException:
            process.kill()
            raise
        self._process = process
        self._returncode = None

    def _mark_log(self, port: int) -> int:
        """Append a start marker to the log; return the offset this start's output begins at."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.log_path.open("ab") as log:
            marker = f"--- shelfedge localstack: {self.display_name} on {self.host}:{port} {stamp}"
            log.write(marker.encode() + b"\n")
            return log.tell()

    def _wait_until_ready(self, process: ServiceProcess, port: int, log_start: int) -> None:
        deadline = time.monotonic() + self._startup_timeout
        backoff = 0.005
        last_probe = "not probed yet"
        while True:
            code = process.poll()
            if code is not None:
                tail = log_tail(self.log_path, since=log_start)
                error = PortInUseError if _ADDRESS_IN_USE.search(tail) else ServiceStartError
                raise error(
                    f"{self.display_name} exited with code {code} while starting on "
                    f"{self.host}:{port}; last lines of {self.log_path}:\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = log_tail(self.log_path, since=log_start)
                raise ServiceStartError(
                    f"{self.display_name} did not answer on {self.host}:{port} within "
                    f"{self._startup_timeout:g} s (last probe: {last_probe}); "
                    f"last lines of {self.log_path}:\n{tail}"
                )
            try:
                self._probe(port, process.pid, min(remaining, _LONGEST_PROBE_S))
            except (OSError, ProbeFailed) as exc:
                last_probe = f"{type(exc).__name__}: {exc}"
            else:
                if process.poll() is None:
                    return
                continue  # It answered and then died: report its exit code above.
            time.sleep(min(backoff, max(remaining, 0.0)))
            backoff = min(backoff * 2, _LONGEST_BACKOFF_S)
