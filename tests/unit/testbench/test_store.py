"""The SQLite call store: durable, shared between processes, newest first."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from b2bua.testbench.record import build_record
from b2bua.testbench.store import CallStore, parse_since

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
REPO = Path(__file__).parents[3]


def fake_record(n: int, *, verdict: str = "no_location", ecrc: str = "primary", minutes: int | None = None) -> dict:
    return {
        "arrived_at": (T0 + timedelta(minutes=n if minutes is None else minutes)).isoformat(),
        "ecrc": ecrc,
        "verdict": verdict,
        "call_id": f"call-{n}@example.com",
        "n": n,
    }


@pytest.fixture
def store(tmp_path):
    calls = CallStore(tmp_path / "calls.db")
    yield calls
    calls.close()


def test_store_uses_wal_and_full_synchronous_commits(store, tmp_path):
    assert store.journal_mode == "wal"
    assert store.settings() == {"journal_mode": "wal", "synchronous": "full", "busy_timeout_ms": 10_000}
    other = sqlite3.connect(tmp_path / "calls.db")
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # a property of the file
    finally:
        other.close()


def test_record_is_readable_from_another_connection_as_soon_as_add_returns(store, tmp_path, invite, arrived_at):
    _, request = invite("rfc_clean")
    record = build_record(request, ecrc="primary", transport="UDP", source="192.0.2.10:5060", arrived_at=arrived_at)
    record_id = store.add(record)

    other = sqlite3.connect(tmp_path / "calls.db")
    try:
        row = other.execute("SELECT arrived_at, ecrc, verdict, call_id, record FROM calls WHERE id = ?", (record_id,)).fetchone()
    finally:
        other.close()
    assert row[:4] == ("2024-05-01T12:00:00.000000+00:00", "primary", "location_by_value_valid", "a84b4c76e66710@192.0.2.10")
    assert json.loads(row[4])["pidf"] == record["pidf"]

    second = CallStore(tmp_path / "calls.db")
    try:
        assert second.get(record_id) == {**record, "id": record_id}
    finally:
        second.close()


def test_add_gives_increasing_ids_and_ignores_an_id_in_the_record(store):
    first = store.add({**fake_record(1), "id": 999})
    second = store.add(fake_record(2))
    assert second > first
    assert store.get(first)["id"] == first
    assert store.get(first)["n"] == 1


def test_add_does_not_change_the_callers_record(store):
    record = fake_record(1)
    before = dict(record)
    store.add(record)
    assert record == before


def test_get_of_an_unknown_id_is_none(store):
    assert store.get(12345) is None


def test_list_is_newest_first_and_limited(store):
    ids = [store.add(fake_record(n)) for n in range(5)]
    assert [r["id"] for r in store.list()] == ids[::-1]
    assert [r["id"] for r in store.list(limit=2)] == ids[:-3:-1]
    assert [r["id"] for r in store.list(limit=None)] == ids[::-1]
    assert store.list(limit=0) == []


def test_list_filters_by_one_or_several_verdicts(store):
    store.add(fake_record(1, verdict="no_location"))
    valid = store.add(fake_record(2, verdict="location_by_value_valid"))
    degraded = store.add(fake_record(3, verdict="by_value_degraded"))
    assert [r["id"] for r in store.list(verdict="location_by_value_valid")] == [valid]
    assert [r["id"] for r in store.list(verdict=["location_by_value_valid", "by_value_degraded"])] == [degraded, valid]


def test_list_refuses_an_unknown_verdict(store):
    with pytest.raises(ValueError, match="verdict"):
        store.list(verdict="valid")


def test_list_since_a_record_id_returns_only_later_records(store):
    ids = [store.add(fake_record(n)) for n in range(4)]
    assert [r["id"] for r in store.list(since=ids[1])] == [ids[3], ids[2]]
    assert [r["id"] for r in store.list(since=str(ids[1]))] == [ids[3], ids[2]]


def test_list_since_an_iso_time_includes_that_moment(store):
    ids = [store.add(fake_record(n)) for n in range(4)]  # 12:00, 12:01, 12:02, 12:03 UTC
    assert [r["id"] for r in store.list(since="2024-05-01T12:02:00Z")] == [ids[3], ids[2]]
    assert [r["id"] for r in store.list(since="2024-05-01T14:02:00+02:00")] == [ids[3], ids[2]]
    assert [r["id"] for r in store.list(since="2024-05-01T12:02:00")] == [ids[3], ids[2]]  # naive = UTC
    assert [r["id"] for r in store.list(since=T0 + timedelta(minutes=3))] == [ids[3]]


def test_list_orders_by_arrival_in_the_store_not_by_the_claimed_time(store):
    late = store.add(fake_record(1, minutes=10))
    early = store.add(fake_record(2, minutes=0))
    assert [r["id"] for r in store.list()] == [early, late]


def test_list_filters_by_ecrc_and_call_id(store):
    primary = store.add(fake_record(1, ecrc="primary"))
    secondary = store.add(fake_record(2, ecrc="secondary"))
    assert [r["id"] for r in store.list(ecrc="secondary")] == [secondary]
    assert [r["id"] for r in store.list(call_id="call-1@example.com")] == [primary]


@pytest.mark.parametrize("since", ["yesterday", "2024-13-01T00:00:00Z", "-5", "", True])
def test_since_that_is_neither_id_nor_time_is_refused(since):
    with pytest.raises(ValueError, match="since"):
        parse_since(since)


def test_clear_deletes_everything_and_ids_are_never_reused(store):
    last = max(store.add(fake_record(n)) for n in range(3))
    assert store.count() == 3
    assert store.clear() == 3
    assert store.count() == 0 and store.list() == []
    assert store.add(fake_record(9)) > last  # so a poller using since=<id> misses nothing


def test_records_survive_closing_and_reopening_the_file(tmp_path):
    path = tmp_path / "calls.db"
    with CallStore(path) as first:
        record_id = first.add(fake_record(1))
    with CallStore(path) as again:
        assert again.get(record_id)["call_id"] == "call-1@example.com"


def test_nested_values_that_are_not_json_are_stored_as_text(store):
    record_id = store.add({**fake_record(1), "extra": {"when": T0}})
    assert store.get(record_id)["extra"] == {"when": str(T0)}


WRITER = """
import sys
from b2bua.testbench.store import CallStore
store = CallStore(sys.argv[1])
for n in range(int(sys.argv[3])):
    store.add({"arrived_at": "2024-05-01T12:00:00+00:00", "ecrc": sys.argv[2], "verdict": "no_location", "n": n})
store.close()
"""


def test_two_processes_can_write_one_file_at_once(tmp_path):
    path = tmp_path / "shared.db"
    CallStore(path).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "30"], cwd=REPO)
        for name in ("primary", "secondary")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    with CallStore(path) as store:
        records = store.list(limit=None)
        assert len(records) == 60 == store.count()
        assert len({r["id"] for r in records}) == 60
        assert {r["ecrc"] for r in records} == {"primary", "secondary"}
        assert len(store.list(ecrc="primary", limit=None)) == 30
