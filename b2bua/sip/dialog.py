"""SIP dialogs, sans-I/O (RFC 3261 §12, §13.2.2.4, §12.2.1.1 loose and strict routing).

A `Dialog` is the state of RFC 3261 §12: Call-ID, local and remote tags, local and remote
URIs, local and remote CSeq numbers, remote target, route set and the secure flag. It is
made from the INVITE and a 1xx/2xx with a To tag on the UAC side (`Dialog.for_uac`) or from
the INVITE on the UAS side (`Dialog.for_uas`); it builds in-dialog requests and the ACK for
a 2xx, and checks in-dialog requests that arrive. A `DialogTable` finds the dialog of a
message (and says 481 for an unknown one, §12.2.2).

Each leg of the B2BUA has its own dialogs: nothing here copies one leg's identifiers into
the other.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from .grammar import Params
from .headers import NameAddr
from .ids import new_branch
from .message import Headers, Message, Request, Response
from .uri import SipUri, Uri

__all__ = ["Dialog", "DialogId", "DialogTable", "TARGET_REFRESH_METHODS"]

# Requests that replace the remote target with their Contact (§12.2, RFC 3311 §5.2).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE"})

# §19.1.1 table: parameters and headers a Request-URI may not carry.
_NOT_IN_REQUEST_URI = ("method",)


@dataclass(frozen=True, slots=True)
class DialogId:
    """§12: Call-ID, local tag, remote tag."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(eq=False)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Uri  # From of our requests (§12.1.1 / §12.1.2)
    remote_uri: Uri  # To of our requests
    local_seq: int | None  # None: "empty", chosen when the first request is sent (§12.2.1.1)
    remote_seq: int | None  # None: "empty" until the peer sends a request (§12.2.2)
    remote_target: Uri  # Contact of the peer
    route_set: list[NameAddr] = field(default_factory=list)
    secure: bool = False
    state: str = "confirmed"  # "early" | "confirmed"
    local_display: str | None = None
    remote_display: str | None = None

    # -- creation -----------------------------------------------------------------------------
    @classmethod
    def for_uac(cls, request: Request, response: Response, *, secure_transport: bool = False) -> Dialog:
        """§12.1.2: the UAC's dialog from the INVITE it sent and a 101-299 with a To tag."""
        remote_tag = response.to.tag
        if not 101 <= response.status < 300 or not remote_tag:
            raise ValueError("a dialog is made by a 101-299 response with a To tag")
        from_ = request.from_
        if not from_.tag:
            raise ValueError("the request has no From tag")
        contacts = response.contact
        return cls(
            call_id=request.call_id,
            local_tag=from_.tag,
            remote_tag=remote_tag,
            local_uri=from_.uri.copy(),
            remote_uri=request.to.uri.copy(),
            local_seq=request.cseq.seq,
            remote_seq=None,
            # A response without Contact breaks §12.1.1; keep the Request-URI rather than fail.
            remote_target=contacts[0].uri.copy() if contacts else request.uri.copy(),
            route_set=[entry.copy() for entry in reversed(response.record_route)],  # reversed on the UAC
            secure=secure_transport and _is_sips(request.uri),
            state="early" if response.status < 200 else "confirmed",
            local_display=from_.display,
            remote_display=request.to.display,
        )

    @classmethod
    def for_uas(
        cls, request: Request, local_tag: str, *, early: bool = False, secure_transport: bool = False
    ) -> Dialog:
        """§12.1.1: the UAS's dialog from the request it answers with `local_tag` in To."""
        from_ = request.from_
        if not from_.tag:
            raise ValueError("the request has no From tag (RFC 2543 peer): no dialog id")
        contacts = request.contact
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=from_.tag,
            local_uri=request.to.uri.copy(),
            remote_uri=from_.uri.copy(),
            local_seq=None,
            remote_seq=request.cseq.seq,
            remote_target=contacts[0].uri.copy() if contacts else from_.uri.copy(),
            route_set=[entry.copy() for entry in request.record_route],  # in order on the UAS
            secure=secure_transport and _is_sips(request.uri),
            state="early" if early else "confirmed",
            local_display=request.to.display,
            remote_display=from_.display,
        )

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @property
    def early(self) -> bool:
        return self.state == "early"

    def confirm(self) -> None:
        """The UAS sent its 2xx: the early dialog is confirmed (§12.1.1)."""
        self.state = "confirmed"

    @property
    def next_hop(self) -> Uri:
        """Where an in-dialog request goes first: the first route, else the remote target
        (the transport resolves it, RFC 3263)."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    # -- what arrives ---------------------------------------------------------------------------
    def receive_response(self, request: Request, response: Response) -> None:
        """UAC side: a response to a request of this dialog. A 2xx confirms an early dialog
        and recomputes its route set (§13.2.2.4); a 2xx to a target refresh request replaces
        the remote target (§12.2.1.2). The route set never changes once confirmed."""
        if not response.is_success:
            return
        if self.early and request.method == "INVITE":
            self.route_set = [entry.copy() for entry in reversed(response.record_route)]
            self.state = "confirmed"
        if request.method in TARGET_REFRESH_METHODS and response.contact:
            self.remote_target = response.contact[0].uri.copy()

    def receive_request(self, request: Request) -> int | None:
        """UAS side, §12.2.2: None to accept the in-dialog request, or the status to answer
        (500 for a CSeq lower than the last one). A target refresh request replaces the remote
        target. An ACK carries its INVITE's CSeq number and is never answered: accepted."""
        if request.method == "ACK":
            return None
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return 500  # out of order
        self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS and request.contact:
            self.remote_target = request.contact[0].uri.copy()
        return None

    # -- what we send ---------------------------------------------------------------------------
    def create_request(
        self,
        method: str,
        local_contact: NameAddr | str | None = None,
        *,
        sent_by: str,
        transport: str = "UDP",
        branch: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        max_forwards: int = 70,
    ) -> Request:
        """An in-dialog request (§12.2.1.1) with the next local CSeq number and a top Via
        `SIP/2.0/<transport> <sent_by>;branch=<new branch>`. `local_contact` is required for
        target refresh requests (INVITE, UPDATE). ACK for a 2xx: `create_ack`; CANCEL:
        `transaction.make_cancel` (neither takes a new CSeq number)."""
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} reuses the INVITE's CSeq: use create_ack / make_cancel")
        if local_contact is None and method in TARGET_REFRESH_METHODS:
            raise ValueError(f"{method} is a target refresh request: it needs a Contact (§12.2.1.1)")
        if self.local_seq is None:
            # §8.1.1.5: any start below 2**31; keep room to count up.
            self.local_seq = secrets.randbelow(2**16) + 1
        else:
            self.local_seq += 1
        return self._build(
            method, self.local_seq, sent_by=sent_by, transport=transport, branch=branch,
            contact=local_contact, extra=headers or [], body=body, content_type=content_type,
            max_forwards=max_forwards,
        )

    def create_ack(
        self,
        invite: Request,
        response_2xx: Response,
        *,
        sent_by: str,
        transport: str = "UDP",
        branch: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """ACK for a 2xx (§13.2.2.4): built like any in-dialog request, but with the INVITE's
        CSeq number, its credentials, and a new branch (a transaction of its own). Update the
        dialog with `receive_response` first so the remote target is the 2xx's Contact."""
        if not response_2xx.is_success:
            raise ValueError("create_ack is for a 2xx; a non-2xx is ACKed by the transaction")
        if response_2xx.cseq.seq != invite.cseq.seq or response_2xx.to.tag != self.remote_tag:
            raise ValueError("the 2xx does not answer this INVITE in this dialog")
        credentials = [
            (item.name, item.value)
            for item in invite.headers
            if item.key in ("authorization", "proxy-authorization")
        ]
        return self._build(
            "ACK", invite.cseq.seq, sent_by=sent_by, transport=transport, branch=branch,
            contact=None, extra=credentials, body=body, content_type=content_type, max_forwards=70,
        )

    def _build(
        self,
        method: str,
        seq: int,
        *,
        sent_by: str,
        transport: str,
        branch: str | None,
        contact: NameAddr | str | None,
        extra: list[tuple[str, str]],
        body: bytes,
        content_type: str | None,
        max_forwards: int,
    ) -> Request:
        uri, routes = self._request_target()
        headers = Headers()
        headers.add("Via", f"SIP/2.0/{transport.upper()} {sent_by};branch={branch or new_branch()}")
        headers.add("Max-Forwards", str(max_forwards))
        for route in routes:
            headers.add("Route", route)
        headers.add("From", _address(self.local_uri, self.local_display, self.local_tag))
        headers.add("To", _address(self.remote_uri, self.remote_display, self.remote_tag))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        if contact is not None:
            headers.add("Contact", contact if isinstance(contact, str) else str(contact))
        for name, value in extra:
            headers.add(name, value)
        if body:
            if content_type is None:
                raise ValueError("a body needs a Content-Type")
            headers.add("Content-Type", content_type)
        return Request(method, uri, headers, body)

    def _request_target(self) -> tuple[Uri, list[str]]:
        """§12.2.1.1: the Request-URI and Route values.

        No route set: Request-URI = remote target, no Route.
        First route loose (;lr): Request-URI = remote target, Route = the route set.
        First route strict: Request-URI = first route (minus what a Request-URI may not
        carry), Route = the rest of the route set, then the remote target (strict-router
        compatibility, §16.12.1.1)."""
        if not self.route_set:
            return self.remote_target.copy(), []
        first = self.route_set[0]
        if _is_loose(first):
            return self.remote_target.copy(), [str(entry) for entry in self.route_set]
        uri = first.uri.copy()
        if isinstance(uri, SipUri):
            for name in _NOT_IN_REQUEST_URI:
                uri.params.remove(name)
            uri.headers = None
        routes = [str(entry) for entry in self.route_set[1:]]
        routes.append(f"<{self.remote_target}>")
        return uri, routes


def _address(uri: Uri, display: str | None, tag: str) -> str:
    return str(NameAddr(uri.copy(), display, Params([("tag", tag)])))


def _is_loose(route: NameAddr) -> bool:
    uri = route.uri
    return isinstance(uri, SipUri) and "lr" in uri.params


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.is_secure


class DialogTable:
    """The dialogs of one UA, keyed by (Call-ID, local tag, remote tag)."""

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def add(self, dialog: Dialog) -> None:
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.id) is dialog:
            del self._dialogs[dialog.id]

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def find(self, message: Message) -> Dialog | None:
        """The dialog of a received request (local tag in To) or response (local tag in From)."""
        if isinstance(message, Request):
            local_tag, remote_tag = message.to.tag, message.from_.tag
        else:
            local_tag, remote_tag = message.from_.tag, message.to.tag
        if not local_tag or not remote_tag:
            return None
        return self._dialogs.get(DialogId(message.call_id, local_tag, remote_tag))

    def receive_request(self, request: Request) -> tuple[Dialog | None, int | None]:
        """Route a received request (§12.2.2):

        (None, None)    no To tag: not an in-dialog request, handle it outside any dialog;
        (None, 481)     a To tag but no such dialog (an ACK is never answered: (None, None));
        (dialog, None)  accepted by its dialog;
        (dialog, 500)   out of order (lower CSeq)."""
        if request.to.tag is None:
            return None, None
        dialog = self.find(request)
        if dialog is None:
            return None, None if request.method == "ACK" else 481
        return dialog, dialog.receive_request(request)
