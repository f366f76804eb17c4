"""What the typed model reads out of a document, and its JSON form."""

from __future__ import annotations

import json

import pytest
from pidf_testdocs import CRS2, CRS3, DEG, FIELDS, M, check, civic, document, geopriv, polygon, shape_doc

from pidf import read_document
from pidf.model import elin_candidates


def test_civic_fields_are_read_in_order_with_namespace_and_whitespace_collapsed():
    fields = FIELDS.replace("<ca:RD>156th</ca:RD>", "<ca:RD>  156th \n </ca:RD>") + "<cae:PN>P 12</cae:PN>"
    doc = read_document(document(info=civic(fields)))
    loc = doc.location
    names = [(f.name, f.namespace.rsplit(":", 1)[-1]) for f in loc.civic[0].fields]
    assert names[:4] == [("country", "civicAddr"), ("A1", "civicAddr"), ("A3", "civicAddr"), ("RD", "civicAddr")]
    assert names[-1] == ("PN", "ext")
    assert loc.civic[0].get("RD") == "156th"
    assert "4600 156th Ave NE" in loc.civic[0].summary()


def test_entity_carrier_method_timestamp_and_usage_rules_are_read():
    usage = (
        "<gp:usage-rules><gbp:retransmission-allowed>yes</gbp:retransmission-allowed>"
        "<gbp:retention-expiry>2025-06-02T00:00:00+02:00</gbp:retention-expiry>"
        "<gbp:external-ruleset>https://r.example.com/1</gbp:external-ruleset><gbp:note-well>n</gbp:note-well></gp:usage-rules>"
    )
    doc = read_document(document(usage=usage, entity="pres:alice@example.com"))
    loc = doc.location
    assert doc.entity == "pres:alice@example.com"
    assert (loc.carrier, loc.carrier_id, loc.method) == ("tuple", "t1", "Manual")
    assert loc.timestamp.isoformat() == "2025-06-01T11:55:00+00:00"
    u = loc.usage_rules
    assert (u.retransmission_allowed_raw, u.retransmission_allowed) == ("yes", True)
    assert u.retention_expiry.utcoffset().total_seconds() == 7200
    assert (u.external_ruleset, u.note_well) == ("https://r.example.com/1", "n")


@pytest.mark.parametrize(
    ("shape", "kind", "crs", "measures"),
    [
        (f'<gs:Circle srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:radius uom="{M}">15.5</gs:radius></gs:Circle>', "Circle", CRS2, {"radius": 15.5}),
        (
            f'<gs:Ellipsoid srsName="{CRS3}"><gml:pos>47.6 -122.1 30</gml:pos><gs:semiMajorAxis uom="{M}">9</gs:semiMajorAxis>'
            f'<gs:semiMinorAxis uom="{M}">4</gs:semiMinorAxis><gs:verticalAxis uom="{M}">2</gs:verticalAxis>'
            f'<gs:orientation uom="{DEG}">45</gs:orientation></gs:Ellipsoid>',
            "Ellipsoid",
            CRS3,
            {"semiMajorAxis": 9, "semiMinorAxis": 4, "verticalAxis": 2, "orientation": 45},
        ),
    ],
)
def test_shapes_are_read_with_crs_positions_and_measures(shape, kind, crs, measures):
    s = read_document(shape_doc(shape)).location.shapes[0]
    assert (s.kind, s.srs_name) == (kind, crs)
    assert s.positions[0][:2] == (47.6, -122.1)
    assert {m.name: m.value for m in s.measures} == measures
    assert all(m.uom for m in s.measures)


def test_polygon_positions_come_from_pos_list_as_pairs():
    s = read_document(shape_doc(polygon("1 2 3 4 5 6 1 2"))).location.shapes[0]
    assert s.positions == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (1.0, 2.0)]


def test_microsoft_extension_and_provided_by_are_read():
    ms = (
        "<ms:msftE911PidfExtn><ms:ConferenceUri>sip:sec@example.com</ms:ConferenceUri><ms:ConferenceMode>twoway</ms:ConferenceMode>"
        '<LocationPolicyTagID xmlns="urn:schema:Rtc.Lis.LocationPolicyTagID.2008">tag-9</LocationPolicyTagID></ms:msftE911PidfExtn>'
    )
    pb = '<gp:provided-by><d:nena xmlns:d="urn:ietf:params:xml:ns:pidf:geopriv10:dataProvider">x</d:nena></gp:provided-by>'
    loc = read_document(document(status_extra=ms, geopriv_extra=pb)).location
    assert (loc.ms_extension.conference_uri, loc.ms_extension.location_policy_tag_id) == ("sip:sec@example.com", "tag-9")
    assert (loc.provided_by[0].name, loc.provided_by[0].text) == ("nena", "x")


@pytest.mark.parametrize(
    ("nam", "elins"),
    [
        ("1111-222-333; 1234567890 ", ["1111222333", "1234567890"]),
        ("4255550100", ["4255550100"]),
        ("Fabrikam Inc", []),
        ("Fabrikam; 4255550100", ["4255550100"]),
        ("1;2;3;4;5;6;7", ["1", "2", "3", "4", "5"]),
        ("+1-425-555-0100", ["+14255550100"]),
        (None, []),
    ],
)
def test_elin_candidates_follow_the_gateway_rules(nam, elins):
    assert elin_candidates(nam) == elins


def test_selected_location_follows_rule_8_device_then_tuple_then_person():
    person = f'<dm:person id="p1">{geopriv(civic(FIELDS.replace("4600", "1")))}</dm:person>'
    device = f'<dm:device id="d1">{geopriv(civic(FIELDS.replace("4600", "2")))}<dm:deviceID>mac:1</dm:deviceID></dm:device>'
    doc = read_document(document(root_extra=person + device))
    assert [loc.carrier for loc in doc.locations] == ["tuple", "person", "device"]
    assert doc.location.carrier == "device"
    only_person = read_document(document(body=person))
    assert only_person.location.carrier == "person"


def test_report_to_dict_is_json_serialisable():
    report = check(document(info=civic(FIELDS.replace("<ca:PC>", "<ca:NAM>4255550100</ca:NAM><ca:PC>"))))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "location_by_value_valid"
    assert data["location"]["civic"][0]["fields"][0] == {
        "name": "country",
        "value": "US",
        "namespace": "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr",
        "lang": None,
    }
    assert data["elins"] == ["4255550100"]
    assert data["location"]["usage_rules"]["retransmission_allowed"] is False


def test_read_document_returns_none_for_unparseable_bytes():
    assert read_document(b"<presence") is None
