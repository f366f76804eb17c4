"""Differential test: our parser against the independent `sipmessage` package.

The corpus is the fixture messages (tests/fixtures/sip/) plus generated emergency
INVITEs (multipart SDP + PIDF-LO) and 200 OKs. Both parsers must agree on the method or
status, the Request-URI, and the values of Via, From, To, Call-ID, CSeq, Contact,
Content-Length and the body.

Known, justified differences (each one is pinned by a test below, so a change on
either side shows up):

1. Escapes: sipmessage percent-decodes URI users and parameter names/values; we keep
   them as written (byte-exact relay; RFC 3261 §19.1.4 compares decoded, and so do we).
   The comparison decodes ours.
2. Display names: sipmessage unquotes them; we keep the quotes and quoted-pairs as
   written (`grammar.unquote` gives the text). The comparison unquotes ours.
   sipmessage also collapses runs of white space inside the quotes (`"a  b"` reads as
   `a b`); inside a quoted-string white space is text (RFC 3261 §25.1), so we keep it.
   The comparison collapses it on our side.
3. Via transport: we upper-case it (transport tokens compare case-insensitively);
   sipmessage keeps the spelling. The comparison upper-cases theirs.
4. sipmessage refuses what we accept on purpose: folded header lines and LF-only line
   ends (RFC 3261 §7.3.1 / robustness), non-SIP Request-URIs (`urn:service:sos`,
   RFC 5031), and the `sip:urn:service:sos@host` form baresip and pjsua send (a `:`
   in the password part, which RFC 3261 does not allow but real clients send).
5. Octets after Content-Length in a datagram: RFC 3261 §18.3 says discard them; we do,
   sipmessage keeps everything after the blank line as the body.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote as percent_decode

import pytest
import sipmessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2bua.sip import Request, SipUri, TelUri, parse_message
from b2bua.sip.grammar import unquote

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sip"

# Fixtures sipmessage cannot parse, and why (difference 4 above).
THEY_REFUSE = {
    "folded-headers.sip": "folded header lines",
    "lf-only-invite.sip": "LF-only line ends",
    "rfc-emergency-invite.sip": "urn:service:sos Request-URI",
    "pjsua-emergency-invite.sip": "sip:urn:service:sos@host Request-URI (':' in the password part)",
}
CORPUS = sorted(path for path in FIXTURES.glob("*.sip") if path.name not in THEY_REFUSE)


# -- normalized views ------------------------------------------------------------------


def _params(items) -> dict:
    out: dict = {}
    for name, value in items:
        out.setdefault(percent_decode(name).lower(), None if value is None else percent_decode(value))
    return out


def _our_uri(uri) -> tuple:
    if isinstance(uri, SipUri):
        user = percent_decode(uri.user) if uri.user is not None else None
        password = percent_decode(uri.password) if uri.password is not None else None
        return (uri.scheme, user, password, uri.host, uri.port, _params(uri.params.items()))
    if isinstance(uri, TelUri):
        return ("tel", uri.number, None, "", None, _params(uri.params.items()))
    return (uri.scheme, str(uri), None, None, None, {})


def _their_uri(uri: sipmessage.URI) -> tuple:
    return (uri.scheme, uri.user, uri.password, uri.host, uri.port, _params(uri.parameters.items()))


def _our_address(value) -> tuple:
    display = re.sub(r"\s+", " ", unquote(value.display)) if value.display else ""  # difference 2
    return (display, _our_uri(value.uri), _params(value.params.items()))


def _their_address(value: sipmessage.Address) -> tuple:
    return (value.name, _their_uri(value.uri), _params(value.parameters.items()))


def ours(data: bytes) -> dict:
    message = parse_message(data)
    is_request = isinstance(message, Request)
    return {
        "start": ("request", message.method) if is_request else ("response", message.status),
        "request_uri": _our_uri(message.uri) if is_request else None,
        "via": [(via.transport, via.host, via.port, _params(via.params.items())) for via in message.via],
        "from": _our_address(message.from_),
        "to": _our_address(message.to),
        "call_id": message.call_id,
        "cseq": (message.cseq.seq, message.cseq.method),
        "contact": [_our_address(contact) for contact in message.contact],
        "content_length": int(message.headers.get("Content-Length")) if "Content-Length" in message.headers else None,
        "body": message.body,
    }


def theirs(data: bytes) -> dict:
    message = sipmessage.Message.parse(data)
    is_request = isinstance(message, sipmessage.Request)
    return {
        "start": ("request", message.method) if is_request else ("response", message.code),
        "request_uri": _their_uri(message.uri) if is_request else None,
        "via": [(via.transport.upper(), via.host, via.port, _params(via.parameters.items())) for via in message.via],
        "from": _their_address(message.from_address),
        "to": _their_address(message.to_address),
        "call_id": message.call_id,
        "cseq": (message.cseq.sequence, message.cseq.method),
        "contact": [_their_address(contact) for contact in message.contact],
        "content_length": message.content_length,
        "body": message.body,
    }


def assert_agree(data: bytes) -> dict:
    mine, other = ours(data), theirs(data)
    for key in mine:
        assert mine[key] == other[key], f"{key}: ours {mine[key]!r} != sipmessage {other[key]!r}"
    return mine


# -- the fixture corpus ------------------------------------------------------------------


def test_the_corpus_is_not_empty_and_mostly_comparable():
    assert len(CORPUS) >= 10 and all((FIXTURES / name).exists() for name in THEY_REFUSE)


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.name)
def test_fixture_messages_read_the_same_in_both_parsers(path):
    view = assert_agree(path.read_bytes())
    assert view["via"] and view["call_id"]


@pytest.mark.parametrize("name", sorted(THEY_REFUSE))
def test_fixtures_only_we_accept_are_refused_by_sipmessage(name):
    data = (FIXTURES / name).read_bytes()
    assert parse_message(data).call_id
    with pytest.raises(ValueError):
        theirs(data)


def test_difference_escapes_are_kept_by_us_and_decoded_by_sipmessage():
    data = (b"OPTIONS sip:%61lice@example.com;n%61me=v%61lue SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
            b"From: <sip:b%6Fb@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: esc\r\nCSeq: 1 OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n")
    message, other = parse_message(data), sipmessage.Message.parse(data)
    assert (message.uri.user, other.uri.user) == ("%61lice", "alice")
    assert (list(message.uri.params.items()), dict(other.uri.parameters)) == ([("n%61me", "v%61lue")], {"name": "value"})
    assert message.to_bytes() == data
    assert_agree(data)  # equal once ours is decoded


def test_difference_display_names_keep_their_quotes_with_us():
    data = (b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/udp h.example.com;branch=z9hG4bK1\r\n"
            b'From: "Joe \\"J\\" Doe" <sip:joe@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: dn\r\n'
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    assert parse_message(data).from_.display == '"Joe \\"J\\" Doe"'
    assert sipmessage.Message.parse(data).from_address.name == 'Joe "J" Doe'
    assert (parse_message(data).top_via.transport, sipmessage.Message.parse(data).via[0].transport) == ("UDP", "udp")
    assert_agree(data)


def test_difference_white_space_inside_a_quoted_display_name_is_kept_by_us():
    data = (b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
            b'From: "Jo   Doe" <sip:joe@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: ws\r\n'
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    assert unquote(parse_message(data).from_.display) == "Jo   Doe"
    assert sipmessage.Message.parse(data).from_address.name == "Jo Doe"
    assert_agree(data)


def test_difference_octets_after_content_length_are_discarded_by_us_only():
    data = (FIXTURES / "options-keepalive.sip").read_bytes()
    noise = b"INVITE sip:x@y SIP/2.0\r\n"
    assert parse_message(data + noise).body == b""
    assert sipmessage.Message.parse(data + noise).body == noise


# -- generated emergency INVITEs and their answers --------------------------------------------

labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
hostnames = st.lists(labels, min_size=1, max_size=3).map(lambda parts: ".".join(parts) + ".example")
ipv4 = st.tuples(*[st.integers(1, 254)] * 4).map(lambda octets: ".".join(map(str, octets)))
ipv6 = st.sampled_from(["[2001:db8::1]", "[2001:db8:0:1::20]", "[fe80::1]"])
hosts = st.one_of(hostnames, ipv4, ipv6)
users = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.+", min_size=1, max_size=12)
tokens = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1, max_size=16)
ports = st.one_of(st.none(), st.integers(1024, 65535))
display_names = st.one_of(
    st.none(),
    st.text("abcdefghijklmnopqrstuvwxyz ABC", min_size=1, max_size=16).map(lambda text: f'"{text}"'),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10),
)
civic_text = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd", "Zs"), max_codepoint=0x2FF), max_size=30)


def hostport(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


def address(display: str | None, user: str, host: str) -> str:
    return f"{display + ' ' if display else ''}<sip:{user}@{host}>"


def sdp(host: str, port: int) -> bytes:
    if host.startswith("["):
        address_type, bare = "IP6", host[1:-1]
    else:
        address_type, bare = "IP4", host if host[0].isdigit() else "192.0.2.1"
    return (f"v=0\r\no=- 1 1 IN {address_type} {bare}\r\ns=-\r\nc=IN {address_type} {bare}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n").encode()


def pidf(entity: str, city: str, street: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
        f'xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity="pres:{entity}">\r\n'
        f'<tuple id="t1"><status><gp:geopriv><gp:location-info><ca:civicAddress><ca:country>US</ca:country>'
        f"<ca:A3>{city}</ca:A3><ca:RD>{street}</ca:RD></ca:civicAddress></gp:location-info>"
        f"<gp:usage-rules/></gp:geopriv></status></tuple>\r\n</presence>\r\n"
    ).encode("utf-8")


@st.composite
def emergency_invites(draw) -> bytes:
    caller, caller_host, psap_host = draw(users), draw(hosts), draw(hosts)
    via_count = draw(st.integers(1, 4))
    vias = [f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS', 'udp']))} {hostport(draw(hosts), draw(ports))}"
            f";branch=z9hG4bK{draw(tokens)}{draw(st.sampled_from(['', ';rport', ';received=192.0.2.9']))}"
            for _ in range(via_count)]
    boundary = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40))
    quoted = draw(st.booleans())
    content_id = f"{draw(tokens)}@{caller_host.strip('[]')}"
    parts = [
        (b"Content-Type: application/sdp\r\n\r\n", sdp(caller_host, draw(st.integers(1024, 65000)))),
        (f"Content-Type: application/pidf+xml\r\nContent-ID: <{content_id}>\r\n"
         f"Content-Disposition: by-reference;handling=optional\r\n\r\n".encode(),
         pidf(f"{caller}@example.com", draw(civic_text), draw(civic_text))),
    ]
    if draw(st.booleans()):
        parts.reverse()  # pjsua puts the PIDF first
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + head + content + b"\r\n" for head, content in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    names = draw(st.sampled_from([
        {"Via": "Via", "From": "From", "To": "To", "Call-ID": "Call-ID", "Contact": "Contact", "Content-Length": "Content-Length"},
        {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m", "Content-Length": "l"},
        {"Via": "VIA", "From": "FROM", "To": "TO", "Call-ID": "CALL-ID", "Contact": "CONTACT", "Content-Length": "CONTENT-LENGTH"},
    ]))
    ruri = draw(st.sampled_from(["911", "933", "+1911", "sos"]))
    to_value = draw(st.sampled_from([f"<sip:{ruri}@{psap_host}>", f"sip:{ruri}@{psap_host}"]))
    via_lines = ([f"{names['Via']}: {', '.join(vias)}"] if draw(st.booleans())
                 else [f"{names['Via']}: {via}" for via in vias])
    lines = [
        f"INVITE sip:{ruri}@{hostport(psap_host, draw(ports))};user=phone SIP/2.0",
        *via_lines,
        "Max-Forwards: 70",
        f"{names['From']}: {address(draw(display_names), caller, caller_host)};tag={draw(tokens)}",
        f"{names['To']}: {to_value}",
        f"{names['Call-ID']}: {draw(tokens)}@{caller_host}",
        f"CSeq: {draw(st.integers(1, 2**31 - 1))} INVITE",
        f"{names['Contact']}: <sip:{caller}@{hostport(caller_host, draw(ports))};transport=udp>"
        f"{draw(contact_params)}",
        "Priority: emergency",
        f"Geolocation: <cid:{content_id}>",
        "Geolocation-Routing: yes",
        "Supported: geolocation, timer",
        f"Content-Type: multipart/mixed;boundary={quote_if(boundary, quoted)}",
        f"{names['Content-Length']}:{draw(st.sampled_from([' ', '  ', '']))}{len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


contact_params = st.sampled_from(["", ";expires=3600", ';+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"'])


def quote_if(text: str, quoted: bool) -> str:
    return f'"{text}"' if quoted else text


@st.composite
def ok_responses(draw) -> bytes:
    answer = sdp(draw(ipv4), draw(st.integers(1024, 65000)))
    lines = [
        f"SIP/2.0 {draw(st.sampled_from(['200 OK', '180 Ringing', '183 Session Progress', '486 Busy Here']))}",
        f"Via: SIP/2.0/UDP {hostport(draw(hosts), draw(ports))};branch=z9hG4bK{draw(tokens)};received={draw(ipv4)}",
        f"From: {address(draw(display_names), draw(users), draw(hosts))};tag={draw(tokens)}",
        f"To: <sip:911@{draw(hosts)}>;tag={draw(tokens)}",
        f"Call-ID: {draw(tokens)}",
        f"CSeq: {draw(st.integers(1, 2**31 - 1))} INVITE",
        f"Contact: <sip:ecrc@{hostport(draw(hosts), draw(ports))}>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(answer)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + answer


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(emergency_invites())
def test_generated_emergency_invites_read_the_same_in_both_parsers(data):
    view = assert_agree(data)
    message = parse_message(data)
    assert view["content_length"] == len(message.body)
    assert [part.mime for part in message.multipart.parts] in (
        ["application/sdp", "application/pidf+xml"], ["application/pidf+xml", "application/sdp"])
    assert message.to_bytes() == data


@settings(max_examples=150, deadline=None)
@given(ok_responses())
def test_generated_responses_read_the_same_in_both_parsers(data):
    assert_agree(data)
