"""Call shelfedge's Python functions inside real Pyodide (Node), from CPython tests and benchmarks.

`PyodideRunner` starts `node tools/pyodide/run.mjs` once and sends it one request per `call`;
see that file for the line-delimited JSON protocol. Loading Pyodide takes seconds, a call
about a millisecond, so share one runner (the `pyodide` fixture is session-scoped).
The wheels folder must exist first: `prepare_pyodide_wheels()` fills it (idempotently).

Exceptions::

    PyodideError (RuntimeError)
    ├── PyodideUnavailableError  node, node_modules/pyodide or the wheels folder is missing
    ├── PyodideProcessError      the Node process failed to start, died or broke the protocol
    │   └── PyodideTimeoutError  no answer in time: the process was killed with the call
    └── PyodideCallError         the function raised inside Pyodide: `.traceback` has its text

After a `PyodideProcessError` the runner is closed; a `PyodideCallError` leaves it usable.

This module must never import pytest (benchmarks use it without pytest), never reach the
network, and never leave the Node process running once `close()` returned.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeAlias

from tools.buildkit import BuildStepError, run_build_module

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tests/support/`."""

RUN_SCRIPT = Path("tools") / "pyodide" / "run.mjs"
PREPARE_MODULE = "tools.pyodide.prepare_wheels"
"""Fills the wheels folder; run as `python -m` from the repository root."""
WHEELS_SITE = Path(".toolchain") / "pyodide-wheels" / "site"
STDERR_LINES_KEPT = 200
CLOSE_GRACE_SECONDS = 5.0
PREPARE_TIMEOUT_SECONDS = 600.0

_LineSink: TypeAlias = Callable[[str | None], None]


class PyodideError(RuntimeError):
    """Base of everything this module raises."""


class PyodideUnavailableError(PyodideError):
    """A prerequisite is missing; the message names it and the command that provides it."""


class PyodideProcessError(PyodideError):
    """The Node process failed to start, exited, or wrote something that is not the protocol."""


class PyodideTimeoutError(PyodideProcessError):
    """No answer within the timeout; the process (and the call it was running) was killed."""


class PyodideCallError(PyodideError):
    """The called function raised inside Pyodide."""

    def __init__(self, entry: str, traceback: str) -> None:
        super().__init__(f"{entry} raised inside Pyodide:\n{traceback}")
        self.entry = entry
        """The `package.module:function` that was called."""
        self.traceback = traceback
        """The Python traceback text, as formatted inside Pyodide."""


def prepare_pyodide_wheels(repo_root: Path = REPO_ROOT) -> Path:
    """Run `python -m tools.pyodide.prepare_wheels` (idempotent); return the folder it filled.

    It runs in a subprocess from the repository root (`tools.buildkit.run_build_module`), as
    `make` would run it, so its imports, locks and `uv` calls stay out of this process.
    """
    arguments = ["--repo-root", str(repo_root)]
    try:
        output = run_build_module(
            PREPARE_MODULE, arguments, repo_root=repo_root, timeout=PREPARE_TIMEOUT_SECONDS
        )
    except BuildStepError as exc:
        raise PyodideUnavailableError(str(exc)) from exc
    return Path(output.strip())


@dataclass(frozen=True, slots=True)
class PyodideRuntimeInfo:
    """What the Node process reported once Pyodide was ready."""

    pyodide_version: str
    """Version of the npm `pyodide` package that was loaded."""
    python_version: str
    """`platform.python_version()` inside Pyodide."""
    platform: str
    """`sys.platform` inside Pyodide (`emscripten`)."""
    load_seconds: float
    """Time from process start to ready, measured inside Node (Pyodide load and file copies)."""
    copied_files: int
    """Files copied into Pyodide's file system (wheels and repository packages)."""


class PyodideRunner:
    """One long-lived Pyodide-in-Node process that runs `package.module:function(str) -> str`."""

    def __init__(
        self,
        *,
        packages: Sequence[str] = ("edge", "fragments"),
        repo_root: Path = REPO_ROOT,
        node: str | None = None,
        load_timeout: float = 120.0,
        call_timeout: float = 60.0,
        forward_stderr: bool = False,
    ) -> None:
        """Configure (nothing starts until `start()` or `with`).

        `packages` are top-level folders of `repo_root` copied into Pyodide and importable there.
        `forward_stderr` copies what Python prints inside Pyodide to this process's stderr; it is
        kept either way, and `stderr_tail()` returns its last lines.
        """
        if load_timeout <= 0 or call_timeout <= 0:
            raise ValueError("load_timeout and call_timeout must be positive seconds")
        self._packages = tuple(packages)
        self._repo_root = repo_root
        self._node = node
        self._load_timeout = load_timeout
        self._call_timeout = call_timeout
        self._forward_stderr = forward_stderr
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_lines: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        self._stderr_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._call_lock = threading.Lock()
        self._started = False
        self._next_id = 1
        self._info: PyodideRuntimeInfo | None = None

    @property
    def info(self) -> PyodideRuntimeInfo:
        """The runtime's ready report; the runner must have been started."""
        if self._info is None:
            raise PyodideError("the Pyodide runner is not started")
        return self._info

    def start(self) -> PyodideRuntimeInfo:
        """Start Node, wait until Pyodide is loaded, and return its report."""
        if self._started:
            raise PyodideError("a PyodideRunner starts once; create a new one to restart")
        command = self._command()
        self._started = True
        try:
            self._process = subprocess.Popen(
                command,
                cwd=self._repo_root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        except OSError as exc:
            raise PyodideProcessError(f"cannot start {command[0]}: {exc}") from exc
        self._threads = [
            self._spawn_reader(self._process.stdout, self._lines.put, "stdout"),
            self._spawn_reader(self._process.stderr, self._keep_stderr, "stderr"),
        ]
        try:
            return self._await_ready()
        except BaseException:
            self.close()  # an interrupt while loading must not leave Node running
            raise

    def _await_ready(self) -> PyodideRuntimeInfo:
        message = self._receive(self._load_timeout, "loading Pyodide")
        if message.get("ready") is not True:
            raise self._broken(f"expected the ready message first, got {message!r}")
        try:
            self._info = PyodideRuntimeInfo(
                pyodide_version=str(message["pyodide_version"]),
                python_version=str(message["python_version"]),
                platform=str(message["platform"]),
                load_seconds=float(message["load_ms"]) / 1000.0,
                copied_files=int(message["copied_files"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._broken(f"malformed ready message {message!r}: {exc}") from exc
        return self._info

    def call(self, entry: str, payload: str, *, timeout: float | None = None) -> str:
        """Run `entry` (`package.module:function`) on `payload` inside Pyodide; return its str.

        Raises `PyodideCallError` (with the traceback) when the function raised, and
        `PyodideTimeoutError` when no answer came within `timeout` (default: `call_timeout`).
        """
        with self._call_lock:
            process = self._running_process()
            request_id = self._next_id
            self._next_id += 1
            line = json.dumps({"id": request_id, "entry": entry, "payload": payload})
            try:
                assert process.stdin is not None
                process.stdin.write(line + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise self._broken(f"could not send the request for {entry}: {exc}") from exc
            message = self._receive(
                self._call_timeout if timeout is None else timeout, f"calling {entry}"
            )
            if message.get("id") != request_id:
                raise self._broken(f"answer for request {request_id} expected, got {message!r}")
            if message.get("ok") is True and isinstance(message.get("result"), str):
                return str(message["result"])
            if message.get("ok") is False and isinstance(message.get("error"), str):
                raise PyodideCallError(entry, str(message["error"]))
            raise self._broken(f"malformed answer {message!r}")

    def stderr_tail(self) -> str:
        """The last lines the Node process wrote to stderr (Python's prints land there)."""
        with self._stderr_lock:
            return "".join(self._stderr_lines)

    def close(self) -> None:
        """Stop the Node process: end its stdin, then terminate, then kill. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass  # already gone: nothing left to tell it
        try:
            process.wait(timeout=CLOSE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=CLOSE_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in self._threads:
            thread.join(timeout=CLOSE_GRACE_SECONDS)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _command(self) -> list[str]:
        node = self._node or shutil.which("node")
        if node is None:
            raise PyodideUnavailableError("node is not on PATH: install Node.js 20 or newer")
        run_script = self._repo_root / RUN_SCRIPT
        if not (self._repo_root / "node_modules" / "pyodide" / "pyodide.mjs").is_file():
            raise PyodideUnavailableError(
                f"{self._repo_root / 'node_modules' / 'pyodide'} is missing: run `npm ci` "
                f"in {self._repo_root}"
            )
        if not (self._repo_root / WHEELS_SITE).is_dir():
            raise PyodideUnavailableError(
                f"{self._repo_root / WHEELS_SITE} is missing: run "
                f"`uv run python -m {PREPARE_MODULE}`"
            )
        command = [node, str(run_script), "--repo-root", str(self._repo_root)]
        for package in self._packages:
            command += ["--package", package]
        return command

    def _spawn_reader(self, stream: IO[str] | None, sink: _LineSink, name: str) -> threading.Thread:
        assert stream is not None

        def pump() -> None:
            for line in stream:
                sink(line)
            sink(None)

        thread = threading.Thread(target=pump, name=f"pyodide-{name}", daemon=True)
        thread.start()
        return thread

    def _keep_stderr(self, line: str | None) -> None:
        if line is None:
            return
        with self._stderr_lock:
            self._stderr_lines.append(line)
        if self._forward_stderr:
            sys.stderr.write(line)

    def _running_process(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise PyodideError("the Pyodide runner is not running (never started, or closed)")
        return self._process

    def _receive(self, timeout: float, doing: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self._kill()
            raise PyodideTimeoutError(
                f"no answer from Pyodide within {timeout:g} s while {doing}; the process was "
                f"killed. Its stderr ended with:\n{self.stderr_tail()}"
            ) from None
        if line is None:
            process = self._running_process()
            try:
                exit_code: int | None = process.wait(timeout=CLOSE_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                exit_code = None  # stdout closed but still running: _broken() kills it
            raise self._broken(
                f"the Node process closed stdout (exit code {exit_code}) while {doing}"
            )
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            raise self._broken(f"stdout line is not protocol JSON while {doing}: {line!r}") from exc
        if not isinstance(message, dict):
            raise self._broken(f"stdout line is not a JSON object while {doing}: {line!r}")
        return message

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
        self.close()

    def _broken(self, problem: str) -> PyodideProcessError:
        """Close the runner and return the error to raise, with Node's stderr tail."""
        self._kill()
        return PyodideProcessError(f"{problem}. Node's stderr ended with:\n{self.stderr_tail()}")
