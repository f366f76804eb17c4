"""The PSTN gateway without sockets: what its records say, when an INVITE is a callback, the
302 / 404 it answers a callback with, and `b2bua pstn`'s argument errors."""

from __future__ import annotations

import pytest

from b2bua.cli import main
from b2bua.sip import Request, parse_message
from b2bua.sip.transaction import Peer
from b2bua.testbench.control import AnswerBehaviour
from b2bua.testbench.pstn import PstnGateway, elin_candidates_of, mark_pstn
from b2bua.testbench.record import build_record
from b2bua.testbench.store import CallStore

PEER = Peer("udp", "192.168.1.5", 5060)
LYNC_ELINS = ["1111222333", "1234567890"]  # <ca:NAM>1111-222-333; 1234567890 </ca:NAM>


class FakeStack:
    def __init__(self) -> None:
        self.responses = []
        self.accept = None

    def respond(self, transaction, response) -> None:  # noqa: ANN001
        self.responses.append(response)

    def local_address(self, transport: str) -> tuple[str, int]:
        return "127.0.0.1", 5080

    def contact_uri(self, transport: str, user: str | None = None) -> str:
        return "sip:127.0.0.1:5080"

    def send_request(self, request, peer, handler) -> object:  # noqa: ANN001
        return object()


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    calls = CallStore(tmp_path / "pstn.sqlite")
    yield calls
    calls.close()


def gateway(store: CallStore, **options) -> PstnGateway:
    uas = PstnGateway("pstn", store, **options)
    uas.stack = FakeStack()  # type: ignore[assignment]
    return uas


def callback_invite(number: str, call_id: str = "cb-1@psap") -> Request:
    raw = (
        f"INVITE sip:{number}@127.0.0.1:5080;user=phone SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bK-cb1\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:+14255550911@psap.example.net>;tag=psap\r\n"
        f"To: <sip:{number}@127.0.0.1:5080>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:psap@198.51.100.9:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    request = parse_message(raw.encode())
    assert isinstance(request, Request)
    return request


# -- records ---------------------------------------------------------------------------------------


def test_the_nam_candidates_come_from_the_pidf_model(invite, arrived_at):
    _, request = invite("lync")
    record = build_record(request, ecrc="pstn", transport="TLS", source="192.168.1.5:5061", arrived_at=arrived_at)
    assert elin_candidates_of(record) == LYNC_ELINS
    _, stripped = invite("stripped")
    assert elin_candidates_of(build_record(stripped, ecrc="pstn", transport="UDP", source="x:1", arrived_at=arrived_at)) == []


def test_an_elin_call_carries_the_elin_and_no_location(invite, arrived_at):
    _, request = invite("lync")
    record = build_record(request, ecrc="pstn", transport="TLS", source="192.168.1.5:5061", arrived_at=arrived_at)
    assert record["location"] is not None  # what arrived at the gateway...
    mark_pstn(record, elin="1111222333", candidates=LYNC_ELINS)
    assert record["location"] is None and record["address"] is None  # ...is not what leaves it
    assert record["pidf_received"] is True and record["pidf"] is not None
    assert record["elin"] == record["pstn_caller_id"] == "1111222333"
    assert record["original_caller"] == record["caller_id"] == "voip_911_user1"
    assert record["verdict"] == "elin_only" and record["disposition"] == "routable_by_elin"
    assert record["elin_candidates"] == LYNC_ELINS


def test_without_an_elin_the_pstn_side_has_no_location_and_the_original_caller(invite, arrived_at):
    _, request = invite("stripped")
    record = mark_pstn(build_record(request, ecrc="pstn", transport="UDP", source="x:1", arrived_at=arrived_at), elin=None)
    assert record["pidf_received"] is False and record["elin"] is None
    assert record["pstn_caller_id"] == record["original_caller"] == "+14255550100"
    assert record["verdict"] == "no_location" and record["disposition"] == "ecrc_must_ask"


def test_a_933_call_through_the_gateway_reads_back_the_calling_number_the_pstn_sees(invite, arrived_at):
    _, request = invite("test_call")
    record = build_record(request, ecrc="pstn", transport="TCP", source="x:1", arrived_at=arrived_at)
    mark_pstn(record, elin="1111222333", candidates=LYNC_ELINS)
    assert record["readback"] == "Test call from 1111222333: no location received. Calling number is ELIN 1111222333"
    record = mark_pstn(build_record(request, ecrc="pstn", transport="TCP", source="x:1", arrived_at=arrived_at), elin=None)
    assert record["readback"] == "Test call from +14255550100: no location received"


async def test_the_gateway_stores_the_record_before_answering_and_frees_the_elin_at_the_end(store, invite):
    clock = Clock()
    uas = gateway(store, elin_gateway=True, clock=clock)
    _, request = invite("lync")
    uas.on_request(request, object(), PEER)  # type: ignore[arg-type]
    [record] = store.list()
    assert record["elin"] == "1111222333" and record["answer"] == "200"
    assert [response.status for response in uas.stack.responses] == [200]
    entry = uas.elin_table.get("1111222333")
    assert entry.active == 1 and entry.caller_contact.startswith("sip:voip_911_user1@contoso.com")
    assert entry.caller_uri == "sip:voip_911_user1@contoso.com"

    [call] = uas.calls.values()
    clock.now = 160.0
    uas._end(call, "caller")
    assert entry.active == 0 and entry.ended_at == 160.0


async def test_a_dropped_emergency_call_is_recorded_without_taking_an_elin(store, invite):
    uas = gateway(store, elin_gateway=True, behaviour=AnswerBehaviour("drop"))
    _, request = invite("lync")
    assert uas._accept(request, PEER) is False
    [record] = store.list()
    assert record["answer"] == "drop" and record["elin"] is None and record["pidf_received"] is True
    assert len(uas.elin_table) == 0
    assert uas._accept(callback_invite("1111222333"), PEER) is False
    assert store.count() == 1  # a callback is never a record


# -- callbacks -------------------------------------------------------------------------------------


def test_what_counts_as_a_callback(store, invite):
    uas = gateway(store, elin_gateway=True)
    for name in ("lync", "stripped", "test_call", "geodetic", "by_reference", "rfc_clean"):
        assert uas.is_callback(invite(name)[1]) is False, name
    assert uas.is_callback(callback_invite("4255550001")) is True
    assert uas.is_callback(callback_invite("alice")) is True
    assert uas.is_callback(callback_invite("112")) is False
    assert gateway(store).is_callback(callback_invite("4255550001")) is False  # not an ELIN gateway


async def test_a_callback_is_redirected_to_the_caller_then_404_after_the_window(store, invite):
    clock = Clock()
    uas = gateway(store, elin_gateway=True, callback_window_s=600, clock=clock)
    _, request = invite("lync")
    uas.on_request(request, object(), PEER)  # type: ignore[arg-type]
    [call] = uas.calls.values()
    uas._end(call, "caller")

    uas.on_request(callback_invite("+1-111-122-2333"), object(), PEER)  # type: ignore[arg-type]
    redirect = uas.stack.responses[-1]
    assert redirect.status == 302 and redirect.reason == "Moved Temporarily"
    assert redirect.headers.get("Contact") == "<sip:voip_911_user1@contoso.com;opaque=user:epid:abc;gruu>"
    assert redirect.to.tag

    clock.now += 600
    uas.on_request(callback_invite("1111222333", "cb-2@psap"), object(), PEER)  # type: ignore[arg-type]
    late = uas.stack.responses[-1]
    assert (late.status, late.reason) == (404, "Callback Window Expired")

    uas.on_request(callback_invite("9999999999", "cb-3@psap"), object(), PEER)  # type: ignore[arg-type]
    unknown = uas.stack.responses[-1]
    assert (unknown.status, unknown.reason) == (404, "Unknown ELIN")
    assert [(item.status, item.elin) for item in uas.callbacks] == [
        (302, "1111222333"), (404, "1111222333"), (404, None)
    ]
    assert store.count() == 1


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--callback-window-s", "3601"], "callback window"),
        (["--callback-window-s", "-5"], "callback window"),
        (["--elin-table-size", "0"], "ELIN table size"),
        (["--listen", "sctp:127.0.0.1:5080"], "must start with udp:, tcp: or tls:"),
        (["--listen", "tls:127.0.0.1:5081"], "needs --tls-cert and --tls-key"),
        (["--http", "localhost"], "has no port"),
        (["--ring-ms", "-1"], "ring_ms"),
        (["--answer", "busy"], "invalid choice"),
        (["--callback-window-s", "soon"], "invalid float value"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
    assert main(["pstn", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("b2bua pstn")


def test_calls_from_an_unreachable_api_is_a_usage_error(capsys):
    assert main(["pstn", "calls", "--url", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.startswith("b2bua pstn: cannot read http://127.0.0.1:9/calls")


def test_calls_from_a_file(capsys, store, invite, arrived_at):
    _, request = invite("lync")
    store.add(mark_pstn(build_record(request, ecrc="branch", transport="TLS", source="x:1", arrived_at=arrived_at),
                        elin="1111222333", candidates=LYNC_ELINS))
    assert main(["pstn", "calls", "--db", store.path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "1111222333" in lines[1] and "elin_only" in lines[1] and "routable_by_elin" in lines[1]
