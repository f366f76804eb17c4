"""`pidf.memo.ValidationMemo` with per-call Content-IDs: a conveyance that differs from a
remembered one only by its Content-IDs (and the cid: URLs that name them) hits the
entry kept with placeholders, and its report is the fresh validation of that call.

Each test makes a few calls, each with new ids, and checks every report against a fresh
``validate_conveyance`` (every field, every finding with its location, in order): the
first call learns, the later ones hit. Where the ids may not be renamed (odd syntax, a
reference in another form, a document that refers to a part by cid:, a ``~`` in a
header...), the conveyance is keyed as it is, and the reports are fresh all the same.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pidf_testdocs import SDP, conveyance, document, pidf_part, sdp_part
from test_pidf_docmemo import content_ids, renamed, same_length
from test_pidf_memo import MANIFEST, NOW, TIMES, conveyance_of, corpus, view

from pidf import Conveyance, MimePart, validate_conveyance
from pidf.memo import ValidationMemo

EMERGENCY_DATA = "application/EmergencyCallData.ProviderInfo+xml"


def calls(make: Callable[[int], Conveyance], n: int = 3, *, memo: ValidationMemo | None = None,
          times: list = TIMES[:3], elins: frozenset[str] = frozenset()) -> ValidationMemo:  # fmt: skip
    """``n`` calls ``make(0)``, ``make(1)``... through one memo, each report checked
    against a fresh validation at each of ``times``."""
    memo = memo if memo is not None else ValidationMemo(16)
    for k in range(n):
        conv = make(k)
        for when in times:
            got = memo.validate(conv, now=when, elins=elins)
            assert view(got) == view(validate_conveyance(conv, now=when, elins=elins)), f"call {k} at {when}"
    return memo


def assert_keyed_as_is(make: Callable[[int], Conveyance]) -> None:
    """Not renamed: only the same call at a later time hits (each new id misses)."""
    assert calls(make).hits == 2 * 3


def loc(k: int) -> str:
    """A per-call id, the same length each call (as a phone's counter of a few digits)."""
    return f"caller-loc-{k:04d}@lab.example.com"


def pidf_call(k: int, *, geolocation: str = "<cid:{cid}>", cid: Callable[[int], str] = loc, **kw) -> Conveyance:
    """SDP and a PIDF part with a per-call Content-ID, Geolocation naming it."""
    parts = [sdp_part(), pidf_part(cid=cid(k))]
    return conveyance(parts, geolocation=[geolocation.format(cid=cid(k))], **kw)


def test_a_per_call_content_id_hits_and_equals_a_fresh_validation():
    memo = calls(pidf_call, 4)
    assert (memo.misses, memo.hits) == (1, 4 * 3 - 1)
    report = memo.validate(pidf_call(7), now=NOW)
    assert report.references[0].uri == f"cid:{loc(7)}" and report.parts[1].content_id == f"<{loc(7)}>"
    assert memo.documents.misses == 1


def test_the_report_of_a_hit_is_its_own():
    memo = calls(pidf_call, 2)
    first = memo.validate(pidf_call(5), now=NOW)
    first.references[0].uri = "changed"
    first.parts[1].content_id = "changed"
    first.findings.clear()
    first.marking.kind = "changed"
    assert view(memo.validate(pidf_call(6), now=NOW)) == view(validate_conveyance(pidf_call(6), now=NOW))


@pytest.mark.parametrize(("name", "data"), corpus(), ids=[name for name, _ in corpus()])
def test_every_fixture_with_per_call_ids_equals_a_fresh_validation(name: str, data: bytes):
    elins = frozenset(MANIFEST[name].get("elins", []))
    ids = iter(["q", "z", "w"])

    def make(k: int) -> Conveyance:
        conv = conveyance_of(name, data)
        if k == 0:
            return conv
        first = next(ids)  # a new id of the same length, as a per-call counter makes
        return renamed(conv, other=lambda addr: first + addr[1:] if addr[0].lower() != first else "x" + addr[1:])

    calls(make, 3, elins=elins, times=TIMES)


def test_the_corpus_exercises_renamed_hits():
    """Guard against a vacuous comparison above: most fixtures hit with renamed ids."""
    renamed_hits = 0
    for name, data in corpus():
        memo = ValidationMemo(8)
        memo.validate(conveyance_of(name, data), now=NOW)
        conv = renamed(conveyance_of(name, data), other=same_length)
        memo.validate(conv, now=NOW)
        renamed_hits += bool(content_ids(conv)) and memo.hits == 1
    assert renamed_hits >= 75  # of 94: not Lync's (its id is in a quoted parameter too), nor the 1 MB one


# ---------------------------------------------------------------- findings that quote the id


def test_lync_cid_sip_reference_quotes_the_ids_of_each_call():
    """S07 W, stripped-scheme: the message quotes the URI and the Content-ID."""
    memo = calls(lambda k: pidf_call(k, geolocation="<cid:sip:{cid}>"))
    assert memo.hits > 0
    report = memo.validate(pidf_call(9, geolocation="<cid:sip:{cid}>"), now=NOW)
    assert any(loc(9) in f.message for f in report.findings if f.id == "S07")


def test_a_content_id_on_two_parts_is_quoted_per_call():
    """S05 (also used by) and S07 (matches 2 body parts) quote the id."""
    def make(k: int) -> Conveyance:
        return conveyance([sdp_part(), pidf_part(cid=loc(k)), pidf_part(cid=loc(k))], geolocation=[f"<cid:{loc(k)}>"])

    memo = calls(make)
    assert memo.hits > 0
    messages = [f.message for f in memo.validate(make(8), now=NOW).findings]
    assert any(loc(8) in m and "also used by" in m for m in messages)


def test_several_ids_and_a_call_info_reference_are_renamed_together():
    """Two per-call ids, one named by Call-Info with the wrong type (S16 quotes it)."""
    def make(k: int) -> Conveyance:
        parts = [sdp_part(), pidf_part(cid=loc(k)),
                 MimePart([("Content-Type", "application/sdp"), ("Content-ID", f"<pi-{k:04d}@lab.example.com>")], SDP)]  # fmt: skip
        call_info = [("Call-Info", f"<cid:pi-{k:04d}@lab.example.com>;purpose=EmergencyCallData.ProviderInfo")]
        return conveyance(parts, geolocation=[f"<cid:{loc(k)}>;inserted-by=sbc"], headers=call_info)

    memo = calls(make)
    assert memo.hits > 0
    assert any(f.id == "S16" and "pi-0008@" in f.message for f in memo.validate(make(8), now=NOW).findings)


def test_a_sip_level_content_id_on_a_single_pidf_body():
    def make(k: int) -> Conveyance:
        return conveyance([], content_type="application/pidf+xml", body=document(),
                          geolocation=[f"<cid:{loc(k)}>"], headers=[("Content-ID", f"<{loc(k)}>")])  # fmt: skip

    memo = calls(make)
    assert memo.hits > 0
    assert memo.validate(make(8), now=NOW).parts[0].content_id == f"<{loc(8)}>"


def test_a_sip_level_content_id_beside_multipart_is_renamed_with_the_parts():
    """S05: the SIP-level Content-ID of a multipart body is one more id, quoted."""
    memo = calls(lambda k: pidf_call(k, headers=[("Content-ID", f"<sip-{k:04d}@lab.example.com>")]))
    assert memo.hits > 0


def test_a_stale_content_length_is_judged_per_call_on_a_renamed_hit():
    memo = calls(lambda k: pidf_call(k, content_length=k))
    assert memo.hits > 0


def test_a_reference_that_names_no_part_is_quoted_as_it_is():
    """The Geolocation cid names another id than the part's (last-pidf-part, S07 W)."""
    memo = calls(lambda k: pidf_call(k, geolocation=f"<cid:other-{k:04d}@lab.example.com>"))
    assert memo.misses == 3  # the reference is no Content-ID: it is keyed as it is


# ---------------------------------------------------------------- references in other forms


def test_a_truncated_reference_is_keyed_as_it_is():
    """A cid: URL naming a prefix of the Content-ID (and one naming a longer id)."""
    calls(lambda k: pidf_call(k, geolocation=f"<cid:{loc(k)[:-1]}>"))
    calls(lambda k: pidf_call(k, geolocation="<cid:{cid}m>"))


def test_a_reference_in_another_case_is_keyed_as_it_is():
    """cid matching ignores case: the reference resolves, but is not the id as written."""
    assert_keyed_as_is(lambda k: pidf_call(k, geolocation=f"<cid:{loc(k).upper()}>"))
    assert_keyed_as_is(lambda k: pidf_call(k, cid=lambda k: loc(k).replace("caller", "Caller"),
                                           geolocation=f"<cid:{loc(k)}>"))  # fmt: skip


def test_an_id_that_is_also_a_parameter_is_keyed_as_it_is():
    """A parameter name is lower-cased in the report: the id there is not renamed."""
    assert_keyed_as_is(lambda k: pidf_call(k, geolocation="<cid:{cid}>;{cid}"))
    assert_keyed_as_is(lambda k: pidf_call(k, geolocation="<cid:{cid}>;x={cid}"))
    assert_keyed_as_is(lambda k: pidf_call(k, geolocation="<cid:{cid}>;x={cid}>"))


def test_an_id_that_is_the_start_of_another():
    """Two ids, one a prefix of the other, each named by a cid: URL: renamed when each
    URL is a whole value, keyed as they are when the shorter id is found in the longer's
    URL (with parameters, a value is searched for the ids)."""
    def make(k: int, params: str = "") -> Conveyance:
        short, long = f"loc-{k:04d}@lab.example.co", f"loc-{k:04d}@lab.example.com"
        return conveyance([sdp_part(), pidf_part(cid=short), pidf_part(cid=long)],
                          geolocation=[f"<cid:{long}>{params}", f"<cid:{short}>{params}"])  # fmt: skip

    assert calls(make).hits > 2 * 3
    assert_keyed_as_is(lambda k: make(k, ";x=1"))


def test_two_content_ids_in_different_cases_are_keyed_as_they_are():
    """S05 compares Content-IDs ignoring case: one id spelt two ways is a duplicate."""
    def make(k: int) -> Conveyance:
        upper = loc(k).replace("caller", "CALLER")
        return conveyance([sdp_part(), pidf_part(cid=loc(k)), pidf_part(cid=upper)], geolocation=[f"<cid:{loc(k)}>"])

    assert_keyed_as_is(make)
    assert any("also used by" in f.message for f in validate_conveyance(make(0), now=NOW).findings)


def test_a_percent_encoded_reference_is_keyed_as_it_is():
    assert_keyed_as_is(lambda k: pidf_call(k, geolocation=f"<cid:{loc(k).replace('@', '%40')}>"))


def test_an_id_also_in_a_quoted_parameter_is_keyed_as_it_is():
    assert_keyed_as_is(lambda k: pidf_call(k, geolocation='<cid:{cid}>;inserted-by="<cid:{cid}>"'))
    assert_keyed_as_is(lambda k: pidf_call(k, geolocation='<cid:{cid}>;inserted-by="sip:{cid}"'))


@pytest.mark.parametrize("cid", ["<a+b-{k}@x.example>", "< caller-{k}@x.example >", "<a@b@{k}.example>",
                                 "<-caller-{k}@x.example>", "<caller-{k}@x.example>(comment)", "<caller-{k}>"])  # fmt: skip
def test_a_content_id_of_another_syntax_is_keyed_as_it_is(cid: str):
    def make(k: int) -> Conveyance:
        value = cid.format(k=k)
        part = MimePart([("Content-Type", "application/pidf+xml"), ("Content-ID", value)], document())
        return conveyance([sdp_part(), part], geolocation=[f"<cid:{value.split('(')[0].strip(' <>')}>"])

    assert_keyed_as_is(make)


def test_more_ids_than_placeholder_digits_are_keyed_as_they_are():
    def make(k: int) -> Conveyance:
        parts = [pidf_part(cid=f"p{n}-{k:04d}@lab.example.com") for n in range(11)]
        return conveyance(parts, geolocation=[f"<cid:p0-{k:04d}@lab.example.com>"])

    memo = calls(make, times=[NOW])
    assert memo.hits == 0


def test_a_tilde_in_a_header_value_keeps_the_ids_as_they_are():
    """A placeholder is made of '~': a value with one could be mistaken for an id."""
    disposition = [("Content-Disposition", "render;handling=optional;x=~~~~")]
    memo = calls(lambda k: conveyance([sdp_part(), pidf_part(cid=loc(k), extra=disposition)], geolocation=[f"<cid:{loc(k)}>"]))
    assert len(memo) == 1 + 3  # the renamed entry, not used, and one entry per call
    placeholder = "0@" + "~" * (len(loc(0)) - 2)
    memo = calls(lambda k: pidf_call(k, headers=[("Supported", f"geolocation-sip, {placeholder}")]))
    assert len(memo) == 1 + 3


# ---------------------------------------------------------------- documents that refer to a part by cid:


def provided_by(ref: str) -> str:
    return (f'<gp:provided-by><EmergencyCallDataReference xmlns="urn:ietf:params:xml:ns:EmergencyCallData" ref="{ref}" '
            'purpose="EmergencyCallData.ProviderInfo"/></gp:provided-by>')  # fmt: skip


@pytest.mark.parametrize("ref", ["cid:pi@lab.example.com", "cid:pi%40lab.example.com", "cid:PI@lab.example.com",
                                 "cid:&#112;i@lab.example.com"])  # fmt: skip
def test_a_document_referring_to_a_part_keeps_that_id_as_it_is(ref: str):
    """S08 compares the document's cid: URL (decoded, in any case) with the Content-IDs:
    the part it names must keep its id, whoever else's is renamed per call."""
    doc = document(geopriv_extra=provided_by(ref))
    pi = MimePart([("Content-Type", EMERGENCY_DATA), ("Content-ID", "<pi@lab.example.com>")], b"<x/>")

    def make(k: int) -> Conveyance:
        return conveyance([sdp_part(), pidf_part(doc, cid=loc(k)), pi], geolocation=[f"<cid:{loc(k)}>"])

    calls(make)
    report = validate_conveyance(make(0), now=NOW)
    assert not [f for f in report.findings if f.id == "S08"]  # the reference resolves (forward)


def test_a_document_referring_to_a_per_call_id_is_validated_as_it_is():
    """The document names the PIDF part itself (S08 W, a reference back), per call."""
    memo = calls(lambda k: conveyance([sdp_part(), pidf_part(document(geopriv_extra=provided_by(f"cid:{loc(k)}")), cid=loc(k))],
                                      geolocation=[f"<cid:{loc(k)}>"]))  # fmt: skip
    assert memo.validate(pidf_call(0), now=NOW) is not None


@pytest.mark.parametrize("spelt", ["{p}", "{p}.example", "x{p}"])
def test_a_document_quoting_a_placeholder_is_quoted_as_it_is(spelt: str):
    """A document's cid: URL that is (or contains) a placeholder's spelling: S08 says
    it matches no part, quoting the document, not this call's id."""
    placeholder = "0@" + "~" * (len(loc(0)) - 2)
    doc = document(geopriv_extra=provided_by("cid:" + spelt.format(p=placeholder)))

    def make(k: int) -> Conveyance:
        return conveyance([sdp_part(), pidf_part(doc, cid=loc(k))], geolocation=[f"<cid:{loc(k)}>"])

    memo = calls(make)
    [s08] = [f.message for f in memo.validate(make(5), now=NOW).findings if f.id == "S08"]
    assert placeholder in s08 and loc(5) not in s08


# ---------------------------------------------------------------- the per-call headers beside the key


@pytest.mark.parametrize("from_", ['"Caller" <sip:+14255550100@lab.example.com>;tag={k}', "sip:+14255550100@lab.example.com;tag={k}",
                                   "<sip:+1425555010{k}@lab.example.com>", '"a<b" <sip:+14255550100@x.example>;tag={k}',
                                   "<sip:1@x.example>, <sip:+1425555010{k}@x.example>", "<sip:alice@x.example;tag={k}"])  # fmt: skip
def test_the_calling_number_is_read_per_call(from_: str):
    """The calling number (and so an ELIN verdict) from each call's From, tag or not."""
    def make(k: int) -> Conveyance:
        conv = conveyance([], geolocation=[], content_type="application/sdp", body=SDP)
        conv.headers[0] = ("From", from_.format(k=k))
        return conv

    calls(make, 4, elins=frozenset({"+14255550101", "+14255550100"}))


def test_p_asserted_identity_beside_from_is_read_per_call():
    def make(k: int) -> Conveyance:
        conv = pidf_call(k, headers=[("P-Asserted-Identity", f"<tel:+1425555010{k % 2}>")])
        conv.headers[0] = ("From", f"<sip:+1425555019{k}@x.example>;tag={k}")
        return conv

    calls(make, 4)


@pytest.mark.parametrize(("priority", "request_uri", "to"), [
    ("emergency", "sip:911@sbc.example.com", "<sip:911@sbc.example.com>"),
    ("urgent", "sip:911@sbc.example.com", "<sip:911@sbc.example.com>"),
    (None, "urn:service:sos", "<sip:911@sbc.example.com>"),
    ("emergency", "", "<sip:933@sbc.example.com>"),
    ("emergency", None, "<sip:alice@sbc.example.com>"),
])  # fmt: skip
def test_the_marking_is_read_per_call(priority: str | None, request_uri: str | None, to: str):
    def make(k: int) -> Conveyance:
        conv = pidf_call(k, request_uri=request_uri)
        conv.headers = [(n, to if n == "To" else v) for n, v in conv.headers if n != "Priority" or priority]
        conv.headers = [(n, priority if n == "Priority" else v) for n, v in conv.headers]
        return conv

    memo = ValidationMemo(16)
    calls(make, 2, memo=memo)
    calls(lambda k: pidf_call(k + 5), 2, memo=memo)  # another marking, the same entry
