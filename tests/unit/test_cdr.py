"""The CDR file: one JSON object per line, read back as written."""

from __future__ import annotations

import dataclasses
import datetime

from b2bua.engine.cdr import CdrWriter, read_cdrs


@dataclasses.dataclass
class _Where:
    site: str


def test_each_record_is_one_line_read_back_equal(tmp_path):
    path = tmp_path / "cdr.jsonl"
    writer = CdrWriter(path)
    first = {"a_call_id": "1@x", "final_status": 200, "setup_ms": 3.0, "attempts": [{"trunk": "ecrc"}], "pai": None}
    second = {"a_call_id": "2@x", "emergency": True, "location": {"parts_in": []}}
    writer.write(first)
    writer.write(second)
    writer.close()
    assert path.read_bytes().count(b"\n") == 2
    assert read_cdrs(path) == [first, second]


def test_non_ascii_text_is_written_as_utf8(tmp_path):
    path = tmp_path / "cdr.jsonl"
    writer = CdrWriter(path)
    writer.write({"transport_reason": "sending over udp (RFC 3261 §18.1.1)", "caller": "Zoë"})
    writer.close()
    assert "§18.1.1".encode() in path.read_bytes()
    assert read_cdrs(path)[0]["caller"] == "Zoë"


def test_values_json_cannot_hold_are_written_as_their_text(tmp_path):
    path = tmp_path / "cdr.jsonl"
    writer = CdrWriter(path)
    when = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.timezone.utc)
    writer.write({"where": _Where("hq"), "when": when, "codes": {200: "OK"}})
    writer.close()
    record = read_cdrs(path)[0]
    assert record == {"where": str(_Where("hq")), "when": str(when), "codes": {"200": "OK"}}


def test_a_worker_stamps_its_index_into_every_record(tmp_path):
    path = tmp_path / "cdr.jsonl"
    writer = CdrWriter(path, worker=1)
    record = {"a_call_id": "1@x"}
    writer.write(record)
    writer.close()
    assert read_cdrs(path) == [{"a_call_id": "1@x", "worker": 1}]
    assert record == {"a_call_id": "1@x"}  # the caller's dict is left alone


def test_no_path_writes_nothing(tmp_path):
    writer = CdrWriter(None)
    writer.write({"a_call_id": "1@x"})
    writer.close()
    assert list(tmp_path.iterdir()) == []
