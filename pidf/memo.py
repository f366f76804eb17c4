"""A bounded memo of conveyance validations, for a B2BUA that sees the same PIDF-LO again
and again (a Lync client re-sends its LIS-provided document verbatim on every call).

The location checks are a function of (see :data:`pidf.conveyance.LOCATION_HEADERS`):
the values of a few SIP header fields, the body, its parts and MIME defects, ``strict``
and ``max_size`` -- and the time. The key is exactly those inputs (bytes and strings
compared for equality, not a digest). The time enters only through
:meth:`pidf.findings.Findings.timed` (P13 retention-expiry past / default retention
expired, P16 timestamp in the future / stale); an entry keeps those checks as rules and
evaluates them again for every call's ``now``. What depends on the rest of the message
(S14 marking from Priority, Request-URI and To; the calling number from
P-Asserted-Identity or From; the verdict, which also depends on ``elins``) is computed
fresh on every call, as :func:`pidf.conveyance.validate_conveyance` does.

A miss still reuses what :class:`pidf.docmemo.DocumentMemo` (``self.documents``, the
same number of entries) remembers of each PIDF-LO document by its bytes: a client that
puts a per-call Content-ID on the PIDF part misses here on every call, but its document
is parsed and checked once.

A hit returns a new :class:`~pidf.report.Report` with its own lists and its own
reference / part summary objects; :class:`~pidf.findings.Finding` is frozen. The
``location`` and ``document`` model objects are shared between the reports of one entry
and must be treated as read-only.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

from .conveyance import (
    _COMPACT,
    _media_type,
    LOCATION_HEADERS,
    PIDF_TYPE,
    Conveyance,
    HeaderIndex,
    LocationResult,
    _Inspection,
    finish_report,
    internal_error_report,
)
from .docmemo import DocumentMemo, Lru, _Timed, template
from .findings import Finding
from .parse import DEFAULT_MAX_SIZE
from .report import LocationReference, PartSummary, Report
from .validate import utc_now

DEFAULT_ENTRIES = 1024
# Bodies larger than this are validated but not remembered: the key holds the body and
# its parts, so this bounds an entry (a Lync INVITE body is about 2 KB).
DEFAULT_MAX_BODY = 16 * 1024


def _realise(items: tuple[Finding | _Timed, ...], now: datetime, call: tuple, out: list[Finding]) -> None:
    for item in items:
        if item.__class__ is Finding:
            out.append(item)
        else:
            rule = item.rule
            for id_, severity, message in rule.evaluate(call if getattr(rule, "per_call", False) else now):
                out.append(Finding(id_, severity, message, item.where))


class _Entry:
    """A validation's time-independent result and its time-dependent rules."""

    __slots__ = ("result", "before", "after", "multipart")

    def __init__(self, result: LocationResult, *, multipart: bool) -> None:
        self.multipart = multipart
        slots = result.findings.slots
        before, after = slots[: result.split_slots], slots[result.split_slots :]
        self.before = template(result.findings, before, 0, result.split)
        self.after = template(result.findings, after, result.split)
        # Keep what the report needs but not the lxml tree the findings' lazy locations
        # point into (rendered above), nor the Findings object with its slots.
        self.result = replace(
            result,
            findings=None,  # type: ignore[arg-type] - the templates stand for them
            split=0,
            split_slots=0,
            references=[_copy_reference(r) for r in result.references],
            parts=[_copy_part(p) for p in result.parts],
        )

    def result_at(self, now: datetime, call: tuple, contents: list[bytes]) -> tuple[LocationResult, list[Finding]]:
        """The result for this call: ``call`` the S03 facts, ``contents`` the bytes of its
        parts (their size and sha256 are per call: only the location parts are keyed)."""
        findings: list[Finding] = []
        _realise(self.before, now, call, findings)
        split = len(findings)
        _realise(self.after, now, call, findings)
        r = self.result
        fresh = replace(
            r,
            split=split,
            references=[_copy_reference(ref) for ref in r.references],
            parts=[_summary(p, contents[p.index]) for p in r.parts],
        )
        return fresh, findings


def _copy_reference(ref: LocationReference) -> LocationReference:
    return LocationReference(ref.uri, ref.scheme, list(ref.params), ref.part, ref.rule)


def _copy_part(part: PartSummary) -> PartSummary:
    return PartSummary(part.index, part.content_type, part.content_id, part.disposition, part.size, part.sha256, part.pidf)


def _summary(part: PartSummary, content: bytes) -> PartSummary:
    return PartSummary(part.index, part.content_type, part.content_id, part.disposition, len(content),
                       hashlib.sha256(content).hexdigest(), part.pidf)  # fmt: skip


def _mime(raw: str | None) -> str | None:
    media = _media_type(raw)
    return media.mime if media is not None else None


def _part_header(headers: list[tuple[str, str]], wanted: str) -> str | None:
    """The first value of a part header, looked up as HeaderIndex does."""
    for name, value in headers:
        key = name.strip().lower()
        if _COMPACT.get(key, key) == wanted:
            return value
    return None


class ValidationMemo:
    """:func:`pidf.validate_conveyance` with a least-recently-used memo of ``entries``
    results (0: no memo, every call validated afresh)."""

    def __init__(self, entries: int = DEFAULT_ENTRIES, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self._memo = Lru(entries)
        self.entries = entries
        self.max_body = max_body
        # The inner memo: one PIDF-LO document's inspection, keyed by its bytes (and
        # charset, strict, max_size), for conveyances that miss only because their
        # headers changed (a per-call Content-ID). Same size; 0 disables both.
        self.documents = DocumentMemo(entries, max_document=max_body)

    @property
    def hits(self) -> int:
        return self._memo.hits

    @property
    def misses(self) -> int:
        return self._memo.misses

    def __len__(self) -> int:
        return len(self._memo)

    def clear(self) -> None:
        self._memo.clear()
        self.documents.clear()

    def validate(
        self,
        conv: Conveyance,
        *,
        now: datetime | None = None,
        elins: frozenset[str] = frozenset(),
        strict: bool = False,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> Report:
        """The same report :func:`pidf.validate_conveyance` gives for these arguments."""
        try:
            now = utc_now(now)
            elins = frozenset(elins)
            h = HeaderIndex(conv.headers)
            located = h.only(LOCATION_HEADERS)
            content_length = h.all("content-length")
            key = self._key(conv, located, strict, max_size) if self.entries else None
            if key is None:
                entry = None
                self._memo.misses += 1  # validated afresh all the same
            else:
                entry = self._memo.lookup(key)
            if entry is not None:
                contents = [p.content for p in conv.parts] if conv.parts is not None and entry.multipart else [conv.body]
                result, findings = entry.result_at(now, (content_length, len(conv.body)), contents)
                return finish_report(result, findings, h, conv.request_uri, elins, strict=strict)
            documents = self.documents if self.entries else None
            result = _Inspection(conv, now, strict, max_size, located, content_length, documents).run()
            if key is not None:
                self._memo.remember(key, _Entry(result, multipart=key[1] is None))
            return finish_report(result, result.findings, h, conv.request_uri, elins, strict=strict)
        except Exception as exc:  # noqa: BLE001 - a report for any input, never a crash
            return internal_error_report(exc)

    def _key(self, conv: Conveyance, located: HeaderIndex, strict: bool, max_size: int) -> tuple | None:
        """Exactly what the location checks read, or None when not worth remembering.

        With a multipart Content-Type the checks read the body only for its blankness
        (and its length, S03, per call), and of a part its headers, and its bytes only if
        it is a PIDF part or has a Content-ID (only such a part can be validated: cid
        resolution needs a Content-ID, Lync's fallback takes a PIDF part). So the SDP
        beside the PIDF-LO, which changes per call, is not in the key. Otherwise the body
        is the single part, and is in the key whole."""
        multipart = (_mime(located.first("content-type")) or "").startswith("multipart/")
        if multipart:
            body = None
            blank = not conv.body.strip()
        else:
            if len(conv.body) > self.max_body:
                return None
            body, blank = conv.body, None
        parts = None
        if conv.parts is not None:
            size = 0
            keyed = []
            for p in conv.parts:
                headers = tuple(map(tuple, p.headers))
                used = _mime(_part_header(p.headers, "content-type")) == PIDF_TYPE or \
                    _part_header(p.headers, "content-id") is not None
                if used or not multipart:
                    size += len(p.content)
                keyed.append((headers, p.content if used or not multipart else None))
            if size > self.max_body:
                return None
            parts = tuple(keyed)
        return (located.key(), body, blank, parts, tuple(conv.body_defects), strict, max_size)


__all__ = ["DEFAULT_ENTRIES", "DEFAULT_MAX_BODY", "ValidationMemo"]
