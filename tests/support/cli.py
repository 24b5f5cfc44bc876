"""Run ``shelfedge`` commands as an operator would, from async tests (the event loop keeps
serving the consumer or servers the test runs meanwhile).

`run_shelfedge` runs ``python -m shelfedge ARGS`` with a clean shelfedge environment plus the
given variables; `run_command_line` runs one runbook line such as ``shelfedge dlq list`` (only
``shelfedge`` commands, split like a shell would, no shell involved). Test support only.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 90.0


@dataclass(frozen=True, slots=True)
class CliResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> CliResult:
        if self.returncode != 0:
            raise AssertionError(
                f"shelfedge {' '.join(self.argv)} exited {self.returncode}:\n{self.stderr}"
            )
        return self


async def run_shelfedge(*args: str, env: dict[str, str]) -> CliResult:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHELFEDGE_", "OTEL_"))
        and k not in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    environ.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shelfedge", *args,
        cwd=REPO_ROOT, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return CliResult(tuple(args), process.returncode or 0, out.decode(), err.decode())


async def run_command_line(line: str, env: dict[str, str]) -> CliResult:
    """One runbook line: ``shelfedge <args>`` (anything else is refused)."""
    argv = shlex.split(line)
    if not argv or argv[0] != "shelfedge":
        raise ValueError(f"not a shelfedge command: {line!r}")
    return await run_shelfedge(*argv[1:], env=env)
