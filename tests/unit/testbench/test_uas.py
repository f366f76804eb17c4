"""AnsweringUas, the base of the mock ECRC and the PSTN gateway, against a fake stack: what
it answers for each behaviour, its hooks, and run-time behaviour changes."""

from __future__ import annotations

import asyncio

import pytest

from b2bua.sip import Request, Response, make_response, parse_message
from b2bua.sip.transaction import Peer
from b2bua.testbench.control import AnswerBehaviour
from b2bua.testbench.uas import AnsweringUas

PEER = Peer("udp", "192.0.2.20", 5060)


class FakeStack:
    """What AnsweringUas uses of SipStack, recorded."""

    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.requests: list[tuple[Request, Peer]] = []
        self.accept = None

    def respond(self, transaction: object, response: Response) -> None:
        self.responses.append(response)

    def local_address(self, transport: str) -> tuple[str, int]:
        return "127.0.0.1", 5070

    def contact_uri(self, transport: str, user: str | None = None) -> str:
        return "sip:127.0.0.1:5070"

    def send_request(self, request: Request, peer: Peer, handler) -> object:  # noqa: ANN001
        self.requests.append((request, peer))
        return object()

    @property
    def statuses(self) -> list[int]:
        return [response.status for response in self.responses]


class Uas(AnsweringUas):
    def __init__(self, behaviour: AnswerBehaviour | None = None) -> None:
        super().__init__("test", behaviour)
        self.real_stack_accept = self.stack.accept
        self.stack = FakeStack()  # type: ignore[assignment]
        self.received: list[tuple[str, int]] = []  # (call-id, responses sent when the hook ran)
        self.ended: list[str] = []
        self.dropped: list[str] = []
        self.fail_next = False
        self.screen: Response | None = None

    def screen_invite(self, request, peer):  # noqa: ANN001, ANN201
        return self.screen

    def invite_received(self, request, peer) -> None:  # noqa: ANN001
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("store is gone")
        self.received.append((request.call_id, len(self.stack.responses)))

    def invite_dropped(self, request, peer) -> None:  # noqa: ANN001
        self.dropped.append(request.call_id)

    def call_ended(self, call, side: str) -> None:  # noqa: ANN001
        self.ended.append(side)


def invite(call_id: str = "c1@test", branch: str = "z9hG4bK-1") -> Request:
    sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    raw = (
        "INVITE sip:911@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.20:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:+14255550100@example.com>;tag=from1\r\n"
        "To: <sip:911@127.0.0.1:5070>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:caller@192.0.2.20:5060>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
    )
    request = parse_message(raw.encode())
    assert isinstance(request, Request)
    return request


def in_dialog(method: str, to_tag: str, *, call_id: str = "c1@test", seq: int = 2) -> Request:
    raw = (
        f"{method} sip:127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-{method.lower()}{seq}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:+14255550100@example.com>;tag=from1\r\n"
        f"To: <sip:911@127.0.0.1:5070>;tag={to_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {1 if method == 'ACK' else seq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    request = parse_message(raw.encode())
    assert isinstance(request, Request)
    return request


def place(uas: Uas, request: Request | None = None) -> object:
    transaction = object()
    uas.on_request(request or invite(), transaction, PEER)  # type: ignore[arg-type]
    return transaction


def tag_of(uas: Uas) -> str:
    [call] = uas.calls.values()
    return call.tag


async def test_200_answers_with_an_sdp_a_contact_and_a_to_tag_after_the_hook_ran():
    uas = Uas()
    place(uas)
    assert uas.stack.statuses == [200]
    response = uas.stack.responses[0]
    assert response.headers.get("Contact") == "<sip:127.0.0.1:5070>"
    assert response.headers.get("Content-Type") == "application/sdp" and b"m=audio 40000" in response.body
    assert response.to.tag == tag_of(uas)
    assert uas.received == [("c1@test", 0)]  # the hook ran before anything was sent


async def test_ring_ms_rings_first_then_answers():
    uas = Uas(AnswerBehaviour("200", ring_ms=30))
    place(uas)
    assert uas.stack.statuses == [180]
    await asyncio.sleep(0.1)
    assert uas.stack.statuses == [180, 200]


@pytest.mark.parametrize("code", ["486", "503"])
async def test_a_rejection_is_final_and_ends_the_call(code):
    uas = Uas(AnswerBehaviour(code))
    place(uas)
    assert uas.stack.statuses == [int(code)]
    assert uas.stack.responses[0].headers.get("Contact") is None
    assert uas.ended == ["us"]


async def test_ring_rings_for_ever_until_the_caller_cancels():
    uas = Uas(AnswerBehaviour("ring"))
    transaction = place(uas)
    await asyncio.sleep(0.05)
    assert uas.stack.statuses == [180]
    uas.on_cancel(in_dialog("CANCEL", "x"), transaction)  # type: ignore[arg-type]
    assert uas.stack.statuses == [180, 487] and uas.ended == ["cancelled"]


async def test_a_cancel_while_ringing_before_a_200_stops_the_200():
    uas = Uas(AnswerBehaviour("200", ring_ms=30))
    transaction = place(uas)
    uas.on_cancel(in_dialog("CANCEL", "x"), transaction)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert uas.stack.statuses == [180, 487]


async def test_bye_after_sends_a_bye_that_long_after_the_ack():
    uas = Uas(AnswerBehaviour("bye-after", bye_after_s=0.05))
    place(uas)
    tag = tag_of(uas)
    uas.on_request(in_dialog("ACK", tag, seq=1), None, PEER)  # type: ignore[arg-type]
    assert uas.stack.requests == []
    await asyncio.sleep(0.15)
    [(bye, peer)] = uas.stack.requests
    assert bye.method == "BYE" and peer == PEER
    assert str(bye.uri) == "sip:caller@192.0.2.20:5060"  # the caller's Contact
    assert bye.from_.tag == tag and bye.to.tag == "from1"
    assert uas.ended == ["us"]


async def test_a_bye_from_the_caller_is_answered_and_ends_the_call():
    uas = Uas()
    place(uas)
    tag = tag_of(uas)
    uas.on_request(in_dialog("ACK", tag, seq=1), None, PEER)  # type: ignore[arg-type]
    uas.on_request(in_dialog("BYE", tag), object(), PEER)  # type: ignore[arg-type]
    assert uas.stack.statuses == [200, 200] and uas.ended == ["caller"]
    uas.on_request(in_dialog("BYE", "unknown-tag", seq=3), object(), PEER)  # type: ignore[arg-type]
    assert uas.stack.statuses[-1] == 481


async def test_an_unacked_200_is_followed_by_a_bye():
    uas = Uas()
    transaction = place(uas)
    uas.on_ack_timeout(transaction)  # type: ignore[arg-type]
    assert [request.method for request, _ in uas.stack.requests] == ["BYE"]


async def test_options_outside_a_dialog_is_answered_with_allow_and_accept():
    uas = Uas()
    options = parse_message(
        b"OPTIONS sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-o\r\n"
        b"From: <sip:probe@example.com>;tag=p\r\nTo: <sip:127.0.0.1:5070>\r\nCall-ID: o@test\r\n"
        b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    uas.on_request(options, object(), PEER)  # type: ignore[arg-type]
    assert uas.stack.statuses == [200]
    assert "INVITE" in uas.stack.responses[0].headers.get("Allow")
    assert "application/pidf+xml" in uas.stack.responses[0].headers.get("Accept")


async def test_drop_refuses_everything_but_hears_each_new_invite_once():
    uas = Uas(AnswerBehaviour("drop"))
    assert uas.real_stack_accept == uas._accept  # wired into the real stack
    first = invite("d1@test", "z9hG4bK-d1")
    assert uas._accept(first, PEER) is False
    assert uas._accept(invite("d1@test", "z9hG4bK-d1"), PEER) is False  # a retransmission
    assert uas._accept(in_dialog("BYE", "t", call_id="d1@test"), PEER) is False
    assert uas._accept(invite("d2@test", "z9hG4bK-d2"), PEER) is False
    assert uas.dropped == ["d1@test", "d2@test"]
    assert uas.stack.responses == [] and uas.received == []
    uas.set_behaviour(AnswerBehaviour("200"))
    assert uas._accept(invite("d3@test", "z9hG4bK-d3"), PEER) is True


async def test_a_failing_hook_answers_500_and_the_next_call_is_served():
    uas = Uas()
    uas.fail_next = True
    place(uas, invite("f1@test", "z9hG4bK-f1"))
    assert uas.stack.statuses == [500] and uas.ended == ["us"]
    place(uas, invite("f2@test", "z9hG4bK-f2"))
    assert uas.stack.statuses == [500, 200]


async def test_screen_invite_answers_instead_of_the_behaviour_and_makes_no_call():
    uas = Uas()
    request = invite()
    uas.screen = make_response(request, 302, to_tag="r1")
    place(uas, request)
    assert uas.stack.statuses == [302]
    assert uas.calls == {} and uas.received == [] and uas.ended == []


async def test_a_new_behaviour_applies_to_new_calls_only():
    uas = Uas(AnswerBehaviour("200", ring_ms=50))
    place(uas, invite("b1@test", "z9hG4bK-b1"))
    uas.set_behaviour(AnswerBehaviour("503"))
    assert uas.get_behaviour().answer == "503"
    place(uas, invite("b2@test", "z9hG4bK-b2"))
    await asyncio.sleep(0.12)
    assert uas.stack.statuses == [180, 503, 200]
