"""How a long-running shelfedge process stops: SIGINT or SIGTERM (a terminal's Ctrl-C, an
orchestrator's stop) sets one event that the process's loops watch, so each finishes its
current window or batch, commits, and closes its clients."""

from __future__ import annotations

import asyncio
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call it from the running event loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop
