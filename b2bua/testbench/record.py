"""What the mock ECRC records of each INVITE it receives (e911-reference §4, "What the mock
ECRC should record per call"; §1.10 for what a stripped call looks like).

`build_record(request, ...)` is pure: no I/O, no clock (the arrival time is a parameter).
It returns one plain JSON-serialisable dict, the `EcrcRecord`, that the store keeps and the
HTTP API serves; docs/ecrc-api.md describes every key.

The location is judged by the `pidf` package (`validate_conveyance`). Should the checks
fail, the call is still recorded (an emergency call is never lost for its location): the
verdict is then null and `validation_error` says why.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from ..engine.location import body_summary
from ..engine.routing import dialled_number, is_test_urn, service_urn
from ..sip import Request, SipUri, TelUri, parse_name_addr
from ..sip.grammar import parse_params
from ..sip.grammar import unquote as unquote_string

PIDF_TYPE = "application/pidf+xml"

VERDICTS = (
    "location_by_value_valid",
    "by_value_degraded",
    "by_reference_only",
    "no_location",
    "elin_only",
)
ROUTABLE_VERDICTS = frozenset({"location_by_value_valid", "by_value_degraded"})

ROUTABLE_BY_LOCATION = "routable_by_location"
ECRC_MUST_ASK = "ecrc_must_ask"
DISPOSITIONS = (ROUTABLE_BY_LOCATION, ECRC_MUST_ASK)

DEFAULT_TEST_NUMBERS = ("933",)
NO_LOCATION_TEXT = "no location received"


# -- the record ---------------------------------------------------------------------------


def build_record(
    request: Request,
    *,
    ecrc: str,
    transport: str,
    source: str,
    arrived_at: datetime,
    elins: Iterable[str] = frozenset(),
    test_numbers: Iterable[str] = DEFAULT_TEST_NUMBERS,
    raw: bytes | None = None,
) -> dict[str, Any]:
    """The record of one INVITE as it arrived at ECRC instance `ecrc`.

    `source` is the sender's `host:port`; `transport` is UDP/TCP/TLS. `elins` are the ELINs
    the bench knows (a caller ID among them fills `elin`). `raw`, when given, is the whole
    message as received, so that `content_length_actual` counts the octets that really
    followed the header block (a UDP datagram may carry more than Content-Length says;
    the parser keeps only the declared length).
    """
    headers = request.headers
    content_type = headers.get("Content-Type")
    geolocation = headers.get_all("Geolocation")
    parts = body_summary(request, request.body, content_type)
    elins = frozenset(elins)
    report, validation_error = _validate(request, now=arrived_at, elins=elins)
    selection = _selection_of(request, report)

    location = _to_dict(getattr(report, "location", None)) if report is not None else None
    verdict = _verdict_of(report)
    findings = [_finding_dict(item) for item in getattr(report, "findings", None) or []] if report is not None else []
    references = getattr(report, "references", None) if report is not None else None
    document = getattr(report, "document", None) if report is not None else None

    caller_id = caller_id_of(request)
    # The ELIN gateway path (e911-reference §1.8): the calling number is an ELIN the PSAP
    # resolves through ALI; `pidf` turns "no location" into `elin_only` for such a call.
    elin = matching_elin(caller_id, elins)

    declared_raw, declared = _declared_length(request)
    record: dict[str, Any] = {
        "id": None,  # given by the store
        "arrived_at": iso_utc(arrived_at),
        "ecrc": ecrc,
        "transport": transport,
        "source": source,
        "method": request.method,
        "request_uri": str(request.uri),
        "from": headers.get("From"),
        "to": headers.get("To"),
        "pai": _joined(headers.get_all("P-Asserted-Identity")),
        "call_id": headers.get("Call-ID"),
        "cseq": headers.get("CSeq"),
        "contact": headers.get("Contact"),
        "user_agent": headers.get("User-Agent"),
        "priority": headers.get("Priority"),
        "resource_priority": headers.get("Resource-Priority"),
        "supported": headers.get_all("Supported"),
        "require": headers.get_all("Require"),
        "call_info": headers.get_all("Call-Info"),
        "geolocation": geolocation,
        "geolocation_routing": headers.get("Geolocation-Routing"),
        "geolocation_resolution": (
            [_to_dict(ref) for ref in references] if references is not None else resolve_geolocation(request)
        ),
        "content_type": content_type,
        "content_length_declared": declared,
        "content_length_declared_raw": declared_raw,
        "content_length_actual": _actual_length(request, raw),
        "parts": parts,
        "pidf": selection.text if selection else None,
        "pidf_part": selection.index if selection else None,
        "pidf_selected_by": selection.rule if selection else None,
        "pidf_sha256": selection.sha256 if selection else None,
        "location": location,
        "pidf_entity": getattr(document, "entity", None),
        "address": None,
        "verdict": verdict,
        "findings": findings,
        "validation_error": validation_error,
        "disposition": ECRC_MUST_ASK,
        "caller_id": caller_id,
        "is_test": is_test_call(request, test_numbers),
        "readback": None,
        "elin": elin,
        **route_info(request),
    }
    record["address"] = address_text(location)
    record["disposition"] = disposition_of(verdict, location)
    if record["is_test"]:
        record["readback"] = readback_text(record)
    return record


def route_info(request: Request) -> dict[str, Any]:
    """How the B2BUA routed the call, from its `E911-Route-Info` header (when it adds one):
    the caller's site, the WAN links crossed, CAC standing and why a PSTN route was taken."""
    value = request.headers.get("E911-Route-Info")
    params = parse_params(value) if value else None
    def get(name: str) -> str | None:
        item = params.get(name) if params is not None else None
        return unquote_string(item) if item else None
    links = get("links")
    return {"site": get("site"), "link": links, "links": links.split(",") if links else [],
            "cac": get("cac"), "pstn_reason": get("pstn-reason"), "b2bua_correlation_id": get("correlation-id")}


def disposition_of(verdict: str | None, location: dict | None) -> str:
    """`routable_by_location` when the location came by value, is valid or merely degraded,
    and names a place (a usable civic address or geodetic position); else the ECRC
    call-taker must ask the caller (e911-reference §1.1, §4 item 7)."""
    if verdict in ROUTABLE_VERDICTS and has_usable_location(location):
        return ROUTABLE_BY_LOCATION
    return ECRC_MUST_ASK


# -- caller, test calls, ELINs -------------------------------------------------------------


def caller_id_of(request: Request) -> str | None:
    """The callback identity: the user part of P-Asserted-Identity wins over From's
    (e911-reference §1.9). User-part parameters such as `;phone-context=` are dropped."""
    for value in request.headers.get_all("P-Asserted-Identity"):
        user = _user_of(value)
        if user:
            return user
    value = request.headers.get("From")
    return _user_of(value) if value else None


def _user_of(value: str) -> str | None:
    try:
        uri = parse_name_addr(value).uri
    except Exception:  # noqa: BLE001 - a malformed identity is recorded raw, never fatal
        return None
    if isinstance(uri, TelUri):
        return uri.number
    if isinstance(uri, SipUri) and uri.user:
        return unquote(uri.user.split(";", 1)[0])
    return None


def is_test_call(request: Request, test_numbers: Iterable[str] = DEFAULT_TEST_NUMBERS) -> bool:
    """A 933-style test number or an RFC 6881 §17.2 `urn:service:test.sos*` URN, in the
    Request-URI or the To URI (a leading `+` ignored, as Lync prepends one)."""
    bare_numbers = {number.lstrip("+") for number in test_numbers}
    uris = [request.uri]
    try:
        uris.append(request.to.uri)
    except Exception:  # noqa: BLE001 - an unparseable To still gets recorded
        pass
    for uri in uris:
        urn = service_urn(uri)
        if urn is not None and is_test_urn(urn):
            return True
        number = dialled_number(uri)
        if number is not None and number.lstrip("+") in bare_numbers:
            return True
    return False


def _digits(number: str) -> str:
    return "".join(char for char in number if "0" <= char <= "9")


def matching_elin(caller_id: str | None, elins: Iterable[str]) -> str | None:
    """The known ELIN the caller ID is, compared on digits (`+1 425-555-0100` and
    `4255550100` are the same NANP number), or None."""
    if not caller_id:
        return None
    caller = _digits(caller_id)
    if not caller:
        return None
    for elin in elins:
        digits = _digits(elin)
        if not digits:
            continue
        if caller == digits or (len(caller) == 11 and caller[0] == "1" and caller[1:] == digits) or (
            len(digits) == 11 and digits[0] == "1" and digits[1:] == caller
        ):
            return elin
    return None


# -- the PIDF-LO part ------------------------------------------------------------------------


@dataclass(frozen=True)
class PidfSelection:
    index: int  # in `parts`
    content: bytes
    rule: str  # exact | stripped-scheme | single-part | last-pidf-part

    @property
    def text(self) -> str:
        return decode_xml(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _cid_of(value: str) -> str | None:
    """`<cid:abc@host>;inserted-by=...` -> `abc@host` (RFC 2392: %-decoded)."""
    uri = _uri_of(value)
    if uri is None or not uri.lower().startswith("cid:"):
        return None
    return unquote(uri[4:])


def _uri_of(value: str) -> str | None:
    match = re.match(r"\s*<([^>]*)>", value)
    if match:
        return match.group(1).strip()
    text = value.split(";", 1)[0].strip()
    return text or None


def _params_of(value: str) -> list[list[str | None]]:
    """`<uri>;a="b";c` -> [["a", "b"], ["c", None]]; [] when unreadable."""
    end = value.find(">")
    rest = value[end + 1 :] if end >= 0 else value.partition(";")[2]
    try:
        return [[name, _unquote(param)] for name, param in parse_params(rest).items()]
    except Exception:  # noqa: BLE001 - recorded as received in `geolocation` anyway
        return []


def _unquote(value: str | None) -> str | None:
    if value is not None and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _bare_content_id(content_id: str | None) -> str | None:
    if content_id is None:
        return None
    text = content_id.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text.strip()


def _match_cid(cid: str, content_id: str | None) -> str | None:
    """How a cid reference matches a Content-ID: `exact` (RFC 2392), `stripped-scheme`
    (Lync's `cid:sip:user@host` against `<user@host>`, e911-reference §1.3 quirk 1)."""
    bare = _bare_content_id(content_id)
    if bare is None:
        return None
    if cid == bare:
        return "exact"
    lower = cid.lower()
    for prefix in ("sip:", "sips:"):
        if lower.startswith(prefix) and cid[len(prefix) :] == bare:
            return "stripped-scheme"
    return None


def _body_parts(request: Request) -> list[tuple[str | None, str | None, bytes]]:
    """(mime, content-id, content) of each part; a single-part body is one part whose
    Content-ID is the SIP-level header (RFC 8262)."""
    multipart = request.multipart
    if multipart is not None:
        return [(part.mime, part.content_id, part.content) for part in multipart.parts]
    media = request.content_type
    if media is not None and media.is_multipart:
        return []  # unsplittable multipart: nothing to select
    if not request.body:
        return []
    return [(media.mime if media else None, request.headers.get("Content-ID"), request.body)]


def resolve_geolocation(request: Request) -> list[dict[str, Any]]:
    """For each Geolocation value: its URI, scheme, parameters, and the part a `cid:`
    resolves to (index into `parts`) with the rule that fired; null part = dangling
    reference. The same shape as `pidf`'s `LocationReference.to_dict()`, whose answer the
    record prefers; this is the fallback when the checks did not run."""
    parts = _body_parts(request)
    out: list[dict[str, Any]] = []
    for value in request.headers.get_all("Geolocation"):
        uri = _uri_of(value)
        scheme = uri.split(":", 1)[0].lower() if uri and ":" in uri else None
        entry: dict[str, Any] = {
            "uri": uri,
            "scheme": scheme,
            "params": _params_of(value),
            "by_value": scheme == "cid",
            "part": None,
            "rule": None,
        }
        cid = _cid_of(value)
        if cid is not None:
            for rule_wanted in ("exact", "stripped-scheme"):
                found = next(
                    (index for index, (_, content_id, _) in enumerate(parts) if _match_cid(cid, content_id) == rule_wanted),
                    None,
                )
                if found is not None:
                    entry["part"], entry["rule"] = found, rule_wanted
                    break
        out.append(entry)
    return out


def select_pidf(request: Request) -> PidfSelection | None:
    """The PIDF-LO part the location was read from: the first `application/pidf+xml`
    part a Geolocation cid resolves to (exact, then with the `sip:` scheme stripped);
    failing that, the last PIDF part (Lync's server ignores the header and takes the last
    PIDF-LO part, MS-SIPRE §3.17.5.2); a single-part PIDF body is itself (RFC 8262)."""
    parts = _body_parts(request)
    if not parts:
        return None
    pidf_indexes = [index for index, (mime, _, _) in enumerate(parts) if mime == PIDF_TYPE]
    if not pidf_indexes:
        return None
    if request.multipart is None:
        index = pidf_indexes[0]
        return PidfSelection(index, parts[index][2], "single-part")
    for entry in resolve_geolocation(request):
        if entry["part"] is not None and entry["part"] in pidf_indexes:
            return PidfSelection(entry["part"], parts[entry["part"]][2], entry["rule"])
    index = pidf_indexes[-1]
    return PidfSelection(index, parts[index][2], "last-pidf-part")


_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def decode_xml(content: bytes) -> str:
    """The PIDF-LO bytes as text, exactly: UTF-8 (the RFC 3023 default), else the encoding
    its XML declaration names or its BOM implies, else Latin-1 (every byte kept)."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    match = _XML_ENCODING.match(content)
    if match:
        try:
            return content.decode(match.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return content.decode("latin-1")


# -- validation ------------------------------------------------------------------------------


def _selection_of(request: Request, report: Any) -> PidfSelection | None:
    """The part `pidf` read the location from; when it found none (no PIDF part, or one
    without a usable location), the part a reader would have taken (`select_pidf`)."""
    index = getattr(report, "selected_part", None) if report is not None else None
    if index is not None:
        parts = _body_parts(request)
        if 0 <= index < len(parts):
            return PidfSelection(index, parts[index][2], getattr(report, "selected_part_rule", None) or "selected")
    return select_pidf(request)


def _validate(request: Request, *, now: datetime, elins: frozenset[str]) -> tuple[Any, str | None]:
    """Run the `pidf` checks as of the arrival time (staleness is judged against it, so
    the record is a pure function of its inputs); never raises (the call must be
    recorded regardless of what the checks do)."""
    try:
        from pidf.conveyance import validate_conveyance

        from ..engine.conveyance import conveyance_from_message

        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return validate_conveyance(conveyance_from_message(request), now=now, elins=elins), None
    except Exception as error:  # noqa: BLE001 - see docstring
        return None, f"{type(error).__name__}: {error}"


def _verdict_of(report: Any) -> str | None:
    if report is None:
        return None
    verdict = getattr(report, "verdict", None)
    if verdict is None:
        return None
    return str(getattr(verdict, "value", verdict))


def _finding_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return dict(item)
    if hasattr(item, "to_dict"):
        return item.to_dict()
    return {
        "id": getattr(item, "id", None),
        "severity": getattr(item, "severity", None),
        "message": getattr(item, "message", None),
    }


def _to_dict(model: Any) -> dict | None:
    if model is None:
        return None
    if isinstance(model, dict):
        return model
    return model.to_dict()


# -- reading the parsed location -------------------------------------------------------------


def selected_location(location: dict | None) -> dict | None:
    """The pidf `Location` dict the location was read from: `location` itself, or the
    selected one of a whole-document dict (`{"entity", "selected", "locations"}`)."""
    if not location:
        return None
    if "locations" in location:
        index = location.get("selected")
        locations = location.get("locations") or []
        if index is None or not 0 <= index < len(locations):
            return None
        return locations[index]
    return location


def _civic_get(civic: dict, name: str) -> str | None:
    for item in civic.get("fields") or []:
        if item.get("name") == name and item.get("value"):
            return item["value"]
    return None


def _civic_usable(civic: dict) -> bool:
    """A civic address a PSAP can find: a street (RD, or A6 in the obsolete civicLoc
    form) and a place (city A3, state A1 or postal code PC)."""
    street = _civic_get(civic, "RD") or _civic_get(civic, "A6")
    place = _civic_get(civic, "A3") or _civic_get(civic, "A1") or _civic_get(civic, "PC")
    return bool(street and place)


def _shape_usable(shape: dict) -> bool:
    for position in shape.get("positions") or []:
        if len(position) >= 2:
            lat, lon = position[0], position[1]
            if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and -90 <= lat <= 90 and -180 <= lon <= 180:
                return True
    return False


def has_usable_location(location: dict | None) -> bool:
    chosen = selected_location(location)
    if not chosen:
        return False
    return any(_civic_usable(civic) for civic in chosen.get("civic") or []) or any(
        _shape_usable(shape) for shape in chosen.get("shapes") or []
    )


def civic_text(civic: dict) -> str:
    """A civic address the way a call-taker reads it back:
    `3910 163rd Ave NE, Redmond WA 98052, US, 40/4451`."""
    g = lambda name: _civic_get(civic, name)  # noqa: E731
    street = " ".join(
        value
        for value in (g("HNP"), g("HNO"), g("HNS"), g("PRM"), g("PRD"), g("STP"), g("RD") or g("A6"), g("STS"), g("POD"), g("POM"))
        if value
    )
    detail = ", ".join(
        f"{label} {value}"
        for label, value in (("Bldg", g("BLD")), ("Floor", g("FLR")), ("Unit", g("UNIT")), ("Room", g("ROOM")))
        if value
    )
    place = " ".join(value for value in (g("A3"), g("A1"), g("PC")) if value)
    return ", ".join(value for value in (street, detail, place, g("country"), g("LOC")) if value)


def shape_text(shape: dict) -> str:
    positions = shape.get("positions") or []
    kind = shape.get("shape") or "shape"
    if not positions:
        return kind
    lat, lon = positions[0][0], positions[0][1]
    text = f"{kind} at {lat:.6f}, {lon:.6f}" if isinstance(lat, float) and isinstance(lon, float) else f"{kind} at {lat}, {lon}"
    radius = (shape.get("measures") or {}).get("radius")
    if radius and radius.get("value") is not None:
        text += f" radius {radius['value']:g}{' ' + _uom_text(radius.get('uom')) if radius.get('uom') else ''}"
    return text


def _uom_text(uom: str) -> str:
    return "m" if uom.endswith(":9001") else uom


def address_text(location: dict | None) -> str | None:
    """One line for the location received: the civic address, else the geodetic shape."""
    chosen = selected_location(location)
    if not chosen:
        return None
    for civic in chosen.get("civic") or []:
        text = civic_text(civic)
        if text:
            return text
    for shape in chosen.get("shapes") or []:
        return shape_text(shape)
    return None


def readback_text(record: dict) -> str:
    """What the ECRC reads back to a 933 / test-URN caller: the calling number and the
    address received (Bandwidth/IntelePeer 933 service, e911-reference §1.9), e.g.
    `Test call from +14255550100. Address received: 3910 163rd Ave NE, Redmond WA 98052,
    US, 40/4451`, or `Test call from +14255550100: no location received`."""
    caller = record.get("caller_id") or "an unknown number"
    address = record.get("address") or address_text(record.get("location"))
    if address:
        text = f"Test call from {caller}. Address received: {address}"
    else:
        text = f"Test call from {caller}: {NO_LOCATION_TEXT}"
        references = [
            str(entry.get("uri"))
            for entry in record.get("geolocation_resolution") or []
            if entry.get("uri") and entry.get("scheme") not in (None, "cid")
        ]
        if references:
            text += f" by value (by reference: {', '.join(references)})"
    if record.get("elin"):
        text += f". Calling number is ELIN {record['elin']}"
    return text


# -- small helpers ---------------------------------------------------------------------------


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, so that strings sort as times do
    (`2024-05-01T12:00:00.000000+00:00`). A naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _joined(values: list[str]) -> str | None:
    return ", ".join(values) if values else None


def _declared_length(request: Request) -> tuple[str | None, int | None]:
    fields = request.headers.fields_named("Content-Length")
    if not fields:
        return None, None
    text = fields[0].value
    stripped = text.strip()
    return text, int(stripped) if stripped.isascii() and stripped.isdigit() else None


def _actual_length(request: Request, raw: bytes | None) -> int:
    """Octets after the header block of `raw` (found as the SIP parser finds it: the
    first empty line after any leading line ends, RFC 3261 §7.5)."""
    if raw is None:
        return len(request.body)
    data = raw.lstrip(b"\r\n")
    ends = [(position, len(blank)) for blank in (b"\r\n\r\n", b"\n\n") if (position := data.find(blank)) >= 0]
    if not ends:
        return 0
    position, size = min(ends)
    return len(data) - position - size
