"""`location.apply_location_policy`: what each policy and strip variant promises, without sockets.

Each outcome is also placed in a leg-B INVITE the way the bridge does it (fresh Via/From/To/
Call-ID/CSeq, the caller's other headers minus `remove_headers`, the outcome's Content-Type
and body, the stale Content-Length when asked for) and parsed again: what reaches a trunk
must be a well-formed SIP message, unless the variant's whole point is that it is not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from b2bua.engine.location import apply_location_policy
from b2bua.sip import Headers, MessageError, Request, parse_media_type, parse_message, parse_multipart

FIXTURES = Path(__file__).parents[2] / "fixtures" / "pidf"
LEG_B_OWN = ("via", "from", "to", "call-id", "cseq", "max-forwards", "contact", "content-type", "content-length")


def fixture(name: str) -> Request:
    message = parse_message((FIXTURES / name).read_bytes())
    assert isinstance(message, Request)
    return message


RFC = "t02_rfc_clean.sip"  # Geolocation + Geolocation-Routing, SDP then PIDF part with Content-ID
LYNC = "t01_lync_golden.sip"  # lower-case `geolocation:`, CONTENT-TYPE, `application/sdp ; charset=utf-8`
SINGLE_PIDF = "t09_single_part_pidf.sip"  # the whole body is the PIDF-LO (Content-ID on the message)


def place(request: Request, outcome) -> bytes:  # noqa: ANN001 - LocationOutcome
    """The outcome in a leg-B INVITE, as bytes on the wire."""
    removed = {name.lower() for name in outcome.remove_headers}
    headers = Headers.of([
        ("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKlegb1;rport"),
        ("Max-Forwards", "69"),
        ("From", "<sip:+14255550100@b2bua.example>;tag=legb"),
        ("To", "<sip:911@ecrc.example;user=phone>"),
        ("Call-ID", "leg-b-call-id"),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:198.51.100.1:5060>"),
    ])
    for item in request.headers.fields:
        if item.key not in LEG_B_OWN and item.key not in removed:
            headers.append_field(item)
    if outcome.content_type is not None:
        headers.add("Content-Type", outcome.content_type)
    leg_b = Request("INVITE", "sip:911@ecrc.example;user=phone", headers, outcome.body)
    leg_b.content_length_override = outcome.stale_content_length
    return leg_b.to_bytes()


def reparse(request: Request, outcome) -> Request:  # noqa: ANN001
    """Place, parse again and check the framing and the body's self-consistency."""
    wire = place(request, outcome)
    message = parse_message(wire)
    assert isinstance(message, Request)
    assert message.body == outcome.body
    assert int(message.headers.get("Content-Length")) == len(message.body)
    media = message.content_type
    if message.body:
        assert media is not None, "a body without Content-Type"
    else:
        assert media is None, "a Content-Type without a body"
    if media is not None and media.is_multipart:
        multipart = parse_multipart(message.body, media)
        assert multipart is not None and "no-close-delimiter" not in multipart.defects
    if media is not None and media.mime == "application/sdp":
        assert message.body.startswith(b"v=0")
    return message


def parts(request: Request):  # noqa: ANN201
    multipart = request.multipart
    assert multipart is not None
    return multipart.parts


def sdp_part(request: Request):  # noqa: ANN201
    return next(part for part in parts(request) if part.mime == "application/sdp")


def has_location_header(message: Request) -> bool:
    return "Geolocation" in message.headers or "Geolocation-Routing" in message.headers


# -- pass ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [RFC, LYNC, SINGLE_PIDF])
def test_pass_gives_leg_b_the_identical_body_bytes_and_every_header(name):
    request = fixture(name)
    outcome = apply_location_policy(request, "pass")
    assert outcome.body == request.body  # byte for byte
    assert outcome.content_type == request.headers.get("Content-Type")
    assert outcome.remove_headers == [] and outcome.stale_content_length is None
    assert not outcome.changed
    record = outcome.record
    assert record["body_changed"] is False and record["headers_removed"] == []
    assert [p["sha256"] for p in record["parts_in"]] == [p["sha256"] for p in record["parts_out"]]
    message = reparse(request, outcome)
    assert message.headers.get_all("Geolocation") == request.headers.get_all("Geolocation")
    assert message.headers.get("Geolocation-Routing") == request.headers.get("Geolocation-Routing")
    assert hashlib.sha256(message.body).digest() == hashlib.sha256(request.body).digest()


def test_pass_keeps_the_multipart_part_headers_byte_for_byte():
    request = fixture(RFC)
    message = reparse(request, apply_location_policy(request, "pass"))
    assert [part.raw for part in parts(message)] == [part.raw for part in parts(request)]


# -- strip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [RFC, LYNC])
def test_strip_full_collapses_to_the_sdp_and_removes_every_location_header(name):
    request = fixture(name)
    sdp = sdp_part(request)
    outcome = apply_location_policy(request, "strip", "full")
    assert outcome.body == sdp.content
    assert outcome.content_type == sdp.header("Content-Type")
    assert set(outcome.remove_headers) == {n for n in ("Geolocation", "Geolocation-Routing") if n in request.headers}
    message = reparse(request, outcome)
    assert not has_location_header(message)  # also Lync's lower-case `geolocation:`
    assert b"pidf" not in message.body
    assert message.headers.get("Priority") == request.headers.get("Priority")
    assert outcome.record["body_changed"] is True
    assert [p["content_type"] for p in outcome.record["parts_out"]] == [sdp.header("Content-Type")]


def test_strip_full_of_a_single_part_pidf_body_leaves_no_body_and_no_dangling_content_id():
    request = fixture(SINGLE_PIDF)
    outcome = apply_location_policy(request, "strip", "full")
    assert outcome.body == b"" and outcome.content_type is None
    assert "Content-ID" in outcome.remove_headers
    message = reparse(request, outcome)
    assert not has_location_header(message) and "Content-ID" not in message.headers


@pytest.mark.parametrize("name", [RFC, LYNC])
def test_strip_keep_geolocation_removes_the_body_but_leaves_the_reference_dangling(name):
    request = fixture(name)
    outcome = apply_location_policy(request, "strip", "keep-geolocation")
    assert outcome.body == sdp_part(request).content
    assert outcome.remove_headers == []
    message = reparse(request, outcome)
    assert message.headers.get_all("Geolocation") == request.headers.get_all("Geolocation")
    assert message.multipart is None  # nothing the cid: could point at


@pytest.mark.parametrize("name", [RFC, LYNC])
def test_strip_drop_header_keeps_the_body_and_drops_only_geolocation(name):
    request = fixture(name)
    outcome = apply_location_policy(request, "strip", "drop-header")
    assert outcome.body == request.body
    assert outcome.content_type == request.headers.get("Content-Type")
    assert outcome.remove_headers == ["Geolocation"]
    message = reparse(request, outcome)
    assert "Geolocation" not in message.headers
    assert message.headers.get("Geolocation-Routing") == request.headers.get("Geolocation-Routing")
    assert not outcome.record["body_changed"]


def test_strip_drop_part_headers_keeps_every_part_content_but_only_its_content_type():
    request = fixture(RFC)
    outcome = apply_location_policy(request, "strip", "drop-part-headers")
    assert outcome.content_type == request.headers.get("Content-Type")
    assert outcome.remove_headers == []
    message = reparse(request, outcome)
    original, relayed = parts(request), parts(message)
    assert [part.content for part in relayed] == [part.content for part in original]
    assert [part.headers for part in relayed] == [[("Content-Type", part.header("Content-Type"))] for part in original]
    cid = request.headers.get("Geolocation").strip("<>").removeprefix("cid:")
    assert any(part.content_id == f"<{cid}>" for part in original)
    assert not any(part.content_id for part in relayed)  # the cid: reference dangles now
    assert message.headers.get("Geolocation") == request.headers.get("Geolocation")


def test_strip_stale_content_length_strips_like_full_but_keeps_the_old_length():
    request = fixture(RFC)
    full = apply_location_policy(request, "strip", "full")
    outcome = apply_location_policy(request, "strip", "stale-content-length")
    assert outcome.body == full.body and outcome.content_type == full.content_type
    assert outcome.remove_headers == full.remove_headers
    assert outcome.stale_content_length == len(request.body) > len(outcome.body)
    assert outcome.record["content_length_out"] == len(request.body)
    wire = place(request, outcome)
    assert f"Content-Length: {len(request.body)}\r\n".encode() in wire
    with pytest.raises(MessageError):  # the promised fault: the body is shorter than announced
        parse_message(wire)


@pytest.mark.parametrize("name", [RFC, LYNC])
def test_strip_keep_multipart_removes_the_pidf_part_and_keeps_the_wrapper(name):
    request = fixture(name)
    outcome = apply_location_policy(request, "strip", "keep-multipart")
    assert outcome.content_type == request.headers.get("Content-Type")
    message = reparse(request, outcome)
    (only,) = parts(message)
    assert only.raw == sdp_part(request).raw  # the SDP part, headers and all, unchanged
    assert not has_location_header(message)
    media = parse_media_type(outcome.content_type)
    assert media is not None and media.is_multipart


@pytest.mark.parametrize("variant", ["full", "keep-geolocation", "drop-header", "drop-part-headers",
                                     "stale-content-length", "keep-multipart"])
def test_strip_of_an_invite_without_location_changes_nothing_in_the_body(variant):
    request = fixture(RFC)
    plain = Request("INVITE", request.uri, Headers.of([
        (item.name, item.value) for item in request.headers.fields
        if item.key not in ("geolocation", "geolocation-routing", "content-type", "content-length")
    ] + [("Content-Type", "application/sdp")]), sdp_part(request).content)
    outcome = apply_location_policy(plain, "strip", variant)
    assert outcome.body == plain.body
    assert outcome.content_type == "application/sdp"
    assert outcome.remove_headers == []
    if variant != "stale-content-length":
        reparse(plain, outcome)


def test_every_variant_records_what_came_in_and_what_went_out():
    request = fixture(RFC)
    for variant in ("full", "keep-geolocation", "drop-header", "drop-part-headers", "stale-content-length",
                    "keep-multipart"):
        record = apply_location_policy(request, "strip", variant).record
        assert record["policy"] == "strip" and record["variant"] == variant
        assert record["content_type_in"] == request.headers.get("Content-Type")
        assert [p["sha256"] for p in record["parts_in"]] == [
            hashlib.sha256(part.content).hexdigest() for part in parts(request)]
        assert record["geolocation_in"] == request.headers.get_all("Geolocation")
