"""Microsoft E911 PIDF extension checks M01-M02 ([MS-SIPRE] §2.2.23, §9)."""

from __future__ import annotations

import re

from lxml import etree

from .. import namespaces as ns
from ..extract import elements, local, namespace
from .common import At, CheckContext, name_of

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_MODES = frozenset({"oneway", "twoway"})


def check_ms_extensions(root: etree._Element, ctx: CheckContext) -> None:
    for el in root.iter("{*}msftE911PidfExtn"):
        check_ms_extension(el, ctx)


def check_ms_extension(el: etree._Element, ctx: CheckContext) -> None:
    f = ctx.findings
    where = At(el)
    uri = namespace(el.tag)
    # M01: §9 schema, namespace with "LIS" upper case; the tag ID uses "Lis".
    if uri != ns.MS_EXT:
        hint = " (wrong capitalisation)" if uri.lower() == ns.MS_EXT.lower() else ""
        f.warn("M01", f"msftE911PidfExtn is in namespace {uri!r}{hint}; expected {ns.MS_EXT!r}", where)
    children = list(elements(el))
    names = [local(c.tag) for c in children]
    for required in ("ConferenceUri", "ConferenceMode"):
        if required not in names:
            f.warn("M01", f"msftE911PidfExtn has no {required} (schema minOccurs=1)", where)
    ranks = [{"ConferenceUri": 0, "ConferenceMode": 1}.get(n, 2) for n in names]
    if ranks != sorted(ranks):
        f.warn("M01", "msftE911PidfExtn children out of order (ConferenceUri, ConferenceMode, then extensions)", where)
    for child in children:
        name, child_ns = local(child.tag), namespace(child.tag)
        cwhere = At(child)
        value = (child.text or "").strip()
        if name in ("ConferenceUri", "ConferenceMode"):
            if child_ns != ns.MS_EXT:
                f.warn("M01", f"{name} must be in {ns.MS_EXT!r} (elementFormDefault=qualified)", cwhere)
            if name == "ConferenceUri" and value and not _URI.match(value):
                f.warn("M01", f"ConferenceUri {value!r} is not a URI", cwhere)
            if name == "ConferenceMode" and value not in _MODES:
                f.warn("M01", f"ConferenceMode {value!r} is not 'oneway' or 'twoway'", cwhere)
        elif name == "LocationPolicyTagID" and child_ns != ns.MS_TAG:
            f.warn("M01", f"LocationPolicyTagID is in {child_ns!r}; expected {ns.MS_TAG!r} (note 'Lis')", cwhere)
    # M02: §2.2.23 places it inside tuple/status after gp:geopriv; elsewhere it is ignorable.
    parent = el.getparent()
    status_tag = "{%s}status" % ctx.pidf_ns
    if parent is None or parent.tag != status_tag:
        f.info("M02", f"msftE911PidfExtn sits under {name_of(parent) if parent is not None else 'nothing'}, not tuple/status", where)
    else:
        before = []
        for sib in elements(parent):
            if sib is el:
                break
            before.append(sib.tag)
        if ns.GEOPRIV not in before:
            f.info("M02", "msftE911PidfExtn precedes gp:geopriv inside status ([MS-SIPRE] puts it after)", where)
