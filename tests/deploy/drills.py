"""What the runbook drills share: the runbook's drilled command blocks, an alert's state on a
real Prometheus, and polling until a condition holds.

A runbook marks each block a drill runs with an HTML comment, ``<!-- drill: ... -->``, on the
line before a ``sh`` code block; the drill runs those lines exactly as written
(`tests.support.cli`), so the runbook and the test cannot drift apart.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.prometheus import PrometheusServer

_DRILLED_BLOCK = re.compile(r"<!-- drill:[^\n]*-->\n```sh\n(.*?)```", re.S)


def drilled_blocks(runbook: Path) -> list[list[str]]:
    """Each drilled block of `runbook`, in order: its non-empty lines, comments after ``#``
    dropped (a ``#`` starting a comment follows a space, as in the runbooks)."""
    blocks = [
        [line.split(" #")[0].strip() for line in match.group(1).splitlines() if line.strip()]
        for match in _DRILLED_BLOCK.finditer(runbook.read_text())
    ]
    if not blocks:
        raise AssertionError(f"{runbook}: no ```sh block right after a '<!-- drill:' marker")
    return blocks


def alert_state(prometheus: PrometheusServer, name: str) -> str:
    """``firing``, ``pending`` or ``inactive`` (not in /api/v1/alerts)."""
    states = {a.state for a in prometheus.alerts() if a.name == name}
    return "firing" if "firing" in states else states.pop() if states else "inactive"


class StateLog:
    """The successive states an alert went through, as seen by `see`."""

    def __init__(self, prometheus: PrometheusServer, name: str) -> None:
        self.prometheus = prometheus
        self.name = name
        self.states: list[str] = []

    def see(self) -> str:
        state = alert_state(self.prometheus, self.name)
        if not self.states or self.states[-1] != state:
            self.states.append(state)
        return state


async def until(what: str, condition: Callable[[], bool], within: float) -> float:
    """Poll `condition` (a blocking call is fine: it runs in a thread) every 200 ms; the
    seconds it took, or fail naming `what`."""
    started = time.monotonic()
    while not await asyncio.to_thread(condition):
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


def canary_age(prometheus: PrometheusServer) -> float:
    """Seconds since the scraped canary last saw its change at the edge (inf before any)."""
    rows = prometheus.query("time() - shelfedge_canary_last_success_timestamp_seconds")
    return float(rows[0]["value"][1]) if rows else float("inf")
