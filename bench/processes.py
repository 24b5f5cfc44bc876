"""Run the benchmark's own Python helpers (`python -m bench.<module>`) as child processes.

Children run the same interpreter with the repository root on PYTHONPATH, so `bench` and the
product packages import from this checkout wherever the benchmark was started. A child that
fails or overruns its deadline is a `BenchRunError` carrying the tail of its stderr.

It must never run anything but this interpreter on this repository's modules, and never
leave a child running past its deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.errors import BenchRunError

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root: this file lives in `bench/`."""
_STDERR_TAIL_CHARS = 3000


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, the repository root first on PYTHONPATH, plus `extra`."""
    env = dict(os.environ)
    path = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.update(extra or {})
    return env


def python_module_argv(module: str, args: Sequence[str] = ()) -> list[str]:
    """`python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def run_python_module(module: str, args: Sequence[str], *, timeout: float) -> str:
    """Run `python -m module args...` to completion and return its stdout."""
    argv = python_module_argv(module, args)
    try:
        completed = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchRunError(f"python -m {module} ran over its {timeout:g} s deadline") from exc
    if completed.returncode != 0:
        raise BenchRunError(
            f"python -m {module} exited with code {completed.returncode}:\n"
            f"{completed.stderr[-_STDERR_TAIL_CHARS:]}"
        )
    return completed.stdout


class TreeRss:
    """The peak resident memory of a process and all its descendants together, sampled every
    `interval` seconds in a thread (`start`, then `stop`). A process's own peak is exact from
    ``wait4``; this adds what worker processes hold at the same time (sampled, so a peak shorter
    than the interval may be missed)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> TreeRss:
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak_bytes

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(self.interval):
            total = sum(_resident_pages(pid) for pid in _tree(self.pid)) * page
            self.peak_bytes = max(self.peak_bytes, total)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants alive now (every process's parent read from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        each = todo.pop()
        out.append(each)
        todo += children.get(each, ())
    return out


def _resident_pages(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # the process ended meanwhile
        return 0
