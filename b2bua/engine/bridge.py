"""The B2BUA: two dialogs per call, bridged (the Mediation Server / SBC role).

Leg A is a UAS dialog toward the caller, leg B a UAC dialog toward the trunk. They share
nothing on the wire: leg B has its own Call-ID, tags, CSeq space, Via and Contact, and no
Via, Record-Route or Contact of leg A crosses over (topology hiding). A correlation id
ties both legs in the logs and the CDR.

Routing is decided by `routing.plan_route` (pure); the body by `location.apply_location_policy`
(pure). This module does the call control around them:
- hunting: trunks are tried in the plan's order; the next one is tried on no 18x or final
  response within the trunk's fast-failover time (a 100 is hop by hop and does not count),
  on a configured failure code (408/5xx), on Timer B, or at once on a transport error.
  The last trunk is not given up on at its fast-failover time (there is nowhere else to
  go): Timer B, its own answer or the caller's CANCEL end the wait. Never after the
  caller's CANCEL; never on other 4xx or 6xx, which are relayed. The caller keeps its 100
  (and any 180) while we hunt.
- relaying 18x, the final response (a trunk's 503 never reaches the caller), ACK per leg
  (leg B's ACK waits for the caller's only on a late offer: INVITE without SDP, the answer
  rides the caller's ACK),
  BYE both ways, CANCEL (queued by the transaction layer until a provisional, §9.1), the
  200-crossing-CANCEL race (ACK then BYE that leg), re-INVITE / UPDATE (offerless re-INVITE
  included: the answer rides the ACK), INFO, MESSAGE and other in-dialog requests, 491 on
  glare, Reason headers (RFC 3326).
- 100rel is not used on either leg: `100rel` is never offered on leg B nor used on leg A,
  so no reliable provisional needs relaying (a caller that *requires* it gets 420).
- Session timers (RFC 4028): leg A honours a caller's Session-Expires (refresher=uac, the
  caller refreshes; 422 below Min-SE 90); leg B does not ask for them (a trunk may still
  refresh as refresher=uas, and those refreshes are relayed). The B2BUA itself never ends
  a call for a missing refresh: a live emergency call is never killed by a timer.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

import structlog

from ..config import B2buaConfig, Profile, Trunk
from ..sip import Headers, NameAddr, Request, Response, SipUri, TelUri, make_response, new_call_id, new_tag, parse_uri
from ..sip.dialog import Dialog
from ..sip.grammar import quote
from ..sip.transaction import (
    Event,
    InviteClientTransaction,
    Peer,
    ResponseReceived,
    ServerTransaction,
    TransactionTimeout,
    TransportFailure,
)
from ..stack import SipStack
from ..transport import select_transport
from .cdr import CdrWriter
from .health import TrunkHealth
from .location import LocationOutcome, apply_location_policy
from .cac import CacLedger, LinkLimits, sdp_bandwidth_kbps
from .routing import RoutePlan, SiteContext, Target, plan_route
from .sites import SiteMap

log = structlog.get_logger("b2bua.call")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, MESSAGE, PRACK, REFER, NOTIFY, SUBSCRIBE"
ACCEPT = "application/sdp, application/pidf+xml, multipart/mixed"
SUPPORTED = ("timer", "geolocation-sip", "geolocation-http")
RELAYED_IN_DIALOG = ("UPDATE", "INFO", "MESSAGE", "NOTIFY", "REFER", "SUBSCRIBE", "OPTIONS", "PRACK")
MIN_SE = 90  # RFC 4028 §5: Min-SE is never below 90 seconds
TIMER_C_S = 180.0  # RFC 3261 §16.6 step 11: Timer C, greater than 3 minutes

# Headers carried from leg A's INVITE to leg B as they were written (raw bytes kept).
# The location policy is the only thing allowed to remove Geolocation* and change the body.
CARRIED = (
    "Priority", "Geolocation", "Geolocation-Routing", "Call-Info", "P-Asserted-Identity",
    "P-Preferred-Identity", "Privacy", "Subject", "Reason", "Resource-Priority", "Accept",
    "Accept-Language", "Alert-Info", "Organization", "User-to-User", "Content-Disposition",
    "Content-ID", "Content-Language", "MIME-Version",
)
CARRIED_KEYS = frozenset(name.lower() for name in CARRIED)
CARRIED_IN_DIALOG = frozenset(
    name.lower() for name in ("Reason", "Content-Disposition", "Event", "Subscription-State", "Info-Package",
                              "Refer-To", "Referred-By", "Priority", "Subject", "Geolocation", "Geolocation-Routing")
)
LOCATION_TAGS = ("geolocation", "geolocation-sip", "geolocation-http")
CALLBACK_PREFIX = "cb-"  # user part of an emergency call's leg-B Contact: a PSAP callback comes back to it
# Leg-B header telling a test bench how the call was routed (off unless node.route_annotation).
ROUTE_INFO_HEADER = "E911-Route-Info"


@dataclass(frozen=True)
class Callback:
    """Where a PSAP callback to an emergency call goes: the caller's Contact, reached the
    way its INVITE came (its source address and transport), until `expires`."""

    correlation_id: str
    target: str  # the caller's Contact URI
    peer: Peer
    expires: float


@dataclass
class NodeState:
    """What the profiles of one process share: trunk health, round-robin turns, the CDR file."""

    config: B2buaConfig
    cdr: CdrWriter
    health: dict[str, TrunkHealth] = field(default_factory=dict)
    turns: dict[str, int] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)  # correlation id -> live call
    callbacks: dict[str, Callback] = field(default_factory=dict)  # callback token -> the caller to ring
    sites: SiteMap | None = None  # sites and WAN link state (made from the config when None)
    cac: CacLedger | None = None  # call admission control usage of the links

    def __post_init__(self) -> None:
        if self.sites is None:
            self.sites = SiteMap.of(self.config)
        if self.cac is None:
            self.cac = CacLedger({link.name: LinkLimits(link.max_calls, link.max_bandwidth_kbps)
                                  for link in self.config.link})

    def healthy(self) -> dict[str, bool]:
        return {name: state.up for name, state in self.health.items()}

    def next_turn(self, group: str) -> int:
        turn = self.turns.get(group, 0)
        self.turns[group] = turn + 1
        return turn


@dataclass
class Attempt:
    trunk: Trunk
    peer: Peer
    request: Request
    started: float
    transport_reason: str | None = None
    transaction: InviteClientTransaction | None = None
    first_response: int | None = None
    first_response_after: float | None = None
    progressed: bool = False  # a response other than 100 came: the fast-failover timer is off
    final: int | None = None
    failover_reason: str | None = None
    abandoned: bool = False
    timer: asyncio.TimerHandle | None = None
    timer_c: asyncio.TimerHandle | None = None
    location: LocationOutcome | None = None
    started_wall: float = field(default_factory=time.time)
    target: Target | None = None

    def record(self) -> dict:
        target = self.target
        return {
            "trunk": self.trunk.name, "address": self.trunk.address, "transport": self.peer.transport,
            "group": target.group if target else None, "site": target.site if target else None,
            "links": list(target.links) if target else [], "cac": target.cac if target else "none",
            "pstn_reason": target.pstn_reason if target else None,
            "transport_reason": self.transport_reason, "started_at": _iso(self.started_wall),
            "first_response": self.first_response,
            "first_response_ms": None if self.first_response_after is None else round(self.first_response_after * 1000, 1),
            "final": self.final, "failover_reason": self.failover_reason,
        }


@dataclass
class Leg:
    name: str  # "A" (toward the caller) or "B" (toward the trunk)
    peer: Peer
    dialog: Dialog | None = None
    transport: str = "udp"
    pending_ack_body: tuple[bytes, str | None] | None = None  # offerless re-INVITE waiting for its ACK
    pending_ack_target: tuple[Request, Response] | None = None
    last_ack: Request | None = None


@dataclass
class Call:
    id: str
    a_request: Request
    a_transaction: ServerTransaction
    a_tag: str
    plan: RoutePlan
    started: float
    wall_started: float
    a: Leg
    b: Leg | None = None
    attempts: list[Attempt] = field(default_factory=list)
    state: str = "hunting"  # hunting | early | confirmed | ended
    cancelled: bool = False
    cancel_reason: str | None = None
    answered_at: float | None = None
    final_to_caller: int | None = None
    disconnect_side: str | None = None
    disconnect_reason: str | None = None
    reinvite_pending: bool = False
    b_call_id: str = ""
    b_from_tag: str = ""
    session_expires: int | None = None

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None


class Bridge:
    """The transaction user of one SBC profile (its own listeners and location policy)."""

    def __init__(self, node: NodeState, profile: Profile, stack_factory: Callable[[Bridge], SipStack]) -> None:
        self.node = node
        self.config = node.config
        self.profile = profile
        self.stack = stack_factory(self)
        self._legs: dict[tuple[str, str], tuple[Call, str]] = {}  # (Call-ID, our tag) -> call, "A"/"B"
        self._by_a_transaction: dict[ServerTransaction, Call] = {}
        self._our_branches: set[str] = set()

    # -- Core callbacks ---------------------------------------------------------------------
    def on_request(self, request: Request, transaction: ServerTransaction | None, peer: Peer | None) -> None:
        if request.method == "ACK":
            self._on_ack(request)
            return
        assert transaction is not None and peer is not None
        if request.to.tag is not None:
            self._in_dialog(request, transaction)
            return
        if _unsupported := [tag for tag in request.require if tag not in SUPPORTED]:
            response = make_response(request, 420, to_tag=new_tag())
            response.headers.add("Unsupported", ", ".join(_unsupported))
            self.stack.respond(transaction, response)
            return
        if request.method == "INVITE":
            self._new_call(request, transaction, peer)
        elif request.method == "OPTIONS":
            self.stack.respond(transaction, self._options_answer(request, peer))
        elif request.method in ("BYE", "UPDATE", "INFO", "PRACK", "NOTIFY"):
            self.stack.respond(transaction, make_response(request, 481, to_tag=new_tag()))
        else:
            response = make_response(request, 405, to_tag=new_tag())
            response.headers.add("Allow", ALLOW)
            self.stack.respond(transaction, response)

    def on_cancel(self, cancel: Request, invite: ServerTransaction) -> None:
        call = self._by_a_transaction.get(invite)
        if call is None or call.state in ("confirmed", "ended"):
            return
        call.cancelled = True
        call.cancel_reason = cancel.headers.get("Reason")
        attempt = call.current
        if attempt is not None and attempt.transaction is not None and attempt.final is None:
            self._cancel_attempt(attempt, call.cancel_reason)
        self._event(call, "call.cancelled", reason=call.cancel_reason)
        call.disconnect_side, call.disconnect_reason = "caller", "CANCEL"
        self._reject(call, 487)

    def on_ack_timeout(self, invite: ServerTransaction) -> None:
        call = self._by_a_transaction.get(invite)
        if call is not None and call.state == "confirmed":
            self._event(call, "call.ack_timeout")
            self._hang_up(call, "B2BUA", "no ACK from the caller", bye_a=True, bye_b=True)

    def on_stray_response(self, response: Response, peer: Peer | None) -> None:
        # A 2xx retransmitted after its transaction ended: our ACK was lost, send it again.
        if not response.is_success or response.cseq.method != "INVITE":
            return
        found = self._legs.get((response.call_id, response.from_.tag or ""))
        if found is not None:
            call, leg_name = found
            leg = call.a if leg_name == "A" else call.b
            if leg is not None and leg.last_ack is not None:
                self.stack.send_stateless(leg.last_ack, leg.peer)

    # -- out-of-dialog requests ---------------------------------------------------------------
    def _options_answer(self, request: Request, peer: Peer) -> Response:
        response = make_response(request, 200, to_tag=new_tag())
        response.headers.add("Allow", ALLOW)
        response.headers.add("Accept", ACCEPT)
        response.headers.add("Supported", ", ".join(SUPPORTED))
        response.headers.add("Contact", f"<{self.stack.contact_uri(peer.transport)}>")
        return response

    def _new_call(self, request: Request, transaction: ServerTransaction, peer: Peer) -> None:
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            self.stack.respond(transaction, make_response(request, 483, to_tag=new_tag()))
            return
        if any(via.branch in self._our_branches for via in request.via):
            # The INVITE we sent came back to us (§8.2.2.2 / §16.3 loop).
            self.stack.respond(transaction, make_response(request, 482, to_tag=new_tag()))
            return
        session_expires = _session_expires(request)
        if session_expires is not None and session_expires < MIN_SE:
            response = make_response(request, 422, to_tag=new_tag())
            response.headers.add("Min-SE", str(MIN_SE))
            self.stack.respond(transaction, response)
            return
        if _callback_token(request) is not None:
            self._callback(request, transaction, peer, session_expires)
            return
        health = self.node.healthy()
        context = None
        if self.node.sites.enabled:
            context = SiteContext(self.node.sites, self.node.cac, peer.host, sdp_bandwidth_kbps(request.sdp))
        plan = plan_route(request, self.config, health, 0, context)
        if plan.group is not None and plan.group.strategy == "round_robin":
            plan = plan_route(request, self.config, health, self.node.next_turn(plan.group.name), context)
        self._start_call(request, transaction, peer, plan, session_expires)

    def _start_call(self, request: Request, transaction: ServerTransaction, peer: Peer, plan: RoutePlan,
                    session_expires: int | None) -> None:
        call = Call(
            id=secrets.token_hex(8), a_request=request, a_transaction=transaction, a_tag=new_tag(),
            plan=plan, started=self.stack.now(), wall_started=time.time(), a=Leg("A", peer, transport=peer.transport),
            session_expires=session_expires,
        )
        self._by_a_transaction[transaction] = call
        if plan.emergency is not None:
            self._remember_caller(call)
        self._event(
            call, "call.new", caller=str(request.from_.uri), dialled=str(request.uri), a_call_id=request.call_id,
            emergency=plan.emergency is not None, why=plan.emergency.reason if plan.emergency else None,
            route=plan.reason, trunks=[trunk.name for trunk in plan.trunks], skipped=plan.skipped,
            site=plan.site, passed_over=plan.passed_over or None,
        )
        if plan.reject is not None:
            # CAC full under policy `block` (Lync without the extra PSTN usage), or an
            # ordinary call whose WAN path is down or full.
            status, why = plan.reject
            self._reject(call, status, why)
            return
        if not plan.routable:
            self._reject(call, 404 if plan.group is None else 503, "no route" if plan.group is None else "no trunk up")
            return
        self.node.calls[call.id] = call
        self.stack.respond(transaction, make_response(request, 100))
        self._next_attempt(call)

    # -- PSAP callbacks (RFC 6881 ED-63..69) ------------------------------------------------
    def _remember_caller(self, call: Call) -> None:
        """Note where a callback to this emergency call must go, for the callback window."""
        window = self.config.node.callback_window_s
        if window <= 0:
            return
        now = self.stack.now()
        callbacks = self.node.callbacks
        # Entries are added in expiry order (one window for all): drop expired ones from the front.
        while callbacks:
            token, entry = next(iter(callbacks.items()))
            if entry.expires > now:
                break
            del callbacks[token]
        contacts = call.a_request.contact
        target = str(contacts[0].uri) if contacts else str(call.a_request.from_.uri)
        callbacks[f"{CALLBACK_PREFIX}{call.id}"] = Callback(call.id, target, call.a.peer, now + window)

    def _callback(self, request: Request, transaction: ServerTransaction, peer: Peer,
                  session_expires: int | None) -> None:
        """An INVITE to an emergency call's callback Contact: ring the caller back, the way
        its emergency call came in. Outside the window, 404."""
        token = _callback_token(request)
        entry = self.node.callbacks.get(token or "")
        if entry is None or entry.expires <= self.stack.now():
            self.stack.respond(transaction, make_response(request, 404, "Callback Window Expired", to_tag=new_tag()))
            return
        host = f"[{entry.peer.host}]" if ":" in entry.peer.host else entry.peer.host
        trunk = Trunk(name=f"callback:{entry.correlation_id}", address=f"{host}:{entry.peer.port}",
                      transports=[entry.peer.transport], kind="sip", location_policy="pass", failover_codes=[],
                      health={"enabled": False})
        plan = RoutePlan(None, None, [trunk], f"callback to call {entry.correlation_id}", target_uri=entry.target)
        self._start_call(request, transaction, peer, plan, session_expires)

    # -- hunting -------------------------------------------------------------------------------
    def _next_attempt(self, call: Call, reason: str | None = None) -> None:
        previous = call.current
        if previous is not None and reason is not None:
            previous.failover_reason = reason
            self._event(call, "call.failover", trunk=previous.trunk.name, reason=reason)
        if call.cancelled or call.state == "ended":
            return
        index = len(call.attempts)
        if index >= len(call.plan.trunks):
            # Every trunk failed: answer 503 ourselves so an upstream Mediation Server fails
            # over too (e911-reference §1.7); no trunk's own 503 is relayed.
            last = previous.failover_reason if previous else "no trunk"
            self._reject(call, 503, f"all trunks failed (last: {last})")
            return
        trunk = call.plan.trunks[index]
        attempt = self._build_attempt(call, trunk)
        attempt.target = call.plan.target(index)
        self._admit(call, attempt.target)
        call.attempts.append(attempt)
        self._legs[(call.b_call_id, call.b_from_tag)] = (call, "B")
        self._our_branches.add(attempt.request.top_via.branch)
        self._event(call, "call.attempt", trunk=trunk.name, peer=f"{attempt.peer.transport}:{attempt.peer.host}:{attempt.peer.port}",
                    transport_reason=attempt.transport_reason, attempt=index + 1,
                    location_policy=attempt.location.policy if attempt.location else None)
        loop = asyncio.get_running_loop()
        attempt.timer = loop.call_later(trunk.fast_failover_s, self._fast_failover, call, attempt)
        # RFC 3261 §16.6 step 11 (Timer C): a trunk that sent a provisional and then nothing
        # for this long is given up on, so no call waits for ever.
        attempt.timer_c = loop.call_later(TIMER_C_S, self._timer_c, call, attempt)
        attempt.transaction = self.stack.send_request(  # type: ignore[assignment]
            attempt.request, attempt.peer, lambda event: self._on_b_event(call, attempt, event)
        )

    def _admit(self, call: Call, target: Target) -> None:
        """Count the call on the WAN links of the target being tried (and only those)."""
        cac = self.node.cac
        cac.release(call.id)
        if target.links:
            cac.hold(call.id, list(target.links), sdp_bandwidth_kbps(call.a_request.sdp),
                     over_limit=target.cac == "over-limit")

    def _build_attempt(self, call: Call, trunk: Trunk) -> Attempt:
        a_request = call.a_request
        host_port = trunk.host_port
        policy = trunk.location_policy or self.profile.location_policy
        variant = trunk.strip_variant or self.profile.strip_variant
        outcome = apply_location_policy(a_request, policy, variant)
        if not call.b_call_id:
            call.b_call_id = new_call_id()
            call.b_from_tag = new_tag()
        preferred = trunk.transports[0]
        request = self._leg_b_invite(call, trunk, host_port.host, host_port.port, preferred, outcome)
        transport, reason = select_transport(
            len(request.to_bytes()), trunk.transports, preferred, self.config.node.udp_to_tcp_threshold
        )
        if transport != preferred:
            request = self._leg_b_invite(call, trunk, host_port.host, host_port.port, transport, outcome)
        attempt = Attempt(trunk, Peer(transport, host_port.host, host_port.port), request, self.stack.now(),
                          transport_reason=reason, location=outcome)
        return attempt

    def _leg_b_invite(self, call: Call, trunk: Trunk, host: str, port: int, transport: str,
                      outcome: LocationOutcome) -> Request:
        a_request = call.a_request
        uri = _leg_b_uri(call, trunk.host_header or host, port, transport)
        headers = Headers()
        headers.add("Via", self.stack.via(transport))
        max_forwards = a_request.max_forwards
        headers.add("Max-Forwards", str(max(0, (max_forwards if max_forwards is not None else 70) - 1)))
        from_ = a_request.from_
        headers.add("From", str(NameAddr(from_.uri.copy(), from_.display, _params_without_tag(from_), True))
                    + f";tag={call.b_from_tag}")
        headers.add("To", f"<{uri}>")
        headers.add("Call-ID", call.b_call_id)
        headers.add("CSeq", "1 INVITE")
        contact_user = f"{CALLBACK_PREFIX}{call.id}" if call.plan.emergency is not None else None
        headers.add("Contact", f"<{self.stack.contact_uri(transport, contact_user)}>")
        headers.add("Allow", ALLOW)
        supported = [tag for tag in a_request.supported if tag in LOCATION_TAGS]
        removed = set(outcome.remove_headers)
        if supported and not (outcome.policy == "strip" and "Geolocation" in removed):
            headers.add("Supported", ", ".join(supported))
        for item in a_request.headers.fields:
            if item.key in CARRIED_KEYS and item.name not in removed:
                headers.append_field(item)
        if self.config.node.user_agent:
            headers.add("User-Agent", self.config.node.user_agent)
        if self.config.node.route_annotation:
            headers.add(ROUTE_INFO_HEADER, _route_info(call, trunk))
        if outcome.content_type is not None:
            headers.add("Content-Type", outcome.content_type)
        request = Request("INVITE", uri, headers, outcome.body)
        request.content_length_override = outcome.stale_content_length
        return request

    def _timer_c(self, call: Call, attempt: Attempt) -> None:
        attempt.timer_c = None
        if attempt.final is not None or call.state in ("confirmed", "ended"):
            return
        if attempt.transaction is not None:
            self.stack.cancel(attempt.transaction, 'SIP;cause=408;text="Timer C"')
        if attempt is call.current:
            attempt.abandoned = True
            self._next_attempt(call, f"no final response within {TIMER_C_S:g} s (Timer C)")

    def _fast_failover(self, call: Call, attempt: Attempt) -> None:
        attempt.timer = None
        if attempt is not call.current or attempt.progressed or attempt.final is not None:
            return
        if len(call.attempts) >= len(call.plan.trunks):
            # No trunk left to fail over to: giving up now would refuse a call that a slow
            # but working trunk is about to take. Keep waiting (Timer B, the caller's CANCEL
            # or the trunk's own final response end the wait).
            self._event(call, "call.fast_failover_last_trunk", trunk=attempt.trunk.name,
                        after_s=attempt.trunk.fast_failover_s)
            return
        attempt.abandoned = True
        # §9.1: no CANCEL before a provisional; the layer sends it if one still comes. A 2xx
        # that comes instead is ACKed and BYEd (see _on_b_success).
        if attempt.transaction is not None:
            self.stack.cancel(attempt.transaction, 'SIP;cause=408;text="fast failover"')
        self._next_attempt(call, f"no response within {attempt.trunk.fast_failover_s:g} s")

    def _on_b_event(self, call: Call, attempt: Attempt, event: Event) -> None:
        if isinstance(event, ResponseReceived):
            self._on_b_response(call, attempt, event.response)
        elif isinstance(event, TransactionTimeout):
            self._attempt_failed(call, attempt, 408, "timeout (Timer B)")
        elif isinstance(event, TransportFailure):
            self._attempt_failed(call, attempt, 503, "transport error")

    def _attempt_failed(self, call: Call, attempt: Attempt, status: int, reason: str) -> None:
        _stop_all(attempt)
        if attempt.final is None:
            attempt.final = status
        if attempt is call.current and not attempt.abandoned and call.state in ("hunting", "early"):
            self._next_attempt(call, reason)

    def _on_b_response(self, call: Call, attempt: Attempt, response: Response) -> None:
        status = response.status
        if attempt.first_response is None:
            attempt.first_response = status
            attempt.first_response_after = self.stack.now() - attempt.started
        if status > 100 and not attempt.progressed:
            # A 100 is hop by hop (the next hop got the INVITE, §16.7): only an 18x or a
            # final response shows the trunk is handling the call and stops fast failover.
            attempt.progressed = True
            _stop(attempt)
        if response.is_success:
            self._on_b_success(call, attempt, response)
            return
        if status < 200:
            if status == 100 or attempt is not call.current or attempt.abandoned or call.cancelled or call.state == "ended":
                return
            call.state = "early"
            provisional = self._a_response(call, status, response.reason, response)
            self._event(call, "call.progress", status=status, trunk=attempt.trunk.name)
            self.stack.respond(call.a_transaction, provisional)
            return
        attempt.final = status
        if attempt is not call.current or attempt.abandoned or call.cancelled or call.state == "ended":
            return
        if status in attempt.trunk.failover_codes:
            self._next_attempt(call, f"{status} {response.reason}")
            return
        # A final answer from the trunk (486, 404, 603 ...): relay it, never hunt on.
        mapped = 500 if status == 503 else status
        reason = response.headers.get("Reason")
        call.disconnect_side = call.disconnect_side or "callee"
        self._reject(call, mapped, response.reason, reason_header=reason)

    def _on_b_success(self, call: Call, attempt: Attempt, response: Response) -> None:
        if attempt.final is None:
            attempt.final = response.status
        leg = Leg("B", attempt.peer, transport=attempt.peer.transport)
        dialog = Dialog.for_uac(attempt.request, response)
        ack = dialog.create_ack(attempt.request, response, sent_by=self._sent_by(leg.transport),
                                transport=leg.transport)
        if call.b is not None and call.b.dialog is not None and call.b.dialog.remote_tag == dialog.remote_tag:
            # 2xx retransmission: re-ACK (unless that ACK still waits for the caller's answer).
            if call.b.last_ack is not None or call.a.pending_ack_target is None:
                self.stack.send_stateless(call.b.last_ack or ack, leg.peer)
            return
        late_offer = not call.a_request.body and bool(response.body)
        releasing = attempt is not call.current or attempt.abandoned or call.cancelled or call.state in ("confirmed", "ended")
        if releasing or not late_offer:
            # A 2xx is ACKed by us at once, on this leg (never waiting for leg A's ACK)...
            self.stack.send_stateless(ack, leg.peer)
            leg.last_ack = ack
        if releasing:
            # The 200-crossing-CANCEL race, or a late answer from an abandoned trunk: ACK, then BYE.
            self._event(call, "call.late_answer_released", trunk=attempt.trunk.name)
            bye = dialog.create_request("BYE", sent_by=self._sent_by(leg.transport), transport=leg.transport,
                                        headers=[("Reason", 'SIP;cause=487;text="Request Terminated"')])
            self.stack.send_request(bye, leg.peer, _ignore)
            return
        leg.dialog = dialog
        call.b = leg
        if late_offer:
            # ...except for a late offer (INVITE without SDP, RFC 3261 §13.2.1): the trunk's
            # 2xx carries the offer and the answer will come in the caller's ACK, so leg B's
            # ACK waits for it (RFC 3264 §5: an offer in a 2xx is answered in the ACK).
            call.a.pending_ack_target = (attempt.request, response)
        call.state = "confirmed"
        call.answered_at = self.stack.now()
        a_dialog = Dialog.for_uas(call.a_request, call.a_tag)
        call.a.dialog = a_dialog
        self._legs[(call.a_request.call_id, call.a_tag)] = (call, "A")
        ok = self._a_response(call, response.status, response.reason, response)
        if call.session_expires is not None:
            ok.headers.add("Session-Expires", f"{call.session_expires};refresher=uac")
            ok.headers.add("Require", "timer")
        call.final_to_caller = response.status
        self._event(call, "call.answered", trunk=attempt.trunk.name,
                    setup_ms=round((call.answered_at - call.started) * 1000, 1))
        self.stack.respond(call.a_transaction, ok)

    def _cancel_attempt(self, attempt: Attempt, reason: str | None) -> None:
        _stop_all(attempt)
        if attempt.transaction is not None:
            self.stack.cancel(attempt.transaction, reason)

    # -- responses toward the caller ----------------------------------------------------------
    def _a_response(self, call: Call, status: int, reason: str | None, source: Response | None = None) -> Response:
        response = make_response(call.a_request, status, reason, to_tag=call.a_tag)
        if status < 300:
            response.headers.add("Contact", f"<{self.stack.contact_uri(call.a.transport)}>")
            response.headers.add("Allow", ALLOW)
            response.headers.add("Supported", ", ".join(SUPPORTED))
        if source is not None:
            if source.body:
                response.headers.set("Content-Type", source.headers.get("Content-Type") or "application/sdp")
                response.body = source.body
            for name in ("Reason", "Geolocation-Error", "P-Asserted-Identity"):
                for item in source.headers.fields_named(name):
                    response.headers.append_field(item)
        return response

    def _reject(self, call: Call, status: int, reason: str | None = None, *, reason_header: str | None = None) -> None:
        if call.state in ("confirmed", "ended"):
            return
        response = make_response(call.a_request, status, reason if status != 503 else "Service Unavailable",
                                 to_tag=call.a_tag)
        if reason_header:
            response.headers.add("Reason", reason_header)
        elif status == 503 and reason:
            response.headers.add("Reason", f'SIP;cause=503;text="{reason}"')
        call.final_to_caller = status
        self._event(call, "call.rejected", status=status, reason=reason)
        self.stack.respond(call.a_transaction, response)
        self._end(call, call.disconnect_side or "B2BUA" if status != 487 else "caller", reason or str(status))

    # -- in-dialog requests ---------------------------------------------------------------------
    def _in_dialog(self, request: Request, transaction: ServerTransaction) -> None:
        found = self._legs.get((request.call_id, request.to.tag or ""))
        if found is None:
            self.stack.respond(transaction, make_response(request, 481))
            return
        call, leg_name = found
        this, other = (call.a, call.b) if leg_name == "A" else (call.b, call.a)
        if this is None or this.dialog is None or other is None or other.dialog is None or call.state == "ended":
            # An ended call keeps its keys a while (retransmissions are absorbed by the
            # transaction layer); a new request in it - a BYE crossing ours, a late
            # re-INVITE - belongs to a dialog that no longer exists (§12.2.2), and must not
            # start a second BYE toward the other side.
            self.stack.respond(transaction, make_response(request, 481))
            return
        status = this.dialog.receive_request(request)
        if status is not None:
            self.stack.respond(transaction, make_response(request, status))
            return
        if request.method == "BYE":
            self.stack.respond(transaction, make_response(request, 200))
            side = "caller" if leg_name == "A" else "callee"
            self._event(call, "call.bye", side=side, reason=request.headers.get("Reason"))
            self._hang_up(call, side, request.headers.get("Reason") or "BYE",
                          bye_a=leg_name == "B", bye_b=leg_name == "A", reason=request.headers.get("Reason"))
            return
        if request.method == "INVITE":
            if call.reinvite_pending:
                # §14.1 glare: a re-INVITE while ours is pending.
                response = make_response(request, 491)
                self.stack.respond(transaction, response)
                return
            call.reinvite_pending = True
        if request.method not in ("INVITE", *RELAYED_IN_DIALOG) and request.method not in ALLOW:
            response = make_response(request, 405)
            response.headers.add("Allow", ALLOW)
            self.stack.respond(transaction, response)
            return
        self._relay(call, this, other, request, transaction)

    def _relay(self, call: Call, this: Leg, other: Leg, request: Request, transaction: ServerTransaction) -> None:
        extra = [(item.name, item.value) for item in request.headers.fields if item.key in CARRIED_IN_DIALOG]
        contact = f"<{self.stack.contact_uri(other.transport)}>" if request.method in ("INVITE", "UPDATE") else None
        if request.method == "INVITE" and request.headers.get("Session-Expires") and other is call.a:
            extra.append(("Session-Expires", request.headers.get("Session-Expires")))
        assert other.dialog is not None
        out = other.dialog.create_request(
            request.method, contact, sent_by=self._sent_by(other.transport), transport=other.transport,
            headers=extra, body=request.body, content_type=request.headers.get("Content-Type") if request.body else None,
        )
        self._event(call, "call.relay", method=request.method, to_leg=other.name)
        self.stack.send_request(out, other.peer,
                                lambda event: self._on_relayed(call, this, other, request, transaction, out, event))

    def _on_relayed(self, call: Call, this: Leg, other: Leg, request: Request, transaction: ServerTransaction,
                    out: Request, event: Event) -> None:
        if isinstance(event, (TransactionTimeout, TransportFailure)):
            if request.method == "INVITE":
                call.reinvite_pending = False
            self.stack.respond(transaction, make_response(request, 408 if isinstance(event, TransactionTimeout) else 503))
            return
        if not isinstance(event, ResponseReceived):
            return
        response = event.response
        if response.status == 100:
            return
        assert other.dialog is not None
        other.dialog.receive_response(out, response)
        relayed = make_response(request, response.status, response.reason)
        if response.body:
            relayed.headers.add("Content-Type", response.headers.get("Content-Type") or "application/sdp")
            relayed.body = response.body
        for item in response.headers.fields:
            if item.key in ("reason", "session-expires", "require", "retry-after", "min-se", "allow", "supported"):
                relayed.headers.append_field(item)
        if request.method in ("INVITE", "UPDATE") and response.status < 300:
            relayed.headers.add("Contact", f"<{self.stack.contact_uri(this.transport)}>")
        if request.method == "INVITE" and response.status >= 200:
            call.reinvite_pending = False
            if response.is_success:
                self._ack_relayed_invite(call, this, other, request, out, response)
        self.stack.respond(transaction, relayed)

    def _ack_relayed_invite(self, call: Call, this: Leg, other: Leg, request: Request, out: Request,
                            response: Response) -> None:
        if request.body:
            # The re-INVITE carried the offer: the 2xx carries the answer; ACK the other leg now.
            self._send_ack(other, out, response)
        else:
            # Offerless re-INVITE (§14.1): the offer is in the 2xx, the answer will come in the
            # ACK of the leg that sent the re-INVITE; ACK the other leg with that body then.
            this.pending_ack_target = (out, response)

    def _send_ack(self, leg: Leg, invite: Request, response: Response, body: bytes = b"",
                  content_type: str | None = None) -> None:
        assert leg.dialog is not None
        ack = leg.dialog.create_ack(invite, response, sent_by=self._sent_by(leg.transport), transport=leg.transport,
                                    body=body, content_type=content_type)
        leg.last_ack = ack
        self.stack.send_stateless(ack, leg.peer)

    def _on_ack(self, ack: Request) -> None:
        found = self._legs.get((ack.call_id, ack.to.tag or ""))
        if found is None:
            return
        call, leg_name = found
        this, other = (call.a, call.b) if leg_name == "A" else (call.b, call.a)
        if this is None or other is None or this.pending_ack_target is None:
            return
        out, response = this.pending_ack_target
        this.pending_ack_target = None
        self._send_ack(other, out, response, ack.body, ack.headers.get("Content-Type") if ack.body else None)

    # -- ending a call -------------------------------------------------------------------------
    def _hang_up(self, call: Call, side: str, why: str, *, bye_a: bool, bye_b: bool, reason: str | None = None) -> None:
        extra = [("Reason", reason)] if reason else []
        for leg, wanted in ((call.a, bye_a), (call.b, bye_b)):
            if wanted and leg is not None and leg.dialog is not None:
                bye = leg.dialog.create_request("BYE", sent_by=self._sent_by(leg.transport), transport=leg.transport,
                                                headers=extra)
                self.stack.send_request(bye, leg.peer, _ignore)
        call.disconnect_side, call.disconnect_reason = side, why
        self._end(call, side, why)

    def hang_up_all(self, why: str = "shutdown") -> int:
        """BYE both legs of every answered call of this profile (SIGTERM)."""
        calls = [call for call in self.node.calls.values() if call.state == "confirmed" and self._owns(call)]
        for call in calls:
            self._hang_up(call, "B2BUA", why, bye_a=True, bye_b=True, reason='SIP;cause=503;text="B2BUA shutting down"')
        for call in [c for c in self.node.calls.values() if c.state in ("hunting", "early") and self._owns(c)]:
            if call.current is not None and call.current.transaction is not None:
                self._cancel_attempt(call.current, None)
            self._reject(call, 503, why)
        return len(calls)

    def _owns(self, call: Call) -> bool:
        return call.a_transaction in self._by_a_transaction

    def _end(self, call: Call, side: str, why: str) -> None:
        if call.state == "ended":
            return
        call.state = "ended"
        call.disconnect_side = call.disconnect_side or side
        call.disconnect_reason = call.disconnect_reason or why
        for attempt in call.attempts:
            _stop_all(attempt)
        self.node.calls.pop(call.id, None)
        self.node.cac.release(call.id)  # every end of a call gives its CAC slots back
        self._by_a_transaction.pop(call.a_transaction, None)
        # Keep the dialog keys for a little while so retransmitted BYEs/2xx find the call.
        keys = [key for key in ((call.a_request.call_id, call.a_tag), (call.b_call_id, call.b_from_tag))
                if self._legs.get(key, (None,))[0] is call]
        asyncio.get_running_loop().call_later(32.0, self._forget_keys, keys)
        for attempt in call.attempts:
            self._our_branches.discard(attempt.request.top_via.branch)
        now = self.stack.now()
        record = self._cdr(call, now)
        self.node.cdr.write(record)
        self._event(call, "call.ended", side=call.disconnect_side, why=call.disconnect_reason,
                    final=call.final_to_caller, duration_s=record["duration_s"])

    def _forget_keys(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            self._legs.pop(key, None)

    def _cdr(self, call: Call, now: float) -> dict:
        plan = call.plan
        answered = call.answered_at
        taken = call.current
        answered_attempt = next((a for a in call.attempts if a.final is not None and 200 <= a.final < 300
                                 and not a.abandoned and a is call.current and call.b is not None), None)
        location = call.current.location.record if call.current and call.current.location else None
        a_request = call.a_request
        return {
            "correlation_id": call.id,
            "node": self.config.node.name,
            "profile": self.profile.name,
            "a_call_id": a_request.call_id,
            "b_call_id": call.b_call_id or None,
            "caller": str(a_request.from_.uri),
            "pai": a_request.headers.get("P-Asserted-Identity"),
            "dialled": str(a_request.uri),
            "number": plan.dialled,
            "emergency": plan.emergency is not None,
            "emergency_reason": plan.emergency.reason if plan.emergency else None,
            "is_test": bool(plan.emergency and plan.emergency.is_test),
            "route": plan.reason,
            "trunk_group": plan.group.name if plan.group else None,
            "skipped_trunks": plan.skipped,
            "attempts": [attempt.record() for attempt in call.attempts],
            "route_taken": answered_attempt.trunk.name if answered_attempt else None,
            "site": plan.site,
            "links": list(taken.target.links) if taken and taken.target else [],
            "cac": taken.target.cac if taken and taken.target else "none",
            "pstn_reason": taken.target.pstn_reason if taken and taken.target else None,
            "routes_passed_over": plan.passed_over,
            "final_status": call.final_to_caller,
            "started_at": _iso(call.wall_started),
            "answered_at": _iso(call.wall_started + (answered - call.started)) if answered else None,
            "ended_at": _iso(call.wall_started + (now - call.started)),
            "setup_ms": round((answered - call.started) * 1000, 1) if answered else None,
            "duration_s": round(now - answered, 3) if answered else 0.0,
            "disconnect_side": call.disconnect_side,
            "disconnect_reason": call.disconnect_reason,
            "location": location,
            "callback_of": call.plan.reason.removeprefix("callback to call ") if call.plan.target_uri else None,
        }

    # -- small things --------------------------------------------------------------------------
    def _sent_by(self, transport: str) -> str:
        host, port = self.stack.local_address(transport)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _event(self, call: Call, event: str, **fields: object) -> None:
        log.info(event, correlation_id=call.id, profile=self.profile.name, **fields)


def _leg_b_uri(call: Call, host: str, port: int, transport: str) -> object:
    """The leg-B Request-URI: what the caller dialled (after masks) at the trunk.

    A service URN stays a URN (RFC 6881: the Request-URI of an emergency call is the
    service URN); a number becomes `sip:<number>@trunk;user=phone`.
    """
    plan = call.plan
    original = call.a_request.uri
    if plan.target_uri is not None:  # a callback: the caller's own Contact
        return parse_uri(plan.target_uri)
    if plan.emergency is not None and plan.emergency.number.startswith("urn:"):
        return parse_uri(plan.emergency.number)
    if plan.emergency is not None and plan.emergency.reason == "dial-mask":
        number = plan.emergency.number
    else:
        number = plan.number_out or plan.dialled  # number_out: the route's rewrite (strip_plus)
    if number is None:
        user = original.user if isinstance(original, SipUri) else (original.number if isinstance(original, TelUri) else None)
        number = user or "unknown"
    host_text = f"[{host}]" if ":" in host else host
    suffix = ";transport=tcp" if transport == "tcp" else ""
    scheme = "sips" if transport == "tls" else "sip"
    phone = ";user=phone" if number.lstrip("+").isdigit() else ""
    return parse_uri(f"{scheme}:{number}@{host_text}:{port}{phone}{suffix}")


def _callback_token(request: Request) -> str | None:
    uri = request.uri
    if isinstance(uri, SipUri) and uri.user and uri.user.startswith(CALLBACK_PREFIX):
        return uri.user
    return None


def _route_info(call: Call, trunk: Trunk) -> str:
    """`site=b1;links=b1-hq;cac=counted;pstn-reason="wan down: b1-hq"` for the bench's records."""
    index = len(call.attempts)
    target = call.plan.target(index) if index < len(call.plan.trunks) else None
    items = [f"correlation-id={call.id}", f"trunk={trunk.name}"]
    if call.plan.site:
        items.append(f"site={call.plan.site}")
    if target is not None:
        if target.links:
            items.append(f"links={','.join(target.links)}")
        items.append(f"cac={target.cac}")
        if target.pstn_reason:
            items.append(f"pstn-reason={quote(target.pstn_reason)}")
    return ";".join(items)


def _params_without_tag(name_addr: NameAddr):  # noqa: ANN202
    params = name_addr.params.copy()
    params.remove("tag")
    return params


def _session_expires(request: Request) -> int | None:
    value = request.headers.get("Session-Expires")
    if value is None:
        return None
    number = value.split(";", 1)[0].strip()
    return int(number) if number.isdigit() else None


def _stop(attempt: Attempt) -> None:
    if attempt.timer is not None:
        attempt.timer.cancel()
        attempt.timer = None


def _stop_all(attempt: Attempt) -> None:
    _stop(attempt)
    if attempt.timer_c is not None:
        attempt.timer_c.cancel()
        attempt.timer_c = None


def _ignore(event: Event) -> None:
    return None


_iso_second: tuple[int, str] = (-1, "")  # the last whole second formatted: a call's records share it


def _iso(timestamp: float) -> str:
    global _iso_second
    second = math.floor(timestamp)  # as time.gmtime rounds
    if _iso_second[0] != second:
        _iso_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_iso_second[1]}.{int(timestamp * 1000) % 1000:03d}Z"
