"""Pure functions of the transport: RFC 3261 §18.1.1 transport selection, stream framing
(§18.3, RFC 5626 §4.4.1), received/rport stamping (§18.2.1, RFC 3581). No sockets."""

from __future__ import annotations

import pytest

from b2bua.sip import Request, parse_message
from b2bua.transport.inbound import answerable_request, same_address, stamp_via
from b2bua.transport.selection import select_transport, threshold_for_mtu
from b2bua.transport.stream import Frame, FramingError, Ping, StreamFramer, content_length

# -- select_transport ----------------------------------------------------------------------


def test_small_request_stays_on_preferred_udp():
    assert select_transport(900, ["udp", "tcp"], "udp") == ("udp", None)


def test_request_at_exactly_1300_bytes_stays_on_udp():
    # §18.1.1: "larger than 1300 bytes" switches; 1300 itself does not.
    assert select_transport(1300, ["udp", "tcp"], "udp") == ("udp", None)


def test_large_request_moves_from_udp_to_tcp_with_a_reason():
    transport, reason = select_transport(2400, ["udp", "tcp", "tls"], "udp")
    assert transport == "tcp"
    assert "2400" in reason and "1300" in reason and "18.1.1" in reason


def test_large_request_moves_to_tls_when_tcp_is_not_offered():
    transport, reason = select_transport(2400, ["UDP", "TLS"], "UDP")
    assert transport == "tls" and reason


def test_large_request_to_udp_only_target_stays_on_udp_and_says_it_will_fragment():
    transport, reason = select_transport(2400, ["udp"], "udp")
    assert transport == "udp"
    assert "fragment" in reason


@pytest.mark.parametrize("preferred", ["tcp", "tls"])
def test_reliable_preference_is_kept_whatever_the_size(preferred):
    assert select_transport(50_000, ["udp", "tcp", "tls"], preferred) == (preferred, None)


def test_preferred_transport_not_offered_falls_back_to_the_targets_first():
    transport, reason = select_transport(500, ["tcp", "udp"], "tls")
    assert transport == "tcp" and "not offered" in reason


def test_custom_threshold_from_a_known_path_mtu():
    # §18.1.1: within 200 bytes of a known path MTU.
    assert threshold_for_mtu(1500) == 1300
    assert threshold_for_mtu(9000) == 8800
    assert threshold_for_mtu(None) == 1300
    assert select_transport(5000, ["udp", "tcp"], "udp", threshold_for_mtu(9000)) == ("udp", None)
    assert select_transport(1250, ["udp", "tcp"], "udp", threshold_for_mtu(1400))[0] == "tcp"


def test_no_allowed_transport_is_an_error():
    with pytest.raises(ValueError):
        select_transport(100, [], "udp")


# -- StreamFramer --------------------------------------------------------------------------


def message(call_id: str = "c1", body: bytes = b"", length: str | None = None, compact: bool = False) -> bytes:
    name = "l" if compact else "Content-Length"
    value = str(len(body)) if length is None else length
    return (
        "OPTIONS sip:a@b SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n"
        "From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n{name}: {value}\r\n\r\n"
    ).encode() + body


def test_framer_cuts_two_messages_from_one_read():
    framer = StreamFramer(65535)
    events = framer.feed(message("a", b"hello") + message("b"))
    assert [type(event) for event in events] == [Frame, Frame]
    assert events[0].data == message("a", b"hello")
    assert parse_message(events[1].data).call_id == "b"


def test_framer_waits_for_the_whole_body_byte_by_byte():
    framer = StreamFramer(65535)
    data = message("a", b"0123456789", compact=True)
    events = []
    for index in range(len(data)):
        events += framer.feed(data[index : index + 1])
        if index < len(data) - 1:
            assert events == []
    assert events == [Frame(data)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 4])
def test_framer_ping_split_across_reads(chunk):
    framer = StreamFramer(65535)
    data = b"\r\n\r\n" + message()
    events = []
    for start in range(0, len(data), chunk):
        events += framer.feed(data[start : start + chunk])
    assert events == [Ping(), Frame(message())]


def test_framer_ignores_stray_crlf_between_messages_without_a_pong():
    framer = StreamFramer(65535)
    events = framer.feed(message("a") + b"\r\n" + message("b") + b"\r\n")
    assert [type(event) for event in events] == [Frame, Frame]
    assert framer.feed(b"\r\n") == [Ping()]  # the leftover CRLF and this one make a ping


def test_framer_missing_content_length_is_a_400_and_stops():
    framer = StreamFramer(65535)
    data = message().replace(b"Content-Length: 0\r\n", b"")
    events = framer.feed(data + message("next"))
    assert len(events) == 1 and isinstance(events[0], FramingError)
    assert events[0].status == 400 and events[0].head == data
    assert framer.feed(message("more")) == []


def test_framer_oversize_declared_length_is_513():
    framer = StreamFramer(1000)
    events = framer.feed(message(length="5000"))
    assert isinstance(events[0], FramingError) and events[0].status == 513


def test_framer_oversize_header_block_is_513_before_the_blank_line():
    framer = StreamFramer(1000)
    assert framer.feed(b"INVITE sip:a@b SIP/2.0\r\n") == []
    events = framer.feed(b"X-Pad: " + b"p" * 2000)
    assert isinstance(events[0], FramingError) and events[0].status == 513
    assert len(framer.buffer) == 0  # nothing kept


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"A\r\nContent-Length: 12\r\n\r\n", (12, None)),
        (b"A\r\nl:3\r\n\r\n", (3, None)),
        (b"A\r\ncontent-length :  7 \r\n\r\n", (7, None)),
        (b"A\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", (2, None)),
    ],
)
def test_content_length_forms(head, expected):
    assert content_length(head) == expected


@pytest.mark.parametrize(
    "head",
    [b"A\r\nX: 1\r\n\r\n", b"A\r\nContent-Length: -1\r\n\r\n", b"A\r\nContent-Length: 1\r\nl: 2\r\n\r\n"],
)
def test_content_length_problems(head):
    length, problem = content_length(head)
    assert problem is not None


# -- received / rport ----------------------------------------------------------------------


def request_with_via(*vias: str) -> Request:
    lines = "".join(f"Via: {via}\r\n" for via in vias)
    return parse_message(
        (
            f"OPTIONS sip:a@b SIP/2.0\r\n{lines}From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n"
            "Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )


def test_received_added_when_sent_by_is_a_name():
    request = request_with_via("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1")
    assert stamp_via(request, "192.0.2.4", 5060)
    assert request.top_via.params.get("received") == "192.0.2.4"
    assert "rport" not in request.top_via.params


def test_nothing_added_when_sent_by_is_the_source_address():
    request = request_with_via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1")
    assert not stamp_via(request, "192.0.2.4", 5060)
    assert request.to_bytes().count(b"Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1\r\n") == 1


def test_empty_rport_is_filled_and_received_added_even_for_the_same_address():
    # RFC 3581 §4 example: received is added even when it equals sent-by.
    request = request_with_via("SIP/2.0/UDP 192.0.2.4:5060;rport;branch=z9hG4bK1")
    assert stamp_via(request, "192.0.2.4", 9988)
    top = request.top_via
    assert top.params.get("rport") == "9988" and top.params.get("received") == "192.0.2.4"
    assert str(top) == "SIP/2.0/UDP 192.0.2.4:5060;rport=9988;branch=z9hG4bK1;received=192.0.2.4"


def test_only_the_top_element_of_a_comma_list_is_rewritten():
    request = request_with_via(
        "SIP/2.0/UDP a.example;branch=z9hG4bKa, SIP/2.0/UDP b.example;branch=z9hG4bKb",
        "SIP/2.0/TCP c.example;branch=z9hG4bKc",
    )
    stamp_via(request, "198.51.100.1", 1234)
    assert [via.host for via in request.via] == ["a.example", "b.example", "c.example"]
    assert [via.params.get("received") for via in request.via] == ["198.51.100.1", None, None]


def test_ipv6_received_is_written_without_brackets():
    request = request_with_via("SIP/2.0/UDP [2001:db8::9];branch=z9hG4bK1;rport")
    stamp_via(request, "2001:db8::10", 5070)
    assert request.top_via.params.get("received") == "2001:db8::10"
    request = request_with_via("SIP/2.0/UDP [2001:DB8:0::9];branch=z9hG4bK1")
    assert not stamp_via(request, "2001:db8::9", 5060)  # same address, other spelling


def test_same_address_rules():
    assert same_address("::1", "0:0:0:0:0:0:0:1")
    assert same_address("[::1]", "::1")
    assert same_address("::ffff:192.0.2.1", "192.0.2.1")
    assert not same_address("localhost", "127.0.0.1")
    assert same_address("Host.Example", "host.example")


def test_ack_and_responses_are_never_answered():
    request = request_with_via("SIP/2.0/UDP a;branch=z9hG4bK1")
    assert answerable_request(request) is request
    assert answerable_request(None) is None
    ack = parse_message(request.to_bytes().replace(b"OPTIONS", b"ACK"))
    assert answerable_request(ack) is None
