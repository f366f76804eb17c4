"""The transaction layer: matching (§17.1.3, §17.2.3 and the RFC 2543 fallback), CANCEL
(§9.1, §9.2), merged requests (§8.2.2.2), ACK for 2xx, transport errors, one timer queue."""

from __future__ import annotations

import pytest

from b2bua.sip import Request, Response, make_response, parse_message
from b2bua.sip.transaction import (
    AckNotReceived,
    CancelReceived,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteServerTransaction,
    Peer,
    RequestReceived,
    ResponseReceived,
    Send,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailure,
)

CALLER = Peer("udp", "caller.example", 5060)
ECRC = Peer("udp", "ecrc.example", 5060)
OTHER = Peer("udp", "gateway.example", 5060)


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bKbranch1",
    sent_by: str = "caller.example:5060",
    uri: str = "sip:911@b2bua.example",
    from_tag: str = "caller1",
    to_tag: str | None = None,
    call_id: str = "call-3@caller.example",
    cseq: int = 1,
    cseq_method: str | None = None,
) -> Request:
    via = f"SIP/2.0/UDP {sent_by}" + (f";branch={branch}" if branch else "")
    to = "<sip:911@b2bua.example>" + (f";tag={to_tag}" if to_tag else "")
    message = parse_message(
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:caller@caller.example>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    assert isinstance(message, Request)
    return message


def reply(req: Request, status: int, to_tag: str | None = "ecrc1") -> Response:
    response = parse_message(make_response(req, status, to_tag=to_tag).to_bytes())
    assert isinstance(response, Response)
    return response


def sent(events) -> list:
    return [event.message for event in events if isinstance(event, Send)]


def kinds(events) -> list[str]:
    return [type(event).__name__ for event in events]


def run_until(layer: TransactionLayer, until: float) -> list:
    events = []
    while (deadline := layer.next_timer()) is not None and deadline <= until:
        events += layer.handle_timer(deadline)
    return events


def new_invite_server(layer: TransactionLayer, **fields) -> InviteServerTransaction:
    [event] = layer.receive(request(**fields), CALLER, 0.0)
    assert isinstance(event, RequestReceived)
    assert isinstance(event.transaction, InviteServerTransaction)
    return event.transaction


# -- client side -----------------------------------------------------------------------------


def test_response_is_matched_to_its_client_transaction_by_branch_and_cseq_method():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, events = layer.send_request(invite, ECRC, 0.0)
    assert events == [Send(invite, ECRC)]
    ringing = reply(invite, 180)
    assert layer.receive(ringing, ECRC, 0.1) == [ResponseReceived(ringing, txn)]


def test_response_with_an_unknown_branch_goes_to_the_tu_without_a_transaction():
    layer = TransactionLayer()
    layer.send_request(request(branch="z9hG4bKout1"), ECRC, 0.0)
    stray = reply(request(branch="z9hG4bKother"), 200)
    assert layer.receive(stray, ECRC, 0.1) == [ResponseReceived(stray, None)]


def test_response_with_the_right_branch_but_another_cseq_method_does_not_match():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    layer.send_request(invite, ECRC, 0.0)
    cancel_reply = reply(request("CANCEL", branch="z9hG4bKout1"), 200)
    assert layer.receive(cancel_reply, ECRC, 0.1) == [ResponseReceived(cancel_reply, None)]


def test_stray_2xx_after_timer_m_reaches_the_tu_to_be_acked_again():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    layer.send_request(invite, ECRC, 0.0)
    layer.receive(reply(invite, 200), ECRC, 0.1)
    assert kinds(run_until(layer, 40.0)) == ["TransactionTerminated"]  # Timer M
    late = reply(invite, 200)
    assert layer.receive(late, ECRC, 41.0) == [ResponseReceived(late, None)]


def test_send_request_refuses_an_ack_and_a_request_without_a_magic_cookie_branch():
    layer = TransactionLayer()
    with pytest.raises(ValueError):
        layer.send_request(request("ACK", to_tag="x"), ECRC, 0.0)
    with pytest.raises(ValueError):
        layer.send_request(request(branch="oldstyle"), ECRC, 0.0)


def test_send_request_refuses_a_branch_already_in_use():
    layer = TransactionLayer()
    layer.send_request(request(branch="z9hG4bKsame"), ECRC, 0.0)
    with pytest.raises(ValueError):
        layer.send_request(request(branch="z9hG4bKsame"), ECRC, 0.0)


def test_transport_error_fails_every_client_transaction_to_that_peer_at_once():
    layer = TransactionLayer()
    first, _ = layer.send_request(request(branch="z9hG4bKa"), ECRC, 0.0)
    second, _ = layer.send_request(request("OPTIONS", branch="z9hG4bKb"), ECRC, 0.0)
    elsewhere, _ = layer.send_request(request(branch="z9hG4bKc"), OTHER, 0.0)
    events = layer.transport_error(ECRC, 0.01)
    assert [e for e in events if isinstance(e, TransportFailure)] == [TransportFailure(first), TransportFailure(second)]
    assert kinds(events).count("TransactionTerminated") == 2
    assert layer.transactions == [elsewhere]
    assert elsewhere.state is TransactionState.CALLING


def test_transport_error_skips_transactions_that_ended_and_fails_later_ones_to_that_peer():
    layer = TransactionLayer()
    layer.send_request(request(branch="z9hG4bKold"), ECRC, 0.0)
    run_until(layer, 32.0)  # Timer B: gone
    assert layer.transport_error(ECRC, 32.1) == []
    assert layer._clients_at == {}  # nothing kept for a peer once its transactions ended
    later, _ = layer.send_request(request(branch="z9hG4bKnew"), ECRC, 40.0)
    elsewhere, _ = layer.send_request(request(branch="z9hG4bKother"), OTHER, 40.0)
    events = layer.transport_error(ECRC, 40.1)
    assert [e for e in events if isinstance(e, TransportFailure)] == [TransportFailure(later)]
    assert layer.transactions == [elsewhere]


def test_transport_error_fails_a_cancel_outstanding_at_that_peer():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    layer.receive(reply(invite, 183), ECRC, 0.3)
    layer.cancel(txn, 0.4)
    failed = [e.transaction.method for e in layer.transport_error(ECRC, 0.5) if isinstance(e, TransportFailure)]
    assert failed == ["CANCEL"]  # the INVITE in Proceeding waits for its final response (§17.1.1.2)


def test_timer_b_through_the_layer_yields_timeout_at_64_t1_and_forgets_the_transaction():
    layer = TransactionLayer()
    txn, _ = layer.send_request(request(branch="z9hG4bKa"), ECRC, 0.0)
    events = run_until(layer, 31.9)
    assert len(sent(events)) == 6  # Timer A retransmissions
    assert layer.next_timer() == 32.0
    assert layer.handle_timer(32.0) == [TransactionTimeout(txn), TransactionTerminated(txn)]
    assert layer.transactions == []
    assert layer.next_timer() is None


def test_layer_next_timer_is_the_earliest_of_all_transactions():
    layer = TransactionLayer()
    layer.send_request(request(branch="z9hG4bKa"), ECRC, 0.0)
    layer.send_request(request("OPTIONS", branch="z9hG4bKb"), ECRC, 0.2)
    assert layer.next_timer() == 0.5
    layer.handle_timer(0.5)
    assert layer.next_timer() == pytest.approx(0.7)


# -- CANCEL on the client side (§9.1) -----------------------------------------------------------


def test_cancel_is_queued_until_the_first_provisional_then_sent():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    assert layer.cancel(txn, 0.1) == []  # §9.1: not before a provisional
    events = layer.receive(reply(invite, 180), ECRC, 0.3)
    assert kinds(events) == ["ResponseReceived", "Send"]
    cancel = events[1].message
    assert events[1].peer == ECRC
    assert cancel.method == "CANCEL"
    assert str(cancel.uri) == str(invite.uri)
    assert len(cancel.via) == 1 and cancel.top_via.branch == "z9hG4bKout1"
    assert (cancel.cseq.seq, cancel.cseq.method) == (1, "CANCEL")
    assert cancel.to.tag is None  # To as in the INVITE, not the 180's
    assert (cancel.call_id, cancel.from_.tag) == (invite.call_id, invite.from_.tag)
    assert parse_message(cancel.to_bytes()).method == "CANCEL"


def test_cancel_is_sent_at_once_when_a_provisional_already_arrived():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    layer.receive(reply(invite, 183), ECRC, 0.3)
    [cancel] = sent(layer.cancel(txn, 0.4))
    assert cancel.method == "CANCEL"
    ok = reply(cancel, 200)
    [event] = layer.receive(ok, ECRC, 0.5)
    assert isinstance(event, ResponseReceived) and event.transaction.request is cancel


def test_cancel_copies_the_route_of_the_invite():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    invite.headers.add("Route", "<sip:sbc1.example;lr>")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    layer.receive(reply(invite, 180), ECRC, 0.1)
    [cancel] = sent(layer.cancel(txn, 0.2))
    assert [str(r.uri) for r in cancel.route] == ["sip:sbc1.example;lr"]


def test_queued_cancel_is_dropped_when_a_final_arrives_first():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    layer.cancel(txn, 0.1)
    events = layer.receive(reply(invite, 200), ECRC, 0.3)
    assert kinds(events) == ["ResponseReceived"]  # the TU ACKs and BYEs the 2xx itself
    late = layer.receive(reply(invite, 180), ECRC, 0.4)  # a late provisional releases nothing
    later = run_until(layer, 40.0)
    assert not any(isinstance(m, Request) and m.method == "CANCEL" for m in sent(late + later))
    assert layer.transactions == []


def test_cancel_is_asked_twice_but_sent_once():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    layer.receive(reply(invite, 180), ECRC, 0.1)
    assert len(sent(layer.cancel(txn, 0.2))) == 1
    assert layer.cancel(txn, 0.3) == []


def test_invite_is_given_up_64_t1_after_its_cancel_when_no_final_comes():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    layer.receive(reply(invite, 180), ECRC, 1.0)
    [cancel] = sent(layer.cancel(txn, 2.0))
    layer.receive(reply(cancel, 200), ECRC, 2.1)
    events = run_until(layer, 34.0)
    assert TransactionTimeout(txn) in events
    assert txn.state is TransactionState.TERMINATED


# -- server side -----------------------------------------------------------------------------------


def test_new_request_creates_a_server_transaction_and_reaches_the_tu():
    layer = TransactionLayer()
    invite = request()
    [event] = layer.receive(invite, CALLER, 0.0)
    assert event.request is invite
    assert isinstance(event.transaction, InviteServerTransaction)
    assert event.transaction.peer == CALLER
    [event] = layer.receive(request("OPTIONS", branch="z9hG4bKopt"), CALLER, 0.0)
    assert isinstance(event.transaction, NonInviteServerTransaction)


def test_100_trying_through_the_layer_after_200_ms():
    layer = TransactionLayer()
    new_invite_server(layer)
    assert layer.next_timer() == pytest.approx(0.2)
    [trying] = sent(layer.handle_timer(0.2))
    assert trying.status == 100


def test_retransmitted_request_matches_by_branch_sent_by_and_method():
    layer = TransactionLayer()
    txn = new_invite_server(layer)
    ringing = make_response(txn.request, 180, to_tag="b2b1")
    layer.respond(txn, ringing, 0.1)
    assert layer.receive(request(), CALLER, 0.5) == [Send(ringing, CALLER)]


def test_same_branch_from_another_sent_by_is_a_new_transaction():
    layer = TransactionLayer()
    new_invite_server(layer)
    [event] = layer.receive(request(sent_by="other.example:5060", call_id="call-x"), CALLER, 0.1)
    assert isinstance(event, RequestReceived)


def test_ack_for_a_non2xx_matches_the_invite_server_transaction_and_stays_there():
    layer = TransactionLayer()
    txn = new_invite_server(layer)
    layer.respond(txn, make_response(txn.request, 486, to_tag="b2b1"), 0.1)
    ack = request("ACK", to_tag="b2b1", cseq_method="ACK")
    assert layer.receive(ack, CALLER, 0.2) == []
    assert txn.state is TransactionState.CONFIRMED


def test_ack_for_a_2xx_with_a_new_branch_stops_the_2xx_retransmission_and_reaches_the_tu():
    layer = TransactionLayer()
    txn = new_invite_server(layer)
    layer.respond(txn, make_response(txn.request, 200, to_tag="b2b1"), 0.1)
    assert len(sent(run_until(layer, 2.0))) == 2  # 0.6 and 1.6
    ack = request("ACK", branch="z9hG4bKack", to_tag="b2b1", cseq_method="ACK")
    assert layer.receive(ack, CALLER, 2.0) == [RequestReceived(ack, None)]
    events = run_until(layer, 40.0)
    assert events == [TransactionTerminated(txn)]  # Timer L; no more 2xx, no AckNotReceived


def test_2xx_without_ack_through_the_layer_yields_ack_not_received():
    layer = TransactionLayer()
    txn = new_invite_server(layer)
    layer.respond(txn, make_response(txn.request, 200, to_tag="b2b1"), 0.0)
    events = run_until(layer, 40.0)
    assert events[-2:] == [AckNotReceived(txn), TransactionTerminated(txn)]
    assert layer.transactions == []


def test_ack_matching_no_transaction_reaches_the_tu_without_one():
    layer = TransactionLayer()
    ack = request("ACK", branch="z9hG4bKlate", to_tag="gone", cseq_method="ACK")
    assert layer.receive(ack, CALLER, 0.0) == [RequestReceived(ack, None)]
    assert layer.transactions == []


def test_merged_request_is_answered_482_by_the_layer():
    layer = TransactionLayer()
    new_invite_server(layer, branch="z9hG4bKfork1")
    merged = request(branch="z9hG4bKfork2", sent_by="proxy.example:5060")  # same From tag, Call-ID, CSeq
    events = layer.receive(merged, Peer("udp", "proxy.example", 5060), 0.1)
    [loop] = sent(events)
    assert loop.status == 482
    assert loop.to.tag  # a final carries a To tag
    assert not any(isinstance(e, RequestReceived) for e in events)
    # its retransmission gets the 482 again, in the same transaction
    assert sent(layer.receive(merged, Peer("udp", "proxy.example", 5060), 0.6)) == [loop]


def test_request_with_a_to_tag_is_never_treated_as_merged():
    layer = TransactionLayer()
    new_invite_server(layer, to_tag="b2b1", branch="z9hG4bKreinv1")
    [event] = layer.receive(request(to_tag="b2b1", branch="z9hG4bKreinv2", sent_by="p.example"), CALLER, 0.1)
    assert isinstance(event, RequestReceived)


def test_terminated_server_transactions_are_removed_from_the_tables():
    layer = TransactionLayer()
    [event] = layer.receive(request("OPTIONS", branch="z9hG4bKopt"), CALLER, 0.0)
    layer.respond(event.transaction, make_response(event.transaction.request, 200, to_tag="t"), 0.0)
    assert run_until(layer, 40.0) == [TransactionTerminated(event.transaction)]
    assert layer.transactions == []
    # a late retransmission is a new request now (Timer J has passed)
    [again] = layer.receive(request("OPTIONS", branch="z9hG4bKopt"), CALLER, 41.0)
    assert isinstance(again, RequestReceived)


# -- CANCEL on the server side (§9.2) ---------------------------------------------------------------


def test_cancel_is_answered_200_by_the_layer_and_the_tu_is_told_to_send_487():
    layer = TransactionLayer()
    txn = new_invite_server(layer)
    layer.respond(txn, make_response(txn.request, 180, to_tag="b2b1"), 0.1)
    cancel = request("CANCEL")
    events = layer.receive(cancel, CALLER, 0.5)
    assert kinds(events) == ["Send", "CancelReceived"]
    ok = events[0].message
    assert (ok.status, ok.cseq.method) == (200, "CANCEL")
    assert ok.to.tag == "b2b1"  # §9.2: the To tag of the INVITE's responses
    assert events[1] == CancelReceived(cancel, txn)
    terminated = make_response(txn.request, 487, to_tag="b2b1")
    assert layer.respond(txn, terminated, 0.6) == [Send(terminated, CALLER)]


def test_retransmitted_cancel_gets_the_same_200_without_a_second_cancel_received():
    layer = TransactionLayer()
    new_invite_server(layer)
    [ok] = sent(layer.receive(request("CANCEL"), CALLER, 0.1))
    assert layer.receive(request("CANCEL"), CALLER, 0.6) == [Send(ok, CALLER)]


def test_cancel_matching_no_transaction_gets_481():
    layer = TransactionLayer()
    events = layer.receive(request("CANCEL", branch="z9hG4bKnothing"), CALLER, 0.0)
    [answer] = sent(events)
    assert answer.status == 481
    assert kinds(events) == ["Send"]


def test_cancel_after_the_final_response_gets_200_and_has_no_effect():
    layer = TransactionLayer()
    txn = new_invite_server(layer)
    layer.respond(txn, make_response(txn.request, 200, to_tag="b2b1"), 0.1)
    events = layer.receive(request("CANCEL"), CALLER, 0.2)
    assert [m.status for m in sent(events)] == [200]
    assert not any(isinstance(e, CancelReceived) for e in events)


def test_cancel_of_a_non_invite_gets_200_and_has_no_effect():
    layer = TransactionLayer()
    layer.receive(request("OPTIONS", branch="z9hG4bKopt"), CALLER, 0.0)
    events = layer.receive(request("CANCEL", branch="z9hG4bKopt"), CALLER, 0.1)
    assert [m.status for m in sent(events)] == [200]
    assert kinds(events) == ["Send"]


def test_cancel_with_another_branch_does_not_match_the_invite():
    layer = TransactionLayer()
    new_invite_server(layer)
    [answer] = sent(layer.receive(request("CANCEL", branch="z9hG4bKwrong"), CALLER, 0.1))
    assert answer.status == 481


# -- RFC 2543 fallback matching (§17.2.3) ----------------------------------------------------------


def test_rfc2543_invite_retransmission_is_matched_without_a_branch():
    layer = TransactionLayer()
    txn = new_invite_server(layer, branch=None)
    ringing = make_response(txn.request, 180, to_tag="b2b1")
    layer.respond(txn, ringing, 0.1)
    assert layer.receive(request(branch=None), CALLER, 0.5) == [Send(ringing, CALLER)]


def test_rfc2543_request_with_another_cseq_is_a_new_transaction():
    layer = TransactionLayer()
    new_invite_server(layer, branch=None)
    [event] = layer.receive(request(branch=None, cseq=2, to_tag="b2b1"), CALLER, 0.5)
    assert isinstance(event, RequestReceived)


def test_rfc2543_ack_matches_by_the_to_tag_of_our_response():
    layer = TransactionLayer()
    txn = new_invite_server(layer, branch=None)
    layer.respond(txn, make_response(txn.request, 486, to_tag="b2b1"), 0.1)
    wrong_tag = request("ACK", branch=None, to_tag="other", cseq_method="ACK")
    assert layer.receive(wrong_tag, CALLER, 0.2) == [RequestReceived(wrong_tag, None)]
    assert txn.state is TransactionState.COMPLETED
    assert layer.receive(request("ACK", branch=None, to_tag="b2b1", cseq_method="ACK"), CALLER, 0.3) == []
    assert txn.state is TransactionState.CONFIRMED


def test_rfc2543_ack_for_a_2xx_stops_the_retransmission():
    layer = TransactionLayer()
    txn = new_invite_server(layer, branch=None)
    layer.respond(txn, make_response(txn.request, 200, to_tag="b2b1"), 0.1)
    ack = request("ACK", branch=None, to_tag="b2b1", cseq_method="ACK")
    assert layer.receive(ack, CALLER, 0.2) == [RequestReceived(ack, None)]
    assert txn.ack_received


def test_rfc2543_cancel_finds_its_invite():
    layer = TransactionLayer()
    txn = new_invite_server(layer, branch=None)
    cancel = request("CANCEL", branch=None)
    events = layer.receive(cancel, CALLER, 0.1)
    assert events[-1] == CancelReceived(cancel, txn)


def test_rfc2543_request_with_another_request_uri_does_not_match():
    layer = TransactionLayer()
    new_invite_server(layer, branch=None)
    [event] = layer.receive(request(branch=None, uri="sip:933@b2bua.example", call_id="c9"), CALLER, 0.1)
    assert isinstance(event, RequestReceived)


def test_peer_normalises_transport_case_and_ipv6_brackets():
    peer = Peer("TLS", "[2001:DB8::1]", 5061)
    assert (peer.transport, peer.host, peer.reliable) == ("tls", "2001:db8::1", True)
    assert peer == Peer("tls", "2001:db8::1", 5061)
    assert not Peer("udp", "h", 5060).reliable
    with pytest.raises(ValueError):
        Peer("sctp", "h", 5060)


def test_invite_client_transaction_through_the_layer_acks_a_487():
    layer = TransactionLayer()
    invite = request(branch="z9hG4bKout1")
    txn, _ = layer.send_request(invite, ECRC, 0.0)
    assert isinstance(txn, InviteClientTransaction)
    layer.receive(reply(invite, 180), ECRC, 0.1)
    layer.cancel(txn, 0.2)
    events = layer.receive(reply(invite, 487), ECRC, 0.3)
    assert [m.method for m in sent(events)] == ["ACK"]
    assert sent(events)[0].top_via.branch == "z9hG4bKout1"
