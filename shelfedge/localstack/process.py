"""Child server processes in their own process group, and the safety nets that reap them.

`spawn` starts one server with its output appended to a log file; `ServiceProcess.terminate`
and `.kill` end the whole process group and reap the leader. Two nets catch what a crashed
caller leaves behind:

- an `atexit` hook SIGKILLs every group still running when the interpreter exits;
- on Linux, when `spawn` runs on the main thread and util-linux `setpriv` is on PATH, the
  child is started through `setpriv --pdeathsig KILL`, so the kernel kills it even when the
  parent itself is SIGKILLed and `atexit` never runs. (The death signal fires when the
  *thread* that forked exits, which is why it is only used from the main thread.)

This module must never use a shell, pipes (a chatty child must never block on a full pipe:
output goes to a file), or send signals outside the process groups it created.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_LOG_TAIL_BYTES = 16_384
_POLL_INTERVAL_S = 0.01


class ServiceProcess:
    """One running server process that leads its own process group."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        """Process id of the server, which is also its process group id."""
        return self._popen.pid

    def poll(self) -> int | None:
        """The exit code if the server has exited (it is then reaped), else None."""
        code = self._popen.poll()
        if code is not None:
            _forget(self)
        return code

    def terminate(self, grace: float, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send `signum` to the group, SIGKILL it after `grace` seconds; return the exit code."""
        self._signal_group(signum)
        self._wait_exited_unreaped(grace)
        # Always SIGKILL afterwards: it stops a leader that ignored `signum` and any
        # straggler in its group. The leader is not reaped yet, so the group id is still ours.
        self._signal_group(signal.SIGKILL)
        return self._reap()

    def kill(self) -> int:
        """SIGKILL the whole group at once; return the exit code (negative signal number)."""
        self._signal_group(signal.SIGKILL)
        return self._reap()

    def _signal_group(self, signum: signal.Signals) -> None:
        if self._popen.returncode is not None:
            return  # Already reaped: the group id may belong to someone else now.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signum)

    def _wait_exited_unreaped(self, timeout: float) -> None:
        """Wait until the leader has exited, without reaping it (Linux waitid WNOWAIT)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen.returncode is not None or _exited_unreaped(self._popen.pid):
                return
            time.sleep(_POLL_INTERVAL_S)

    def _reap(self) -> int:
        code = self._popen.wait()
        _forget(self)
        return code


def _exited_unreaped(pid: int) -> bool:
    if sys.platform != "linux":
        return False  # No WNOWAIT here: terminate() then waits the full grace, still correct.
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def spawn(argv: Sequence[str], *, log_path: Path, env: Mapping[str, str]) -> ServiceProcess:
    """Start `argv` in a new session (own process group), output appended to `log_path`."""
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [*_death_signal_prefix(), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    process = ServiceProcess(popen)
    with _LIVE_LOCK:
        _LIVE.add(process)
    return process


def _death_signal_prefix() -> list[str]:
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return []
    setpriv = shutil.which("setpriv")
    return [] if setpriv is None else [setpriv, "--pdeathsig", "KILL", "--"]


def log_tail(path: Path, lines: int = 20, *, since: int = 0) -> str:
    """The last `lines` lines of a log file written after byte offset `since`."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(since, size - _LOG_TAIL_BYTES))
            data = log.read()
    except FileNotFoundError:
        return f"(no log file at {path})"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


# The atexit net: every process spawned here and not yet reaped, and work dirs to delete.
_LIVE: set[ServiceProcess] = set()
_OWNED_DIRS: set[Path] = set()
_LIVE_LOCK = threading.Lock()


def _forget(process: ServiceProcess) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(process)


def own_dir(path: Path) -> None:
    """Delete `path` at interpreter exit unless `release_dir` was called for it first."""
    with _LIVE_LOCK:
        _OWNED_DIRS.add(path)


def release_dir(path: Path) -> None:
    """Delete an owned work dir now and drop it from the exit list."""
    with _LIVE_LOCK:
        _OWNED_DIRS.discard(path)
    shutil.rmtree(path)


@atexit.register
def _reap_everything_at_exit() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
        dirs = list(_OWNED_DIRS)
    for process in leftovers:
        process.kill()
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
