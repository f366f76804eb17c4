"""The transport layer: the only code that touches sockets (docs/architecture.md rule 5).

    transport = Transport(on_message, on_transport_error)
    listener = await transport.listen("udp", "0.0.0.0", 5060)
    transport.send(request, Peer("udp", "192.0.2.10", 5060))

See `endpoint.Transport` for the behaviour, `selection.select_transport` for RFC 3261
§18.1.1 (large requests leave UDP), `tls` for contexts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from .endpoint import Listener, OnMessage, OnTransportError, Transport
from .peer import Peer
from .selection import DEFAULT_THRESHOLD, select_transport, threshold_for_mtu
from .stream import StreamFramer
from .tls import TlsPeerConfig, TlsPolicy, client_context, server_context

__all__ = [
    "DEFAULT_THRESHOLD", "Listener", "OnMessage", "OnTransportError", "Peer", "StreamFramer", "TlsPeerConfig",
    "TlsPolicy", "Transport", "client_context", "run", "select_transport", "server_context", "threshold_for_mtu",
]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the process's main coroutine on uvloop when it is installed, else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
