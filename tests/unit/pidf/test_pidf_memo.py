"""`pidf.memo.ValidationMemo`: a memoised validation is the validation.

For every fixture of the corpus (the .sip messages as they are, the bare .xml documents
in an RFC-style multipart INVITE) and at several times (the corpus' NOW, a few hours and
days later, years earlier), the report of a memo hit must equal a fresh
``validate_conveyance`` at that time: verdict, every finding (id, severity, message,
where, order) and the rest of the report. The time-dependent checks (P13, P16) are the
point of the several times; the per-call checks (S14, calling number, ELIN verdict) of
the tests that change only the headers outside the key.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from b2bua.engine.conveyance import conveyance_from_bytes
from pidf import Conveyance, Finding, MimePart, validate_conveyance
from pidf.body import crlf, emergency_body
from pidf.build import Civic, LocationSpec, build_document
from pidf.conveyance import LOCATION_HEADERS
from pidf.memo import ValidationMemo

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "pidf"
MANIFEST = json.loads((FIXTURES / "expected.json").read_text())
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
# Later by less than a day, by more than a day (stale / default retention expired), far
# later, and long before (timestamps then "in the future").
TIMES = [NOW, NOW + timedelta(hours=3), NOW + timedelta(days=2, hours=5), NOW + timedelta(days=4000),
         NOW - timedelta(days=3000), NOW - timedelta(minutes=1)]  # fmt: skip
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
CALLER = "sip:+14255550100@example.com"


def invite(body_headers: list[tuple[str, str]], content_type: str, body: bytes, *, extra: list[tuple[str, str]] = (),
           call_id: str = "memo-1", from_tag: str = "f1") -> bytes:  # fmt: skip
    """A whole emergency INVITE, as bytes, for the SIP core's splitter."""
    head = [
        ("Via", f"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{call_id}"),
        ("Max-Forwards", "70"),
        ("From", f"<{CALLER}>;tag={from_tag}"),
        ("To", "<sip:911@example.com;user=phone>"),
        ("Call-ID", call_id),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:192.0.2.10:5060>"),
        *extra,
        *body_headers,
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
    ]
    lines = ["INVITE sip:911@example.com;user=phone SIP/2.0", *(f"{n}: {v}" for n, v in head)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def document_invite(pidf: bytes, **kw) -> bytes:  # noqa: ANN003
    eb = emergency_body("rfc", SDP, pidf, CALLER)
    return invite(eb.headers, eb.content_type, eb.body, **kw)


def wrapped(pidf: bytes) -> Conveyance:
    """A bare document in an RFC-style multipart body, viewed directly (some corpus
    documents are larger than a SIP message may be)."""
    eb = emergency_body("rfc", SDP, pidf, CALLER)
    headers = [("From", f"<{CALLER}>;tag=1"), ("To", "<sip:911@example.com>"), ("Call-ID", "memo"), *eb.headers,
               ("Content-Type", eb.content_type), ("Content-Length", str(len(eb.body)))]  # fmt: skip
    parts = [MimePart([("Content-Type", "application/sdp")], crlf(SDP)),
             MimePart([("Content-Type", "application/pidf+xml"), ("Content-ID", eb.content_id)], crlf(pidf))]  # fmt: skip
    return Conveyance(headers, eb.body, parts, [], "sip:911@example.com")


def corpus() -> list[tuple[str, bytes]]:
    return [(name, (FIXTURES / name).read_bytes()) for name in sorted(MANIFEST)]


def conveyance_of(name: str, data: bytes) -> Conveyance:
    return conveyance_from_bytes(data) if name.endswith(".sip") else wrapped(data)


def view(report) -> dict:  # noqa: ANN001 - Report
    """Everything a report says, findings with their locations and in order."""
    return {**report.to_dict(), "findings": [(f.id, f.severity, f.message, f.where) for f in report.findings]}


@pytest.mark.parametrize(("name", "data"), corpus(), ids=[name for name, _ in corpus()])
def test_a_hit_equals_a_fresh_validation_at_every_time(name: str, data: bytes):
    conv = conveyance_of(name, data)
    elins = frozenset(MANIFEST[name].get("elins", []))
    memo = ValidationMemo(8)
    first = memo.validate(conv, now=NOW, elins=elins)
    assert view(first) == view(validate_conveyance(conv, now=NOW, elins=elins))
    assert MANIFEST[name]["verdict"] == first.verdict.value or name.endswith(".xml")  # .xml: wrapped, verdicts may differ
    for n, when in enumerate(TIMES, start=1):
        again = conveyance_of(name, data)  # new objects, equal bytes: as the next call would bring
        hit = memo.validate(again, now=when, elins=elins)
        if len(conv.body) <= memo.max_body:
            assert memo.hits == n, "the same conveyance again must be a hit"
        assert view(hit) == view(validate_conveyance(again, now=when, elins=elins)), f"{name} at {when}"


def expiring(expiry: datetime, timestamp: datetime) -> bytes:
    spec = LocationSpec(civic=Civic({"country": "US", "A1": "WA", "A3": "Redmond", "RD": "163rd", "HNO": "3910"}),
                        retention_expiry=expiry, timestamp=timestamp)  # fmt: skip
    return build_document([spec], now=timestamp)


def p13(report) -> list[str]:  # noqa: ANN001
    return [f.message for f in report.findings if f.id == "P13"]


def test_retention_expiry_passing_between_two_calls_is_seen_on_the_hit():
    expiry = NOW + timedelta(hours=1)
    data = document_invite(expiring(expiry, NOW))
    memo = ValidationMemo(4)
    before = memo.validate(conveyance_from_bytes(data), now=NOW)
    assert not any("already past" in m for m in p13(before))
    after = memo.validate(conveyance_from_bytes(data), now=expiry + timedelta(minutes=1))
    assert memo.hits == 1
    assert any("already past" in m for m in p13(after))
    assert view(after) == view(validate_conveyance(conveyance_from_bytes(data), now=expiry + timedelta(minutes=1)))
    # And back: an earlier clock (the memo entry was made before the expiry) finds nothing.
    assert p13(memo.validate(conveyance_from_bytes(data), now=NOW)) == p13(before)


def test_default_retention_and_stale_timestamp_appear_a_day_later():
    data = document_invite(expiring(None, NOW))  # no retention-expiry: timestamp + 24 h
    memo = ValidationMemo(4)
    fresh_day = memo.validate(conveyance_from_bytes(data), now=NOW)
    assert not any(f.id in ("P13", "P16") and f.severity == "W" for f in fresh_day.findings)
    later = NOW + timedelta(days=1, hours=2)
    hit = memo.validate(conveyance_from_bytes(data), now=later)
    assert memo.hits == 1
    assert {f.id for f in hit.findings if f.severity == "W"} >= {"P13", "P16"}
    assert view(hit) == view(validate_conveyance(conveyance_from_bytes(data), now=later))


def test_headers_outside_the_key_are_read_per_call():
    pidf = expiring(None, NOW)
    memo = ValidationMemo(4)
    plain = document_invite(pidf, call_id="a", from_tag="1")
    other = document_invite(pidf, call_id="b", from_tag="2",
                            extra=[("P-Asserted-Identity", "<sip:+14255550111@example.com>"), ("Priority", "urgent")])  # fmt: skip
    first = memo.validate(conveyance_from_bytes(plain), now=NOW)
    second = memo.validate(conveyance_from_bytes(other), now=NOW, elins=frozenset({"+14255550111"}))
    assert memo.hits == 1  # Call-ID, From tag, PAI, Priority are not part of the key
    assert first.calling_number != second.calling_number
    assert view(second) == view(validate_conveyance(conveyance_from_bytes(other), now=NOW, elins=frozenset({"+14255550111"})))


@pytest.mark.parametrize("header", LOCATION_HEADERS)
def test_every_location_header_is_in_the_key(header: str):
    data = document_invite(expiring(None, NOW))
    memo = ValidationMemo(4)
    conv = conveyance_from_bytes(data)
    memo.validate(conv, now=NOW)
    changed = Conveyance([*conv.headers, (header.title(), "x")], conv.body, conv.parts, conv.body_defects, conv.request_uri)
    report = memo.validate(changed, now=NOW)
    assert memo.hits == 0
    assert view(report) == view(validate_conveyance(changed, now=NOW))


def test_changed_part_bytes_or_defects_miss():
    data = document_invite(expiring(None, NOW))
    memo = ValidationMemo(4)
    conv = conveyance_from_bytes(data)
    memo.validate(conv, now=NOW)
    memo.validate(Conveyance(conv.headers, conv.body, conv.parts, [*conv.body_defects, "preamble"], conv.request_uri), now=NOW)
    parts = [type(p)(p.headers, p.content.replace(b"Redmond", b"Seattle")) for p in conv.parts]
    memo.validate(Conveyance(conv.headers, conv.body, parts, conv.body_defects, conv.request_uri), now=NOW)
    memo.validate(conv, now=NOW, strict=True)
    assert (memo.hits, memo.misses) == (0, 4)


def test_reports_of_hits_do_not_share_what_a_caller_may_change():
    data = document_invite(expiring(None, NOW))
    memo = ValidationMemo(4)
    first = memo.validate(conveyance_from_bytes(data), now=NOW)
    expected = view(first)
    first.findings.clear()
    first.references[0].part = 99
    first.parts[0].sha256 = "x"
    second = memo.validate(conveyance_from_bytes(data), now=NOW)
    second.findings.append(Finding("S00", "E", "added by a caller"))
    second.references.clear()
    third = memo.validate(conveyance_from_bytes(data), now=NOW)
    assert memo.hits == 2
    assert view(third) == expected


def test_least_recently_used_entries_go_first_and_zero_disables():
    docs = [document_invite(expiring(None, NOW + timedelta(minutes=k))) for k in range(3)]
    memo = ValidationMemo(2)
    for data in (docs[0], docs[1], docs[0], docs[2]):  # docs[1] is the least recently used
        memo.validate(conveyance_from_bytes(data), now=NOW)
    assert len(memo) == 2 and memo.hits == 1
    memo.validate(conveyance_from_bytes(docs[0]), now=NOW)
    assert memo.hits == 2
    memo.validate(conveyance_from_bytes(docs[1]), now=NOW)
    assert memo.hits == 2
    off = ValidationMemo(0)
    for _ in range(2):
        off.validate(conveyance_from_bytes(docs[0]), now=NOW)
    assert (off.hits, off.misses, len(off)) == (0, 2, 0)
    with pytest.raises(ValueError):
        ValidationMemo(-1)


def test_an_entry_does_not_keep_the_xml_tree():
    """The findings' lazy locations point into the tree; an entry holds rendered text."""
    import gc
    import types

    from lxml import etree

    memo = ValidationMemo(4)
    memo.validate(conveyance_from_bytes(document_invite(expiring(None, NOW))), now=NOW)
    seen, todo, found = set(), list(memo._memo.values()), []
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, etree._Element):
            found.append(obj)
        todo.extend(gc.get_referents(obj))
    assert found == []


def test_the_times_do_change_findings_somewhere_in_the_corpus():
    """Guard against a vacuous comparison: the chosen times flip P13/P16 findings."""
    changed = 0
    for name, data in corpus():
        conv = conveyance_of(name, data)
        reports = [validate_conveyance(conv, now=when) for when in TIMES]
        timed = {tuple((f.id, f.message) for f in r.findings if f.id in ("P13", "P16")) for r in reports}
        changed += len(timed) > 1
    assert changed >= 10


def test_a_different_sdp_each_call_still_hits_and_equals_fresh():
    """Phones change the SDP (session version, ports) per call; only the location parts,
    the location headers and the MIME defects are keyed. S03 and the part hashes are per call."""
    pidf = expiring(None, NOW)
    memo = ValidationMemo(4)
    for n, port in enumerate((4000, 40000, 5)):
        sdp = SDP.replace(b"4000", str(port).encode())
        eb = emergency_body("rfc", sdp, pidf, CALLER, boundary="fixed-boundary")
        data = invite(eb.headers, eb.content_type, eb.body, call_id=f"c{n}")
        report = memo.validate(conveyance_from_bytes(data), now=NOW)
        assert view(report) == view(validate_conveyance(conveyance_from_bytes(data), now=NOW))
        # A stale Content-Length (S03) on the same location is also judged per call.
        wrong = data.replace(f"Content-Length: {len(eb.body)}".encode(), f"Content-Length: {len(eb.body) + 1}".encode())
        report = memo.validate(conveyance_from_bytes(wrong), now=NOW)
        assert "S03" in {f.id for f in report.findings}
        assert view(report) == view(validate_conveyance(conveyance_from_bytes(wrong), now=NOW))
    assert memo.misses == 1 and memo.hits == 5
