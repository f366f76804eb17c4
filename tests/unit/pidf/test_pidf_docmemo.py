"""`pidf.docmemo.DocumentMemo`, the inner memo of `ValidationMemo`: a remembered document
inspection is the inspection, whatever Content-ID / Geolocation cid the call carries.

The outer memo keys a Content-ID as a placeholder of its length (test_pidf_memo_cid.py),
so a Content-ID renamed to one of another length misses it while the PIDF bytes are the
same. For every fixture of the corpus, a validation whose outer key misses (the cid
renamed, consistently in the Content-ID and every header that refers to it) but whose
documents were inspected before must equal a fresh ``validate_conveyance`` of that
conveyance, at several times.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from test_pidf_memo import (
    CALLER,
    MANIFEST,
    NOW,
    SDP,
    TIMES,
    conveyance_of,
    corpus,
    document_invite,
    expiring,
    invite,
    p13,
    view,
)

from b2bua.engine.conveyance import conveyance_from_bytes
from pidf import Conveyance, MimePart, validate_conveyance
from pidf.body import crlf
from pidf.docmemo import DocumentMemo, Lru
from pidf.findings import Findings
from pidf.memo import ValidationMemo
from pidf.sipvalues import content_id_addr
from pidf.validate import inspect_document


def _other(addr: str) -> str:
    """One character longer (the outer memo misses), different even when compared
    case-insensitively (cid matching is). The body is not rewritten, so its length and
    MIME framing stay right."""
    return "q" + addr


def same_length(addr: str) -> str:
    """The same length (so the outer memo's placeholder is the same), different even
    when compared case-insensitively."""
    first = "q" if addr[0].lower() != "q" else "z"
    return first + addr[1:]


def content_ids(conv: Conveyance) -> list[str]:
    values = [v for n, v in conv.headers if n.strip().lower() == "content-id"]
    for part in conv.parts or []:
        values.extend(v for n, v in part.headers if n.strip().lower() == "content-id")
    return [a for a in dict.fromkeys(content_id_addr(v) for v in values) if a]


def renamed(conv: Conveyance, *, references: bool = True, content_id: bool = True, other=_other) -> Conveyance:
    """``conv`` with every Content-ID address renamed (by ``other``); ``references``:
    also in the headers that refer to it (Geolocation ``cid:x`` or Lync's ``cid:sip:x``,
    Call-Info), as a client with per-call Content-IDs sends; ``content_id``: in the
    Content-ID fields. The part contents (the PIDF-LO bytes) are left alone."""
    mapping = {a.lower(): other(a) for a in content_ids(conv)}
    if not mapping:
        return conv
    pattern = re.compile("|".join(re.escape(a) for a in sorted(mapping, key=len, reverse=True)), re.IGNORECASE)

    def sub(name: str, value: str) -> str:
        is_cid = name.strip().lower() == "content-id"
        if (content_id if is_cid else references):
            return pattern.sub(lambda m: mapping[m.group(0).lower()], value)
        return value

    headers = [(n, sub(n, v)) for n, v in conv.headers]
    parts = None if conv.parts is None else [MimePart([(n, sub(n, v)) for n, v in p.headers], p.content) for p in conv.parts]
    return Conveyance(headers, conv.body, parts, list(conv.body_defects), conv.request_uri)


@pytest.mark.parametrize(("name", "data"), corpus(), ids=[name for name, _ in corpus()])
def test_a_new_cid_on_a_known_document_equals_a_fresh_validation(name: str, data: bytes):
    elins = frozenset(MANIFEST[name].get("elins", []))
    memo = ValidationMemo(8)
    memo.validate(conveyance_of(name, data), now=NOW, elins=elins)
    inspected = memo.documents.misses
    conv = renamed(conveyance_of(name, data))
    for when in TIMES:
        report = memo.validate(conv, now=when, elins=elins)
        assert view(report) == view(validate_conveyance(conv, now=when, elins=elins)), f"{name} at {when}"
    if content_ids(conv) and len(conv.body) <= memo.max_body:
        assert memo.hits == len(TIMES) - 1  # the renamed conveyance missed once, then hit
    assert memo.documents.misses == inspected, "every document of the renamed call was seen before"


def test_the_corpus_exercises_the_document_memo():
    """Guard against a vacuous comparison above: most fixtures carry a cid'ed PIDF-LO."""
    exercised = 0
    for name, data in corpus():
        memo = ValidationMemo(8)
        memo.validate(conveyance_of(name, data), now=NOW)
        conv = renamed(conveyance_of(name, data))
        memo.validate(conv, now=NOW)
        exercised += memo.hits == 0 and memo.documents.hits > 0
    assert exercised >= 60


def test_a_renamed_content_id_the_reference_does_not_follow_dangles():
    """Inconsistent rename (Content-ID changed, Geolocation not): the document is still
    remembered, the reference no longer resolves exactly, and says so."""
    data = document_invite(expiring(None, NOW))
    memo = ValidationMemo(4)
    good = memo.validate(conveyance_from_bytes(data), now=NOW)
    assert not [f for f in good.findings if f.id == "S07"]
    conv = renamed(conveyance_from_bytes(data), references=False)
    report = memo.validate(conv, now=NOW)
    assert (memo.hits, memo.documents.hits) == (0, 1)
    assert [f.message for f in report.findings if f.id == "S07" and "matches no" in f.message]
    assert view(report) == view(validate_conveyance(conv, now=NOW))
    # And the other way round: the reference renamed, the Content-ID not.
    conv = renamed(conveyance_from_bytes(data), content_id=False)
    report = memo.validate(conv, now=NOW)
    assert memo.documents.hits == 2
    assert [f for f in report.findings if f.id == "S07" and "matches no" in f.message]
    assert view(report) == view(validate_conveyance(conv, now=NOW))


def test_retention_expiry_is_evaluated_per_call_on_a_document_hit():
    expiry = NOW + timedelta(hours=1)
    data = document_invite(expiring(expiry, NOW))
    memo = ValidationMemo(4)
    before = memo.validate(conveyance_from_bytes(data), now=NOW)
    assert not any("already past" in m for m in p13(before))
    later = expiry + timedelta(minutes=1)
    conv = renamed(conveyance_from_bytes(data))
    after = memo.validate(conv, now=later)
    assert (memo.hits, memo.documents.hits) == (0, 1)
    assert any("already past" in m for m in p13(after))
    assert view(after) == view(validate_conveyance(conv, now=later))
    # Default retention (timestamp + 24 h) and a stale timestamp, a day later, on yet another cid.
    data = document_invite(expiring(None, NOW))
    memo.validate(conveyance_from_bytes(data), now=NOW)
    conv = renamed(renamed(conveyance_from_bytes(data)))
    day = NOW + timedelta(days=1, hours=2)
    hit = memo.validate(conv, now=day)
    assert memo.documents.hits == 2
    assert {f.id for f in hit.findings if f.severity == "W"} >= {"P13", "P16"}
    assert view(hit) == view(validate_conveyance(conv, now=day))


def test_the_part_prefix_is_applied_per_call():
    """The same bytes as part[1], as part[0] and as a single-part body: one entry, and
    each call's findings carry its own location prefix."""
    pidf = expiring(NOW - timedelta(days=1), NOW)  # a P13 finding (timed) with a location
    memo = ValidationMemo(8)
    multipart = conveyance_from_bytes(document_invite(pidf))
    first = memo.validate(multipart, now=NOW)
    assert any(f.where and f.where.startswith("part[1]") for f in first.findings if f.id == "P13")
    cid = "<single@example.com>"
    single = conveyance_from_bytes(invite([("Geolocation", "<cid:single@example.com>"), ("Content-ID", cid)],
                                          "application/pidf+xml", crlf(pidf)))  # fmt: skip
    swapped = Conveyance(multipart.headers, multipart.body, list(reversed(multipart.parts)), [], multipart.request_uri)
    for conv in (single, swapped):
        report = memo.validate(conv, now=NOW)
        assert view(report) == view(validate_conveyance(conv, now=NOW))
    assert memo.documents.misses == 1 and memo.documents.hits == 2
    assert any(f.where and f.where.startswith("body") for f in memo.validate(single, now=NOW).findings if f.id == "P13")


def test_two_parts_with_the_same_bytes_in_one_call():
    pidf = crlf(expiring(None, NOW))
    headers = [("From", f"<{CALLER}>;tag=1"), ("To", "<sip:911@example.com>"), ("Call-ID", "two"),
               ("Geolocation", "<cid:a@example.com>, <cid:b@example.com>"),
               ("Content-Type", "multipart/mixed;boundary=x"), ("Content-Length", "0")]  # fmt: skip
    parts = [MimePart([("Content-Type", "application/sdp")], crlf(SDP)),
             MimePart([("Content-Type", "application/pidf+xml"), ("Content-ID", "<a@example.com>")], pidf),
             MimePart([("Content-Type", "application/pidf+xml"), ("Content-ID", "<b@example.com>")], pidf)]  # fmt: skip
    conv = Conveyance(headers, b"body", parts, [], "sip:911@example.com")
    memo = ValidationMemo(4)
    report = memo.validate(conv, now=NOW + timedelta(days=2))
    assert (memo.documents.misses, memo.documents.hits) == (1, 1)
    assert view(report) == view(validate_conveyance(conv, now=NOW + timedelta(days=2)))
    assert {f.where.split()[0] for f in report.findings if f.id == "P13"} == {"part[1]", "part[2]"}


@pytest.mark.parametrize("strict", [False, True])
def test_the_inspection_options_are_in_the_key(strict: bool):
    data = expiring(None, NOW)
    memo = DocumentMemo(8)
    for charset, max_size in [(None, 65536), ("utf-8", 65536), (None, 100), (None, 65536)]:
        cached, fresh = Findings(strict=strict, prefix="part[1]"), Findings(strict=strict, prefix="part[1]")
        doc = memo.inspect(data, cached, charset=charset, now=NOW, max_size=max_size)
        want = inspect_document(data, fresh, charset=charset, now=NOW, max_size=max_size)
        assert list(cached) == list(fresh)
        assert (doc is None) == (want is None)
        assert [(s.start, s.count, s.where_text()) for s in cached.slots] == [(s.start, s.count, s.where_text()) for s in fresh.slots]
    assert (memo.misses, memo.hits) == (3, 1)
    memo.inspect(data, Findings(strict=not strict), now=NOW)
    assert memo.misses == 4


def test_a_hostile_lawn_of_documents_stays_bounded_and_zero_disables():
    memo = ValidationMemo(2)
    for k in range(5):
        memo.validate(renamed(conveyance_from_bytes(document_invite(expiring(None, NOW + timedelta(minutes=k))))), now=NOW)
    assert len(memo.documents) == 2 and len(memo) == 2
    off = ValidationMemo(0)
    for _ in range(2):
        off.validate(conveyance_from_bytes(document_invite(expiring(None, NOW))), now=NOW)
    assert (off.documents.hits, off.documents.misses, len(off.documents)) == (0, 0, 0)
    memo.clear()
    assert len(memo.documents) == 0


def test_a_document_entry_does_not_keep_the_xml_tree():
    import gc
    import types

    from lxml import etree

    memo = ValidationMemo(4)
    memo.validate(conveyance_from_bytes(document_invite(expiring(NOW - timedelta(days=1), NOW))), now=NOW)
    assert len(memo.documents) == 1
    seen, todo, found = set(), list(memo.documents._memo.values()), []
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, etree._Element):
            found.append(obj)
        todo.extend(gc.get_referents(obj))
    assert found == []


def test_the_lru_drops_the_least_recently_used_whatever_was_used_last():
    lru = Lru(2)
    a, b, c, d = object(), object(), object(), object()
    lru.remember(("a",), a)
    lru.remember(("b",), b)
    assert lru.lookup(("b",)) is b and lru.lookup(("b",)) is b  # the newest, used again
    assert lru.lookup(("a",)) is a
    lru.remember(("c",), c)  # drops b
    assert list(lru) == [("a",), ("c",)]
    assert lru.lookup(("a",)) is a
    lru.remember(("d",), d)  # drops c
    assert list(lru) == [("a",), ("d",)] and (lru.hits, lru.misses) == (4, 0)
