"""Read a parsed PIDF-LO tree into the typed model, tolerantly.

RFC 4479 §5: "Implementations SHOULD be prepared to receive documents that are
not valid, and extract whatever information from them that they can parse."
So misplaced or misspelt-namespace elements are still read here; the checks in
``pidf.checks`` say what is wrong with them.
"""

from __future__ import annotations

from lxml import etree

from . import namespaces as ns
from .geometry import group, parse_double, parse_doubles, parse_legacy_coordinates
from .model import (
    CivicAddress,
    CivicField,
    GeodeticShape,
    Location,
    Measure,
    MsExtension,
    PidfDocument,
    ProvidedBy,
    UsageRules,
    select_location,
)
from .timeutil import read_datetime

MEASURE_NAMES = (
    "radius",
    "semiMajorAxis",
    "semiMinorAxis",
    "verticalAxis",
    "orientation",
    "innerRadius",
    "outerRadius",
    "startAngle",
    "openingAngle",
    "height",
)
_MEASURES = frozenset(MEASURE_NAMES)
_TRUE = frozenset({"true", "1", "yes"})


def elements(parent: etree._Element):
    """Child elements only (comments and processing instructions skipped), filtered in C."""
    return parent.iterchildren(etree.Element)


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag[:1] == "{" else ""


def collapse(text: str | None) -> str:
    """xs:token whitespace collapsing (RFC 5139 §3.6)."""
    return " ".join(text.split()) if text else ""


def text_of(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return "".join(el.itertext()).strip()


def pidf_namespace_of(root: etree._Element) -> str | None:
    """The namespace to read PIDF elements in: the real one, or a known misspelling
    (RFC 3863 §4.1.1 prose has a trailing colon) so the location is still read."""
    if not isinstance(root.tag, str) or local(root.tag) != "presence":
        return None
    uri = namespace(root.tag)
    if uri.strip().rstrip(":") == ns.PIDF:
        return uri
    return None


_CIVIC_TAGS = frozenset(ns.q(u, "civicAddress") for u in ns.CIVIC_NAMESPACES)
_SHAPE_TAGS = frozenset(ns.q(u, kind) for u in ns.GEO_NAMESPACES for kind in ns.SHAPE_NAMESPACES)
_GML_LOCATION_TAGS = frozenset({ns.q(ns.GML, "location"), ns.q(ns.GML30, "location")})


def is_civic(el: etree._Element) -> bool:
    tag = el.tag
    if tag in _CIVIC_TAGS:
        return True
    # Rare path: a namespace URI with stray whitespace (RFC 4119 example, C01).
    return isinstance(tag, str) and tag.endswith("}civicAddress") and namespace(tag).strip() in ns.CIVIC_NAMESPACES


def is_shape(el: etree._Element) -> bool:
    return el.tag in _SHAPE_TAGS


def is_gml_location(el: etree._Element | None) -> bool:
    return el is not None and el.tag in _GML_LOCATION_TAGS


def location_chunks(location_info: etree._Element) -> list[etree._Element]:
    """Civic and shape elements of a location-info, unwrapping deprecated gml:location."""
    chunks = []
    for child in elements(location_info):
        if is_civic(child) or is_shape(child):
            chunks.append(child)
        elif is_gml_location(child):
            chunks.extend(c for c in elements(child) if is_shape(c))
    return chunks


def read_civic(el: etree._Element) -> CivicAddress:
    civic = CivicAddress(namespace=namespace(el.tag), lang=el.get(ns.XML_LANG))
    append = civic.fields.append
    for child in elements(el):
        tag = child.tag
        uri, _, name = tag[1:].partition("}") if tag[:1] == "{" else ("", "", tag)
        text = child.text
        append(CivicField(name, " ".join(text.split()) if text else "", uri, child.get(ns.XML_LANG)))
    return civic


def shape_dimension(srs_name: str | None, kind: str, count: int) -> int:
    if srs_name and srs_name.strip().endswith("4979"):
        return 3
    if srs_name and srs_name.strip().endswith("4326"):
        return 2
    if kind in ("Sphere", "Ellipsoid", "Prism"):
        return 3
    return 3 if count % 3 == 0 and count % 2 else 2


def ring_element(shape: etree._Element) -> etree._Element | None:
    """The gml:LinearRing of a Polygon, or of the Prism's base Polygon."""
    polygon = shape
    if local(shape.tag) == "Prism":
        base = next((c for c in elements(shape) if local(c.tag) == "base"), None)
        polygon = next((c for c in elements(base) if local(c.tag) == "Polygon"), None) if base is not None else None
        if polygon is None:
            return None
    exterior = next((c for c in elements(polygon) if local(c.tag) == "exterior"), None)
    if exterior is None:
        return None
    return next((c for c in elements(exterior) if local(c.tag) == "LinearRing"), None)


def ring_positions(ring: etree._Element, dimension: int) -> list[tuple[float, ...]]:
    positions: list[tuple[float, ...]] = []
    for child in elements(ring):
        name = local(child.tag)
        if name == "posList":
            dim = child.get("srsDimension")
            values = parse_doubles(child.text) or []
            positions.extend(group(values, int(dim) if dim in ("2", "3") else dimension))
        elif name == "pos":
            values = parse_doubles(child.text)
            if values:
                positions.append(tuple(values))
        elif name == "coordinates":
            positions.extend(parse_legacy_coordinates(child.text or "") or [])
    return positions


def read_shape(el: etree._Element) -> GeodeticShape:
    kind = local(el.tag)
    shape = GeodeticShape(kind=kind, namespace=namespace(el.tag), srs_name=el.get("srsName"))
    shape.legacy = namespace(el.tag) == ns.GML30 or is_gml_location(el.getparent())
    if kind in ("Polygon", "Prism"):
        ring = ring_element(el)
        if ring is not None:
            probe = next((c for c in elements(ring)), None)
            count = len((probe.text or "").split()) if probe is not None else 0
            shape.positions = ring_positions(ring, shape_dimension(shape.srs_name, kind, count))
    for child in elements(el):
        name = local(child.tag)
        if name == "pos" and not shape.positions:
            values = parse_doubles(child.text)
            if values:
                shape.positions.append(tuple(values))
        elif name == "coordinates" and not shape.positions:
            shape.legacy = True
            shape.positions.extend(parse_legacy_coordinates(child.text or "") or [])
        elif name in _MEASURES:
            raw = (child.text or "").strip()
            shape.measures.append(Measure(name=name, raw=raw, value=parse_double(raw), uom=child.get("uom")))
    return shape


def read_usage_rules(el: etree._Element | None) -> UsageRules:
    rules = UsageRules()
    if el is None:
        return rules
    for child in elements(el):
        name = ns.USAGE_RULE_PROSE_NAMES.get(local(child.tag), local(child.tag))
        value = (child.text or "").strip()
        if name == "retransmission-allowed" and rules.retransmission_allowed_raw is None:
            rules.retransmission_allowed_raw = child.text or ""
            # xs:boolean after whitespace collapsing; yes/no tolerated (P12).
            rules.retransmission_allowed = value.lower() in _TRUE
        elif name == "retention-expiry" and rules.retention_expiry_raw is None:
            rules.retention_expiry_raw = value
            rules.retention_expiry = read_datetime(value)[0]
        elif name == "external-ruleset" and rules.external_ruleset is None:
            rules.external_ruleset = value
        elif name == "note-well" and rules.note_well is None:
            rules.note_well = value
    return rules


def read_ms_extension(el: etree._Element) -> MsExtension:
    ext = MsExtension(namespace=namespace(el.tag))
    for child in elements(el):
        name = local(child.tag)
        if name == "ConferenceUri":
            ext.conference_uri = (child.text or "").strip()
        elif name == "ConferenceMode":
            ext.conference_mode = (child.text or "").strip()
        elif name == "LocationPolicyTagID":
            ext.location_policy_tag_id = (child.text or "").strip()
    return ext


def read_geopriv(el: etree._Element, carrier: str, carrier_id: str | None) -> Location:
    loc = Location(carrier=carrier, carrier_id=carrier_id)
    usage = None
    for child in elements(el):
        name = local(child.tag)
        if name == "location-info":
            for chunk in location_chunks(child):
                if is_civic(chunk):
                    loc.civic.append(read_civic(chunk))
                else:
                    loc.shapes.append(read_shape(chunk))
        elif name == "usage-rules" and usage is None:
            usage = child
        elif name == "method" and loc.method is None:
            loc.method = (child.text or "").strip()
        elif name == "provided-by":
            for p in elements(child):
                loc.provided_by.append(
                    ProvidedBy(
                        namespace=namespace(p.tag),
                        name=local(p.tag),
                        attributes={str(k): str(v) for k, v in p.attrib.items()},
                        text=(p.text or "").strip() or None,
                    )
                )
    loc.usage_rules = read_usage_rules(usage)
    return loc


def _geoprivs_of(carrier: etree._Element) -> list[etree._Element]:
    """gp:geopriv under the carrier itself or under one of its children (status)."""
    found = []
    for child in elements(carrier):
        if child.tag == ns.GEOPRIV:
            found.append(child)
        else:
            found.extend(c for c in elements(child) if c.tag == ns.GEOPRIV)
    return found


def read_document(root: etree._Element) -> PidfDocument:
    """Build the model from a parsed tree (any root: a wrong root yields no locations)."""
    pidf = pidf_namespace_of(root)
    doc = PidfDocument(entity=root.get("entity"))
    if pidf is None:
        return doc
    tuple_tag, timestamp_tag = "{%s}tuple" % pidf, "{%s}timestamp" % pidf
    for child in elements(root):
        tag = child.tag
        if tag == tuple_tag:
            carrier, ts_tag = "tuple", timestamp_tag
        elif tag == ns.DEVICE:
            carrier, ts_tag = "device", ns.DM_TIMESTAMP
        elif tag == ns.PERSON:
            carrier, ts_tag = "person", ns.DM_TIMESTAMP
        else:
            continue
        carrier_id = child.get("id")
        ts_raw = None
        device_id = None
        for sub in elements(child):
            if sub.tag == ts_tag and ts_raw is None:
                ts_raw = (sub.text or "").strip()
            elif sub.tag == ns.DEVICE_ID and device_id is None:
                device_id = (sub.text or "").strip()
        # [MS-SIPRE] puts the extension in tuple/status; accept it anywhere in the carrier.
        ext = next(child.iter("{*}msftE911PidfExtn"), None)
        ms_ext = read_ms_extension(ext) if ext is not None else None
        for geopriv in _geoprivs_of(child):
            loc = read_geopriv(geopriv, carrier, carrier_id)
            loc.timestamp_raw = ts_raw
            loc.timestamp = read_datetime(ts_raw)[0] if ts_raw is not None else None
            loc.device_id = device_id
            loc.ms_extension = ms_ext
            doc.locations.append(loc)
    doc.selected = select_location(doc.locations)
    return doc
