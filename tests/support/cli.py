"""Run ``shelfedge`` commands as an operator would, from async tests (the event loop keeps
serving the consumer or servers the test runs meanwhile).

`run_shelfedge` runs ``python -m shelfedge ARGS`` with a clean shelfedge environment plus the
given variables; `run_command_line` runs one runbook line such as ``shelfedge dlq list`` (only
``shelfedge`` commands, split like a shell would, no shell involved); `running_command_line`
runs a long-running line (a consumer, a canary) in the background for the length of a block;
`run_shell_line` runs a runbook's ``curl ... | jq ...`` line with bash.
Test support only.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
            raise AssertionError(f"{' '.join(self.argv)} exited {self.returncode}:\n{self.stderr}")
        return self


def _environ(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without shelfedge's own variables, plus `env`."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHELFEDGE_", "OTEL_"))
        and k not in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    environ.update(env)
    return environ


async def run_shelfedge(*args: str, env: dict[str, str]) -> CliResult:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shelfedge", *args,
        cwd=REPO_ROOT, env=_environ(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return CliResult(("shelfedge", *args), process.returncode or 0, out.decode(), err.decode())


async def run_command_line(line: str, env: dict[str, str]) -> CliResult:
    """One runbook line: ``shelfedge <args>`` (anything else is refused)."""
    argv = shlex.split(line)
    if not argv or argv[0] != "shelfedge":
        raise ValueError(f"not a shelfedge command: {line!r}")
    return await run_shelfedge(*argv[1:], env=env)


@asynccontextmanager
async def running_command_line(
    line: str, env: dict[str, str], *, grace_s: float = 15.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """One long-running runbook line (``shelfedge consume``, ``shelfedge canary``) in the
    background until the block exits; then SIGTERM (the command's own clean stop), and a kill
    after `grace_s`. Its output goes to the test's stderr (seen when a test fails)."""
    argv = shlex.split(line)
    if not argv or argv[0] != "shelfedge":
        raise ValueError(f"not a shelfedge command: {line!r}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shelfedge", *argv[1:], cwd=REPO_ROOT, env=_environ(env)
    )
    try:
        yield process
    finally:
        await stop_process(process, grace_s)


async def stop_process(process: asyncio.subprocess.Process, grace_s: float = 15.0) -> int:
    """SIGTERM `process` (if it still runs), wait up to `grace_s`, then kill; its exit code."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode if process.returncode is not None else -1


async def run_shell_line(line: str, env: dict[str, str]) -> CliResult:
    """One runbook line that is a shell pipeline (``curl ... | jq ...``), run as written by
    ``bash -o pipefail -c`` with the clean environment plus `env` (the runbook's ``$ORIGIN``,
    ``$TOKEN`` ...): a failing ``curl -f`` fails the line."""
    argv = ("bash", "-o", "pipefail", "-c", line)
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO_ROOT, env=_environ(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return CliResult(argv, process.returncode or 0, out.decode(), err.decode())
