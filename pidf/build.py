"""Generate well-formed PIDF-LO documents (RFC 4119 / 5139 / 5491) with lxml.

Two levels:

* specs (:class:`Civic`, the eight shape classes, :class:`LocationSpec`) and
  :func:`build_document` / :func:`civic_document` / :func:`shape_document` /
  :func:`lync_document` for writing new documents;
* :func:`serialize`, which writes a :class:`~pidf.model.PidfDocument` back to
  XML, so ``read(serialize(doc)) == doc`` for any document the builder made.

The SIP pieces around a document (multipart bodies in the layouts of real
clients, Geolocation header values) live in :mod:`pidf.body` and are
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from . import namespaces as ns
from .body import EmergencyBody, emergency_body, geolocation_value, multipart_body  # noqa: F401 - re-export
from .checks.civic import CIVIC_EXTENSIONS, CIVIC_RANK
from .checks.geodetic import CRS_2D, CRS_3D, UOM_DEGREES, UOM_METRE
from .model import CivicAddress, CivicField, GeodeticShape, Location, Measure, MsExtension, PidfDocument, UsageRules
from .timeutil import format_utc

# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Civic:
    """Civic address fields by RFC 5139 element name (written in schema order),
    plus RFC 6848 extension fields (PN, MP, STP, HNP) written after them."""

    fields: Mapping[str, str] | Sequence[tuple[str, str]]
    extensions: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    lang: str | None = None


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float
    alt: float | None = None


@dataclass(frozen=True)
class Polygon:
    """2D (lat, lon) or 3D (lat, lon, alt) corners, counter-clockwise; the ring is closed for you."""

    points: Sequence[tuple[float, ...]]


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius: float


@dataclass(frozen=True)
class Ellipse:
    lat: float
    lon: float
    semi_major: float
    semi_minor: float
    orientation: float  # degrees clockwise from north


@dataclass(frozen=True)
class ArcBand:
    lat: float
    lon: float
    inner_radius: float
    outer_radius: float
    start_angle: float  # degrees
    opening_angle: float  # degrees


@dataclass(frozen=True)
class Sphere:
    lat: float
    lon: float
    alt: float
    radius: float


@dataclass(frozen=True)
class Ellipsoid:
    lat: float
    lon: float
    alt: float
    semi_major: float
    semi_minor: float
    vertical_axis: float
    orientation: float


@dataclass(frozen=True)
class Prism:
    points: Sequence[tuple[float, float, float]]  # base corners, one altitude, counter-clockwise
    height: float


Shape = Point | Polygon | Circle | Ellipse | ArcBand | Sphere | Ellipsoid | Prism


@dataclass(frozen=True)
class LocationSpec:
    """One gp:geopriv and the element that carries it."""

    civic: Civic | None = None
    shape: Shape | None = None
    carrier: str = "tuple"  # tuple | device | person
    id: str = "loc1"
    device_id: str = "mac:00000000e911"
    method: str | None = "Manual"
    retransmission_allowed: bool = False
    retention_expiry: datetime | None = None
    timestamp: datetime | None = None  # None: now
    ms_extension: MsExtension | None = None  # tuple only


# --------------------------------------------------------------------------- specs -> model


def _num(value: float) -> str:
    """xs:double text that reads back to the same float."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _measure(name: str, value: float, uom: str) -> Measure:
    raw = _num(value)
    return Measure(name=name, raw=raw, value=float(raw), uom=uom)


def _pairs(fields: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(fields.items()) if isinstance(fields, Mapping) else list(fields)


def civic_model(civic: Civic) -> CivicAddress:
    base = []
    for name, value in _pairs(civic.fields):
        if name not in CIVIC_RANK:
            raise ValueError(f"{name!r} is not an RFC 5139 civic element")
        base.append((CIVIC_RANK[name], name, " ".join(str(value).split())))
    base.sort()
    out = CivicAddress(namespace=ns.CA, lang=civic.lang)
    out.fields = [CivicField(name, value, ns.CA) for _, name, value in base]
    for name, value in _pairs(civic.extensions):
        if name not in CIVIC_EXTENSIONS:
            raise ValueError(f"{name!r} is not an RFC 6848 extension element")
        out.fields.append(CivicField(name, " ".join(str(value).split()), ns.CAE))
    return out


def _pos(*values: float | None) -> tuple[float, ...]:
    return tuple(float(_num(v)) for v in values if v is not None)


def _ring(points: Sequence[tuple[float, ...]]) -> list[tuple[float, ...]]:
    ring = [_pos(*p) for p in points]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


def shape_model(shape: Shape) -> GeodeticShape:
    m, deg = UOM_METRE, UOM_DEGREES
    if isinstance(shape, Point):
        return GeodeticShape("Point", ns.GML, CRS_3D if shape.alt is not None else CRS_2D, [_pos(shape.lat, shape.lon, shape.alt)])
    if isinstance(shape, Polygon):
        three_d = bool(shape.points) and len(shape.points[0]) == 3
        return GeodeticShape("Polygon", ns.GML, CRS_3D if three_d else CRS_2D, _ring(shape.points))
    if isinstance(shape, Circle):
        return GeodeticShape("Circle", ns.GS, CRS_2D, [_pos(shape.lat, shape.lon)], [_measure("radius", shape.radius, m)])
    if isinstance(shape, Ellipse):
        return GeodeticShape(
            "Ellipse",
            ns.GS,
            CRS_2D,
            [_pos(shape.lat, shape.lon)],
            [
                _measure("semiMajorAxis", shape.semi_major, m),
                _measure("semiMinorAxis", shape.semi_minor, m),
                _measure("orientation", shape.orientation, deg),
            ],
        )
    if isinstance(shape, ArcBand):
        return GeodeticShape(
            "ArcBand",
            ns.GS,
            CRS_2D,
            [_pos(shape.lat, shape.lon)],
            [
                _measure("innerRadius", shape.inner_radius, m),
                _measure("outerRadius", shape.outer_radius, m),
                _measure("startAngle", shape.start_angle, deg),
                _measure("openingAngle", shape.opening_angle, deg),
            ],
        )
    if isinstance(shape, Sphere):
        return GeodeticShape("Sphere", ns.GS, CRS_3D, [_pos(shape.lat, shape.lon, shape.alt)], [_measure("radius", shape.radius, m)])
    if isinstance(shape, Ellipsoid):
        return GeodeticShape(
            "Ellipsoid",
            ns.GS,
            CRS_3D,
            [_pos(shape.lat, shape.lon, shape.alt)],
            [
                _measure("semiMajorAxis", shape.semi_major, m),
                _measure("semiMinorAxis", shape.semi_minor, m),
                _measure("verticalAxis", shape.vertical_axis, m),
                _measure("orientation", shape.orientation, deg),
            ],
        )
    if isinstance(shape, Prism):
        return GeodeticShape("Prism", ns.GS, CRS_3D, _ring(shape.points), [_measure("height", shape.height, m)])
    raise TypeError(f"not a shape: {shape!r}")


def location_model(spec: LocationSpec, now: datetime) -> Location:
    if spec.carrier not in ("tuple", "device", "person"):
        raise ValueError(f"carrier must be tuple, device or person, not {spec.carrier!r}")
    ts = spec.timestamp or now
    raw_ts = format_utc(ts)
    expiry = spec.retention_expiry
    return Location(
        carrier=spec.carrier,
        carrier_id=spec.id,
        civic=[civic_model(spec.civic)] if spec.civic is not None else [],
        shapes=[shape_model(spec.shape)] if spec.shape is not None else [],
        method=spec.method,
        usage_rules=UsageRules(
            retransmission_allowed_raw="true" if spec.retransmission_allowed else "false",
            retransmission_allowed=spec.retransmission_allowed,
            retention_expiry_raw=format_utc(expiry) if expiry else None,
            retention_expiry=datetime.fromisoformat(format_utc(expiry).replace("Z", "+00:00")) if expiry else None,
        ),
        timestamp_raw=raw_ts,
        timestamp=datetime.fromisoformat(raw_ts.replace("Z", "+00:00")),
        device_id=spec.device_id if spec.carrier == "device" else None,
        ms_extension=spec.ms_extension if spec.carrier == "tuple" else None,
    )


# --------------------------------------------------------------------------- model -> XML


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: v for k, v in attrib.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _write_shape(parent: etree._Element, shape: GeodeticShape) -> None:
    el = _sub(parent, ns.q(shape.namespace, shape.kind), srsName=shape.srs_name)
    if shape.kind in ("Polygon", "Prism"):
        holder = _sub(el, ns.q(ns.GS, "base")) if shape.kind == "Prism" else el
        polygon = _sub(holder, ns.GML_POLYGON) if shape.kind == "Prism" else holder
        ring = _sub(_sub(polygon, ns.GML_EXTERIOR), ns.GML_LINEAR_RING)
        _sub(ring, ns.GML_POS_LIST, " ".join(_num(v) for p in shape.positions for v in p))
    else:
        for pos in shape.positions[:1]:
            _sub(el, ns.GML_POS, " ".join(_num(v) for v in pos))
    for m in shape.measures:
        _sub(el, ns.q(ns.GS, m.name), m.raw, uom=m.uom)


def _write_geopriv(parent: etree._Element, loc: Location) -> None:
    gp = _sub(parent, ns.GEOPRIV)
    info = _sub(gp, ns.LOCATION_INFO)
    for shape in loc.shapes:  # RFC 5491 rule 7: coarse geodetic area first
        _write_shape(info, shape)
    for civic in loc.civic:
        ca = _sub(info, ns.q(civic.namespace, "civicAddress"))
        if civic.lang:
            ca.set(ns.XML_LANG, civic.lang)
        for fld in civic.fields:
            child = _sub(ca, ns.q(fld.namespace, fld.name) if fld.namespace else fld.name, fld.value)
            if fld.lang:
                child.set(ns.XML_LANG, fld.lang)
    rules = _sub(gp, ns.USAGE_RULES)
    u = loc.usage_rules
    if u.retransmission_allowed_raw is not None:
        _sub(rules, ns.RETRANSMISSION_ALLOWED, u.retransmission_allowed_raw)
    if u.retention_expiry_raw is not None:
        _sub(rules, ns.RETENTION_EXPIRY, u.retention_expiry_raw)
    if u.external_ruleset is not None:
        _sub(rules, ns.EXTERNAL_RULESET, u.external_ruleset)
    if u.note_well is not None:
        _sub(rules, ns.NOTE_WELL, u.note_well)
    if loc.method is not None:
        _sub(gp, ns.METHOD, loc.method)
    if loc.provided_by:
        pb = _sub(gp, ns.PROVIDED_BY)
        for item in loc.provided_by:
            _sub(pb, ns.q(item.namespace, item.name) if item.namespace else item.name, item.text, **item.attributes)


def _write_ms_extension(parent: etree._Element, ext: MsExtension) -> None:
    el = _sub(parent, ns.q(ext.namespace, "msftE911PidfExtn"))
    if ext.conference_uri is not None:
        _sub(el, ns.q(ext.namespace, "ConferenceUri"), ext.conference_uri)
    if ext.conference_mode is not None:
        _sub(el, ns.q(ext.namespace, "ConferenceMode"), ext.conference_mode)
    if ext.location_policy_tag_id is not None:
        # [MS-SIPRE] §9 writes it with its own default namespace.
        tag = etree.SubElement(el, ns.MS_LOCATION_POLICY_TAG, nsmap={None: ns.MS_TAG})
        tag.text = ext.location_policy_tag_id


def _nsmap(doc: PidfDocument, basic_policy_prefix: str) -> dict[str | None, str]:
    nsmap: dict[str | None, str] = {None: ns.PIDF, "gp": ns.GP, basic_policy_prefix: ns.GBP}
    used = set()
    for loc in doc.locations:
        if loc.carrier != "tuple":
            used.add(ns.DM)
        for c in loc.civic:
            used.add(c.namespace)
            used.update(f.namespace for f in c.fields if f.namespace)
        for s in loc.shapes:
            used.add(ns.GML)
            used.add(s.namespace)
        if loc.ms_extension is not None:
            used.add(loc.ms_extension.namespace)
    prefixes = {ns.DM: "dm", ns.CA: "ca", ns.CAE: "cae", ns.GML: "gml", ns.GS: "gs", ns.MS_EXT: "ms"}
    for uri in used:
        if uri in prefixes:
            nsmap[prefixes[uri]] = uri
    return nsmap


def serialize(doc: PidfDocument, *, basic_policy_prefix: str = "gbp", pretty: bool = True) -> bytes:
    """Write a model back to a PIDF-LO document (UTF-8, with XML declaration)."""
    root = etree.Element(ns.PRESENCE, nsmap=_nsmap(doc, basic_policy_prefix))
    if doc.entity is not None:
        root.set("entity", doc.entity)
    # RFC 3863 §4.4: tuples come first, then ##other (dm:device, dm:person).
    ordered = [loc for loc in doc.locations if loc.carrier == "tuple"] + [loc for loc in doc.locations if loc.carrier != "tuple"]
    for loc in ordered:
        if loc.carrier == "tuple":
            el = _sub(root, ns.TUPLE, id=loc.carrier_id)
            status = _sub(el, ns.STATUS)
            _write_geopriv(status, loc)
            if loc.ms_extension is not None:
                _write_ms_extension(status, loc.ms_extension)
            if loc.timestamp_raw is not None:
                _sub(el, ns.TIMESTAMP, loc.timestamp_raw)
        else:
            el = _sub(root, ns.DEVICE if loc.carrier == "device" else ns.PERSON, id=loc.carrier_id)
            _write_geopriv(el, loc)
            if loc.carrier == "device":
                _sub(el, ns.DEVICE_ID, loc.device_id or "mac:00000000e911")
            if loc.timestamp_raw is not None:
                _sub(el, ns.DM_TIMESTAMP, loc.timestamp_raw)
    body = etree.tostring(root, encoding="utf-8", xml_declaration=False, pretty_print=pretty)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


# --------------------------------------------------------------------------- documents


def build_document(locations: Sequence[LocationSpec], *, entity: str = "sip:caller@example.com", now: datetime | None = None) -> bytes:
    """A document with one geopriv per spec, carriers in RFC 3863 order."""
    now = now or datetime.now(timezone.utc)
    doc = PidfDocument(entity=entity, locations=[location_model(s, now) for s in locations])
    return serialize(doc)


def civic_document(
    fields: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    entity: str = "sip:caller@example.com",
    extensions: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    lang: str | None = None,
    carrier: str = "tuple",
    method: str | None = "Manual",
    timestamp: datetime | None = None,
    retransmission_allowed: bool = False,
) -> bytes:
    spec = LocationSpec(
        civic=Civic(fields, extensions, lang),
        carrier=carrier,
        method=method,
        timestamp=timestamp,
        retransmission_allowed=retransmission_allowed,
    )
    return build_document([spec], entity=entity, now=timestamp)


def shape_document(
    shape: Shape,
    *,
    entity: str = "sip:caller@example.com",
    civic: Civic | None = None,
    carrier: str = "tuple",
    method: str | None = "GPS",
    timestamp: datetime | None = None,
) -> bytes:
    """A geodetic document; with ``civic`` a compound location (shape first, RFC 5491 rule 7)."""
    spec = LocationSpec(shape=shape, civic=civic, carrier=carrier, method=method, timestamp=timestamp)
    return build_document([spec], entity=entity, now=timestamp)


def lync_document(
    fields: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    entity: str = "sip:voip_911_user1@contoso.com",
    conference_uri: str | None = "sip:+14255550199@contoso.com;user=phone",
    conference_mode: str | None = "twoway",
    location_policy_tag_id: str | None = "user-tagid",
    timestamp: datetime | None = None,
    quirks: bool = True,
) -> bytes:
    """A document laid out like a Lync 2013 client's ([MS-SIPRE] §4.14): civic in a
    tuple, msftE911PidfExtn after gp:geopriv, ``bp`` prefix, no gp:method. With
    ``quirks`` it also reproduces ``tuple id="0"`` and a timestamp without offset."""
    ts = timestamp or datetime.now(timezone.utc)
    loc = location_model(
        LocationSpec(
            civic=Civic(fields),
            id="0" if quirks else "lync0",
            method=None,
            retransmission_allowed=True,
            timestamp=ts,
            ms_extension=MsExtension(conference_uri, conference_mode, location_policy_tag_id),
        ),
        ts,
    )
    if quirks:
        # Lync writes local time with two fractional digits and no offset.
        loc.timestamp_raw = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4]
    return serialize(PidfDocument(entity=entity, locations=[loc]), basic_policy_prefix="bp")


# Sample documents for `pidf build --kind ...` and the benchmarks.
REDMOND = {
    "country": "US",
    "A1": "WA",
    "A3": "Redmond",
    "RD": "163rd",
    "STS": "Ave",
    "POD": "NE",
    "HNO": "3910",
    "LOC": "40/4451",
    "NAM": "Contoso",
    "PC": "98052",
}
_LAT, _LON = 47.6406, -122.1281
SAMPLE_SHAPES: dict[str, Shape] = {
    "point": Point(_LAT, _LON),
    "polygon": Polygon([(47.6400, -122.1290), (47.6400, -122.1270), (47.6412, -122.1270), (47.6412, -122.1290)]),
    "circle": Circle(_LAT, _LON, 25.0),
    "ellipse": Ellipse(_LAT, _LON, 120.0, 40.0, 35.0),
    "arcband": ArcBand(_LAT, _LON, 1200.0, 1500.0, 266.0, 120.0),
    "sphere": Sphere(_LAT, _LON, 30.0, 15.0),
    "ellipsoid": Ellipsoid(_LAT, _LON, 30.0, 80.0, 40.0, 12.0, 90.0),
    "prism": Prism([(47.6400, -122.1290, 20.0), (47.6400, -122.1270, 20.0), (47.6412, -122.1270, 20.0), (47.6412, -122.1290, 20.0)], 12.0),
}
SAMPLE_KINDS = ("civic", "lync", *SAMPLE_SHAPES)


def sample_document(kind: str, *, timestamp: datetime | None = None) -> bytes:
    """A ready-made valid document of one kind (see :data:`SAMPLE_KINDS`)."""
    if kind == "civic":
        return civic_document(REDMOND, timestamp=timestamp)
    if kind == "lync":
        fields = dict(REDMOND, NAM="1111-222-333; 1234567890")
        return lync_document(fields, timestamp=timestamp, quirks=False)
    if kind in SAMPLE_SHAPES:
        return shape_document(SAMPLE_SHAPES[kind], timestamp=timestamp)
    raise ValueError(f"unknown kind {kind!r}; one of {', '.join(SAMPLE_KINDS)}")


__all__ = [
    "ArcBand",
    "Circle",
    "Civic",
    "Ellipse",
    "Ellipsoid",
    "EmergencyBody",
    "LocationSpec",
    "Point",
    "Polygon",
    "Prism",
    "SAMPLE_KINDS",
    "Shape",
    "Sphere",
    "build_document",
    "civic_document",
    "emergency_body",
    "geolocation_value",
    "lync_document",
    "multipart_body",
    "sample_document",
    "serialize",
    "shape_document",
]
