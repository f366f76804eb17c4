"""Numbers and plane geometry for the geodetic checks (RFC 5491 §5; GeoShape).

Coordinates are (lat, lon[, alt]) in the order EPSG 4326/4979 define. Polygon
tests treat lon as x and lat as y, which is what "counter-clockwise seen from
above" (RFC 5491 §5.2.2) means for small areas.
"""

from __future__ import annotations

import math
import re

# xs:double lexical space (XML Schema 1.0 §3.2.5); Python's float() is wider
# (accepts "1_0", "infinity", "nan"), so tokens are screened first.
_DOUBLE_TOKEN = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|-?INF|NaN)"
_DOUBLE = re.compile(rf"^{_DOUBLE_TOKEN}$")
_DOUBLE_LIST = re.compile(rf"^\s*(?:{_DOUBLE_TOKEN}(?:\s+{_DOUBLE_TOKEN})*)?\s*$")
_DMS = re.compile(r"^(\d{1,3})(?::(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?)?([NSEWnsew])$")
EARTH_RADIUS_M = 6_371_008.8


def parse_double(text: str | None) -> float | None:
    if text is None:
        return None
    token = text.strip()
    if not _DOUBLE.match(token):
        return None
    return float(token.replace("INF", "inf"))


def parse_doubles(text: str | None) -> list[float] | None:
    """Whitespace-separated xs:double list (gml:pos, gml:posList); None if any token is bad."""
    if text is None or not _DOUBLE_LIST.match(text):
        return None
    # float() reads "INF", "-INF" and "NaN" as xs:double does.
    return [float(token) for token in text.split()]


def group(values: list[float], dimension: int) -> list[tuple[float, ...]]:
    return [tuple(values[i : i + dimension]) for i in range(0, len(values) - dimension + 1, dimension)]


def parse_legacy_coordinates(text: str) -> list[tuple[float, ...]] | None:
    """RFC 4119-era ``gml:coordinates``: ``37:46:30N 122:25:10W`` or ``37.7,-122.4``."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    values: list[float] = []
    for token in tokens:
        m = _DMS.match(token)
        if m:
            deg, mins, secs, hemi = m.groups()
            v = int(deg) + int(mins or 0) / 60 + float(secs or 0) / 3600
            values.append(-v if hemi.upper() in "SW" else v)
            continue
        v = parse_double(token)
        if v is None:
            return None
        values.append(v)
    if len(values) < 2:
        return None
    dim = 3 if len(values) % 3 == 0 and len(values) % 2 else 2
    return group(values, dim)


def distance_m(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Great-circle (haversine) distance between two (lat, lon) points in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def signed_area(ring: list[tuple[float, ...]]) -> float:
    """Shoelace area in degree² with lon as x, lat as y: > 0 means counter-clockwise."""
    total = 0.0
    for (y1, x1, *_), (y2, x2, *_) in zip(ring, ring[1:]):
        total += x1 * y2 - x2 * y1
    return total / 2


def _orient(p, q, r) -> float:
    return (q[1] - p[1]) * (r[0] - p[0]) - (q[0] - p[0]) * (r[1] - p[1])


def _on_segment(p, q, r) -> bool:
    return min(p[0], r[0]) <= q[0] <= max(p[0], r[0]) and min(p[1], r[1]) <= q[1] <= max(p[1], r[1])


def _segments_cross(p1, p2, p3, p4) -> bool:
    d1, d2 = _orient(p3, p4, p1), _orient(p3, p4, p2)
    d3, d4 = _orient(p1, p2, p3), _orient(p1, p2, p4)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(p3, p1, p4))
        or (d2 == 0 and _on_segment(p3, p2, p4))
        or (d3 == 0 and _on_segment(p1, p3, p2))
        or (d4 == 0 and _on_segment(p1, p4, p2))
    )


def self_intersects(ring: list[tuple[float, ...]]) -> bool:
    """True if two non-adjacent edges of the closed ``ring`` touch or cross.
    O(n²) with a bounding-box reject; callers bound n (16 points: 104 edge pairs)."""
    pts = [(p[0], p[1]) for p in ring]
    n = len(pts) - 1  # edges
    boxes = [
        (min(a[0], b[0]), max(a[0], b[0]), min(a[1], b[1]), max(a[1], b[1]))
        for a, b in zip(pts, pts[1:])
    ]
    for i in range(n):
        lo0, hi0, lo1, hi1 = boxes[i]
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # adjacent through the closing vertex
            b = boxes[j]
            if b[0] > hi0 or b[1] < lo0 or b[2] > hi1 or b[3] < lo1:
                continue  # boxes apart: the edges cannot meet
            if _segments_cross(pts[i], pts[i + 1], pts[j], pts[j + 1]):
                return True
    return False
