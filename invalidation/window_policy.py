"""When a coalescing window closes: the consumer's pure timing decision.

A window opens with its first buffered record and closes at the first of:

- *full*: it holds `max_records` (under a backlog every fetch fills it, so windows grow to that
  size and the per-window work, recomputes above all, is shared by more records);
- *quiet*: nothing arrived for `quiet_s` (a lone change or a trickle is not held for the whole
  window, so latency stays low when the stream is slow);
- *due*: `window_s` after its first record (a steady stream is batched for that long). When the
  previous window's processing took longer than that, the buffered records are already due when
  the consumer asks: they go at once, as one larger window, so a consumer that falls behind
  catches up with fewer, larger windows instead of a queue of small ones.

Pure: the caller passes the clock readings and waits; no I/O, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

DEFAULT_WINDOW_MS = 30
"""The consumer's coalescing window unless configured (``SHELFEDGE_COALESCE_MS``).

30 ms (100 ms at first, 50 ms in the fifth session): at a steady 2,000 events/s on a two-core
machine the event -> purge p99 is lower than with 50 ms whether the machine is quiet or busy,
and lower than with 20 ms when it is busy (docs/performance.md, measured with
``bench.invalidation --window-ms``). A backlog is consumed as fast (its windows fill to
`max_records` whatever the window); a steady stream costs the consumer and Redis about a tenth
more CPU than with 50 ms (more windows, each with its fixed costs)."""


class Close(Enum):
    """Why a window closes now."""

    FULL = "full"
    QUIET = "quiet"
    DUE = "due"


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    window_s: float
    """The longest a window stays open after its first record."""
    quiet_s: float
    """A window closes once nothing arrived for this long."""
    max_records: int
    """A window closes as soon as it holds this many records."""

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.quiet_s <= 0 or self.max_records < 1:
            raise ValueError(
                f"window policy needs window_s > 0, quiet_s > 0 and max_records >= 1, "
                f"got {self.window_s}, {self.quiet_s} and {self.max_records}"
            )

    def decide(self, records: int, first_at: float, last_at: float, now: float) -> Close | float:
        """Close now (and why), or how many seconds to wait for more records before asking
        again. `first_at` / `last_at`: when the window's first and latest records arrived."""
        if records >= self.max_records:
            return Close.FULL
        due = first_at + self.window_s
        if now >= due:
            return Close.DUE
        quiet = last_at + self.quiet_s
        if now >= quiet:
            return Close.QUIET
        return min(due, quiet) - now
