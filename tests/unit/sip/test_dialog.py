"""Dialogs (RFC 3261 §12, §13.2.2.4): creation on both sides, route sets with loose and strict
routers, CSeq rules, target refresh, and the dialog table's 481."""

from __future__ import annotations

import pytest

from b2bua.sip import Request, Response, make_response, parse_message
from b2bua.sip.dialog import Dialog, DialogId, DialogTable

INVITE = (
    b"INVITE sip:911@b2bua.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP proxy2.example:5060;branch=z9hG4bKp2\r\n"
    b"Via: SIP/2.0/UDP caller.example:5060;branch=z9hG4bKc1\r\n"
    b"Max-Forwards: 69\r\n"
    b"Record-Route: <sip:proxy2.example;lr>\r\n"
    b"Record-Route: <sip:proxy1.example;lr>\r\n"
    b"From: \"Caller\" <sip:caller@caller.example>;tag=caller1\r\n"
    b"To: <sip:911@b2bua.example>\r\n"
    b"Call-ID: dlg-1@caller.example\r\n"
    b"CSeq: 10 INVITE\r\n"
    b"Contact: <sip:caller@192.0.2.10:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def invite() -> Request:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    return message


def answer(req: Request, status: int = 200, *, contact: str = "<sip:ecrc@198.51.100.7:5070>",
           record_route: list[str] | None = None, to_tag: str = "ecrc1") -> Response:
    response = make_response(req, status, to_tag=to_tag)
    response.headers.remove("Record-Route")
    for value in record_route if record_route is not None else []:
        response.headers.add("Record-Route", value)
    response.headers.add("Contact", contact)
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    return parsed


def in_dialog(method: str, cseq: int, *, contact: str | None = None, to_tag: str = "b2b1",
              from_tag: str = "caller1", call_id: str = "dlg-1@caller.example") -> Request:
    contact_line = f"Contact: {contact}\r\n" if contact else ""
    message = parse_message(
        f"{method} sip:b2bua@203.0.113.5 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP caller.example:5060;branch=z9hG4bKin\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:caller@caller.example>;tag={from_tag}\r\n"
        f"To: <sip:911@b2bua.example>;tag={to_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"{contact_line}"
        "Content-Length: 0\r\n\r\n".encode()
    )
    assert isinstance(message, Request)
    return message


def uac_dialog(record_route: list[str] | None = None) -> Dialog:
    req = invite()
    return Dialog.for_uac(req, answer(req, record_route=record_route))


# -- creation ---------------------------------------------------------------------------------------


def test_uac_dialog_from_a_2xx_takes_ids_target_and_reversed_record_route():
    req = invite()
    dialog = Dialog.for_uac(req, answer(req, record_route=["<sip:edge.example;lr>", "<sip:core.example;lr>"]))
    assert dialog.id == DialogId("dlg-1@caller.example", "caller1", "ecrc1")
    assert str(dialog.local_uri) == "sip:caller@caller.example"
    assert str(dialog.remote_uri) == "sip:911@b2bua.example"
    assert (dialog.local_seq, dialog.remote_seq) == (10, None)
    assert str(dialog.remote_target) == "sip:ecrc@198.51.100.7:5070"
    assert [str(r.uri) for r in dialog.route_set] == ["sip:core.example;lr", "sip:edge.example;lr"]
    assert dialog.state == "confirmed"
    assert not dialog.secure


def test_uac_early_dialog_from_a_180_is_confirmed_by_the_2xx_which_recomputes_the_route_set():
    req = invite()
    dialog = Dialog.for_uac(req, answer(req, 180, record_route=["<sip:early.example;lr>"]))
    assert dialog.early
    final = answer(req, 200, contact="<sip:ecrc@198.51.100.8>", record_route=["<sip:final.example;lr>"])
    dialog.receive_response(req, final)
    assert dialog.state == "confirmed"
    assert [str(r.uri) for r in dialog.route_set] == ["sip:final.example;lr"]  # §13.2.2.4
    assert str(dialog.remote_target) == "sip:ecrc@198.51.100.8"


def test_a_100_or_a_response_without_to_tag_makes_no_dialog():
    req = invite()
    with pytest.raises(ValueError):
        Dialog.for_uac(req, parse_message(make_response(req, 100).to_bytes()))
    with pytest.raises(ValueError):
        Dialog.for_uac(req, parse_message(make_response(req, 180).to_bytes()))


def test_uas_dialog_from_the_request_keeps_record_route_in_order():
    dialog = Dialog.for_uas(invite(), "b2b1")
    assert dialog.id == DialogId("dlg-1@caller.example", "b2b1", "caller1")
    assert (dialog.local_seq, dialog.remote_seq) == (None, 10)
    assert str(dialog.remote_target) == "sip:caller@192.0.2.10:5060"
    assert [str(r.uri) for r in dialog.route_set] == ["sip:proxy2.example;lr", "sip:proxy1.example;lr"]
    assert str(dialog.local_uri) == "sip:911@b2bua.example"
    assert str(dialog.remote_uri) == "sip:caller@caller.example"


def test_secure_flag_needs_a_sips_request_uri_over_tls():
    sips = parse_message(INVITE.replace(b"INVITE sip:911", b"INVITE sips:911"))
    assert Dialog.for_uas(sips, "t", secure_transport=True).secure
    assert not Dialog.for_uas(sips, "t", secure_transport=False).secure
    assert not Dialog.for_uas(invite(), "t", secure_transport=True).secure


# -- building requests (§12.2.1.1) ------------------------------------------------------------------


def test_in_dialog_request_without_route_set_goes_to_the_remote_target():
    dialog = uac_dialog()
    bye = dialog.create_request("BYE", sent_by="b2bua.example:5060")
    assert str(bye.uri) == "sip:ecrc@198.51.100.7:5070"
    assert "Route" not in bye.headers
    assert (bye.cseq.seq, bye.cseq.method) == (11, "BYE")
    assert (bye.from_.tag, bye.to.tag, bye.call_id) == ("caller1", "ecrc1", "dlg-1@caller.example")
    assert bye.from_.display == '"Caller"'
    assert bye.top_via.sent_by == ("b2bua.example", 5060) and bye.top_via.is_rfc3261
    assert bye.max_forwards == 70
    assert parse_message(bye.to_bytes()).method == "BYE"  # well-formed on the wire


def test_in_dialog_request_with_a_loose_router_keeps_the_target_and_lists_the_routes():
    dialog = uac_dialog(record_route=["<sip:p2.example;lr>", "<sip:p1.example;lr>"])
    bye = dialog.create_request("BYE", sent_by="b2bua.example")
    assert str(bye.uri) == "sip:ecrc@198.51.100.7:5070"
    assert [str(r.uri) for r in bye.route] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert str(dialog.next_hop) == "sip:p1.example;lr"


def test_in_dialog_request_with_a_strict_router_puts_it_in_the_request_uri_and_the_target_last():
    dialog = uac_dialog(record_route=["<sip:p2.example;lr>", "<sip:strict.example;method=INVITE;transport=tcp>"])
    bye = dialog.create_request("BYE", sent_by="b2bua.example")
    assert str(bye.uri) == "sip:strict.example;transport=tcp"  # `method` is not allowed there (§19.1.1)
    assert [str(r.uri) for r in bye.route] == ["sip:p2.example;lr", "sip:ecrc@198.51.100.7:5070"]


def test_each_in_dialog_request_takes_the_next_cseq_and_a_new_branch():
    dialog = uac_dialog()
    first = dialog.create_request("INFO", sent_by="b2bua.example")
    second = dialog.create_request("INFO", sent_by="b2bua.example")
    assert (first.cseq.seq, second.cseq.seq) == (11, 12)
    assert first.top_via.branch != second.top_via.branch
    assert dialog.local_seq == 12


def test_uas_side_picks_an_initial_cseq_for_its_first_request():
    dialog = Dialog.for_uas(invite(), "b2b1")
    bye = dialog.create_request("BYE", sent_by="b2bua.example", transport="tcp")
    assert 0 < bye.cseq.seq < 2**31
    assert dialog.local_seq == bye.cseq.seq
    assert bye.top_via.transport == "TCP"
    assert (bye.from_.tag, bye.to.tag) == ("b2b1", "caller1")
    assert str(bye.uri) == "sip:caller@192.0.2.10:5060"
    assert [str(r.uri) for r in bye.route] == ["sip:proxy2.example;lr", "sip:proxy1.example;lr"]


def test_reinvite_needs_a_contact_and_carries_body_and_extra_headers():
    dialog = uac_dialog()
    with pytest.raises(ValueError):
        dialog.create_request("INVITE", sent_by="b2bua.example")
    reinvite = dialog.create_request(
        "INVITE", "<sip:b2bua@203.0.113.5>", sent_by="b2bua.example",
        headers=[("Supported", "timer")], body=b"v=0\r\n", content_type="application/sdp",
    )
    assert str(reinvite.contact[0].uri) == "sip:b2bua@203.0.113.5"
    assert reinvite.headers.get("Supported") == "timer"
    assert parse_message(reinvite.to_bytes()).body == b"v=0\r\n"


def test_ack_and_cancel_are_not_built_as_ordinary_in_dialog_requests():
    dialog = uac_dialog()
    for method in ("ACK", "CANCEL"):
        with pytest.raises(ValueError):
            dialog.create_request(method, sent_by="b2bua.example")


def test_ack_for_a_2xx_keeps_the_invite_cseq_number_and_takes_a_new_branch():
    req = invite()
    req.headers.add("Proxy-Authorization", 'Digest username="b2bua", realm="ecrc"')
    ok = answer(req, record_route=["<sip:p1.example;lr>"])
    dialog = Dialog.for_uac(req, ok)
    dialog.create_request("INFO", sent_by="b2bua.example")  # local CSeq moves on; the ACK does not
    ack = dialog.create_ack(req, ok, sent_by="b2bua.example")
    assert (ack.method, ack.cseq.seq, ack.cseq.method) == ("ACK", 10, "ACK")
    assert ack.top_via.branch != req.top_via.branch and ack.top_via.is_rfc3261
    assert str(ack.uri) == "sip:ecrc@198.51.100.7:5070"
    assert [str(r.uri) for r in ack.route] == ["sip:p1.example;lr"]
    assert ack.headers.get("Proxy-Authorization") == 'Digest username="b2bua", realm="ecrc"'  # §13.2.2.4
    assert dialog.local_seq == 11


def test_ack_refuses_a_2xx_of_another_dialog():
    req = invite()
    dialog = Dialog.for_uac(req, answer(req))
    with pytest.raises(ValueError):
        dialog.create_ack(req, answer(req, to_tag="forked2"), sent_by="b2bua.example")


# -- requests that arrive (§12.2.2) ------------------------------------------------------------------


def test_in_dialog_request_with_a_lower_cseq_gets_500():
    dialog = Dialog.for_uas(invite(), "b2b1")
    assert dialog.receive_request(in_dialog("INFO", 9)) == 500
    assert dialog.remote_seq == 10


def test_in_dialog_request_with_a_higher_cseq_is_accepted_and_remembered():
    dialog = Dialog.for_uas(invite(), "b2b1")
    assert dialog.receive_request(in_dialog("INFO", 15)) is None
    assert dialog.remote_seq == 15
    assert dialog.receive_request(in_dialog("BYE", 12)) == 500


def test_ack_is_accepted_whatever_its_cseq():
    dialog = Dialog.for_uas(invite(), "b2b1")
    dialog.receive_request(in_dialog("INFO", 15))
    assert dialog.receive_request(in_dialog("ACK", 10)) is None
    assert dialog.remote_seq == 15


def test_uac_side_remote_seq_starts_empty_and_takes_any_value():
    dialog = uac_dialog()
    assert dialog.receive_request(in_dialog("BYE", 1, to_tag="caller1", from_tag="ecrc1")) is None
    assert dialog.remote_seq == 1


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_reinvite_and_update_refresh_the_remote_target(method):
    dialog = Dialog.for_uas(invite(), "b2b1")
    dialog.receive_request(in_dialog(method, 11, contact="<sip:caller@192.0.2.99:5062>"))
    assert str(dialog.remote_target) == "sip:caller@192.0.2.99:5062"


def test_other_requests_do_not_refresh_the_remote_target():
    dialog = Dialog.for_uas(invite(), "b2b1")
    dialog.receive_request(in_dialog("INFO", 11, contact="<sip:caller@192.0.2.99:5062>"))
    assert str(dialog.remote_target) == "sip:caller@192.0.2.10:5060"


def test_a_rejected_out_of_order_reinvite_does_not_refresh_the_target():
    dialog = Dialog.for_uas(invite(), "b2b1")
    assert dialog.receive_request(in_dialog("INVITE", 5, contact="<sip:x@192.0.2.99>")) == 500
    assert str(dialog.remote_target) == "sip:caller@192.0.2.10:5060"


def test_2xx_to_a_reinvite_refreshes_the_remote_target_but_not_the_route_set():
    dialog = uac_dialog(record_route=["<sip:p1.example;lr>"])
    reinvite = dialog.create_request("INVITE", "<sip:b2bua@203.0.113.5>", sent_by="b2bua.example")
    ok = answer(reinvite, contact="<sip:ecrc@198.51.100.9>", record_route=["<sip:new.example;lr>"])
    dialog.receive_response(reinvite, ok)
    assert str(dialog.remote_target) == "sip:ecrc@198.51.100.9"
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example;lr"]


def test_error_response_to_a_reinvite_leaves_the_remote_target():
    dialog = uac_dialog()
    reinvite = dialog.create_request("INVITE", "<sip:b2bua@203.0.113.5>", sent_by="b2bua.example")
    dialog.receive_response(reinvite, answer(reinvite, 488, contact="<sip:ecrc@198.51.100.9>"))
    assert str(dialog.remote_target) == "sip:ecrc@198.51.100.7:5070"


# -- the dialog table ---------------------------------------------------------------------------------


def test_dialog_table_finds_the_dialog_of_a_request_and_of_a_response():
    table = DialogTable()
    uas = Dialog.for_uas(invite(), "b2b1")
    table.add(uas)
    assert table.find(in_dialog("BYE", 11)) is uas
    uac = uac_dialog()
    table.add(uac)
    reinvite = uac.create_request("INVITE", "<sip:b2bua@203.0.113.5>", sent_by="b2bua.example")
    assert table.find(answer(reinvite)) is uac
    assert len(table) == 2


def test_unknown_dialog_gets_481():
    table = DialogTable()
    table.add(Dialog.for_uas(invite(), "b2b1"))
    assert table.receive_request(in_dialog("BYE", 11, to_tag="nope")) == (None, 481)


def test_known_dialog_passes_the_cseq_check_through_the_table():
    table = DialogTable()
    dialog = Dialog.for_uas(invite(), "b2b1")
    table.add(dialog)
    assert table.receive_request(in_dialog("BYE", 11)) == (dialog, None)
    assert table.receive_request(in_dialog("INFO", 3)) == (dialog, 500)


def test_request_without_to_tag_is_not_an_in_dialog_request():
    table = DialogTable()
    assert table.receive_request(invite()) == (None, None)


def test_ack_for_an_unknown_dialog_is_not_answered():
    table = DialogTable()
    assert table.receive_request(in_dialog("ACK", 10, to_tag="gone")) == (None, None)


def test_removed_dialog_is_unknown():
    table = DialogTable()
    dialog = Dialog.for_uas(invite(), "b2b1")
    table.add(dialog)
    table.remove(dialog)
    assert table.find(in_dialog("BYE", 11)) is None
    assert list(table) == []


def test_uas_early_dialog_is_confirmed_when_its_2xx_is_sent():
    dialog = Dialog.for_uas(invite(), "b2b1", early=True)
    assert dialog.early
    dialog.confirm()
    assert dialog.state == "confirmed"
