"""Server transactions through RFC 3261 §17.2 Figures 7 and 8 (plus RFC 6026 and the 2xx
retransmission of §13.3.1.4) with a fake clock."""

from __future__ import annotations

from typing import ClassVar

import pytest

from b2bua.sip import Request, make_response, parse_message
from b2bua.sip.transaction import (
    AckNotReceived,
    InviteServerTransaction,
    NonInviteServerTransaction,
    Peer,
    RequestReceived,
    Send,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailure,
)

UDP = Peer("udp", "client.example", 5060)
TCP = Peer("tcp", "client.example", 5060)


def request(method: str = "INVITE", *, branch: str = "z9hG4bKserver1", to_tag: str | None = None,
            transport: str = "UDP", cseq_method: str | None = None) -> Request:
    to = "<sip:bob@server.example>" + (f";tag={to_tag}" if to_tag else "")
    message = parse_message(
        f"{method} sip:bob@server.example SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} client.example:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@client.example>;tag=alice1\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-2@client.example\r\n"
        f"CSeq: 3 {cseq_method or method}\r\n"
        "Timestamp: 54\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    assert isinstance(message, Request)
    return message


def sent(events) -> list:
    return [event.message for event in events if isinstance(event, Send)]


def kinds(events) -> list[str]:
    return [type(event).__name__ for event in events]


def resend_times(txn, until: float) -> list[float]:
    times = []
    while (deadline := txn.next_timer()) is not None and deadline <= until:
        if sent(txn.handle_timer(deadline)):
            times.append(deadline)
    return times


# -- INVITE server transaction (Figure 7, RFC 6026) -------------------------------------------


def test_100_trying_is_sent_after_200_ms_when_the_tu_is_silent():
    txn = InviteServerTransaction(request(), UDP, now=10.0)
    assert txn.state is TransactionState.PROCEEDING
    assert txn.next_timer() == pytest.approx(10.2)
    events = txn.handle_timer(10.2)
    [trying] = sent(events)
    assert trying.status == 100
    assert trying.to.tag is None  # no tag on a 100 (§8.2.6.2)
    assert trying.headers.get("Timestamp") == "54"
    assert events[0].peer == UDP
    assert txn.next_timer() is None


def test_no_100_trying_when_the_tu_answers_within_200_ms():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    ringing = make_response(txn.request, 180, to_tag="bob1")
    assert txn.respond(ringing, 0.1) == [Send(ringing, UDP)]
    assert txn.next_timer() is None
    assert txn.handle_timer(0.2) == []


def test_retransmitted_invite_gets_the_last_provisional_again():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    txn.respond(make_response(txn.request, 180, to_tag="bob1"), 0.05)
    progress = make_response(txn.request, 183, to_tag="bob1")
    txn.respond(progress, 0.1)
    assert txn.receive(request(), 0.5) == [Send(progress, UDP)]


def test_retransmitted_invite_gets_the_automatic_100_trying_again():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    [trying] = sent(txn.handle_timer(0.2))
    assert txn.receive(request(), 0.5) == [Send(trying, UDP)]


def test_retransmitted_invite_before_any_provisional_is_absorbed():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    assert txn.receive(request(), 0.1) == []


def test_non2xx_final_is_retransmitted_on_timer_g_doubling_capped_at_t2_until_timer_h():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    busy = make_response(txn.request, 486, to_tag="bob1")
    assert txn.respond(busy, 0.0) == [Send(busy, UDP)]
    assert txn.state is TransactionState.COMPLETED
    assert resend_times(txn, until=31.9) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    events = txn.handle_timer(32.0)  # Timer H = 64*T1: the ACK never came
    assert events == [TransactionTimeout(txn), TransactionTerminated(txn)]


def test_retransmitted_invite_in_completed_gets_the_final_again():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    busy = make_response(txn.request, 486, to_tag="bob1")
    txn.respond(busy, 0.0)
    assert txn.receive(request(), 0.3) == [Send(busy, UDP)]


def test_ack_for_a_non2xx_confirms_stays_in_the_transaction_and_timer_i_ends_it():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    txn.respond(make_response(txn.request, 404, to_tag="bob1"), 0.0)
    ack = request("ACK", to_tag="bob1", cseq_method="ACK")
    assert txn.receive(ack, 0.7) == []  # not for the TU
    assert txn.state is TransactionState.CONFIRMED
    assert txn.next_timer() == pytest.approx(5.7)  # Timer I = T4; G and H stopped
    assert txn.receive(ack, 1.0) == []  # ACK retransmissions absorbed
    assert txn.handle_timer(5.7) == [TransactionTerminated(txn)]


def test_non2xx_final_over_a_reliable_transport_is_not_retransmitted_and_timer_i_is_zero():
    txn = InviteServerTransaction(request(transport="TCP"), TCP, now=0.0)
    txn.respond(make_response(txn.request, 486, to_tag="bob1"), 0.0)
    assert txn.next_timer() == 32.0  # Timer H only
    txn.receive(request("ACK", to_tag="bob1", cseq_method="ACK", transport="TCP"), 0.1)
    assert txn.next_timer() == 0.1
    assert txn.handle_timer(0.1) == [TransactionTerminated(txn)]


def test_2xx_is_retransmitted_t1_doubling_capped_at_t2_until_the_ack():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    ok = make_response(txn.request, 200, to_tag="bob1")
    assert txn.respond(ok, 0.0) == [Send(ok, UDP)]
    assert txn.state is TransactionState.ACCEPTED
    assert resend_times(txn, until=12.0) == [0.5, 1.5, 3.5, 7.5, 11.5]
    ack = request("ACK", branch="z9hG4bKack2xx", to_tag="bob1", cseq_method="ACK")
    assert txn.receive(ack, 12.0) == [RequestReceived(ack, None)]
    assert txn.next_timer() == 32.0  # only Timer L left: retransmissions stopped
    assert txn.handle_timer(32.0) == [TransactionTerminated(txn)]  # no AckNotReceived


def test_ack_not_received_after_64_t1_of_2xx_retransmissions():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    txn.respond(make_response(txn.request, 200, to_tag="bob1"), 0.0)
    assert resend_times(txn, until=31.9) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert txn.handle_timer(32.0) == [AckNotReceived(txn), TransactionTerminated(txn)]


def test_2xx_is_retransmitted_on_a_reliable_transport_too():
    # §13.3.1.4: the 2xx retransmission is end to end, independent of the transport.
    txn = InviteServerTransaction(request(transport="TCP"), TCP, now=0.0)
    txn.respond(make_response(txn.request, 200, to_tag="bob1"), 0.0)
    assert resend_times(txn, until=4.0) == [0.5, 1.5, 3.5]


def test_ack_retransmissions_in_accepted_all_reach_the_tu():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    txn.respond(make_response(txn.request, 200, to_tag="bob1"), 0.0)
    ack = request("ACK", branch="z9hG4bKack2xx", to_tag="bob1", cseq_method="ACK")
    txn.receive(ack, 0.1)
    assert txn.receive(ack, 0.2) == [RequestReceived(ack, None)]


def test_invite_retransmission_in_accepted_is_absorbed():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    txn.respond(make_response(txn.request, 200, to_tag="bob1"), 0.0)
    assert txn.receive(request(), 0.3) == []  # RFC 6026 §7.1


def test_the_tus_own_2xx_retransmission_in_accepted_is_sent():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    ok = make_response(txn.request, 200, to_tag="bob1")
    txn.respond(ok, 0.0)
    assert txn.respond(ok, 0.3) == [Send(ok, UDP)]


def test_a_final_after_a_final_is_discarded():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    txn.respond(make_response(txn.request, 486, to_tag="bob1"), 0.0)
    assert txn.respond(make_response(txn.request, 200, to_tag="bob1"), 0.1) == []
    assert txn.state is TransactionState.COMPLETED


def test_transport_error_on_a_server_transaction_is_reported():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    txn.respond(make_response(txn.request, 486, to_tag="bob1"), 0.0)
    assert txn.transport_error(0.1) == [TransportFailure(txn), TransactionTerminated(txn)]


def test_server_transaction_key_has_branch_sent_by_and_method():
    txn = InviteServerTransaction(request(), UDP, now=0.0)
    assert (txn.key.branch, txn.key.method, txn.key.sent_by) == ("z9hG4bKserver1", "INVITE", ("client.example", 5060))


# -- non-INVITE server transaction (Figure 8) ------------------------------------------------


def test_non_invite_retransmission_in_trying_is_absorbed():
    txn = NonInviteServerTransaction(request("OPTIONS"), UDP, now=0.0)
    assert txn.state is TransactionState.TRYING
    assert txn.receive(request("OPTIONS"), 0.5) == []
    assert txn.next_timer() is None  # no 100 Trying for non-INVITE


def test_non_invite_retransmission_in_proceeding_gets_the_last_provisional():
    txn = NonInviteServerTransaction(request("OPTIONS"), UDP, now=0.0)
    trying = make_response(txn.request, 100)
    txn.respond(trying, 0.1)
    assert txn.state is TransactionState.PROCEEDING
    assert txn.receive(request("OPTIONS"), 0.5) == [Send(trying, UDP)]


def test_non_invite_retransmission_in_completed_gets_the_final_and_timer_j_ends_it_after_64_t1():
    txn = NonInviteServerTransaction(request("BYE", to_tag="bob1"), UDP, now=0.0)
    ok = make_response(txn.request, 200)
    assert txn.respond(ok, 1.0) == [Send(ok, UDP)]
    assert txn.state is TransactionState.COMPLETED
    assert txn.receive(request("BYE", to_tag="bob1"), 2.0) == [Send(ok, UDP)]
    assert txn.next_timer() == 33.0
    assert txn.handle_timer(33.0) == [TransactionTerminated(txn)]


def test_non_invite_timer_j_is_zero_on_a_reliable_transport():
    txn = NonInviteServerTransaction(request("OPTIONS", transport="TCP"), TCP, now=0.0)
    txn.respond(make_response(txn.request, 200, to_tag="bob1"), 1.0)
    assert txn.next_timer() == 1.0
    assert txn.handle_timer(1.0) == [TransactionTerminated(txn)]


def test_non_invite_finals_after_the_first_are_discarded():
    txn = NonInviteServerTransaction(request("OPTIONS"), UDP, now=0.0)
    txn.respond(make_response(txn.request, 200, to_tag="bob1"), 0.0)
    assert txn.respond(make_response(txn.request, 500, to_tag="bob1"), 0.1) == []


def test_a_transition_table_naming_a_missing_action_fails_at_class_creation():
    with pytest.raises(TypeError, match="_no_such_action"):
        class Broken(NonInviteServerTransaction):  # noqa: F841
            TRANSITIONS: ClassVar = {(TransactionState.TRYING, "request"): (TransactionState.TRYING, "no_such_action")}
