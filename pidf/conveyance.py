"""Location conveyance in a SIP message: the S checks (reference §6, S01-S17).

The SIP core parses the message and hands over a neutral :class:`Conveyance`
view; this module never parses SIP itself. It reads header *values*, resolves
``Geolocation: <cid:...>`` to body parts (RFC 6442 §4.1, RFC 2392), validates
the PIDF-LO part(s) once each, and decides the verdict.

Resolution of a cid (record which rule fired, reference §1.3 quirk 1):
``exact`` Content-ID match -> ``stripped-scheme`` (Lync's ``cid:sip:user@host``
against ``Content-ID: <user@host>``) -> ``last-pidf-part`` (what the Lync server
does anyway: "picks the last MIME part that has a PIDF-LO", [MS-SIPRE] §3.17.5.2).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote

from .docmemo import DocumentMemo
from .findings import Finding, Findings
from .model import PidfDocument
from .parse import DEFAULT_MAX_SIZE
from .registries import EMERGENCY_DIAL_STRINGS, PRIORITY_TOKENS, TEST_DIAL_STRINGS
from .report import LocationReference, Marking, PartSummary, Report, decide_verdict
from .sipvalues import (
    MediaType,
    boundary_defects,
    content_id_addr,
    content_id_valid,
    name_addr_uri,
    parse_media_type,
    parse_params,
    parse_uri_list,
    scheme_of,
    split_outside_quotes,
    uri_user,
)
from .validate import inspect_document, utc_now

PIDF_TYPE = "application/pidf+xml"
# RFC 6442 §4.1 location URI schemes (cid is by value) and the option tag each needs (§4.6).
REFERENCE_SCHEMES = {"sip": "geolocation-sip", "sips": "geolocation-sip", "pres": "geolocation-sip",
                     "http": "geolocation-http", "https": "geolocation-http"}  # fmt: skip
_SOS_URN = re.compile(r"^urn:service:sos(\.[a-z0-9\-]+)*$", re.IGNORECASE)
_TEST_URN = re.compile(r"^urn:service:test\.sos(\.[a-z0-9\-]+)*$", re.IGNORECASE)
_GEOLOCATION_ERROR = re.compile(r"^\s*(\d{1,3})\s*(?:;(.*))?$", re.DOTALL)
# RFC 3261 §7.3.3 compact forms, in case a caller did not expand them.
_COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length", "c": "content-type",
            "f": "from", "k": "supported", "t": "to", "v": "via", "s": "subject"}  # fmt: skip


@dataclass
class MimePart:
    headers: list[tuple[str, str]]  # the part's header fields in order, names as written, values unfolded
    content: bytes  # the part's body bytes


@dataclass
class Conveyance:
    headers: list[tuple[str, str]]  # SIP header fields in order; canonical long names; values unfolded
    body: bytes
    parts: list[MimePart] | None  # None when the body is not multipart or could not be split
    body_defects: list[str] = field(default_factory=list)  # MIME defects the tolerant splitter accepted
    request_uri: str | None = None
    # The hex SHA-256 of body or part bytes the caller has computed already, by those
    # bytes (the B2BUA's CDR record hashes every part): the part summaries reuse them.
    sha256: dict[bytes, str] = field(default_factory=dict, compare=False, repr=False)


_KEYS: dict[str, str] = {}


def header_key(name: str) -> str:
    """The lookup key of a header name: stripped, lower-case, long form."""
    key = _KEYS.get(name)
    if key is None:
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        if len(_KEYS) < 512:  # the few names a B2BUA sees; odd spellings must not grow it without bound
            _KEYS[name] = key
    return key


class HeaderIndex:
    """Case-insensitive header lookup; values in message order (a tuple per name)."""

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        found: dict[str, tuple[str, ...]] = {}
        keys = _KEYS
        for name, value in headers:
            key = keys.get(name) or header_key(name)
            values = found.get(key)
            found[key] = (value,) if values is None else (*values, value)
        self._map = found

    def all(self, name: str) -> tuple[str, ...]:
        return self._map.get(name.lower(), ())

    def first(self, name: str) -> str | None:
        values = self._map.get(name.lower())
        return values[0] if values else None

    def tokens(self, name: str) -> set[str]:
        """Comma-separated option tags of every such header, lower-cased (Supported, Require)."""
        return {t.strip().lower() for v in self.all(name) for t in v.split(",") if t.strip()}

    def only(self, names: tuple[str, ...]) -> HeaderIndex:
        """A view holding just these (lower-case, long-form) header names."""
        found = self._map
        return HeaderIndex.of({name: found[name] for name in names if name in found})

    @staticmethod
    def of(mapping: dict[str, tuple[str, ...]]) -> HeaderIndex:
        """An index of these values by lookup key (see :func:`header_key`)."""
        view = HeaderIndex.__new__(HeaderIndex)
        view._map = mapping
        return view

    def key(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Every name and its values, hashable: equal keys mean equal lookups."""
        return tuple(self._map.items())


@dataclass(slots=True)
class _Part:
    index: int
    headers: HeaderIndex
    content: bytes
    media: MediaType | None
    content_id: str | None
    where: str

    @property
    def mime(self) -> str | None:
        return self.media.mime if self.media is not None else None

    @property
    def is_pidf(self) -> bool:
        return self.mime == PIDF_TYPE

    @property
    def cid_addr(self) -> str | None:
        return content_id_addr(self.content_id)


_MEDIA_TYPES: dict[str, MediaType | None] = {}


def _media_type(raw: str | None) -> MediaType | None:
    """:func:`parse_media_type`, remembered for the few Content-Type values a B2BUA sees
    (the checks only read a MediaType; it is shared and must not be changed)."""
    if raw is None:
        return None
    media = _MEDIA_TYPES.get(raw, False)
    if media is False:
        media = parse_media_type(raw)
        if len(_MEDIA_TYPES) < 256:  # hostile values must not grow it without bound
            _MEDIA_TYPES[raw] = media
    return media


def digest(conv: Conveyance, content: bytes) -> str:
    """The hex SHA-256 of some bytes of ``conv``: the caller's, or computed."""
    return conv.sha256.get(content) or hashlib.sha256(content).hexdigest()


def _is_blank(data: bytes) -> bool:
    return not data.strip()


# The only SIP header fields the location checks (everything but S14 and the calling
# number) read. The checks are given a view of just these, so their result is a function
# of these values, the body and its parts, and the time (through Findings.timed only):
# what pidf.memo keys a memoised result on.
LOCATION_HEADERS = (
    "content-type", "content-id", "content-disposition", "geolocation",
    "geolocation-routing", "geolocation-error", "supported", "call-info",
)  # fmt: skip


class ContentLength:
    """S03: RFC 3261 §20.14, declared length equals the body length. Evaluated for each
    call (``per_call``): the SDP beside the PIDF-LO, hence the length, changes per call."""

    __slots__ = ()
    per_call = True

    def evaluate(self, call: tuple[tuple[str, ...], int]) -> tuple[tuple[str, str, str], ...]:
        values, actual = call
        if len(values) == 1 and values[0] == str(actual):
            return ()  # the usual case, without the parsing below
        if not values:
            return (("S03", "I", f"no Content-Length (mandatory over TCP/TLS, RFC 3261 §20.14); body is {actual} bytes"),)
        out = []
        if len(values) > 1:
            out.append(("S03", "E", f"{len(values)} Content-Length headers"))
        raw = values[0].strip()
        if not (raw.isascii() and raw.isdigit()):
            out.append(("S03", "E", f"Content-Length {values[0]!r} is not a number"))
        elif int(raw) != actual:
            out.append(("S03", "E", f"Content-Length says {int(raw)} but the body is {actual} bytes"))
        return tuple(out)


CONTENT_LENGTH = ContentLength()


@dataclass(slots=True)
class LocationResult:
    """What the location checks found, before the per-call parts (S14 marking, calling
    number, verdict) are added by :func:`finish_report`."""

    findings: Findings  # S14 findings go at index ``split``
    split: int
    split_slots: int  # len(findings.slots) at ``split``: the time-dependent slots before it
    location: object | None
    document: PidfDocument | None
    selected_part: int | None
    selected_part_rule: str | None
    references: list[LocationReference]
    parts: list[PartSummary]
    geolocation_routing: str | None
    first_part: int | None
    last_part: int | None
    has_reference: bool
    # S08: the Content-IDs (lower-case) the documents refer to by cid:, which pidf.memo
    # must not rename.
    cid_targets: frozenset[str] = frozenset()


class _Inspection:
    """One run of the S checks over a conveyance (state shared by the small steps)."""

    def __init__(self, conv: Conveyance, now: datetime | None, strict: bool, max_size: int, headers: HeaderIndex | None = None,
                 content_length: tuple[str, ...] | None = None, documents: DocumentMemo | None = None):  # fmt: skip
        self.conv = conv
        self.documents = documents  # pidf.docmemo: remembered inspections of PIDF-LO bytes seen before
        self.now = utc_now(now)
        if content_length is None:
            content_length = HeaderIndex(conv.headers).all("content-length")
        self.call = (content_length, len(conv.body))
        self.strict = strict
        self.max_size = max_size
        self.f = Findings(strict=strict)
        self.h = headers if headers is not None else HeaderIndex(conv.headers).only(LOCATION_HEADERS)
        self.media = _media_type(self.h.first("content-type"))
        self.single = False
        self.parts: list[_Part] = []
        self.refs: list[LocationReference] = []
        self.docs: dict[int, PidfDocument | None] = {}
        self.cid_targets: set[str] = set()

    # -- body shape --------------------------------------------------------
    def split_body(self) -> None:
        conv, media = self.conv, self.media
        if _is_blank(conv.body):
            return
        if media is not None and media.type == "multipart":
            for i, part in enumerate(conv.parts or []):
                hdrs = HeaderIndex(part.headers)
                self.parts.append(
                    _Part(i, hdrs, part.content, _media_type(hdrs.first("content-type")), hdrs.first("content-id"), f"part[{i}]")
                )
            return
        # A single-part body is "part 0"; RFC 8262 gives it a SIP-level Content-ID.
        self.single = True
        self.parts.append(_Part(0, self.h, conv.body, media, self.h.first("content-id"), "body"))

    def read_references(self) -> None:
        """S06 syntax: RFC 6442 §4.1, each locationValue is ``<URI> *(; param)``."""
        for n, value in enumerate(self.h.all("geolocation")):
            where = f"header Geolocation[{n}]"
            if not value.strip():
                self.f.error("S06", "empty Geolocation header (at least one locationValue required)", where)
                continue
            items, _ = parse_uri_list(value)
            for item in items:
                if item.uri is None or not item.uri:
                    self.f.error("S06", f"Geolocation value {item.raw!r} is not a <URI>", where)
                    continue
                self.refs.append(
                    LocationReference(uri=item.uri, scheme=scheme_of(item.uri), params=[(p.name, p.value) for p in item.params])
                )

    # -- S01-S05 -----------------------------------------------------------
    def check_content_type(self) -> None:
        """S01: RFC 5621 §4.2 multipart (unknown subtypes are mixed), or RFC 8262 single PIDF part."""
        attempt = any(r.by_value for r in self.refs) or any(p.is_pidf for p in self.parts)
        if not attempt or _is_blank(self.conv.body):
            return
        media = self.media
        if media is None:
            self.f.error("S01", "body without a readable Content-Type", "header Content-Type")
        elif media.type == "multipart":
            if media.subtype != "mixed":
                self.f.info("S01", f"{media.mime} is treated as multipart/mixed (RFC 5621 §4.2)", "header Content-Type")
        elif media.mime == PIDF_TYPE:
            if self.h.first("content-id") is None:
                self.f.error("S01", "single application/pidf+xml body without a SIP-level Content-ID (RFC 8262 §3)", "header Content-Type")
        else:
            self.f.error("S01", f"Content-Type {media.mime} cannot carry location by value (multipart/mixed needed)", "header Content-Type")

    def check_boundary(self) -> None:
        """S02: RFC 2046 §5.1.1 / RFC 2045 §5.1; E when the body could not be split, W when it could."""
        media = self.media
        if media is None or media.type != "multipart":
            return
        split_ok = self.conv.parts is not None
        codes = list(dict.fromkeys([*self.conv.body_defects, *sorted(boundary_defects(media))]))
        boundary = media.value("boundary")
        where = "header Content-Type"
        bad = self.f.warn if split_ok else self.f.error
        for code in codes:
            if code == "boundary-missing":
                self.f.error("S02", f"{media.mime} without a boundary parameter", where)
            elif code == "boundary-unquoted-tspecials":
                bad("S02", f"boundary {boundary!r} contains tspecials and must be quoted (RFC 2045 §5.1)", where)
            elif code == "boundary-whitespace":
                bad("S02", "whitespace after 'boundary=' or at the end of the boundary (RFC 2046 §5.1.1)", where)
            elif code == "boundary-too-long":
                bad("S02", f"boundary is {len(boundary or '')} characters; at most 70 (RFC 2046 §5.1.1)", where)
            elif code == "boundary-invalid-chars":
                bad("S02", f"boundary {boundary!r} has characters outside bchars (RFC 2046 §5.1.1)", where)
            elif code == "no-close-delimiter":
                bad("S02", "no closing --boundary-- delimiter", "body")
            elif code == "lf-line-endings":
                self.f.warn("S02", "bare LF line ends in the multipart body (CRLF required)", "body")
            elif code == "unsplittable":
                self.f.error("S02", "declared multipart but no delimiter line was found; parts unreadable", "body")
            elif code == "preamble":
                self.f.info("S02", "text before the first delimiter (a legal MIME preamble, RFC 2046 §5.1.1)", "body")
            elif code == "part-content-length":
                self.f.info("S02", "body parts carry their own Content-Length (not a MIME header; ignored)", "body")
            else:
                self.f.info("S02", f"MIME defect reported by the splitter: {code}", "body")
        if not split_ok and "unsplittable" not in codes and not _is_blank(self.conv.body):
            self.f.error("S02", "multipart body could not be split into parts", "body")

    def check_content_length(self) -> None:
        """S03 (see :class:`ContentLength`)."""
        self.f.timed(CONTENT_LENGTH, self.call, "header Content-Length")

    def check_part_headers(self) -> None:
        """S04 (every part typed) and S05 (Content-ID syntax and uniqueness)."""
        if not self.single:
            for p in self.parts:
                raw = p.headers.first("content-type")
                if raw is None:
                    self.f.error("S04", "body part has no Content-Type", p.where)
                elif p.media is None:
                    self.f.error("S04", f"body part Content-Type {raw!r} is not type/subtype", p.where)
        ids: list[tuple[str, str]] = []
        sip_cid = self.h.first("content-id")
        if sip_cid is not None and not self.single:
            ids.append(("header Content-ID", sip_cid))
        ids.extend((p.where, p.content_id) for p in self.parts if p.content_id is not None)
        seen: dict[str, str] = {}
        for where, value in ids:
            if not content_id_valid(value):
                self.f.error("S05", f"Content-ID {value.strip()!r} is not <id-left@id-right>", where)
            key = (content_id_addr(value) or "").lower()
            if key in seen:
                self.f.error("S05", f"Content-ID {value.strip()!r} also used by {seen[key]}", where)
            else:
                seen[key] = where

    # -- S06-S09: references --------------------------------------------------
    def resolve_references(self) -> None:
        """S07: RFC 2392 cid -> Content-ID, with the Lync fallbacks recorded."""
        pidf_parts = [p for p in self.parts if p.is_pidf]
        for n, ref in enumerate(self.refs):
            if not ref.by_value:
                continue
            where = f"Geolocation value {n}"
            target = unquote(ref.uri[4:]).strip()
            if not target:
                self.f.error("S07", f"{ref.uri!r} names no Content-ID", where)
                continue
            rule = "exact"
            matches = [p for p in self.parts if (p.cid_addr or "").lower() == target.lower()]
            if not matches:
                stripped = re.sub(r"^sips?:", "", target, flags=re.IGNORECASE)
                if stripped != target:
                    rule = "stripped-scheme"
                    matches = [p for p in self.parts if (p.cid_addr or "").lower() == stripped.lower()]
            if not matches and pidf_parts:
                rule = "last-pidf-part"
                matches = [pidf_parts[-1]]
            if not matches:
                self.f.error("S07", f"{ref.uri} matches no body part: dangling location reference", where)
                continue
            if len(matches) > 1:
                self.f.error("S07", f"{ref.uri} matches {len(matches)} body parts (exactly one expected)", where)
            ref.part, ref.rule = matches[0].index, rule
            if rule == "stripped-scheme":
                self.f.warn(
                    "S07",
                    f"{ref.uri} matches Content-ID {matches[0].content_id} only after stripping the URI scheme "
                    "(Lync cid:sip: quirk; RFC 2392 wants an exact match): resolved by rule stripped-scheme",
                    where,
                )
            elif rule == "last-pidf-part":
                self.f.warn(
                    "S07",
                    f"{ref.uri} matches no Content-ID; resolved by rule last-pidf-part to {matches[0].where} "
                    "(what the Lync server does)",
                    where,
                )

    def check_presence(self) -> None:
        """S06: RFC 6442 §4.1/§4.2.1, Geolocation present iff the request carries location."""
        if not self.h.all("geolocation") and any(p.is_pidf for p in self.parts):
            self.f.error(
                "S06",
                "PIDF-LO body but no Geolocation header (RFC 6442 §4.1); used anyway, as the Lync server does",
                "header Geolocation",
            )

    def validate_documents(self) -> None:
        """Validate each PIDF part (typed, or referenced) exactly once."""
        referenced = {r.part for r in self.refs if r.part is not None}
        for p in self.parts:
            if not (p.is_pidf or p.index in referenced):
                continue
            if not p.is_pidf:
                self.f.error("S04", f"referenced part has Content-Type {p.mime or 'none'}, not {PIDF_TYPE}", p.where)
            charset = p.media.value("charset") if p.media is not None else None
            sub = Findings(strict=self.strict, prefix=p.where)
            try:
                if self.documents is not None:
                    self.docs[p.index] = self.documents.inspect(p.content, sub, charset=charset, now=self.now, max_size=self.max_size)
                else:
                    self.docs[p.index] = inspect_document(p.content, sub, charset=charset, now=self.now, max_size=self.max_size)
            except Exception as exc:  # noqa: BLE001 - never raise for any bytes
                sub.error("P01", f"internal error while validating: {type(exc).__name__}: {exc}")
                self.docs[p.index] = None
            self.f.absorb(sub)

    def select(self) -> tuple[int | None, str | None]:
        """First Geolocation value that leads to a location (RFC 5491 rule 9 order); else
        Lync's rule: the last PIDF part with a location."""
        for ref in self.refs:
            doc = self.docs.get(ref.part) if ref.part is not None else None
            if doc is not None and doc.location is not None:
                return ref.part, ref.rule
        candidates = [i for i, d in sorted(self.docs.items()) if d is not None and d.location is not None and self.parts[i].is_pidf]
        if candidates:
            return candidates[-1], "last-pidf-part"
        return None, None

    def check_forward_references(self) -> None:
        """S08: RFC 5621 §9.2, a body part may only reference parts after it."""
        for i, doc in self.docs.items():
            if doc is None:
                continue
            for loc in doc.locations:
                for pb in loc.provided_by:
                    ref = pb.attributes.get("ref", "")
                    if not ref.lower().startswith("cid:"):
                        continue
                    target = unquote(ref[4:]).strip().lower()
                    self.cid_targets.add(target)
                    hits = [p for p in self.parts if (p.cid_addr or "").lower() == target]
                    if not hits:
                        self.f.warn("S08", f"{ref} in the PIDF-LO matches no body part", self.parts[i].where)
                    elif hits[0].index <= i:
                        self.f.warn(
                            "S08",
                            f"{ref} points back to {hits[0].where}; RFC 5621 §9.2 allows forward references only",
                            self.parts[i].where,
                        )

    def check_dispositions(self) -> None:
        """S09: RFC 5621 §8.1, §9.4 and RFC 7852 §6.4 on PIDF parts."""
        referenced = {r.part for r in self.refs if r.part is not None}
        for p in self.parts:
            if not p.is_pidf:
                continue
            raw = p.headers.first("content-disposition")
            if raw is None:
                continue
            pieces = split_outside_quotes(raw, ";")
            kind = pieces[0].strip().lower()
            params = parse_params(pieces[1:])
            if kind not in ("by-reference", "render"):
                self.f.warn("S09", f"PIDF part disposition {kind!r}; expected by-reference (RFC 7852 §6.4) or render", p.where)
            handling = next((q.value for q in params if q.name == "handling"), None)
            if handling is not None and handling.lower() not in ("required", "optional"):
                self.f.warn("S09", f"handling={handling!r} is neither required nor optional", p.where)
            if kind == "by-reference" and p.index not in referenced:
                self.f.error(
                    "S09",
                    "by-reference PIDF part that nothing references MUST NOT be processed (RFC 5621 §9.4); "
                    "used anyway for the emergency call",
                    p.where,
                )

    # -- S10-S12: the Geolocation family ---------------------------------------
    def check_schemes(self) -> None:
        """S10 (schemes, Supported tags, RFC 6442 §4.1/§4.6) and S11 (draft-era artefacts)."""
        supported = self.h.tokens("supported")
        for n, ref in enumerate(self.refs):
            where = f"Geolocation value {n}"
            if ref.by_value:
                pass
            elif ref.scheme == "geo":
                self.f.error("S10", f"{ref.uri}: geo: URIs are not location URIs for SIP conveyance (RFC 6442 §4.1)", where)
            elif ref.scheme not in REFERENCE_SCHEMES:
                self.f.error("S10", f"{ref.uri}: scheme {ref.scheme or '(none)'!r} is not sip, sips, pres, http, https or cid", where)
            elif REFERENCE_SCHEMES[ref.scheme] not in supported:
                tag = REFERENCE_SCHEMES[ref.scheme]
                self.f.error("S10", f"{ref.uri} by reference without 'Supported: {tag}' (RFC 6442 §4.6)", where)
            if any(name == "inserted-by" for name, _ in ref.params):
                self.f.info("S11", "draft-era 'inserted-by' parameter (kept: RFC 6442 §4.1 says ignore, do not remove)", where)
        if "geolocation" in supported:
            self.f.info("S11", "draft-era option tag 'Supported: geolocation' (RFC 6442 uses geolocation-sip / geolocation-http)", "header Supported")

    def check_routing(self) -> str | None:
        """S12: RFC 6442 §4.2, §4.2.1. Returns the effective value."""
        values = self.h.all("geolocation-routing")
        has_geolocation = bool(self.h.all("geolocation"))
        where = "header Geolocation-Routing"
        if not values:
            if has_geolocation:
                self.f.info("S12", "no Geolocation-Routing: treated as 'no' (RFC 6442 §4.2.1); emergency calls are routed by location anyway (RFC 6881 SP-33)", where)
                return "no"
            return None
        if len(values) > 1:
            self.f.error("S12", f"Geolocation-Routing appears {len(values)} times (at most once)", where)
        value = values[0].strip()
        if not value:
            self.f.error("S12", "empty Geolocation-Routing", where)
            return "no"
        if value.lower() not in ("yes", "no"):
            self.f.warn("S12", f"Geolocation-Routing {value!r} is neither yes nor no: treated as 'no'", where)
            return "no"
        return value.lower()

    # -- S14-S16 -----------------------------------------------------------------
    def check_geolocation_error(self) -> None:
        """S15 syntax: RFC 6442 §4.3, one value, 1-3 digits, optional code="text"."""
        check_geolocation_error_values(self.h.all("geolocation-error"), self.f)

    def check_call_info(self) -> None:
        """S16: RFC 7852 §6.1 additional-data references."""
        for n, value in enumerate(self.h.all("call-info")):
            where = f"header Call-Info[{n}]"
            items, missing_comma = parse_uri_list(value)
            if missing_comma:
                self.f.error("S16", "Call-Info values are not comma-separated (the RFC 7852 Fig. 17 mistake)", where)
            for item in items:
                purpose = item.param("purpose") or ""
                if not purpose.lower().startswith("emergencycalldata."):
                    continue
                block = purpose.split(".", 1)[1]
                uri = item.uri or ""
                scheme = scheme_of(uri)
                if scheme == "https":
                    continue
                if scheme == "cid":
                    target = unquote(uri[4:]).strip().lower()
                    hits = [p for p in self.parts if (p.cid_addr or "").lower() == target]
                    want = f"application/emergencycalldata.{block.lower()}+xml"
                    if not hits:
                        self.f.error("S16", f"{uri} ({purpose}) matches no body part", where)
                    elif (hits[0].mime or "") != want:
                        self.f.error("S16", f"{uri} ({purpose}) resolves to {hits[0].mime}, expected {want}", where)
                else:
                    self.f.error("S16", f"{purpose} by reference must use https, not {uri!r}", where)

    def check_several_pidf_parts(self) -> tuple[int | None, int | None]:
        """S17: RFC 5491 rule 9 (first document) vs Lync (last part)."""
        with_location = [i for i, d in sorted(self.docs.items()) if d is not None and d.location is not None and self.parts[i].is_pidf]
        if len(with_location) < 2:
            return None, None
        first, last = with_location[0], with_location[-1]
        a, b = self.docs[first].location, self.docs[last].location
        same = [c.to_dict() for c in a.civic] == [c.to_dict() for c in b.civic] and [s.to_dict() for s in a.shapes] == [
            s.to_dict() for s in b.shapes
        ]
        self.f.warn(
            "S17",
            f"{len(with_location)} PIDF-LO parts: RFC 5491 rule 9 takes {self.parts[first].where}, Lync takes "
            f"{self.parts[last].where}; the locations {'agree' if same else 'DIFFER'}",
            "body",
        )
        return first, last

    def part_summaries(self) -> list[PartSummary]:
        out = []
        for p in self.parts:
            disp = p.headers.first("content-disposition")
            out.append(
                PartSummary(
                    index=p.index,
                    content_type=p.headers.first("content-type"),
                    content_id=p.content_id,
                    disposition=disp,
                    size=len(p.content),
                    sha256=digest(self.conv, p.content),
                    pidf=p.is_pidf,
                )
            )
        return out

    def run(self) -> LocationResult:
        self.split_body()
        self.read_references()
        self.check_content_type()
        self.check_boundary()
        self.check_content_length()
        self.check_part_headers()
        self.resolve_references()
        self.check_presence()
        self.validate_documents()
        selected, rule = self.select()
        self.check_forward_references()
        self.check_dispositions()
        self.check_schemes()
        routing = self.check_routing()
        split, split_slots = len(self.f), len(self.f.slots)  # S14 (per call) comes here
        self.check_geolocation_error()
        self.check_call_info()
        first, last = self.check_several_pidf_parts()
        doc = self.docs.get(selected) if selected is not None else None
        return LocationResult(
            findings=self.f,
            split=split,
            split_slots=split_slots,
            location=doc.location if doc is not None else None,
            document=doc,
            selected_part=selected,
            selected_part_rule=rule,
            references=self.refs,
            parts=self.part_summaries(),
            geolocation_routing=routing,
            first_part=first,
            last_part=last,
            has_reference=any(r.scheme in REFERENCE_SCHEMES for r in self.refs),
            cid_targets=frozenset(self.cid_targets),
        )


def marking_of(h: HeaderIndex, request_uri: str | None, f: Findings) -> Marking:
    """S14: [MS-SIPRE] §2.2.23, RFC 6881 ED-62, RFC 3261 §20.26, RFC 7090."""
    priorities = h.all("priority")
    priority = priorities[0].strip() if priorities else None
    target = request_uri or name_addr_uri(h.first("to"))
    dialed = uri_user(target)
    digits = dialed.lstrip("+") if dialed else None
    if dialed and _TEST_URN.match(dialed) or digits in TEST_DIAL_STRINGS:
        kind = "test"
    elif dialed and _SOS_URN.match(dialed) or digits in EMERGENCY_DIAL_STRINGS:
        kind = "emergency"
    else:
        kind = "none"
    where = "header Priority"
    if len(priorities) > 1:
        f.warn("S14", f"{len(priorities)} Priority headers", where)
    if priority is not None and priority.lower() not in PRIORITY_TOKENS:
        f.warn("S14", f"Priority {priority!r} is not a registered value", where)
    is_emergency_priority = (priority or "").lower() == "emergency"
    if kind == "emergency" and not is_emergency_priority:
        got = f"Priority: {priority}" if priority else "no Priority header"
        f.warn("S14", f"call to {dialed} has {got}; emergency calls carry 'Priority: emergency' (Lync MUST)", where)
    elif kind == "none" and is_emergency_priority:
        f.warn("S14", f"Priority: emergency but {target or 'the target'} is neither a sos URN nor a known emergency dial string", where)
    return Marking(priority=priority, dialed=dialed, kind=kind)


def calling_number_of(h: HeaderIndex) -> str | None:
    """P-Asserted-Identity wins over From ([BW], [IP])."""
    for header in ("p-asserted-identity", "from"):
        for value in h.all(header):
            for item in split_outside_quotes(value, ","):
                user = uri_user(name_addr_uri(item))
                if user:
                    return user
    return None


def finish_report(
    result: LocationResult,
    findings: list[Finding],
    h: HeaderIndex,
    request_uri: str | None,
    elins: frozenset[str],
    *,
    strict: bool = False,
) -> Report:
    """Add what depends on this call alone (S14, calling number, verdict) to the location
    checks' ``findings`` (``result.findings``, or a memoised copy re-timed for now)."""
    split = result.split
    marks = Findings(strict=strict)
    marking = marking_of(h, request_uri, marks)
    all_findings = [*findings[:split], *marks, *findings[split:]] if marks else list(findings)
    caller = calling_number_of(h)
    location = result.location
    return Report(
        verdict=decide_verdict(location, all_findings, has_reference=result.has_reference, calling_number=caller, elins=elins),
        findings=all_findings,
        location=location,
        document=result.document,
        selected_part=result.selected_part,
        selected_part_rule=result.selected_part_rule,
        references=result.references,
        parts=result.parts,
        calling_number=caller,
        marking=marking,
        geolocation_routing=result.geolocation_routing,
        first_part=result.first_part,
        last_part=result.last_part,
    )


def check_geolocation_error_values(values: tuple[str, ...], f: Findings) -> None:
    where = "header Geolocation-Error"
    if len(values) > 1:
        f.error("S15", f"{len(values)} Geolocation-Error headers (exactly one value allowed)", where)
    for value in values:
        if len(split_outside_quotes(value, ",")) > 1:
            f.error("S15", "Geolocation-Error carries several values (exactly one allowed)", where)
            continue
        m = _GEOLOCATION_ERROR.match(value)
        if m is None:
            f.error("S15", f"Geolocation-Error {value.strip()!r} is not a 1-3 digit code", where)
            continue
        for p in parse_params(split_outside_quotes(m.group(2) or "", ";")):
            if p.name == "code" and not p.quoted:
                f.error("S15", "Geolocation-Error code text must be a quoted string", where)


def validate_conveyance(
    conv: Conveyance,
    *,
    now: datetime | None = None,
    elins: frozenset[str] = frozenset(),
    strict: bool = False,
    max_size: int = DEFAULT_MAX_SIZE,
) -> Report:
    """Run S01-S17 on a SIP request's neutral view, resolve and validate its PIDF-LO part(s).

    ``elins``: numbers known to be ELINs; a call with no location whose calling
    number (P-Asserted-Identity, else From) is one of them gets ``elin_only``.
    """
    try:
        h = HeaderIndex(conv.headers)
        result = _Inspection(conv, now, strict, max_size, h.only(LOCATION_HEADERS), h.all("content-length")).run()
        return finish_report(result, result.findings, h, conv.request_uri, frozenset(elins), strict=strict)
    except Exception as exc:  # noqa: BLE001 - a report for any input, never a crash
        return internal_error_report(exc)


def internal_error_report(exc: Exception) -> Report:
    finding = Finding("S00", "E", f"internal error while validating: {type(exc).__name__}: {exc}", None)
    return Report(verdict=decide_verdict(None, [finding]), findings=[finding])


def validate_response(status: int, response: Conveyance, *, request: Conveyance | None = None, emergency: bool | None = None) -> list[Finding]:
    """S15 for a response: RFC 6442 §4.3-4.4 and RFC 6881 SP-33(5).

    ``request`` (if known) tells whether location was sent and whether the call
    was an emergency call; ``emergency`` overrides the latter.
    """
    f = Findings()
    h = HeaderIndex(response.headers)
    values = h.all("geolocation-error")
    check_geolocation_error_values(values, f)
    request_had_location = None
    if request is not None:
        rh = HeaderIndex(request.headers)
        request_had_location = bool(rh.all("geolocation"))
        if emergency is None:
            emergency = marking_of(rh, request.request_uri, Findings()).kind != "none"
    if status == 424:
        if not values:
            f.error("S15", "424 (Bad Location Information) without Geolocation-Error (RFC 6442 §4.3)", "status 424")
        if request_had_location is False:
            f.error("S15", "424 to a request that carried no Geolocation header (RFC 6442 §4.3)", "status 424")
        if emergency:
            f.warn("S15", "424 on an emergency call: proxies SHOULD process it as best they can (RFC 6881 SP-33(5))", "status 424")
    elif values and status == 100:
        f.error("S15", "Geolocation-Error in 100 Trying (any other response may carry it)", "status 100")
    elif values and request_had_location is False:
        f.warn("S15", "Geolocation-Error in a response to a request without location", f"status {status}")
    return list(f)


def compare_conveyance(incoming: Conveyance, outgoing: Conveyance) -> list[Finding]:
    """S13: what an intermediary changed in the location conveyance (RFC 6442 §4.1).

    Existing Geolocation values SHOULD NOT be modified or removed; an added value
    MUST be appended last; a received Geolocation-Routing 'no' MUST NOT become
    'yes'; the referenced PIDF-LO bytes should pass unchanged.
    """
    f = Findings()
    before = _location_values(incoming)
    after = _location_values(outgoing)
    before_uris = [uri for uri, _ in before]
    after_uris = [uri for uri, _ in after]
    for uri, raw in before:
        if uri not in after_uris:
            f.warn("S13", f"Geolocation value <{uri}> was removed", "header Geolocation")
        else:
            new_raw = after[after_uris.index(uri)][1]
            if new_raw != raw:
                f.warn("S13", f"Geolocation value changed from {raw!r} to {new_raw!r} (parameters SHOULD NOT be removed)", "header Geolocation")
    kept = [u for u in after_uris if u in before_uris]
    if kept != [u for u in before_uris if u in after_uris]:
        f.warn("S13", "existing Geolocation values were reordered", "header Geolocation")
    added = [i for i, u in enumerate(after_uris) if u not in before_uris]
    if added and before:
        f.warn("S13", "a Geolocation value was added although the request already carried location (SHOULD NOT)", "header Geolocation")
    if added and kept and min(added) < max(after_uris.index(u) for u in kept):
        f.warn("S13", "an added Geolocation value is not last (RFC 6442 §4.1: append it at the end)", "header Geolocation")
    r_in = (HeaderIndex(incoming.headers).first("geolocation-routing") or "").strip().lower()
    r_out = (HeaderIndex(outgoing.headers).first("geolocation-routing") or "").strip().lower()
    if r_in == "no" and r_out == "yes":
        f.warn("S13", "Geolocation-Routing changed from 'no' to 'yes' (MUST NOT)", "header Geolocation-Routing")
    elif r_in and r_in != r_out:
        f.warn("S13", f"Geolocation-Routing changed from {r_in!r} to {r_out or 'absent'!r}", "header Geolocation-Routing")
    _compare_pidf_parts(incoming, outgoing, f)
    return list(f)


def _location_values(conv: Conveyance) -> list[tuple[str, str]]:
    out = []
    for value in HeaderIndex(conv.headers).all("geolocation"):
        items, _ = parse_uri_list(value)
        out.extend((item.uri, item.raw) for item in items if item.uri)
    return out


def _pidf_parts_by_id(conv: Conveyance) -> dict[str, bytes]:
    h = HeaderIndex(conv.headers)
    media = parse_media_type(h.first("content-type"))
    found: dict[str, bytes] = {}
    if conv.parts is not None and media is not None and media.type == "multipart":
        for n, part in enumerate(conv.parts):
            ph = HeaderIndex(part.headers)
            pm = parse_media_type(ph.first("content-type"))
            if pm is not None and pm.mime == PIDF_TYPE:
                found[content_id_addr(ph.first("content-id")) or f"#{n}"] = part.content
    elif media is not None and media.mime == PIDF_TYPE:
        found[content_id_addr(h.first("content-id")) or "#body"] = conv.body
    return found


def _compare_pidf_parts(incoming: Conveyance, outgoing: Conveyance, f: Findings) -> None:
    before, after = _pidf_parts_by_id(incoming), _pidf_parts_by_id(outgoing)
    for key, content in before.items():
        label = f"<{key}>" if not key.startswith("#") else "PIDF-LO part without Content-ID"
        if key in after:
            if after[key] != content:
                f.warn("S13", f"PIDF-LO part {label} was modified in transit", "body")
        elif len(before) == 1 and len(after) == 1:
            (other,) = after.values()
            f.warn("S13", f"PIDF-LO part {label} lost or changed its Content-ID", "body")
            if other != content:
                f.warn("S13", f"PIDF-LO part {label} was modified in transit", "body")
        else:
            f.warn("S13", f"PIDF-LO part {label} was removed", "body")


__all__ = [
    "Conveyance",
    "HeaderIndex",
    "MimePart",
    "compare_conveyance",
    "validate_conveyance",
    "validate_response",
]
