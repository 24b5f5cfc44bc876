"""`python -m shelfedge consume` as a subprocess of a test, and reading its metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


class ConsumeProcess:
    """`python -m shelfedge consume` with its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shelfedge", "consume"],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"consume exited with {code}:\n{self.tail()}"

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=10) == -signal.SIGKILL

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


def stop_all(started: list[ConsumeProcess]) -> None:
    """Kill any of `started` still running (a test's cleanup)."""
    for p in started:
        if p.process.poll() is None:
            p.process.kill()
            p.process.wait(timeout=10)


async def scrape(port: int) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
