"""One or more tests per document check id: P02-P17, C01-C10, G01-G08, M01-M02.
(P01 lives in test_pidf_parse_security.py.)"""

from __future__ import annotations

import pytest
from pidf_testdocs import (
    CRS2,
    CRS3,
    DEG,
    FIELDS,
    RAD,
    USAGE,
    M,
    check,
    civic,
    document,
    found,
    geopriv,
    has,
    point,
    polygon,
    shape_doc,
)

from pidf import Verdict

# ------------------------------------------------------------------ baseline


def test_clean_civic_document_has_no_findings_and_is_valid():
    report = check(document())
    assert report.findings == []
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID
    assert report.location.civic[0].get("HNO") == "4600"


# ------------------------------------------------------------------ P02-P17


def test_missing_xml_declaration_is_a_warning():
    assert has(check(document(decl="")), "P02", "W")


def test_declaration_without_encoding_is_a_warning():
    assert has(check(document(decl='<?xml version="1.0"?>\n')), "P02", "W")


def test_charset_differing_from_declaration_is_a_warning_and_charset_wins():
    data = document(info=civic(FIELDS.replace("Redmond", "Montréal"))).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    report = check(data, charset="utf-8")
    assert has(report, "P02", "W")
    assert report.location.civic[0].get("A3") == "Montréal"  # decoded as the charset said


def test_root_in_wrong_namespace_is_an_error():
    data = b'<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:example:other" entity="sip:a@b"/>'
    report = check(data)
    assert has(report, "P03", "E")
    assert report.verdict == Verdict.NO_LOCATION


def test_pidf_namespace_with_trailing_colon_is_an_error_but_location_is_read():
    data = document().replace(b'xmlns="urn:ietf:params:xml:ns:pidf"', b'xmlns="urn:ietf:params:xml:ns:pidf:"')
    report = check(data)
    assert has(report, "P03", "E")
    assert report.verdict == Verdict.BY_VALUE_DEGRADED
    assert report.location is not None


def test_missing_entity_is_an_error():
    assert has(check(document(entity=None)), "P04", "E")


def test_entity_that_is_not_a_uri_is_an_error():
    assert has(check(document(entity="alice at example")), "P04", "E")


def test_entity_with_unexpected_scheme_is_a_warning():
    report = check(document(entity="mailto:alice@example.com"))
    assert has(report, "P04", "W") and not has(report, "P04", "E")


@pytest.mark.parametrize("entity", ["pres:alice@example.com", "sip:alice@example.com", "sips:a@b", "tel:+14255550100"])
def test_entity_with_expected_scheme_is_fine(entity):
    assert not has(check(document(entity=entity)), "P04")


def test_tuple_id_starting_with_digit_is_a_warning():
    report = check(document(tid="0"))
    assert [f.severity for f in found(report, "P05")] == ["W"]
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_tuple_id_starting_with_digit_is_an_error_when_strict():
    assert has(check(document(tid="0"), strict=True), "P05", "E")


def test_tuple_without_id_is_an_error():
    assert has(check(document(tid=None)), "P05", "E")


def test_duplicate_ids_are_an_error():
    data = document(root_extra='<tuple id="t1"><status><basic>open</basic></status></tuple>')
    assert has(check(data), "P05", "E")


def test_tuple_without_status_is_an_error():
    assert has(check(document(body='<tuple id="t1"><note>x</note></tuple>')), "P06", "E")


def test_tuple_timestamp_before_status_is_an_error():
    body = f'<tuple id="t1"><timestamp>2025-06-01T11:55:00Z</timestamp><status>{geopriv()}</status></tuple>'
    assert has(check(document(body=body)), "P06", "E")


def test_empty_status_is_an_error():
    data = document(root_extra='<tuple id="t2"><status/></tuple>')
    assert has(check(data), "P06", "E")


def test_basic_other_than_open_or_closed_is_an_error():
    data = document(root_extra='<tuple id="t2"><status><basic>busy</basic></status></tuple>')
    assert has(check(data), "P06", "E")


def _device(inside: str, did: str | None = "d1") -> str:
    id_attr = f' id="{did}"' if did else ""
    return f"<dm:device{id_attr}>{inside}</dm:device>"


def test_device_with_location_is_clean():
    body = _device(f"{geopriv()}<dm:deviceID>mac:00163e5f1a2b</dm:deviceID><dm:timestamp>2025-06-01T11:55:00Z</dm:timestamp>")
    report = check(document(body=body))
    assert report.findings == []
    assert report.location.carrier == "device"


def test_device_without_device_id_is_an_error():
    assert has(check(document(body=_device(geopriv()))), "P07", "E")


def test_device_with_two_device_ids_is_an_error():
    body = _device(f"{geopriv()}<dm:deviceID>mac:1</dm:deviceID><dm:deviceID>mac:2</dm:deviceID>")
    assert has(check(document(body=body)), "P07", "E")


def test_device_timestamp_before_device_id_is_an_error():
    body = _device(f"{geopriv()}<dm:timestamp>2025-06-01T11:55:00Z</dm:timestamp><dm:deviceID>mac:1</dm:deviceID>")
    assert has(check(document(body=body)), "P07", "E")


def test_device_id_that_is_not_a_uri_is_an_error():
    assert has(check(document(body=_device(f"{geopriv()}<dm:deviceID>00163e5f1a2b</dm:deviceID>"))), "P07", "E")


def test_person_with_device_id_is_an_error():
    body = f'<dm:person id="p1">{geopriv()}<dm:deviceID>mac:1</dm:deviceID></dm:person>'
    assert has(check(document(body=body)), "P07", "E")


def test_device_without_id_is_an_error():
    assert has(check(document(body=_device(f"{geopriv()}<dm:deviceID>mac:1</dm:deviceID>", did=None))), "P07", "E")


def test_geopriv_directly_under_tuple_is_an_error_but_is_read():
    report = check(document(body=f'<tuple id="t1"><status><basic>open</basic></status>{geopriv()}</tuple>'))
    assert has(report, "P08", "E")
    assert report.location is not None


def test_geopriv_in_device_status_wrapper_is_an_error():
    body = _device(f"<status>{geopriv()}</status><dm:deviceID>mac:1</dm:deviceID>")
    assert has(check(document(body=body)), "P08", "E")


def test_geopriv_without_usage_rules_is_an_error():
    report = check(document(usage=""))
    assert has(report, "P09", "E")
    assert report.verdict == Verdict.BY_VALUE_DEGRADED


def test_geopriv_with_method_before_usage_rules_is_an_error():
    body = f'<tuple id="t1"><status><gp:geopriv><gp:location-info>{civic()}</gp:location-info><gp:method>Manual</gp:method>{USAGE}</gp:geopriv></status></tuple>'
    assert has(check(document(body=body)), "P09", "E")


def test_geopriv_with_two_methods_is_an_error():
    assert has(check(document(method="<gp:method>GPS</gp:method><gp:method>Manual</gp:method>")), "P09", "E")


def test_unknown_geopriv_element_is_an_error():
    assert has(check(document(geopriv_extra="<gp:confidence>95</gp:confidence>")), "P09", "E")


def test_empty_location_info_is_an_error_and_no_location():
    report = check(document(info=""))
    assert has(report, "P10", "E")
    assert report.verdict == Verdict.NO_LOCATION


def test_location_info_with_only_unknown_elements_is_an_error():
    assert has(check(document(info='<x:blob xmlns:x="urn:x">somewhere</x:blob>')), "P10", "E")


def test_usage_rules_in_geopriv_namespace_is_a_warning():
    usage = "<gp:usage-rules><gp:retransmission-allowed>false</gp:retransmission-allowed></gp:usage-rules>"
    report = check(document(usage=usage))
    assert [f.severity for f in found(report, "P11")] == ["W"]


def test_usage_rules_prose_names_are_warnings():
    usage = (
        "<gp:usage-rules><gbp:retransmission-allowed>false</gbp:retransmission-allowed>"
        "<gbp:retention-expires>2025-06-02T00:00:00Z</gbp:retention-expires></gp:usage-rules>"
    )
    report = check(document(usage=usage))
    assert has(report, "P11", "W")
    assert report.location.usage_rules.retention_expiry_raw == "2025-06-02T00:00:00Z"  # still read


def test_usage_rules_out_of_order_is_a_warning():
    usage = (
        "<gp:usage-rules><gbp:note-well>internal</gbp:note-well>"
        "<gbp:retransmission-allowed>false</gbp:retransmission-allowed></gp:usage-rules>"
    )
    assert has(check(document(usage=usage)), "P11", "W")


def test_duplicated_usage_rule_is_an_error():
    usage = (
        "<gp:usage-rules><gbp:retransmission-allowed>false</gbp:retransmission-allowed>"
        "<gbp:retransmission-allowed>true</gbp:retransmission-allowed></gp:usage-rules>"
    )
    assert has(check(document(usage=usage)), "P11", "E")


@pytest.mark.parametrize(("raw", "value"), [("no", False), ("yes", True), ("NO", False)])
def test_retransmission_allowed_yes_no_is_a_warning_and_normalised(raw, value):
    usage = f"<gp:usage-rules><gbp:retransmission-allowed>{raw}</gbp:retransmission-allowed></gp:usage-rules>"
    report = check(document(usage=usage))
    assert has(report, "P12", "W")
    assert report.location.usage_rules.retransmission_allowed is value
    assert report.location.usage_rules.retransmission_allowed_raw == raw


@pytest.mark.parametrize(("raw", "value"), [("true", True), (" 1 ", True), ("0", False), ("false", False)])
def test_retransmission_allowed_booleans_are_fine(raw, value):
    usage = f"<gp:usage-rules><gbp:retransmission-allowed>{raw}</gbp:retransmission-allowed></gp:usage-rules>"
    report = check(document(usage=usage))
    assert not has(report, "P12")
    assert report.location.usage_rules.retransmission_allowed is value


def test_absent_retransmission_allowed_reads_as_false_with_a_warning():
    report = check(document(usage="<gp:usage-rules/>"))
    assert has(report, "P12", "W")
    assert report.location.usage_rules.retransmission_allowed is False


def test_retention_expiry_in_the_past_is_a_warning_but_still_routes():
    usage = (
        "<gp:usage-rules><gbp:retransmission-allowed>false</gbp:retransmission-allowed>"
        "<gbp:retention-expiry>2025-06-01T10:00:00Z</gbp:retention-expiry></gp:usage-rules>"
    )
    report = check(document(usage=usage))
    assert has(report, "P13", "W")
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_retention_expiry_without_offset_is_a_warning():
    usage = (
        "<gp:usage-rules><gbp:retransmission-allowed>false</gbp:retransmission-allowed>"
        "<gbp:retention-expiry>2025-06-02T10:00:00</gbp:retention-expiry></gp:usage-rules>"
    )
    assert has(check(document(usage=usage)), "P13", "W")


def test_default_retention_expired_when_timestamp_older_than_a_day():
    assert has(check(document(ts="2025-05-20T10:00:00Z")), "P13", "W")


def test_missing_method_is_informational():
    assert [f.severity for f in found(check(document(method="")), "P14")] == ["I"]


def test_method_in_wrong_case_is_a_warning():
    report = check(document(method="<gp:method>gps</gp:method>"))
    assert has(report, "P14", "W") and "GPS" in found(report, "P14")[0].message


def test_unregistered_method_is_a_warning():
    assert has(check(document(method="<gp:method>CLS</gp:method>")), "P14", "W")


@pytest.mark.parametrize("method", ["GPS", "A-GPS", "Manual", "DHCP", "Triangulation", "Cell", "802.11", "DBH_HELO"])
def test_registered_methods_are_fine(method):
    assert not has(check(document(method=f"<gp:method>{method}</gp:method>")), "P14")


def test_provided_by_from_unregistered_namespace_is_a_warning():
    extra = '<gp:provided-by><x:vendor xmlns:x="urn:example:vendor">acme</x:vendor></gp:provided-by>'
    assert has(check(document(geopriv_extra=extra)), "P15", "W")


def test_provided_by_from_emergency_call_data_is_fine():
    extra = (
        '<gp:provided-by><EmergencyCallDataReference xmlns="urn:ietf:params:xml:ns:EmergencyCallData" '
        'ref="https://adr.example.com/pi/1" purpose="EmergencyCallData.ProviderInfo"/></gp:provided-by>'
    )
    report = check(document(geopriv_extra=extra))
    assert not has(report, "P15")
    assert report.location.provided_by[0].attributes["purpose"] == "EmergencyCallData.ProviderInfo"


def test_empty_provided_by_is_a_warning():
    assert has(check(document(geopriv_extra="<gp:provided-by/>")), "P15", "W")


@pytest.mark.parametrize(
    "ts",
    ["2025-06-01T11:55:00", "2025-06-01t11:55:00Z", "2025-06-01T11:55:00z", "2025-06-03T12:00:00Z", "2025-05-20T12:00:00Z", "yesterday"],
)
def test_bad_or_stale_or_future_timestamp_is_a_warning(ts):
    assert has(check(document(ts=ts)), "P16", "W")


def test_timestamp_with_offset_is_fine():
    assert not has(check(document(ts="2025-06-01T04:55:00-07:00")), "P16")


def test_timestamp_without_offset_in_a_western_zone_is_not_called_future():
    # Local time without offset may be hours ahead of UTC; not "in the future" for that.
    report = check(document(ts="2025-06-01T20:00:00"))
    assert not any("future" in f.message for f in found(report, "P16"))


def test_two_geoprivs_in_one_tuple_is_a_warning():
    body = f'<tuple id="t1"><status>{geopriv()}{geopriv()}</status></tuple>'
    assert has(check(document(body=body)), "P17", "W")


def test_two_tuples_with_different_places_is_a_warning():
    other = civic(FIELDS.replace("4600", "4700"))
    data = document(root_extra=f'<tuple id="t2"><status>{geopriv(other)}</status></tuple>')
    assert has(check(data), "P17", "W")


def test_two_shapes_in_one_location_info_is_a_warning():
    assert has(check(shape_doc(point() + point("47.64 -122.12"))), "P17", "W")


def test_rule_8_prefers_device_over_earlier_tuple_and_says_so():
    device = _device(f"{geopriv(civic(FIELDS.replace('4600', '4700')))}<dm:deviceID>mac:1</dm:deviceID>")
    report = check(document(root_extra=device))
    assert report.location.carrier == "device"
    assert report.location.civic[0].get("HNO") == "4700"
    assert has(report, "P17", "I")


def test_rule_8_person_only_as_last_resort():
    person = f'<dm:person id="p1">{geopriv(civic(FIELDS.replace("4600", "1")))}</dm:person>'
    report = check(document(root_extra=person))
    assert report.location.carrier == "tuple"


# ------------------------------------------------------------------ C01-C10


def test_civicloc_namespace_is_an_error():
    info = '<cl:civicAddress xmlns:cl="urn:ietf:params:xml:ns:pidf:geopriv10:civicLoc"><cl:country>US</cl:country></cl:civicAddress>'
    report = check(document(info=info))
    assert has(report, "C01", "E")
    assert report.location.civic[0].get("country") == "US"


def test_civic_namespace_with_leading_space_is_an_error():
    info = '<c:civicAddress xmlns:c=" urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"><c:country>US</c:country></c:civicAddress>'
    report = check(document(info=info))
    assert has(report, "C01", "E")
    assert not has(report, "P01", "E")


def test_civic_elements_out_of_order_is_a_warning():
    report = check(document(info=civic("<ca:country>US</ca:country><ca:HNO>1</ca:HNO><ca:RD>Main</ca:RD>")))
    assert [f.severity for f in found(report, "C02")] == ["W"]


def test_civic_elements_out_of_order_is_an_error_when_strict():
    assert has(check(document(info=civic("<ca:HNO>1</ca:HNO><ca:country>US</ca:country>")), strict=True), "C02", "E")


def test_duplicated_civic_element_is_an_error():
    assert has(check(document(info=civic(FIELDS + "<ca:PC>98053</ca:PC>"))), "C02", "E")


def test_unknown_civic_element_is_an_error():
    assert has(check(document(info=civic(FIELDS + "<ca:STREET>x</ca:STREET>"))), "C02", "E")


def test_unknown_non_namespaced_civic_element_is_an_error():
    assert has(check(document(info=civic(FIELDS + '<street xmlns="">x</street>'))), "C02", "E")


def test_extension_elements_after_base_are_fine_and_read():
    report = check(document(info=civic(FIELDS + "<cae:PN>P-1204</cae:PN><cae:HNP>A</cae:HNP>")))
    assert not has(report, "C02")
    assert report.location.civic[0].extension("PN") == "P-1204"


def test_base_element_after_extension_is_a_warning():
    assert has(check(document(info=civic("<ca:country>US</ca:country><cae:PN>P-1</cae:PN><ca:PC>1</ca:PC>"))), "C02", "W")


@pytest.mark.parametrize("country", ["USA", "us", "UK", "Germany", "XX", "U"])
def test_bad_country_code_is_an_error(country):
    report = check(document(info=civic(FIELDS.replace("<ca:country>US", f"<ca:country>{country}"))))
    assert has(report, "C03", "E")
    assert report.verdict == Verdict.BY_VALUE_DEGRADED


@pytest.mark.parametrize("a1", ["Washington", "US-WA", "Wash."])
def test_a1_not_a_subdivision_code_is_a_warning(a1):
    assert has(check(document(info=civic(FIELDS.replace(">WA<", f">{a1}<")))), "C04", "W")


def test_a1_of_a_country_without_a_list_is_checked_by_pattern():
    fields = "<ca:country>DE</ca:country><ca:A1>BY</ca:A1><ca:A3>München</ca:A3><ca:RD>Leopoldstraße</ca:RD><ca:HNO>1</ca:HNO>"
    assert not has(check(document(info=civic(fields))), "C04")


def test_street_in_a6_is_a_warning():
    fields = "<ca:country>US</ca:country><ca:A1>NY</ca:A1><ca:A3>New York</ca:A3><ca:A6>Broadway</ca:A6><ca:HNO>123</ca:HNO>"
    assert has(check(document(info=civic(fields))), "C05", "W")


def test_xml_lang_on_country_is_a_warning():
    assert has(check(document(info=civic(FIELDS.replace("<ca:country>", '<ca:country xml:lang="en">')))), "C06", "W")


def test_two_languages_in_one_civic_address_is_a_warning():
    fields = FIELDS.replace("<ca:A3>", '<ca:A3 xml:lang="en">').replace("<ca:RD>", '<ca:RD xml:lang="fr">')
    assert has(check(document(info=civic(fields))), "C06", "W")


def test_empty_civic_element_is_a_warning():
    assert has(check(document(info=civic(FIELDS.replace("<ca:STS>Ave</ca:STS>", "<ca:STS> </ca:STS>")))), "C07", "W")


def test_us_address_missing_house_number_is_a_warning():
    assert has(check(document(info=civic(FIELDS.replace("<ca:HNO>4600</ca:HNO>", "")))), "C08", "W")


def test_house_number_with_suffix_is_a_warning():
    assert has(check(document(info=civic(FIELDS.replace(">4600<", ">4600A<")))), "C08", "W")


def test_civic_without_country_is_a_warning():
    assert has(check(document(info=civic("<ca:A3>Redmond</ca:A3>"))), "C08", "W")


def test_value_longer_than_lync_limit_is_informational():
    report = check(document(info=civic(FIELDS + "<ca:LOC>" + "x" * 21 + "</ca:LOC>")))
    assert [f.severity for f in found(report, "C09")] == ["I"]


def test_elins_in_nam_are_extracted_trimmed_and_dehyphenated():
    report = check(document(info=civic(FIELDS.replace("<ca:PC>", "<ca:NAM>1111-222-333; 1234567890 </ca:NAM><ca:PC>"))))
    assert has(report, "C10", "I")
    assert report.location.elins == ["1111222333", "1234567890"]


def test_more_than_five_elins_keeps_the_first_five():
    nam = ";".join(f"425555010{i}" for i in range(7))
    report = check(document(info=civic(FIELDS.replace("<ca:PC>", f"<ca:NAM>{nam}</ca:NAM><ca:PC>"))))
    assert len(report.location.elins) == 5
    assert any("first 5" in f.message for f in found(report, "C10"))


def test_company_name_in_nam_is_not_an_elin():
    report = check(document(info=civic(FIELDS.replace("<ca:PC>", "<ca:NAM>Fabrikam; Building 5</ca:NAM><ca:PC>"))))
    assert report.location.elins == []
    assert not has(report, "C10")


# ------------------------------------------------------------------ G01-G08


def test_gml_circle_is_an_error():
    shape = f'<gml:Circle srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:radius uom="{M}">10</gs:radius></gml:Circle>'
    assert has(check(shape_doc(shape)), "G01", "E")


def test_unsupported_shape_is_an_error():
    shape = f'<gml:LineString srsName="{CRS2}"><gml:posList>47.6 -122.1 47.7 -122.2</gml:posList></gml:LineString>'
    assert has(check(shape_doc(shape)), "G01", "E")


def test_circle_without_radius_is_an_error():
    shape = f'<gs:Circle srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos></gs:Circle>'
    assert has(check(shape_doc(shape)), "G01", "E")


@pytest.mark.parametrize("srs", ["epsg:4326", "EPSG:4326", "urn:ogc:def::crs:EPSG::4326", "urn:ogc:def:crs:EPSG:6.6:4326", None])
def test_bad_or_missing_srs_name_is_an_error(srs):
    assert has(check(shape_doc(point(srs=srs))), "G02", "E")


def test_srs_name_on_a_child_is_an_error():
    shape = f'<gml:Point srsName="{CRS2}"><gml:pos srsName="{CRS2}">47.6 -122.1</gml:pos></gml:Point>'
    assert has(check(shape_doc(shape)), "G02", "E")


def test_srs_dimension_is_a_warning():
    shape = f'<gml:Point srsName="{CRS2}"><gml:pos srsDimension="2">47.6 -122.1</gml:pos></gml:Point>'
    assert has(check(shape_doc(shape)), "G02", "W")


def test_circle_with_3d_crs_is_an_error():
    shape = f'<gs:Circle srsName="{CRS3}"><gml:pos>47.6 -122.1 10</gml:pos><gs:radius uom="{M}">10</gs:radius></gs:Circle>'
    assert has(check(shape_doc(shape)), "G02", "E")


def test_3d_point_is_fine():
    assert check(shape_doc(point("47.6 -122.1 30", srs=CRS3))).findings == []


def test_wrong_number_of_coordinates_is_an_error():
    assert has(check(shape_doc(point("47.6 -122.1 30"))), "G03", "E")


def test_swapped_coordinates_are_an_error_that_says_so():
    report = check(shape_doc(point("-122.1281 47.6406")))
    assert any("swapped" in f.message for f in found(report, "G03", "E"))


def test_longitude_out_of_range_is_an_error():
    assert has(check(shape_doc(point("47.6 -190.5"))), "G03", "E")


def test_non_numeric_position_is_an_error():
    assert has(check(shape_doc(point("47,6 -122,1"))), "G03", "E")


def test_swap_that_stays_in_range_is_flagged_by_the_civic_country():
    report = check(shape_doc(point("-74.0060 40.7128") + civic()))
    assert has(report, "G03", "I")


def test_measure_without_uom_is_an_error():
    shape = f'<gs:Circle srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:radius>10</gs:radius></gs:Circle>'
    assert has(check(shape_doc(shape)), "G04", "E")


def test_length_in_angle_unit_is_an_error():
    shape = f'<gs:Circle srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:radius uom="{DEG}">10</gs:radius></gs:Circle>'
    assert has(check(shape_doc(shape)), "G04", "E")


def _ellipse(orientation: str, uom: str) -> str:
    return (
        f'<gs:Ellipse srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:semiMajorAxis uom="{M}">100</gs:semiMajorAxis>'
        f'<gs:semiMinorAxis uom="{M}">50</gs:semiMinorAxis><gs:orientation uom="{uom}">{orientation}</gs:orientation></gs:Ellipse>'
    )


def test_radians_value_above_two_pi_is_an_error():
    assert has(check(shape_doc(_ellipse("90", RAD))), "G04", "E")


def test_small_radians_value_is_fine():
    assert check(shape_doc(_ellipse("1.5708", RAD))).findings == []


@pytest.mark.parametrize(
    "shape",
    [
        f'<gs:Circle srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:radius uom="{M}">0</gs:radius></gs:Circle>',
        _ellipse("90", DEG).replace(">100<", ">10<"),  # semi-major < semi-minor
        _ellipse("400", DEG),
        f'<gs:ArcBand srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:innerRadius uom="{M}">20</gs:innerRadius>'
        f'<gs:outerRadius uom="{M}">10</gs:outerRadius><gs:startAngle uom="{DEG}">10</gs:startAngle>'
        f'<gs:openingAngle uom="{DEG}">30</gs:openingAngle></gs:ArcBand>',
        f'<gs:ArcBand srsName="{CRS2}"><gml:pos>47.6 -122.1</gml:pos><gs:innerRadius uom="{M}">10</gs:innerRadius>'
        f'<gs:outerRadius uom="{M}">20</gs:outerRadius><gs:startAngle uom="{DEG}">360</gs:startAngle>'
        f'<gs:openingAngle uom="{DEG}">30</gs:openingAngle></gs:ArcBand>',
        f'<gs:Ellipsoid srsName="{CRS3}"><gml:pos>47.6 -122.1 10</gml:pos><gs:semiMajorAxis uom="{M}">10</gs:semiMajorAxis>'
        f'<gs:semiMinorAxis uom="{M}">5</gs:semiMinorAxis><gs:verticalAxis uom="{M}">-1</gs:verticalAxis>'
        f'<gs:orientation uom="{DEG}">0</gs:orientation></gs:Ellipsoid>',
        f'<gs:Sphere srsName="{CRS3}"><gml:pos>47.6 -122.1 10</gml:pos><gs:radius uom="{M}">NaN</gs:radius></gs:Sphere>',
    ],
    ids=["zero-radius", "major-lt-minor", "orientation-400", "inner-ge-outer", "start-360", "vertical-negative", "nan"],
)
def test_out_of_range_measures_are_errors(shape):
    assert has(check(shape_doc(shape)), "G05", "E")


CCW = "47.6400 -122.1290 47.6400 -122.1270 47.6412 -122.1270 47.6412 -122.1290 47.6400 -122.1290"


def test_counter_clockwise_closed_polygon_is_fine():
    report = check(shape_doc(polygon(CCW)))
    assert report.findings == []
    assert len(report.location.shapes[0].positions) == 5


@pytest.mark.parametrize(
    "pos_list",
    [
        CCW.rsplit(" ", 2)[0],  # unclosed
        "47.6400 -122.1290 47.6400 -122.1270 47.6400 -122.1290",  # three positions
        "47.6400 -122.1290 47.6412 -122.1270 47.6400 -122.1270 47.6412 -122.1290 47.6400 -122.1290",  # bow tie
        "47.6400 -122.1290 47.6412 -122.1290 47.6412 -122.1270 47.6400 -122.1270 47.6400 -122.1290",  # clockwise
        "47.6400 -122.1290 47.6400 -122.1280 47.6400 -122.1270 47.6400 -122.1290",  # no area
    ],
    ids=["unclosed", "three", "self-intersecting", "clockwise", "degenerate"],
)
def test_polygon_rule_violations_are_errors(pos_list):
    assert has(check(shape_doc(polygon(pos_list))), "G06", "E")


def test_polygon_with_more_than_sixteen_positions_is_a_warning():
    import math

    ring = [(47.64 + 0.001 * math.sin(2 * math.pi * k / 19), -122.13 + 0.001 * math.cos(2 * math.pi * k / 19)) for k in range(19)]
    ring.append(ring[0])
    report = check(shape_doc(polygon(" ".join(f"{a!r} {b!r}" for a, b in ring))))
    assert [f.severity for f in found(report, "G06")] == ["W"]


def test_polygon_with_very_long_edge_is_a_warning():
    big = "47.0 -123.0 47.0 -121.0 48.5 -121.0 48.5 -123.0 47.0 -123.0"
    assert has(check(shape_doc(polygon(big))), "G06", "W")


def test_3d_polygon_with_mixed_altitudes_is_an_error():
    pos = "47.6400 -122.1290 20 47.6400 -122.1270 20 47.6412 -122.1270 25 47.6412 -122.1290 20 47.6400 -122.1290 20"
    assert has(check(shape_doc(polygon(pos, srs=CRS3))), "G06", "E")


def test_prism_without_base_is_an_error():
    shape = f'<gs:Prism srsName="{CRS3}"><gs:height uom="{M}">3</gs:height></gs:Prism>'
    assert has(check(shape_doc(shape)), "G06", "E")


def test_gml_location_wrapper_and_coordinates_are_warnings_and_read():
    shape = f'<gml:location><gml:Point srsName="{CRS2}"><gml:coordinates>37:46:30N 122:25:10W</gml:coordinates></gml:Point></gml:location>'
    report = check(shape_doc(shape))
    assert len(found(report, "G07", "W")) == 2
    lat, lon = report.location.shapes[0].positions[0]
    assert lat == pytest.approx(37.775) and lon == pytest.approx(-122.41944, abs=1e-4)


def test_gml_3_0_namespace_is_a_warning():
    shape = f'<g3:Point xmlns:g3="urn:opengis:specification:gml:schema-xsd:feature:v3.0" srsName="{CRS2}"><g3:pos>47.6 -122.1</g3:pos></g3:Point>'
    assert has(check(shape_doc(shape)), "G07", "W")


def test_compound_civic_before_geodetic_is_a_warning():
    assert has(check(shape_doc(civic() + point())), "G08", "W")


def test_compound_geodetic_before_civic_is_fine():
    assert check(shape_doc(point() + civic())).findings == []


# ------------------------------------------------------------------ M01-M02


def _ms(inner: str) -> str:
    return f"<ms:msftE911PidfExtn>{inner}</ms:msftE911PidfExtn>"


GOOD_MS = (
    "<ms:ConferenceUri>sip:+14255550142@example.com;user=phone</ms:ConferenceUri><ms:ConferenceMode>oneway</ms:ConferenceMode>"
    '<LocationPolicyTagID xmlns="urn:schema:Rtc.Lis.LocationPolicyTagID.2008">tag-1</LocationPolicyTagID>'
)


def test_microsoft_extension_is_read_and_clean():
    report = check(document(status_extra=_ms(GOOD_MS)))
    assert report.findings == []
    ext = report.location.ms_extension
    assert (ext.conference_mode, ext.location_policy_tag_id) == ("oneway", "tag-1")


@pytest.mark.parametrize(
    "inner",
    [
        GOOD_MS.replace(">oneway<", ">two-way<"),
        GOOD_MS.split("<ms:ConferenceMode>")[0],  # no mode, no tag
        "<ms:ConferenceMode>twoway</ms:ConferenceMode>",  # no URI
        "<ms:ConferenceMode>twoway</ms:ConferenceMode><ms:ConferenceUri>sip:x@y</ms:ConferenceUri>",  # order
        GOOD_MS.replace("Rtc.Lis.LocationPolicyTagID", "Rtc.LIS.LocationPolicyTagID"),
    ],
    ids=["two-way", "no-mode", "no-uri", "order", "tag-namespace"],
)
def test_microsoft_extension_problems_are_warnings(inner):
    report = check(document(status_extra=_ms(inner)))
    assert has(report, "M01", "W")
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_microsoft_extension_in_wrong_namespace_is_a_warning():
    ext = f'<x:msftE911PidfExtn xmlns:x="urn:schema:Rtc.Lis.msftE911PidfExtn.2008">{GOOD_MS}</x:msftE911PidfExtn>'
    assert has(check(document(status_extra=ext)), "M01", "W")


def test_microsoft_extension_before_geopriv_is_informational():
    body = f'<tuple id="t1"><status>{_ms(GOOD_MS)}{geopriv()}</status></tuple>'
    assert [f.severity for f in found(check(document(body=body)), "M02")] == ["I"]


def test_microsoft_extension_outside_status_is_informational():
    assert has(check(document(tuple_extra=_ms(GOOD_MS))), "M02", "I")
