"""P01/P02 and hostile input: refused quickly, never expanded, never fetched, never raised."""

from __future__ import annotations

import time

import pytest
from pidf_testdocs import FIELDS, check, civic, document, found, has

from pidf import Verdict, validate_document
from pidf.findings import Findings
from pidf.parse import parse_xml

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
    )
    + b']>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>&lol9;</note></presence>'
)


def _refused_fast(data: bytes, **kw):
    start = time.perf_counter()
    report = validate_document(data, **kw)
    elapsed = time.perf_counter() - start
    assert has(report, "P01", "E")
    assert report.verdict == Verdict.NO_LOCATION
    return report, elapsed


def test_billion_laughs_is_refused_in_well_under_a_second():
    report, elapsed = _refused_fast(BILLION_LAUGHS)
    assert elapsed < 0.05
    assert "DOCTYPE" in found(report, "P01")[0].message


def test_external_entity_is_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>&x;</note></presence>'
    ).encode()
    report, _ = _refused_fast(data)
    assert "TOP-SECRET" not in repr(report.to_dict())


def test_parser_does_not_expand_entities_even_past_the_doctype_screen():
    # Second line of defence: the parser itself resolves nothing. Internal entity
    # references without a DTD are simply undefined (an error), never expanded.
    data = b'<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">&ext;</presence>'
    assert has(validate_document(data), "P01", "E")


def test_one_megabyte_document_is_refused_quickly():
    big = document(root_extra="<note>" + "x" * (1024 * 1024) + "</note>")
    report, elapsed = _refused_fast(big)
    assert elapsed < 0.05
    assert "limit" in found(report, "P01")[0].message


def test_size_limit_is_a_parameter():
    data = document()
    assert not has(validate_document(data, max_size=len(data)), "P01")
    assert has(validate_document(data, max_size=len(data) - 1), "P01", "E")


@pytest.mark.parametrize("depth", [60, 300, 5000])
def test_deep_nesting_is_refused(depth):
    # 300 and 5000 pass libxml2's own limit (256); the size limit is lifted to reach it.
    nest = '<x:e xmlns:x="urn:x">' * depth + "</x:e>" * depth
    data = document(root_extra=nest)
    _, elapsed = _refused_fast(data, max_size=len(data))
    assert elapsed < 0.5


def test_depth_limit_is_a_parameter():
    nest = '<x:e xmlns:x="urn:x">' * 10 + "</x:e>" * 10
    data = document(root_extra=nest)
    assert not has(validate_document(data), "P01")
    assert has(validate_document(data, max_depth=8), "P01", "E")


def test_doctype_in_utf16_document_is_refused():
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE p [<!ENTITY a "b">]><presence/>'.encode("utf-16")
    report = validate_document(data)
    assert any("DOCTYPE" in f.message for f in found(report, "P01"))


def test_utf16_document_with_bom_is_read():
    data = document().decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    report = check(data)
    assert not has(report, "P01")
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"not xml at all",
        b"<presence",
        b'<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf"><gs:Circle/></presence>',
        b"\xff\xfe\x00\x00garbage",
        b'<?xml version="1.0" encoding="x-no-such-charset"?><a/>',
    ],
)
def test_broken_input_is_a_p01_error_not_an_exception(data):
    report = validate_document(data)
    assert has(report, "P01", "E")
    assert report.verdict == Verdict.NO_LOCATION


def test_undeclared_prefix_is_not_namespace_well_formed():
    data = document(info='<gs:Circle srsName="x"/>').replace(b'xmlns:gs="http://www.opengis.net/pidflo/1.0" ', b"")
    assert "gs" in found(validate_document(data), "P01", "E")[0].message


def test_utf8_bom_is_tolerated_and_noted():
    report = check(b"\xef\xbb\xbf" + document())
    assert [f.severity for f in found(report, "P02")] == ["I"]
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_bom_contradicting_charset_is_a_warning_and_bom_wins():
    data = b"\xef\xbb\xbf" + document(info=civic(FIELDS.replace("Redmond", "Montréal")))
    report = check(data, charset="iso-8859-1")
    assert has(report, "P02", "W")
    assert report.location.civic[0].get("A3") == "Montréal"


def test_charset_wins_over_declaration():
    text = document(info=civic(FIELDS.replace("Redmond", "Montréal"))).decode()
    data = text.encode("iso-8859-1")  # bytes are Latin-1, the declaration still says UTF-8
    report = check(data, charset="ISO-8859-1")
    assert has(report, "P02", "W")
    assert report.location.civic[0].get("A3") == "Montréal"


def test_same_charset_spelled_differently_is_not_a_mismatch():
    assert not has(check(document(), charset="utf8"), "P02")


def test_unknown_charset_is_a_warning_and_the_declaration_is_used():
    report = check(document(), charset="x-klingon")
    assert has(report, "P02", "W")
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


def test_parse_xml_returns_the_tree_and_encoding():
    f = Findings()
    parsed = parse_xml(document(), f)
    assert parsed.root is not None and parsed.encoding == "utf-8" and parsed.has_declaration
    assert list(f) == []
