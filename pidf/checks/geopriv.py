"""Inside gp:geopriv: location-info (P10), usage-rules (P11-P13), method (P14),
provided-by (P15), and the document timestamps (P16)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from lxml import etree

from .. import namespaces as ns
from ..extract import elements, local, location_chunks, namespace
from ..registries import METHOD_BY_FOLDED, METHOD_EXAMPLE_TOKENS, METHOD_TOKENS
from ..timeutil import read_datetime
from .common import At, CLOCK_SKEW, DEFAULT_RETENTION, STALE_AFTER, CheckContext, name_of

_MAX_UTC_OFFSET = timedelta(hours=14)
_BOOLEAN = frozenset({"true", "false", "1", "0"})
_PROVIDED_BY_NAMESPACES = (ns.DATA_PROVIDER, ns.ECD)


def check_location_info(info: etree._Element, ctx: CheckContext) -> None:
    """P10: RFC 4119 §2.2.1, one or more chunks of location information."""
    children = list(elements(info))
    if not children:
        ctx.findings.error("P10", "gp:location-info is empty: no location", At(info))
    elif not location_chunks(info):
        names = ", ".join(sorted({name_of(c) for c in children}))
        ctx.findings.error("P10", f"gp:location-info holds no civicAddress or GeoShape element (found {names})", At(info))


def check_usage_rules(rules: etree._Element, ctx: CheckContext, timestamp: datetime | None) -> None:
    """P11 (names, namespace, order), P12 (retransmission-allowed), P13 (retention-expiry)."""
    f = ctx.findings
    counts: Counter[str] = Counter()
    last = -1
    retransmission = None
    expiry = None
    for child in elements(rules):
        name, uri = local(child.tag), namespace(child.tag)
        canonical = ns.USAGE_RULE_PROSE_NAMES.get(name, name)
        where = At(child)
        if name in ns.USAGE_RULE_PROSE_NAMES:
            f.lenient("P11", f"{name_of(child)} is the RFC 4119 prose name; the schema name is {canonical}", where)
        if canonical in ns.USAGE_RULE_ORDER:
            if uri != ns.GBP:
                f.lenient(
                    "P11",
                    f"{name_of(child)} must be in the basicPolicy namespace {ns.GBP!r} "
                    "(the schema is elementFormDefault=qualified; RFC 4119 examples get this wrong)",
                    where,
                )
            counts[canonical] += 1
            if counts[canonical] == 2:
                f.error("P11", f"usage-rules has more than one {canonical}", where)
            rank = ns.USAGE_RULE_ORDER[canonical]
            if rank < last:
                f.lenient("P11", f"{name_of(child)} is out of order in usage-rules", where)
            last = max(last, rank)
            if canonical == "retransmission-allowed" and retransmission is None:
                retransmission = child
            elif canonical == "retention-expiry" and expiry is None:
                expiry = child
        elif uri == ns.GBP or uri == ns.GP:
            f.error("P11", f"unknown usage-rules element {name_of(child)}", where)
    # P12: xs:boolean, default false ("no"). RFC 4119 prose and many examples write yes/no.
    if retransmission is None:
        f.warn("P12", "no retransmission-allowed: read as false (RFC 4119 §2.2.2; generators MUST include it)", At(rules))
    else:
        raw = " ".join((retransmission.text or "").split())
        if raw.lower() in ("yes", "no"):
            f.warn("P12", f"retransmission-allowed is {raw!r}; xs:boolean is true/false/1/0 (read as {raw.lower() == 'yes'})", At(retransmission))
        elif raw not in _BOOLEAN:
            f.warn("P12", f"retransmission-allowed {raw!r} is not a boolean; read as false", At(retransmission))
    # P13: retention-expiry is an xs:dateTime; once past, the recipient MUST discard the LO.
    if expiry is not None:
        value, problems = read_datetime(expiry.text)
        for problem in problems:
            f.warn("P13", f"retention-expiry: {problem}", At(expiry))
        if value is not None:
            f.timed(RetentionExpiry(value), ctx.now, At(expiry))
    elif timestamp is not None:
        f.timed(DefaultRetention(timestamp), ctx.now, At(rules))


def check_method(geopriv: etree._Element, ctx: CheckContext) -> None:
    """P14: RFC 4119 §2.2.3, a token from the IANA Method Tokens registry."""
    f = ctx.findings
    methods = [c for c in elements(geopriv) if c.tag == ns.METHOD]
    if not methods:
        f.info("P14", "no gp:method (optional; a manually entered Lync location MUST say Manual)", At(geopriv))
        return
    for el in methods:
        value = (el.text or "").strip()
        where = At(el)
        if value in METHOD_TOKENS:
            continue
        folded = value.lower()
        if folded in METHOD_BY_FOLDED:
            f.warn("P14", f"method {value!r}: the registered spelling is {METHOD_BY_FOLDED[folded]!r}", where)
        elif folded in METHOD_EXAMPLE_TOKENS:
            f.info("P14", f"method {value!r} appears in RFC 5491 examples but is not a confirmed IANA token", where)
        else:
            f.warn("P14", f"method {value!r} is not in the IANA Method Tokens registry", where)


def check_provided_by(geopriv: etree._Element, ctx: CheckContext) -> None:
    """P15: RFC 4119 §2.2.4, children from registered namespaces (NENA dataProvider, RFC 7852)."""
    for el in (c for c in elements(geopriv) if c.tag == ns.PROVIDED_BY):
        children = list(elements(el))
        if not children:
            ctx.findings.warn("P15", "gp:provided-by is empty (at least one child expected)", At(el))
        for child in children:
            uri = namespace(child.tag)
            if not any(uri == p or uri.startswith(p + ":") for p in _PROVIDED_BY_NAMESPACES):
                ctx.findings.warn("P15", f"provided-by child {name_of(child)} is not from a registered namespace", At(child))


def check_timestamp(el: etree._Element, ctx: CheckContext) -> datetime | None:
    """P16: RFC 3863 §4.1.7 / RFC 4479, RFC 3339 date-time; not in the future; not stale."""
    f = ctx.findings
    where = At(el)
    value, problems = read_datetime(el.text)
    for problem in problems:
        f.warn("P16", f"timestamp {(el.text or '').strip()!r}: {problem}", where)
    if value is None:
        return None
    no_offset = any("offset" in p for p in problems)
    # Without an offset the value may be local time anywhere on earth: allow ±14 h.
    skew = CLOCK_SKEW + (_MAX_UTC_OFFSET if no_offset else timedelta(0))
    f.timed(TimestampAge(value, skew), ctx.now, where)
    return value


# The checks that read the clock. Each captures what it needs from the document, so a
# memoised validation (pidf.memo) re-evaluates exactly these for every call's ``now``.


class RetentionExpiry:
    """P13: RFC 4119 §2.2.2, once retention-expiry is past the recipient MUST discard the LO."""

    __slots__ = ("value",)

    def __init__(self, value: datetime) -> None:
        self.value = value

    def evaluate(self, now: datetime) -> tuple[tuple[str, str, str], ...]:
        if self.value < now:
            return (("P13", "W", f"retention-expiry {self.value.isoformat()} is already past: the recipient MUST "
                     "discard the location (RFC 4119 §2.2.2); an emergency call is still routed with it"),)
        return ()


class DefaultRetention:
    """P13: no retention-expiry, so the default is the timestamp + 24 h (RFC 4119 §2.2.2)."""

    __slots__ = ("timestamp",)

    def __init__(self, timestamp: datetime) -> None:
        self.timestamp = timestamp

    def evaluate(self, now: datetime) -> tuple[tuple[str, str, str], ...]:
        if self.timestamp + DEFAULT_RETENTION < now:
            return (("P13", "W", "no retention-expiry and the timestamp is over 24 h old: the default retention "
                     "(timestamp + 24 h, RFC 4119 §2.2.2) has expired"),)
        return ()


class TimestampAge:
    """P16: a timestamp neither in the future (beyond ``skew``) nor older than STALE_AFTER."""

    __slots__ = ("value", "skew")

    def __init__(self, value: datetime, skew: timedelta) -> None:
        self.value, self.skew = value, skew

    def evaluate(self, now: datetime) -> tuple[tuple[str, str, str], ...]:
        value = self.value
        if value > now + self.skew:
            return (("P16", "W", f"timestamp {value.isoformat()} is in the future"),)
        if value < now - STALE_AFTER:
            age = now - value
            return (("P16", "W", f"timestamp is stale: {age.days} days {age.seconds // 3600} h old"),)
        return ()
