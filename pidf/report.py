"""The report every entry point returns, and how its verdict is decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .findings import ERROR, INFO, WARNING, Finding, Verdict
from .model import Location, PidfDocument

# E findings from these checks say nothing about the location itself (marking,
# responses, additional data), so they do not degrade a by-value verdict.
LOCATION_NEUTRAL_CHECKS = frozenset({"S14", "S15", "S16"})


@dataclass(slots=True)
class LocationReference:
    """One Geolocation header value (RFC 6442 §4.1) and, for cid:, the part it resolved to."""

    uri: str
    scheme: str
    params: list[tuple[str, str | None]] = field(default_factory=list)
    part: int | None = None  # 0-based index into the body parts (0 for a single-part body)
    rule: str | None = None  # exact | stripped-scheme | last-pidf-part | None (dangling / by reference)

    @property
    def by_value(self) -> bool:
        return self.scheme == "cid"

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "scheme": self.scheme,
            "params": [[k, v] for k, v in self.params],
            "by_value": self.by_value,
            "part": self.part,
            "rule": self.rule,
        }


@dataclass(slots=True)
class PartSummary:
    """What the ECRC records per body part (reference §4 item 4)."""

    index: int
    content_type: str | None
    content_id: str | None
    disposition: str | None
    size: int
    sha256: str
    pidf: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "content_type": self.content_type,
            "content_id": self.content_id,
            "disposition": self.disposition,
            "size": self.size,
            "sha256": self.sha256,
            "pidf": self.pidf,
        }


@dataclass(slots=True)
class Marking:
    """How the request marks itself as an emergency or test call (S14)."""

    priority: str | None
    dialed: str | None  # R-URI (or To) user part or service URN
    kind: str  # "emergency" | "test" | "none"

    def to_dict(self) -> dict[str, Any]:
        return {"priority": self.priority, "dialed": self.dialed, "kind": self.kind}


@dataclass(slots=True)
class Report:
    verdict: Verdict
    findings: list[Finding]
    location: Location | None = None
    document: PidfDocument | None = None
    selected_part: int | None = None
    selected_part_rule: str | None = None
    references: list[LocationReference] = field(default_factory=list)
    parts: list[PartSummary] = field(default_factory=list)
    calling_number: str | None = None
    marking: Marking | None = None
    geolocation_routing: str | None = None  # effective "yes" / "no" (None: no Geolocation)
    first_part: int | None = None  # S17: RFC 5491 rule 9 choice when several PIDF parts
    last_part: int | None = None  # S17: Lync's choice

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        """No E finding."""
        return not any(f.severity == ERROR for f in self.findings)

    def ids(self, severity: str | None = None) -> set[str]:
        return {f.id for f in self.findings if severity is None or f.severity == severity}

    @property
    def elins(self) -> list[str]:
        return self.location.elins if self.location is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "findings": [f.to_dict() for f in self.findings],
            "location": self.location.to_dict() if self.location is not None else None,
            "entity": self.document.entity if self.document is not None else None,
            "document": self.document.to_dict() if self.document is not None else None,
            "selected_part": self.selected_part,
            "selected_part_rule": self.selected_part_rule,
            "first_part": self.first_part,
            "last_part": self.last_part,
            "references": [r.to_dict() for r in self.references],
            "parts": [p.to_dict() for p in self.parts],
            "calling_number": self.calling_number,
            "marking": self.marking.to_dict() if self.marking is not None else None,
            "geolocation_routing": self.geolocation_routing,
            "elins": self.elins,
        }


def normalise_number(number: str | None) -> str | None:
    """Digits only, NANP country code dropped: '+1 (425) 555-0100' -> '4255550100'."""
    if not number:
        return None
    digits = "".join(ch for ch in number if "0" <= ch <= "9")
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return digits or None


def degrades(finding: Finding) -> bool:
    """Whether a finding makes a location by value ``by_value_degraded`` (rule 1 below)."""
    return finding.severity == ERROR and finding.id not in LOCATION_NEUTRAL_CHECKS


def decide_verdict(
    location: Location | None,
    findings: list[Finding],
    *,
    has_reference: bool = False,
    calling_number: str | None = None,
    elins: frozenset[str] | set[str] = frozenset(),
) -> Verdict:
    """Verdict rules (docs/pidf.md):

    1. a selected location by value -> ``location_by_value_valid``, or
       ``by_value_degraded`` when any E finding (other than S14/S15/S16) exists;
    2. else a location URI (non-cid Geolocation value) -> ``by_reference_only``;
    3. else the calling number is a known ELIN -> ``elin_only``;
    4. else ``no_location``.
    """
    if location is not None and location.has_location:
        return Verdict.BY_VALUE_DEGRADED if any(map(degrades, findings)) else Verdict.LOCATION_BY_VALUE_VALID
    if has_reference:
        return Verdict.BY_REFERENCE_ONLY
    caller = normalise_number(calling_number)
    if caller and caller in {normalise_number(e) for e in elins}:
        return Verdict.ELIN_ONLY
    return Verdict.NO_LOCATION


__all__ = [
    "ERROR",
    "INFO",
    "WARNING",
    "LocationReference",
    "Marking",
    "PartSummary",
    "Report",
    "decide_verdict",
    "degrades",
    "normalise_number",
]
