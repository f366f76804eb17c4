"""The asyncio side of one SIP user agent: a Transport feeding a TransactionLayer.

The transaction layer is sans-I/O; this class is the small loop around it. Messages
from the transport go to `TransactionLayer.receive`, the events that come back are
acted on (sends go to the transport, the rest to the UA's `Core` or to the handler of a
client transaction), and one event-loop timer is kept armed at `next_timer()`.

The B2BUA engine, the mock ECRC, the PSTN gateway and the caller are all `Core`s on top
of a `SipStack`. Nothing here awaits on the hot path: callbacks are plain functions.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable
from typing import Protocol

import structlog

from .sip import Limits, Request, Response, new_branch
from .sip.message import DEFAULT_LIMITS
from .sip.transaction import (
    AckNotReceived,
    CancelReceived,
    ClientTransaction,
    Event,
    InviteClientTransaction,
    Peer,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerTransaction,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailure,
)
from .transport import Listener, Transport

log = structlog.get_logger("b2bua.stack")

ClientHandler = Callable[[Event], None]


class Core(Protocol):
    """What a UA built on the stack implements (its transaction user, RFC 3261 §8)."""

    def on_request(self, request: Request, transaction: ServerTransaction | None, peer: Peer) -> None:
        """A new request from `peer`; `transaction` is None for an ACK to a 2xx."""

    def on_cancel(self, cancel: Request, invite: ServerTransaction) -> None:
        """The caller cancelled; the CANCEL has been answered 200, the INVITE awaits 487."""

    def on_ack_timeout(self, invite: ServerTransaction) -> None:
        """Our 2xx was never ACKed (RFC 3261 §13.3.1.4): the session should be ended."""

    def on_stray_response(self, response: Response, peer: Peer | None) -> None:
        """A response matching no transaction (a late 2xx retransmission: re-ACK it)."""


class SipStack:
    def __init__(
        self,
        core: Core,
        *,
        timers: TimerConfig | None = None,
        limits: Limits = DEFAULT_LIMITS,
        tls_peers=None,  # noqa: ANN001 - transport.TlsPolicy
        user_agent: str = "e911-b2bua",
    ) -> None:
        self.core = core
        self.layer = TransactionLayer(timers or TimerConfig())
        self.transport = Transport(self._on_message, self._on_transport_error, limits=limits, tls_peers=tls_peers)
        self.user_agent = user_agent
        self._handlers: dict[ClientTransaction, ClientHandler] = {}
        # A mock that plays a dead host ("drop every request") must not even let the
        # transaction layer send its automatic 100 Trying: it filters here, before the layer.
        self.accept: Callable[[Request | Response, Peer], bool] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def listen(self, transport: str, host: str, port: int, ssl_context=None, *,  # noqa: ANN001
                     advertise: tuple[str, int] | None = None, shared: bool = False) -> Listener:
        self._loop = asyncio.get_running_loop()
        return await self.transport.listen(transport, host, port, ssl_context, advertise=advertise, shared=shared)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.transport.close()

    def now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    # -- building blocks for requests ------------------------------------------------------
    def local_address(self, transport: str, family: int = socket.AF_INET) -> tuple[str, int]:
        try:
            return self.transport.local_address(transport, family)
        except LookupError:
            # A client that only listens on UDP still sends TCP requests from an ephemeral
            # port; its UDP listener's address is the best sent-by it has (RFC 3261 §18.1.1).
            for listener in self.transport.listeners:
                if listener.family == family:
                    return listener.local_address()
            raise

    def via(self, transport: str, family: int = socket.AF_INET) -> str:
        """A top Via for a request we send: our sent-by, a fresh branch, rport (RFC 3581)."""
        host, port = self.local_address(transport, family)
        host = f"[{host}]" if ":" in host else host
        return f"SIP/2.0/{transport.upper()} {host}:{port};branch={new_branch()};rport"

    def contact_uri(self, transport: str, user: str | None = None, family: int = socket.AF_INET) -> str:
        host, port = self.local_address(transport, family)
        host = f"[{host}]" if ":" in host else host
        scheme = "sips" if transport == "tls" else "sip"
        user_part = f"{user}@" if user else ""
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"{scheme}:{user_part}{host}:{port}{suffix}"

    # -- client side -------------------------------------------------------------------------
    def send_request(self, request: Request, peer: Peer, handler: ClientHandler) -> ClientTransaction:
        """Start a client transaction; `handler` gets its ResponseReceived, TransactionTimeout,
        TransportFailure and TransactionTerminated events."""
        transaction, events = self.layer.send_request(request, peer, self.now())
        self._handlers[transaction] = handler
        self._process(events)
        return transaction

    def cancel(self, transaction: InviteClientTransaction, reason: str | None = None) -> None:
        """CANCEL a pending INVITE: sent on its first provisional if none came yet (§9.1);
        `reason` becomes its Reason header (RFC 3326)."""
        self._process(self.layer.cancel(transaction, self.now(), reason))

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        """An ACK for a 2xx (it has no transaction, §13.2.2.4), or a stateless response."""
        self.transport.send(message, peer)

    # -- server side -------------------------------------------------------------------------
    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        if "Server" not in response.headers and self.user_agent:
            response.headers.add("Server", self.user_agent)
        self._process(self.layer.respond(transaction, response, self.now()))

    # -- the loop ------------------------------------------------------------------------------
    def _on_message(self, message: Request | Response, peer: Peer, listener: Listener) -> None:
        if self.accept is not None and not self.accept(message, peer):
            return
        source = _peer(peer)
        self._process(self.layer.receive(message, source, self.now()), source)

    def _on_transport_error(self, peer: Peer, error: Exception) -> None:
        log.info("sip.transport_error", peer=f"{peer.transport}:{peer.host}:{peer.port}", error=repr(error))
        self._process(self.layer.transport_error(_peer(peer), self.now()))

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._process(self.layer.handle_timer(self.now()))

    def _process(self, events: list[Event], source: Peer | None = None) -> None:
        """Act on the layer's events; `source` is where the message that caused them came from."""
        for event in events:
            try:
                self._dispatch(event, source)
            except Exception:  # a bug in one call must not stop the UA serving the others
                log.exception("sip.core_error", sip_event=type(event).__name__)
        self._rearm()

    def _dispatch(self, event: Event, source: Peer | None) -> None:
        # One dict lookup by the event's class instead of an isinstance chain: this runs
        # for every event of every message.
        _DISPATCH[type(event)](self, event, source)

    def _send(self, event: Send, source: Peer | None) -> None:
        self.transport.send(event.message, event.peer)

    def _request_received(self, event: RequestReceived, source: Peer | None) -> None:
        transaction = event.transaction
        self.core.on_request(event.request, transaction, transaction.peer if transaction else source)

    def _response_received(self, event: ResponseReceived, source: Peer | None) -> None:
        if event.transaction is None:
            self.core.on_stray_response(event.response, source)
            return
        handler = self._handlers.get(event.transaction)
        if handler is not None:
            handler(event)

    def _to_handler(self, event: TransactionTimeout | TransportFailure, source: Peer | None) -> None:
        handler = self._handlers.get(event.transaction)  # type: ignore[arg-type]
        if handler is not None:
            handler(event)

    def _cancel_received(self, event: CancelReceived, source: Peer | None) -> None:
        self.core.on_cancel(event.cancel, event.invite_transaction)

    def _ack_not_received(self, event: AckNotReceived, source: Peer | None) -> None:
        self.core.on_ack_timeout(event.transaction)

    def _terminated(self, event: TransactionTerminated, source: Peer | None) -> None:
        handler = self._handlers.pop(event.transaction, None)  # type: ignore[arg-type]
        if handler is not None:
            handler(event)

    def _rearm(self) -> None:
        deadline = self.layer.next_timer()
        if deadline is not None:
            # The loop is woken on a grid, for every timer due by then (see _TIMER_GRID_S).
            deadline = (math.floor(deadline / _TIMER_GRID_S) + 1) * _TIMER_GRID_S
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            loop = self._loop or asyncio.get_running_loop()
            self._timer = loop.call_at(deadline, self._on_timer)


# Transaction timers wake the event loop at most once per 10 ms, then all that are due
# fire together. Under load nearly every transaction has a deadline of its own (Timers
# A-K, ending 32 s after each message), and one loop wake-up and one re-armed loop timer
# per deadline cost more than the timers' own work. RFC 3261's timers are T1 = 500 ms
# and up (Table 4): firing up to 10 ms late changes nothing for them.
_TIMER_GRID_S = 0.01


_DISPATCH: dict[type, Callable[[SipStack, Event, Peer | None], None]] = {
    Send: SipStack._send,
    RequestReceived: SipStack._request_received,
    ResponseReceived: SipStack._response_received,
    TransactionTimeout: SipStack._to_handler,
    TransportFailure: SipStack._to_handler,
    CancelReceived: SipStack._cancel_received,
    AckNotReceived: SipStack._ack_not_received,
    TransactionTerminated: SipStack._terminated,
}


def _peer(peer: object) -> Peer:
    """The transport's Peer as the transaction layer's (one class once they are unified)."""
    if isinstance(peer, Peer):
        return peer
    return Peer(peer.transport, peer.host, peer.port)  # type: ignore[attr-defined]
