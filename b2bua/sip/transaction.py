"""SIP transactions, sans-I/O (RFC 3261 §17, §9, §8.2.2.2, §13.3.1.4; RFC 6026).

Four state machines, one per RFC role, each drawn as a table at the top of its class:

    InviteClientTransaction      Figure 5 + RFC 6026 "Accepted"   (Timers A B D M)
    NonInviteClientTransaction   Figure 6                         (Timers E F K)
    InviteServerTransaction      Figure 7 + RFC 6026 "Accepted"   (Timers G H I L, 100 Trying, 2xx)
    NonInviteServerTransaction   Figure 8                         (Timer J)

and a `TransactionLayer` (one per UA) that matches messages to them (§17.1.3, §17.2.3, with
the RFC 2543 fallback), answers CANCEL (§9.2) and merged requests (§8.2.2.2) itself, and
queues a CANCEL until the first provisional (§9.1).

Style (h11 / aioquic): nothing here does I/O or reads a clock. Feed a machine
`receive(message, now)` and `handle_timer(now)`; it returns events (what to `Send`, what the
TU must hear); ask `next_timer()` when to wake it next. Every row of a table reads

    (state, event): (next state, action)

where the event is what arrived ("1xx", "2xx", "300-699", "request", "ACK", "TU 2xx",
"timer A", "transport error" ...) and the action names a method `_<action>` returning events.
An (state, event) pair not in the table is absorbed without effect: that is how
retransmissions the figures ignore are dropped. Entering Terminated stops every timer and
yields `TransactionTerminated`; the other states may start timers on entry (`ON_ENTER`).

Design choice - who retransmits the 2xx to an INVITE. RFC 3261 §13.3.1.4 gives it to the UAS
core, and RFC 6026 keeps it out of the transaction. Here the INVITE server transaction does
it in its Accepted state: T1 doubling capped at T2 (on every transport: the ACK is end to
end, §13.3.1.4), until the layer matches the ACK to it (an ACK for a 2xx has a new branch,
so it is matched by Call-ID, From tag, To tag and CSeq number) or until Timer L (64*T1)
fires, which then yields `AckNotReceived` so the TU sends BYE. One timer owner per INVITE
keeps the UAS core free of timers; the behaviour on the wire is the RFC's.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from .headers import Via
from .ids import MAGIC_COOKIE, new_tag
from .message import Headers, Message, Request, Response, make_response
from .timers import TimerConfig, TimerSet

__all__ = [
    "AckNotReceived", "CancelReceived", "ClientTransaction", "Event", "InviteClientTransaction",
    "InviteServerTransaction", "NonInviteClientTransaction", "NonInviteServerTransaction", "Peer",
    "RequestReceived", "ResponseReceived", "Send", "ServerTransaction", "TimerConfig", "Transaction",
    "TransactionKey", "TransactionLayer", "TransactionState", "TransactionTerminated", "TransactionTimeout",
    "TransportFailure", "make_ack_for_non2xx", "make_cancel",
]


# -- where a message goes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message goes to or came from: transport, host (no IPv6 brackets), port."""

    transport: str  # 'udp' | 'tcp' | 'tls'
    host: str
    port: int

    TRANSPORTS: ClassVar[frozenset[str]] = frozenset({"udp", "tcp", "tls"})

    def __post_init__(self) -> None:
        transport = self.transport.lower()
        if transport not in self.TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}")
        host = self.host[1:-1] if self.host.startswith("[") and self.host.endswith("]") else self.host
        object.__setattr__(self, "transport", transport)
        object.__setattr__(self, "host", host.lower())

    @property
    def reliable(self) -> bool:
        """TCP and TLS: no retransmissions, zero Timers D, I, J, K (§17)."""
        return self.transport != "udp"


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Hand `message` to the transport for `peer`."""

    message: Message
    peer: Peer


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU. `transaction` is None for an ACK to a 2xx (it has none)."""

    request: Request
    transaction: ServerTransaction | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the TU of a client transaction: provisional, final, and (RFC 6026)
    2xx retransmissions in Accepted so the TU re-sends its ACK. `transaction` is None for a
    response that matches no transaction (a 2xx retransmitted after the transaction ended)."""

    response: Response
    transaction: ClientTransaction | None


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B / F (the TU treats it as 408), the §9.1 64*T1 wait after a CANCEL, or, on an
    INVITE server transaction, Timer H (the ACK for a non-2xx final never came)."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """The transport could not deliver (§8.1.3.1, §17.1.4): the TU treats it as 503 at once."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL for a pending INVITE. The layer has answered the CANCEL 200 (§9.2); the TU
    must now answer the INVITE 487."""

    cancel: Request
    invite_transaction: InviteServerTransaction


@dataclass(frozen=True, slots=True)
class AckNotReceived:
    """The 2xx was retransmitted for 64*T1 without an ACK: the TU should send BYE (§13.3.1.4)."""

    transaction: InviteServerTransaction


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    transaction: Transaction


Event = (
    Send | RequestReceived | ResponseReceived | TransactionTimeout | TransportFailure | CancelReceived
    | AckNotReceived | TransactionTerminated
)


# -- the machines --------------------------------------------------------------------------


class TransactionState(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026
    TERMINATED = "Terminated"


CALLING = TransactionState.CALLING
TRYING = TransactionState.TRYING
PROCEEDING = TransactionState.PROCEEDING
COMPLETED = TransactionState.COMPLETED
CONFIRMED = TransactionState.CONFIRMED
ACCEPTED = TransactionState.ACCEPTED
TERMINATED = TransactionState.TERMINATED

Table = dict[tuple[TransactionState, str], tuple[TransactionState, str | None]]


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """What a message is matched on (§17.1.3, §17.2.3): the top Via branch and the method of
    the request that created the transaction (ACK -> INVITE), plus the Via sent-by on the
    server side."""

    branch: str
    method: str
    sent_by: tuple[str, int | None] | None = None


class Transaction:
    """What the four machines share: the table-driven dispatch and the timers."""

    INITIAL: ClassVar[TransactionState]
    TRANSITIONS: ClassVar[Table] = {}
    ON_ENTER: ClassVar[dict[TransactionState, str]] = {}

    def __init__(self, request: Request, peer: Peer, config: TimerConfig) -> None:
        self.request = request
        self.peer = peer
        self.config = config
        self.state = self.INITIAL
        self.timers = TimerSet()
        via = request.top_via
        if via is None:
            raise ValueError("a transaction needs a request with a Via")
        self.top_via: Via = via
        self.key = self._make_key()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A table naming a method that does not exist is a bug at import time, not in a call.
        for (_state, _event), (_next, action) in cls.TRANSITIONS.items():
            if action is not None and not callable(getattr(cls, "_" + action, None)):
                raise TypeError(f"{cls.__name__}: no method _{action} for the transition table")
        for action in cls.ON_ENTER.values():
            if not callable(getattr(cls, "_" + action, None)):
                raise TypeError(f"{cls.__name__}: no method _{action} for ON_ENTER")

    def _make_key(self) -> TransactionKey:
        raise NotImplementedError

    @property
    def branch(self) -> str | None:
        return self.top_via.branch

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def terminated(self) -> bool:
        return self.state is TERMINATED

    # -- timers -------------------------------------------------------------------------
    def next_timer(self) -> float | None:
        """When `handle_timer` must next be called, or None."""
        return self.timers.next_deadline()

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at `now`, earliest first."""
        events: list[Event] = []
        while (name := self.timers.pop_due(now)) is not None:
            events += self._fire(f"timer {name}", None, now)
        return events

    # -- the dispatch ---------------------------------------------------------------------
    def _fire(self, event: str, message: Message | None, now: float) -> list[Event]:
        rule = self.TRANSITIONS.get((self.state, event))
        if rule is None:
            return []  # not in the figure: absorbed
        next_state, action = rule
        events: list[Event] = getattr(self, "_" + action)(message, now) if action else []
        if next_state is not self.state:
            self.state = next_state
            if next_state is TERMINATED:
                self.timers.stop_all()
                events.append(TransactionTerminated(self))
            elif next_state in self.ON_ENTER:
                getattr(self, "_" + self.ON_ENTER[next_state])(now)
        return events

    # -- actions several machines use -------------------------------------------------------
    def _report_timeout(self, _message: Message | None, _now: float) -> list[Event]:
        return [TransactionTimeout(self)]

    def _report_transport_failure(self, _message: Message | None, _now: float) -> list[Event]:
        return [TransportFailure(self)]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch} {self.state.value}>"


class ClientTransaction(Transaction):
    """Sends a request and collects its responses (§17.1)."""

    def __init__(self, request: Request, peer: Peer, config: TimerConfig | None = None) -> None:
        super().__init__(request, peer, config or TimerConfig())
        self._started = False

    def _make_key(self) -> TransactionKey:
        # §17.1.3: the response's top Via branch and CSeq method.
        return TransactionKey(self.top_via.branch or "", self.request.method)

    def start(self, now: float) -> list[Event]:
        """Send the request and arm the timers."""
        if self._started:
            raise RuntimeError("transaction already started")
        self._started = True
        return self._begin(now)

    def _begin(self, now: float) -> list[Event]:
        raise NotImplementedError

    def receive(self, response: Response, now: float) -> list[Event]:
        return self._fire(self._classify(response.status), response, now)

    def transport_error(self, now: float) -> list[Event]:
        """The transport failed to send the request (ICMP unreachable, connect refused...)."""
        return self._fire("transport error", None, now)

    def _classify(self, status: int) -> str:
        raise NotImplementedError

    def _pass_to_tu(self, response: Response, _now: float) -> list[Event]:
        return [ResponseReceived(response, self)]


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1, Figure 5, with RFC 6026 §7.2 (Accepted, Timer M)."""

    INITIAL = CALLING
    TRANSITIONS: ClassVar[Table] = {
        # (state,     event):             (next state, action)
        (CALLING, "timer A"): (CALLING, "retransmit_request"),  # §17.1.1.2: A doubles, UDP only
        (CALLING, "timer B"): (TERMINATED, "report_timeout"),  # 64*T1: the TU sees a 408
        (CALLING, "transport error"): (TERMINATED, "report_transport_failure"),  # §17.1.4
        (CALLING, "1xx"): (PROCEEDING, "pass_to_tu"),
        (CALLING, "2xx"): (ACCEPTED, "pass_to_tu"),  # RFC 6026 §7.2
        (CALLING, "300-699"): (COMPLETED, "ack_and_pass_to_tu"),  # §17.1.1.3
        (PROCEEDING, "1xx"): (PROCEEDING, "pass_to_tu"),
        (PROCEEDING, "2xx"): (ACCEPTED, "pass_to_tu"),
        (PROCEEDING, "300-699"): (COMPLETED, "ack_and_pass_to_tu"),
        (PROCEEDING, "timer cancel"): (TERMINATED, "report_timeout"),  # §9.1: 64*T1 after CANCEL
        (COMPLETED, "300-699"): (COMPLETED, "resend_ack"),  # retransmitted final: not to the TU
        (COMPLETED, "transport error"): (TERMINATED, "report_transport_failure"),
        (COMPLETED, "timer D"): (TERMINATED, None),
        (ACCEPTED, "2xx"): (ACCEPTED, "pass_to_tu"),  # retransmitted or forked 2xx: the TU re-ACKs
        (ACCEPTED, "timer M"): (TERMINATED, None),
    }
    ON_ENTER: ClassVar[dict[TransactionState, str]] = {
        PROCEEDING: "enter_proceeding",  # stop A and B
        COMPLETED: "enter_completed",  # Timer D: max(64*T1, 32 s) UDP, 0 reliable
        ACCEPTED: "enter_accepted",  # Timer M: 64*T1
    }

    def __init__(self, request: Request, peer: Peer, config: TimerConfig | None = None) -> None:
        super().__init__(request, peer, config)
        self.ack: Request | None = None  # the ACK sent for a non-2xx final

    def _classify(self, status: int) -> str:
        return "1xx" if status < 200 else "2xx" if status < 300 else "300-699"

    def _begin(self, now: float) -> list[Event]:
        if not self.peer.reliable:
            self.timers.start("A", now, self.config.t1)
        self.timers.start("B", now, self.config.timeout)
        return [Send(self.request, self.peer)]

    def cancel_sent(self, now: float) -> None:
        """A CANCEL went out for this INVITE: if no final arrives within 64*T1, give up (§9.1)."""
        if self.state is PROCEEDING:
            self.timers.start("cancel", now, self.config.timeout)

    def _retransmit_request(self, _message: None, now: float) -> list[Event]:
        self.timers.start("A", now, 2 * self.timers.interval("A"))
        return [Send(self.request, self.peer)]

    def _ack_and_pass_to_tu(self, response: Response, now: float) -> list[Event]:
        self.ack = make_ack_for_non2xx(self.request, response)
        return [Send(self.ack, self.peer), ResponseReceived(response, self)]

    def _resend_ack(self, _response: Response, _now: float) -> list[Event]:
        return [Send(self.ack, self.peer)] if self.ack is not None else []

    def _enter_proceeding(self, _now: float) -> None:
        self.timers.stop("A", "B")

    def _enter_completed(self, now: float) -> None:
        self.timers.stop_all()
        self.timers.start("D", now, 0.0 if self.peer.reliable else self.config.timer_d)

    def _enter_accepted(self, now: float) -> None:
        self.timers.stop_all()
        self.timers.start("M", now, self.config.timeout)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2, Figure 6."""

    INITIAL = TRYING
    TRANSITIONS: ClassVar[Table] = {
        # (state,     event):             (next state, action)
        (TRYING, "timer E"): (TRYING, "retransmit_request"),  # §17.1.2.2: E doubles, capped at T2
        (TRYING, "timer F"): (TERMINATED, "report_timeout"),  # 64*T1: the TU sees a 408
        (TRYING, "transport error"): (TERMINATED, "report_transport_failure"),
        (TRYING, "1xx"): (PROCEEDING, "pass_to_tu"),
        (TRYING, "200-699"): (COMPLETED, "pass_to_tu"),
        (PROCEEDING, "timer E"): (PROCEEDING, "retransmit_request_every_t2"),
        (PROCEEDING, "timer F"): (TERMINATED, "report_timeout"),
        (PROCEEDING, "transport error"): (TERMINATED, "report_transport_failure"),
        (PROCEEDING, "1xx"): (PROCEEDING, "pass_to_tu"),
        (PROCEEDING, "200-699"): (COMPLETED, "pass_to_tu"),
        (COMPLETED, "timer K"): (TERMINATED, None),  # Completed absorbs retransmitted responses
    }
    ON_ENTER: ClassVar[dict[TransactionState, str]] = {
        COMPLETED: "enter_completed",  # stop E and F; Timer K: T4 UDP, 0 reliable
    }

    def _classify(self, status: int) -> str:
        return "1xx" if status < 200 else "200-699"

    def _begin(self, now: float) -> list[Event]:
        if not self.peer.reliable:
            self.timers.start("E", now, self.config.t1)
        self.timers.start("F", now, self.config.timeout)
        return [Send(self.request, self.peer)]

    def _retransmit_request(self, _message: None, now: float) -> list[Event]:
        self.timers.start("E", now, min(2 * self.timers.interval("E"), self.config.t2))
        return [Send(self.request, self.peer)]

    def _retransmit_request_every_t2(self, _message: None, now: float) -> list[Event]:
        self.timers.start("E", now, self.config.t2)
        return [Send(self.request, self.peer)]

    def _enter_completed(self, now: float) -> None:
        self.timers.stop_all()
        self.timers.start("K", now, 0.0 if self.peer.reliable else self.config.t4)


class ServerTransaction(Transaction):
    """Answers one received request (§17.2). Created by the layer, or directly with the
    request, the peer it came from and the time it arrived."""

    def __init__(self, request: Request, peer: Peer, now: float, config: TimerConfig | None = None) -> None:
        super().__init__(request, peer, config or TimerConfig())
        self.last_response: Response | None = None
        self._begin(now)

    def _make_key(self) -> TransactionKey:
        method = "INVITE" if self.request.method == "ACK" else self.request.method
        return TransactionKey(self.top_via.branch or "", method, self.top_via.sent_by)

    @property
    def rfc2543(self) -> bool:
        """The peer put no magic-cookie branch: match with the §17.2.3 fallback rules."""
        return not self.top_via.is_rfc3261

    @property
    def to_tag(self) -> str | None:
        """The To tag of the last response sent (§9.2: the CANCEL's 200 reuses it)."""
        return self.last_response.to.tag if self.last_response is not None else None

    def _begin(self, now: float) -> None:
        pass

    def receive(self, request: Request, now: float) -> list[Event]:
        """A retransmission of the request (or, for INVITE, the ACK)."""
        return self._fire("ACK" if request.method == "ACK" else "request", request, now)

    def respond(self, response: Response, now: float) -> list[Event]:
        """The TU's response."""
        return self._fire(self._classify(response.status), response, now)

    def transport_error(self, now: float) -> list[Event]:
        return self._fire("transport error", None, now)

    def _classify(self, status: int) -> str:
        raise NotImplementedError

    def _send_response(self, response: Response, _now: float) -> list[Event]:
        self.last_response = response
        return [Send(response, self.peer)]

    def _resend_last(self, _request: Request | None, _now: float) -> list[Event]:
        return [Send(self.last_response, self.peer)] if self.last_response is not None else []


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1, Figure 7, with RFC 6026 §7.1 (Accepted, Timer L) and the 2xx
    retransmission of §13.3.1.4 (see the module docstring)."""

    INITIAL = PROCEEDING
    TRANSITIONS: ClassVar[Table] = {
        # (state,     event):             (next state, action)
        (PROCEEDING, "timer trying"): (PROCEEDING, "send_trying"),  # §17.2.1: TU silent 200 ms
        (PROCEEDING, "request"): (PROCEEDING, "resend_last"),  # last provisional, if any
        (PROCEEDING, "TU 1xx"): (PROCEEDING, "send_response"),
        (PROCEEDING, "TU 2xx"): (ACCEPTED, "send_response"),  # RFC 6026 §7.1
        (PROCEEDING, "TU 300-699"): (COMPLETED, "send_response"),
        (PROCEEDING, "transport error"): (TERMINATED, "report_transport_failure"),
        (COMPLETED, "request"): (COMPLETED, "resend_last"),
        (COMPLETED, "timer G"): (COMPLETED, "retransmit_final"),  # G doubles, capped at T2
        (COMPLETED, "timer H"): (TERMINATED, "report_timeout"),  # no ACK within 64*T1
        (COMPLETED, "ACK"): (CONFIRMED, None),  # the ACK for a non-2xx stays here (§17.2.1)
        (COMPLETED, "transport error"): (TERMINATED, "report_transport_failure"),
        (CONFIRMED, "timer I"): (TERMINATED, None),  # Confirmed absorbs ACK retransmissions
        (ACCEPTED, "timer 2xx"): (ACCEPTED, "retransmit_2xx"),  # §13.3.1.4: T1 doubling up to T2
        (ACCEPTED, "ACK"): (ACCEPTED, "pass_ack_to_tu"),  # stops the 2xx retransmission
        (ACCEPTED, "TU 2xx"): (ACCEPTED, "send_response"),  # RFC 6026: the TU's retransmissions pass
        (ACCEPTED, "timer L"): (TERMINATED, "report_missing_ack"),  # INVITE retransmits absorbed
    }
    ON_ENTER: ClassVar[dict[TransactionState, str]] = {
        COMPLETED: "enter_completed",  # Timer G (UDP) and H
        CONFIRMED: "enter_confirmed",  # Timer I: T4 UDP, 0 reliable
        ACCEPTED: "enter_accepted",  # Timer L and the 2xx retransmission
    }

    def __init__(self, request: Request, peer: Peer, now: float, config: TimerConfig | None = None) -> None:
        super().__init__(request, peer, now, config)
        self.ack_received = False

    def _classify(self, status: int) -> str:
        return "TU 1xx" if status < 200 else "TU 2xx" if status < 300 else "TU 300-699"

    def _begin(self, now: float) -> None:
        self.timers.start("trying", now, self.config.trying_delay)

    def _send_trying(self, _message: None, now: float) -> list[Event]:
        if self.last_response is not None:
            return []
        return self._send_response(make_response(self.request, 100), now)

    def _send_response(self, response: Response, now: float) -> list[Event]:
        self.timers.stop("trying")  # the TU answered: no 100 Trying of our own
        return super()._send_response(response, now)

    def _retransmit_final(self, _message: None, now: float) -> list[Event]:
        self.timers.start("G", now, min(2 * self.timers.interval("G"), self.config.t2))
        return self._resend_last(None, now)

    def _retransmit_2xx(self, _message: None, now: float) -> list[Event]:
        self.timers.start("2xx", now, min(2 * self.timers.interval("2xx"), self.config.t2))
        return self._resend_last(None, now)

    def _pass_ack_to_tu(self, ack: Request, _now: float) -> list[Event]:
        self.ack_received = True
        self.timers.stop("2xx")
        return [RequestReceived(ack, None)]

    def _report_missing_ack(self, _message: None, _now: float) -> list[Event]:
        return [] if self.ack_received else [AckNotReceived(self)]

    def _enter_completed(self, now: float) -> None:
        self.timers.stop_all()
        if not self.peer.reliable:
            self.timers.start("G", now, self.config.t1)
        self.timers.start("H", now, self.config.timeout)

    def _enter_confirmed(self, now: float) -> None:
        self.timers.stop_all()
        self.timers.start("I", now, 0.0 if self.peer.reliable else self.config.t4)

    def _enter_accepted(self, now: float) -> None:
        self.timers.stop_all()
        self.timers.start("L", now, self.config.timeout)
        self.timers.start("2xx", now, self.config.t1)


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2, Figure 8."""

    INITIAL = TRYING
    TRANSITIONS: ClassVar[Table] = {
        # (state,     event):             (next state, action)
        (TRYING, "TU 1xx"): (PROCEEDING, "send_response"),  # Trying absorbs retransmissions
        (TRYING, "TU 200-699"): (COMPLETED, "send_response"),
        (PROCEEDING, "request"): (PROCEEDING, "resend_last"),
        (PROCEEDING, "TU 1xx"): (PROCEEDING, "send_response"),
        (PROCEEDING, "TU 200-699"): (COMPLETED, "send_response"),
        (PROCEEDING, "transport error"): (TERMINATED, "report_transport_failure"),
        (COMPLETED, "request"): (COMPLETED, "resend_last"),  # further TU finals are discarded
        (COMPLETED, "transport error"): (TERMINATED, "report_transport_failure"),
        (COMPLETED, "timer J"): (TERMINATED, None),
    }
    ON_ENTER: ClassVar[dict[TransactionState, str]] = {
        COMPLETED: "enter_completed",  # Timer J: 64*T1 UDP, 0 reliable
    }

    def _classify(self, status: int) -> str:
        return "TU 1xx" if status < 200 else "TU 200-699"

    def _enter_completed(self, now: float) -> None:
        self.timers.start("J", now, 0.0 if self.peer.reliable else self.config.timeout)


# -- requests the transaction layer builds -------------------------------------------------


def make_cancel(invite: Request, reason: str | None = None) -> Request:
    """CANCEL per §9.1: same Request-URI, Call-ID, To, From and CSeq number as the INVITE,
    a single Via equal to its top Via (same branch), its Route header fields; `reason` is
    a Reason header value (RFC 3326) telling the callee why."""
    headers = Headers()
    headers.add("Via", str(invite.top_via))
    headers.add("Max-Forwards", "70")
    _copy_fields(invite.headers, headers, ("Route", "From", "To", "Call-ID"))
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    if reason:
        headers.add("Reason", reason)
    return Request("CANCEL", invite.uri.copy(), headers)


def make_ack_for_non2xx(invite: Request, response: Response) -> Request:
    """ACK for a 300-699 per §17.1.1.3: part of the INVITE transaction (same branch), To from
    the response (its tag), everything else from the INVITE."""
    headers = Headers()
    headers.add("Via", str(invite.top_via))
    headers.add("Max-Forwards", "70")
    _copy_fields(invite.headers, headers, ("Route", "From"))
    _copy_fields(response.headers, headers, ("To",))
    _copy_fields(invite.headers, headers, ("Call-ID",))
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return Request("ACK", invite.uri.copy(), headers)


def _copy_fields(source: Headers, target: Headers, names: Iterable[str]) -> None:
    for name in names:
        for item in source.fields_named(name):
            target.append_field(item)  # byte-exact: tags and all


# -- matching helpers ----------------------------------------------------------------------


def _server_key(request: Request, method: str | None = None) -> TransactionKey:
    via = request.top_via
    assert via is not None
    key_method = method or ("INVITE" if request.method == "ACK" else request.method)
    return TransactionKey(via.branch or "", key_method, via.sent_by)


def _same_via(a: Via | None, b: Via | None) -> bool:
    if a is None or b is None:
        return False
    return a.transport == b.transport and a.sent_by == b.sent_by and a.params == b.params


def _rfc2543_matches(txn: ServerTransaction, request: Request, *, as_method: str | None = None) -> bool:
    """§17.2.3 for peers without a magic-cookie branch: Request-URI, To tag, From tag,
    Call-ID, CSeq and top Via of the request that created the transaction. An ACK matches
    an INVITE on the CSeq number, and its To tag is the one of the response we sent.
    `as_method` pretends the request has another method (§9.2: finding what a CANCEL cancels)."""
    original = txn.request
    method = as_method or request.method
    if request.call_id != original.call_id or request.cseq.seq != original.cseq.seq:
        return False
    if not request.uri == original.uri or request.from_.tag != original.from_.tag:
        return False
    if not _same_via(request.top_via, original.top_via):
        return False
    if method == "ACK":
        return original.method == "INVITE" and request.to.tag == txn.to_tag
    return method == original.method and request.to.tag == original.to.tag


AckKey = tuple[str, str | None, str | None, int]


def _ack_key(call_id: str, from_tag: str | None, to_tag: str | None, seq: int) -> AckKey:
    """How an ACK for a 2xx (new branch, §13.2.2.4) finds its INVITE server transaction."""
    return (call_id, from_tag, to_tag, seq)


# -- the layer -----------------------------------------------------------------------------


class TransactionLayer:
    """All transactions of one UA: matches what arrives, creates server transactions, keeps
    one timer queue. Drive every transaction through the layer (not directly), so that its
    tables and timer queue stay right."""

    def __init__(self, config: TimerConfig | None = None) -> None:
        self.config = config or TimerConfig()
        self._clients: dict[TransactionKey, ClientTransaction] = {}
        # The same, by where their requests went: an ICMP error names a peer, and after an
        # overload thousands arrive (one per 2xx retransmitted to a caller that gave up),
        # so failing that peer's transactions must not scan every transaction (§17.1.4).
        self._clients_at: dict[Peer, dict[ClientTransaction, None]] = {}
        self._servers: dict[TransactionKey, ServerTransaction] = {}
        self._rfc2543_servers: list[ServerTransaction] = []  # matched by the §17.2.3 fallback
        self._accepted: dict[AckKey, InviteServerTransaction] = {}  # ACK for 2xx -> INVITE
        self._ongoing: dict[tuple[str, str, int, str], ServerTransaction] = {}  # §8.2.2.2 merges
        self._cancel_requested: set[InviteClientTransaction] = set()
        self._queued_cancels: dict[InviteClientTransaction, Request] = {}  # §9.1: wait for a 1xx
        self._heap: list[tuple[float, int, Transaction]] = []
        self._armed: dict[Transaction, float] = {}
        self._sequence = itertools.count()

    @property
    def transactions(self) -> list[Transaction]:
        """Every live transaction."""
        return [*self._clients.values(), *self._servers.values(), *self._rfc2543_servers]

    # -- client side ------------------------------------------------------------------------
    def send_request(self, request: Request, peer: Peer, now: float) -> tuple[ClientTransaction, list[Event]]:
        """Start a client transaction. The request carries its top Via with a fresh branch."""
        if request.method == "ACK":
            raise ValueError("an ACK has no client transaction: send it as it is (§17.1.1.3, §13.2.2.4)")
        via = request.top_via
        if via is None or not via.is_rfc3261:
            raise ValueError(f"the top Via needs a branch starting with {MAGIC_COOKIE}")
        if request.method == "INVITE":
            txn: ClientTransaction = InviteClientTransaction(request, peer, self.config)
        else:
            txn = NonInviteClientTransaction(request, peer, self.config)
        if txn.key in self._clients:
            raise ValueError(f"branch {txn.key.branch} already in use for {txn.key.method}")
        self._add_client(txn)
        return txn, self._settle(txn, txn.start(now))

    def _add_client(self, txn: ClientTransaction) -> None:
        self._clients[txn.key] = txn
        self._clients_at.setdefault(txn.peer, {})[txn] = None

    def cancel(self, invite_transaction: InviteClientTransaction, now: float, reason: str | None = None) -> list[Event]:
        """CANCEL a pending INVITE (§9.1): sent once a provisional has arrived, queued until
        then; dropped if a final response comes first. Asking twice does nothing more.
        `reason`: a Reason header value for the CANCEL (RFC 3326)."""
        txn = invite_transaction
        if txn.state not in (CALLING, PROCEEDING) or txn in self._cancel_requested:
            return []
        self._cancel_requested.add(txn)
        cancel = make_cancel(txn.request, reason)
        if txn.state is PROCEEDING:
            return self._send_cancel(txn, cancel, now)
        self._queued_cancels[txn] = cancel
        return []

    def _send_cancel(self, invite: InviteClientTransaction, cancel: Request, now: float) -> list[Event]:
        cancel_txn = NonInviteClientTransaction(cancel, invite.peer, self.config)
        self._add_client(cancel_txn)
        events = self._settle(cancel_txn, cancel_txn.start(now))
        invite.cancel_sent(now)
        self._settle(invite, [])
        return events

    def transport_error(self, peer: Peer, now: float) -> list[Event]:
        """The transport cannot reach `peer`: fail at once every client transaction whose
        request is outstanding there (§8.1.3.1, §17.1.4) - no waiting for Timer B/F."""
        events: list[Event] = []
        for txn in list(self._clients_at.get(peer, ())):
            if txn.state in (CALLING, TRYING, PROCEEDING):
                events += self._settle(txn, txn.transport_error(now))
        return events

    # -- server side ------------------------------------------------------------------------
    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> list[Event]:
        """Send the TU's response through its server transaction."""
        events = transaction.respond(response, now)
        if isinstance(transaction, InviteServerTransaction) and transaction.state is ACCEPTED and response.is_success:
            request = transaction.request
            key = _ack_key(request.call_id, request.from_.tag, response.to.tag, request.cseq.seq)
            self._accepted[key] = transaction
        return self._settle(transaction, events)

    # -- what arrives --------------------------------------------------------------------------
    def receive(self, message: Message, peer: Peer, now: float) -> list[Event]:
        """A parsed message from the transport, from `peer`."""
        if isinstance(message, Response):
            return self._receive_response(message, now)
        assert isinstance(message, Request)
        return self._receive_request(message, peer, now)

    def _receive_response(self, response: Response, now: float) -> list[Event]:
        via = response.top_via
        txn = self._clients.get(TransactionKey(via.branch or "", response.cseq.method)) if via else None
        if txn is None:
            return [ResponseReceived(response, None)]  # e.g. a 2xx after Timer M: the TU re-ACKs
        events = self._settle(txn, txn.receive(response, now))
        if isinstance(txn, InviteClientTransaction) and txn in self._queued_cancels:
            if txn.state is PROCEEDING:  # §9.1: the first provisional releases the CANCEL
                events += self._send_cancel(txn, self._queued_cancels.pop(txn), now)
            elif txn.state is not CALLING:  # a final came first: nothing left to cancel
                del self._queued_cancels[txn]
        return events

    def _receive_request(self, request: Request, peer: Peer, now: float) -> list[Event]:
        txn = self._match_server(request)
        if txn is not None:
            return self._settle(txn, txn.receive(request, now))
        if request.method == "ACK":
            return self._receive_ack_for_2xx(request, now)
        if request.method == "CANCEL":
            return self._receive_cancel(request, peer, now)
        merge_key = self._merge_key(request)
        if merge_key is not None and merge_key in self._ongoing:
            # §8.2.2.2: same From tag, Call-ID and CSeq as an ongoing transaction, another
            # branch: the request reached us twice (a fork looped back). Answer 482 in a
            # transaction of its own, so its retransmissions get the 482 again.
            merged = self._new_server(request, peer, now)
            return self._settle(merged, merged.respond(make_response(request, 482, to_tag=new_tag()), now))
        txn = self._new_server(request, peer, now)
        if merge_key is not None:
            self._ongoing[merge_key] = txn
        return self._settle(txn, [RequestReceived(request, txn)])

    def _receive_ack_for_2xx(self, ack: Request, now: float) -> list[Event]:
        key = _ack_key(ack.call_id, ack.from_.tag, ack.to.tag, ack.cseq.seq)
        txn = self._accepted.get(key)
        if txn is not None and txn.state is ACCEPTED:
            return self._settle(txn, txn.receive(ack, now))  # stops the 2xx retransmission
        return [RequestReceived(ack, None)]

    def _receive_cancel(self, cancel: Request, peer: Peer, now: float) -> list[Event]:
        cancel_txn = self._new_server(cancel, peer, now)
        target = self._find_cancelled(cancel)
        if target is None:  # §9.2: nothing to cancel
            return self._settle(cancel_txn, cancel_txn.respond(make_response(cancel, 481, to_tag=new_tag()), now))
        # §9.2: the UAS answers the CANCEL itself, with the To tag of its INVITE responses.
        ok = make_response(cancel, 200, to_tag=target.to_tag or new_tag())
        events = self._settle(cancel_txn, cancel_txn.respond(ok, now))
        if isinstance(target, InviteServerTransaction) and target.state is PROCEEDING:
            events.append(CancelReceived(cancel, target))  # the TU answers the INVITE 487
        return events  # a final was already sent: the CANCEL has no effect

    def _find_cancelled(self, cancel: Request) -> ServerTransaction | None:
        """§9.2: match the CANCEL as if it had the method of the request it cancels."""
        via = cancel.top_via
        if via is not None and via.is_rfc3261:
            invite = self._servers.get(_server_key(cancel, "INVITE"))
            if invite is not None:
                return invite
            for key, txn in self._servers.items():
                if key.branch == via.branch and key.sent_by == via.sent_by and key.method != "CANCEL":
                    return txn
            return None
        for txn in self._rfc2543_servers:
            if txn.method not in ("CANCEL", "ACK") and _rfc2543_matches(txn, cancel, as_method=txn.method):
                return txn
        return None

    def _match_server(self, request: Request) -> ServerTransaction | None:
        via = request.top_via
        if via is not None and via.is_rfc3261:
            return self._servers.get(_server_key(request))
        for txn in self._rfc2543_servers:
            if _rfc2543_matches(txn, request):
                return txn
        return None

    @staticmethod
    def _merge_key(request: Request) -> tuple[str, str, int, str] | None:
        from_tag = request.from_.tag
        if request.to.tag is not None or from_tag is None:
            return None
        return (from_tag, request.call_id, request.cseq.seq, request.cseq.method)

    def _new_server(self, request: Request, peer: Peer, now: float) -> ServerTransaction:
        if request.method == "INVITE":
            txn: ServerTransaction = InviteServerTransaction(request, peer, now, self.config)
        else:
            txn = NonInviteServerTransaction(request, peer, now, self.config)
        if txn.rfc2543:
            self._rfc2543_servers.append(txn)
        else:
            self._servers[txn.key] = txn
        return txn

    # -- timers -------------------------------------------------------------------------------
    def next_timer(self) -> float | None:
        """When `handle_timer` must next be called, or None."""
        heap = self._heap
        while heap and self._armed.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale entry: re-armed or gone
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        while (deadline := self.next_timer()) is not None and deadline <= now:
            _, _, txn = heapq.heappop(self._heap)
            del self._armed[txn]
            events += self._settle(txn, txn.handle_timer(now))  # Timer B drops a queued CANCEL
        return events

    # -- book-keeping -------------------------------------------------------------------------
    def _settle(self, txn: Transaction, events: list[Event]) -> list[Event]:
        """After a transaction acted: forget it once terminated, else re-arm its timer."""
        if txn.state is TERMINATED:
            self._forget(txn)
            return events
        deadline = txn.next_timer()
        if deadline is None:
            self._armed.pop(txn, None)
        elif self._armed.get(txn) != deadline:
            self._armed[txn] = deadline
            heapq.heappush(self._heap, (deadline, next(self._sequence), txn))
        return events

    def _forget(self, txn: Transaction) -> None:
        self._armed.pop(txn, None)
        if isinstance(txn, ClientTransaction):
            if self._clients.get(txn.key) is txn:
                del self._clients[txn.key]
            at_peer = self._clients_at.get(txn.peer)
            if at_peer is not None:
                at_peer.pop(txn, None)
                if not at_peer:
                    del self._clients_at[txn.peer]
            if isinstance(txn, InviteClientTransaction):
                self._queued_cancels.pop(txn, None)
                self._cancel_requested.discard(txn)
            return
        assert isinstance(txn, ServerTransaction)
        if self._servers.get(txn.key) is txn:
            del self._servers[txn.key]
        if txn in self._rfc2543_servers:
            self._rfc2543_servers.remove(txn)
        request = txn.request
        ack_key = _ack_key(request.call_id, request.from_.tag, txn.to_tag, request.cseq.seq)
        if self._accepted.get(ack_key) is txn:
            del self._accepted[ack_key]
        merge_key = self._merge_key(request)
        if merge_key is not None and self._ongoing.get(merge_key) is txn:
            del self._ongoing[merge_key]
