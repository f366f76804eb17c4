"""A minimal UAS and UAC built on the SIP core (`SipStack` + a `Core`), for interop tests.

    uas = CoreUas()
    await uas.start(transports=("udp", "tcp"))          # port 0: see uas.port("udp")
    ...
    await uas.wait_for("BYE", timeout=5)
    await uas.close()

    uac = CoreUac()
    await uac.start(transports=("udp",))
    result = await uac.call(Peer("udp", "127.0.0.1", port), "sip:ecrc@127.0.0.1:port", hold=0.2)
    assert result.final == 200 and result.bye_status == 200

Both record what reached their core (`received`) and, below the transaction layer, every
message the transport delivered (`wire`): a retransmission shows in `wire`, not in
`received`. Nothing here imports pytest.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from b2bua.sip import Request, Response, make_response, new_call_id, new_tag
from b2bua.sip.dialog import Dialog, DialogTable
from b2bua.sip.message import Headers
from b2bua.sip.transaction import (
    Peer,
    ResponseReceived,
    ServerTransaction,
    TimerConfig,
    TransactionTimeout,
    TransportFailure,
)
from b2bua.stack import SipStack

HOST = "127.0.0.1"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"


def sdp(address: str, port: int, session: int) -> bytes:
    """A G.711 (PCMU/PCMA) audio description; nothing is ever sent to `port`."""
    lines = [
        "v=0",
        f"o=core {session} {session} IN IP4 {address}",
        "s=-",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class Received:
    """One message as it reached a core (or the transport, for `wire`)."""

    method: str  # the request method, or the response's CSeq method
    message: Request | Response
    peer: Peer | None
    at: float


class RecordingStack(SipStack):
    """A SipStack that also records every message the transport hands up (retransmissions
    included), before the transaction layer absorbs any, every message it sends
    (`sent`) and every transport error."""

    def __init__(self, core, *, on_wire=None, **options) -> None:  # noqa: ANN001
        self.wire: list[Received] = []
        self.transport_errors: list[tuple[Peer, Exception]] = []
        self.sent: list[Received] = []  # every message handed to the transport, retransmissions too
        self._on_wire = on_wire
        super().__init__(core, **options)
        send = self.transport.send

        def recording_send(message, peer, **kwargs) -> None:  # noqa: ANN001
            if isinstance(message, (Request, Response)):
                method = message.method if isinstance(message, Request) else _cseq_method(message)
                self.sent.append(Received(method, message, peer, time.monotonic()))
            send(message, peer, **kwargs)

        self.transport.send = recording_send  # type: ignore[method-assign]

    def _on_transport_error(self, peer, error) -> None:  # noqa: ANN001
        self.transport_errors.append((peer, error))
        super()._on_transport_error(peer, error)

    def _on_message(self, message, peer, listener) -> None:  # noqa: ANN001
        method = message.method if isinstance(message, Request) else _cseq_method(message)
        self.wire.append(Received(method, message, peer, time.monotonic()))
        super()._on_message(message, peer, listener)
        if self._on_wire is not None:
            self._on_wire()


def _cseq_method(message: Response) -> str:
    try:
        return message.cseq.method
    except Exception:  # noqa: BLE001 - a record, never a failure
        return "?"


class _Peer:
    """What the UAS and UAC share: a stack on port 0, records, bounded waits."""

    def __init__(self, *, timers: TimerConfig | None = None, tls_peers=None, user_agent: str) -> None:  # noqa: ANN001
        self.stack = RecordingStack(self, on_wire=self._notify, timers=timers, tls_peers=tls_peers, user_agent=user_agent)
        self.received: list[Received] = []
        self.listeners: dict[str, object] = {}
        self._changed: asyncio.Event | None = None

    async def start(
        self, transports: Iterable[str] = ("udp", "tcp"), host: str = HOST, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self._changed = asyncio.Event()
        for transport in transports:
            context = tls_context if transport == "tls" else None
            self.listeners[transport] = await self.stack.listen(transport, host, 0, context)

    def port(self, transport: str) -> int:
        return self.listeners[transport].port  # type: ignore[attr-defined]

    @property
    def wire(self) -> list[Received]:
        return self.stack.wire

    async def close(self) -> None:
        await self.stack.close()

    def count(self, method: str) -> int:
        """Requests of `method` that reached the core (retransmissions absorbed)."""
        return sum(1 for item in self.received if item.method == method)

    def wire_count(self, method: str) -> int:
        """Messages of `method` the transport delivered (retransmissions included)."""
        return sum(1 for item in self.wire if item.method == method)

    def _record(self, method: str, message: Request | Response, peer: Peer | None) -> None:
        self.received.append(Received(method, message, peer, time.monotonic()))
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> None:
        """Until `count` requests of `method` reached the core; TimeoutError otherwise."""
        await self.wait_until(lambda: self.count(method) >= count, timeout)

    async def wait_for_wire(self, method: str, count: int = 1, timeout: float = 5.0) -> None:
        await self.wait_until(lambda: self.wire_count(method) >= count, timeout)

    async def wait_until(self, predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
        async def loop() -> None:
            assert self._changed is not None, "start() first"
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    # Core defaults: a stray response (2xx retransmitted after the transaction) is recorded.
    def on_stray_response(self, response: Response, peer: Peer | None) -> None:
        self._record(f"stray {_cseq_method(response)}", response, peer)


# -- the UAS ---------------------------------------------------------------------------------


class CoreUas(_Peer):
    """Answers INVITE with 180 then 200 + SDP (or `answer_code`), ACK and BYE in dialog,
    OPTIONS with 200, CANCEL via the layer (487 here); anything else 405.

    `answer_delay`: seconds between 180 and the final response (0: at once).
    `ring`: send 180 first."""

    def __init__(
        self,
        *,
        answer_code: int = 200,
        answer_delay: float = 0.0,
        ring: bool = True,
        timers: TimerConfig | None = None,
        user_agent: str = "core-uas",
    ) -> None:
        super().__init__(timers=timers, user_agent=user_agent)
        self.answer_code = answer_code
        self.answer_delay = answer_delay
        self.ring = ring
        self.dialogs = DialogTable()
        self.finals: list[Response] = []  # final responses to INVITEs, as the TU sent them
        self.ack_timeouts = 0
        self._sessions = itertools.count(1000)
        self._pending: dict[ServerTransaction, asyncio.TimerHandle] = {}

    def on_request(self, request: Request, transaction: ServerTransaction | None, peer: Peer | None) -> None:
        self._record(request.method, request, peer)
        method = request.method
        if method == "ACK":
            return  # an ACK for our 2xx; the transaction stopped retransmitting it
        assert transaction is not None
        if request.to.tag is not None:
            self._in_dialog(request, transaction)
        elif method == "INVITE":
            self._invite(request, transaction)
        elif method == "OPTIONS":
            response = make_response(request, 200, to_tag=new_tag())
            response.headers.add("Allow", ALLOW)
            response.headers.add("Accept", "application/sdp")
            self.stack.respond(transaction, response)
        else:
            response = make_response(request, 481 if method == "BYE" else 405, to_tag=new_tag())
            if response.status == 405:
                response.headers.add("Allow", ALLOW)
            self.stack.respond(transaction, response)

    def _invite(self, request: Request, transaction: ServerTransaction) -> None:
        tag = new_tag()
        if self.ring:
            self.stack.respond(transaction, make_response(request, 180, to_tag=tag))
        if self.answer_delay > 0:
            loop = asyncio.get_running_loop()
            self._pending[transaction] = loop.call_later(self.answer_delay, self._answer, request, transaction, tag)
        else:
            self._answer(request, transaction, tag)

    def _answer(self, request: Request, transaction: ServerTransaction, tag: str) -> None:
        self._pending.pop(transaction, None)
        status = self.answer_code
        response = make_response(request, status, to_tag=tag)
        if 200 <= status < 300:
            peer = transaction.peer
            response.headers.add("Contact", f"<{self.stack.contact_uri(peer.transport, 'uas')}>")
            response.headers.add("Allow", ALLOW)
            response.headers.add("Content-Type", "application/sdp")
            response.body = sdp(HOST, 40000, next(self._sessions))
            self.dialogs.add(Dialog.for_uas(request, tag, secure_transport=peer.transport == "tls"))
        self.finals.append(response)
        self.stack.respond(transaction, response)
        self._notify()

    def _in_dialog(self, request: Request, transaction: ServerTransaction) -> None:
        dialog, refusal = self.dialogs.receive_request(request)
        if dialog is None or refusal is not None:
            self.stack.respond(transaction, make_response(request, refusal or 481, to_tag=new_tag()))
            return
        if request.method == "BYE":
            self.dialogs.remove(dialog)
            self.stack.respond(transaction, make_response(request, 200))
        elif request.method == "OPTIONS":
            self.stack.respond(transaction, make_response(request, 200))
        else:
            self.stack.respond(transaction, make_response(request, 405))

    def on_cancel(self, cancel: Request, invite: ServerTransaction) -> None:
        self._record("CANCEL", cancel, invite.peer)
        handle = self._pending.pop(invite, None)
        if handle is not None:
            handle.cancel()
        self.stack.respond(invite, make_response(invite.request, 487, to_tag=invite.to_tag or new_tag()))

    def on_ack_timeout(self, invite: ServerTransaction) -> None:
        self.ack_timeouts += 1
        self._notify()

    async def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        await super().close()


# -- the UAC ---------------------------------------------------------------------------------


@dataclass
class CallResult:
    """What one call did. `final`: the INVITE's final status, 408 for Timer B, 503 for a
    transport failure (§8.1.3.1); `provisionals`: the 1xx statuses seen; times in seconds
    from sending the INVITE."""

    final: int | None = None
    provisionals: list[int] = field(default_factory=list)
    failure: str | None = None  # "timeout" | "transport"
    final_after: float | None = None
    acks_sent: int = 0
    bye_status: int | None = None
    bye_after: float | None = None
    invite: Request | None = None
    response: Response | None = None


class CoreUac(_Peer):
    """Places INVITEs: ACKs a 2xx (and every retransmission of it), sends BYE after `hold`."""

    def __init__(self, *, timers: TimerConfig | None = None, tls_peers=None, user_agent: str = "core-uac") -> None:  # noqa: ANN001
        super().__init__(timers=timers, tls_peers=tls_peers, user_agent=user_agent)
        self._acks: dict[tuple[str, str], tuple[Request, Peer]] = {}  # (Call-ID, To tag) -> ACK
        self.reacks = 0  # ACKs re-sent for retransmitted 2xx

    def on_request(self, request: Request, transaction: ServerTransaction | None, peer: Peer | None) -> None:
        self._record(request.method, request, peer)
        if transaction is None:
            return
        if request.method == "OPTIONS":
            self.stack.respond(transaction, make_response(request, 200, to_tag=new_tag()))
        else:
            # A BYE from the far end for a call we hold: accept it; anything else 481.
            self.stack.respond(
                transaction, make_response(request, 200 if request.method == "BYE" else 481, to_tag=new_tag())
            )

    def on_cancel(self, cancel: Request, invite: ServerTransaction) -> None:  # pragma: no cover - not a UAS
        self.stack.respond(invite, make_response(invite.request, 487, to_tag=new_tag()))

    def on_ack_timeout(self, invite: ServerTransaction) -> None:  # pragma: no cover - not a UAS
        pass

    def on_stray_response(self, response: Response, peer: Peer | None) -> None:
        super().on_stray_response(response, peer)
        self._reack(response)

    def _reack(self, response: Response) -> None:
        if response.is_success and response.cseq.method == "INVITE":
            sent = self._acks.get((response.call_id, response.to.tag or ""))
            if sent is not None:
                ack, peer = sent
                self.reacks += 1
                self.stack.send_stateless(ack, peer)

    def _sent_by(self, transport: str) -> str:
        host, port = self.stack.local_address(transport)
        return f"{host}:{port}"

    def build_invite(self, target: Peer, uri: str, *, from_user: str = "caller") -> Request:
        transport = target.transport
        host, port = self.stack.local_address(transport)
        scheme = "sips" if transport == "tls" else "sip"
        headers = Headers()
        headers.add("Via", self.stack.via(transport))
        headers.add("Max-Forwards", "70")
        headers.add("From", f'"Core UAC" <{scheme}:{from_user}@{host}:{port}>;tag={new_tag()}')
        headers.add("To", f"<{uri}>")
        headers.add("Call-ID", new_call_id())
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", f"<{self.stack.contact_uri(transport, from_user)}>")
        headers.add("Allow", ALLOW)
        headers.add("User-Agent", "core-uac")
        headers.add("Content-Type", "application/sdp")
        return Request("INVITE", uri, headers, sdp(HOST, 41000, int(time.time())))

    async def call(self, target: Peer, uri: str, *, hold: float = 0.2, timeout: float = 40.0) -> CallResult:
        """One call: INVITE -> final; on 2xx ACK, hold, BYE -> its final. Bounded by `timeout`."""
        return await asyncio.wait_for(self._call(target, uri, hold), timeout)

    async def _call(self, target: Peer, uri: str, hold: float) -> CallResult:
        loop = asyncio.get_running_loop()
        result = CallResult()
        invite = self.build_invite(target, uri)
        result.invite = invite
        final: asyncio.Future[Response | str] = loop.create_future()
        started = loop.time()

        def on_invite_event(event) -> None:  # noqa: ANN001
            if isinstance(event, ResponseReceived):
                response = event.response
                if response.is_provisional:
                    result.provisionals.append(response.status)
                elif not final.done():
                    final.set_result(response)
                else:
                    self._reack(response)  # a 2xx retransmission in Accepted: ACK it again
            elif isinstance(event, TransactionTimeout) and not final.done():
                final.set_result("timeout")
            elif isinstance(event, TransportFailure) and not final.done():
                final.set_result("transport")

        self.stack.send_request(invite, target, on_invite_event)
        outcome = await final
        result.final_after = loop.time() - started
        if isinstance(outcome, str):
            result.failure = outcome
            result.final = 408 if outcome == "timeout" else 503
            return result
        result.final = outcome.status
        result.response = outcome
        if not outcome.is_success:
            return result  # the transaction ACKed it (§17.1.1.3)

        dialog = Dialog.for_uac(invite, outcome, secure_transport=target.transport == "tls")
        transport = target.transport.upper()
        ack = dialog.create_ack(invite, outcome, sent_by=self._sent_by(target.transport), transport=transport)
        self._acks[(invite.call_id, dialog.remote_tag)] = (ack, target)
        self.stack.send_stateless(ack, target)
        result.acks_sent += 1
        await asyncio.sleep(hold)

        bye = dialog.create_request("BYE", sent_by=self._sent_by(target.transport), transport=transport)
        bye_final: asyncio.Future[int] = loop.create_future()

        def on_bye_event(event) -> None:  # noqa: ANN001
            if bye_final.done():
                return
            if isinstance(event, ResponseReceived) and not event.response.is_provisional:
                bye_final.set_result(event.response.status)
            elif isinstance(event, TransactionTimeout):
                bye_final.set_result(408)
            elif isinstance(event, TransportFailure):
                bye_final.set_result(503)

        bye_started = loop.time()
        self.stack.send_request(bye, target, on_bye_event)
        result.bye_status = await bye_final
        result.bye_after = loop.time() - bye_started
        return result
