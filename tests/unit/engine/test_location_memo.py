"""The `validate` policy's memo (`configure_validation_cache`): same record with or without it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from b2bua.engine import location
from b2bua.engine.location import (
    apply_location_policy,
    configure_validation_cache,
    validation_cache,
)
from b2bua.sip import MessageError, parse_message

FIXTURES = Path(__file__).parents[2] / "fixtures" / "pidf"


def _parses(path: Path) -> bool:
    try:
        parse_message(path.read_bytes())
    except MessageError:
        return False  # a fixture about broken framing: the bridge never sees it
    return True


NAMES = sorted(p.name for p in FIXTURES.glob("*.sip") if _parses(p))


@pytest.fixture(autouse=True)
def _restore():
    yield
    configure_validation_cache(1024)


def record(name: str) -> dict:
    outcome = apply_location_policy(parse_message((FIXTURES / name).read_bytes()), "validate")
    return outcome.record


def test_records_are_the_same_with_the_memo_on_and_off():
    # P13/P16 may differ between calls seconds apart only at a boundary; the corpus'
    # timestamps are years away from today's clock, so the records must be equal.
    configure_validation_cache(0)
    off = {name: record(name) for name in NAMES}
    assert len(validation_cache()) == 0
    configure_validation_cache(64)
    first = {name: record(name) for name in NAMES}
    again = {name: record(name) for name in NAMES}
    assert validation_cache().hits > 0
    assert off == first == again


def test_configure_sizes_and_empties_the_memo():
    configure_validation_cache(2)
    for name in NAMES[:5]:
        record(name)
    assert len(validation_cache()) <= 2
    configure_validation_cache(8)
    assert len(validation_cache()) == 0 and location._memo.entries == 8
    with pytest.raises(ValueError):
        configure_validation_cache(-1)


def _with_new_cid(data: bytes, n: int) -> bytes:
    """A client's per-call Content-ID: the same length, so Content-Length stays right."""
    return data.replace(b"loc-7f3c2a@", b"cc%08d@" % n)


def test_a_per_call_content_id_hits_the_memo_and_zero_disables_both():
    name = "t02_rfc_clean.sip"
    data = (FIXTURES / name).read_bytes()
    assert b"<cid:loc-7f3c2a@" in data and b"Content-ID: <loc-7f3c2a@" in data
    configure_validation_cache(0)
    off = [apply_location_policy(parse_message(_with_new_cid(data, n)), "validate").record for n in range(3)]
    assert len(validation_cache()) == 0 and len(validation_cache().documents) == 0
    assert validation_cache().documents.hits == validation_cache().documents.misses == 0
    configure_validation_cache(64)
    on = [apply_location_policy(parse_message(_with_new_cid(data, n)), "validate").record for n in range(3)]
    memo = validation_cache()
    assert (memo.hits, memo.misses) == (2, 1)  # the Content-ID is keyed as a placeholder
    assert (memo.documents.misses, memo.documents.hits) == (1, 0)
    assert on == off
    assert on[0]["findings"] == on[1]["findings"] == on[2]["findings"]
    assert [r["parts_in"][1]["content_id"][:12] for r in on] == [f"<cc{n:08d}@" for n in range(3)]


def test_per_call_content_ids_of_every_fixture_give_the_records_of_no_memo():
    """Each fixture with its Content-IDs renamed per call (several calls, so the later
    ones hit a renamed entry): the same records as with the memo off."""
    names = [n for n in NAMES if b"Content-ID:" in (FIXTURES / n).read_bytes()]
    calls = {name: [_renamed_ids((FIXTURES / name).read_bytes(), n) for n in range(3)] for name in names}
    configure_validation_cache(0)
    off = {name: [record_of(data) for data in datas] for name, datas in calls.items()}
    configure_validation_cache(64)
    on = {name: [record_of(data) for data in datas] for name, datas in calls.items()}
    assert validation_cache().hits >= len(names)  # most fixtures hit on their later calls
    assert off == on


def record_of(data: bytes) -> dict:
    return apply_location_policy(parse_message(data), "validate").record


def _renamed_ids(data: bytes, n: int) -> bytes:
    """Every Content-ID address (and what refers to it) with a per-call local part of
    the same length, so Content-Length and the MIME framing stay right."""
    ids = {m.group(1) for m in re.finditer(rb"Content-ID: *<([^<>@\s]+)@", data, re.IGNORECASE)}
    for old in sorted(ids, key=len, reverse=True):
        new = (b"%0*d" % (len(old), n))[-len(old) :]
        data = re.sub(re.escape(old) + rb"(?=@)", new, data, flags=re.IGNORECASE)
    return data
