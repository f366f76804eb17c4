"""Validate one PIDF-LO document: parse once, read the model, run the P/C/G/M checks.

Nothing here raises on bad input: every problem is a :class:`~pidf.findings.Finding`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from lxml import etree

from . import namespaces as ns
from .checks import civic, geodetic, geopriv, msext, structure
from .checks.common import CheckContext
from .extract import elements, is_civic, location_chunks, pidf_namespace_of, read_document
from .findings import Findings
from .model import PidfDocument
from .parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE, parse_xml
from .report import Report, decide_verdict


def utc_now(now: datetime | None) -> datetime:
    """``now`` as an aware datetime; the clock is read only when the caller gave none."""
    if now is None:
        return datetime.now(timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def _carrier_timestamps(root: etree._Element, ctx: CheckContext) -> dict[etree._Element, datetime | None]:
    """P16 for tuple/timestamp and dm:timestamp; returns each carrier's parsed time."""
    tuple_tag, ts_tag = "{%s}tuple" % ctx.pidf_ns, "{%s}timestamp" % ctx.pidf_ns
    times: dict[etree._Element, datetime | None] = {}
    for carrier in elements(root):
        if carrier.tag == tuple_tag:
            wanted = ts_tag
        elif carrier.tag in (ns.DEVICE, ns.PERSON):
            wanted = ns.DM_TIMESTAMP
        else:
            continue
        times[carrier] = None
        for child in elements(carrier):
            if child.tag == wanted:
                value = geopriv.check_timestamp(child, ctx)
                if times[carrier] is None:
                    times[carrier] = value
    return times


def _carrier_of(el: etree._Element, ctx: CheckContext) -> etree._Element | None:
    parent = el.getparent()
    if parent is not None and parent.tag == "{%s}status" % ctx.pidf_ns:
        return parent.getparent()
    return parent


def check_tree(root: etree._Element, doc: PidfDocument, ctx: CheckContext) -> None:
    """All document-level checks on an already parsed tree."""
    structure.check_root(root, ctx)
    if pidf_namespace_of(root) is None:
        return  # not a presence document: nothing below applies
    structure.check_ids(root, ctx)
    structure.check_stray_root_children(root, ctx)
    tuple_tag = "{%s}tuple" % ctx.pidf_ns
    for child in elements(root):
        if child.tag == tuple_tag:
            structure.check_tuple(child, ctx)
        elif child.tag in (ns.DEVICE, ns.PERSON):
            structure.check_data_model_element(child, ctx)
    times = _carrier_timestamps(root, ctx)
    geoprivs = structure.check_geopriv_placement(root, ctx)
    for gp in geoprivs:
        structure.check_geopriv_children(gp, ctx)
        usage_seen = False
        for child in elements(gp):
            if child.tag == ns.LOCATION_INFO:
                geopriv.check_location_info(child, ctx)
                for chunk in location_chunks(child):
                    if is_civic(chunk):
                        civic.check_civic(chunk, ctx)
                geodetic.check_location_info(child, ctx)
            elif child.tag == ns.USAGE_RULES and not usage_seen:
                usage_seen = True
                geopriv.check_usage_rules(child, ctx, times.get(_carrier_of(gp, ctx)))
        geopriv.check_method(gp, ctx)
        geopriv.check_provided_by(gp, ctx)
    structure.check_usage_rules_5491(root, geoprivs, doc, ctx)
    msext.check_ms_extensions(root, ctx)


def inspect_document(
    data: bytes,
    findings: Findings,
    *,
    charset: str | None = None,
    now: datetime | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> PidfDocument | None:
    """Parse, read and check one document, adding findings; None if it could not be parsed."""
    parsed = parse_xml(data, findings, charset=charset, max_size=max_size, max_depth=max_depth)
    if parsed.root is None:
        return None
    root = parsed.root
    doc = read_document(root)
    ctx = CheckContext(findings, utc_now(now), pidf_namespace_of(root) or ns.PIDF)
    check_tree(root, doc, ctx)
    return doc


def validate_document(
    data: bytes,
    *,
    charset: str | None = None,
    now: datetime | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    strict: bool = False,
) -> Report:
    """Validate a bare PIDF-LO document (the body of an application/pidf+xml part).

    ``charset`` is the MIME charset parameter if known (it wins over the XML
    declaration); ``strict`` reports the tolerated schema violations (Lync
    ``tuple id="0"``, prose usage-rule names, civic order) as E instead of W.
    """
    findings = Findings(strict=strict)
    try:
        doc = inspect_document(data, findings, charset=charset, now=now, max_size=max_size, max_depth=max_depth)
    except Exception as exc:  # noqa: BLE001 - a report for any bytes, never a crash
        findings.error("P01", f"internal error while validating: {type(exc).__name__}: {exc}")
        doc = None
    location = doc.location if doc is not None else None
    return Report(
        verdict=decide_verdict(location, findings),
        findings=list(findings),
        location=location,
        document=doc,
    )


__all__ = ["check_tree", "inspect_document", "utc_now", "validate_document"]
