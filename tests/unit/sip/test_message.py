"""The SIP message layer (b2bua/sip/message.py): framing, header fields, serialization.

Rules under test are the module docstring's: case-insensitive names and compact forms,
folding, list splitting only for list headers, raw bytes per field (so an unmodified
message re-serializes byte-exact and a change rewrites one line), Content-Length kept
right, and MessageError with the status a UAS owes (400/413/414/505/513), never any
other exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2bua.sip import (
    DEFAULT_LIMITS,
    Headers,
    Limits,
    MessageError,
    Request,
    Response,
    SipUri,
    make_response,
    parse_message,
)
from b2bua.sip.headers import COMPACT_FORMS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sip"
CORPUS = sorted(FIXTURES.glob("*.sip"))

VIA = "Via: SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776asdhds"
BASE = [
    VIA,
    "Max-Forwards: 70",
    "To: Bob <sip:bob@example.com>",
    'From: "Alice" <sip:alice@example.com>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.example.com",
]


def request(*extra: str, method: str = "OPTIONS", uri: str = "sip:bob@example.com", body: bytes = b"",
            base: list[str] | None = None, length: bool = True, cseq: str | None = None) -> bytes:
    """A request with CRLF line ends; `extra` header lines follow the mandatory ones."""
    lines = [f"{method} {uri} SIP/2.0", *(BASE if base is None else base), f"CSeq: {cseq or '314159 ' + method}", *extra]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response(*extra: str, status: str = "200 OK", body: bytes = b"") -> bytes:
    lines = [f"SIP/2.0 {status}", VIA, "To: Bob <sip:bob@example.com>;tag=a6c85cf",
             'From: "Alice" <sip:alice@example.com>;tag=1928301774', "Call-ID: a84b4c76e66710@pc33.example.com",
             "CSeq: 314159 INVITE", *extra, f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def refused(data: bytes, limits: Limits = DEFAULT_LIMITS) -> MessageError:
    with pytest.raises(MessageError) as caught:
        parse_message(data, limits)
    return caught.value


# -- start line -----------------------------------------------------------------------


def test_request_line_gives_method_uri_and_keeps_its_bytes():
    message = parse_message(request(method="INVITE", uri="sip:911@psap.example.com;user=phone"))
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert isinstance(message.uri, SipUri) and message.uri.user == "911" and message.uri.params.get("user") == "phone"
    assert message.start_raw == b"INVITE sip:911@psap.example.com;user=phone SIP/2.0\r\n"


def test_status_line_gives_code_and_reason_phrase_with_spaces():
    message = parse_message(response(status="486 Busy Here Right Now"))
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (486, "Busy Here Right Now")
    assert not message.is_success and not message.is_provisional


def test_method_names_are_case_sensitive():
    # RFC 3261 §7.1: `invite` is an (unknown) extension method, not INVITE.
    message = parse_message(request(method="invite"))
    assert message.method == "invite" and message.method != "INVITE"
    assert refused(request(method="invite", cseq="1 INVITE")).status == 400


@pytest.mark.parametrize("start", [b"sip/2.0 200 OK", b"Sip/2.0 200 OK"])
def test_status_line_version_is_case_insensitive(start):
    data = response().replace(b"SIP/2.0 200 OK", start, 1)
    message = parse_message(data)
    assert isinstance(message, Response) and message.status == 200
    assert message.to_bytes() == data


def test_request_line_version_is_case_insensitive():
    data = request().replace(b" SIP/2.0\r\n", b" sip/2.0\r\n", 1)
    assert parse_message(data).method == "OPTIONS"


@pytest.mark.parametrize("version", ["SIP/3.0", "SIP/1.0", "HTTP/1.1"])
def test_other_protocol_versions_are_refused_with_505(version):
    data = request().replace(b" SIP/2.0\r\n", f" {version}\r\n".encode(), 1)
    assert refused(data).status == 505


def test_response_with_other_version_is_refused_with_505():
    assert refused(response().replace(b"SIP/2.0 200", b"SIP/2.1 200", 1)).status == 505


@pytest.mark.parametrize("code", [b"99", b"700", b"2000", b"20x", b"\xd9\xa2\xd9\xa0\xd9\xa0"])
def test_status_codes_outside_100_to_699_are_refused(code):
    assert refused(response().replace(b"200 OK", code + b" OK", 1)).status == 400


def test_crlf_keepalives_before_the_start_line_are_skipped():
    data = request()
    message = parse_message(b"\r\n\r\n" + data)
    assert message.method == "OPTIONS"
    assert message.to_bytes() == data


def test_a_message_cut_inside_a_line_is_refused_with_400_and_the_message_attached():
    data = request("User-Agent: kamailio (5.6.3 (x86_64/linux))")
    error = refused(data[: data.index(b"(x86_64")])
    assert error.status == 400 and "truncated" in error.reason
    assert isinstance(error.message, Request)


def test_a_bodiless_message_missing_only_the_empty_line_is_accepted_and_completed():
    # RFC 3261 §7 requires the empty line; some phones leave it out of an ACK or BYE.
    # Refusing an ACK would tear the call down, so it is read, and relayed completed.
    data = request()
    assert data.endswith(b"\r\n\r\n")
    message = parse_message(data[:-2])
    assert message.method == "OPTIONS" and message.body == b""
    assert message.to_bytes() == data
    lf = data.replace(b"\r\n", b"\n")[:-1]
    assert parse_message(lf).to_bytes() == lf + b"\n"


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b"\r\n"])
def test_empty_datagrams_are_refused_with_400(data):
    assert refused(data).status == 400


# -- header names -----------------------------------------------------------------------


def test_header_names_are_case_insensitive():
    message = parse_message(request("sUbJeCt: Emergency", "X-Custom-Header: 1"))
    for name in ("Subject", "subject", "SUBJECT"):
        assert message.headers.get(name) == "Emergency"
        assert name in message.headers
    assert message.headers.get("x-custom-header") == "1"
    assert message.headers.fields_named("X-CUSTOM-HEADER")[0].name == "X-Custom-Header"


def test_known_names_are_reported_canonically_but_written_as_received():
    data = request("CALL-INFO: <http://example.com/a>;purpose=icon", "content-disposition: session")
    message = parse_message(data)
    assert [item.name for item in message.headers][-3:] == ["Call-Info", "Content-Disposition", "Content-Length"]
    assert b"CALL-INFO: <http://example.com/a>;purpose=icon\r\n" in message.to_bytes()
    assert message.to_bytes() == data


COMPACT_VALUES = {
    "Contact": "<sip:alice@192.0.2.4:5060>;expires=60", "Content-Encoding": "gzip", "Content-Type": "text/plain",
    "Subject": "help", "Supported": "timer", "Refer-To": "<sip:carol@example.com>",
    "Referred-By": "<sip:alice@example.com>", "Session-Expires": "1800;refresher=uac", "Event": "presence",
    "Allow-Events": "dialog", "Accept-Contact": "*;audio", "Reject-Contact": "*;video",
    "Request-Disposition": "proxy, recurse",
}


def test_the_compact_forms_are_those_of_rfc3261_and_later_rfcs():
    assert {letter: name for letter, name in COMPACT_FORMS.items()} == {
        "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
        "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "r": "Refer-To", "b": "Referred-By",
        "x": "Session-Expires", "o": "Event", "u": "Allow-Events", "a": "Accept-Contact", "j": "Reject-Contact",
        "d": "Request-Disposition",
    }


@pytest.mark.parametrize("letter,long_name", sorted((k, v) for k, v in COMPACT_FORMS.items() if v in COMPACT_VALUES))
def test_every_compact_form_reads_as_its_long_name(letter, long_name):
    value = COMPACT_VALUES[long_name]
    for written in (letter, letter.upper()):
        message = parse_message(request(f"{written}: {value}", body=b"hi" if long_name == "Content-Type" else b""))
        assert message.headers.get(long_name) == value
        assert message.headers.fields_named(long_name)[0].name == long_name
        assert message.headers.get(letter) == value  # the compact name also looks it up
        assert message.to_bytes().count(f"\r\n{written}: {value}\r\n".encode()) == 1  # written as received


def test_a_message_written_in_compact_forms_parses_and_round_trips():
    data = (FIXTURES / "register-compact.sip").read_bytes()
    message = parse_message(data)
    assert message.top_via.transport == "TCP" and message.top_via.branch == "z9hG4bKnashds7"
    assert (message.from_.tag, message.to.display) == ("456248", "Bob")
    assert message.call_id == "843817637684230@998sdasdh09"
    assert message.contact[0].params.get("expires") == "7200"
    assert message.supported == ["path", "gruu"]
    assert message.headers.get("Content-Length") == "0"
    assert message.to_bytes() == data


def test_mixed_long_and_compact_fields_of_one_header_are_one_list():
    message = parse_message(request("Supported: timer", "k: 100rel", "SUPPORTED: replaces"))
    assert message.supported == ["timer", "100rel", "replaces"]


# -- folding and LWS ----------------------------------------------------------------------


def test_folded_header_lines_unfold_to_single_spaces_and_keep_their_bytes():
    data = (FIXTURES / "folded-headers.sip").read_bytes()
    message = parse_message(data)
    assert message.top_via.branch == "z9hG4bKfold1"
    assert message.from_.display == '"Folded Name"'
    assert str(message.to.uri) == "sip:ecrc@203.0.113.5"
    assert (message.cseq.seq, message.cseq.method) == (1, "OPTIONS")
    assert message.supported == ["timer", "100rel"]
    assert message.headers.get("Max-Forwards") == "70"  # `Max-Forwards : 70`
    assert message.headers.fields_named("Supported")[0].raw == b"Supported: timer,\r\n 100rel\r\n"
    assert message.to_bytes() == data


def test_folding_with_several_continuation_lines_and_tabs():
    message = parse_message(request("Subject: first\r\n\tsecond\r\n   third   \r\n \tfourth"))
    assert message.headers.get("Subject") == "first second third fourth"


def test_unicode_line_separators_inside_a_value_are_not_line_breaks():
    # str.splitlines() splits at NEL, LS, FF...; a header value is cut at CRLF/LF only.
    value = "caf\u00e9 \u2028 \u0085 \x0c end"
    message = parse_message(request(f"Subject: {value}\r\n continued"))
    assert message.headers.get("Subject") == value + " continued"


def test_continuation_line_before_any_header_is_refused_with_400():
    data = request().replace(b"\r\nVia:", b"\r\n folded-nothing\r\nVia:", 1)
    assert refused(data).status == 400


def test_white_space_around_the_colon_is_allowed():
    message = parse_message(request("Subject   :    spaced   ", "Organization:\tTab"))
    assert message.headers.get("Subject") == "spaced"
    assert message.headers.get("Organization") == "Tab"


def test_empty_header_value_is_allowed():
    assert parse_message(request("Subject:")).headers.get("Subject") == ""


@pytest.mark.parametrize("line", ["NoColonHere", "Bad Name: x", ": no name"])
def test_malformed_header_lines_are_refused_with_400_and_the_message_attached(line):
    error = refused(request(line))
    assert error.status == 400
    # the partly parsed message is still there, so the transport can address a 400
    assert isinstance(error.message, Request) and error.message.call_id == "a84b4c76e66710@pc33.example.com"


# -- list headers -------------------------------------------------------------------------


def test_list_headers_split_at_commas_and_across_fields_in_order():
    message = parse_message(request(
        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Route: <sip:p3.example.com;lr>",
        base=[VIA + ", SIP/2.0/TCP b.example.com;branch=z9hG4bK2", "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3",
              *BASE[1:]],
    ))
    assert [via.host for via in message.via] == ["pc33.example.com", "b.example.com", "c.example.com"]
    assert [str(route.uri) for route in message.route] == [
        "sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr"]
    assert message.headers.get_all("Via")[1] == "SIP/2.0/TCP b.example.com;branch=z9hG4bK2"


def test_commas_inside_quotes_and_angle_brackets_do_not_split():
    message = parse_message(request('Contact: "Doe, John" <sip:j@h.example.com;x=a,b>;q=0.5, <sip:k@h.example.com>'))
    assert [contact.display for contact in message.contact] == ['"Doe, John"', None]
    assert message.contact[0].uri.params.get("x") == "a,b"
    assert message.contact[0].params.get("q") == "0.5"


@pytest.mark.parametrize("name", ["Authorization", "Proxy-Authorization", "WWW-Authenticate", "Proxy-Authenticate"])
def test_authentication_headers_are_never_split_at_commas(name):
    value = 'Digest realm="example.com", nonce="a,b", qop="auth,auth-int", algorithm=MD5'
    message = parse_message(request(f"{name}: {value}", f"{name}: Digest realm=\"other\", nonce=\"n\""))
    assert message.headers.get_all(name) == [value, 'Digest realm="other", nonce="n"']


def test_unknown_headers_are_not_split_or_interpreted():
    message = parse_message(request("UnknownHeaderWithUnusualValue: ;;,,;;,;", "X-List: a, b"))
    assert message.headers.get_all("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    assert message.headers.get_all("X-List") == ["a, b"]


def test_contact_star_is_not_an_address():
    message = parse_message(request("Contact: *", "Expires: 0", method="REGISTER", uri="sip:example.com"))
    assert message.contact == []


# -- quoted strings -----------------------------------------------------------------------


def test_quoted_display_names_keep_escapes_and_hide_separators():
    value = r'"J \"Rosie\" R \\ <x>; a, b" <sip:jr@example.com>;tag=98asjd8'
    message = parse_message(request(base=[*BASE[:3], f"From: {value}", BASE[4]]))
    assert message.from_.display == r'"J \"Rosie\" R \\ <x>; a, b"'
    assert message.from_.tag == "98asjd8"
    assert str(message.from_.uri) == "sip:jr@example.com"


def test_unterminated_quoted_string_is_refused_with_400():
    assert refused(request(base=[*BASE[:3], 'From: "Alice <sip:alice@example.com>;tag=1', BASE[4]])).status == 400


# -- mandatory and single headers -----------------------------------------------------------


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_a_request_missing_a_mandatory_header_is_refused_with_400(missing):
    base = [line for line in BASE if not line.startswith(missing + ":")]
    data = request(base=base, cseq=None)
    if missing == "CSeq":
        data = data.replace(b"CSeq: 314159 OPTIONS\r\n", b"")
    error = refused(data)
    assert error.status == 400 and missing in error.reason
    assert error.message is not None


def test_a_request_without_max_forwards_is_accepted():
    # The checklist lists Max-Forwards among the mandatory headers, but RFC 4475 §3.4
    # (inv2543) requires accepting RFC 2543 requests, which do not carry it.
    message = parse_message(request(base=[line for line in BASE if not line.startswith("Max-Forwards")]))
    assert message.max_forwards is None


@pytest.mark.parametrize("duplicate", [
    ["From: <sip:mallory@example.com>;tag=2"], ["t: <sip:eve@example.com>"], ["Call-ID: other@example.com"],
    ["CSeq: 314159 OPTIONS"], ["Max-Forwards: 69"], ["Content-Type: text/plain", "c: text/html"],
    ["Content-Length: 0"],
])
def test_a_second_instance_of_a_single_value_header_is_refused_with_400(duplicate):
    error = refused(request(*duplicate))
    assert error.status == 400 and "where one is allowed" in error.reason


@pytest.mark.parametrize("call_id", ["", "two words"])
def test_an_empty_or_spaced_call_id_is_refused(call_id):
    assert refused(request(base=[*BASE[:4], f"Call-ID: {call_id}"])).status == 400


@pytest.mark.parametrize("value,ok", [("0", True), ("70", True), ("0068", True), ("255", True),
                                      ("256", False), ("-1", False), ("seventy", False), ("\u0667\u0660", False)])
def test_max_forwards_is_a_number_up_to_255(value, ok):
    data = request(base=[BASE[0], f"Max-Forwards: {value}", *BASE[2:]])
    if ok:
        assert parse_message(data).max_forwards == int(value)
    else:
        assert refused(data).status == 400


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "1e3", "+5", "0x10"])
def test_numbers_must_be_ascii_digits_not_anything_str_isdigit_accepts(value):
    # "²".isdigit() is True and int("²") raises ValueError: the parser must say 400.
    assert refused(request(f"l: {value}", length=False)).status == 400
    assert refused(request(cseq=f"{value} OPTIONS")).status == 400
    assert refused(request(uri=f"sip:bob@example.com:{value}")).status == 400
    assert refused(request(base=[f"Via: SIP/2.0/UDP h.example.com:{value};branch=z9hG4bK1", *BASE[1:]])).status == 400


def test_cseq_method_must_match_the_request_method():
    assert refused(request(method="OPTIONS", cseq="1 INVITE")).status == 400


# -- Content-Length and body ------------------------------------------------------------------


SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def test_content_length_with_leading_white_space_as_sipp_writes_it():
    data = request("Content-Type: application/sdp", f"Content-Length:  {len(SDP)}", body=SDP, length=False)
    message = parse_message(data)
    assert message.body == SDP
    assert message.headers.get("Content-Length") == str(len(SDP))
    assert f"Content-Length:  {len(SDP)}\r\n".encode() in message.to_bytes()
    assert message.to_bytes() == data


def test_sipp_fixture_with_padded_content_length_parses_and_round_trips():
    data = (FIXTURES / "sipp-invite.sip").read_bytes()
    message = parse_message(data)
    assert b"Content-Length:  " in data and message.body.startswith(b"v=0\r\n") and message.body.endswith(b"a=sendrecv\r\n")
    assert message.to_bytes() == data


def test_octets_after_content_length_are_discarded():
    data = request(body=b"ab")
    message = parse_message(data + b"garbage after the message")
    assert message.body == b"ab"
    assert message.to_bytes() == data


def test_no_content_length_takes_the_rest_of_the_datagram_and_adds_no_header_on_relay():
    data = request("Content-Type: text/plain", body=b"hello", length=False)
    message = parse_message(data)
    assert message.body == b"hello"
    assert message.to_bytes() == data  # unchanged: no Content-Length invented


def test_content_length_with_leading_zeros_is_kept_while_right():
    data = request("Content-Type: text/plain", "Content-Length: 005", body=b"hello", length=False)
    assert parse_message(data).to_bytes() == data


@pytest.mark.parametrize("value", ["-999", "abc", "5, 5", ""])
def test_malformed_content_length_is_refused_with_400(value):
    error = refused(request(f"Content-Length: {value}", body=b"hello", length=False))
    assert error.status == 400 and "Content-Length" in error.reason
    assert error.message is not None


def test_content_length_larger_than_the_body_is_refused_with_400():
    error = refused(request("Content-Length: 9999", body=b"short", length=False))
    assert error.status == 400 and "Content-Length" in error.reason


def test_changing_the_body_recomputes_content_length():
    data = request("Content-Type: application/sdp", f"Content-Length:  {len(SDP)}", body=SDP, length=False)
    message = parse_message(data)
    message.body = b"v=0\r\n"
    out = message.to_bytes()
    assert b"Content-Length: 5\r\n" in out and b"Content-Length:  " not in out
    assert out.endswith(b"\r\n\r\nv=0\r\n")
    assert parse_message(out).body == b"v=0\r\n"


def test_changing_the_body_of_a_message_without_content_length_adds_one():
    message = parse_message(request("Content-Type: text/plain", body=b"hello", length=False))
    message.body = b"bye"
    assert b"Content-Length: 3\r\n" in message.to_bytes()


def test_content_length_override_reproduces_a_sloppy_sbc():
    message = parse_message(request("Content-Type: text/plain", body=b"hello"))
    message.content_length_override = 99
    assert b"Content-Length: 99\r\n" in message.to_bytes()


def test_a_message_built_here_always_states_its_content_length():
    built = Request("OPTIONS", "sip:bob@example.com", Headers.of([("Call-ID", "x")]))
    assert built.to_bytes() == b"OPTIONS sip:bob@example.com SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"


# -- limits ----------------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid request of exactly `size` bytes (padding in a body)."""
    head = request("Content-Type: text/plain", "Content-Length: 00000", length=False)
    body = b"x" * (size - len(head))
    return head.replace(b"Content-Length: 00000", f"Content-Length: {len(body):05d}".encode()) + body


def test_a_message_of_65535_bytes_is_accepted():
    data = padded(65535)
    assert len(data) == 65535 and len(parse_message(data).body) > 60000


def test_a_message_over_64_kib_is_refused_with_513():
    assert refused(padded(65536)).status == 513
    assert refused(padded(70000) + b"x" * 100).status == 513


def test_too_many_header_fields_is_refused_with_513():
    limits = Limits(max_headers=20)
    assert len(parse_message(request(*[f"X-{n}: {n}" for n in range(8)]), limits).headers) == 15
    error = refused(request(*[f"X-{n}: {n}" for n in range(30)]), limits)
    assert error.status == 513 and error.message is not None


def test_the_default_limit_on_header_fields_is_enforced():
    error = refused(request(*[f"X-{n}: {n}" for n in range(DEFAULT_LIMITS.max_headers)]))
    assert error.status == 513


def test_a_too_long_header_line_is_refused_with_513():
    limits = Limits(max_line=200)
    assert parse_message(request("Subject: " + "s" * 150), limits)
    assert refused(request("Subject: " + "s" * 300), limits).status == 513
    # a folded field counts as one line
    assert refused(request("Subject: " + "\r\n ".join(["s" * 60] * 5)), limits).status == 513


def test_a_too_long_request_uri_is_refused_with_414():
    error = refused(request(uri="sip:" + "u" * 9000 + "@example.com"))
    assert error.status == 414 and isinstance(error.message, Request)


def test_a_body_over_the_body_limit_is_refused_with_413():
    error = refused(request("Content-Type: text/plain", body=b"x" * 3000), Limits(max_body=2048))
    assert error.status == 413 and error.message is not None


mutations = st.lists(
    st.tuples(st.integers(0, 4000), st.integers(0, 12), st.binary(max_size=8)), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(choice=st.sampled_from(CORPUS), edits=mutations)
def test_mangled_messages_raise_message_error_and_nothing_else(choice, edits):
    data = bytearray(choice.read_bytes())
    for at, cut, insert in edits:
        at %= len(data) + 1
        data[at : at + cut] = insert
    try:
        message = parse_message(bytes(data))
    except MessageError as error:
        assert error.status in (400, 413, 414, 505, 513)
        return
    # Whatever parses can be read through every typed view without any other exception.
    for view in ("via", "from_", "to", "cseq", "call_id", "contact", "route", "record_route",
                 "content_type", "multipart", "supported", "require"):
        try:
            getattr(message, view)
        except MessageError:
            pass
    assert parse_message(message.to_bytes()).to_bytes() == message.to_bytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_raise_message_error_and_nothing_else(data):
    try:
        parse_message(b"INVITE sip:a@b SIP/2.0\r\n" + data)
        parse_message(data)
    except MessageError:
        pass


# -- serialization ---------------------------------------------------------------------------


def test_fixture_line_ends_were_not_rewritten_by_a_tool():
    for path in CORPUS:
        data = path.read_bytes()
        if path.name.startswith("lf-only"):
            assert b"\r" not in data
        else:
            assert data.count(b"\n") == data.count(b"\r\n"), f"{path.name} lost its CRLF line ends"


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.name)
def test_an_unmodified_parsed_message_serializes_to_its_original_bytes(path):
    data = path.read_bytes()
    assert parse_message(data).to_bytes() == data
    assert bytes(parse_message(data)) == data


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_setting_a_header_rewrites_only_that_line():
    data = (FIXTURES / "lync-emergency-invite.sip").read_bytes()
    message = parse_message(data)
    message.headers.set("Priority", "non-urgent")
    before, after = _lines(data), _lines(message.to_bytes())
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert changed == [(b"PRIORITY: emergency", b"Priority: non-urgent")]
    assert message.to_bytes().endswith(message.body) and message.body == parse_message(data).body


def test_removing_and_adding_headers_touch_only_those_lines():
    data = (FIXTURES / "pjsua-emergency-invite.sip").read_bytes()
    message = parse_message(data)
    assert message.headers.remove("Geolocation") == 1
    message.headers.add("Via", "SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKb2b", first=True)
    message.headers.add("X-Leg", "B")
    before, after = _lines(data), _lines(message.to_bytes())
    assert after[0] == before[0]
    assert after[1] == b"Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKb2b"
    assert after[2:] == [line for line in before[1:] if not line.startswith(b"Geolocation:")] + [b"X-Leg: B"]


def test_typed_views_are_parsed_once_and_seen_again_after_a_change():
    message = parse_message(request())
    assert message.via is message.via and message.to is message.to and message.cseq is message.cseq
    assert message.to.tag is None
    message.headers.set("To", "Bob <sip:bob@example.com>;tag=xyz")
    assert message.to.tag == "xyz"
    message.headers.remove_first_value("Via")
    assert message.via == []


def test_remove_first_value_keeps_the_rest_of_a_combined_via():
    message = parse_message(request(base=[VIA + ", SIP/2.0/TCP b.example.com;branch=z9hG4bK2", *BASE[1:]]))
    message.headers.remove_first_value("Via")
    assert [via.host for via in message.via] == ["b.example.com"]
    assert b"\r\nVia: SIP/2.0/TCP b.example.com;branch=z9hG4bK2\r\n" in message.to_bytes()


def test_setting_the_request_uri_rewrites_the_request_line_only():
    data = request()
    message = parse_message(data)
    message.uri = SipUri(user="911", host="psap.example.com")
    out = message.to_bytes()
    assert out.split(b"\r\n", 1) == [b"OPTIONS sip:911@psap.example.com SIP/2.0", data.split(b"\r\n", 1)[1]]


def test_changing_the_request_uri_in_place_is_not_lost():
    data = request(uri="SIP:bob@Example.COM;transport=udp")
    message = parse_message(data)
    assert message.uri.host == "Example.COM"  # a look does not change the bytes
    assert message.to_bytes() == data
    message.uri.params.remove("transport")
    assert message.to_bytes().startswith(b"OPTIONS sip:bob@Example.COM SIP/2.0\r\n")


def test_reason_phrase_change_rewrites_the_status_line():
    message = parse_message(response())
    message.reason = "Fine"
    assert message.to_bytes().startswith(b"SIP/2.0 200 Fine\r\n")


def test_lf_only_message_parses_and_round_trips():
    data = (FIXTURES / "lf-only-invite.sip").read_bytes()
    assert b"\r" not in data
    message = parse_message(data)
    assert message.blank_line == b"\n"
    assert message.call_id == "lf-only-1@192.0.2.15" and message.body.startswith(b"v=0\no=alice ")
    assert message.to_bytes() == data


def test_lines_written_into_an_lf_only_message_end_in_lf_too():
    data = (FIXTURES / "lf-only-invite.sip").read_bytes()
    message = parse_message(data)
    message.headers.set("Max-Forwards", "69")
    message.body = message.body + b"a=sendrecv\n"
    out = message.to_bytes()
    assert b"\r" not in out
    assert b"\nMax-Forwards: 69\n" in out and f"\nContent-Length: {len(message.body)}\n".encode() in out
    assert parse_message(out).body == message.body


@pytest.mark.parametrize("make", [
    lambda message: message.headers.set("Subject", "hi\r\nVia: SIP/2.0/UDP evil.example.com"),
    lambda message: message.headers.add("X-Decoded", "a\nb"),
    lambda message: message.headers.set("Bad\r\nName", "x"),
    lambda message: setattr(message, "method", "OPTIONS\r\nX: y"),
    lambda message: Response(200, "OK\r\nVia: SIP/2.0/UDP evil.example.com"),
    lambda message: Request("INVITE\n", "sip:a@b"),
])
def test_values_written_through_the_api_cannot_inject_lines(make):
    # e.g. a URI header `?Subject=%0D%0AVia:...` decoded and copied into a header (sippy#57)
    message = parse_message(request())
    with pytest.raises(MessageError):
        make(message)
    assert message.to_bytes() == request()


# -- responses ------------------------------------------------------------------------------


def test_make_response_copies_headers_byte_exact_and_tags_to():
    data = (FIXTURES / "folded-headers.sip").read_bytes()
    incoming = parse_message(data)
    answer = make_response(incoming, 200, to_tag="abc")
    out = answer.to_bytes()
    assert out.startswith(b"SIP/2.0 200 OK\r\n")
    for name in (b"Via:", b"From:", b"Call-ID:", b"CSeq:"):
        raw = next(line for line in data.split(b"\r\n") if line.startswith(name))
        assert raw in out
    assert parse_message(out).to.tag == "abc"
    assert parse_message(make_response(incoming, 100, to_tag="abc").to_bytes()).to.tag is None


# -- generated messages --------------------------------------------------------------------

token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1, max_size=12)
case = st.sampled_from([str.lower, str.upper, str.title, lambda text: text])


@st.composite
def generated_requests(draw):
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "REGISTER", "MESSAGE"]))
    body = draw(st.binary(max_size=200))
    sep = draw(st.sampled_from([":", ": ", " : ", ":\t", ":  "]))
    fold = draw(st.sampled_from(["", "\r\n ", "\r\n\t"]))
    names = {name: draw(case)(name) for name in ("Via", "From", "To", "Call-ID", "Max-Forwards", "Subject")}
    if draw(st.booleans()):
        names.update({"Via": "v", "From": "f", "To": "t", "Call-ID": "i"})
    lines = [
        f"{method} sip:{draw(token)}@{draw(st.sampled_from(['example.com', '192.0.2.7', '[2001:db8::7]']))} SIP/2.0",
        f"{names['Via']}{sep}SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'tls']))} h.example.com{fold};branch=z9hG4bK{draw(token)}",
        f"{names['From']}{sep}\"{draw(token)}\" <sip:{draw(token)}@example.com>;tag={draw(token)}",
        f"{names['To']}{sep}sip:{draw(token)}@example.com",
        f"{names['Call-ID']}{sep}{draw(token)}@{draw(token)}",
        f"CSeq{sep}{draw(st.integers(0, 2**31 - 1))}{fold} {method}",
        f"{names['Max-Forwards']}{sep}{draw(st.integers(0, 255))}",
        f"{names['Subject']}{sep}{draw(st.text(max_size=20).map(lambda text: ' '.join(text.split())))}",
        f"{draw(case)('Content-Length')}{sep}{len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@settings(max_examples=300, deadline=None)
@given(generated_requests())
def test_generated_requests_parse_and_serialize_byte_exact(data):
    message = parse_message(data)
    assert message.to_bytes() == data
    assert message.cseq.method == message.method
    assert message.from_.tag and message.top_via.branch.startswith("z9hG4bK")


# -- what the parser remembers between messages ---------------------------------------------


def test_a_known_header_line_followed_by_a_continuation_is_still_unfolded():
    parse_message(request("Subject: first part"))  # the line is now known
    message = parse_message(request("Subject: first part", " and the rest"))
    assert message.headers.get("Subject") == "first part and the rest"
    assert message.headers.fields_named("Subject")[0].raw == b"Subject: first part\r\n and the rest\r\n"


def test_a_known_header_line_over_a_stricter_line_limit_is_refused():
    line = "Subject: " + "x" * 120
    parse_message(request(line))  # known under the default limits
    error = refused(request(line), Limits(max_line=100))
    assert error.status == 513 and "exceeds 100" in error.reason


def test_messages_sharing_header_lines_read_the_same_and_serialize_unchanged():
    first, second = request(), request()
    one, two = parse_message(first), parse_message(second)
    assert one.from_ == two.from_ and one.from_.tag == "1928301774"
    assert one.to_bytes() == first and two.to_bytes() == second


def test_changing_a_copy_of_a_from_view_leaves_every_message_view_alone():
    one, two = parse_message(request()), parse_message(request())
    mine = one.from_.copy()
    mine.params.set("tag", "changed")
    mine.uri.params.set("transport", "tcp")
    assert one.from_.tag == two.from_.tag == "1928301774"
    assert str(two.from_.uri) == "sip:alice@example.com"


def test_a_header_set_through_the_api_replaces_the_shared_field_of_one_message_only():
    one, two = parse_message(request("Subject: shared")), parse_message(request("Subject: shared"))
    one.headers.set("Subject", "mine")
    assert one.headers.get("Subject") == "mine" and two.headers.get("Subject") == "shared"
