"""A bounded memo of conveyance validations, for a B2BUA that sees the same PIDF-LO again
and again (a Lync client re-sends its LIS-provided document verbatim on every call).

The location checks are a function of (see :data:`pidf.conveyance.LOCATION_HEADERS`):
the values of a few SIP header fields, the body, its parts (of a part's headers, the
first Content-Type, Content-ID and Content-Disposition) and MIME defects, ``strict`` and
``max_size`` -- and the time. The key is exactly those inputs (bytes and strings
compared for equality, not a digest). The time enters only through
:meth:`pidf.findings.Findings.timed` (P13 retention-expiry past / default retention
expired, P16 timestamp in the future / stale; S03 takes the call's Content-Length the
same way); an entry keeps those checks as rules and evaluates them again for every
call. What depends on the rest of the message (S14 marking from Priority, Request-URI
and To; the calling number from P-Asserted-Identity or From; the verdict, which also
depends on ``elins``) is computed for every call, as
:func:`pidf.conveyance.validate_conveyance` does; S14 and the calling number are
remembered by exactly what they read of those headers (not the From tag).

Per-call Content-IDs. Clients put a new Content-ID on the PIDF part of every call
(``Content-ID: <caller-loc-1234@host>``, ``Geolocation: <cid:caller-loc-1234@host>``).
The key holds each Content-ID as a placeholder (:func:`_placeholder`: ``0@~~~~``, of
the id's length) and the entry is the validation of the conveyance so renamed; a call
gets it with its own ids put back where it quotes a placeholder. That is the validation
of the call's conveyance because the checks use a Content-ID only as an opaque token:
compare it (ignoring case) with the other Content-IDs and with the cid: URLs of
Geolocation, Call-Info (and the document, S08), check it is ``<left@right>``, and quote
it as it is -- never cut, lower-cased or re-encoded. The renaming keeps to where that
holds, and the conveyance is keyed as it is otherwise:

* every Content-ID (SIP-level, and each part's) is ``<left@right>`` of letters, digits,
  ``.``, ``-`` and ``_``, and one id is spelt one way (:func:`_ids`);
* in Geolocation and Call-Info an id stands only as a whole cid: URL (``<cid:id>``, or
  Lync's ``<cid:sip:id>``) in a value without ``"`` (a quoted parameter may be
  lower-cased), and no value there has ``%`` (percent-decoding could make an id):
  :func:`_rename_references`;
* no header value the checks quote has a ``~``, so that a placeholder in a result stands
  for an id (:func:`_marked`; an entry for which that fails is not used renamed);
* no document refers by cid: to an id or a placeholder (S08, the entry's
  :attr:`~pidf.conveyance.LocationResult.cid_targets`; else the call is keyed as it is).

Which strings of a result take the ids back: the references' URIs, the part summaries'
Content-IDs, and the messages of the S findings that quote a header value (all but
S08, which quotes the document); never the document's own findings.

A miss still reuses what :class:`pidf.docmemo.DocumentMemo` (``self.documents``, the
same number of entries) remembers of each PIDF-LO document by its bytes.

A hit returns a new :class:`~pidf.report.Report` with its own lists and its own
reference / part summary / marking objects; :class:`~pidf.findings.Finding` is frozen
(an entry shares them). The ``location`` and ``document`` model objects are shared
between the reports of one entry and must be treated as read-only.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from .conveyance import (
    _KEYS,
    LOCATION_HEADERS,
    PIDF_TYPE,
    Conveyance,
    HeaderIndex,
    LocationResult,
    MimePart,
    _Inspection,
    _media_type,
    calling_number_of,
    finish_report,
    header_key,
    internal_error_report,
    marking_of,
)
from .docmemo import DocumentMemo, Lru, _Counted, _Timed, template
from .findings import Finding, Findings, Verdict
from .parse import DEFAULT_MAX_SIZE
from .report import (
    LocationReference,
    Marking,
    PartSummary,
    Report,
    decide_verdict,
    degrades,
)
from .validate import utc_now

DEFAULT_ENTRIES = 1024
# Bodies larger than this are validated but not remembered: the key holds the body and
# its parts, so this bounds an entry (a Lync INVITE body is about 2 KB).
DEFAULT_MAX_BODY = 16 * 1024

# -- what a call reads: its key ------------------------------------------------

# The header fields validation reads (by lookup key): the located ones first, then the
# per-call ones (S03; S14; the calling number). Each call reads them in one pass.
_READ = (*LOCATION_HEADERS, "content-length", "priority", "to", "p-asserted-identity", "from")
_CONTENT_LENGTH, _PRIORITY, _TO, _PAI, _FROM = range(len(LOCATION_HEADERS), len(_READ))
_SLOTS = {key: slot for slot, key in enumerate(_READ)}


def _read(headers: list[tuple[str, str]]) -> list[tuple[str, ...] | None]:
    """The values of each of ``_READ`` (None: absent) as :class:`HeaderIndex` has them."""
    read: list[tuple[str, ...] | None] = [None] * len(_READ)
    keys = _KEYS
    for name, value in headers:
        slot = _SLOTS.get(keys.get(name) or header_key(name))
        if slot is not None:
            values = read[slot]
            read[slot] = (value,) if values is None else (*values, value)
    return read


def _index(read: list[tuple[str, ...] | None], keys: tuple[str, ...] = _READ) -> HeaderIndex:
    """The header fields read, as the HeaderIndex (of those) the checks are given."""
    return HeaderIndex.of({key: values for key, values in zip(keys, read) if values is not None})


def _is_pidf(raw: str | None) -> bool:
    """Whether a Content-Type value is application/pidf+xml (as ``_Part.is_pidf``)."""
    media = _media_type(raw)
    return media is not None and media.mime == PIDF_TYPE


# A Content-ID the key may hold as a placeholder (see the module docstring).
_PLAIN_CID = re.compile(r"<([A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9._-]*)>")
# How such an id may stand in a Geolocation or Call-Info value: a whole cid: URL.
_CID_URLS = ("<cid:", "<cid:sip:", "<cid:sips:")
_MARK = "~"  # what placeholders are made of; in no value of a conveyance keyed with them
_MAX_IDS = 10  # one digit tells the placeholders of a conveyance apart
_PLACEHOLDERS: dict[tuple[int, int], tuple[str, str, str]] = {}


def _placeholder(cid: str, n: int) -> tuple[str, str, str]:
    """The ``n``-th id's stand-in: ``<left@right>`` as the id, of its length, the digit
    ``n``, ``@`` and ``~`` (no letter, so lower-casing leaves it as it is); and its
    Content-ID and its cid: URL."""
    shape = (len(cid), n)
    made = _PLACEHOLDERS.get(shape)
    if made is None:
        placeholder = str(n) + "@" + _MARK * (len(cid) - 2)
        made = (placeholder, "<" + placeholder + ">", "<cid:" + placeholder + ">")
        if len(_PLACEHOLDERS) < 1024:  # ids of a few lengths; odd ones must not grow it without bound
            _PLACEHOLDERS[shape] = made
    return made


def _ids(cids: list[str]) -> dict[str, str] | None:
    """Each Content-ID (of these values of Content-ID fields) and its placeholder; None
    when some Content-ID is not plain, or one is spelt two ways (cid matching ignores
    case), or there are too many."""
    spelt: dict[str, str] = {}
    for value in cids:
        m = _PLAIN_CID.fullmatch(value)
        if m is None:
            return None
        cid = m.group(1)
        if spelt.setdefault(cid.lower(), cid) != cid:
            return None
    if len(spelt) > _MAX_IDS:
        return None
    return {cid: _placeholder(cid, n)[0] for n, cid in enumerate(spelt.values())}


def _rename_references(value: str, ids: dict[str, str]) -> str | None:
    """A Geolocation or Call-Info value with each id's cid: URLs renamed; None when an
    id (in any case) stands in it otherwise, or in a value with a quoted string (whose
    parameter may be lower-cased), or percent-decoding could make one."""
    if "%" in value:
        return None
    for cid, placeholder in ids.items():
        if len(value) == len(cid) + 6 and value == "<cid:" + cid + ">":
            return "<cid:" + placeholder + ">"  # the usual value: this id's URL and nothing else
    low = value.lower()
    for cid, placeholder in ids.items():
        needle = cid.lower()
        at = low.find(needle)
        if at < 0:
            continue
        if '"' in value:
            return None
        while at >= 0:
            end = at + len(cid)
            if value[at:end] != cid or value[end : end + 1] != ">" or not low.endswith(_CID_URLS, 0, at):
                return None
            at = low.find(needle, end)
        value = value.replace(cid, placeholder)  # the same length: the positions found stay right
    return value


# Where the located values (``_read``'s first ones, in LOCATION_HEADERS order) are.
_CONTENT_TYPE = LOCATION_HEADERS.index("content-type")
_CONTENT_ID = LOCATION_HEADERS.index("content-id")
_GEOLOCATION = LOCATION_HEADERS.index("geolocation")
_CALL_INFO = LOCATION_HEADERS.index("call-info")
_REFERENCES = (_GEOLOCATION, _CALL_INFO)


def _rename(located: tuple, keyed: list[tuple], with_id: list[int],
            cids: list[str]) -> tuple[tuple, tuple[tuple[str, str], ...]] | None:  # fmt: skip
    """The located values with placeholders for the ids (:func:`_ids`), and the
    (placeholder, id) pairs; the parts' key (``keyed``, those ``with_id`` a Content-ID)
    renamed in place. None when the ids may not be renamed (the parts' key is left alone)."""
    if len(cids) == 1 and located[_CONTENT_ID] is None and located[_CALL_INFO] is None:
        # The usual: one part with a Content-ID, referred to by the one Geolocation value
        # (what the general way below makes of it, in fewer steps).
        m = _PLAIN_CID.fullmatch(cids[0])
        geolocation = located[_GEOLOCATION]
        if m is not None and geolocation is not None and len(geolocation) == 1:
            cid = m.group(1)
            if geolocation[0] == "<cid:" + cid + ">":
                placeholder, content_id, url = _PLACEHOLDERS.get((len(cid), 0)) or _placeholder(cid, 0)
                content_type, _, disposition, content = keyed[with_id[0]]
                keyed[with_id[0]] = (content_type, content_id, disposition, content)
                return (*located[:_GEOLOCATION], (url,), *located[_GEOLOCATION + 1 :]), ((placeholder, cid),)
    ids = _ids(cids)
    renamed = _renamed_located(located, ids) if ids is not None else None  # type: ignore[assignment]
    if renamed is None:
        return None
    for n in with_id:
        content_type, content_id, disposition, content = keyed[n]
        placeholder = ids.get(content_id[1:-1])  # type: ignore[union-attr] # plain: see _ids
        if placeholder is not None:
            keyed[n] = (content_type, "<" + placeholder + ">", disposition, content)
    return renamed, tuple([(placeholder, cid) for cid, placeholder in ids.items()])  # type: ignore[union-attr]


def _renamed_located(located: tuple, ids: dict[str, str]) -> tuple | None:
    """The located values with the ids renamed; None when an id stands in a Geolocation
    or Call-Info value otherwise than as a whole cid: URL."""
    renamed = list(located)
    for at in _REFERENCES:
        values = located[at]
        if values is not None:
            values = tuple([_rename_references(value, ids) for value in values])
            if None in values:
                return None
            renamed[at] = values
    values = located[_CONTENT_ID]
    if values is not None:
        renamed[_CONTENT_ID] = tuple(["<" + ids[v[1:-1]] + ">" if v[1:-1] in ids else v for v in values])  # plain: see _ids
    return tuple(renamed)


def _marked(read: list, conv: Conveyance) -> bool:
    """Whether a value the checks may quote has a ``~``: then a placeholder in a result
    would not stand for an id alone. (An id has none, so every conveyance of one renamed
    key answers alike.)"""
    if any(_MARK in value for values in read[: len(LOCATION_HEADERS)] if values for value in values):
        return True
    if any(_MARK in value for p in conv.parts or () for _, value in p.headers):
        return True
    return any(_MARK in code for code in conv.body_defects)


def _part_headers(content_type: str | None, content_id: str | None, disposition: str | None) -> list[tuple[str, str]]:
    """A part's headers as the checks read them (the first of each of these three)."""
    named = (("Content-Type", content_type), ("Content-ID", content_id), ("Content-Disposition", disposition))
    return [(name, value) for name, value in named if value is not None]


# -- an entry, and the report it makes for a call ------------------------------

def _renamed(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """``text`` with each placeholder replaced by this call's id."""
    if len(pairs) == 1:  # the usual
        return text.replace(pairs[0][0], pairs[0][1])
    for placeholder, cid in pairs:
        text = text.replace(placeholder, cid)
    return text


class _Quoted:
    """A finding of an entry that quotes a placeholder: renamed for each call."""

    __slots__ = ("finding",)

    def __init__(self, finding: Finding) -> None:
        self.finding = finding


class _Rule:
    """A time-dependent (or per-call, S03) check of an entry. It keeps the findings of
    its last outcome, which the next call most often has again (Finding is frozen)."""

    __slots__ = ("last", "per_call", "rule", "where")

    def __init__(self, timed: _Timed) -> None:
        self.rule, self.where = timed.rule, timed.where
        self.per_call = getattr(timed.rule, "per_call", False)
        self.last: tuple = ((), (), False)

    def remember(self, out: tuple[tuple[str, str, str], ...]) -> tuple:
        """(``out``, its findings, whether one of them degrades a location by value),
        kept as the last outcome."""
        made = tuple(Finding(id_, severity, message, self.where) for id_, severity, message in out)
        last = (out, made, any(map(degrades, made)))
        self.last = last  # one assignment: a reader sees an outcome with its findings
        return last


_S14 = object()  # where an entry's findings take this call's S14 findings


def _step(item: Finding | _Timed, renamed: bool) -> Finding | _Rule | _Quoted:
    if item.__class__ is _Timed:
        return _Rule(item)
    # The S checks quote header values, where a '~' is a placeholder; except S08, which
    # quotes the document (as the document checks do), never a Content-ID.
    if renamed and item.id[0] == "S" and item.id != "S08" and _MARK in item.message:
        return _Quoted(item)
    return item


def _grouped(steps: list) -> tuple:
    """The steps with each run of plain findings as one tuple (added at once)."""
    out: list = []
    for step in steps:
        if step.__class__ is Finding:
            if out and out[-1].__class__ is tuple:
                out[-1] += (step,)
            else:
                out.append((step,))
        else:
            out.append(step)
    return tuple(out)


class _Entry:
    """A validation's time-independent result and its time-dependent rules."""

    __slots__ = (
        "cid_targets",
        "degraded",
        "document",
        "first_part",
        "geolocation_routing",
        "has_location",
        "has_reference",
        "last_part",
        "location",
        "multipart",
        "parts",
        "references",
        "renamed",
        "selected_part",
        "selected_part_rule",
        "steps",
    )  # fmt: skip

    def __init__(self, result: LocationResult, *, multipart: bool, renamed: bool) -> None:
        """``renamed``: the result is of a conveyance with placeholders for its ids, which
        each call's report has its ids for."""
        findings, slots, split = result.findings, result.findings.slots, result.split
        # The findings with S14 (per call) in its place; the lazy locations are rendered
        # now, so the entry does not keep the lxml tree.
        before = template(findings, slots[: result.split_slots], 0, split)
        after = template(findings, slots[result.split_slots :], split)
        self.steps = _grouped([*(_step(item, renamed) for item in before), _S14, *(_step(item, renamed) for item in after)])
        # Each reference and part summary as the report has it, and whether it quotes a
        # placeholder (a reference only in its URI: an id stands only as a cid: URL).
        self.references = tuple((r.uri, r.scheme, tuple(r.params), r.part, r.rule, renamed and _MARK in r.uri)
                                for r in result.references)  # fmt: skip
        self.parts = tuple((p.index, p.content_type, p.content_id, p.disposition, p.pidf,
                            renamed and _MARK in (p.content_id or "")) for p in result.parts)  # fmt: skip
        self.location = result.location
        self.document = result.document
        self.selected_part = result.selected_part
        self.selected_part_rule = result.selected_part_rule
        self.geolocation_routing = result.geolocation_routing
        self.first_part = result.first_part
        self.last_part = result.last_part
        self.has_reference = result.has_reference
        self.multipart = multipart
        self.renamed = renamed
        self.cid_targets = result.cid_targets
        # The verdict (decide_verdict): the location is the entry's, so is whether a
        # finding but the per-call ones (the rules', S14) degrades it.
        self.has_location = self.location is not None and self.location.has_location
        static = [f for step in self.steps if step.__class__ is tuple for f in step]
        static += [step.finding for step in self.steps if step.__class__ is _Quoted]
        self.degraded = any(map(degrades, static))

    def renames(self, pairs: tuple[tuple[str, str], ...]) -> bool:
        """Whether this call's ids may be put in for the placeholders: the entry is of a
        renamed conveyance whose quoted values have no ``~`` (:func:`_marked`), and no
        document refers by cid: to one of the ids or placeholders (S08 would resolve it
        otherwise)."""
        targets = self.cid_targets
        return self.renamed and (not targets or not any(p in targets or cid.lower() in targets for p, cid in pairs))

    def report(self, now: datetime, conv: Conveyance, content_length: tuple[str, ...], pairs: tuple, marking: Marking,
               marks: tuple[Finding, ...], caller: str | None, elins: frozenset[str]) -> Report:  # fmt: skip
        """The report :func:`pidf.conveyance.finish_report` makes of this call: the
        rules evaluated for ``now`` and the call (S03), S14 in its place, this call's ids
        put in, each part's size and sha256 from this call's bytes (only the location
        parts are keyed)."""
        call = (content_length, len(conv.body))
        findings: list[Finding] = []
        degraded = self.degraded
        for step in self.steps:
            cls = step.__class__
            if cls is tuple:
                findings += step
            elif cls is _Rule:
                out = step.rule.evaluate(call if step.per_call else now)
                if out:
                    last = step.last
                    if out != last[0]:
                        last = step.remember(out)
                    findings += last[1]
                    degraded = degraded or last[2]
            elif step is _S14:
                if marks:
                    findings += marks
                    degraded = degraded or any(map(degrades, marks))
            else:
                f = step.finding
                findings.append(Finding(f.id, f.severity, _renamed(f.message, pairs), f.where))
        references = []
        for uri, scheme, params, part, rule, quotes in self.references:
            references.append(LocationReference(_renamed(uri, pairs) if quotes else uri, scheme, list(params), part, rule))
        source = conv.parts if self.multipart else None
        digests = conv.sha256
        parts = []
        for index, content_type, content_id, disposition, pidf, quotes in self.parts:
            content = source[index].content if source is not None else conv.body
            sha = digests.get(content) or hashlib.sha256(content).hexdigest()
            parts.append(PartSummary(index, content_type, _renamed(content_id, pairs) if quotes else content_id,
                                     disposition, len(content), sha, pidf))  # fmt: skip
        location = self.location
        if self.has_location:
            verdict = Verdict.BY_VALUE_DEGRADED if degraded else Verdict.LOCATION_BY_VALUE_VALID
        else:
            verdict = decide_verdict(location, findings, has_reference=self.has_reference, calling_number=caller, elins=elins)
        return Report(verdict, findings, location, self.document, self.selected_part, self.selected_part_rule, references,
                      parts, caller, marking, self.geolocation_routing, self.first_part, self.last_part)  # fmt: skip


def _remember(memo: dict, key: object, value: tuple, entries: int) -> tuple:
    """``memo[key] = value``; a memo with ``entries`` values is emptied first (a peer
    sending ever new values must not grow it without bound)."""
    if len(memo) >= entries:
        memo.clear()
    memo[key] = value
    return value


class ValidationMemo(_Counted):
    """:func:`pidf.validate_conveyance` with a least-recently-used memo of ``entries``
    results (0: no memo, every call validated afresh)."""

    def __init__(self, entries: int = DEFAULT_ENTRIES, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self._memo = Lru(entries)
        self.entries = entries
        self.max_body = max_body
        # The inner memo: one PIDF-LO document's inspection, keyed by its bytes (and
        # charset, strict, max_size), for conveyances that miss because their headers
        # changed. Same size; 0 disables both.
        self.documents = DocumentMemo(entries, max_document=max_body)
        # S14 and the calling number, by what they read of the headers.
        self._markings: dict[tuple, tuple] = {}
        self._callers: dict[object, tuple[str | None]] = {}

    def clear(self) -> None:
        self._memo.clear()
        self.documents.clear()
        self._markings.clear()
        self._callers.clear()

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
            now = datetime.now(UTC) if now is None else utc_now(now)  # utc_now, without a call
            elins = frozenset(elins)
            read = _read(conv.headers) if self.entries else None
            seen = self._key(conv, read, strict, max_size, rename=True) if read is not None else None
            if seen is None:
                self._memo.misses += 1  # validated afresh all the same
                documents = self.documents if self.entries else None
                h = HeaderIndex(conv.headers)
                result = _Inspection(conv, now, strict, max_size, h.only(LOCATION_HEADERS), h.all("content-length"),
                                     documents).run()  # fmt: skip
                return finish_report(result, result.findings, h, conv.request_uri, elins, strict=strict)
            key, pairs = seen
            entry = self._memo.lookup(key) or self._learn(key, conv, read, now, strict, max_size)  # type: ignore[arg-type]
            if pairs and (entry.cid_targets or not entry.renamed) and not entry.renames(pairs):
                key, pairs = self._key(conv, read, strict, max_size, rename=False)  # type: ignore[arg-type,misc]
                entry = self._memo.lookup(key) or self._learn(key, conv, read, now, strict, max_size)  # type: ignore[arg-type]
            marking, marks = self._marking(read, conv.request_uri)  # type: ignore[arg-type]
            caller = self._calling_number(read)  # type: ignore[arg-type]
            return entry.report(now, conv, read[_CONTENT_LENGTH] or (), pairs, marking, marks, caller, elins)  # type: ignore[index]
        except Exception as exc:  # noqa: BLE001 - a report for any input, never a crash
            return internal_error_report(exc)

    def _learn(self, key: tuple, conv: Conveyance, read: list, now: datetime, strict: bool, max_size: int) -> _Entry:
        """Validate what a key stands for and remember it. The checks are given the
        located headers as keyed (renamed or not) and Content-Length: the conveyance's
        header list is not read."""
        renamed = key[-1]
        located = _index(key[0], LOCATION_HEADERS)
        inspected = conv
        if renamed:
            # The renamed conveyance: the parts as keyed (what the checks read of their
            # headers), with the bytes of this call's parts.
            parts = key[3]
            if parts is not None:
                parts = [MimePart(_part_headers(*keyed[:3]), p.content) for keyed, p in zip(parts, conv.parts)]  # type: ignore[arg-type]
            inspected = Conveyance(conv.headers, conv.body, parts, conv.body_defects, conv.request_uri)
        content_length = read[_CONTENT_LENGTH] or ()
        result = _Inspection(inspected, now, strict, max_size, located, content_length, self.documents).run()
        entry = _Entry(result, multipart=key[1] is None, renamed=renamed and not _marked(read, conv))
        self._memo.remember(key, entry)
        return entry

    def _marking(self, read: list, request_uri: str | None) -> tuple[Marking, tuple[Finding, ...]]:
        """:func:`pidf.conveyance.marking_of` (a new Marking) and its S14 findings, by
        exactly what it reads: the Priority values, the Request-URI, To without one."""
        key = (read[_PRIORITY], request_uri, None if request_uri else read[_TO])
        markings = self._markings
        known = markings.get(key)
        if known is None:
            marks = Findings()
            marking = marking_of(_index(read), request_uri, marks)
            known = _remember(markings, key, (marking.priority, marking.dialed, marking.kind, tuple(marks)), self.entries)
        return Marking(known[0], known[1], known[2]), known[3]

    def _calling_number(self, read: list) -> str | None:
        """:func:`pidf.conveyance.calling_number_of`, by what it reads of the
        P-Asserted-Identity and From values: of the usual one From name-addr, the part up
        to its ``>`` (:func:`pidf.sipvalues.name_addr_uri`), so not its tag."""
        values = read[_FROM]
        key: object = (read[_PAI], values)
        if values is not None and len(values) == 1 and read[_PAI] is None:
            value = values[0]
            start = value.find("<")
            end = value.find(">", start) if start >= 0 else -1
            if end > 0 and "," not in value:  # one item (split_outside_quotes), a name-addr
                key = value[: end + 1]
        callers = self._callers
        known = callers.get(key)
        if known is None:
            known = _remember(callers, key, (calling_number_of(_index(read)),), self.entries)
        return known[0]

    def _key(self, conv: Conveyance, read: list, strict: bool, max_size: int, *, rename: bool) -> tuple | None:
        """Exactly what the location checks read, or None when not worth remembering;
        and the (placeholder, id) of each Content-ID the key holds as a placeholder.

        The checks read the values of the located headers, and of a part the first
        Content-Type, Content-ID and Content-Disposition. With a multipart Content-Type
        they read the body only for its blankness (and its length, S03, per call), and
        a part's bytes only if it is a PIDF part or has a Content-ID (only such a part
        can be validated: cid resolution needs a Content-ID, Lync's fallback takes a
        PIDF part). So the SDP beside the PIDF-LO, which changes per call, is not in the
        key. Otherwise the body is the single part, and is in the key whole."""
        located = tuple(read[: len(LOCATION_HEADERS)])
        types = located[_CONTENT_TYPE]
        media = _media_type(types[0]) if types else None
        multipart = media is not None and media.type == "multipart"
        body = conv.body
        if multipart:
            blank = not body or body.isspace()  # not body.strip(), without the copy
            body = None  # type: ignore[assignment]
        elif len(body) > self.max_body:
            return None
        else:
            blank = None
        cids = list(located[_CONTENT_ID] or ()) if rename else None  # the SIP-level ones first
        keyed = with_id = None
        if conv.parts is not None:
            keys = _KEYS
            size = 0
            keyed, with_id = [], []
            for p in conv.parts:
                content_type = content_id = disposition = None
                for name, value in p.headers:
                    key = keys.get(name) or header_key(name)
                    if key == "content-type":
                        if content_type is None:
                            content_type = value
                    elif key == "content-id":
                        if content_id is None:
                            content_id = value
                    elif key == "content-disposition" and disposition is None:
                        disposition = value
                content = None
                pidf = _is_pidf(content_type)
                if not multipart or content_id is not None or pidf:
                    content = p.content
                    size += len(content)
                if content_id is not None:
                    with_id.append(len(keyed))
                    if cids is not None:
                        cids.append(content_id)
                keyed.append((content_type, content_id, disposition, content))
            if size > self.max_body:
                return None
        defects = tuple(conv.body_defects)
        renamed = _rename(located, keyed or [], with_id or [], cids) if cids else None
        parts = None if keyed is None else tuple(keyed)
        if renamed is not None:
            return (renamed[0], body, blank, parts, defects, strict, max_size, True), renamed[1]
        return (located, body, blank, parts, defects, strict, max_size, False), ()


__all__ = ["DEFAULT_ENTRIES", "DEFAULT_MAX_BODY", "ValidationMemo"]
