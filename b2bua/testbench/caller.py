"""The emergency caller (`b2bua call`): places emergency calls through a B2BUA and says how each went.

One `Caller` is one SIP user agent (a `SipStack` core) that can place many calls at
once. Each call is an INVITE laid out like a real client's (`--style`, see
`pidf.body.emergency_body` and docs/interop-notes.md): SDP plus a PIDF-LO part pointed
at by `Geolocation: <cid:...>`, or SDP only with `--no-location`. The caller answers what
comes back (ACK for the 2xx, 200 to a far-end BYE), holds the call, hangs up, and
reports the final status and the time to answer.

Every wait is bounded: no answer within `answer_timeout_s` -> CANCEL (and the call fails
with the 487 or 408 that follows); a BYE not answered within 10 s is given up.

All requests of a call go to the address the INVITE went to (the B2BUA acts as the
caller's outbound proxy), whatever the 2xx's Contact says: the caller is a test tool aimed
at one B2BUA address, possibly behind NAT or in a container.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ..config import parse_host_port
from ..sip import HeaderField, Headers, Request, Response, make_response, new_call_id, new_tag
from ..sip.dialog import Dialog
from ..sip.message import REASON_PHRASES
from ..sip.transaction import Event, Peer, ResponseReceived, ServerTransaction, TransactionTimeout, TransportFailure
from ..stack import SipStack
from . import sdp

log = structlog.get_logger("b2bua.caller")

STYLES = ("lync", "rfc", "pjsua", "linphone")
TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_CALLER = "+14255550100"
DEFAULT_DOMAIN = "caller.example.com"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"
BYE_TIMEOUT_S = 10.0
CANCEL_GRACE_S = 5.0  # after our CANCEL, how long the 487 may take
SHAPES = ("point", "circle", "ellipse", "polygon")


class CallerError(ValueError):
    """An unusable call description (bad target, unreadable PIDF, malformed civic field)."""


# -- what to call -----------------------------------------------------------------------------


def parse_target(text: str, transport: str = "udp") -> Peer:
    """`127.0.0.1:5060`, `[::1]:5060`, `127.0.0.1` (port 5060, or 5061 for TLS)."""
    if transport not in TRANSPORTS:
        raise CallerError(f"transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
    try:
        address = parse_host_port(text, 5061 if transport == "tls" else 5060)
    except ValueError as error:
        raise CallerError(f"address {text!r}: {error}") from None
    # parse_host_port checks the host only when a port is written; check it always.
    if not re.fullmatch(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+", address.host) or address.host.startswith(("-", ".")):
        raise CallerError(f"address {text!r}: {address.host!r} is not an IP address or host name")
    return Peer(transport, address.host, address.port)


def check_destination(to: str) -> str:
    """What may be dialled: digits (`911`, `933`, `+12025550100`), a URN (`urn:service:sos`),
    or a SIP user part such as a B2BUA callback Contact's `cb-...` (a PSAP calling back)."""
    text = to.strip()
    if (re.fullmatch(r"\+?[0-9*#]{1,32}", text) or re.fullmatch(r"urn:[A-Za-z0-9][A-Za-z0-9.:_-]*", text)
            or re.fullmatch(r"[A-Za-z][A-Za-z0-9._~-]{0,63}", text)):
        return text
    raise CallerError(f"--to {to!r} is neither a number (911, 933), a URN (urn:service:sos) nor a user name")


@dataclass
class CallSpec:
    """One emergency call to place (the same spec may be placed many times)."""

    to: str = "911"
    style: str = "rfc"
    # The PIDF-LO to send: bytes; None for no location at all (SDP only, still Priority:
    # emergency); "sample" (default) for the reference's Redmond sample in the style's layout.
    pidf: bytes | str | None = "sample"
    caller: str = DEFAULT_CALLER  # user part of From
    domain: str = DEFAULT_DOMAIN  # host part of From
    display: str | None = "E911 caller"
    hold_s: float = 0.0
    answer_timeout_s: float = 35.0
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.to = check_destination(self.to)
        if self.style not in STYLES:
            raise CallerError(f"style {self.style!r} is not one of {', '.join(STYLES)}")
        if self.hold_s < 0 or self.answer_timeout_s <= 0:
            raise CallerError("hold must be >= 0 s and the answer timeout > 0 s")
        if self.pidf == "sample":
            self.pidf = default_pidf(self.style, self.aor)
        elif isinstance(self.pidf, str):
            raise CallerError(f"pidf={self.pidf!r}: give the document's bytes, None, or \"sample\"")

    @property
    def aor(self) -> str:
        return f"sip:{self.caller}@{self.domain}"


@dataclass
class CallOutcome:
    """How one call went. `ok`: a 2xx came (and the call was hung up cleanly)."""

    index: int
    target: str
    transport: str
    to: str
    style: str
    call_id: str
    status: int | None = None
    reason: str = ""
    provisional: list[int] = field(default_factory=list)
    first_response_ms: float | None = None
    answer_ms: float | None = None  # INVITE sent -> final response received (2xx: time to answer)
    held_s: float = 0.0
    ended_by: str | None = None  # "caller" (our BYE), "far end" (their BYE), None (not answered)
    bye_status: int | None = None
    error: str | None = None  # timeout, transport failure, CANCEL
    pidf_sha256: str | None = None  # of the PIDF-LO part exactly as sent
    invite: bytes = b""  # the INVITE as sent (first transmission)
    response: Response | None = None  # the final response
    started_at: float = 0.0  # wall clock

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None

    @property
    def pidf(self) -> bytes | None:
        return _pidf_part(self.invite)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "target": self.target, "transport": self.transport, "to": self.to,
            "style": self.style, "call_id": self.call_id, "status": self.status, "reason": self.reason,
            "ok": self.ok, "provisional": self.provisional, "first_response_ms": self.first_response_ms,
            "answer_ms": self.answer_ms, "held_s": self.held_s, "ended_by": self.ended_by,
            "bye_status": self.bye_status, "error": self.error, "pidf_sha256": self.pidf_sha256,
            "started_at": self.started_at,
        }

    def line(self, total: int | None = None) -> str:
        """`call 1/3  200 OK  answered in 12.3 ms  held 0.0 s`"""
        number = f"{self.index}/{total}" if total else str(self.index)
        status = f"{self.status} {self.reason}".strip() if self.status is not None else "no answer"
        if self.ok:
            text = f"call {number}  {status}  answered in {self.answer_ms:.1f} ms  held {self.held_s:.1f} s"
            if self.ended_by == "far end":
                text += " (far end hung up)"
            if self.bye_status is not None and not 200 <= self.bye_status < 300:
                text += f"  BYE got {self.bye_status}"
            return text
        after = f"  after {self.answer_ms:.1f} ms" if self.answer_ms is not None else ""
        error = f"  ({self.error})" if self.error else ""
        return f"call {number}  {status}{after}{error}  FAILED"


def _pidf_part(invite: bytes) -> bytes | None:
    from ..sip import parse_message

    if not invite:
        return None
    try:
        message = parse_message(invite)
    except Exception:  # noqa: BLE001 - our own INVITE; a failure here only loses the copy
        return None
    multipart = message.multipart
    if multipart is None:
        return None
    parts = [part.content for part in multipart.parts if part.mime == "application/pidf+xml"]
    return parts[-1] if parts else None


# -- building the PIDF-LO -----------------------------------------------------------------------


def read_pidf(path: str | Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CallerError(f"cannot read PIDF file {str(path)!r}: {error.strerror or error}") from None
    if not data.strip():
        raise CallerError(f"PIDF file {str(path)!r} is empty")
    return data


def civic_pidf(pairs: Sequence[str], *, style: str = "rfc", entity: str = "sip:caller@example.com") -> bytes:
    """`["country=US", "A1=WA", "A3=Redmond", "RD=163rd", "HNO=3910"]` -> a civic PIDF-LO
    (laid out like a Lync client's for `style="lync"`)."""
    from pidf.build import civic_document, lync_document

    fields: list[tuple[str, str]] = []
    for pair in pairs:
        name, equals, value = pair.partition("=")
        name = name.strip()
        if not equals or not name:
            raise CallerError(f"--civic {pair!r} is not KEY=VALUE (e.g. A3=Redmond)")
        fields.append((name, value.strip()))
    try:
        if style == "lync":
            return lync_document(fields, entity=entity)
        return civic_document(fields, entity=entity)
    except (ValueError, KeyError) as error:
        raise CallerError(f"--civic: {error}") from None


def shape_pidf(text: str, *, entity: str = "sip:caller@example.com") -> bytes:
    """`point:LAT,LON`, `circle:LAT,LON,RADIUS_M`, `ellipse:LAT,LON,MAJOR,MINOR,ORIENT`,
    `polygon:LAT,LON;LAT,LON;LAT,LON[;...]` -> a geodetic PIDF-LO (WGS 84, metres, degrees)."""
    from pidf.build import Circle, Ellipse, Point, Polygon, shape_document

    kind, colon, rest = text.partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in SHAPES:
        raise CallerError(f"--shape {text!r}: write {' | '.join(s + ':...' for s in SHAPES)}, e.g. circle:47.64,-122.13,25")
    try:
        if kind == "polygon":
            points = [tuple(float(v) for v in corner.split(",")) for corner in rest.split(";") if corner.strip()]
            if len(points) < 3 or any(len(point) != 2 for point in points):
                raise ValueError("a polygon needs three or more LAT,LON corners separated by ';'")
            shape: Any = Polygon(points)
        else:
            numbers = [float(value) for value in rest.split(",")]
            wanted = {"point": 2, "circle": 3, "ellipse": 5}[kind]
            if len(numbers) != wanted:
                raise ValueError(f"{kind} takes {wanted} numbers, got {len(numbers)}")
            lat, lon = numbers[0], numbers[1]
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError(f"latitude {lat} / longitude {lon} out of range")
            if kind == "point":
                shape = Point(lat, lon)
            elif kind == "circle":
                if numbers[2] <= 0:
                    raise ValueError("the radius must be > 0 metres")
                shape = Circle(lat, lon, numbers[2])
            else:
                shape = Ellipse(lat, lon, numbers[2], numbers[3], numbers[4])
        return shape_document(shape, entity=entity)
    except ValueError as error:
        raise CallerError(f"--shape {text!r}: {error}") from None


def default_pidf(style: str, entity: str) -> bytes:
    """The Redmond sample of the reference: Lync's own layout and quirks for `lync`
    ([MS-SIPRE] §4.14: tuple id="0", timestamp without offset), a clean civic PIDF-LO else."""
    from pidf.build import REDMOND, civic_document, lync_document

    if style == "lync":
        return lync_document(dict(REDMOND, NAM="1111-222-333; 1234567890"), entity=entity, quirks=True)
    return civic_document(REDMOND, entity=entity)


# -- the INVITE ----------------------------------------------------------------------------------


def build_invite(stack: SipStack, peer: Peer, spec: CallSpec, *, call_id: str, from_tag: str,
                 rtp_port: int = 40000) -> tuple[Request, str | None]:
    """The INVITE of one call and the sha256 of its PIDF-LO part as it will be sent."""
    from pidf.body import crlf, emergency_body

    host, _ = stack.local_address(peer.transport)
    target_host = f"[{peer.host}]" if ":" in peer.host else peer.host
    scheme = "sips" if peer.transport == "tls" else "sip"
    suffix = ";transport=tcp" if peer.transport == "tcp" else ""
    style = spec.style
    if spec.to.startswith("urn:"):
        uri = spec.to  # RFC 5031 / RFC 6881: the service URN is the Request-URI
        to_value = f"<{spec.to}>"
    else:
        user = spec.to
        if style == "lync":
            # [MS-SIPRE] §4.14: the dial plan (location profile) rides as phone-context.
            user = f"{spec.to};phone-context=Redmond"
        uri = f"{scheme}:{user}@{target_host}:{peer.port};user=phone{suffix}"
        if style in ("pjsua", "linphone"):
            # pjsua and liblinphone write To without angle brackets (interop notes), so
            # without URI parameters (they would read as header parameters, §20).
            to_value = f"{scheme}:{spec.to}@{target_host}:{peer.port}"
        else:
            to_value = f"<{uri}>"
    sdp_body = sdp.offer(host, rtp_port)

    headers = Headers()
    headers.add("Via", stack.via(peer.transport))
    headers.add("Max-Forwards", "70")
    display = f'"{spec.display}" ' if spec.display else ""
    if style == "lync":
        # Lync: no space before '<', an epid parameter, upper-case names (reference §1.3).
        headers.append_field(HeaderField("From", f'"{spec.caller}"<{spec.aor}>;epid=1D19090AED;tag={from_tag}'))
    else:
        headers.add("From", f"{display}<{spec.aor}>;tag={from_tag}")
    headers.add("To", to_value)
    headers.add("Call-ID", call_id)
    headers.add("CSeq", "1 INVITE")
    contact = f"<{stack.contact_uri(peer.transport)}>"
    if style == "lync":
        headers.append_field(HeaderField("CONTACT", f"{contact};text;audio;video;image"))
    else:
        headers.add("Contact", contact)
    headers.add("Allow", ALLOW)
    if stack.user_agent:
        headers.add("User-Agent", stack.user_agent)
    pidf_sha256 = None
    if spec.pidf is None:
        headers.add("Priority", "emergency")
        content_type_name, content_type, body = "Content-Type", "application/sdp", sdp_body
    else:
        emergency = emergency_body(style, sdp_body, spec.pidf, spec.aor)
        for name, value in emergency.headers:
            headers.append_field(HeaderField(name, value))  # spelt as that client writes it
        content_type_name = "CONTENT-TYPE" if style == "lync" else "Content-Type"
        content_type, body = emergency.content_type, emergency.body
        pidf_sha256 = hashlib.sha256(crlf(spec.pidf)).hexdigest()
    for name, value in spec.extra_headers:
        headers.append_field(HeaderField(name, value))
    headers.append_field(HeaderField(content_type_name, content_type))
    return Request("INVITE", uri, headers, body), pidf_sha256


# -- the user agent ----------------------------------------------------------------------------


class _CallerStack(SipStack):
    """A SipStack that remembers why a peer could not be reached (for the call's report)."""

    def __init__(self, core: Caller, **options: Any) -> None:
        super().__init__(core, **options)
        self.last_errors: dict[tuple[str, str, int], str] = {}

    def _on_transport_error(self, peer, error: Exception) -> None:  # noqa: ANN001
        self.last_errors[(peer.transport, peer.host, peer.port)] = _error_text(error)
        super()._on_transport_error(peer, error)


def _error_text(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"TLS: {text} (use --insecure or --ca FILE for a self-signed certificate)"
    return text


@dataclass
class _LiveCall:
    dialog: Dialog
    peer: Peer
    hung_up: asyncio.Event


class Caller:
    """`async with Caller() as caller: outcome = await caller.call(peer, CallSpec(to="911"))`.

    TLS: the server certificate is verified against the system trust store, or `ca_file`;
    `tls_verify=False` accepts any certificate (the lab's self-signed one)."""

    def __init__(self, *, host: str = "127.0.0.1", tls_verify: bool = True, ca_file: str | None = None,
                 user_agent: str = "e911-caller", timers: Any = None) -> None:
        from ..transport import TlsPeerConfig, client_context

        if ca_file is not None:
            policy = TlsPeerConfig(context=client_context(cafile=ca_file))
        else:
            policy = TlsPeerConfig(verify=tls_verify)
        self.host = host
        self.stack = _CallerStack(self, tls_peers=lambda peer: policy, user_agent=user_agent, timers=timers)
        self._calls: dict[tuple[str, str], _LiveCall] = {}
        self.callbacks: list[Request] = []  # PSAP callbacks this caller answered (RFC 6881 ED-63)
        self.callback_received = asyncio.Event()
        self._counter = 0
        self._started = False

    async def start(self) -> Caller:
        """Listen on UDP and TCP on one free loopback port (a far-end BYE over TCP is sent to
        the Contact's port, so TCP must listen there too)."""
        if self._started:
            return self
        for _ in range(20):
            udp = await self.stack.listen("udp", self.host, 0)
            try:
                await self.stack.listen("tcp", self.host, udp.port)
            except OSError:
                await udp.close()
                continue
            self._started = True
            return self
        raise OSError("no free port for the caller's UDP and TCP listeners")

    async def close(self) -> None:
        await self.stack.close()

    async def __aenter__(self) -> Caller:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- placing calls ------------------------------------------------------------------------
    async def call(self, target: Peer | str, spec: CallSpec | None = None, **options: Any) -> CallOutcome:
        """Place one call and wait (bounded) until it is over. `target`: a Peer or `host:port`
        (then `transport=` may be given among `options`); other options make a CallSpec."""
        if not self._started:
            await self.start()
        if isinstance(target, str):
            target = parse_target(target, options.pop("transport", "udp"))
        if spec is None:
            spec = CallSpec(**options)
        elif options:
            raise TypeError("give either a CallSpec or keyword options, not both")
        self._counter += 1
        return await self._place(target, spec, self._counter)

    async def call_many(self, target: Peer, spec: CallSpec, count: int, rate: float,
                        on_done: Callable[[CallOutcome], None] | None = None) -> list[CallOutcome]:
        """`count` calls started `rate` per second (they overlap when they last longer)."""
        if not self._started:
            await self.start()
        if count < 1 or rate <= 0:
            raise CallerError("count must be >= 1 and rate > 0")
        loop = asyncio.get_running_loop()
        begin = loop.time()

        async def one(index: int) -> CallOutcome:
            delay = begin + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._counter += 1
            outcome = await self._place(target, spec, index + 1)
            if on_done is not None:
                on_done(outcome)
            return outcome

        return list(await asyncio.gather(*(one(index) for index in range(count))))

    async def _place(self, peer: Peer, spec: CallSpec, index: int) -> CallOutcome:
        loop = asyncio.get_running_loop()
        stack = self.stack
        call_id = new_call_id()
        from_tag = new_tag()
        invite, pidf_sha256 = build_invite(stack, peer, spec, call_id=call_id, from_tag=from_tag,
                                           rtp_port=40000 + 2 * (index % 10000))
        outcome = CallOutcome(index, _peer_text(peer), peer.transport, spec.to, spec.style, call_id,
                              pidf_sha256=pidf_sha256, invite=invite.to_bytes(), started_at=time.time())
        final: asyncio.Future[Response | str] = loop.create_future()
        dialog_box: list[Dialog] = []
        started = time.perf_counter()  # uvloop's loop.time() counts whole milliseconds

        def on_event(event: Event) -> None:
            if isinstance(event, ResponseReceived):
                response = event.response
                if outcome.first_response_ms is None:
                    outcome.first_response_ms = _ms(time.perf_counter() - started)
                if response.status < 200:
                    if response.status > 100:
                        outcome.provisional.append(response.status)
                    return
                if not final.done():
                    final.set_result(response)
                elif response.is_success and dialog_box:
                    self._ack(dialog_box[0], invite, response, peer)  # a retransmitted 2xx: ACK again
            elif isinstance(event, TransactionTimeout):
                if not final.done():
                    final.set_result("timeout (no final response, Timer B)")
            elif isinstance(event, TransportFailure):
                if not final.done():
                    why = stack.last_errors.get((peer.transport, peer.host, peer.port), "unreachable")
                    final.set_result(f"transport failure: {why}")

        transaction = stack.send_request(invite, peer, on_event)
        result: Response | str
        try:
            result = await asyncio.wait_for(asyncio.shield(final), spec.answer_timeout_s)
        except asyncio.TimeoutError:
            stack.cancel(transaction, 'SIP;cause=408;text="caller gave up"')
            outcome.error = f"no answer within {spec.answer_timeout_s:g} s: cancelled"
            try:
                result = await asyncio.wait_for(asyncio.shield(final), CANCEL_GRACE_S)
            except asyncio.TimeoutError:
                result = "no final response after CANCEL"
        outcome.answer_ms = _ms(time.perf_counter() - started)
        if isinstance(result, str):
            outcome.error = outcome.error or result
            outcome.reason = result
            return outcome
        outcome.response = result
        outcome.status = result.status
        outcome.reason = result.reason or REASON_PHRASES.get(result.status, "")
        if not result.is_success:
            return outcome
        if outcome.error is not None:
            # Answered although we had cancelled (200 crossed the CANCEL): end it at once.
            hold = 0.0
        else:
            hold = spec.hold_s
        dialog = Dialog.for_uac(invite, result, secure_transport=peer.transport == "tls")
        dialog_box.append(dialog)
        live = _LiveCall(dialog, peer, asyncio.Event())
        self._calls[(call_id, from_tag)] = live
        try:
            self._ack(dialog, invite, result, peer)
            answered = time.perf_counter()
            try:
                await asyncio.wait_for(live.hung_up.wait(), hold)
                outcome.ended_by = "far end"
            except asyncio.TimeoutError:
                outcome.ended_by = "caller"
            outcome.held_s = round(time.perf_counter() - answered, 3)
            if outcome.ended_by == "caller":
                outcome.bye_status = await self._bye(dialog, peer)
        finally:
            # Keep the dialog a moment for a retransmitted BYE, then forget it.
            loop.call_later(5.0, self._calls.pop, (call_id, from_tag), None)
        return outcome

    def _ack(self, dialog: Dialog, invite: Request, response: Response, peer: Peer) -> None:
        dialog.receive_response(invite, response)
        ack = dialog.create_ack(invite, response, sent_by=self._sent_by(peer.transport), transport=peer.transport)
        self.stack.send_stateless(ack, peer)

    async def _bye(self, dialog: Dialog, peer: Peer) -> int | None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int | None] = loop.create_future()

        def on_event(event: Event) -> None:
            if done.done():
                return
            if isinstance(event, ResponseReceived) and event.response.status >= 200:
                done.set_result(event.response.status)
            elif isinstance(event, (TransactionTimeout, TransportFailure)):
                done.set_result(None)

        bye = dialog.create_request("BYE", sent_by=self._sent_by(peer.transport), transport=peer.transport)
        self.stack.send_request(bye, peer, on_event)
        try:
            return await asyncio.wait_for(done, BYE_TIMEOUT_S)
        except asyncio.TimeoutError:
            return None

    def _sent_by(self, transport: str) -> str:
        host, port = self.stack.local_address(transport)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _answer_callback(self, request: Request, transaction: ServerTransaction, peer: Peer) -> None:
        """A call to us: a PSAP calling back after an emergency call. A phone that just
        called 911 answers it (RFC 6881 ED-65: callbacks bypass call screening)."""
        tag = new_tag()
        host, _ = self.stack.local_address(peer.transport)
        response = make_response(request, 200, to_tag=tag)
        response.headers.add("Contact", f"<{self.stack.contact_uri(peer.transport)}>")
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp.answer(sdp.sdp_of(request), host, 40000)
        self._calls[(request.call_id, tag)] = _LiveCall(Dialog.for_uas(request, tag), peer, asyncio.Event())
        self.callbacks.append(request)
        self.callback_received.set()
        self.stack.respond(transaction, response)

    # -- Core callbacks (what the far end sends us) ------------------------------------------------
    def on_request(self, request: Request, transaction: ServerTransaction | None, peer: Peer | None) -> None:
        if request.method == "ACK" or transaction is None:
            return
        live = self._calls.get((request.call_id, request.to.tag or ""))
        if request.method == "OPTIONS" and request.to.tag is None:
            response = make_response(request, 200, to_tag=new_tag())
            response.headers.add("Allow", ALLOW)
            self.stack.respond(transaction, response)
            return
        if live is None and request.method == "INVITE" and request.to.tag is None and peer is not None:
            self._answer_callback(request, transaction, peer)
            return
        if live is None:
            self.stack.respond(transaction, make_response(request, 481 if request.to.tag else 405, to_tag=new_tag()))
            return
        status = live.dialog.receive_request(request)
        if status is not None:
            self.stack.respond(transaction, make_response(request, status))
            return
        response = make_response(request, 200)
        if request.method == "INVITE":  # a re-INVITE (session refresh): answer with an SDP
            host, _ = self.stack.local_address(live.peer.transport)
            response.headers.add("Contact", f"<{self.stack.contact_uri(live.peer.transport)}>")
            response.headers.add("Content-Type", "application/sdp")
            response.body = sdp.answer(sdp.sdp_of(request), host, 40000)
        self.stack.respond(transaction, response)
        if request.method == "BYE":
            live.hung_up.set()

    def on_cancel(self, cancel: Request, invite: ServerTransaction) -> None:
        return None

    def on_ack_timeout(self, invite: ServerTransaction) -> None:
        return None

    def on_stray_response(self, response: Response, peer: Peer | None) -> None:
        return None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _peer_text(peer: Peer) -> str:
    host = f"[{peer.host}]" if ":" in peer.host else peer.host
    return f"{peer.transport}:{host}:{peer.port}"


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """On a terminal, one line redrawn with `\\r` (`[=====     ] 5/10 calls, 0 failed`) and
    each call's line printed above it; elsewhere just the lines."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.done = 0
        self.failed = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"

    def update(self, outcome: CallOutcome) -> None:
        self.done += 1
        self.failed += 0 if outcome.ok else 1
        line = outcome.line(self.total)
        if self.tty:
            self.stream.write("\r\033[K" + line + "\n")
            if self.total > 1 and self.done < self.total:
                self.stream.write("\r" + self.bar())
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def bar(self, width: int = 30) -> str:
        filled = int(width * self.done / self.total)
        return f"[{'=' * filled}{' ' * (width - filled)}] {self.done}/{self.total} calls, {self.failed} failed"

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def summary(outcomes: Sequence[CallOutcome]) -> str:
    answered = [o for o in outcomes if o.ok]
    text = f"{len(outcomes)} call{'s' if len(outcomes) != 1 else ''}: {len(answered)} answered, {len(outcomes) - len(answered)} failed"
    times = [o.answer_ms for o in answered if o.answer_ms is not None]
    if times:
        text += f"; time to answer min/avg/max {min(times):.1f}/{sum(times) / len(times):.1f}/{max(times):.1f} ms"
    return text


# -- `b2bua call` ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="ADDRESS",
                        help="the B2BUA (or ECRC) to call: HOST:PORT (port defaults to 5060, 5061 for tls)")
    parser.add_argument("--to", default="911", help="what to dial: 911 (default), 933, urn:service:sos, or any number/URN")
    location = parser.add_mutually_exclusive_group()
    location.add_argument("--pidf", metavar="FILE", help="send this PIDF-LO document as the location")
    location.add_argument("--civic", nargs="+", metavar="KEY=VALUE",
                          help="build a civic PIDF-LO (RFC 5139 names: country A1 A3 RD STS HNO PC LOC ...)")
    location.add_argument("--shape", metavar="SHAPE",
                          help="build a geodetic PIDF-LO: point:LAT,LON | circle:LAT,LON,RADIUS | "
                               "ellipse:LAT,LON,MAJOR,MINOR,ORIENT | polygon:LAT,LON;LAT,LON;...")
    location.add_argument("--no-location", action="store_true", help="send SDP only (a call a stripping SBC would make)")
    parser.add_argument("--style", choices=STYLES, default="rfc",
                        help="body and header layout of a real client (default rfc)")
    parser.add_argument("--transport", choices=TRANSPORTS, default="udp", help="default udp")
    parser.add_argument("--from", dest="caller", default=DEFAULT_CALLER,
                        help=f"caller's number / user part of From (default {DEFAULT_CALLER})")
    parser.add_argument("--domain", default=DEFAULT_DOMAIN, help=f"host part of From (default {DEFAULT_DOMAIN})")
    parser.add_argument("--count", type=int, default=1, help="how many calls (default 1)")
    parser.add_argument("--rate", type=float, default=10.0, help="calls started per second (default 10)")
    parser.add_argument("--hold", type=float, default=0.0, metavar="SECONDS", help="stay in the call this long (default 0)")
    parser.add_argument("--timeout", type=float, default=35.0, metavar="SECONDS",
                        help="CANCEL when no final response came by then (default 35)")
    parser.add_argument("--insecure", action="store_true", help="tls: accept any server certificate (the lab's self-signed one)")
    parser.add_argument("--ca", metavar="FILE", help="tls: verify the server certificate against this CA file")
    parser.add_argument("--bind", default="127.0.0.1", help="local address to place calls from (default 127.0.0.1)")
    parser.add_argument("--json", action="store_true", help="print one JSON list of outcomes instead of lines")
    parser.add_argument("--log-level", default="error", choices=("debug", "info", "warning", "error"),
                        help="JSON logs on stderr (default error: each call's line already says what failed)")


def spec_from_args(args: argparse.Namespace) -> tuple[Peer, CallSpec, int, float]:
    """Check every argument before anything starts (CallerError -> exit 2)."""
    peer = parse_target(args.address, args.transport)
    if args.count < 1:
        raise CallerError(f"--count {args.count}: must be 1 or more")
    if not args.rate > 0:
        raise CallerError(f"--rate {args.rate:g}: must be above 0")
    if args.hold < 0 or args.hold > 86400:
        raise CallerError(f"--hold {args.hold:g}: must be 0 to 86400 seconds")
    if not 0 < args.timeout <= 3600:
        raise CallerError(f"--timeout {args.timeout:g}: must be above 0 and at most 3600 seconds")
    if args.ca is not None:
        if args.insecure:
            raise CallerError("--ca and --insecure contradict each other")
        if not os.access(args.ca, os.R_OK) or not Path(args.ca).is_file():
            raise CallerError(f"cannot read CA file {args.ca!r}")
    if (args.ca or args.insecure) and args.transport != "tls":
        raise CallerError("--ca / --insecure only mean something with --transport tls")
    caller = args.caller.strip()
    if not re.fullmatch(r"[A-Za-z0-9+_.!~*'()&=$,;?/-]+", caller):
        raise CallerError(f"--from {args.caller!r} is not a SIP user part")
    domain = args.domain.strip()
    if not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", domain):
        raise CallerError(f"--domain {args.domain!r} is not a host name")
    entity = f"sip:{caller}@{domain}"
    if args.no_location:
        pidf = None
    elif args.pidf:
        pidf = read_pidf(args.pidf)
    elif args.civic:
        pidf = civic_pidf(args.civic, style=args.style, entity=entity)
    elif args.shape:
        pidf = shape_pidf(args.shape, entity=entity)
    else:
        pidf = default_pidf(args.style, entity)
    spec = CallSpec(to=args.to, style=args.style, pidf=pidf, caller=caller, domain=domain, hold_s=args.hold,
                    answer_timeout_s=args.timeout)
    return peer, spec, args.count, args.rate


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..logs import configure_logging
    from ..transport import run as run_loop

    try:
        peer, spec, count, rate = spec_from_args(args)
        _check_bind(args.bind)
    except CallerError as error:
        raise UsageError(str(error)) from None
    configure_logging(args.log_level)
    try:
        outcomes = run_loop(_run_calls(peer, spec, count, rate, args))
    except OSError as error:
        print(f"b2bua call: {error}", file=sys.stderr)
        return 1
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _check_bind(host: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise CallerError(f"--bind {host!r} is not an IP address") from None


async def _run_calls(peer: Peer, spec: CallSpec, count: int, rate: float, args: argparse.Namespace) -> list[CallOutcome]:
    progress = None if args.json else Progress(count)
    async with Caller(host=args.bind, tls_verify=not args.insecure, ca_file=args.ca) as caller:
        outcomes = await caller.call_many(peer, spec, count, rate, progress.update if progress else None)
    if progress is not None:
        progress.finish()
        if count > 1:
            print(summary(outcomes))
    else:
        print(json.dumps([outcome.to_json() for outcome in outcomes], indent=2))
    return outcomes
