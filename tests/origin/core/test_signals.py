"""SIGINT and SIGTERM set the stop event every long-running command watches."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from origin.core.signals import STOP_SIGNALS, stop_on_signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_signal_sets_the_event(sig: signal.Signals) -> None:
    loop = asyncio.get_running_loop()
    stop = stop_on_signals()
    try:
        assert not stop.is_set()
        os.kill(os.getpid(), sig)
        async with asyncio.timeout(5):
            await stop.wait()
    finally:
        for each in STOP_SIGNALS:
            loop.remove_signal_handler(each)
