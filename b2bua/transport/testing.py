"""Test helpers for code built on the transport (no pytest dependency).

    recorder = Recorder()
    transport = Transport(recorder.on_message, recorder.on_transport_error)
    message, peer, listener = await recorder.next_message()
"""

from __future__ import annotations

import asyncio

from b2bua.sip import Request, Response

from .endpoint import Listener
from .peer import Peer


class Recorder:
    """Collects what a Transport reports, for tests to await with a bound."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[Request | Response, Peer, Listener]] = asyncio.Queue()
        self.errors: asyncio.Queue[tuple[Peer, Exception]] = asyncio.Queue()

    def on_message(self, message: Request | Response, peer: Peer, listener: Listener) -> None:
        self.messages.put_nowait((message, peer, listener))

    def on_transport_error(self, peer: Peer, error: Exception) -> None:
        self.errors.put_nowait((peer, error))

    async def next_message(self, timeout: float = 2.0) -> tuple[Request | Response, Peer, Listener]:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def next_error(self, timeout: float = 2.0) -> tuple[Peer, Exception]:
        return await asyncio.wait_for(self.errors.get(), timeout)
