"""Property-based tests: builder output is valid, the model round-trips, nothing raises."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pidf_testdocs import NOW, document

from pidf import Conveyance, MimePart, Verdict, read_document, validate_conveyance, validate_document
from pidf.build import (
    ArcBand,
    Circle,
    Civic,
    Ellipse,
    Ellipsoid,
    LocationSpec,
    Point,
    Polygon,
    Prism,
    Sphere,
    build_document,
    serialize,
)
from pidf.checks.civic import CIVIC_ORDER
from pidf.registries import ISO3166_ALPHA2, SUBDIVISIONS

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values a civic element can hold: printable text, already whitespace-collapsed, non-empty.
_text = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x00"),
    min_size=1,
    max_size=30,
).map(lambda s: " ".join(s.split())).filter(bool)
_OTHER = [n for n in CIVIC_ORDER if n not in ("country", "A1", "A3", "A6", "RD", "HNO")]


@st.composite
def civic_addresses(draw) -> Civic:
    country = draw(st.sampled_from(sorted(ISO3166_ALPHA2)))
    fields = {"country": country}
    known = SUBDIVISIONS.get(country)
    if known:
        fields["A1"] = draw(st.sampled_from(sorted(known)))
    elif draw(st.booleans()):
        fields["A1"] = draw(st.from_regex(r"\A[A-Z0-9]{1,3}\Z"))
    # US/CA need the MSAG minimum (C08); elsewhere it is optional.
    needs_minimum = country in ("US", "CA")
    if needs_minimum or draw(st.booleans()):
        fields["A3"] = draw(_text)
    if needs_minimum or draw(st.booleans()):
        fields["RD"] = draw(_text)
        if draw(st.booleans()):
            fields["A6"] = draw(_text)
    if needs_minimum or draw(st.booleans()):
        fields["HNO"] = str(draw(st.integers(1, 99999)))
    for name in draw(st.lists(st.sampled_from(_OTHER), unique=True, max_size=8)):
        fields[name] = draw(_text)
    extensions = {n: draw(_text) for n in draw(st.lists(st.sampled_from(["PN", "MP", "STP", "HNP"]), unique=True, max_size=2))}
    return Civic(fields, extensions)


_lat = st.floats(-85, 85, allow_nan=False)
_lon = st.floats(-179, 179, allow_nan=False)
_alt = st.floats(-400, 9000, allow_nan=False)
_length = st.floats(0.5, 50_000, allow_nan=False)
_angle = st.floats(0, 359.9, allow_nan=False)


@st.composite
def rings(draw, three_d: bool = False) -> list[tuple[float, ...]]:
    """A convex counter-clockwise ring (points on a small circle, angles increasing)."""
    lat, lon = draw(st.floats(-80, 80)), draw(st.floats(-178, 178))
    radius = draw(st.floats(0.0005, 0.4))
    n = draw(st.integers(3, 15))
    gaps = draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))
    total = sum(gaps)
    angles, acc = [], 0.0
    for g in gaps:
        angles.append(2 * math.pi * acc / total)
        acc += g
    alt = draw(_alt)
    pts = []
    for a in angles:
        p = (lat + radius * math.sin(a), lon + radius * math.cos(a))
        pts.append(p + (alt,) if three_d else p)
    return pts


@st.composite
def shapes(draw):
    kind = draw(st.sampled_from(["point", "point3d", "polygon", "circle", "ellipse", "arcband", "sphere", "ellipsoid", "prism"]))
    lat, lon = draw(_lat), draw(_lon)
    if kind == "point":
        return Point(lat, lon)
    if kind == "point3d":
        return Point(lat, lon, draw(_alt))
    if kind == "polygon":
        return Polygon(draw(rings()))
    if kind == "circle":
        return Circle(lat, lon, draw(_length))
    if kind in ("ellipse", "ellipsoid"):
        a, b = sorted([draw(_length), draw(_length)], reverse=True)
        if kind == "ellipse":
            return Ellipse(lat, lon, a, b, draw(_angle))
        return Ellipsoid(lat, lon, draw(_alt), a, b, draw(_length), draw(_angle))
    if kind == "arcband":
        inner = draw(st.floats(0, 20_000))
        return ArcBand(lat, lon, inner, inner + draw(_length), draw(_angle), draw(st.floats(0.1, 360)))
    if kind == "sphere":
        return Sphere(lat, lon, draw(_alt), draw(_length))
    return Prism(draw(rings(three_d=True)), draw(_length))


@st.composite
def specs(draw) -> list[LocationSpec]:
    out = []
    for i, carrier in enumerate(draw(st.lists(st.sampled_from(["tuple", "device", "person"]), min_size=1, max_size=3, unique=True))):
        shape = draw(st.none() | shapes())
        address = draw(civic_addresses()) if shape is None or draw(st.booleans()) else None
        out.append(
            LocationSpec(
                civic=address,
                shape=shape,
                carrier=carrier,
                id=f"loc{i}",
                method=draw(st.sampled_from(["GPS", "Manual", "DHCP", "A-GPS", "Cell"])),
                retransmission_allowed=draw(st.booleans()),
                timestamp=NOW,
            )
        )
    return out


def _problems(report):
    return [f for f in report.findings if f.severity in ("E", "W") and f.id != "P17"]


@SETTINGS
@given(civic_addresses())
def test_built_civic_documents_have_no_errors_or_warnings(address):
    report = validate_document(build_document([LocationSpec(civic=address, timestamp=NOW)], now=NOW), now=NOW)
    assert _problems(report) == []
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


@SETTINGS
@given(shapes())
def test_built_shape_documents_have_no_errors_or_warnings(shape):
    report = validate_document(build_document([LocationSpec(shape=shape, method="GPS", timestamp=NOW)], now=NOW), now=NOW)
    assert _problems(report) == []
    assert report.verdict == Verdict.LOCATION_BY_VALUE_VALID


@SETTINGS
@given(specs())
def test_parse_of_serialize_keeps_the_model(location_specs):
    # Several carriers may describe different places (a P17 warning); everything else is clean.
    doc = read_document(build_document(location_specs, now=NOW))
    assert doc is not None and len(doc.locations) == len(location_specs)
    assert read_document(serialize(doc)) == doc
    for spec, loc in zip(sorted(location_specs, key=lambda s: s.carrier != "tuple"), doc.locations):
        if spec.civic is not None:
            assert [f.value for f in loc.civic[0].fields][: len(spec.civic.fields)] == [
                v for _, v in sorted(((CIVIC_ORDER.index(k), v) for k, v in spec.civic.fields.items()))
            ]
        if isinstance(spec.shape, Point):
            assert loc.shapes[0].positions[0][:2] == (spec.shape.lat, spec.shape.lon)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_report_never_an_exception(data):
    report = validate_document(data, now=NOW)
    assert report.verdict in set(Verdict)


_VALID = document()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.binary(min_size=1, max_size=8), st.booleans())
def test_mutated_documents_give_a_report_never_an_exception(pos, junk, truncate):
    data = _VALID[:pos] if truncate else _VALID[:pos] + junk + _VALID[pos + len(junk) :]
    report = validate_document(data, now=NOW)
    assert report.verdict in set(Verdict)


_header_value = st.text(max_size=60)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["Geolocation", "Content-Type", "Content-Length", "Call-Info", "Priority", "Geolocation-Routing", "From", "Content-ID", "Geolocation-Error"]), _header_value), max_size=8),
    st.lists(st.tuples(st.lists(st.tuples(st.sampled_from(["Content-Type", "Content-ID", "Content-Disposition"]), _header_value), max_size=3), st.binary(max_size=200)), max_size=3),
    st.one_of(st.none(), _header_value),
)  # fmt: skip
def test_any_conveyance_gives_a_report_never_an_exception(headers, parts, request_uri):
    conv = Conveyance(headers, b"".join(p[1] for p in parts), [MimePart(h, c) for h, c in parts] or None, [], request_uri)
    report = validate_conveyance(conv, now=NOW)
    assert report.verdict in set(Verdict)
    assert not any(f.id == "S00" for f in report.findings)  # no internal error
