"""The generator: documents of every kind, Lync layout, and client body layouts."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from pidf_testdocs import NOW, SDP, check, check_conveyance, found

from pidf import Conveyance, MimePart, Verdict, read_document
from pidf.body import LYNC_BOUNDARY, STYLES, emergency_body, multipart_body
from pidf.build import (
    SAMPLE_KINDS,
    SAMPLE_SHAPES,
    Civic,
    LocationSpec,
    Point,
    build_document,
    civic_document,
    lync_document,
    sample_document,
    serialize,
    shape_document,
)


@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_every_sample_kind_validates_without_errors_or_warnings(kind):
    report = check(sample_document(kind, timestamp=NOW))
    assert [f for f in report.findings if f.severity != "I"] == []
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


@pytest.mark.parametrize("kind", list(SAMPLE_SHAPES))
def test_each_shape_round_trips_through_the_model(kind):
    data = shape_document(SAMPLE_SHAPES[kind], timestamp=NOW)
    doc = read_document(data)
    assert doc.location.shapes[0].kind.lower() == kind
    assert read_document(serialize(doc)) == doc


def test_compound_location_writes_shape_before_civic():
    data = shape_document(Point(47.6, -122.1), civic=Civic({"country": "US", "A1": "WA"}), timestamp=NOW)
    assert data.index(b"gml:Point") < data.index(b"ca:civicAddress")


def test_civic_fields_are_written_in_schema_order_whatever_the_input_order():
    data = civic_document([("PC", "98052"), ("HNO", "1"), ("country", "US")], timestamp=NOW)
    assert [f.name for f in read_document(data).location.civic[0].fields] == ["country", "HNO", "PC"]


def test_unknown_civic_field_is_refused_by_the_builder():
    with pytest.raises(ValueError):
        civic_document({"STREET": "x"})


def test_device_and_person_carriers_are_written_after_tuples():
    data = build_document(
        [
            LocationSpec(civic=Civic({"country": "US"}), carrier="person", id="p1"),
            LocationSpec(civic=Civic({"country": "US"}), carrier="device", id="d1"),
            LocationSpec(shape=Point(1, 2), carrier="tuple", id="t1"),
        ],
        now=NOW,
    )
    doc = read_document(data)
    assert [loc.carrier for loc in doc.locations] == ["tuple", "person", "device"]
    assert doc.location.carrier == "device"
    assert check(data).verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_lync_document_with_quirks_reproduces_the_lync_warnings():
    report = check(lync_document({"country": "US", "A1": "WA", "A3": "Redmond", "RD": "Main", "HNO": "1"}, timestamp=NOW))
    assert {f.id for f in report.findings if f.severity == "W"} == {"P05", "P16"}
    assert b'<tuple id="0">' in lync_document({"country": "US"}, timestamp=NOW)


def test_lync_document_has_the_microsoft_extension_after_geopriv():
    data = lync_document({"country": "US"}, timestamp=NOW, quirks=False)
    assert data.index(b"gp:geopriv>") < data.index(b"ms:msftE911PidfExtn")
    assert read_document(data).location.ms_extension.location_policy_tag_id == "user-tagid"


def test_builder_timestamp_defaults_to_now():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    ts = read_document(civic_document({"country": "US"})).location.timestamp
    assert ts >= before


# ------------------------------------------------------------------ bodies


def _split(content_type: str, body: bytes) -> list[MimePart]:
    """Test-only multipart splitter for the builder's own well-formed bodies."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1)
    chunks = body.split(b"--" + boundary.encode())
    parts = []
    for chunk in chunks[1:-1]:
        chunk = chunk[2:]  # CRLF after the delimiter
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = [tuple(x.strip() for x in line.decode().split(":", 1)) for line in head.split(b"\r\n") if line]
        parts.append(MimePart(headers, content[:-2]))  # the CRLF before the next delimiter
    return parts


def _conveyance(eb, aor_user="alice") -> Conveyance:
    canonical = {"priority": "Priority", "geolocation": "Geolocation", "supported": "Supported"}
    headers = [(canonical.get(n.lower(), n), v) for n, v in eb.headers]
    headers += [("From", f"<sip:{aor_user}@example.com>;tag=1"), ("Content-Type", eb.content_type), ("Content-Length", str(len(eb.body)))]
    return Conveyance(headers, eb.body, _split(eb.content_type, eb.body), [], "sip:911@sbc.example.com")


PIDF = sample_document("civic", timestamp=NOW)


@pytest.mark.parametrize("style", STYLES)
def test_every_style_uses_crlf_and_yields_a_usable_location(style):
    eb = emergency_body(style, SDP.replace(b"\r\n", b"\n"), PIDF, "sip:alice@example.com")
    assert re.search(rb"(?<!\r)\n", eb.body) is None
    report = check_conveyance(_conveyance(eb))
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID
    assert report.location.civic[0].get("A3") == "Redmond"


def test_lync_style_layout():
    eb = emergency_body("lync", SDP, PIDF, "sip:alice@example.com")
    assert eb.content_type == f"multipart/mixed; boundary={LYNC_BOUNDARY}"
    assert eb.body.startswith(f"--{LYNC_BOUNDARY}\r\nContent-Type: application/sdp ; charset=utf-8\r\n".encode())
    assert ("Supported", "geolocation") in eb.headers and ("PRIORITY", "emergency") in eb.headers
    assert dict(eb.headers)["geolocation"].startswith("<cid:sip:alice@example.com>;inserted-by=")
    assert b"Content-ID: <alice@example.com>" in eb.body
    report = check_conveyance(_conveyance(eb))
    assert report.selected_part_rule == "stripped-scheme"
    assert {f.id for f in report.findings if f.severity == "W"} == {"S02", "S07"}


def test_rfc_style_layout_is_clean():
    eb = emergency_body("rfc", SDP, PIDF, "sip:alice@example.com")
    assert b"Content-Disposition: by-reference;handling=optional" in eb.body
    assert ("Geolocation-Routing", "yes") in eb.headers
    assert eb.body.index(b"application/sdp") < eb.body.index(b"application/pidf+xml")
    report = check_conveyance(_conveyance(eb))
    assert [f for f in report.findings if f.severity != "I"] == []
    assert report.selected_part_rule == "exact"


def test_pjsua_style_layout():
    eb = emergency_body("pjsua", SDP, PIDF, "sip:alice@example.com")
    assert eb.body.startswith(b"\r\n--")
    assert eb.body.index(b"application/pidf+xml") < eb.body.index(b"application/sdp")
    pidf_crlf = PIDF.replace(b"\n", b"\r\n")
    assert b"Content-Length: %d\r\n" % len(pidf_crlf) in eb.body
    assert ("Supported", "replaces, 100rel, timer") in eb.headers
    assert check_conveyance(_conveyance(eb)).selected_part == 0


def test_linphone_style_has_no_content_id_so_the_reference_dangles_into_the_fallback():
    eb = emergency_body("linphone", SDP, PIDF, "sip:alice@example.com")
    assert b"Content-ID" not in eb.body
    assert eb.boundary == emergency_body("linphone", b"v=0\r\n", PIDF, "sip:bob@example.com").boundary
    report = check_conveyance(_conveyance(eb))
    assert report.selected_part_rule == "last-pidf-part"
    assert [f.severity for f in found(report, "S07")] == ["W"]


def test_unknown_style_is_refused():
    with pytest.raises(ValueError):
        emergency_body("cisco", SDP, PIDF, "sip:a@b")


def test_multipart_body_frames_parts_with_crlf_delimiters():
    body = multipart_body([([("Content-Type", "text/plain")], b"hi")], "b")
    assert body == b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"


@pytest.mark.parametrize("style", STYLES)
def test_every_style_survives_the_sip_core_parser(style):
    conveyance_mod = pytest.importorskip("b2bua.engine.conveyance")
    eb = emergency_body(style, SDP, PIDF, "sip:alice@example.com")
    head = "".join(f"{n}: {v}\r\n" for n, v in eb.headers)
    msg = (
        "INVITE sip:911@sbc.example.com;user=phone SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        "From: <sip:alice@example.com>;tag=1\r\nTo: <sip:911@sbc.example.com>\r\nCall-ID: 1@x\r\nCSeq: 1 INVITE\r\n"
        f"Max-Forwards: 70\r\n{head}Content-Type: {eb.content_type}\r\nContent-Length: {len(eb.body)}\r\n\r\n"
    ).encode() + eb.body
    report = check_conveyance(conveyance_mod.conveyance_from_bytes(msg))
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID
