"""A bounded memo of single PIDF-LO document inspections (:func:`pidf.validate.inspect_document`).

:class:`pidf.memo.ValidationMemo` remembers whole conveyances; its key holds every
part's headers, so a client that puts a per-call Content-ID on the PIDF part
(``Content-ID: <caller-loc-1234@host>``, ``Geolocation: <cid:caller-loc-1234@host>``)
never hits it. The document inside is the same bytes call after call, though, and
inspecting it (XML parsing, reading the model, the P/C/G/M checks) is most of the cost.

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


class _Entry:
    __slots__ = ("document", "template")

    def __init__(self, document: PidfDocument | None, template: tuple[Finding | _Timed, ...]) -> None:
        self.document = document
        self.template = template


def _template(found: Findings) -> tuple[Finding | _Timed, ...]:
    """``found`` (made with no prefix) with each time-dependent slot as its rule."""
    items: list[Finding | _Timed] = []
    at = 0
    for slot in found.slots:
        items.extend(found[at : slot.start])
        items.append(_Timed(slot.rule, slot.where_text()))  # renders a lazy At while the tree lives
        at = slot.start + slot.count
    items.extend(found[at:])
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


class DocumentMemo:
    """:func:`pidf.validate.inspect_document` with a least-recently-used memo of
    ``entries`` results (0: no memo, every document inspected afresh)."""

    def __init__(self, entries: int, *, max_document: int = DEFAULT_MAX_DOCUMENT) -> None:
        if entries < 0:
            raise ValueError("entries must be >= 0")
        self.entries = entries
        self.max_document = max_document
        self._memo: OrderedDict[tuple, _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._memo)

    def clear(self) -> None:
        self._memo.clear()
        self.hits = self.misses = 0

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
        entry = self._memo.get(key)
        if entry is not None:
            self._memo.move_to_end(key)
            self.hits += 1
            _replay(entry.template, findings, now)
            return entry.document
        self.misses += 1
        bare = Findings(strict=findings.strict)  # no prefix: locations are joined per caller
        try:
            document = inspect_document(data, bare, charset=charset, now=now, max_size=max_size, max_depth=max_depth)
        except BaseException:
            # Give the caller what a fresh inspection had added before it raised; remember nothing.
            _replay(_template(bare), findings, now)
            raise
        template = _template(bare)
        self._memo[key] = _Entry(document, template)
        if len(self._memo) > self.entries:
            self._memo.popitem(last=False)
        _replay(template, findings, now)
        return document


__all__ = ["DEFAULT_MAX_DOCUMENT", "DocumentMemo"]
