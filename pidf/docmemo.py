"""A bounded memo of single PIDF-LO document inspections (:func:`pidf.validate.inspect_document`).

:class:`pidf.memo.ValidationMemo` remembers whole conveyances (a per-call Content-ID
held as a placeholder); a conveyance it misses (a new one, or one whose Content-IDs
cannot be renamed) often carries a document seen before, and inspecting it (XML
parsing, reading the model, the P/C/G/M checks) is most of the cost.

What an inspection reads: the document's bytes, the MIME ``charset``, ``strict`` (the
lenient findings), ``max_size`` and ``max_depth`` -- and the time, only through
:meth:`pidf.findings.Findings.timed` (P13 retention expiry / default retention, P16
timestamp age). The key is exactly those inputs but the time (bytes compared for
equality, not a digest). An entry holds the parsed model and a template of the findings
with their locations rendered *without* the part prefix (``part[1]``, ``body``), and the
time-dependent checks as rules. Replaying an entry into the caller's
:class:`~pidf.findings.Findings` applies that Findings' prefix and evaluates the rules at
the caller's ``now`` through ``Findings.timed``, so the findings (ids, severities,
messages, locations, order) and the time-dependent slots are those of a fresh inspection.

The :class:`~pidf.model.PidfDocument` is shared by every caller of one entry (as the
outer memo already shares it between its reports) and must be treated as read-only;
:class:`~pidf.findings.Finding` is frozen; the template is a tuple. An entry does not
keep the lxml tree.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from .findings import Finding, Findings, TimedRule, _join_where
from .model import PidfDocument
from .parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE
from .validate import inspect_document

# Documents larger than this are inspected but not remembered (a Lync PIDF-LO is ~1 KB).
DEFAULT_MAX_DOCUMENT = 16 * 1024


@dataclass(frozen=True, slots=True)
class _Timed:
    """A time-dependent check in a template, with its location rendered unprefixed."""

    rule: TimedRule
    where: str | None


class Lru(OrderedDict):
    """At most ``entries`` items, the least recently used dropped first; counts the
    hits and misses of :meth:`lookup` (both memos' statistics)."""

    def __init__(self, entries: int) -> None:
        if entries < 0:
            raise ValueError("entries must be >= 0")
        super().__init__()
        self.entries = entries
        self.hits = 0
        self.misses = 0
        self._newest: object | None = None  # the most recently used entry

    def lookup(self, key: tuple) -> object | None:
        entry = self.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry is not self._newest:  # else it is last already (a phone calling again)
            self.move_to_end(key)
            self._newest = entry
        self.hits += 1
        return entry

    def remember(self, key: tuple, entry: object) -> None:
        """Remember ``entry`` under a new ``key`` (each entry its own object)."""
        self[key] = entry
        self._newest = entry
        if len(self) > self.entries:
            self.popitem(last=False)

    def clear(self) -> None:
        super().clear()
        self.hits = self.misses = 0
        self._newest = None


class _Entry:
    __slots__ = ("document", "template")

    def __init__(self, document: PidfDocument | None, template: tuple[Finding | _Timed, ...]) -> None:
        self.document = document
        self.template = template


def template(findings: list[Finding], slots: list, lo: int = 0, hi: int | None = None) -> tuple[Finding | _Timed, ...]:
    """``findings[lo:hi]`` with each time-dependent slot (``Findings.slots``) as its rule
    and its location rendered now, while the tree its lazy location points into lives."""
    items: list[Finding | _Timed] = []
    at = lo
    for slot in slots:
        items.extend(findings[at : slot.start])
        items.append(_Timed(slot.rule, slot.where_text()))
        at = slot.start + slot.count
    items.extend(findings[at:hi])
    return tuple(items)


def _replay(template: tuple[Finding | _Timed, ...], into: Findings, now: datetime) -> None:
    """Add a template's findings to ``into`` as a fresh inspection with ``into`` would:
    its prefix joined to each location, the rules evaluated at ``now``."""
    prefix = into.prefix
    for item in template:
        if item.__class__ is Finding:
            if prefix is None:
                into.append(item)
            else:
                into.append(Finding(item.id, item.severity, item.message, _join_where(prefix, item.where)))
        else:
            into.timed(item.rule, now, item.where)


class _Counted:
    """The statistics of a memo kept in an :class:`Lru` (``self._memo``)."""

    _memo: Lru

    @property
    def hits(self) -> int:
        return self._memo.hits

    @property
    def misses(self) -> int:
        return self._memo.misses

    def __len__(self) -> int:
        return len(self._memo)


class DocumentMemo(_Counted):
    """:func:`pidf.validate.inspect_document` with a least-recently-used memo of
    ``entries`` results (0: no memo, every document inspected afresh)."""

    def __init__(self, entries: int, *, max_document: int = DEFAULT_MAX_DOCUMENT) -> None:
        self._memo = Lru(entries)
        self.entries = entries
        self.max_document = max_document

    def clear(self) -> None:
        self._memo.clear()

    def inspect(
        self,
        data: bytes,
        findings: Findings,
        *,
        charset: str | None = None,
        now: datetime,
        max_size: int = DEFAULT_MAX_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> PidfDocument | None:
        """What ``inspect_document(data, findings, ...)`` returns and adds to ``findings``.
        ``now`` must be an aware datetime (as :class:`~pidf.conveyance._Inspection` has)."""
        if not self.entries or len(data) > self.max_document:
            return inspect_document(data, findings, charset=charset, now=now, max_size=max_size, max_depth=max_depth)
        key = (bytes(data), charset, findings.strict, max_size, max_depth)
        entry = self._memo.lookup(key)
        if entry is not None:
            _replay(entry.template, findings, now)
            return entry.document
        bare = Findings(strict=findings.strict)  # no prefix: locations are joined per caller
        try:
            document = inspect_document(data, bare, charset=charset, now=now, max_size=max_size, max_depth=max_depth)
        except BaseException:
            # Give the caller what a fresh inspection had added before it raised; remember nothing.
            _replay(template(bare, bare.slots), findings, now)
            raise
        found = template(bare, bare.slots)
        self._memo.remember(key, _Entry(document, found))
        _replay(found, findings, now)
        return document


__all__ = ["DEFAULT_MAX_DOCUMENT", "DocumentMemo"]
