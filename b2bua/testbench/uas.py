"""A UAS that answers calls the way it is told to: the base of the mock ECRC and the PSTN gateway.

Behaviours (`AnswerBehaviour.answer`, changeable at run time):
  200        200 with a G.711 SDP answer, after 180 and `ring_ms` when ring_ms > 0
  486 / 503  that final response (after `ring_ms`)
  drop       silence: every request is dropped before the transaction layer (so not even
             a 100 Trying leaves), like a dead host behind a live address; each new INVITE
             is still handed, once (not its retransmissions), to `invite_dropped`
  ring       180 and never an answer (until the caller CANCELs: 487)
  bye-after  answer as 200, then BYE `bye_after_s` after the ACK
In a call it answers BYE, re-INVITE (with a fresh SDP answer), UPDATE, INFO, MESSAGE and
OPTIONS; CANCEL gets 487 on the INVITE. Subclasses hear each new INVITE through
`invite_received` before it is answered (the ECRC records it there, durably); should that
hook fail (the store is broken), the INVITE gets 500 rather than an answer that claims a
record exists. `screen_invite` lets a subclass answer an INVITE itself with a final
response instead of the behaviour (the PSTN gateway redirects callbacks to an ELIN).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

import structlog

from ..sip import Request, Response, make_response, new_tag
from ..sip.dialog import Dialog
from ..sip.transaction import Event, Peer, ServerTransaction
from ..engine.bridge import ACCEPT
from ..stack import SipStack
from . import sdp
from .control import AnswerBehaviour

log = structlog.get_logger("b2bua.testbench")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, MESSAGE"
DROPPED_REMEMBERED = 1024  # INVITEs (Call-ID, branch) remembered to hear each dropped one once


@dataclass
class UasCall:
    invite: Request
    transaction: ServerTransaction
    peer: Peer
    tag: str
    dialog: Dialog | None = None
    behaviour: AnswerBehaviour | None = None
    answered: bool = False
    acked: bool = False
    ended: bool = False
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


class AnsweringUas:
    def __init__(self, name: str, behaviour: AnswerBehaviour | None = None, **stack_options: object) -> None:
        self.name = name
        self.behaviour = behaviour or AnswerBehaviour()
        self.stack = SipStack(self, **stack_options)  # type: ignore[arg-type]
        self.stack.accept = self._accept
        self.calls: dict[tuple[str, str], UasCall] = {}
        self._by_transaction: dict[ServerTransaction, UasCall] = {}
        self._dropped: OrderedDict[tuple[str, str], None] = OrderedDict()

    # -- hooks for subclasses -------------------------------------------------------------
    def screen_invite(self, request: Request, peer: Peer) -> Response | None:
        """A new INVITE (not yet a call): return a final response to send instead of
        answering it by the behaviour (no call is made, `invite_received` is not called),
        or None to answer it as usual."""
        return None

    def invite_received(self, request: Request, peer: Peer) -> None:
        """A new INVITE, before any answer leaves. An exception here answers it 500."""

    def call_ended(self, call: UasCall, side: str) -> None:
        """A call is over (`side`: caller, us, cancelled)."""

    def invite_dropped(self, request: Request, peer: Peer) -> None:
        """A new INVITE that the `drop` behaviour left unanswered (once per INVITE, not per
        retransmission; nothing is sent, no call is made)."""

    # -- behaviour --------------------------------------------------------------------------
    def set_behaviour(self, behaviour: AnswerBehaviour) -> None:
        self.behaviour = behaviour
        log.info("uas.behaviour", uas=self.name, **behaviour.to_json())

    def get_behaviour(self) -> AnswerBehaviour:
        return self.behaviour

    def _accept(self, message: Request | Response, peer: Peer) -> bool:
        if self.behaviour.answer != "drop":
            return True
        if isinstance(message, Request) and message.method == "INVITE":
            try:
                fresh = message.to.tag is None
                via = message.top_via
                key = (message.call_id, via.branch if via is not None and via.branch else "")
            except Exception:  # noqa: BLE001 - unparseable: dropped like everything else
                return False
            if fresh and key not in self._dropped:
                self._dropped[key] = None
                while len(self._dropped) > DROPPED_REMEMBERED:
                    self._dropped.popitem(last=False)
                try:
                    self.invite_dropped(message, peer)
                except Exception:  # noqa: BLE001 - a dead host stays silent whatever happens
                    log.exception("uas.drop_hook_failed", uas=self.name, call_id=key[0])
        return False

    # -- Core callbacks ---------------------------------------------------------------------
    def on_request(self, request: Request, transaction: ServerTransaction | None, peer: Peer | None) -> None:
        if request.method == "ACK":
            call = self.calls.get((request.call_id, request.to.tag or ""))
            if call is not None and call.answered and not call.acked:
                call.acked = True
                behaviour = call.behaviour
                if behaviour is not None and behaviour.answer == "bye-after":
                    delay = behaviour.bye_after_s if behaviour.bye_after_s is not None else 5.0
                    call.timers.append(asyncio.get_running_loop().call_later(delay, self._bye, call))
            return
        assert transaction is not None and peer is not None
        if request.to.tag is not None:
            self._in_dialog(request, transaction)
        elif request.method == "INVITE":
            self._new_call(request, transaction, peer)
        elif request.method == "OPTIONS":
            response = make_response(request, 200, to_tag=new_tag())
            response.headers.add("Allow", ALLOW)
            response.headers.add("Accept", ACCEPT)
            self.stack.respond(transaction, response)
        elif request.method in ("BYE", "UPDATE", "INFO"):
            self.stack.respond(transaction, make_response(request, 481, to_tag=new_tag()))
        else:
            response = make_response(request, 405, to_tag=new_tag())
            response.headers.add("Allow", ALLOW)
            self.stack.respond(transaction, response)

    def on_cancel(self, cancel: Request, invite: ServerTransaction) -> None:
        call = self._by_transaction.get(invite)
        if call is None or call.answered:
            return
        call.cancel_timers()
        self.stack.respond(invite, self._response(call, 487))
        self._end(call, "cancelled")

    def on_ack_timeout(self, invite: ServerTransaction) -> None:
        call = self._by_transaction.get(invite)
        if call is not None:
            self._bye(call)

    def on_stray_response(self, response: Response, peer: Peer | None) -> None:
        return None

    # -- calls ------------------------------------------------------------------------------
    def _new_call(self, request: Request, transaction: ServerTransaction, peer: Peer) -> None:
        screened = self.screen_invite(request, peer)
        if screened is not None:
            self.stack.respond(transaction, screened)
            return
        behaviour = self.behaviour
        call = UasCall(request, transaction, peer, new_tag(), behaviour=behaviour)
        self.calls[(request.call_id, call.tag)] = call
        self._by_transaction[transaction] = call
        try:
            self.invite_received(request, peer)
        except Exception:  # noqa: BLE001 - e.g. the store failed: never claim a record by answering
            log.exception("uas.invite_hook_failed", uas=self.name, call_id=request.call_id)
            self.stack.respond(transaction, self._response(call, 500))
            self._end(call, "us")
            return
        if behaviour.answer == "ring" or (behaviour.ring_ms and behaviour.answer in ("200", "bye-after")):
            self.stack.respond(transaction, self._response(call, 180))
        if behaviour.answer == "ring":
            return
        if behaviour.ring_ms:
            call.timers.append(asyncio.get_running_loop().call_later(behaviour.ring_ms / 1000, self._final, call))
        else:
            self._final(call)

    def _final(self, call: UasCall) -> None:
        behaviour = call.behaviour or self.behaviour
        if call.ended:
            return
        if behaviour.answer in ("486", "503"):
            self.stack.respond(call.transaction, self._response(call, int(behaviour.answer)))
            self._end(call, "us")
            return
        host, _ = self.stack.local_address(call.peer.transport)
        body = sdp.answer(sdp.sdp_of(call.invite), host, 40000)
        response = self._response(call, 200, body)
        call.dialog = Dialog.for_uas(call.invite, call.tag)
        call.answered = True
        self.stack.respond(call.transaction, response)

    def _response(self, call: UasCall, status: int, body: bytes = b"") -> Response:
        response = make_response(call.invite, status, to_tag=call.tag)
        if status < 300:
            response.headers.add("Contact", f"<{self.stack.contact_uri(call.peer.transport)}>")
            response.headers.add("Allow", ALLOW)
        if body:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body
        return response

    def _in_dialog(self, request: Request, transaction: ServerTransaction) -> None:
        call = self.calls.get((request.call_id, request.to.tag or ""))
        if call is None or call.dialog is None:
            self.stack.respond(transaction, make_response(request, 481))
            return
        status = call.dialog.receive_request(request)
        if status is not None:
            self.stack.respond(transaction, make_response(request, status))
            return
        response = make_response(request, 200)
        if request.method == "INVITE":
            host, _ = self.stack.local_address(call.peer.transport)
            response.headers.add("Contact", f"<{self.stack.contact_uri(call.peer.transport)}>")
            response.headers.add("Content-Type", "application/sdp")
            response.body = sdp.answer(sdp.sdp_of(request), host, 40000)
        self.stack.respond(transaction, response)
        if request.method == "BYE":
            self._end(call, "caller")

    def _bye(self, call: UasCall) -> None:
        if call.ended or call.dialog is None:
            return
        host, port = self.stack.local_address(call.peer.transport)
        sent_by = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bye = call.dialog.create_request("BYE", sent_by=sent_by, transport=call.peer.transport)
        self.stack.send_request(bye, call.peer, _ignore)
        self._end(call, "us")

    def _end(self, call: UasCall, side: str) -> None:
        if call.ended:
            return
        call.ended = True
        call.cancel_timers()
        self._by_transaction.pop(call.transaction, None)
        # Keep the dialog a while for retransmitted BYEs, then forget it.
        key = (call.invite.call_id, call.tag)
        asyncio.get_running_loop().call_later(32.0, self.calls.pop, key, None)
        self.call_ended(call, side)


def _ignore(event: Event) -> None:
    return None
