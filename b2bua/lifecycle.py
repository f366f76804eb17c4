"""How a long-running command (B2BUA, ECRC, PSTN gateway, lab, shaper) waits to be stopped."""

from __future__ import annotations

import asyncio
import signal


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so the command can shut down cleanly (hang up
    calls, close sockets, flush records) instead of dying mid-write."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def until_stopped() -> None:
    """Wait for SIGTERM or SIGINT."""
    await stop_event().wait()
