"""PIDF / data-model structure: P03-P09 and the RFC 5491 §3 usage rules (P17)."""

from __future__ import annotations

import re
from collections import Counter

from lxml import etree

from .. import namespaces as ns
from ..extract import elements, local, location_chunks, namespace
from ..model import PidfDocument
from .common import At, CheckContext, name_of

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
# xs:NCName: starts with a letter or "_", no colon (XML Namespaces §3).
_NCNAME = re.compile(r"^[^\W\d][\w.\-]*$")
_ENTITY_SCHEMES = frozenset({"pres", "sip", "sips", "tel"})


def check_root(root: etree._Element, ctx: CheckContext) -> None:
    f = ctx.findings
    # P03: RFC 3863 §4.1.1
    if root.tag != ns.PRESENCE:
        uri = namespace(root.tag)
        if local(root.tag) == "presence" and uri.strip().rstrip(":") == ns.PIDF:
            f.error("P03", f"presence is in namespace {uri!r}; it must be exactly {ns.PIDF!r} (read anyway)", "/presence")
        else:
            f.error("P03", f"root element is {name_of(root)}, not presence in {ns.PIDF!r}", "/" + name_of(root))
            return
    # P04: RFC 3863 §4.1.1, §4.4
    entity = root.get("entity")
    if entity is None:
        f.error("P04", "presence has no entity attribute (required)", "/presence")
    elif not _URI.match(entity.strip()):
        f.error("P04", f"presence/@entity {entity!r} is not a URI", "/presence")
    elif entity.split(":", 1)[0].lower() not in _ENTITY_SCHEMES:
        f.warn("P04", f"presence/@entity {entity!r} uses an unexpected scheme (pres:, sip:, sips: or tel:)", "/presence")


def check_ids(root: etree._Element, ctx: CheckContext) -> None:
    """P05 for tuples; @id of device/person is xs:ID too, so uniqueness spans all three."""
    f = ctx.findings
    tuple_tag = "{%s}tuple" % ctx.pidf_ns
    seen: Counter[str] = Counter()
    for el in elements(root):
        if el.tag not in (tuple_tag, ns.DEVICE, ns.PERSON):
            continue
        ident = el.get("id")
        where = At(el)
        if ident is None:
            check = "P05" if el.tag == tuple_tag else "P07"
            f.error(check, f"{name_of(el)} has no id attribute (required xs:ID)", where)
            continue
        seen[ident] += 1
        if seen[ident] == 2:
            f.error("P05", f"id {ident!r} is used more than once (xs:ID must be unique in the document)", where)
        if not _NCNAME.match(ident):
            # Lync sends tuple id="0": an NCName cannot start with a digit (RFC 3863 §4.4).
            f.lenient("P05", f"id {ident!r} is not a valid xs:ID (NCName cannot start with a digit or contain ':')", where)


def _check_order(ranks: list[tuple[int, etree._Element]], check: str, what: str, ctx: CheckContext, lenient: bool = False) -> None:
    last = -1
    for rank, el in ranks:
        if rank < last:
            msg = f"{name_of(el)} is out of order in {what}"
            (ctx.findings.lenient if lenient else ctx.findings.error)(check, msg, At(el))
            return
        last = rank


def check_tuple(el: etree._Element, ctx: CheckContext) -> None:
    """P06: RFC 3863 §4.1.2-4.1.4, children status, ##other*, contact?, note*, timestamp?."""
    f = ctx.findings
    pidf = ctx.pidf_ns
    order = {"status": 0, "contact": 2, "note": 3, "timestamp": 4}
    ranks: list[tuple[int, etree._Element]] = []
    counts: Counter[str] = Counter()
    status = None
    for child in elements(el):
        if namespace(child.tag) == pidf:
            name = local(child.tag)
            if name not in order:
                f.error("P06", f"unknown PIDF element {name!r} in tuple", At(child))
                continue
            counts[name] += 1
            ranks.append((order[name], child))
            if name == "status" and status is None:
                status = child
        else:
            ranks.append((1, child))
    where = At(el)
    if counts["status"] == 0:
        f.error("P06", "tuple has no status element (exactly one required)", where)
    elif counts["status"] > 1:
        f.error("P06", "tuple has more than one status element", where)
    for name in ("contact", "timestamp"):
        if counts[name] > 1:
            f.error("P06", f"tuple has more than one {name} element", where)
    _check_order(ranks, "P06", "tuple (status, extensions, contact, note, timestamp)", ctx)
    if status is not None:
        children = list(elements(status))
        if not children:
            f.error("P06", "status is empty (RFC 3863 §4.1.3: at least one child)", At(status))
        for i, child in enumerate(children):
            if child.tag == "{%s}basic" % pidf:
                value = (child.text or "").strip()
                if value not in ("open", "closed"):
                    f.error("P06", f"basic is {value!r}; must be 'open' or 'closed'", At(child))
                if i != 0:
                    f.error("P06", "basic must be the first child of status", At(child))


def check_data_model_element(el: etree._Element, ctx: CheckContext) -> None:
    """P07: RFC 4479 §5.1.2 device (ext*, deviceID, note*, timestamp?) and person (no deviceID)."""
    f = ctx.findings
    is_device = el.tag == ns.DEVICE
    order = {"deviceID": 1, "note": 2, "timestamp": 3} if is_device else {"note": 2, "timestamp": 3}
    ranks: list[tuple[int, etree._Element]] = []
    counts: Counter[str] = Counter()
    for child in elements(el):
        if namespace(child.tag) == ns.DM:
            name = local(child.tag)
            counts[name] += 1
            if name == "deviceID" and not is_device:
                f.error("P07", "dm:person must not contain dm:deviceID", At(child))
                continue
            if name not in order:
                f.error("P07", f"unknown data-model element dm:{name} in {name_of(el)}", At(child))
                continue
            ranks.append((order[name], child))
            if name == "deviceID":
                value = (child.text or "").strip()
                if not _URI.match(value):
                    f.error("P07", f"dm:deviceID {value!r} is not a URI (e.g. mac:0011223344ab)", At(child))
        else:
            ranks.append((0, child))
    where = At(el)
    if is_device and counts["deviceID"] != 1:
        f.error("P07", f"dm:device has {counts['deviceID']} dm:deviceID elements (exactly one required)", where)
    if counts["timestamp"] > 1:
        f.error("P07", f"{name_of(el)} has more than one dm:timestamp", where)
    what = "dm:device (extensions, deviceID, note, timestamp)" if is_device else "dm:person (extensions, note, timestamp)"
    _check_order(ranks, "P07", what, ctx)


def check_stray_root_children(root: etree._Element, ctx: CheckContext) -> None:
    """Data-model-namespace children of presence other than device/person (e.g. dm:tuple)."""
    for el in elements(root):
        if namespace(el.tag) == ns.DM and el.tag not in (ns.DEVICE, ns.PERSON):
            ctx.findings.error("P07", f"{name_of(el)} is not a data-model element (device or person)", At(el))


def _parents(el: etree._Element) -> str:
    parent = el.getparent()
    grand = parent.getparent() if parent is not None else None
    names = [name_of(e) for e in (grand, parent) if e is not None]
    return "/".join(names) or "nothing"


def check_geopriv_placement(root: etree._Element, ctx: CheckContext) -> list[etree._Element]:
    """P08: gp:geopriv under tuple/status or directly under dm:device / dm:person.
    Returns every geopriv found (misplaced ones included) for the later checks."""
    f = ctx.findings
    status_tag, tuple_tag = "{%s}status" % ctx.pidf_ns, "{%s}tuple" % ctx.pidf_ns
    found = []
    for el in root.iter("{*}geopriv"):
        if el.tag != ns.GEOPRIV:
            f.error("P08", f"geopriv in namespace {namespace(el.tag)!r} instead of {ns.GP!r}; not read", At(el))
            continue
        found.append(el)
        parent = el.getparent()
        grand = parent.getparent() if parent is not None else None
        if parent is not None and parent.tag in (ns.DEVICE, ns.PERSON):
            continue
        if parent is not None and parent.tag == status_tag and grand is not None and grand.tag == tuple_tag:
            continue
        f.error(
            "P08",
            f"gp:geopriv under {_parents(el)}: it belongs in "
            "tuple/status or directly in dm:device / dm:person (RFC 4119 §2.2, RFC 4479)",
            At(el),
        )
    return found


def check_geopriv_children(geopriv: etree._Element, ctx: CheckContext) -> None:
    """P09: RFC 4119 §2.2.5 sequence location-info, usage-rules, method?, provided-by?, ##other*."""
    f = ctx.findings
    order = {"location-info": 0, "usage-rules": 1, "method": 2, "provided-by": 3}
    ranks: list[tuple[int, etree._Element]] = []
    counts: Counter[str] = Counter()
    for child in elements(geopriv):
        if namespace(child.tag) == ns.GP:
            name = local(child.tag)
            if name not in order:
                f.error("P09", f"unknown geopriv element gp:{name}", At(child))
                continue
            counts[name] += 1
            ranks.append((order[name], child))
        else:
            ranks.append((4, child))
    where = At(geopriv)
    for name in ("location-info", "usage-rules"):
        if counts[name] == 0:
            f.error("P09", f"gp:geopriv has no gp:{name} (exactly one required)", where)
        elif counts[name] > 1:
            f.error("P09", f"gp:geopriv has {counts[name]} gp:{name} elements (exactly one allowed)", where)
    for name in ("method", "provided-by"):
        if counts[name] > 1:
            f.error("P09", f"gp:geopriv has {counts[name]} gp:{name} elements (at most one)", where)
    _check_order(ranks, "P09", "gp:geopriv (location-info, usage-rules, method, provided-by)", ctx)


def _place_key(doc: PidfDocument, i: int):
    loc = doc.locations[i]
    return (
        tuple(tuple((fl.name, fl.value) for fl in c.fields) for c in loc.civic),
        tuple((s.kind, tuple(s.positions), tuple((m.name, m.value) for m in s.measures)) for s in loc.shapes),
    )


def check_usage_rules_5491(root: etree._Element, geoprivs: list[etree._Element], doc: PidfDocument, ctx: CheckContext) -> None:
    """P17: RFC 5491 §3 rules 2, 3, 4/6 and the rule-8 selection."""
    f = ctx.findings
    # Rule 2: only one geopriv per tuple/device/person.
    per_carrier: Counter = Counter()
    for g in geoprivs:
        carrier = g.getparent()
        if carrier is not None and carrier.tag == "{%s}status" % ctx.pidf_ns:
            carrier = carrier.getparent()
        per_carrier[carrier] += 1
    for carrier, count in per_carrier.items():
        if count > 1 and carrier is not None:
            f.warn("P17", f"{name_of(carrier)} carries {count} gp:geopriv elements; RFC 5491 rule 2 allows one", At(carrier))
    # Rule 3: several geoprivs of the same element type only if they describe the same place.
    by_type: dict[str, list[int]] = {}
    for i, loc in enumerate(doc.locations):
        if loc.has_location:
            by_type.setdefault(loc.carrier, []).append(i)
    for carrier, idx in by_type.items():
        if len(idx) > 1 and len({_place_key(doc, i) for i in idx}) > 1:
            f.warn(
                "P17",
                f"{len(idx)} {carrier} elements carry different locations; RFC 5491 rule 3 allows several "
                "only for the same place (rule 8 uses the first)",
            )
    # Rules 4 and 6: one chunk per location-info, except a compound (geodetic + civic) of one place.
    for g in geoprivs:
        for info in (c for c in elements(g) if c.tag == ns.LOCATION_INFO):
            chunks = location_chunks(info)
            kinds = Counter("civic" if local(c.tag) == "civicAddress" else "geo" for c in chunks)
            langs = {c.get(ns.XML_LANG) for c in chunks if local(c.tag) == "civicAddress"}
            if kinds["geo"] > 1 or (kinds["civic"] > 1 and len(langs) < kinds["civic"]):
                f.warn(
                    "P17",
                    "location-info holds several location chunks of one kind; RFC 5491 rules 4 and 6 allow "
                    "only a compound of one place (geodetic area, then civic detail)",
                    At(info),
                )
    # Rule 8: say which location was chosen when there was a choice.
    with_location = [loc for loc in doc.locations if loc.has_location]
    if len(with_location) > 1 and doc.location is not None:
        loc = doc.location
        ident = f" {loc.carrier_id!r}" if loc.carrier_id else ""
        f.info("P17", f"{len(with_location)} locations; RFC 5491 rule 8 selects {loc.carrier}{ident}")
