"""The mock ECRC's record of one INVITE, built from real SIP messages."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from ecrc_samples import ARRIVED_AT, CLEAN_PIDF, LYNC_PIDF, SDP, crlf, multipart, sip

from b2bua.sip import parse_message
from b2bua.testbench.record import (
    ECRC_MUST_ASK,
    ROUTABLE_BY_LOCATION,
    build_record,
    disposition_of,
    matching_elin,
    readback_text,
)

REQUIRED_KEYS = {
    "id", "arrived_at", "ecrc", "transport", "source", "request_uri", "from", "to", "pai", "priority",
    "call_info", "geolocation", "geolocation_routing", "content_type", "content_length_declared",
    "content_length_actual", "parts", "pidf", "location", "verdict", "findings", "disposition",
    "call_id", "is_test", "readback", "caller_id", "site", "link", "pstn_reason", "elin",
}  # fmt: skip
PART_KEYS = {"content_type", "content_id", "content_disposition", "size", "sha256"}


def record_of(invite, name, arrived_at, **options):
    raw, request = invite(name, **options.pop("sample", {}))
    options.setdefault("ecrc", "primary")
    options.setdefault("transport", "UDP")
    options.setdefault("source", "192.0.2.10:5060")
    return build_record(request, arrived_at=arrived_at, **options)


@pytest.mark.parametrize("name", ["rfc_clean", "stripped", "lync", "test_call", "geodetic", "by_reference"])
def test_every_record_has_the_documented_keys_and_is_plain_json(invite, arrived_at, name):
    record = record_of(invite, name, arrived_at)
    assert REQUIRED_KEYS <= record.keys()
    assert json.loads(json.dumps(record)) == record  # nothing but JSON types
    for part in record["parts"]:
        assert set(part) == PART_KEYS
    assert record["disposition"] in (ROUTABLE_BY_LOCATION, ECRC_MUST_ASK)


def test_rfc_clean_invite_records_headers_parts_location_and_routable_disposition(invite, arrived_at):
    record = record_of(invite, "rfc_clean", arrived_at, ecrc="secondary", transport="TLS", source="192.0.2.10:5061")

    assert record["id"] is None
    assert record["arrived_at"] == "2024-05-01T12:00:00.000000+00:00"
    assert (record["ecrc"], record["transport"], record["source"]) == ("secondary", "TLS", "192.0.2.10:5061")
    assert record["request_uri"] == "sip:911@ecrc.example.net"
    assert record["from"] == '"Alice" <sip:alice@example.com>;tag=1928301774'
    assert record["to"] == "<sip:911@ecrc.example.net>"
    assert record["pai"] == "<sip:+14255550100@example.com;user=phone>"
    assert record["priority"] == "emergency"
    assert record["call_info"] == ["<urn:emergency:uid:callid:abcdef1234567890:example.com>;purpose=emergency-CallId"]
    assert record["geolocation"] == ["<cid:target123@example.com>"]
    assert record["geolocation_routing"] == "yes"
    assert record["call_id"] == "a84b4c76e66710@192.0.2.10"
    assert record["content_type"] == "multipart/mixed;boundary=boundary1"
    assert record["content_length_declared"] == record["content_length_actual"] > 0

    sdp, pidf = record["parts"]
    assert sdp["content_type"] == "application/sdp" and sdp["content_id"] is None
    assert sdp["size"] == len(crlf(SDP).rstrip(b"\r\n"))
    assert pidf == {
        "content_type": "application/pidf+xml",
        "content_id": "<target123@example.com>",
        "content_disposition": "by-reference;handling=optional",
        "size": len(crlf(CLEAN_PIDF.rstrip("\n"))),
        "sha256": hashlib.sha256(crlf(CLEAN_PIDF.rstrip("\n"))).hexdigest(),
    }

    assert record["pidf"] == crlf(CLEAN_PIDF.rstrip("\n")).decode()
    assert (record["pidf_part"], record["pidf_selected_by"]) == (1, "exact")
    assert record["pidf_sha256"] == pidf["sha256"]
    assert record["location"]["carrier"] == "device"
    assert record["address"] == "3910 163rd Ave NE, Floor 4, Redmond WA 98052, US"
    assert record["verdict"] == "location_by_value_valid"
    assert record["findings"] == []
    assert record["disposition"] == ROUTABLE_BY_LOCATION
    assert record["caller_id"] == "+14255550100"  # P-Asserted-Identity, not From's "alice"
    assert record["is_test"] is False and record["readback"] is None
    assert (record["site"], record["link"], record["pstn_reason"], record["elin"]) == (None, None, None, None)


def test_stripped_call_has_no_location_and_the_ecrc_must_ask(invite, arrived_at):
    record = record_of(invite, "stripped", arrived_at)

    assert record["geolocation"] == [] and record["geolocation_routing"] is None
    assert record["content_type"] == "application/sdp"
    assert record["parts"] == [
        {
            "content_type": "application/sdp",
            "content_id": None,
            "content_disposition": None,
            "size": len(crlf(SDP)),
            "sha256": hashlib.sha256(crlf(SDP)).hexdigest(),
        }
    ]
    assert record["pidf"] is None and record["location"] is None and record["address"] is None
    assert record["verdict"] == "no_location"
    assert record["disposition"] == ECRC_MUST_ASK
    assert record["pai"] is None
    assert record["caller_id"] == "+14255550100"  # From, for want of a PAI


def test_stripped_call_from_a_known_elin_is_elin_only_and_still_needs_the_ecrc(invite, arrived_at):
    record = record_of(invite, "stripped", arrived_at, elins=frozenset({"4255550100"}))

    assert record["verdict"] == "elin_only"
    assert record["elin"] == "4255550100"
    assert record["disposition"] == ECRC_MUST_ASK


def test_lync_invite_is_resolved_despite_the_cid_sip_mismatch_and_odd_boundary(invite, arrived_at):
    record = record_of(invite, "lync", arrived_at)

    assert record["content_type"] == "multipart/mixed; boundary= ------=_NextPart_000_4A6D"
    assert record["geolocation"] == ['<cid:sip:voip_911_user1@contoso.com>;inserted-by="sip:voip_911_user1@contoso.com"']
    assert record["priority"] == "emergency"  # PRIORITY: upper-case name
    assert [part["content_type"] for part in record["parts"]] == ["application/sdp ; charset=utf-8", "application/pidf+xml"]
    assert record["parts"][1]["content_id"] == "<voip_911_user1@contoso.com>"
    assert record["pidf"] == crlf(LYNC_PIDF.rstrip("\n")).decode()
    assert (record["pidf_part"], record["pidf_selected_by"]) == (1, "stripped-scheme")
    assert record["geolocation_resolution"][0]["rule"] == "stripped-scheme"
    assert record["request_uri"] == "sip:911;phone-context=Redmond@192.168.1.12;user=phone"
    assert record["caller_id"] == "voip_911_user1"
    assert record["location"]["ms_extension"]["conference_mode"] == "twoway"
    assert record["location"]["elins"] == ["1111222333", "1234567890"]
    ids = {finding["id"] for finding in record["findings"]}
    assert {"S02", "S07", "P05", "P16"} <= ids  # boundary, cid, tuple id="0", timestamp
    assert record["verdict"] in ("location_by_value_valid", "by_value_degraded")
    assert record["disposition"] == ROUTABLE_BY_LOCATION


def test_933_call_is_a_test_call_with_an_address_read_back(invite, arrived_at):
    record = record_of(invite, "test_call", arrived_at)

    assert record["is_test"] is True
    assert record["caller_id"] == "+14255550100"  # tel: PAI wins over From's lync-user
    assert record["readback"] == "Test call from +14255550100. Address received: 3910 163rd Ave NE, Redmond WA 98052, US, 40/4451"
    assert readback_text(record) == record["readback"]


def test_933_call_without_location_reads_back_no_location_received(invite, arrived_at):
    record = record_of(invite, "test_call", arrived_at, sample={"with_location": False})

    assert record["is_test"] is True
    assert record["readback"] == "Test call from +14255550100: no location received"
    assert record["disposition"] == ECRC_MUST_ASK


@pytest.mark.parametrize("uri", ["urn:service:test.sos", "urn:service:test.sos.fire", "sip:+933@ecrc.example.net"])
def test_test_urns_and_plus_933_are_test_calls(invite, arrived_at, uri):
    record = record_of(invite, "test_call", arrived_at, sample={"uri": uri})
    assert record["is_test"] is True and record["readback"].startswith("Test call from +14255550100")


def test_ordinary_911_call_gets_no_readback(invite, arrived_at):
    record = record_of(invite, "lync", arrived_at)
    assert record["is_test"] is False and record["readback"] is None


def test_single_part_pidf_body_takes_its_content_id_from_the_sip_header(invite, arrived_at):
    record = record_of(invite, "geodetic", arrived_at)

    assert record["parts"][0]["content_type"] == "application/pidf+xml"
    assert record["parts"][0]["content_id"] == "<geo1@example.com>"
    assert record["pidf_part"] == 0 and record["pidf"].startswith("<?xml")
    assert record["location"]["shapes"][0]["shape"] == "Circle"
    assert record["address"] == "Circle at 47.639500, -122.129700 radius 30 m"


def test_degraded_location_that_names_a_place_is_still_routable(invite, arrived_at):
    record = record_of(invite, "geodetic", arrived_at)  # dm:device without dm:deviceID: an E finding
    assert record["verdict"] == "by_value_degraded"
    assert any(finding["severity"] == "E" for finding in record["findings"])
    assert record["disposition"] == ROUTABLE_BY_LOCATION


def test_location_by_reference_only_needs_the_ecrc(invite, arrived_at):
    record = record_of(invite, "by_reference", arrived_at)

    assert record["verdict"] == "by_reference_only"
    assert record["disposition"] == ECRC_MUST_ASK
    assert record["geolocation"] == ["<https://lis.example.com/loc/8a7b6c>"]
    assert record["geolocation_resolution"][0]["scheme"] == "https"
    assert record["pidf"] is None


def test_declared_and_actual_content_length_differ_when_the_datagram_carries_more(arrived_at):
    body = crlf(SDP)
    raw = sip(
        """INVITE sip:911@ecrc.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKcl
From: <sip:+14255550100@sbc.example.com>;tag=s1
To: <sip:911@ecrc.example.net>
Call-ID: cl-1@192.0.2.20
CSeq: 1 INVITE
Content-Type: application/sdp""",
        body,
        content_length=40,  # an SBC that changed the body but not Content-Length
    )
    record = build_record(parse_message(raw), ecrc="primary", transport="UDP", source="192.0.2.20:5060", arrived_at=arrived_at, raw=raw)

    assert record["content_length_declared"] == 40
    assert record["content_length_declared_raw"] == "40"
    assert record["content_length_actual"] == len(body)


def test_without_raw_bytes_actual_length_is_the_parsed_body(invite, arrived_at):
    raw, request = invite("stripped")
    record = build_record(request, ecrc="p", transport="UDP", source="x", arrived_at=arrived_at)
    assert record["content_length_actual"] == len(request.body)


def test_several_pidf_parts_without_geolocation_take_the_last_one_as_lync_does(arrived_at):
    second = CLEAN_PIDF.replace("<ca:HNO>3910</ca:HNO>", "<ca:HNO>4000</ca:HNO>")
    body = multipart(
        "b2",
        [
            ("Content-Type: application/sdp", SDP),
            ("Content-Type: application/pidf+xml\nContent-ID: <first@example.com>", CLEAN_PIDF),
            ("Content-Type: application/pidf+xml\nContent-ID: <second@example.com>", second),
        ],
    )
    raw = sip(
        """INVITE sip:911@ecrc.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKlast
From: <sip:+14255550100@example.com>;tag=s1
To: <sip:911@ecrc.example.net>
Call-ID: last-1@192.0.2.20
CSeq: 1 INVITE
Priority: emergency
Content-Type: multipart/mixed; boundary=b2""",
        body,
    )
    record = build_record(parse_message(raw), ecrc="primary", transport="UDP", source="x", arrived_at=arrived_at)

    assert record["pidf_part"] == 2
    assert record["pidf_selected_by"] == "last-pidf-part"
    assert "4000" in record["pidf"] and record["address"].startswith("4000 163rd")


def test_unreadable_pidf_part_is_still_recorded_as_received(arrived_at):
    broken = "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple"
    body = multipart(
        "b3",
        [("Content-Type: application/sdp", SDP), ("Content-Type: application/pidf+xml\nContent-ID: <x@example.com>", broken)],
    )
    raw = sip(
        """INVITE sip:911@ecrc.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKbroken
From: <sip:+14255550100@example.com>;tag=s1
To: <sip:911@ecrc.example.net>
Call-ID: broken-1@192.0.2.20
CSeq: 1 INVITE
Priority: emergency
Geolocation: <cid:x@example.com>
Content-Type: multipart/mixed; boundary=b3""",
        body,
    )
    record = build_record(parse_message(raw), ecrc="primary", transport="UDP", source="x", arrived_at=arrived_at)

    assert record["pidf"] == broken
    assert record["pidf_part"] == 1 and record["pidf_selected_by"] == "exact"
    assert record["location"] is None
    assert record["verdict"] == "no_location"
    assert record["disposition"] == ECRC_MUST_ASK
    assert any(finding["id"].startswith("P") and finding["severity"] == "E" for finding in record["findings"])


def test_a_crash_in_the_location_checks_never_loses_the_call(invite, arrived_at, monkeypatch):
    import pidf.conveyance

    def explode(*args, **kwargs):
        raise RuntimeError("checker bug")

    monkeypatch.setattr(pidf.conveyance, "validate_conveyance", explode)
    record = record_of(invite, "rfc_clean", arrived_at)

    assert record["verdict"] is None and record["findings"] == []
    assert record["validation_error"] == "RuntimeError: checker bug"
    assert record["disposition"] == ECRC_MUST_ASK
    assert record["pidf"] == crlf(CLEAN_PIDF.rstrip("\n")).decode()  # the raw location is kept anyway
    assert record["pidf_selected_by"] == "exact"


def test_arrival_time_is_stored_in_utc_and_a_naive_time_is_taken_as_utc(invite, arrived_at):
    pacific = arrived_at.astimezone(timezone(timedelta(hours=-7)))
    assert record_of(invite, "stripped", pacific)["arrived_at"] == "2024-05-01T12:00:00.000000+00:00"
    naive = datetime(2024, 5, 1, 12, 0, 0)
    assert record_of(invite, "stripped", naive)["arrived_at"] == "2024-05-01T12:00:00.000000+00:00"


def test_the_same_invite_gives_the_same_record(invite, arrived_at):
    assert record_of(invite, "lync", arrived_at) == record_of(invite, "lync", arrived_at)


def test_stale_location_is_judged_against_the_arrival_time(invite):
    # The clean PIDF's timestamp is 30 s before 2024-05-01T12:00Z; a week later it is stale.
    later = datetime(2024, 5, 8, 12, 0, 0, tzinfo=timezone.utc)
    record = record_of(invite, "rfc_clean", later)
    assert any(finding["id"] == "P16" for finding in record["findings"])


@pytest.mark.parametrize(
    "verdict, location, expected",
    [
        ("location_by_value_valid", {"civic": [{"fields": [{"name": "RD", "value": "Main"}, {"name": "A3", "value": "X"}]}]}, ROUTABLE_BY_LOCATION),
        ("location_by_value_valid", {"civic": [{"fields": [{"name": "country", "value": "US"}]}]}, ECRC_MUST_ASK),
        ("by_value_degraded", {"shapes": [{"positions": [[47.6, -122.1]]}]}, ROUTABLE_BY_LOCATION),
        ("by_value_degraded", {"shapes": [{"positions": [[147.6, -122.1]]}]}, ECRC_MUST_ASK),
        ("by_reference_only", None, ECRC_MUST_ASK),
        ("no_location", None, ECRC_MUST_ASK),
        ("elin_only", None, ECRC_MUST_ASK),
        (None, {"civic": [{"fields": [{"name": "RD", "value": "Main"}, {"name": "PC", "value": "1"}]}]}, ECRC_MUST_ASK),
    ],
)
def test_disposition_needs_a_by_value_verdict_and_a_usable_place(verdict, location, expected):
    assert disposition_of(verdict, location) == expected


@pytest.mark.parametrize(
    "caller, elins, expected",
    [
        ("+14255550100", {"4255550100"}, "4255550100"),
        ("4255550100", {"+1 425-555-0100"}, "+1 425-555-0100"),
        ("+14255550100", {"4255550199"}, None),
        ("voip_911_user1", {"4255550100"}, None),
        (None, {"4255550100"}, None),
    ],
)
def test_caller_id_matches_a_known_elin_on_its_digits(caller, elins, expected):
    assert matching_elin(caller, elins) == expected


def test_readback_of_a_by_reference_call_names_the_reference():
    record = {
        "caller_id": "+14255550122",
        "location": None,
        "geolocation_resolution": [{"uri": "https://lis.example.com/loc/1", "scheme": "https"}],
    }
    assert readback_text(record) == (
        "Test call from +14255550122: no location received by value (by reference: https://lis.example.com/loc/1)"
    )


def test_fallback_geolocation_resolution_has_the_shape_pidf_gives(invite):
    from b2bua.testbench.record import resolve_geolocation

    _, request = invite("lync")
    from_pidf = record_of(invite, "lync", ARRIVED_AT)["geolocation_resolution"]
    assert resolve_geolocation(request) == from_pidf == [
        {
            "uri": "cid:sip:voip_911_user1@contoso.com",
            "scheme": "cid",
            "params": [["inserted-by", "sip:voip_911_user1@contoso.com"]],
            "by_value": True,
            "part": 1,
            "rule": "stripped-scheme",
        }
    ]
