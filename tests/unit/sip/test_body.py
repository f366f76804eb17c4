"""Message bodies (b2bua/sip/body.py): media types and multipart bodies as real clients
send them (interop-notes, e911-reference §1.3), kept byte-exact, with each tolerated
irregularity recorded as a defect code."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.sip import BodyPart, build_multipart, parse_media_type, parse_message, parse_multipart

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sip"

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
PIDF = b'<?xml version="1.0"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@example.com"/>\r\n'


def split(body: bytes, content_type: str):
    multipart = parse_multipart(body, parse_media_type(content_type))
    assert multipart is not None
    return multipart


def emergency_body(boundary: bytes = b"boundary1", line_end: bytes = b"\r\n") -> bytes:
    sdp, pidf = SDP.replace(b"\r\n", line_end), PIDF.replace(b"\r\n", line_end)
    return line_end.join([
        b"--" + boundary, b"Content-Type: application/sdp", b"", sdp,
        b"--" + boundary, b"Content-Type: application/pidf+xml", b"Content-ID: <target123@atlanta.example.com>",
        b"Content-Disposition: by-reference;handling=optional", b"", pidf,
        b"--" + boundary + b"--", b"",
    ])


# -- media types ------------------------------------------------------------------------


def test_media_type_is_lower_cased_and_keeps_its_parameters():
    media = parse_media_type('Multipart/MIXED; Boundary="abc def"; charset=UTF-8')
    assert (media.type, media.subtype, media.mime) == ("multipart", "mixed", "multipart/mixed")
    assert media.is_multipart and media.boundary == "abc def" and media.charset == "utf-8"
    assert media.defects == []


def test_space_before_the_semicolon_as_lync_writes_it():
    media = parse_media_type("application/sdp ; charset=utf-8")
    assert media.mime == "application/sdp" and media.charset == "utf-8"


@pytest.mark.parametrize("value", ["application", "/sdp", "application/", ""])
def test_a_value_that_is_not_type_slash_subtype_is_none(value):
    assert parse_media_type(value) is None


@pytest.mark.parametrize("value,boundary,defects", [
    ("multipart/mixed;boundary=simple", "simple", []),
    ('multipart/mixed;boundary="----=_NextPart_000"', "----=_NextPart_000", []),
    ("multipart/mixed; boundary= ------=_NextPart_000_4A6D_01CAB3D6.7519F890", "------=_NextPart_000_4A6D_01CAB3D6.7519F890",
     ["boundary-whitespace", "boundary-unquoted-tspecials"]),
    ("multipart/mixed;boundary=a:b", "a:b", ["boundary-unquoted-tspecials"]),
    ("multipart/mixed;boundary=abc ", "abc", ["boundary-whitespace"]),
    ("multipart/mixed;boundary=" + "x" * 71, "x" * 71, ["boundary-too-long"]),
    ('multipart/mixed;boundary="' + "y" * 70 + '"', "y" * 70, []),
])
def test_boundary_defects_are_recorded(value, boundary, defects):
    media = parse_media_type(value)
    assert media.boundary == boundary
    assert sorted(media.defects) == sorted(defects)


# -- splitting ---------------------------------------------------------------------------


def test_parts_keep_their_headers_and_exact_bytes():
    body = emergency_body()
    multipart = split(body, "multipart/mixed;boundary=boundary1")
    sdp, pidf = multipart.parts
    # the CRLF before a delimiter belongs to the delimiter, not to the content
    assert sdp.mime == "application/sdp" and sdp.content == SDP
    assert pidf.mime == "application/pidf+xml" and pidf.content == PIDF
    assert pidf.content_id == "<target123@atlanta.example.com>"
    assert pidf.disposition.type == "by-reference" and pidf.disposition.handling == "optional"
    assert pidf.raw == (b"Content-Type: application/pidf+xml\r\nContent-ID: <target123@atlanta.example.com>\r\n"
                        b"Content-Disposition: by-reference;handling=optional\r\n\r\n" + PIDF)
    assert multipart.defects == [] and multipart.preamble == b"" and multipart.epilogue == b""


def test_handling_defaults_to_required():
    part = BodyPart.build([("Content-Type", "application/pidf+xml"), ("Content-Disposition", "render")], PIDF)
    assert part.disposition.type == "render" and part.disposition.handling == "required"
    assert BodyPart.build([("Content-Type", "text/plain")], b"x").disposition is None


def test_part_header_names_are_case_insensitive():
    body = b"--b\r\ncontent-type: application/sdp\r\nCONTENT-ID: <a@b>\r\n\r\nv=0\r\n--b--\r\n"
    part = split(body, "multipart/mixed;boundary=b").parts[0]
    assert part.mime == "application/sdp" and part.content_id == "<a@b>"
    assert part.headers == [("content-type", "application/sdp"), ("CONTENT-ID", "<a@b>")]


def test_folded_part_header_is_unfolded():
    body = b"--b\r\nContent-Disposition: by-reference;\r\n handling=optional\r\n\r\nx\r\n--b--"
    part = split(body, "multipart/mixed;boundary=b").parts[0]
    assert part.header("content-disposition") == "by-reference; handling=optional"
    assert part.disposition.handling == "optional"


def test_a_part_without_headers_is_all_content():
    multipart = split(b"--b\r\n\r\nplain\r\n--b\r\nno header line\r\n--b--\r\n", "multipart/mixed;boundary=b")
    assert [(part.headers, part.content) for part in multipart.parts] == [([], b"plain"), ([], b"no header line")]


def test_boundary_text_inside_content_is_not_a_delimiter():
    body = b"--b\r\nContent-Type: text/plain\r\n\r\n--bx is text\r\nsee --b here\r\n--b--x too\r\n--b--\r\n"
    part = split(body, "multipart/mixed;boundary=b").parts[0]
    assert part.content == b"--bx is text\r\nsee --b here\r\n--b--x too"


def test_transport_padding_after_a_delimiter_is_allowed():
    body = b"--b \t\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--  \r\n"
    multipart = split(body, "multipart/mixed;boundary=b")
    assert [part.content for part in multipart.parts] == [b"hi"] and "no-close-delimiter" not in multipart.defects


def test_unknown_multipart_subtype_is_treated_as_mixed():
    body = emergency_body()
    mixed = split(body, "multipart/mixed;boundary=boundary1")
    for subtype in ("x-unknown", "related", "alternative"):
        other = split(body, f"multipart/{subtype};boundary=boundary1")
        assert [part.raw for part in other.parts] == [part.raw for part in mixed.parts]


def test_nested_multipart_is_one_part_that_splits_again():
    inner = b"--in\r\nContent-Type: text/plain\r\n\r\na\r\n--in\r\nContent-Type: text/html\r\n\r\n<b>a</b>\r\n--in--"
    body = b"--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n" + inner + b"\r\n--out--\r\n"
    outer = split(body, "multipart/mixed;boundary=out")
    assert len(outer.parts) == 1
    nested = parse_multipart(outer.parts[0].content, outer.parts[0].content_type)
    assert [part.mime for part in nested.parts] == ["text/plain", "text/html"]


@pytest.mark.parametrize("content_type", ["multipart/mixed", "multipart/mixed;boundary=absent", "multipart/mixed;boundary="])
def test_no_boundary_or_no_delimiter_gives_none(content_type):
    assert parse_multipart(emergency_body(), parse_media_type(content_type)) is None


# -- what real clients send -----------------------------------------------------------------


def test_pjsua_blank_line_before_first_boundary_and_per_part_content_length():
    message = parse_message((FIXTURES / "pjsua-emergency-invite.sip").read_bytes())
    multipart = message.multipart
    assert multipart.preamble == b"\r\n"
    assert [part.mime for part in multipart.parts] == ["application/pidf+xml", "application/sdp"]  # PIDF first
    assert multipart.parts[0].header("Content-Length") == str(len(multipart.parts[0].content))
    assert multipart.parts[0].content.endswith(b"</presence>\r\n")  # per-part length keeps the final CRLF
    assert multipart.parts[1].content.endswith(b"a=sendrecv\r\n")
    assert multipart.defects == ["preamble", "part-content-length"]
    assert multipart.to_bytes() == message.body


def test_linphone_pidf_part_has_no_content_id():
    message = parse_message((FIXTURES / "linphone-emergency-invite.sip").read_bytes())
    sdp, pidf = message.multipart.parts
    assert pidf.mime == "application/pidf+xml" and pidf.content_id is None
    assert message.headers.get("Geolocation") == "<cid:bob-location@example.com>"  # dangles
    assert message.multipart.defects == ["part-content-length"]
    assert pidf.content.startswith(b"<?xml") and pidf.content.endswith(b"</presence>\r\n")


def test_lync_boundary_with_equals_sign_and_space_after_boundary():
    message = parse_message((FIXTURES / "lync-emergency-invite.sip").read_bytes())
    assert message.content_type.boundary == "------=_NextPart_000_4A6D_01CAB3D6.7519F890"
    multipart = message.multipart
    assert [part.mime for part in multipart.parts] == ["application/sdp", "application/pidf+xml"]
    assert multipart.parts[0].header("Content-Type") == "application/sdp ; charset=utf-8"
    assert multipart.parts[0].content_type.charset == "utf-8"
    assert multipart.parts[1].content_id == "<carol@contoso.example>"
    assert message.headers.get("Geolocation") == '<cid:sip:carol@contoso.example>;inserted-by="sip:carol@contoso.example"'
    assert multipart.defects == ["boundary-whitespace", "boundary-unquoted-tspecials"]


def test_lf_only_line_ends_inside_the_body():
    body = emergency_body(line_end=b"\n")
    multipart = split(body, "multipart/mixed;boundary=boundary1")
    assert multipart.defects == ["lf-line-endings"]
    assert multipart.line_end == b"\n"
    assert [part.mime for part in multipart.parts] == ["application/sdp", "application/pidf+xml"]
    assert multipart.parts[1].content_id == "<target123@atlanta.example.com>"
    assert multipart.parts[0].content == SDP.replace(b"\r\n", b"\n")
    assert multipart.to_bytes() == body


def test_missing_close_delimiter_keeps_the_last_part():
    body = emergency_body().replace(b"--boundary1--\r\n", b"")
    multipart = split(body, "multipart/mixed;boundary=boundary1")
    assert "no-close-delimiter" in multipart.defects
    assert multipart.parts[1].content.startswith(b"<?xml") and multipart.to_bytes() == body


def test_preamble_and_epilogue_are_kept():
    body = b"This is a MIME body.\r\n" + emergency_body() + b"epilogue text\r\n"
    multipart = split(body, "multipart/mixed;boundary=boundary1")
    assert multipart.preamble == b"This is a MIME body.\r\n" and multipart.epilogue == b"epilogue text\r\n"
    assert multipart.defects == ["preamble"]


def test_per_part_content_length_longer_than_the_part_is_ignored():
    body = b"--b\r\nContent-Type: text/plain\r\nContent-Length: 999\r\n\r\nshort\r\n--b--\r\n"
    part = split(body, "multipart/mixed;boundary=b").parts[0]
    assert part.content == b"short"


@pytest.mark.parametrize("value", ["\u00b2", "-1", "x"])
def test_per_part_content_length_that_is_no_number_is_ignored(value):
    body = f"--b\r\nContent-Length: {value}\r\n\r\nshort\r\n--b--\r\n".encode()
    assert split(body, "multipart/mixed;boundary=b").parts[0].content == b"short"


# -- re-serializing -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pjsua-emergency-invite.sip", "linphone-emergency-invite.sip",
                                  "lync-emergency-invite.sip", "rfc-emergency-invite.sip"])
def test_an_unmodified_multipart_body_serializes_to_its_original_bytes(name):
    message = parse_message((FIXTURES / name).read_bytes())
    assert message.multipart.to_bytes() == message.body
    # re-delimited from the same parts (as `with_parts` does), the body is the same too
    again = message.multipart.with_parts(message.multipart.parts)
    assert again.raw is None and again.to_bytes() == message.body


def test_with_parts_drops_a_part_and_keeps_the_others_byte_exact():
    data = (FIXTURES / "rfc-emergency-invite.sip").read_bytes()
    message = parse_message(data)
    sdp, pidf = message.multipart.parts
    stripped = message.multipart.with_parts([sdp])
    body = stripped.to_bytes()
    assert body == b"--boundary-rfc5621-7f3c\r\n" + sdp.raw + b"\r\n--boundary-rfc5621-7f3c--\r\n"
    again = split(body, message.headers.get("Content-Type"))
    assert [part.raw for part in again.parts] == [sdp.raw]
    message.body = body
    out = message.to_bytes()
    assert f"Content-Length: {len(body)}\r\n".encode() in out
    assert parse_message(out).multipart.parts[0].raw == sdp.raw


def test_with_parts_keeps_a_dropped_parts_neighbours_headers_and_order():
    message = parse_message((FIXTURES / "pjsua-emergency-invite.sip").read_bytes())
    pidf, sdp = message.multipart.parts
    swapped = message.multipart.with_parts([sdp, pidf])
    again = split(swapped.to_bytes(), message.headers.get("Content-Type"))
    assert [part.raw for part in again.parts] == [sdp.raw, pidf.raw]
    assert again.parts[1].content_id == "<loc-3f2a@pjsua.example.com>"


def test_lync_sdp_part_ending_right_before_the_delimiter_loses_only_the_delimiters_crlf():
    # Lync writes `...a=sendrecv\r\n------=_NextPart...`: that CRLF belongs to the
    # delimiter (RFC 2046 §5.1.1), so the SDP content ends without it and re-delimiting
    # writes it back.
    message = parse_message((FIXTURES / "lync-emergency-invite.sip").read_bytes())
    sdp = message.multipart.parts[0]
    assert sdp.content.endswith(b"a=sendrecv") and sdp.raw.endswith(b"a=sendrecv")
    dropped = message.multipart.with_parts([sdp]).to_bytes()
    assert dropped == message.body[: message.body.index(b"a=sendrecv\r\n") + 12] + (
        b"--------=_NextPart_000_4A6D_01CAB3D6.7519F890--\r\n")


def test_a_part_list_changed_in_place_is_not_hidden_behind_the_original_bytes():
    message = parse_message((FIXTURES / "rfc-emergency-invite.sip").read_bytes())
    multipart = parse_multipart(message.body, message.content_type)
    sdp, pidf = multipart.parts
    multipart.parts.remove(pidf)
    assert multipart.to_bytes() == multipart.with_parts([sdp]).to_bytes() != message.body


def test_parts_with_undecodable_header_bytes_rebuild_without_encoding_errors():
    body = b"--b\r\nContent-Type: text/plain\r\nX-Name: caf\xe9\r\n\r\nhi\r\n--b--\r\n"
    part = split(body, "multipart/mixed;boundary=b").parts[0]
    rebuilt = BodyPart.build(part.headers, part.content)
    assert rebuilt.raw == part.raw
    assert build_multipart([rebuilt], "b") == body


def test_build_multipart_makes_a_body_that_splits_back():
    parts = [BodyPart.build([("Content-Type", "application/sdp")], SDP),
             BodyPart.build([("Content-Type", "application/pidf+xml"), ("Content-ID", "<x@y>")], PIDF)]
    body = build_multipart(parts, "b-1")
    again = split(body, 'multipart/mixed;boundary="b-1"')
    assert [(part.headers, part.content) for part in again.parts] == [(part.headers, part.content) for part in parts]
    assert again.defects == []


def test_message_multipart_view_follows_body_and_content_type_changes():
    message = parse_message((FIXTURES / "rfc-emergency-invite.sip").read_bytes())
    first = message.multipart
    assert message.multipart is first  # cached
    message.body = first.with_parts(first.parts[:1]).to_bytes()
    assert len(message.multipart.parts) == 1
    message.headers.set("Content-Type", "application/sdp")
    assert message.multipart is None


boundaries = st.text("abcdefghijklmnopqrstuvwxyz0123456789'()+_,-./:=?", min_size=1, max_size=70).filter(
    lambda text: not text.endswith(" "))
# A payload ending in CR next to LF-only delimiters is ambiguous by construction: left out.
contents = st.binary(max_size=120).filter(lambda data: b"--" not in data and not data.endswith(b"\r"))


@settings(max_examples=300, deadline=None)
@given(boundary=boundaries, payloads=st.lists(contents, min_size=1, max_size=4),
       line_end=st.sampled_from([b"\r\n", b"\n"]), preamble=st.sampled_from([b"", b"\r\n", b"preamble\r\n"]))
def test_generated_bodies_split_into_their_parts_and_round_trip(boundary, payloads, line_end, preamble):
    parts = [BodyPart([("Content-Type", "application/octet-stream")], payload,
                      b"Content-Type: application/octet-stream" + line_end + line_end + payload) for payload in payloads]
    body = build_multipart(parts, boundary, preamble, b"", line_end)
    multipart = split(body, f'multipart/mixed;boundary="{boundary}"')
    assert [part.content for part in multipart.parts] == payloads
    assert multipart.to_bytes() == body
    assert multipart.with_parts(multipart.parts).to_bytes() == body
