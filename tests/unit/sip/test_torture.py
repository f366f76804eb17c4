"""The RFC 4475 torture tests, as our own messages with the same intent.

Every case of RFC 4475 §3.1.1 (valid), §3.1.2 (invalid), §3.2 (transaction layer),
§3.3 (application layer, where it concerns a parser) and §3.4 (backward compatibility)
is here under its RFC tag. The bytes are written for this suite; what each case
exercises follows the RFC. Valid messages must parse to the right values and
re-serialize byte-exact; invalid ones must be refused with MessageError carrying the
status the RFC asks for. Where the RFC lets an element choose, the test says which
choice we made and why.

Application-layer answers (416, 420, 415, 483, 401) are the UAS core's, not the parser's:
for those cases the test checks the message parses and exposes what the core needs to
give that answer.
"""

from __future__ import annotations

import pytest

from b2bua.sip import AbsoluteUri, MessageError, Request, Response, SipUri, parse_message
from b2bua.sip.grammar import unquote


def wire(text: str, body: bytes = b"") -> bytes:
    """`text` with LF turned into CRLF and `{length}` set to the body's length."""
    return text.replace("\n", "\r\n").replace("{length}", str(len(body))).encode("utf-8") + body


def refused(data: bytes) -> MessageError:
    with pytest.raises(MessageError) as caught:
        parse_message(data)
    return caught.value


SDP = wire("""v=0
o=torture 2890844526 2890844526 IN IP4 192.0.2.50
s=-
c=IN IP4 192.0.2.50
t=0 0
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""")


# -- §3.1.1 valid messages ---------------------------------------------------------------


def test_3_1_1_1_wsinv_short_tortuous_invite():
    """Folding everywhere, escaped quotes, empty Subject, LWS around ':' ';' '=' '/',
    comma-separated and repeated Vias mixing `v` and `Via`, unknown R-URI and header
    parameters, flag parameters, unknown headers (one with a value that is not a
    generic-param list), odd header order and case, leading zeros in integers."""
    data = wire("""INVITE sip:ecrc@psap.example.net;flagparam SIP/2.0
tO   :
  sip:ecrc@psap.example.net ;  tag   =   7a1b2c
FROM :   "Caller \\\\ with \\"quotes\\""    <sip:caller@example.org>
   ;
   tag = 55xq9
MaX-FoRwArDs: 0042
Call-ID: wsinv-own.29xk@192.0.2.60
Content-Length     :  {length}
csEQ: 0017
    INVITE
Via   : SIP  /  2.0
   /UDP
      192.0.2.60;branch=z9hG4bKnotreally
Subject :
FutureHeader:   first part
 second part
UnknownHeaderWithUnusualValue: ;,;;,,;;
Content-Type: application/sdp
Route:
  <sip:proxy.example.net;lr;color=blue;nude>
V:  SIP / 2.0 / TCP   edge.example.net  ;
   branch =   z9hG4bKedge1 ,
  SIP/ 2.0 /UDP 198.51.100.9  ; branch=
  z9hG4bKinner2
m:"Display \\"\\"" <sip:caller@192.0.2.60> ;  p1  =
     v1 ;
   flag ; q = 0.5

""", SDP)
    message = parse_message(data)
    assert isinstance(message, Request) and message.method == "INVITE"
    assert "flagparam" in message.uri.params and message.uri.params.get("flagparam") is None
    assert str(message.to.uri) == "sip:ecrc@psap.example.net" and message.to.tag == "7a1b2c"
    assert unquote(message.from_.display) == 'Caller \\ with "quotes"' and message.from_.tag == "55xq9"
    assert message.max_forwards == 42
    assert (message.cseq.seq, message.cseq.method) == (17, "INVITE")
    assert [(via.transport, via.host, via.branch) for via in message.via] == [
        ("UDP", "192.0.2.60", "z9hG4bKnotreally"),
        ("TCP", "edge.example.net", "z9hG4bKedge1"),
        ("UDP", "198.51.100.9", "z9hG4bKinner2"),
    ]
    assert message.headers.get("Subject") == ""
    assert message.headers.get("FutureHeader") == "first part second part"
    assert message.headers.get_all("UnknownHeaderWithUnusualValue") == [";,;;,,;;"]
    route = message.route[0].uri
    assert route.params.get("color") == "blue" and "nude" in route.params and "lr" in route.params
    contact = message.contact[0]
    assert unquote(contact.display) == 'Display ""'
    assert (contact.params.get("p1"), contact.params.get("flag"), contact.params.get("q")) == ("v1", None, "0.5")
    assert message.content_type.mime == "application/sdp" and message.body == SDP
    assert message.to_bytes() == data


def test_3_1_1_2_intmeth_wide_range_of_valid_characters():
    """Method of non-alpha token characters (`%` is no escape there), an unusual but legal
    Request-URI, a branch of token punctuation, quoted-pairs of control characters
    (NUL included) in a display name, a token display name, an unknown header parameter
    with a UTF-8 value, a Call-ID of `word` characters with unbalanced brackets and quotes,
    an extension header with token punctuation in its name and a UTF-8 value."""
    method = "~odd.Method-0123456789_*+`%really'!"
    data = (
        f"{method} sip:a_weird.user~(it!s)&ok+then$/fine?,/;;*:&pa+ss=1,wor!*d$~_.(x)@odd.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP tortured.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
        'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:a_weird.user~(it!s)&ok+then$/fine?,/;;*@odd.example.com>\r\n'
        "From: tok1~` tok2'+_ tok3*%!.- <sip:plain@example.com>;odd''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\";tag=_tg~1'+`*%!-.\r\n"
        "Call-ID: intmeth.w%ZZ-!.*_+'@w`~)(><:\\/\"][?}{\r\n"
        f"CSeq: 139122385 {method}\r\n"
        "Max-Forwards: 255\r\n"
        "ext-Header-!.%*+_`'~:\ufeff\u5927\u505c\u96fb\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode("utf-8")
    message = parse_message(data)
    assert message.method == method  # `%re` stays as written: no escapes in a method
    assert message.uri.user == "a_weird.user~(it!s)&ok+then$/fine?,/;;*"
    assert message.uri.password == "&pa+ss=1,wor!*d$~_.(x)" and message.uri.host == "odd.example.com"
    assert message.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert message.to.display == '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"'
    assert unquote(message.to.display) == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert message.to.uri.user == "a_weird.user~(it!s)&ok+then$/fine?,/;;*"
    assert message.from_.display == "tok1~` tok2'+_ tok3*%!.-"
    assert message.from_.params.get("odd''~+*_!.-%") == '"\u0440\u0430\u0431\u043e\u0442\u0430"'
    assert message.from_.tag == "_tg~1'+`*%!-."
    assert message.call_id == "intmeth.w%ZZ-!.*_+'@w`~)(><:\\/\"][?}{"
    assert message.headers.get("ext-header-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert message.max_forwards == 255
    assert message.to_bytes() == data


def test_3_1_1_3_esc01_valid_percent_escaping():
    """Escapes in the user part (an escaped `sips:user@` inside a user), in To and From,
    and in URI parameter names and values: kept as written, equal to their unescaped
    form where RFC 3261 §19.1.4 says so."""
    data = wire("""INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%62o%62@example.com
From: <sip:I%20have%20spaces@example.net>;tag=e01
Max-Forwards: 87
i: esc01-own.9q
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKesc01
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {length}

""", SDP)
    message = parse_message(data)
    assert (message.uri.user, message.uri.host) == ("sips%3Auser%40example.com", "example.net")
    assert message.to.uri.user == "%62o%62"
    assert message.to.uri == SipUri(user="bob", host="example.com")
    assert message.from_.uri.user == "I%20have%20spaces"
    assert list(message.contact[0].uri.params.items()) == [("%6C%72", None), ("n%61me", "v%61lue%25%34%31")]
    assert message.contact[0].uri == SipUri(user="caller", host="host5.example.net")
    assert message.to_bytes() == data


def test_3_1_1_4_escnull_escaped_nulls_in_uris():
    """%00 in user parts must not end any string; two Contacts differing only in the
    number of escaped NULs are different."""
    data = wire("""REGISTER sip:example.com SIP/2.0
To: sip:nul-%00-nul@example.com
From: sip:nul-%00-nul@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull-own.39203
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;rport;branch=z9hG4bKescnull
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

""")
    message = parse_message(data)
    assert message.to.uri.user == "nul-%00-nul" and message.from_.tag == "839923423"
    first, second = message.contact
    assert (first.uri.user, second.uri.user) == ("%00", "%00%00")
    assert first.uri != second.uri
    assert message.to_bytes() == data


def test_3_1_1_5_esc02_percent_where_it_is_not_an_escape():
    """`%` in a method, in a quoted display name (`%Z%45` is text), and in a header name:
    `C%6Fntact` is an unknown header, not Contact."""
    data = wire("""RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02-own.asdfnqwo
Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bKesc02
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0

""")
    message = parse_message(data)
    assert message.method == "RE%47IST%45R" and message.method != "REGISTER"
    assert message.to.display == '"%Z%45"'
    assert [str(contact.uri) for contact in message.contact] == [
        "sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]
    assert message.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert message.to_bytes() == data


def test_3_1_1_6_lwsdisp_no_lws_between_display_name_and_bracket():
    data = wire("""OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp-own.1234abcd
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuwlwsdisp
l: 0

""")
    message = parse_message(data)
    assert message.from_.display == "caller" and str(message.from_.uri) == "sip:caller@example.com"
    assert message.to_bytes() == data


def test_3_1_1_7_longreq_long_values_in_header_fields():
    """Long values everywhere: To display name, From tag, Call-ID, a branch, an unknown
    header, a long user part, and many Via values (within our limits)."""
    long_tag = "t" * 700
    long_user = "u" * 1200
    vias = "".join(f"Via: SIP/2.0/TCP sip{n}.example.com;branch=z9hG4bK{'b' * 200}{n}\r\n" for n in range(40))
    data = (
        f"INVITE sip:{long_user}@long.example.com SIP/2.0\r\n"
        f'To: "{"I have a user name of " + "extreme " * 100 + "proportion"}" <sip:{long_user}@long.example.com>\r\n'
        f"From: sip:caller@example.net;tag={long_tag}\r\n"
        f"Call-ID: longreq.{'c' * 1000}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        f"{vias}"
        f"Unknown-LongHeader: {'x' * 4000}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert message.uri.user == long_user and message.to.uri.user == long_user
    assert "extreme " * 100 in message.to.display
    assert message.from_.tag == long_tag
    assert len(message.call_id) == len("longreq.") + 1000
    assert len(message.via) == 40 and message.via[39].branch.endswith("b39")
    assert len(message.headers.get("Unknown-LongHeader")) == 4000
    assert message.to_bytes() == data


def test_3_1_1_8_dblreq_extra_octets_after_the_message_in_a_datagram():
    """A REGISTER followed, in the same datagram, by octets that look like an INVITE:
    Content-Length says where the message ends; the rest is noise (RFC 3261 §18.3)."""
    register = wire("""REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq-own.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0

""")
    noise = wire("""INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq-own.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: {length}

""", SDP)
    message = parse_message(register + noise)
    assert message.method == "REGISTER" and message.body == b""
    assert message.to_bytes() == register


def test_3_1_1_9_semiuri_semicolon_parameters_in_the_user_part():
    data = wire("""OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri-own.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuwsemi
l: 0

""")
    message = parse_message(data)
    assert (message.uri.user, message.uri.host, len(message.uri.params)) == ("user;par=u%40example.net", "example.com", 0)
    assert message.headers.get_all("Accept") == [
        "application/sdp", "application/pkcs7-mime", "multipart/mixed", "multipart/signed", "message/sip",
        "message/sipfrag"]
    assert message.to_bytes() == data


def test_3_1_1_10_transports_varied_and_unknown_transport_types():
    data = wire("""OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: transports-own.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

""")
    message = parse_message(data)
    assert [via.transport for via in message.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert message.to_bytes() == data


def test_3_1_1_11_mpart01_multipart_with_binary_content():
    """A multipart/signed body whose second part is binary (CR, LF, NUL, bytes >0x7F):
    the body is bytes, split at the boundary, each part kept byte-exact."""
    signature = bytes(range(256)) + b"\r\n--not-the-boundary\r\n\x00\x00"
    body = (
        b"--signed-boundary\r\nContent-Type: application/sdp\r\n\r\n" + SDP
        + b"\r\n--signed-boundary\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        b"Content-Transfer-Encoding: binary\r\nContent-Disposition: attachment; filename=smime.p7s; handling=required\r\n\r\n"
        + signature + b"\r\n--signed-boundary--\r\n"
    )
    data = wire("""MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.61;branch=z9hG4bKmpart01
Max-Forwards: 70
To: <sip:kumiko@example.org>
From: <sip:bob@example.com>;tag=mp01
Call-ID: mpart01-own.123456
CSeq: 1 MESSAGE
Content-Type: multipart/signed;
 protocol="application/pkcs7-signature";
 micalg=sha1; boundary=signed-boundary
Content-Length: {length}

""", body)
    message = parse_message(data)
    assert message.content_type.subtype == "signed" and message.content_type.boundary == "signed-boundary"
    sdp, signed = message.multipart.parts
    assert sdp.content == SDP and sdp.mime == "application/sdp"
    assert signed.content == signature and signed.disposition.type == "attachment"
    assert signed.disposition.handling == "required"
    assert message.multipart.to_bytes() == body and message.to_bytes() == data


def test_3_1_1_12_unreason_unusual_reason_phrase():
    reason = "= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435"
    data = wire(f"""SIP/2.0 200 {reason}
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason-own.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: {{length}}
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>

""", SDP)
    message = parse_message(data)
    assert isinstance(message, Response) and message.status == 200 and message.reason == reason
    assert message.to_bytes() == data


def test_3_1_1_13_noreason_empty_reason_phrase():
    data = wire("""SIP/2.0 100 \nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason-own.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

""")
    message = parse_message(data)
    assert (message.status, message.reason) == (100, "")
    assert message.to_bytes() == data


# -- §3.1.2 invalid messages --------------------------------------------------------------

VALID_OPTIONS = """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: invalid-own.0ha0isnda977644900765
CSeq: 8 OPTIONS
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Length: 0

"""


def test_the_invalid_cases_start_from_a_valid_message():
    assert parse_message(wire(VALID_OPTIONS)).method == "OPTIONS"


def test_3_1_2_1_badinv01_extraneous_header_field_separators():
    data = wire(VALID_OPTIONS.replace("Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234",
                                      "Via: SIP/2.0/UDP 192.0.2.15;;,;,,")
                .replace(";tag=134161461246", ";;tag=134161461246")
                .replace("Content-Length: 0", 'Contact: "Joe" <sip:joe@example.org>;;;;\nContent-Length: 0'))
    assert refused(data).status == 400


def test_3_1_2_2_clerr_content_length_larger_than_the_message():
    # Over UDP: 400. (A stream transport would wait for more octets; that is the framer's.)
    data = wire(VALID_OPTIONS.replace("Content-Length: 0", "Content-Type: application/sdp\nContent-Length: 9999"), SDP)
    error = refused(data)
    assert error.status == 400 and isinstance(error.message, Request)


def test_3_1_2_3_ncl_negative_content_length():
    data = wire(VALID_OPTIONS.replace("Content-Length: 0", "Content-Type: application/sdp\nContent-Length: -999"), SDP)
    assert refused(data).status == 400


def test_3_1_2_4_scalar02_request_scalar_fields_with_overlarge_values():
    """CSeq number over 2**31, Max-Forwards over 255, Expires and a Contact `expires`
    over 2**32: 400 because of the CSeq. Alone, a too large Max-Forwards is refused
    too (the RFC allows treating it as absent; we refuse, the peer is broken). The
    expiry values are not the parser's business: it keeps them for the registrar."""
    data = wire(VALID_OPTIONS.replace("OPTIONS", "REGISTER").replace("CSeq: 8 REGISTER", "CSeq: 36893488147419103232 REGISTER")
                .replace("Max-Forwards: 7", "Max-Forwards: 300")
                .replace("Content-Length: 0", "Expires: 10000000000000000000\n"
                         "Contact: <sip:user@host129.example.com>;expires=280297596632815\nContent-Length: 0"))
    assert refused(data).status == 400
    assert refused(wire(VALID_OPTIONS.replace("Max-Forwards: 7", "Max-Forwards: 300"))).status == 400
    only_expiry = wire(VALID_OPTIONS.replace("Content-Length: 0", "Expires: 10000000000000000000\n"
                                             "Contact: <sip:user@h.example.com>;expires=280297596632815\nContent-Length: 0"))
    message = parse_message(only_expiry)
    assert message.contact[0].params.get("expires") == "280297596632815"


def test_3_1_2_5_scalarlg_response_scalar_fields_with_overlarge_values():
    # A response is dropped, not answered: MessageError is how the parser says so.
    data = wire("""SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg-own.noase0of0234hn2er2n
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0

""")
    assert isinstance(refused(data).message, Response)


def test_3_1_2_6_quotbal_unterminated_quoted_string_in_display_name():
    # We do not guess where the quote should have ended (the RFC warns against bad guesses).
    data = wire(VALID_OPTIONS.replace("To: sip:user@example.com", 'To: "Mr. J. User <sip:j.user@example.com>'))
    assert refused(data).status == 400
    data = wire(VALID_OPTIONS.replace("To: sip:user@example.com",
                                      'To: "Mr J. User <sip:j.user@example.com> <sip:realj@example.net>'))
    assert refused(data).status == 400


def test_3_1_2_7_ltgtruri_angle_brackets_around_the_request_uri():
    assert refused(wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com SIP/2.0",
                                              "OPTIONS <sip:user@example.com> SIP/2.0"))).status == 400


def test_3_1_2_8_lwsruri_white_space_inside_the_request_uri():
    assert refused(wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com SIP/2.0",
                                              "OPTIONS sip:user@example.com; lr SIP/2.0"))).status == 400


def test_3_1_2_9_lwsstart_several_spaces_between_request_line_elements():
    # The RFC lets a liberal element accept this; we refuse (RFC 3261 §7.1: single SP).
    assert refused(wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com SIP/2.0",
                                              "OPTIONS  sip:user@example.com   SIP/2.0"))).status == 400


def test_3_1_2_10_trws_spaces_at_the_end_of_the_request_line():
    assert refused(wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com SIP/2.0",
                                              "OPTIONS sip:user@example.com SIP/2.0  "))).status == 400


def test_3_1_2_11_escruri_headers_in_the_request_uri():
    error = refused(wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com SIP/2.0",
                                               "OPTIONS sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0")))
    assert error.status == 400 and isinstance(error.message, Request)


def test_3_1_2_12_baddate_non_gmt_time_zone_in_date():
    # The RFC allows ignoring a Date that the element does not use. We do not use Date:
    # the request is accepted and the header relayed as it came.
    data = wire(VALID_OPTIONS.replace("Content-Length: 0", "Date: Fri, 01 Jan 2010 16:00:00 EST\nContent-Length: 0"))
    message = parse_message(data)
    assert message.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST" and message.to_bytes() == data


def test_3_1_2_13_regbadct_uri_with_headers_not_in_angle_brackets():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "REGISTER").replace(
        "Content-Length: 0", "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\nContent-Length: 0"))
    error = refused(data)
    assert error.status == 400 and "angle brackets" in error.reason


def test_3_1_2_14_badaspec_spaces_inside_the_addr_spec():
    # The RFC allows a liberal element to ignore the spaces; we do, the address is clear.
    data = wire(VALID_OPTIONS.replace("To: sip:user@example.com", 'To: "Watson, Thomas" < sip:t.watson@example.org >'))
    message = parse_message(data)
    assert str(message.to.uri) == "sip:t.watson@example.org" and message.to_bytes() == data


def test_3_1_2_15_baddn_non_token_characters_in_an_unquoted_display_name():
    data = wire(VALID_OPTIONS.replace("To: sip:user@example.com", "To: Watson, Thomas <sip:t.watson@example.org>")
                .replace("From: sip:caller@example.net;tag=134161461246",
                         "From: Bell, Alexander <sip:a.g.bell@example.com>;tag=433423"))
    assert refused(data).status == 400


def test_3_1_2_16_badvers_unknown_protocol_version():
    data = wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com SIP/2.0", "OPTIONS sip:user@example.com SIP/7.0"))
    assert refused(data).status == 505


def test_3_1_2_17_mismatch01_method_and_cseq_method_differ():
    assert refused(wire(VALID_OPTIONS.replace("CSeq: 8 OPTIONS", "CSeq: 8 INVITE"))).status == 400


def test_3_1_2_18_mismatch02_unknown_method_and_cseq_method_differ():
    # The RFC prefers 501 but accepts 400; the parser cannot know the method is unknown
    # to the core, so it says 400.
    data = wire(VALID_OPTIONS.replace("OPTIONS sip:", "NEWMETHOD sip:").replace("CSeq: 8 OPTIONS", "CSeq: 8 INVITE"))
    assert refused(data).status == 400


def test_3_1_2_19_bigcode_overlarge_response_code():
    data = wire("""SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode-own.asdof3uj203asdnf3429uasdhfas3
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

""")
    assert refused(data).status == 400  # a response: dropped


# -- §3.2 transaction layer ----------------------------------------------------------------


def test_3_2_1_badbranch_magic_cookie_without_an_identifier():
    # Parsers must not break; matching falls back to RFC 2543 rules (is_rfc3261 False).
    data = wire(VALID_OPTIONS.replace("branch=z9hG4bKkdjuw380234", "branch=z9hG4bK"))
    message = parse_message(data)
    assert message.top_via.branch == "z9hG4bK" and not message.top_via.is_rfc3261


# -- §3.3 application layer ----------------------------------------------------------------


def test_3_3_1_insuf_missing_required_header_fields():
    data = wire("""INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: {length}

""", SDP)
    error = refused(data)
    assert error.status == 400 and isinstance(error.message, Request)


def test_3_3_2_unkscm_request_uri_with_an_unknown_scheme():
    # 416 is the core's answer: the parser hands over an AbsoluteUri with the scheme.
    data = wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com", "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent"))
    message = parse_message(data)
    assert isinstance(message.uri, AbsoluteUri) and message.uri.scheme == "nobodyknowsthisscheme"
    assert message.uri.rest == "totallyopaquecontent" and message.to_bytes() == data


def test_3_3_3_novelsc_request_uri_with_a_known_but_atypical_scheme():
    data = wire(VALID_OPTIONS.replace("OPTIONS sip:user@example.com", "OPTIONS soap.beep://192.0.2.103:3002"))
    message = parse_message(data)
    assert isinstance(message.uri, AbsoluteUri) and message.uri.scheme == "soap.beep"


def test_3_3_4_unksm2_unknown_uri_schemes_in_header_fields():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "REGISTER").replace("To: sip:user@example.com", "To: isbn:2983792873")
                .replace("From: sip:caller@example.net;tag=134161461246", "From: <http://www.example.com>;tag=3234233")
                .replace("Content-Length: 0", "Contact: <name:John_Smith>\nContent-Length: 0"))
    message = parse_message(data)
    assert (message.to.uri.scheme, message.from_.uri.scheme, message.contact[0].uri.scheme) == ("isbn", "http", "name")


def test_3_3_5_bext01_unknown_require_and_proxy_require_option_tags():
    data = wire(VALID_OPTIONS.replace("Content-Length: 0", "Require: nothingSupportsThis, nothingSupportsThisEither\n"
                                      "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis\nContent-Length: 0"))
    message = parse_message(data)
    assert message.require == ["nothingsupportsthis", "nothingsupportsthiseither"]  # for 420 + Unsupported
    assert message.headers.get_all("Proxy-Require") == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]


def test_3_3_6_invut_unknown_content_type():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "INVITE").replace(
        "Content-Length: 0", "Content-Type: application/unknownformat\nContent-Length: {length}"), b"<audio>\r\n <pcmu port=\"443\"/>\r\n</audio>\r\n")
    message = parse_message(data)
    assert message.content_type.mime == "application/unknownformat" and message.multipart is None  # for 415


def test_3_3_7_regaut01_unknown_authorization_scheme():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "REGISTER").replace(
        "Content-Length: 0", "Authorization: NoOneKnowsThisScheme opaque-data=here, more=\"a,b\"\nContent-Length: 0"))
    message = parse_message(data)
    assert message.headers.get_all("Authorization") == ['NoOneKnowsThisScheme opaque-data=here, more="a,b"']


def test_3_3_8_multi01_multiple_values_in_single_value_fields():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "INVITE").replace(
        "Content-Length: 0", "From: sip:caller@example.net;tag=2923420123\nTo: sip:user@example.com, sip:other@example.net\n"
        "Content-Length: 0"))
    assert refused(data).status == 400
    # a To holding two addresses in one field is refused on its own too
    data = wire(VALID_OPTIONS.replace("To: sip:user@example.com", "To: sip:user@example.com, sip:other@example.net"))
    assert refused(data).status == 400


def test_3_3_9_mcl01_multiple_content_length_values():
    data = wire(VALID_OPTIONS.replace("Content-Length: 0", "Content-Length: 0\nContent-Length: 4")) + b"abcd"
    assert refused(data).status == 400


def test_3_3_10_bcast_response_with_a_broadcast_via():
    # Well formed: the parser accepts; never sending to 255.255.255.255 is the transport's.
    data = wire("""SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast-own.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 0
Contact: <sip:user@host28.example.com>

""")
    assert parse_message(data).via[1].sent_by == ("255.255.255.255", None)


def test_3_3_11_zeromf_max_forwards_of_zero():
    message = parse_message(wire(VALID_OPTIONS.replace("Max-Forwards: 7", "Max-Forwards: 0")))
    assert message.max_forwards == 0  # a proxy answers 483; an endpoint processes it


def test_3_3_12_cparam01_contact_parameter_of_an_addr_spec_is_a_header_parameter():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "REGISTER").replace(
        "Content-Length: 0", "Contact: sip:+19725552222@gw1.example.net;unknownparam;expires=450\nContent-Length: 0"))
    contact = parse_message(data).contact[0]
    assert len(contact.uri.params) == 0
    assert "unknownparam" in contact.params and contact.params.get("expires") == "450"


def test_3_3_13_cparam02_uri_parameter_inside_angle_brackets_stays_in_the_uri():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "REGISTER").replace(
        "Content-Length: 0", "Contact: <sip:+19725552222@gw1.example.net;unknownparam>;expires=450\nContent-Length: 0"))
    contact = parse_message(data).contact[0]
    assert "unknownparam" in contact.uri.params and "unknownparam" not in contact.params
    assert contact.params.get("expires") == "450"


def test_3_3_14_regescrt_escaped_header_in_a_bracketed_contact_is_kept():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "REGISTER").replace(
        "Content-Length: 0", "Contact: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\nContent-Length: 0"))
    message = parse_message(data)
    assert message.contact[0].uri.headers == "Route=%3Csip:sip.example.com%3E"
    assert str(message.contact[0].uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    assert message.to_bytes() == data


def test_3_3_15_sdp01_unacceptable_accept_offering():
    data = wire(VALID_OPTIONS.replace("OPTIONS", "INVITE").replace(
        "Content-Length: 0", "Accept: text/nobodyKnowsThis\nContent-Type: application/sdp\nContent-Length: {length}"), SDP)
    message = parse_message(data)
    assert message.headers.get_all("Accept") == ["text/nobodyKnowsThis"] and message.body == SDP


# -- §3.4 backward compatibility ---------------------------------------------------------


def test_3_4_1_inv2543_rfc2543_style_invite():
    """No branch, no Max-Forwards, no To tag, a hold SDP (c=0.0.0.0): accepted; the
    transaction layer matches it by the RFC 2543 rules."""
    body = SDP.replace(b"c=IN IP4 192.0.2.50", b"c=IN IP4 0.0.0.0")
    data = wire("""INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543-own.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp
Content-Length: {length}

""", body)
    message = parse_message(data)
    assert message.top_via.branch is None and not message.top_via.is_rfc3261
    assert message.max_forwards is None and message.to.tag is None and message.from_.tag is None
    assert message.to.params.get("user") == "phone" and len(message.to.uri.params) == 0
    assert message.from_.uri.params.get("user") == "phone"
    assert message.record_route[0].uri.params.get("maddr") == "ss1.example.com"
    assert b"c=IN IP4 0.0.0.0" in message.body and message.to_bytes() == data
