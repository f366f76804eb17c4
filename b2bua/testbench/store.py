"""The mock ECRC's durable call records: one SQLite file, safe to share between processes.

Durability: WAL journal, `synchronous=FULL`, and `add()` returns only after its COMMIT, so
a record exists on disk before the ECRC sends its 200 (a test that saw the 200 can read the
record, from any process). Two ECRC instances (primary, secondary) may share one file:
every connection waits up to `busy_timeout` for the write lock, and writes start with
`BEGIN IMMEDIATE` so two writers never deadlock upgrading a read lock.

Ids come from `AUTOINCREMENT`: they grow for the life of the file and are never reused,
not even after `clear()`, so `since=<id>` polling never misses a record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .record import VERDICTS, iso_utc

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
DEFAULT_LIMIT = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    arrived_at TEXT NOT NULL,            -- ISO 8601 UTC, microseconds: sorts as time does
    ecrc       TEXT,
    verdict    TEXT,
    call_id    TEXT,
    record     TEXT NOT NULL             -- the whole record as JSON (without its id)
);
CREATE INDEX IF NOT EXISTS calls_arrived_at ON calls (arrived_at);
CREATE INDEX IF NOT EXISTS calls_ecrc ON calls (ecrc);
CREATE INDEX IF NOT EXISTS calls_verdict ON calls (verdict);
CREATE INDEX IF NOT EXISTS calls_call_id ON calls (call_id);
"""


def parse_since(since: int | str | datetime) -> tuple[str, int | str]:
    """`since` is a record id (an int, or a string of digits: records with a larger id) or
    an ISO 8601 time (records that arrived at or after it; a time without offset is UTC).
    Returns ("id", n) or ("time", normalised UTC text); ValueError otherwise."""
    if isinstance(since, bool):
        raise ValueError(f"since: {since!r} is neither a record id nor an ISO 8601 time")
    if isinstance(since, int):
        if since < 0:
            raise ValueError(f"since: record id {since} is negative")
        return "id", since
    if isinstance(since, datetime):
        return "time", iso_utc(since)
    if isinstance(since, str):
        text = since.strip()
        if text.isascii() and text.isdigit():
            return "id", int(text)
        try:
            moment = datetime.fromisoformat(text.replace(" ", "+") if "T" in text and " " in text else text)
        except ValueError:
            raise ValueError(
                f"since: {since!r} is neither a record id nor an ISO 8601 time (e.g. 2024-05-01T12:00:00Z)"
            ) from None
        return "time", iso_utc(moment)
    raise ValueError(f"since: {since!r} is neither a record id nor an ISO 8601 time")


def _normalised_time(value: Any) -> str:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, str):
        try:
            return iso_utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    return iso_utc(datetime.now(timezone.utc)) if value is None else str(value)


class CallStore:
    """`CallStore(path)`: open (creating when needed) the call records in `path`.

    One connection per store, guarded by a lock, so a store may be shared between the
    event loop and executor threads. Open one store per process on a shared file.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        self.journal_mode = str(mode).lower()
        self._db.execute("PRAGMA synchronous = FULL")
        self._create_schema()

    # -- writing -----------------------------------------------------------------------

    def _write(self):  # noqa: ANN202 - context manager
        return _WriteTransaction(self._db, self._lock)

    def _create_schema(self) -> None:
        with self._write() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def add(self, record: dict[str, Any]) -> int:
        """Store a record; returns its id once it is committed to disk. The record's own
        `id` key is ignored (the store gives ids)."""
        body = {key: value for key, value in record.items() if key != "id"}
        arrived_at = _normalised_time(body.get("arrived_at"))
        body["arrived_at"] = arrived_at
        text = json.dumps(body, ensure_ascii=False, default=str)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO calls (arrived_at, ecrc, verdict, call_id, record) VALUES (?, ?, ?, ?, ?)",
                (arrived_at, body.get("ecrc"), body.get("verdict"), body.get("call_id"), text),
            )
            return int(cursor.lastrowid)

    def clear(self) -> int:
        """Delete every record; returns how many there were. Ids are not reused."""
        with self._write() as db:
            return db.execute("DELETE FROM calls").rowcount

    # -- reading -----------------------------------------------------------------------

    def get(self, record_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT id, record FROM calls WHERE id = ?", (int(record_id),)).fetchone()
        return _row_record(row) if row else None

    def list(
        self,
        since: int | str | datetime | None = None,
        verdict: str | Iterable[str] | None = None,
        limit: int | None = DEFAULT_LIMIT,
        *,
        ecrc: str | None = None,
        call_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Records newest first (by id: the order they were committed in). `since`: see
        `parse_since`; `verdict`: one verdict or several; `limit`: at most that many
        (None: all)."""
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            kind, value = parse_since(since)
            where.append("id > ?" if kind == "id" else "arrived_at >= ?")
            args.append(value)
        if verdict is not None:
            verdicts = [verdict] if isinstance(verdict, str) else list(verdict)
            for item in verdicts:
                if item not in VERDICTS:
                    raise ValueError(f"verdict: {item!r} is not one of {', '.join(VERDICTS)}")
            where.append(f"verdict IN ({', '.join('?' for _ in verdicts)})")
            args.extend(verdicts)
        if ecrc is not None:
            where.append("ecrc = ?")
            args.append(ecrc)
        if call_id is not None:
            where.append("call_id = ?")
            args.append(call_id)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit: {limit!r} is not a non-negative whole number")
        sql = "SELECT id, record FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_row_record(row) for row in rows]

    def settings(self) -> dict[str, Any]:
        """The durability settings in force on this store's connection."""
        with self._lock:
            journal = self._db.execute("PRAGMA journal_mode").fetchone()[0]
            synchronous = self._db.execute("PRAGMA synchronous").fetchone()[0]
            busy = self._db.execute("PRAGMA busy_timeout").fetchone()[0]
        names = {0: "off", 1: "normal", 2: "full", 3: "extra"}
        return {"journal_mode": str(journal).lower(), "synchronous": names.get(synchronous, synchronous), "busy_timeout_ms": busy}

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _WriteTransaction:
    """`BEGIN IMMEDIATE` ... `COMMIT` (ROLLBACK on error) under the store's lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self.db = db
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.lock.release()


def _row_record(row: tuple[int, str]) -> dict[str, Any]:
    record_id, text = row
    record = json.loads(text)
    return {"id": record_id, **record}
