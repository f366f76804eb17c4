"""Structured header values (b2bua/sip/headers.py): name-addr / addr-spec, Via, CSeq,
header names. Parsing a value raises MessageError(400) and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.sip import MessageError, NameAddr, SipUri, Via, parse_name_addr, parse_uri, parse_via
from b2bua.sip.grammar import quote, split_list, unquote
from b2bua.sip.headers import canonical_name, header_key, option_tags, parse_cseq, parse_name_addr_list


def refused(parse, value: str) -> MessageError:
    with pytest.raises(MessageError) as caught:
        parse(value)
    assert caught.value.status == 400
    return caught.value


# -- name-addr and addr-spec ----------------------------------------------------------------


def test_name_addr_parameters_after_the_bracket_belong_to_the_header():
    value = parse_name_addr('"Alice" <sip:alice@atlanta.example.com;transport=tcp>;tag=9fxced76sl;epid=1D1')
    assert value.display == '"Alice"' and value.bracketed
    assert list(value.uri.params.items()) == [("transport", "tcp")]
    assert list(value.params.items()) == [("tag", "9fxced76sl"), ("epid", "1D1")]
    assert value.tag == "9fxced76sl"


def test_addr_spec_parameters_are_header_parameters_not_uri_parameters():
    # RFC 3261 §20.10: without angle brackets, everything after the first ';' is a
    # header parameter, even `user=phone`.
    value = parse_name_addr("sip:+15551234@gw.example.com;user=phone;tag=887s")
    assert not value.bracketed and value.display is None
    assert str(value.uri) == "sip:+15551234@gw.example.com" and len(value.uri.params) == 0
    assert list(value.params.items()) == [("user", "phone"), ("tag", "887s")]
    assert value.tag == "887s"


def test_pjsua_and_linphone_to_without_angle_brackets():
    value = parse_name_addr("sip:urn:service:sos@192.0.2.20")
    assert isinstance(value.uri, SipUri) and value.uri.user == "urn" and value.uri.password == "service:sos"
    assert value.tag is None and not value.bracketed


def test_display_name_token_form_and_no_space_before_the_bracket():
    assert parse_name_addr("caller<sip:caller@example.com>;tag=323").display == "caller"  # RFC 4475 §3.1.1.6
    assert parse_name_addr("Bob Smith <sip:bob@example.com>").display == "Bob Smith"
    assert parse_name_addr('"carol"<sip:carol@contoso.example>;epid=1').display == '"carol"'
    assert parse_name_addr("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").display == "token1~` token2'+_ token3*%!.-"


def test_unquoted_non_ascii_display_names_are_tolerated():
    # Not *(token LWS), but phones send them; refusing would drop real calls.
    assert parse_name_addr("Jürgen Müller <sip:jm@example.de>").display == "Jürgen Müller"


@pytest.mark.parametrize("value", [
    "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",  # RFC 4475 §3.1.2.15
    "Watson: Thomas <sip:t.watson@example.org>",
    "a@b <sip:x@example.com>",
])
def test_unquoted_display_names_with_separators_are_refused(value):
    refused(parse_name_addr, value)


def test_quoted_display_name_keeps_quoted_pairs_and_unquote_resolves_them():
    value = parse_name_addr(r'"J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8')
    assert value.display == r'"J Rosenberg \\\""'
    assert unquote(value.display) == 'J Rosenberg \\"'
    assert quote('J Rosenberg \\"') == value.display


def test_angle_brackets_and_semicolons_inside_quotes_are_text():
    value = parse_name_addr('"<sip:fake@evil.example>; tag=x" <sip:real@example.com>;tag=real')
    assert str(value.uri) == "sip:real@example.com" and value.tag == "real"


@pytest.mark.parametrize("value", [
    '"Mr. J. User <sip:j.user@example.com>',  # unterminated quote (RFC 4475 §3.1.2.6)
    "<sip:alice@example.com",  # no '>'
    "<sip:alice@example.com> junk",  # garbage after the address
    "sip:user@example.com?Route=%3Csip:sip.example.com%3E",  # headers without brackets (§3.1.2.13)
    "Alice sip:alice@example.com",  # display name without brackets
    "",
    "<>",
    "<not a uri>",
])
def test_malformed_addresses_are_refused_with_400(value):
    refused(parse_name_addr, value)


def test_spaces_inside_the_brackets_are_tolerated():
    # RFC 4475 §3.1.2.14 lets an element be liberal here; we are.
    assert str(parse_name_addr('"Watson, Thomas" < sip:t.watson@example.org >').uri) == "sip:t.watson@example.org"


def test_bracketed_uri_with_headers_is_fine():
    value = parse_name_addr("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>")  # RFC 4475 §3.3.14
    assert value.uri.headers == "Route=%3Csip:sip.example.com%3E"


def test_printing_a_name_addr_brackets_a_uri_that_needs_it():
    value = parse_name_addr("sip:bob@example.com;tag=1")
    assert str(value) == "sip:bob@example.com;tag=1"
    value.uri.params.set("transport", "tcp")
    assert str(value) == "<sip:bob@example.com;transport=tcp>;tag=1"  # else transport would be a header param
    assert str(parse_name_addr(str(value)).uri) == "sip:bob@example.com;transport=tcp"
    assert str(NameAddr(parse_uri("sip:a@b"), '"A"')) == '"A" <sip:a@b>'


def test_address_lists_split_outside_quotes_and_brackets():
    values = parse_name_addr_list('<sip:p1.example.com;lr>, "x, y" <sip:p2.example.com;lr>,<sip:p3;a=1,2>')
    assert [str(value.uri) for value in values] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3;a=1,2"]


def test_copy_of_a_name_addr_is_independent():
    value = parse_name_addr("<sip:a@example.com>;tag=1")
    other = value.copy()
    other.params.set("tag", "2")
    other.uri.params.set("lr")
    assert value.tag == "1" and "lr" not in value.uri.params


# -- Via ----------------------------------------------------------------------------------


def test_via_with_parameters():
    via = parse_via("SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5066")
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "pc33.atlanta.example.com", 5066)
    assert via.branch == "z9hG4bK776asdhds" and via.params.get("rport") == "5066"
    assert via.is_rfc3261 and via.sent_by == ("pc33.atlanta.example.com", 5066)


def test_via_with_lws_around_slashes_and_parameters():
    via = parse_via("SIP  /   2.0 /UDP    192.0.2.2 ;  branch  =  390skdjuw ; rport")
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.2", None)
    assert via.branch == "390skdjuw" and "rport" in via.params and via.params.get("rport") is None
    assert not via.is_rfc3261


@pytest.mark.parametrize("value,host,port,address", [
    ("SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bKx", "[2001:db8::9]", 5060, "2001:db8::9"),
    ("SIP/2.0/TCP [2001:db8::9];branch=z9hG4bKx", "[2001:db8::9]", None, "2001:db8::9"),
    ("SIP/2.0/TLS [2001:db8::9] : 5061 ;branch=z9hG4bKx", "[2001:db8::9]", 5061, "2001:db8::9"),
])
def test_via_with_ipv6_sent_by(value, host, port, address):
    via = parse_via(value)
    assert (via.host, via.port, via.host_address) == (host, port, address)


def test_via_received_may_hold_an_ipv6_address():
    via = parse_via("SIP/2.0/UDP [2001:db8::9];branch=z9hG4bKx;received=2001:db8::8;rport=5070")
    assert via.params.get("received") == "2001:db8::8" and via.params.get("rport") == "5070"


@pytest.mark.parametrize("transport", ["udp", "Tcp", "TLS", "SCTP", "WS", "wss", "UNKNOWN"])
def test_via_transport_is_upper_cased_and_unknown_ones_accepted(transport):
    assert parse_via(f"SIP/2.0/{transport} t.example.com;branch=z9hG4bKx").transport == transport.upper()


def test_bare_magic_cookie_is_not_an_rfc3261_branch():
    # RFC 4475 §3.2.1: `branch=z9hG4bK` alone identifies no transaction; fall back to
    # RFC 2543 matching.
    assert not parse_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK").is_rfc3261
    assert parse_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1").is_rfc3261
    assert not parse_via("SIP/2.0/UDP 192.0.2.1").is_rfc3261


@pytest.mark.parametrize("value", [
    "SIP/2.0/UDP", "SIP/2.0 192.0.2.1", "HTTP/1.1/TCP host", "SIP/2.0/UDP host:99999", "SIP/2.0/UDP host:0",
    "SIP/2.0/UDP [2001:db8::1", "SIP/2.0/UDP [2001:db8::1]x", "SIP/2.0/UDP ;branch=x", "SIP/2.0/UDP host:port",
])
def test_malformed_via_is_refused_with_400(value):
    refused(parse_via, value)


def test_via_prints_back_and_copies():
    via = parse_via("SIP/2.0/TCP spindle.example.com:5061;branch=z9hG4bK9ikj8;received=192.0.2.4")
    assert str(via) == "SIP/2.0/TCP spindle.example.com:5061;branch=z9hG4bK9ikj8;received=192.0.2.4"
    other = via.copy()
    other.params.set("received", "192.0.2.5")
    assert via.params.get("received") == "192.0.2.4"
    assert isinstance(other, Via)


# -- CSeq ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value,seq,method", [
    ("314159 INVITE", 314159, "INVITE"), ("0009\r\n  INVITE", 9, "INVITE"), ("0 ACK", 0, "ACK"),
    ("2147483647 BYE", 2**31 - 1, "BYE"), ("1 !interesting-Method0123456789_*+`.%indeed'~", 1,
                                            "!interesting-Method0123456789_*+`.%indeed'~"),
])
def test_cseq_values(value, seq, method):
    cseq = parse_cseq(value)
    assert (cseq.seq, cseq.method) == (seq, method)


@pytest.mark.parametrize("value", ["2147483648 INVITE", "36893488147419103232 REGISTER", "-1 INVITE", "INVITE",
                                   "1", "1 INVITE extra", "1 IN<VITE", "x INVITE", "\u0661 INVITE", ""])
def test_bad_cseq_is_refused_with_400(value):
    refused(parse_cseq, value)


# -- names and lists ------------------------------------------------------------------------


@pytest.mark.parametrize("written,canonical,key", [
    ("via", "Via", "via"), ("V", "Via", "via"), ("CALL-ID", "Call-ID", "call-id"), ("i", "Call-ID", "call-id"),
    ("cseq", "CSeq", "cseq"), ("www-authenticate", "WWW-Authenticate", "www-authenticate"),
    ("X-Unknown", "X-Unknown", "x-unknown"), ("y", "y", "y"),
])
def test_header_names_canonical_form_and_lookup_key(written, canonical, key):
    assert canonical_name(written) == canonical and header_key(written) == key


def test_option_tags_compare_case_insensitively():
    assert option_tags(["Timer", " 100REL ", ""]) == ["timer", "100rel"]


def test_split_list_ignores_empty_elements_and_keeps_quoted_commas():
    assert split_list(' a , "b, c" ,, <d,e> ') == ["a", '"b, c"', "<d,e>"]
    assert split_list("   ") == []


safe_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@settings(max_examples=300, deadline=None)
@given(display=safe_text, tag=st.text("abcdef0123456789", min_size=1, max_size=10))
def test_any_quoted_display_name_survives_quote_parse_unquote(display, tag):
    value = parse_name_addr(f"{quote(display)} <sip:user@example.com>;tag={tag}")
    assert unquote(value.display) == display and value.tag == tag


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parsing_any_text_as_an_address_or_via_raises_only_message_error(text):
    for parse in (parse_name_addr, parse_via, parse_cseq, parse_name_addr_list):
        try:
            parse(text)
        except MessageError:
            pass
