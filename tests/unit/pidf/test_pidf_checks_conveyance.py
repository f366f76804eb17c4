"""S01-S17 on neutral Conveyance views built directly (no SIP parsing), and the verdicts."""

from __future__ import annotations

import pytest
from pidf_testdocs import (
    CID,
    FIELDS,
    SDP,
    check_conveyance,
    civic,
    conveyance,
    document,
    found,
    has,
    pidf_part,
    sdp_part,
)

from pidf import Conveyance, MimePart, Verdict, compare_conveyance, validate_conveyance, validate_response

# ------------------------------------------------------------------ baseline and verdicts


def test_clean_conveyance_has_no_findings_and_resolves_exactly():
    report = check_conveyance(conveyance(headers=[("Geolocation-Routing", "yes")]))
    assert report.findings == []
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID
    assert (report.selected_part, report.selected_part_rule) == (1, "exact")
    assert report.marking.kind == "emergency"
    assert report.geolocation_routing == "yes"
    assert report.parts[1].pidf and report.parts[1].size == len(document())


def test_no_body_and_no_geolocation_is_no_location():
    report = check_conveyance(conveyance([], geolocation=[], content_type="application/sdp", body=SDP))
    assert report.verdict == Verdict.NO_LOCATION
    assert report.findings == []


def test_caller_listed_as_elin_without_location_is_elin_only():
    conv = conveyance([], geolocation=[], content_type="application/sdp", body=SDP)
    conv.headers[0] = ("From", "<sip:+1-425-555-0100@gw.example.com;user=phone>;tag=9")
    report = check_conveyance(conv, elins=frozenset({"4255550100"}))
    assert report.verdict == Verdict.ELIN_ONLY
    assert report.calling_number == "+1-425-555-0100"


def test_p_asserted_identity_wins_over_from_for_elin():
    conv = conveyance([], geolocation=[], content_type="application/sdp", body=SDP,
                      headers=[("P-Asserted-Identity", "<tel:+14255550111>")])  # fmt: skip
    report = check_conveyance(conv, elins=frozenset({"4255550111"}))
    assert report.verdict == Verdict.ELIN_ONLY
    assert check_conveyance(conv, elins=frozenset({"alice"})).verdict == Verdict.NO_LOCATION


def test_location_by_value_beats_elin():
    report = check_conveyance(conveyance(), elins=frozenset({"alice"}))
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


# ------------------------------------------------------------------ S01-S05


def test_sdp_only_body_with_cid_reference_is_an_s01_error():
    report = check_conveyance(conveyance([], content_type="application/sdp", body=SDP))
    assert has(report, "S01", "E") and has(report, "S07", "E")
    assert report.verdict == Verdict.NO_LOCATION


def test_single_pidf_body_needs_a_sip_content_id():
    doc = document()
    bare = conveyance([], content_type="application/pidf+xml", body=doc)
    assert has(check_conveyance(bare), "S01", "E")
    with_id = conveyance([], content_type="application/pidf+xml", body=doc,
                         headers=[("Content-ID", f"<{CID}>"), ("Geolocation-Routing", "yes")])  # fmt: skip
    report = check_conveyance(with_id)
    assert report.findings == []
    assert (report.selected_part, report.selected_part_rule) == (0, "exact")


def test_other_multipart_subtype_is_treated_as_mixed():
    report = check_conveyance(conveyance(content_type="multipart/related;boundary=b1"))
    assert has(report, "S01", "I") and report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_unquoted_boundary_with_tspecials_is_a_warning_when_split():
    conv = conveyance(boundary="----=_Part_1", content_type="multipart/mixed; boundary=----=_Part_1")
    assert [f.severity for f in found(check_conveyance(conv), "S02")] == ["W"]


def test_boundary_defect_is_an_error_when_the_body_could_not_be_split():
    conv = conveyance(boundary="----=_Part_1", content_type="multipart/mixed; boundary=----=_Part_1", split=False,
                      defects=["unsplittable"])  # fmt: skip
    report = check_conveyance(conv)
    assert has(report, "S02", "E")
    assert report.verdict == Verdict.NO_LOCATION


def test_quoted_boundary_with_tspecials_is_fine():
    conv = conveyance(boundary="----=_Part_1", content_type='multipart/mixed; boundary="----=_Part_1"')
    assert not has(check_conveyance(conv), "S02")


@pytest.mark.parametrize(
    ("content_type", "defects"),
    [
        ("multipart/mixed; boundary= b1", []),
        ('multipart/mixed; boundary="b1 "', []),
        ("multipart/mixed; boundary=" + "x" * 71, []),
        ("multipart/mixed; boundary=b1", ["no-close-delimiter"]),
        ("multipart/mixed; boundary=b1", ["lf-line-endings"]),
    ],
    ids=["space-after-equals", "trailing-space", "too-long", "no-close", "lf"],
)
def test_boundary_problems_are_s02_warnings_when_split(content_type, defects):
    report = check_conveyance(conveyance(content_type=content_type, defects=defects))
    assert has(report, "S02", "W")
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_missing_boundary_is_an_error():
    report = check_conveyance(conveyance(content_type="multipart/mixed", split=False, defects=["boundary-missing"]))
    assert has(report, "S02", "E")


@pytest.mark.parametrize("defect", ["preamble", "part-content-length"])
def test_harmless_mime_oddities_are_informational(defect):
    assert [f.severity for f in found(check_conveyance(conveyance(defects=[defect])), "S02")] == ["I"]


def test_content_length_mismatch_is_an_error_and_degrades():
    report = check_conveyance(conveyance(content_length=99999))
    assert has(report, "S03", "E")
    assert report.verdict == Verdict.BY_VALUE_DEGRADED


def test_content_length_with_leading_whitespace_is_accepted():
    conv = conveyance()
    conv.headers[-1] = ("Content-Length", "  " + conv.headers[-1][1])
    assert not has(check_conveyance(conv), "S03")


def test_missing_content_length_is_informational():
    conv = conveyance()
    conv.headers.pop()
    assert [f.severity for f in found(check_conveyance(conv), "S03")] == ["I"]


def test_part_without_content_type_is_an_error():
    parts = [MimePart([], SDP), pidf_part()]
    assert has(check_conveyance(conveyance(parts)), "S04", "E")


def test_referenced_part_with_wrong_type_is_an_error_but_still_read():
    report = check_conveyance(conveyance([sdp_part(), pidf_part(ctype="application/xml")]))
    assert has(report, "S04", "E")
    assert report.location is not None
    assert report.verdict == Verdict.BY_VALUE_DEGRADED


def test_part_charset_is_passed_to_the_parser():
    report = check_conveyance(conveyance([sdp_part(), pidf_part(ctype="application/pidf+xml;charset=iso-8859-1")]))
    assert has(report, "P02", "W")


def test_content_id_without_at_sign_is_an_error():
    report = check_conveyance(conveyance([sdp_part(), pidf_part(cid="location")], geolocation=["<cid:location>"]))
    assert has(report, "S05", "E")


def test_duplicate_content_ids_are_an_error():
    parts = [MimePart([("Content-Type", "application/sdp"), ("Content-ID", f"<{CID}>")], SDP), pidf_part()]
    assert has(check_conveyance(conveyance(parts)), "S05", "E")


# ------------------------------------------------------------------ S06-S09


def test_pidf_without_geolocation_header_is_an_error_but_used():
    report = check_conveyance(conveyance(geolocation=[]))
    assert has(report, "S06", "E")
    assert report.verdict == Verdict.BY_VALUE_DEGRADED
    assert report.selected_part_rule == "last-pidf-part"


def test_geolocation_value_without_angle_brackets_is_an_error():
    assert has(check_conveyance(conveyance(geolocation=[f"cid:{CID}"])), "S06", "E")


def test_empty_geolocation_header_is_an_error():
    assert has(check_conveyance(conveyance(geolocation=[" "])), "S06", "E")


def test_lync_cid_sip_mismatch_resolves_by_stripped_scheme_as_a_warning():
    report = check_conveyance(conveyance(geolocation=[f"<cid:sip:{CID}>"]))
    warnings = found(report, "S07")
    assert [f.severity for f in warnings] == ["W"] and "stripped-scheme" in warnings[0].message
    assert report.selected_part_rule == "stripped-scheme"
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_unmatched_cid_falls_back_to_last_pidf_part_as_a_warning():
    report = check_conveyance(conveyance([sdp_part(), pidf_part(cid=None)]))
    assert [f.severity for f in found(report, "S07")] == ["W"]
    assert (report.selected_part, report.selected_part_rule) == (1, "last-pidf-part")


def test_dangling_cid_is_an_error_and_no_location():
    report = check_conveyance(conveyance([sdp_part()]))
    assert has(report, "S07", "E")
    assert report.verdict == Verdict.NO_LOCATION


def test_percent_encoded_cid_resolves():
    report = check_conveyance(conveyance(geolocation=["<cid:loc1%40example.com>"]))
    assert report.selected_part_rule == "exact"


def test_backward_body_reference_is_a_warning():
    extra = '<gp:provided-by><EmergencyCallDataReference xmlns="urn:ietf:params:xml:ns:EmergencyCallData" ref="cid:sdp@example.com" purpose="EmergencyCallData.ProviderInfo"/></gp:provided-by>'
    parts = [
        MimePart([("Content-Type", "application/sdp"), ("Content-ID", "<sdp@example.com>")], SDP),
        pidf_part(document(geopriv_extra=extra)),
    ]
    assert has(check_conveyance(conveyance(parts)), "S08", "W")


def test_forward_body_reference_is_fine():
    extra = '<gp:provided-by><EmergencyCallDataReference xmlns="urn:ietf:params:xml:ns:EmergencyCallData" ref="cid:pi@example.com" purpose="EmergencyCallData.ProviderInfo"/></gp:provided-by>'
    parts = [
        sdp_part(),
        pidf_part(document(geopriv_extra=extra)),
        MimePart([("Content-Type", "application/EmergencyCallData.ProviderInfo+xml"), ("Content-ID", "<pi@example.com>")], b"<x/>"),
    ]
    assert not has(check_conveyance(conveyance(parts)), "S08")


def test_by_reference_disposition_is_fine_when_referenced():
    part = pidf_part(extra=[("Content-Disposition", "by-reference;handling=optional")])
    assert not has(check_conveyance(conveyance([sdp_part(), part])), "S09")


def test_unreferenced_by_reference_part_is_an_error():
    part = pidf_part(extra=[("Content-Disposition", "by-reference;handling=optional")])
    assert has(check_conveyance(conveyance([sdp_part(), part], geolocation=[])), "S09", "E")


@pytest.mark.parametrize("disposition", ["session", "render;handling=maybe"])
def test_odd_pidf_disposition_is_a_warning(disposition):
    part = pidf_part(extra=[("Content-Disposition", disposition)])
    assert has(check_conveyance(conveyance([sdp_part(), part])), "S09", "W")


# ------------------------------------------------------------------ S10-S12


def test_https_reference_without_supported_tag_is_an_error_and_by_reference():
    conv = conveyance([], geolocation=["<https://lis.example.com/loc/1>"], content_type="application/sdp", body=SDP)
    report = check_conveyance(conv)
    assert has(report, "S10", "E")
    assert report.verdict == Verdict.BY_REFERENCE_ONLY


def test_sip_reference_with_supported_tag_is_fine():
    conv = conveyance([], geolocation=["<sips:loc@lis.example.com>"], content_type="application/sdp", body=SDP,
                      headers=[("Supported", "100rel, geolocation-sip")])  # fmt: skip
    report = check_conveyance(conv)
    assert not has(report, "S10")
    assert report.verdict == Verdict.BY_REFERENCE_ONLY


@pytest.mark.parametrize("uri", ["geo:47.6,-122.1", "ftp://lis.example.com/loc", "mailto:x@y"])
def test_unsuitable_location_uri_scheme_is_an_error(uri):
    conv = conveyance([], geolocation=[f"<{uri}>"], content_type="application/sdp", body=SDP)
    report = check_conveyance(conv)
    assert has(report, "S10", "E")
    assert report.verdict == Verdict.NO_LOCATION


def test_draft_era_artefacts_are_informational():
    conv = conveyance(geolocation=[f'<cid:{CID}>;inserted-by="sip:alice@example.com"'], headers=[("Supported", "geolocation")])
    report = check_conveyance(conv)
    assert [f.severity for f in found(report, "S11")] == ["I", "I"]
    assert report.references[0].params == [("inserted-by", "sip:alice@example.com")]


def test_missing_geolocation_routing_means_no():
    report = check_conveyance(conveyance())
    assert has(report, "S12", "I")
    assert report.geolocation_routing == "no"


@pytest.mark.parametrize(("values", "severity", "effective"), [(["maybe"], "W", "no"), (["yes", "no"], "E", "yes"), ([""], "E", "no")])
def test_geolocation_routing_problems(values, severity, effective):
    report = check_conveyance(conveyance(headers=[("Geolocation-Routing", v) for v in values]))
    assert has(report, "S12", severity)
    assert report.geolocation_routing == effective


def test_geolocation_routing_is_case_insensitive():
    report = check_conveyance(conveyance(headers=[("Geolocation-Routing", "Yes")]))
    assert not has(report, "S12")
    assert report.geolocation_routing == "yes"


# ------------------------------------------------------------------ S13 compare


def _with_geolocation(values: list[str], routing: str | None = "yes") -> Conveyance:
    headers = [("Geolocation-Routing", routing)] if routing else []
    return conveyance(geolocation=values, headers=headers)


def test_unchanged_relay_has_no_s13_findings():
    conv = _with_geolocation([f"<cid:{CID}>"])
    assert compare_conveyance(conv, _with_geolocation([f"<cid:{CID}>"])) == []


def test_value_added_first_is_reported():
    findings = compare_conveyance(_with_geolocation([f"<cid:{CID}>"]), _with_geolocation(["<https://sbc.example.com/l/1>", f"<cid:{CID}>"]))
    assert any("not last" in f.message for f in findings)
    assert all(f.id == "S13" and f.severity == "W" for f in findings)


def test_value_removed_or_params_dropped_is_reported():
    before = _with_geolocation([f'<cid:{CID}>;inserted-by="sip:a@b"'])
    assert any("changed" in f.message for f in compare_conveyance(before, _with_geolocation([f"<cid:{CID}>"])))
    assert any("removed" in f.message for f in compare_conveyance(before, _with_geolocation([])))


def test_routing_no_turned_yes_is_reported():
    findings = compare_conveyance(_with_geolocation([f"<cid:{CID}>"], "no"), _with_geolocation([f"<cid:{CID}>"], "yes"))
    assert any("MUST NOT" in f.message for f in findings)


def test_modified_pidf_part_is_reported():
    after = conveyance([sdp_part(), pidf_part(document(info=civic(FIELDS.replace("4600", "4601"))))])
    assert any("modified" in f.message for f in compare_conveyance(conveyance(), after))


# ------------------------------------------------------------------ S14-S17


def test_emergency_dial_string_without_priority_is_a_warning():
    conv = conveyance()
    conv.headers = [h for h in conv.headers if h[0] != "Priority"]
    assert has(check_conveyance(conv), "S14", "W")


def test_priority_urgent_on_emergency_call_is_a_warning():
    conv = conveyance()
    conv.headers = [(n, "urgent" if n == "Priority" else v) for n, v in conv.headers]
    assert has(check_conveyance(conv), "S14", "W")


def test_unregistered_priority_is_a_warning():
    conv = conveyance()
    conv.headers = [(n, "critical" if n == "Priority" else v) for n, v in conv.headers]
    assert has(check_conveyance(conv), "S14", "W")


def test_priority_emergency_to_ordinary_number_is_a_warning():
    report = check_conveyance(conveyance(request_uri="sip:bob@example.com"))
    assert has(report, "S14", "W")
    assert report.marking.kind == "none"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("urn:service:sos", "emergency"),
        ("urn:service:sos.fire", "emergency"),
        ("sip:urn:service:sos@sbc.example.com", "emergency"),
        ("sip:+911@sbc.example.com;user=phone", "emergency"),
        ("sip:911;phone-context=Redmond@192.0.2.1;user=phone", "emergency"),
        ("tel:112", "emergency"),
        ("sip:933@sbc.example.com", "test"),
        ("urn:service:test.sos.police", "test"),
    ],
)
def test_emergency_and_test_targets_are_recognised(uri, kind):
    report = check_conveyance(conveyance(request_uri=uri))
    assert report.marking.kind == kind
    assert not has(report, "S14")


def test_malformed_geolocation_error_is_an_error():
    assert has(check_conveyance(conveyance(headers=[("Geolocation-Error", "one hundred")])), "S15", "E")


def test_response_424_without_geolocation_error_is_an_error():
    request = conveyance()
    response = Conveyance(headers=[("Content-Length", "0")], body=b"", parts=None)
    findings = validate_response(424, response, request=request)
    assert any(f.id == "S15" and f.severity == "E" for f in findings)
    assert any(f.id == "S15" and f.severity == "W" and "emergency" in f.message for f in findings)


def test_response_424_to_request_without_location_is_an_error():
    request = conveyance([], geolocation=[], content_type="application/sdp", body=SDP, request_uri="sip:bob@example.com")
    request.headers = [h for h in request.headers if h[0] != "Priority"]
    response = Conveyance(headers=[("Geolocation-Error", '100;code="Cannot Process Location"')], body=b"", parts=None)
    findings = validate_response(424, response, request=request)
    assert [f.severity for f in findings] == ["E"]


def test_geolocation_error_in_200_is_fine_and_unquoted_text_is_not():
    good = Conveyance(headers=[("Geolocation-Error", '300;code="Dereference Failure"')], body=b"", parts=None)
    assert validate_response(200, good, request=conveyance()) == []
    bad = Conveyance(headers=[("Geolocation-Error", "300;code=Dereference")], body=b"", parts=None)
    assert any(f.id == "S15" for f in validate_response(200, bad, request=conveyance()))


def test_call_info_without_commas_is_an_error_that_does_not_degrade():
    value = ("<https://a.example.com/pi>;purpose=EmergencyCallData.ProviderInfo "
             "<https://a.example.com/si>;purpose=EmergencyCallData.ServiceInfo")  # fmt: skip
    report = check_conveyance(conveyance(headers=[("Call-Info", value)]))
    assert has(report, "S16", "E")
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_call_info_by_reference_over_http_is_an_error():
    value = "<http://a.example.com/pi>;purpose=EmergencyCallData.ProviderInfo"
    assert has(check_conveyance(conveyance(headers=[("Call-Info", value)])), "S16", "E")


def test_call_info_cid_to_matching_part_is_fine_and_to_wrong_type_is_an_error():
    value = "<cid:pi@example.com>;purpose=EmergencyCallData.ProviderInfo"
    good = [sdp_part(), pidf_part(), MimePart([("Content-Type", "application/EmergencyCallData.ProviderInfo+xml"), ("Content-ID", "<pi@example.com>")], b"<x/>")]
    assert not has(check_conveyance(conveyance(good, headers=[("Call-Info", value)])), "S16")
    bad = [sdp_part(), pidf_part(), MimePart([("Content-Type", "text/plain"), ("Content-ID", "<pi@example.com>")], b"x")]
    assert has(check_conveyance(conveyance(bad, headers=[("Call-Info", value)])), "S16", "E")


def test_two_pidf_parts_report_first_and_last_choices():
    other = pidf_part(document(info=civic(FIELDS.replace("4600", "9999"))), cid="loc2@example.com")
    report = check_conveyance(conveyance([sdp_part(), pidf_part(), other]))
    warning = found(report, "S17", "W")
    assert warning and "DIFFER" in warning[0].message
    assert (report.first_part, report.last_part, report.selected_part) == (1, 2, 1)
    assert report.location.civic[0].get("HNO") == "4600"


def test_two_identical_pidf_parts_say_they_agree():
    report = check_conveyance(conveyance([sdp_part(), pidf_part(), pidf_part(cid="loc2@example.com")]))
    assert "agree" in found(report, "S17")[0].message


# ------------------------------------------------------------------ robustness


def test_garbage_in_every_field_still_returns_a_report():
    conv = Conveyance(
        headers=[("Content-Type", "multipart/;;;"), ("Geolocation", "<<<>"), ("Content-Length", "-1"), ("Call-Info", '"')],
        body=b"\x00\xff" * 10,
        parts=[MimePart([("Content-Type", "application/pidf+xml")], b"<presence")],
        body_defects=["something-new"],
    )
    report = validate_conveyance(conv)
    assert report.verdict in set(Verdict)
    assert report.to_dict()["verdict"] == report.verdict.value
