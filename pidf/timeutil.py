"""RFC 3339 date-time reading, tolerant but noting every deviation (P13, P16).

RFC 3863 §4.1.7: a PIDF timestamp is an RFC 3339 date-time, so the offset is
mandatory and ``T``/``Z`` are upper case. Real clients (Lync) omit the offset;
we read such values as UTC and report it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})([Tt ])(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)


def read_datetime(text: str | None) -> tuple[datetime | None, list[str]]:
    """Return (aware datetime or None, list of deviations from RFC 3339)."""
    if text is None:
        return None, ["missing"]
    raw = text.strip()
    m = _DATE_TIME.match(raw)
    if m is None:
        return None, [f"{raw!r} is not an RFC 3339 date-time"]
    year, month, day, sep, hour, minute, second, frac, offset = m.groups()
    problems: list[str] = []
    if sep == "t":
        problems.append("lower-case 't' separator (RFC 3863 §4.1.7 requires 'T')")
    elif sep == " ":
        problems.append("space instead of 'T' separator")
    if offset is None:
        problems.append("no time-zone offset (read as UTC)")
        tz = timezone.utc
    elif offset in ("Z", "z"):
        if offset == "z":
            problems.append("lower-case 'z' (RFC 3863 §4.1.7 requires 'Z')")
        tz = timezone.utc
    else:
        sign = 1 if offset[0] == "+" else -1
        hh, mm = int(offset[1:3]), int(offset[4:6])
        if hh > 23 or mm > 59:
            return None, [f"{raw!r} has an invalid offset"]
        tz = timezone(sign * timedelta(hours=hh, minutes=mm))
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    sec = int(second)
    if sec == 60:  # leap second: RFC 3339 §5.7 allows it; datetime does not
        sec = 59
    try:
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), sec, micro, tzinfo=tz)
    except ValueError:
        return None, [f"{raw!r} is not a valid calendar date-time"]
    return value, problems


def format_utc(value: datetime) -> str:
    """RFC 3339 form with ``Z`` (what the builder writes)."""
    value = value.astimezone(timezone.utc)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
