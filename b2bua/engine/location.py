"""What the B2BUA does to the location an emergency INVITE carries (architecture rule 4).

`apply_location_policy(request, policy, variant)` is pure: it returns the body, the
Content-Type and the header removals for leg B, plus a record of what came in and what
went out (each part's sha256), which goes to the CDR.

- `pass`: the certified SBC. Body bytes, part headers, Geolocation and
  Geolocation-Routing reach leg B unchanged (RFC 6442 §4.1: intermediaries SHOULD NOT
  modify or delete location values).
- `validate`: as `pass`, and the `pidf` findings and verdict are attached. Never a 424,
  never a rejection of an emergency call (RFC 6881 SP-33 item 5).
- `strip`: the non-certified SBC (e911-reference §1.10), with the partial faults real
  ones show, each selectable by `variant`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import structlog

from pidf.memo import DEFAULT_ENTRIES, ValidationMemo

from ..sip import BodyPart, Request
from .conveyance import conveyance_from_message

PIDF_TYPE = "application/pidf+xml"
LOCATION_HEADERS = ("Geolocation", "Geolocation-Routing")


@dataclass
class LocationOutcome:
    policy: str
    variant: str | None
    body: bytes
    content_type: str | None  # None: leg B carries no Content-Type
    remove_headers: list[str] = field(default_factory=list)
    stale_content_length: int | None = None  # reproduce an SBC that forgot to fix it
    record: dict = field(default_factory=dict)
    report: object | None = None  # pidf Report, for `validate`

    @property
    def changed(self) -> bool:
        return bool(self.remove_headers) or self.stale_content_length is not None or self.record.get("body_changed", False)


def part_summary(part: BodyPart, digests: dict[bytes, str] | None = None) -> dict:
    disposition = part.header("Content-Disposition")
    sha256 = hashlib.sha256(part.content).hexdigest()
    if digests is not None:
        digests[part.content] = sha256
    return {
        "content_type": part.header("Content-Type"),
        "content_id": part.content_id,
        "content_disposition": disposition,
        "size": len(part.content),
        "sha256": sha256,
    }


def body_summary(request: Request, body: bytes, content_type: str | None, digests: dict[bytes, str] | None = None,
                 split: tuple | None = None) -> list[dict]:  # fmt: skip
    """The parts of a body as records: one entry for a single-part body. ``digests``:
    where to put each part's sha256 by its bytes, for `validate` to reuse. ``split``:
    the request's (media type, multipart), when ``body`` is the request's own."""
    from ..sip import parse_media_type, parse_multipart

    if split is not None:
        media, multipart = split
    elif body is request.body and content_type == request.headers.get("Content-Type"):
        # The request's own body: its split is cached on the request, and `validate`
        # reads the same split (conveyance_from_message), so the body is split once.
        media, multipart = request.content_type, request.multipart
    else:
        media = parse_media_type(content_type) if content_type else None
        multipart = parse_multipart(body, media) if media is not None and media.is_multipart else None
    if media is not None and media.is_multipart:
        if multipart is not None:
            return [part_summary(part, digests) for part in multipart.parts]
    if not body:
        return []
    sha256 = hashlib.sha256(body).hexdigest()
    if digests is not None:
        digests[body] = sha256
    return [{
        "content_type": content_type,
        "content_id": request.headers.get("Content-ID"),
        "content_disposition": request.headers.get("Content-Disposition"),
        "size": len(body),
        "sha256": sha256,
    }]


def _is_pidf(part: BodyPart) -> bool:
    return (part.mime or "") == PIDF_TYPE


def apply_location_policy(request: Request, policy: str, variant: str | None = None, *, validate: bool = False) -> LocationOutcome:
    content_type = request.headers.get("Content-Type")
    body = request.body
    validating = policy == "validate" or validate
    digests: dict[bytes, str] | None = {} if validating else None  # the parts' sha256, for the report's too
    # The request's own body, split once (cached on the request) for the record and `validate`.
    split = (request.content_type, request.multipart)
    record: dict = {
        "policy": policy,
        "variant": variant if policy == "strip" else None,
        "content_type_in": content_type,
        "parts_in": body_summary(request, body, content_type, digests, split),
        "geolocation_in": request.headers.get_all("Geolocation"),
        "geolocation_routing_in": request.headers.get("Geolocation-Routing"),
        "headers_removed": [],
    }
    if policy == "strip":
        outcome = _strip(request, variant or "full", record)
    else:
        outcome = LocationOutcome(policy, None, body, content_type, record=record)
    if validating:
        outcome.report = _validate(request, digests, split)
        record["verdict"] = outcome.report.verdict if outcome.report is not None else None
        record["findings"] = [
            {"id": item.id, "severity": item.severity, "message": item.message} for item in outcome.report.findings
        ] if outcome.report is not None else []
    record["content_type_out"] = outcome.content_type
    if outcome.body is body and outcome.content_type == content_type:
        record["parts_out"] = [dict(part) for part in record["parts_in"]]  # same inputs, same summary
    else:
        record["parts_out"] = body_summary(request, outcome.body, outcome.content_type)
    record["body_changed"] = outcome.body != body
    record["headers_removed"] = [
        f"{name}: {value}" for name in outcome.remove_headers for value in request.headers.get_all(name)
    ]
    if outcome.stale_content_length is not None:
        record["content_length_out"] = outcome.stale_content_length
    outcome.record = record
    return outcome


def _strip(request: Request, variant: str, record: dict) -> LocationOutcome:
    content_type = request.headers.get("Content-Type")
    body = request.body
    multipart = request.multipart
    media = request.content_type
    geolocation = [name for name in LOCATION_HEADERS if name in request.headers]

    if variant == "drop-header":
        # Body untouched, the reference to it gone (Lync's server would not even notice).
        return LocationOutcome("strip", variant, body, content_type, ["Geolocation"] if "Geolocation" in request.headers else [])

    if variant == "drop-part-headers":
        # Multipart re-serialized with Content-Type as the only part header: Content-ID and
        # Content-Disposition lost, so `Geolocation: <cid:...>` dangles (what Sippy's and
        # FreeSWITCH's re-serializers do).
        if multipart is None:
            return LocationOutcome("strip", variant, body, content_type)
        parts = [BodyPart.build([("Content-Type", part.header("Content-Type") or "text/plain")], part.content)
                 for part in multipart.parts]
        return LocationOutcome("strip", variant, multipart.with_parts(parts).to_bytes(), content_type)

    if multipart is not None:
        kept = [part for part in multipart.parts if not _is_pidf(part)]
        if variant == "keep-multipart":
            new_body, new_type = multipart.with_parts(kept).to_bytes(), content_type
        elif len(kept) == 1:
            new_body, new_type = kept[0].content, kept[0].header("Content-Type")
        elif not kept:
            new_body, new_type = b"", None
        else:
            new_body, new_type = multipart.with_parts(kept).to_bytes(), content_type
    elif media is not None and media.mime == PIDF_TYPE:
        new_body, new_type = b"", None  # RFC 8262 single-part PIDF body
    else:
        new_body, new_type = body, content_type

    remove = [] if variant == "keep-geolocation" else geolocation
    if new_type is None and "Content-ID" in request.headers:
        remove.append("Content-ID")
    outcome = LocationOutcome("strip", variant, new_body, new_type, remove)
    if variant == "stale-content-length":
        outcome.stale_content_length = len(body)
    return outcome


# Phones re-send the same PIDF-LO on every call (a Lync client sends its LIS-provided
# document verbatim, timestamp and all), so `validate` remembers the location checks'
# results keyed by exactly the bytes they read; the time-dependent checks (P13, P16) and
# the per-call ones (S03, S14 marking, calling number, verdict) are still evaluated per
# call. A per-call Content-ID on the PIDF part (and in the Geolocation cid: URL) is keyed
# as a placeholder, so such a client hits that memo too; a conveyance it misses still
# hits the inner one, keyed by the document's bytes (pidf/docmemo.py). See pidf/memo.py
# and pidf/docmemo.py for why a hit equals a fresh validation.
_memo = ValidationMemo(DEFAULT_ENTRIES)


def configure_validation_cache(entries: int) -> None:
    """Size the memo of `validate` results: at most ``entries`` distinct location
    conveyances (per-call Content-IDs aside), and at most ``entries`` distinct PIDF-LO
    documents in its inner document memo; least
    recently used dropped first; 0 disables both. Reconfiguring empties them.
    ValueError for a negative size."""
    global _memo
    _memo = ValidationMemo(entries)


def validation_cache() -> ValidationMemo:
    """The memo in use (its ``hits``, ``misses`` and ``len()`` are for statistics)."""
    return _memo


def _validate(request: Request, digests: dict[bytes, str] | None = None, split: tuple | None = None) -> object | None:
    """Run the `pidf` checks. They never raise by contract; should they, the call must
    still go through (an emergency call is never failed for its location), so the error
    is logged and the verdict left empty. ``digests``, ``split``: what the record has
    computed already (see `conveyance_from_message`)."""
    try:
        return _memo.validate(conveyance_from_message(request, sha256=digests, split=split))
    except Exception:  # noqa: BLE001 - see docstring
        structlog.get_logger().exception("location.validate_failed", call_id=request.headers.get("Call-ID"))
        return None
