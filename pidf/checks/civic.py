"""Civic address checks C01-C10 (RFC 5139, RFC 6848, Lync LIS limits, ELIN rules)."""

from __future__ import annotations

import re
from lxml import etree

from .. import namespaces as ns
from ..extract import elements, namespace
from ..model import MAX_ELINS
from ..registries import COUNTRY_HINTS, ISO3166_ALPHA2, SUBDIVISIONS, US_STATE_NAMES
from .common import At, CheckContext

# RFC 5139 §4 xs:sequence, in order.
CIVIC_ORDER = (
    "country A1 A2 A3 A4 A5 A6 PRM PRD RD STS POD POM RDSEC RDBR RDSUBBR HNO HNS LMK LOC FLR NAM PC "
    "BLD UNIT ROOM SEAT PLC PCN POBOX ADDCODE"
).split()
CIVIC_RANK = {name: i for i, name in enumerate(CIVIC_ORDER)}
# RFC 6848 extension elements (cae namespace).
CIVIC_EXTENSIONS = frozenset({"PN", "MP", "STP", "HNP"})
# Lync Set-CsLisLocation limits (C09).
LYNC_LIMITS = {"LOC": 20, "NAM": 60, "A3": 64, "HNO": 10, "HNS": 5, "country": 2}
_SUBDIVISION = re.compile(r"^[A-Z0-9]{1,3}$")
_NUMERIC = re.compile(r"^\d+$")
_NANP = re.compile(r"^(?:\+?1)?\d{10}$")


def check_civic(el: etree._Element, ctx: CheckContext) -> None:
    f = ctx.findings
    where = At(el)
    uri = namespace(el.tag)
    # C01: RFC 5139 §4 namespace; RFC 4119 examples use civicLoc and a leading space.
    if uri == ns.CIVIC_LOC:
        f.error("C01", f"civicAddress uses the obsolete RFC 4119 namespace {uri!r}; use {ns.CA!r}", where)
    elif uri != ns.CA:
        f.error("C01", f"civicAddress namespace {uri!r} has stray whitespace; must be exactly {ns.CA!r}", where)

    values: dict[str, str] = {}
    langs: set[str] = set()
    if el.get(ns.XML_LANG):
        langs.add(el.get(ns.XML_LANG))
    counts: dict[str, int] = {}
    last_rank = -1
    seen_extension = False
    order_reported = False
    for child in elements(el):
        tag = child.tag
        if tag[:1] == "{":
            child_ns, _, name = tag[1:].partition("}")
        else:
            child_ns, name = "", tag
        cwhere = At(child)
        text = child.text
        value = " ".join(text.split()) if text else ""
        lang = child.get(ns.XML_LANG)
        if lang:
            langs.add(lang)
        # C07: xs:token elements with no content carry nothing (Asterisk suppresses them).
        if not value and not len(child):
            f.warn("C07", f"civic element {name} is empty", cwhere)
        if child_ns == uri:
            if name not in CIVIC_RANK:
                f.error("C02", f"unknown civic element {name!r} in the civicAddr namespace", cwhere)
                continue
            counts[name] = counts.get(name, 0) + 1
            if counts[name] == 2:
                f.error("C02", f"civic element {name} appears more than once (each is 0..1)", cwhere)
            rank = CIVIC_RANK[name]
            if seen_extension and not order_reported:
                f.lenient("C02", f"{name} follows an extension element; extensions come after the base elements (RFC 6848 §2)", cwhere)
                order_reported = True
            elif rank < last_rank and not order_reported:
                f.lenient("C02", f"{name} is out of RFC 5139 order (after {CIVIC_ORDER[last_rank]})", cwhere)
                order_reported = True
            last_rank = max(last_rank, rank)
            values.setdefault(name, value)
            # C06: RFC 5139 §3.5, no xml:lang on country or PLC.
            if lang and name in ("country", "PLC"):
                f.warn("C06", f"xml:lang is not allowed on {name}", cwhere)
        elif not child_ns:
            f.error("C02", f"unknown non-namespaced element {name!r} in civicAddress", cwhere)
        else:
            seen_extension = True
            if child_ns == ns.CAE and name not in CIVIC_EXTENSIONS:
                f.warn("C02", f"{name!r} is not an RFC 6848 extension element (PN, MP, STP, HNP)", cwhere)
            elif child_ns == ns.CAE:
                values.setdefault("cae:" + name, value)
    if len(langs) > 1:
        f.warn("C06", f"several languages in one civicAddress ({', '.join(sorted(langs))}); use one civicAddress per language", where)

    _check_country(values.get("country"), where, ctx)
    _check_a1(values.get("country"), values.get("A1"), where, ctx)
    # C05: RFC 5139 §3.2, A6 is no longer for street names.
    if values.get("A6") and not values.get("RD"):
        f.warn("C05", f"street name in A6 ({values['A6']!r}); RFC 5139 §3.2 says use RD", where)
    _check_us_minimum(values, where, ctx)
    _check_lync_limits(values, where, ctx)
    _check_elins(values.get("NAM"), where, ctx)


def _check_country(country: str | None, where: At, ctx: CheckContext) -> None:
    """C03: RFC 5139 §3.3, ISO 3166-1 alpha-2, upper case."""
    if country is None or country == "":
        return
    f = ctx.findings
    hint = COUNTRY_HINTS.get(country.upper())
    if country in ISO3166_ALPHA2:
        return
    if hint:
        f.error("C03", f"country {country!r} is not an ISO 3166-1 alpha-2 code; did you mean {hint!r}?", where)
    elif country.upper() in ISO3166_ALPHA2:
        f.error("C03", f"country {country!r} must be upper case ({country.upper()!r})", where)
    elif re.match(r"^[A-Z]{2}$", country):
        f.error("C03", f"country {country!r} is not an assigned ISO 3166-1 code", where)
    else:
        f.error("C03", f"country {country!r} is not a two-letter ISO 3166-1 code", where)


def _check_a1(country: str | None, a1: str | None, where: At, ctx: CheckContext) -> None:
    """C04: RFC 5139 §3.4, A1 SHOULD be the ISO 3166-2 subdivision code without the country prefix."""
    if not a1:
        return
    f = ctx.findings
    cc = (country or "").upper()
    if "-" in a1 and a1.split("-", 1)[0].upper() == cc:
        f.warn("C04", f"A1 {a1!r} includes the country prefix; write {a1.split('-', 1)[1]!r}", where)
        return
    known = SUBDIVISIONS.get(cc)
    if known is not None:
        if a1 in known:
            return
        hint = US_STATE_NAMES.get(a1.upper()) if cc == "US" else None
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        f.warn("C04", f"A1 {a1!r} is not an ISO 3166-2 subdivision code of {cc}{suggestion}", where)
    elif not _SUBDIVISION.match(a1):
        f.warn("C04", f"A1 {a1!r} does not look like an ISO 3166-2 subdivision code (1-3 letters/digits)", where)


def _check_us_minimum(values: dict[str, str], where: At, ctx: CheckContext) -> None:
    """C08: what an MSAG-validated US/Canadian address needs; HNO numeric only (RFC 4119 §2.2.1)."""
    f = ctx.findings
    country = values.get("country")
    if country is None:
        f.warn("C08", "civicAddress has no country", where)
    elif country.upper() in ("US", "CA"):
        missing = [n for n in ("A1", "A3", "HNO") if not values.get(n)]
        if not (values.get("RD") or values.get("A6")):
            missing.insert(2, "RD")
        if missing:
            f.warn("C08", f"missing for MSAG routing: {', '.join(missing)}", where)
    hno = values.get("HNO")
    if hno and not _NUMERIC.match(hno):
        f.warn("C08", f"HNO {hno!r} is not purely numeric; the suffix belongs in HNS", where)


def _check_lync_limits(values: dict[str, str], where: At, ctx: CheckContext) -> None:
    """C09: a Lync LIS cannot hold longer values (Set-CsLisLocation)."""
    for name, limit in LYNC_LIMITS.items():
        value = values.get(name)
        if value and len(value) > limit:
            ctx.findings.info("C09", f"{name} is {len(value)} characters; the Lync LIS limit is {limit}", where)


def _check_elins(nam: str | None, where: At, ctx: CheckContext) -> None:
    """C10: ELINs in NAM ([AC-ELIN]): up to five, ';'-separated, hyphens ignored, 10-digit NANP."""
    if not nam:
        return
    entries = [e.strip() for e in nam.split(";") if e.strip()]
    numeric = [e.replace("-", "") for e in entries if re.match(r"^\+?[\d\-]+$", e)]
    if not numeric:
        return  # a company name, not an ELIN list
    f = ctx.findings
    used = numeric[:MAX_ELINS]
    f.info("C10", f"ELIN candidates from NAM: {', '.join(used)}", where)
    if len(numeric) > MAX_ELINS:
        f.info("C10", f"NAM lists {len(numeric)} ELINs; an ELIN gateway uses only the first {MAX_ELINS}", where)
    if len(numeric) != len(entries):
        f.info("C10", "NAM mixes ELINs with other text; only the numeric entries are used", where)
    odd = [e for e in used if not _NANP.match(e)]
    if odd:
        f.info("C10", f"not 10-digit NANP numbers: {', '.join(odd)}", where)
