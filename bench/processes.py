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
