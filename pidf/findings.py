"""Findings and verdicts: the vocabulary every check speaks (reference §6)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ERROR = "E"  # violates a MUST or the schema
WARNING = "W"  # violates a SHOULD or a common interop expectation
INFO = "I"  # informational / heuristic


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation of a check: ``id`` is a §6 check id (``S07``, ``P05``...)."""

    id: str
    severity: str
    message: str
    where: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "severity": self.severity, "message": self.message, "where": self.where}


class Verdict(str, Enum):
    """What the location conveyance amounts to for routing (reference §4, item 6)."""

    LOCATION_BY_VALUE_VALID = "location_by_value_valid"
    BY_VALUE_DEGRADED = "by_value_degraded"
    BY_REFERENCE_ONLY = "by_reference_only"
    NO_LOCATION = "no_location"
    ELIN_ONLY = "elin_only"

    def __str__(self) -> str:  # print the wire value, not "Verdict.X"
        return self.value


class Findings(list):
    """A list of :class:`Finding` with terse adders; ``strict`` turns the
    tolerant downgrades (§6 "W-downgrade") back into errors."""

    def __init__(self, *, strict: bool = False, prefix: str | None = None) -> None:
        super().__init__()
        self.strict = strict
        self.prefix = prefix

    def _where(self, where: object | None) -> str | None:
        # ``where`` may be a lazy location (pidf.checks.common.At); render it now.
        text = None if where is None else str(where)
        if self.prefix is None:
            return text
        return self.prefix if text is None else f"{self.prefix} {text}"

    def add(self, id_: str, severity: str, message: str, where: object | None = None) -> None:
        self.append(Finding(id_, severity, message, self._where(where)))

    def error(self, id_: str, message: str, where: object | None = None) -> None:
        self.add(id_, ERROR, message, where)

    def warn(self, id_: str, message: str, where: object | None = None) -> None:
        self.add(id_, WARNING, message, where)

    def info(self, id_: str, message: str, where: object | None = None) -> None:
        self.add(id_, INFO, message, where)

    def lenient(self, id_: str, message: str, where: object | None = None) -> None:
        """A schema violation real clients commit (Lync ``id="0"``...): W, or E when strict."""
        self.add(id_, ERROR if self.strict else WARNING, message, where)


def has_error(findings: list[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)
