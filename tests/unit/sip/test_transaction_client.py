"""Client transactions through RFC 3261 §17.1 Figures 5 and 6 (plus RFC 6026) with a fake clock."""

from __future__ import annotations

import pytest

from b2bua.sip import Request, make_response, parse_message
from b2bua.sip.transaction import (
    InviteClientTransaction,
    NonInviteClientTransaction,
    Peer,
    ResponseReceived,
    Send,
    TimerConfig,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailure,
)

UDP = Peer("udp", "server.example", 5060)
TCP = Peer("tcp", "server.example", 5060)


def request(method: str = "INVITE", *, branch: str = "z9hG4bKclient1", transport: str = "UDP") -> Request:
    message = parse_message(
        f"{method} sip:bob@server.example SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} client.example:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "Route: <sip:proxy.example;lr>\r\n"
        "From: \"Alice\" <sip:alice@client.example>;tag=alice1\r\n"
        "To: <sip:bob@server.example>\r\n"
        "Call-ID: call-1@client.example\r\n"
        f"CSeq: 7 {method}\r\n"
        "Contact: <sip:alice@192.0.2.1:5060>\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    assert isinstance(message, Request)
    return message


def response(req: Request, status: int, to_tag: str | None = "bob1"):
    # Round-trip through bytes: what the client sees is what came over the wire.
    return parse_message(make_response(req, status, to_tag=to_tag).to_bytes())


def sent(events) -> list:
    return [event.message for event in events if isinstance(event, Send)]


def kinds(events) -> list[str]:
    return [type(event).__name__ for event in events]


def retransmission_times(txn, until: float) -> list[float]:
    """Run the fake clock from timer to timer; the times at which the request went out again."""
    times = []
    while (deadline := txn.next_timer()) is not None and deadline <= until:
        if any(message is txn.request for message in sent(txn.handle_timer(deadline))):
            times.append(deadline)
    return times


# -- INVITE client transaction (Figure 5) ----------------------------------------------------


def test_invite_client_sends_the_invite_on_start_and_waits_in_calling():
    txn = InviteClientTransaction(request(), UDP)
    events = txn.start(0.0)
    assert events == [Send(txn.request, UDP)]
    assert txn.state is TransactionState.CALLING
    assert txn.next_timer() == 0.5  # Timer A = T1


def test_timer_a_retransmits_the_invite_at_t1_doubling_until_timer_b():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    # intervals 0.5, 1, 2, 4, 8, 16 (Timer A is not capped, §17.1.1.2)
    assert retransmission_times(txn, until=40.0) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]


def test_timer_b_yields_transaction_timeout_at_exactly_64_t1():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    retransmission_times(txn, until=31.999)
    assert txn.state is TransactionState.CALLING
    assert txn.next_timer() == 32.0
    events = txn.handle_timer(32.0)
    assert kinds(events) == ["TransactionTimeout", "TransactionTerminated"]
    assert events[0] == TransactionTimeout(txn)
    assert txn.state is TransactionState.TERMINATED
    assert txn.next_timer() is None


def test_timer_b_follows_a_configured_t1():
    txn = InviteClientTransaction(request(), TCP, TimerConfig(t1=0.1))
    txn.start(10.0)
    assert txn.next_timer() == pytest.approx(16.4)
    assert kinds(txn.handle_timer(16.4)) == ["TransactionTimeout", "TransactionTerminated"]


def test_invite_over_a_reliable_transport_is_not_retransmitted_and_times_out_at_64_t1():
    txn = InviteClientTransaction(request(transport="TCP"), TCP)
    txn.start(0.0)
    assert txn.next_timer() == 32.0  # only Timer B
    assert kinds(txn.handle_timer(32.0)) == ["TransactionTimeout", "TransactionTerminated"]


def test_provisional_moves_to_proceeding_stops_retransmissions_and_reaches_the_tu():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    ringing = response(txn.request, 180)
    assert txn.receive(ringing, 0.2) == [ResponseReceived(ringing, txn)]
    assert txn.state is TransactionState.PROCEEDING
    assert txn.next_timer() is None  # neither A nor B in Proceeding
    again = response(txn.request, 183)
    assert txn.receive(again, 0.3) == [ResponseReceived(again, txn)]


def test_non2xx_final_is_acked_inside_the_transaction_with_the_same_branch():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    busy = response(txn.request, 486)
    events = txn.receive(busy, 0.1)
    assert kinds(events) == ["Send", "ResponseReceived"]
    ack = events[0].message
    assert events[0].peer == UDP
    # §17.1.1.3: same Request-URI, single Via equal to the INVITE's top Via, To of the
    # response, CSeq number of the INVITE with method ACK, the INVITE's Route.
    assert ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@server.example"
    assert len(ack.via) == 1 and ack.top_via.branch == "z9hG4bKclient1"
    assert ack.to.tag == "bob1"
    assert ack.from_.tag == "alice1"
    assert ack.call_id == "call-1@client.example"
    assert (ack.cseq.seq, ack.cseq.method) == (7, "ACK")
    assert [str(route.uri) for route in ack.route] == ["sip:proxy.example;lr"]
    assert parse_message(ack.to_bytes()).method == "ACK"  # well-formed on the wire
    assert txn.state is TransactionState.COMPLETED


def test_retransmitted_non2xx_final_is_acked_again_but_not_passed_to_the_tu():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    busy = response(txn.request, 486)
    first_ack = sent(txn.receive(busy, 0.1))[0]
    events = txn.receive(response(txn.request, 486), 0.6)
    assert events == [Send(first_ack, UDP)]


def test_timer_d_waits_32_seconds_on_udp_then_terminates():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    txn.receive(response(txn.request, 180), 0.1)
    txn.receive(response(txn.request, 503), 1.0)
    assert txn.next_timer() == 33.0
    assert txn.handle_timer(32.9) == []
    assert txn.handle_timer(33.0) == [TransactionTerminated(txn)]


def test_timer_d_is_zero_on_a_reliable_transport():
    txn = InviteClientTransaction(request(transport="TCP"), TCP)
    txn.start(0.0)
    txn.receive(response(txn.request, 404), 1.0)
    assert txn.next_timer() == 1.0
    assert txn.handle_timer(1.0) == [TransactionTerminated(txn)]


def test_2xx_moves_to_accepted_and_reaches_the_tu_without_an_ack_from_the_transaction():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    ok = response(txn.request, 200)
    assert txn.receive(ok, 0.3) == [ResponseReceived(ok, txn)]  # the TU ACKs a 2xx (§13.2.2.4)
    assert txn.state is TransactionState.ACCEPTED


def test_2xx_retransmissions_in_accepted_reach_the_tu_so_it_acks_again():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    txn.receive(response(txn.request, 200), 0.3)
    again = response(txn.request, 200)
    assert txn.receive(again, 0.8) == [ResponseReceived(again, txn)]  # RFC 6026 §7.2


def test_timer_m_ends_the_accepted_state_after_64_t1():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    txn.receive(response(txn.request, 200), 1.0)
    assert txn.next_timer() == 33.0
    assert txn.handle_timer(33.0) == [TransactionTerminated(txn)]


def test_late_responses_after_termination_are_ignored():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    txn.handle_timer(32.0)
    assert txn.receive(response(txn.request, 200), 33.0) == []


def test_transport_error_in_calling_yields_transport_failure_at_once():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    events = txn.transport_error(0.01)
    assert events == [TransportFailure(txn), TransactionTerminated(txn)]
    assert txn.next_timer() is None


def test_transport_error_in_proceeding_is_not_a_failure_of_the_invite():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    txn.receive(response(txn.request, 180), 0.1)
    assert txn.transport_error(0.2) == []
    assert txn.state is TransactionState.PROCEEDING


def test_starting_a_client_transaction_twice_is_an_error():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    with pytest.raises(RuntimeError):
        txn.start(0.1)


def test_client_transaction_key_is_branch_and_method():
    txn = InviteClientTransaction(request(), UDP)
    assert (txn.key.branch, txn.key.method) == ("z9hG4bKclient1", "INVITE")


# -- non-INVITE client transaction (Figure 6) ------------------------------------------------


def test_timer_e_doubles_from_t1_and_is_capped_at_t2():
    txn = NonInviteClientTransaction(request("OPTIONS"), UDP)
    txn.start(0.0)
    # intervals 0.5, 1, 2, 4, 4, 4 ... (T2 = 4)
    assert retransmission_times(txn, until=20.0) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]


def test_timer_e_is_t2_after_a_provisional():
    txn = NonInviteClientTransaction(request("BYE"), UDP)
    txn.start(0.0)
    txn.handle_timer(0.5)  # next E at 1.5 (interval 1)
    txn.receive(response(txn.request, 100), 0.7)
    assert txn.state is TransactionState.PROCEEDING
    assert txn.next_timer() == 1.5  # the pending E still fires...
    assert sent(txn.handle_timer(1.5)) == [txn.request]
    assert txn.next_timer() == 5.5  # ...then every T2 (§17.1.2.2)
    assert retransmission_times(txn, until=14.0) == [5.5, 9.5, 13.5]


def test_timer_f_yields_transaction_timeout_at_64_t1():
    txn = NonInviteClientTransaction(request("OPTIONS"), UDP)
    txn.start(0.0)
    retransmission_times(txn, until=31.9)
    events = txn.handle_timer(32.0)
    assert events == [TransactionTimeout(txn), TransactionTerminated(txn)]


def test_timer_f_fires_in_proceeding_too():
    txn = NonInviteClientTransaction(request("OPTIONS"), UDP)
    txn.start(0.0)
    txn.receive(response(txn.request, 180), 0.1)
    retransmission_times(txn, until=31.9)
    assert kinds(txn.handle_timer(32.0)) == ["TransactionTimeout", "TransactionTerminated"]


def test_final_response_completes_and_timer_k_waits_t4_on_udp():
    txn = NonInviteClientTransaction(request("OPTIONS"), UDP)
    txn.start(0.0)
    ok = response(txn.request, 200)
    assert txn.receive(ok, 0.2) == [ResponseReceived(ok, txn)]
    assert txn.state is TransactionState.COMPLETED
    assert txn.next_timer() == pytest.approx(5.2)
    assert txn.handle_timer(5.2) == [TransactionTerminated(txn)]


def test_retransmitted_final_is_absorbed_in_completed():
    txn = NonInviteClientTransaction(request("OPTIONS"), UDP)
    txn.start(0.0)
    txn.receive(response(txn.request, 200), 0.2)
    assert txn.receive(response(txn.request, 200), 0.6) == []


def test_non_invite_over_a_reliable_transport_is_not_retransmitted_and_timer_k_is_zero():
    txn = NonInviteClientTransaction(request("OPTIONS", transport="TCP"), TCP)
    txn.start(0.0)
    assert txn.next_timer() == 32.0  # Timer F only, no E
    txn.receive(response(txn.request, 200), 0.2)
    assert txn.next_timer() == 0.2
    assert txn.handle_timer(0.2) == [TransactionTerminated(txn)]


@pytest.mark.parametrize("provisional_first", [False, True])
def test_transport_error_fails_a_non_invite_in_trying_and_proceeding(provisional_first):
    txn = NonInviteClientTransaction(request("OPTIONS"), UDP)
    txn.start(0.0)
    if provisional_first:
        txn.receive(response(txn.request, 100), 0.1)
    assert txn.transport_error(0.2) == [TransportFailure(txn), TransactionTerminated(txn)]


def test_a_late_handle_timer_fires_due_timers_in_deadline_order():
    txn = InviteClientTransaction(request(), UDP)
    txn.start(0.0)
    events = txn.handle_timer(40.0)  # woken late: A fires once, then B ends it
    assert kinds(events) == ["Send", "TransactionTimeout", "TransactionTerminated"]
