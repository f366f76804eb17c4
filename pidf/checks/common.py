"""Shared plumbing for the document checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from .. import namespaces as ns
from ..findings import Findings

_PREFIX_OF = {
    ns.PIDF: "",
    ns.DM: "dm:",
    ns.GP: "gp:",
    ns.GBP: "gbp:",
    ns.CA: "ca:",
    ns.CAE: "cae:",
    ns.GML: "gml:",
    ns.GML30: "gml:",
    ns.GS: "gs:",
    ns.MS_EXT: "ms:",
}

# A phone's clock may be a little ahead; beyond this a timestamp is "in the future" (P16).
CLOCK_SKEW = timedelta(minutes=5)
# Older than this, a location timestamp is reported as stale (P16).
STALE_AFTER = timedelta(hours=24)
# RFC 4119 §2.2.2 default retention: 24 h after the timestamp (or receipt).
DEFAULT_RETENTION = timedelta(hours=24)


@dataclass(slots=True)
class CheckContext:
    findings: Findings
    now: datetime
    pidf_ns: str = ns.PIDF


def name_of(el: etree._Element) -> str:
    """Prefixed name for messages: ``gp:geopriv``, ``tuple``, ``{urn:x}foo``."""
    tag = el.tag
    if not isinstance(tag, str):
        return "#comment"
    if tag[:1] != "{":
        return tag
    uri, _, local = tag[1:].partition("}")
    prefix = _PREFIX_OF.get(uri)
    return (prefix + local) if prefix is not None else "{" + uri + "}" + local


def path_of(el: etree._Element) -> str:
    """A short XPath-like location for a finding: ``/presence/tuple[@id='0']/status``."""
    steps = []
    node = el
    while node is not None:
        step = name_of(node)
        ident = node.get("id")
        if ident is not None:
            step += f"[@id='{ident}']"
        steps.append(step)
        node = node.getparent()
    return "/" + "/".join(reversed(steps))
