"""Findings and verdicts: the vocabulary every check speaks (reference §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

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


class TimedRule(Protocol):
    """A check whose outcome depends on the current time (P13 expiry, P16 age).

    Everything a rule needs from the document is captured when it is made, so it can be
    evaluated again for another ``now`` without the document (pidf.memo reuses the rest
    of a validation and re-evaluates only these)."""

    def evaluate(self, now: datetime) -> tuple[tuple[str, str, str], ...]:
        """The (id, severity, message) findings at ``now``; empty when none.

        A rule with ``per_call = True`` (S03) is given the call's facts instead of ``now``."""
        ...


class TimedSlot:
    """Where a :class:`TimedRule`'s findings sit in a findings list: ``count`` findings
    from ``start`` (for the ``now`` it was evaluated at)."""

    __slots__ = ("start", "count", "rule", "where", "prefix")

    def __init__(self, start: int, count: int, rule: TimedRule, where: object | None, prefix: str | None) -> None:
        self.start, self.count, self.rule, self.where, self.prefix = start, count, rule, where, prefix

    def where_text(self) -> str | None:
        """The rendered location (renders a lazy ``At``, which needs the tree still alive)."""
        return _join_where(self.prefix, self.where)


def _join_where(prefix: str | None, where: object | None) -> str | None:
    text = None if where is None else str(where)
    if prefix is None:
        return text
    return prefix if text is None else f"{prefix} {text}"


class Findings(list):
    """A list of :class:`Finding` with terse adders; ``strict`` turns the
    tolerant downgrades (§6 "W-downgrade") back into errors.

    ``slots`` records where time-dependent findings were placed (see :meth:`timed`)."""

    def __init__(self, *, strict: bool = False, prefix: str | None = None) -> None:
        super().__init__()
        self.strict = strict
        self.prefix = prefix
        self.slots: list[TimedSlot] = []

    def timed(self, rule: TimedRule, now: object, where: object | None = None) -> None:
        """Add the findings of a time-dependent check at ``now`` and remember the rule, so
        that a memoised validation can evaluate it again for another time."""
        start = len(self)
        out = rule.evaluate(now)
        if out:
            text = self._where(where)
            for id_, severity, message in out:
                self.append(Finding(id_, severity, message, text))
        self.slots.append(TimedSlot(start, len(out), rule, where, self.prefix))

    def absorb(self, other: Findings) -> None:
        """Append another list's findings, keeping its time-dependent slots in place."""
        offset = len(self)
        self.extend(other)
        for slot in other.slots:
            self.slots.append(TimedSlot(slot.start + offset, slot.count, slot.rule, slot.where, slot.prefix))

    def _where(self, where: object | None) -> str | None:
        # ``where`` may be a lazy location (pidf.checks.common.At); render it now.
        return _join_where(self.prefix, where)

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
