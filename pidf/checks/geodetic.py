"""Geodetic checks G01-G08 (RFC 5491 §4-5; OGC 06-142r1 GeoShape)."""

from __future__ import annotations

import math

from lxml import etree

from .. import namespaces as ns
from ..extract import (
    MEASURE_NAMES,
    elements,
    is_civic,
    is_gml_location,
    is_shape,
    local,
    namespace,
    ring_element,
)
from ..geometry import distance_m, parse_double, parse_doubles, parse_legacy_coordinates, self_intersects, signed_area
from .common import At, CheckContext, name_of

CRS_2D = "urn:ogc:def:crs:EPSG::4326"
CRS_3D = "urn:ogc:def:crs:EPSG::4979"
UOM_METRE = "urn:ogc:def:uom:EPSG::9001"
UOM_DEGREES = "urn:ogc:def:uom:EPSG::9102"
UOM_RADIANS = "urn:ogc:def:uom:EPSG::9101"

ALLOWED_CRS = {
    "Point": (CRS_2D, CRS_3D),
    "Polygon": (CRS_2D, CRS_3D),
    "Circle": (CRS_2D,),
    "Ellipse": (CRS_2D,),
    "ArcBand": (CRS_2D,),
    "Sphere": (CRS_3D,),
    "Ellipsoid": (CRS_3D,),
    "Prism": (CRS_3D,),
}
REQUIRED_MEASURES = {
    "Point": (),
    "Polygon": (),
    "Circle": ("radius",),
    "Ellipse": ("semiMajorAxis", "semiMinorAxis", "orientation"),
    "ArcBand": ("innerRadius", "outerRadius", "startAngle", "openingAngle"),
    "Sphere": ("radius",),
    "Ellipsoid": ("semiMajorAxis", "semiMinorAxis", "verticalAxis", "orientation"),
    "Prism": ("height",),
}
ANGLES = frozenset({"orientation", "startAngle", "openingAngle"})
_MEASURES = frozenset(MEASURE_NAMES)
# RFC 5491 §5.2.2: <= 15 distinct points (16 with the repeat) and edges <= 130 km SHOULD hold.
MAX_POLYGON_POSITIONS = 16
MAX_EDGE_M = 130_000
# Self-intersection is O(n²); beyond this many positions it is not tested.
MAX_INTERSECTION_TEST = 200


def check_location_info(info: etree._Element, ctx: CheckContext) -> None:
    """Geodetic content of one gp:location-info: G01-G08."""
    f = ctx.findings
    country = None
    order: list[str] = []
    for child in elements(info):
        uri = namespace(child.tag)
        if is_civic(child):
            order.append("civic")
            country = country or next(
                ((c.text or "").strip().upper() for c in elements(child) if local(c.tag) == "country"), None
            )
            continue
        if is_gml_location(child):
            # G07: RFC 5491 §4 deprecates the gml:location wrapper (RFC 4119 example).
            f.warn("G07", "deprecated gml:location wrapper around the shape (RFC 5491 §4)", At(child))
            shapes = [c for c in elements(child) if is_shape(c)]
            order.extend("geo" for _ in shapes)
            continue
        if is_shape(child):
            order.append("geo")
        elif uri in ns.GEO_NAMESPACES:
            f.error("G01", f"{name_of(child)} is not one of the eight RFC 5491 shapes", At(child))
    for child in elements(info):
        targets = [child] if is_shape(child) else [c for c in elements(child) if is_shape(c)] if is_gml_location(child) else []
        for shape in targets:
            check_shape(shape, ctx, country)
    # G08: RFC 5491 rule 7, compound location: coarse (geodetic) first, civic detail after.
    if "civic" in order and "geo" in order and order.index("civic") < order.index("geo"):
        f.warn("G08", "compound location lists the civic address before the geodetic shape; RFC 5491 rule 7 puts the coarse geodetic area first", At(info))


def check_shape(el: etree._Element, ctx: CheckContext, country: str | None = None) -> None:
    f = ctx.findings
    kind, uri = local(el.tag), namespace(el.tag)
    where = At(el)
    expected_ns = ns.SHAPE_NAMESPACES[kind]
    # G01 / G07: exact namespaces (gml:Circle is a common mistake; GML 3.0 is deprecated).
    if uri == ns.GML30:
        f.warn("G07", f"{kind} is in the deprecated GML 3.0 namespace {uri!r} (RFC 5491 §4)", where)
    elif uri != expected_ns:
        prefix = "gml" if expected_ns == ns.GML else "gs"
        f.error("G01", f"{name_of(el)} must be {prefix}:{kind} in {expected_ns!r}", where)
    dimension = _check_crs(el, kind, ctx)
    if kind in ("Polygon", "Prism"):
        _check_polygon(el, kind, dimension, ctx)
    else:
        _check_centre(el, kind, dimension, ctx, country)
    _check_measures(el, kind, ctx)


def _check_crs(el: etree._Element, kind: str, ctx: CheckContext) -> int:
    """G02: srsName on the outermost element only, exactly the 4326/4979 URN."""
    f = ctx.findings
    where = At(el)
    srs = el.get("srsName")
    dimension = 3 if kind in ("Sphere", "Ellipsoid", "Prism") else 2
    if srs is None:
        f.error("G02", f"{kind} has no srsName (urn:ogc:def:crs:EPSG::4326 or ::4979)", where)
    elif srs not in (CRS_2D, CRS_3D):
        code = "4979" if "4979" in srs else "4326" if "4326" in srs else None
        hint = f"; write {CRS_3D if code == '4979' else CRS_2D!r}" if code else ""
        f.error("G02", f"srsName {srs!r} is not the RFC 5491 URN form{hint}", where)
        if code:
            dimension = 3 if code == "4979" else 2
    else:
        dimension = 3 if srs == CRS_3D else 2
        if srs not in ALLOWED_CRS[kind]:
            f.error("G02", f"{kind} must use {' or '.join(ALLOWED_CRS[kind])}, not {srs}", where)
    for sub in el.iter():
        if sub is el or not isinstance(sub.tag, str):
            if sub is el and sub.get("srsDimension") is not None:
                f.warn("G02", "srsDimension SHOULD be omitted (RFC 5491 §5)", where)
            continue
        if sub.get("srsName") is not None:
            f.error("G02", f"srsName re-specified on {name_of(sub)}; only the outermost geometry carries it", At(sub))
        if sub.get("srsDimension") is not None:
            f.warn("G02", f"srsDimension on {name_of(sub)} SHOULD be omitted (RFC 5491 §5)", At(sub))
    return dimension


def _range_problem(pos: tuple[float, ...]) -> str | None:
    lat, lon = pos[0], pos[1]
    if not all(math.isfinite(v) for v in pos):
        return "is not finite"
    if abs(lat) > 90:
        swapped = " (latitude and longitude swapped?)" if abs(lon) <= 90 and abs(lat) <= 180 else ""
        return f"latitude {lat} is outside [-90, 90]{swapped}"
    if abs(lon) > 180:
        return f"longitude {lon} is outside [-180, 180]"
    return None


def _read_pos(pos_el: etree._Element, dimension: int, ctx: CheckContext) -> tuple[float, ...] | None:
    """G03 for one gml:pos: count of doubles and ranges."""
    f = ctx.findings
    values = parse_doubles(pos_el.text)
    where = At(pos_el)
    if values is None:
        f.error("G03", f"gml:pos {(pos_el.text or '').strip()!r} is not a list of numbers", where)
        return None
    if len(values) != dimension:
        f.error("G03", f"gml:pos has {len(values)} values; the CRS needs {dimension} (lat lon{' alt' if dimension == 3 else ''})", where)
        if len(values) < 2:
            return None
    pos = tuple(values)
    problem = _range_problem(pos)
    if problem:
        f.error("G03", f"gml:pos {problem}", where)
        return None
    return pos


def _check_centre(el: etree._Element, kind: str, dimension: int, ctx: CheckContext, country: str | None) -> None:
    f = ctx.findings
    children = list(elements(el))
    pos_els = [c for c in children if local(c.tag) == "pos"]
    coords = [c for c in children if local(c.tag) == "coordinates"]
    centre = None
    if coords:
        f.warn("G07", "deprecated gml:coordinates (RFC 5491 §4); use gml:pos", At(coords[0]))
        values = parse_legacy_coordinates(coords[0].text or "")
        if not values:
            f.error("G03", f"gml:coordinates {(coords[0].text or '').strip()!r} cannot be read", At(coords[0]))
        else:
            problem = _range_problem(values[0])
            if problem:
                f.error("G03", f"gml:coordinates {problem}", At(coords[0]))
            else:
                centre = values[0]
    elif not pos_els:
        f.error("G03", f"{kind} has no gml:pos", At(el))
    else:
        if len(pos_els) > 1:
            f.error("G03", f"{kind} has {len(pos_els)} gml:pos elements (one expected)", At(el))
        centre = _read_pos(pos_els[0], dimension, ctx)
    # Heuristic: a North American civic address with a point in the Indian Ocean is a swap.
    if centre is not None and country in ("US", "CA"):
        lat, lon = centre[0], centre[1]
        if -180 <= lat <= -50 and 15 <= lon <= 75:
            f.info("G03", f"({lat}, {lon}) looks like (longitude, latitude) for a {country} address", At(el))
        elif lat < 0 or lon > 0:
            f.info("G03", f"({lat}, {lon}) is far from the {country} civic address in the same location-info", At(el))


def _check_polygon(el: etree._Element, kind: str, dimension: int, ctx: CheckContext) -> None:
    """G03 for every vertex, then G06: RFC 5491 §5.1, §5.2.2 polygon rules."""
    f = ctx.findings
    where = At(el)
    ring = ring_element(el)
    if ring is None:
        path = "gs:base/gml:Polygon/gml:exterior/gml:LinearRing" if kind == "Prism" else "gml:exterior/gml:LinearRing"
        f.error("G06", f"{kind} has no {path}", where)
        return
    positions: list[tuple[float, ...]] = []
    for child in elements(ring):
        name = local(child.tag)
        if name == "posList":
            values = parse_doubles(child.text)
            if values is None:
                f.error("G03", "gml:posList holds something other than numbers", At(child))
                return
            if len(values) % dimension:
                f.error("G03", f"gml:posList has {len(values)} values, not a multiple of {dimension}", At(child))
                return
            positions.extend(tuple(values[i : i + dimension]) for i in range(0, len(values), dimension))
        elif name == "pos":
            pos = _read_pos(child, dimension, ctx)
            if pos is None:
                return
            positions.append(pos)
    for pos in positions:
        problem = _range_problem(pos)
        if problem:
            f.error("G03", f"polygon vertex {problem}", At(ring))
            return
    n = len(positions)
    if n < 4:
        f.error("G06", f"polygon has {n} positions; at least 4 (three corners and the closing repeat) are needed", At(ring))
        return
    closed = positions[0] == positions[-1]
    if not closed:
        f.error("G06", "polygon is not closed: the last position must repeat the first", At(ring))
    if n > MAX_POLYGON_POSITIONS:
        f.warn("G06", f"polygon has {n} positions; RFC 5491 §5.2.2 recommends at most 15 distinct points", At(ring))
    if dimension == 3 and len({p[2] for p in positions if len(p) > 2}) > 1:
        f.error("G06", "3D polygon vertices do not share one altitude (RFC 5491 §5.2.2 MUST)", At(ring))
    longest = max(distance_m(a, b) for a, b in zip(positions, positions[1:]))
    if longest > MAX_EDGE_M:
        f.warn("G06", f"polygon edge of {longest / 1000:.0f} km; RFC 5491 §5.2.2 recommends at most 130 km", At(ring))
    if not closed or n > MAX_INTERSECTION_TEST:
        return
    if self_intersects(positions):
        f.error("G06", "polygon edges cross each other (RFC 5491 §5.2.2 SHALL NOT)", At(ring))
        return
    area = signed_area(positions)
    if area < 0:
        f.error("G06", "polygon vertices are clockwise; RFC 5491 §5.2.2 requires counter-clockwise (upward normal)", At(ring))
    elif area == 0:
        f.error("G06", "polygon encloses no area (all vertices on one line)", At(ring))


def _check_measures(el: etree._Element, kind: str, ctx: CheckContext) -> None:
    """G04 units and G05 value ranges; a missing mandatory measure is a G01 structure error."""
    f = ctx.findings
    found: dict[str, float] = {}
    present = set()
    for child in elements(el):
        name = local(child.tag)
        if name not in _MEASURES:
            continue
        present.add(name)
        where = At(child)
        value = parse_double(child.text)
        uom = child.get("uom")
        if value is None or not math.isfinite(value):
            f.error("G05", f"{name} {(child.text or '').strip()!r} is not a finite number", where)
            continue
        # G04: GeoShape §7.1.3, uom on the element carrying the value.
        if name in ANGLES:
            if uom is None:
                f.error("G04", f"{name} has no uom (EPSG::9102 degrees or EPSG::9101 radians)", where)
            elif uom == UOM_RADIANS:
                if abs(value) > 2 * math.pi + 1e-9:
                    # Read it as the degrees that were meant, so G05 does not repeat the finding.
                    f.error("G04", f"{name} is {value:g} in radians (EPSG::9101), more than 2π: degrees (EPSG::9102) were meant", where)
                else:
                    value = math.degrees(value)
            elif uom != UOM_DEGREES:
                f.error("G04", f"{name} uom {uom!r} is not an angle unit (EPSG::9102 or EPSG::9101)", where)
        else:
            if uom is None:
                f.error("G04", f"{name} has no uom (urn:ogc:def:uom:EPSG::9001, metres)", where)
            elif uom != UOM_METRE:
                f.error("G04", f"{name} uom {uom!r} must be {UOM_METRE!r} (metres)", where)
        found[name] = value
    missing = [m for m in REQUIRED_MEASURES.get(kind, ()) if m not in present]
    if missing:
        f.error("G01", f"{kind} lacks {', '.join('gs:' + m for m in missing)}", At(el))
    _check_ranges(found, el, ctx)


def _check_ranges(v: dict[str, float], el: etree._Element, ctx: CheckContext) -> None:
    """G05: RFC 5491 §5.2.4-5.2.8 value ranges (angles already in degrees)."""
    f = ctx.findings
    where = At(el)
    for name in ("radius", "verticalAxis", "height", "semiMinorAxis", "outerRadius"):
        if name in v and v[name] <= 0:
            f.error("G05", f"{name} must be positive (is {v[name]:g})", where)
    if "semiMajorAxis" in v and "semiMinorAxis" in v and v["semiMajorAxis"] < v["semiMinorAxis"]:
        f.error("G05", f"semiMajorAxis {v['semiMajorAxis']:g} is smaller than semiMinorAxis {v['semiMinorAxis']:g}", where)
    if "innerRadius" in v:
        if v["innerRadius"] < 0:
            f.error("G05", f"innerRadius must not be negative (is {v['innerRadius']:g})", where)
        if "outerRadius" in v and v["innerRadius"] >= v["outerRadius"]:
            f.error("G05", f"innerRadius {v['innerRadius']:g} is not smaller than outerRadius {v['outerRadius']:g}", where)
    if "startAngle" in v and not 0 <= v["startAngle"] < 360:
        f.error("G05", f"startAngle {v['startAngle']:g}° is outside [0, 360)", where)
    if "openingAngle" in v and not 0 < v["openingAngle"] <= 360:
        f.error("G05", f"openingAngle {v['openingAngle']:g}° is outside (0, 360]", where)
    if "orientation" in v and not 0 <= v["orientation"] < 360:
        f.error("G05", f"orientation {v['orientation']:g}° is outside [0, 360)", where)
