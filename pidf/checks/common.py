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


_display_names: dict[str, str] = {}


def _display(tag: str) -> str:
    name = _display_names.get(tag)
    if name is None:
        if tag[:1] != "{":
            name = tag
        else:
            uri, _, local = tag[1:].partition("}")
            prefix = _PREFIX_OF.get(uri)
            name = (prefix + local) if prefix is not None else "{" + uri + "}" + local
        if len(_display_names) < 512:  # hostile documents must not grow it without bound
            _display_names[tag] = name
    return name


def name_of(el: etree._Element) -> str:
    """Prefixed name for messages: ``gp:geopriv``, ``tuple``, ``{urn:x}foo``."""
    tag = el.tag
    return _display(tag) if isinstance(tag, str) else "#comment"


def path_of(el: etree._Element) -> str:
    """A short XPath-like location for a finding: ``/presence/tuple[@id='0']/status``."""
    steps = []
    for node in (el, *el.iterancestors()):
        ident = node.get("id")
        name = name_of(node)
        steps.append(name if ident is None else f"{name}[@id='{ident}']")
    return "/" + "/".join(reversed(steps))


class At:
    """A finding location computed only if a finding is actually added: building
    the path costs more than most checks, and clean documents need none."""

    __slots__ = ("el",)

    def __init__(self, el: etree._Element) -> None:
        self.el = el

    def __str__(self) -> str:
        return path_of(self.el)
