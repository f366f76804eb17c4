"""Typed model of what a PIDF-LO document says (no judgement: that is validate's job).

Every class has ``to_dict()`` returning plain JSON-serialisable data; the mock
ECRC stores it with each call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import namespaces as ns


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(slots=True)
class CivicField:
    """One civic element (RFC 5139 §3 / RFC 6848), in document order."""

    name: str  # local name, e.g. "HNO" or "PN"
    value: str  # whitespace-collapsed text (the elements are xs:token)
    namespace: str  # "" when the element has no namespace
    lang: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "namespace": self.namespace, "lang": self.lang}


@dataclass(slots=True)
class CivicAddress:
    namespace: str
    fields: list[CivicField] = field(default_factory=list)
    lang: str | None = None

    def get(self, name: str) -> str | None:
        """First value of a base civic element (civicAddr or obsolete civicLoc)."""
        for f in self.fields:
            if f.name == name and f.namespace.strip() in ns.CIVIC_NAMESPACES:
                return f.value
        return None

    def extension(self, name: str, namespace: str = ns.CAE) -> str | None:
        for f in self.fields:
            if f.name == name and f.namespace == namespace:
                return f.value
        return None

    def summary(self) -> str:
        """One line a call-taker can read: street, building detail, city, state, code, country."""
        g = self.get
        street = " ".join(
            v
            for v in (
                self.extension("HNP"),
                g("HNO"),
                g("HNS"),
                g("PRM"),
                g("PRD"),
                self.extension("STP"),
                g("RD") or g("A6"),
                g("STS"),
                g("POD"),
                g("POM"),
            )
            if v
        )
        detail = ", ".join(
            f"{label} {v}" for label, v in (("Bldg", g("BLD")), ("Floor", g("FLR")), ("Unit", g("UNIT")), ("Room", g("ROOM"))) if v
        )
        parts = [g("NAM"), street, detail, g("LOC"), g("A3"), " ".join(v for v in (g("A1"), g("PC")) if v), g("country")]
        return ", ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "lang": self.lang,
            "fields": [f.to_dict() for f in self.fields],
            "summary": self.summary(),
        }


@dataclass(slots=True)
class Measure:
    """A GeoShape measure (radius, semiMajorAxis, startAngle, height...) with its unit."""

    name: str
    raw: str
    value: float | None
    uom: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "uom": self.uom, "raw": self.raw}


@dataclass(slots=True)
class GeodeticShape:
    """One RFC 5491 §5 shape. ``positions`` are (lat, lon[, alt]) tuples in document order
    (the centre for circle-like shapes, the ring for Polygon and the Prism base)."""

    kind: str  # local name: Point, Polygon, Circle, Ellipse, ArcBand, Sphere, Ellipsoid, Prism
    namespace: str
    srs_name: str | None
    positions: list[tuple[float, ...]] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    legacy: bool = False  # read from deprecated gml:location / gml:coordinates

    def measure(self, name: str) -> Measure | None:
        for m in self.measures:
            if m.name == name:
                return m
        return None

    @property
    def centre(self) -> tuple[float, ...] | None:
        return self.positions[0] if self.positions else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": self.kind,
            "namespace": self.namespace,
            "crs": self.srs_name,
            "positions": [list(p) for p in self.positions],
            "measures": {m.name: m.to_dict() for m in self.measures},
            "legacy": self.legacy,
        }


@dataclass(slots=True)
class UsageRules:
    """RFC 4119 §2.2.2 usage rules. ``retransmission_allowed`` is normalised:
    true/1/yes -> True; absent or anything else -> False (the RFC default)."""

    retransmission_allowed_raw: str | None = None
    retransmission_allowed: bool = False
    retention_expiry_raw: str | None = None
    retention_expiry: datetime | None = None
    external_ruleset: str | None = None
    note_well: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "retransmission_allowed": self.retransmission_allowed,
            "retransmission_allowed_raw": self.retransmission_allowed_raw,
            "retention_expiry": _iso(self.retention_expiry),
            "retention_expiry_raw": self.retention_expiry_raw,
            "external_ruleset": self.external_ruleset,
            "note_well": self.note_well,
        }


@dataclass(slots=True)
class ProvidedBy:
    """A child of gp:provided-by (RFC 4119 §2.2.4; RFC 7852 §6.2-6.3), shallow."""

    namespace: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "attributes": dict(self.attributes), "text": self.text}


@dataclass(slots=True)
class MsExtension:
    """Microsoft msftE911PidfExtn ([MS-SIPRE] §9)."""

    conference_uri: str | None = None
    conference_mode: str | None = None
    location_policy_tag_id: str | None = None
    namespace: str = ns.MS_EXT

    def to_dict(self) -> dict[str, Any]:
        return {
            "conference_uri": self.conference_uri,
            "conference_mode": self.conference_mode,
            "location_policy_tag_id": self.location_policy_tag_id,
            "namespace": self.namespace,
        }


_ELIN_ENTRY = re.compile(r"^\+?\d+$")
MAX_ELINS = 5  # AudioCodes ELIN gateway reads at most five ([AC-ELIN])


def elin_candidates(nam: str | None) -> list[str]:
    """ELINs from a Lync NAM value (C10): ``;``-separated, trimmed, hyphens removed,
    first five numeric entries. A company name yields no candidates."""
    if not nam:
        return []
    out: list[str] = []
    for entry in nam.split(";"):
        digits = entry.strip().replace("-", "")
        if _ELIN_ENTRY.match(digits):
            out.append(digits)
    return out[:MAX_ELINS]


@dataclass(slots=True)
class Location:
    """One gp:geopriv and the element carrying it (RFC 5491 §3)."""

    carrier: str  # "tuple" | "device" | "person"
    carrier_id: str | None
    civic: list[CivicAddress] = field(default_factory=list)
    shapes: list[GeodeticShape] = field(default_factory=list)
    method: str | None = None
    usage_rules: UsageRules = field(default_factory=UsageRules)
    provided_by: list[ProvidedBy] = field(default_factory=list)
    timestamp_raw: str | None = None
    timestamp: datetime | None = None
    device_id: str | None = None
    ms_extension: MsExtension | None = None

    @property
    def has_location(self) -> bool:
        return bool(self.civic or self.shapes)

    @property
    def elins(self) -> list[str]:
        for civic in self.civic:
            candidates = elin_candidates(civic.get("NAM"))
            if candidates:
                return candidates
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "carrier_id": self.carrier_id,
            "civic": [c.to_dict() for c in self.civic],
            "shapes": [s.to_dict() for s in self.shapes],
            "method": self.method,
            "usage_rules": self.usage_rules.to_dict(),
            "provided_by": [p.to_dict() for p in self.provided_by],
            "timestamp": _iso(self.timestamp),
            "timestamp_raw": self.timestamp_raw,
            "device_id": self.device_id,
            "ms_extension": self.ms_extension.to_dict() if self.ms_extension else None,
            "elins": self.elins,
        }


@dataclass(slots=True)
class PidfDocument:
    """A whole PIDF-LO document: its entity and every location in document order.
    ``selected`` indexes the location RFC 5491 §3 rule 8 picks: the first ``device``
    with a location, else the first ``tuple``, else the first ``person``."""

    entity: str | None
    locations: list[Location] = field(default_factory=list)
    selected: int | None = None

    @property
    def location(self) -> Location | None:
        return self.locations[self.selected] if self.selected is not None else None

    @property
    def ms_extension(self) -> MsExtension | None:
        for loc in self.locations:
            if loc.ms_extension is not None:
                return loc.ms_extension
        return None

    @property
    def elins(self) -> list[str]:
        loc = self.location
        return loc.elins if loc is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "selected": self.selected,
            "locations": [loc.to_dict() for loc in self.locations],
        }


def select_location(locations: list[Location]) -> int | None:
    """RFC 5491 §3 rule 8: device first, then tuple, person only as a last resort."""
    for carrier in ("device", "tuple", "person"):
        for i, loc in enumerate(locations):
            if loc.carrier == carrier and loc.has_location:
                return i
    return None
