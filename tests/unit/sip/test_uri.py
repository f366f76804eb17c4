"""URIs (b2bua/sip/uri.py): SIP, SIPS and TEL with parameters and headers, IPv6
references, any other absolute URI; comparison per RFC 3261 §19.1.4."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.sip import AbsoluteUri, MessageError, SipUri, TelUri, parse_uri
from b2bua.sip.uri import parse_port


def test_sip_uri_with_every_part():
    uri = parse_uri("sip:alice:secret@atlanta.example.com:5070;transport=tcp;lr;maddr=192.0.2.9?subject=project%20x&priority=urgent")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sip", "alice", "secret", "atlanta.example.com", 5070)
    assert list(uri.params.items()) == [("transport", "tcp"), ("lr", None), ("maddr", "192.0.2.9")]
    assert uri.transport == "tcp" and not uri.is_secure
    assert uri.headers == "subject=project%20x&priority=urgent"


def test_sips_uri_is_secure_and_scheme_is_case_insensitive():
    uri = parse_uri("SIPS:bob@Biloxi.Example.COM")
    assert isinstance(uri, SipUri) and uri.scheme == "sips" and uri.is_secure
    assert uri.host == "Biloxi.Example.COM"  # written as received
    assert str(uri) == "sips:bob@Biloxi.Example.COM"


def test_sip_uri_without_user_or_port():
    uri = parse_uri("sip:proxy.example.com;lr")
    assert uri.user is None and uri.password is None and uri.port is None and "lr" in uri.params


def test_user_part_may_hold_question_mark_semicolon_and_other_user_unreserved_characters():
    # RFC 3261 §25.1 user-unreserved; RFC 4475 §3.1.1.2 puts `?`, `;` and `,` in the user.
    uri = parse_uri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com")
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com" and uri.headers is None and len(uri.params) == 0


def test_user_part_parameters_stay_in_the_user():
    # RFC 4475 §3.1.1.9: `;par=...` before the `@` belongs to the user part.
    uri = parse_uri("sip:user;par=u%40example.net@example.com")
    assert (uri.user, uri.host, len(uri.params)) == ("user;par=u%40example.net", "example.com", 0)


def test_phone_context_in_the_user_part_as_lync_writes_it():
    uri = parse_uri("sip:911;phone-context=Redmond@192.0.2.20;user=phone")
    assert (uri.user, uri.host, uri.params.get("user")) == ("911;phone-context=Redmond", "192.0.2.20", "phone")


def test_an_at_sign_in_the_headers_part_does_not_move_the_host():
    uri = parse_uri("sip:bob@biloxi.example.com?Replaces=12345@atlanta.example.com%3Bto-tag%3D1")
    assert (uri.user, uri.host) == ("bob", "biloxi.example.com")
    assert uri.headers == "Replaces=12345@atlanta.example.com%3Bto-tag%3D1"


def test_escaped_characters_are_kept_as_written():
    uri = parse_uri("sip:%61lice@example.com;n%61me=v%61lue")
    assert uri.user == "%61lice" and list(uri.params.items()) == [("n%61me", "v%61lue")]
    assert str(uri) == "sip:%61lice@example.com;n%61me=v%61lue"


@pytest.mark.parametrize("text,host,port,address", [
    ("sip:alice@[2001:db8::10]", "[2001:db8::10]", None, "2001:db8::10"),
    ("sip:alice@[2001:db8::10]:5070;transport=udp", "[2001:db8::10]", 5070, "2001:db8::10"),
    ("sip:[::1]", "[::1]", None, "::1"),
    ("sips:[::ffff:192.0.2.1]:5061", "[::ffff:192.0.2.1]", 5061, "::ffff:192.0.2.1"),
    ("sip:192.0.2.4:5060", "192.0.2.4", 5060, "192.0.2.4"),
])
def test_ipv6_references_and_ipv4_hosts(text, host, port, address):
    uri = parse_uri(text)
    assert (uri.host, uri.port, uri.host_address) == (host, port, address)
    assert str(uri) == text


@pytest.mark.parametrize("text", [
    "sip:alice@[2001:db8::zz]", "sip:alice@[2001:db8::1", "sip:alice@[2001:db8::1]x", "sip:alice@[]",
    "sip:alice@2001:db8::1", "sip:alice@host:0", "sip:alice@host:65536", "sip:alice@host:12a", "sip:@host",
    "sip:", "sip:alice@", "sip:alice@ho st", "sip:ali\tce@host", "sip:alice@host\r\n;lr", "<sip:alice@host>", "alice@host", "1sip:x", "",
    "tel:", "urn:",
])
def test_malformed_uris_are_refused_with_400(text):
    with pytest.raises(MessageError) as caught:
        parse_uri(text)
    assert caught.value.status == 400


def test_tel_uri_with_visual_separators_and_parameters():
    uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com;ext=1234")
    assert isinstance(uri, TelUri)
    assert uri.number == "+1-201-555-0123" and uri.digits == "+12015550123"
    assert list(uri.params.items()) == [("phone-context", "example.com"), ("ext", "1234")]
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com;ext=1234"


def test_tel_uris_compare_without_visual_separators():
    assert parse_uri("tel:+1-201-555-0123") == parse_uri("tel:+1.201.555.0123")
    assert parse_uri("tel:+12015550123") != parse_uri("tel:+12015550124")


@pytest.mark.parametrize("text,scheme,rest", [
    ("urn:service:sos", "urn", "service:sos"),
    ("urn:service:sos.fire", "urn", "service:sos.fire"),
    ("cid:target123@atlanta.example.com", "cid", "target123@atlanta.example.com"),
    ("https://lis.example.com/loc/abc?x=1", "https", "//lis.example.com/loc/abc?x=1"),
    ("soap.beep://192.0.2.103:3002", "soap.beep", "//192.0.2.103:3002"),
])
def test_other_absolute_uris_are_kept_opaque(text, scheme, rest):
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri) and (uri.scheme, uri.rest) == (scheme, rest)
    assert str(uri) == text


# -- comparison (RFC 3261 §19.1.4) ------------------------------------------------------


@pytest.mark.parametrize("left,right", [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:[2001:db8::1]:5060", "sip:[2001:DB8::1]:5060"),
])
def test_equivalent_uris_compare_equal(left, right):
    assert parse_uri(left) == parse_uri(right)


@pytest.mark.parametrize("left,right", [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),  # user differs in case
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),  # absent port is not 5060
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),  # transport on one side
    ("sip:bob@biloxi.com:6000;transport=tcp", "sip:bob@biloxi.com:6000"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice@atlanta.com?subject=a", "sip:alice@atlanta.com?subject=b"),
])
def test_different_uris_compare_unequal(left, right):
    assert parse_uri(left) != parse_uri(right)


def test_copies_are_independent():
    uri = parse_uri("sip:alice@atlanta.com;transport=tcp")
    other = uri.copy()
    other.params.set("transport", "udp")
    assert uri.transport == "tcp" and other.transport == "udp"


@pytest.mark.parametrize("text,port", [("5060", 5060), ("1", 1), ("65535", 65535), ("05060", 5060),
                                       ("0", None), ("65536", None), ("\u0665\u0660\u0666\u0660", None),
                                       ("\u00b2", None), ("", None), ("99999999999999", None)])
def test_ports_are_ascii_numbers_from_1_to_65535(text, port):
    assert parse_port(text) == port


labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
users = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/%", min_size=1, max_size=16)
hosts = st.one_of(
    st.lists(labels, min_size=1, max_size=4).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda octets: ".".join(map(str, octets))),
    st.sampled_from(["[2001:db8::1]", "[::1]", "[fe80::1:2:3:4]", "[::ffff:192.0.2.1]"]),
)
params = st.lists(st.tuples(labels, st.one_of(st.none(), labels)), max_size=4).map(
    lambda items: "".join(f";{name}" if value is None else f";{name}={value}" for name, value in items))


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(["sip", "sips"]), user=st.one_of(st.none(), users), host=hosts,
       port=st.one_of(st.none(), st.integers(1, 65535)), params=params,
       headers=st.one_of(st.none(), st.sampled_from(["subject=x", "a=b&c=d", "Replaces=1%40h"])))
def test_generated_sip_uris_parse_into_their_parts_and_print_back(scheme, user, host, port, params, headers):
    text = f"{scheme}:{user + '@' if user else ''}{host}{':' + str(port) if port else ''}{params}{'?' + headers if headers else ''}"
    uri = parse_uri(text)
    assert str(uri) == text
    assert (uri.scheme, uri.host, uri.port, uri.headers) == (scheme, host, port, headers)
    assert uri.user == (user.partition(":")[0] if user else None)
    assert uri == parse_uri(text)
