"""PIDF-LO for E9-1-1: secure parsing, a typed model, the reference §6 checks
(S01-S17, P01-P17, C01-C10, G01-G08, M01-M02), verdicts, and a generator.

Sans-I/O: no sockets, no asyncio, no SIP parsing (the SIP core hands over a
:class:`~pidf.conveyance.Conveyance`). See docs/pidf.md.
"""

from .conveyance import Conveyance, MimePart, compare_conveyance, validate_conveyance, validate_response
from .findings import Finding, Verdict
from .model import (
    CivicAddress,
    CivicField,
    GeodeticShape,
    Location,
    Measure,
    MsExtension,
    PidfDocument,
    ProvidedBy,
    UsageRules,
)
from .parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE
from .report import LocationReference, Marking, PartSummary, Report
from .validate import validate_document


def read_document(data: bytes, *, charset: str | None = None) -> PidfDocument | None:
    """Just the model of a document (securely parsed), or None if it cannot be parsed."""
    from .extract import read_document as _read
    from .findings import Findings
    from .parse import parse_xml

    parsed = parse_xml(data, Findings(), charset=charset)
    return _read(parsed.root) if parsed.root is not None else None


__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "CivicAddress",
    "CivicField",
    "Conveyance",
    "Finding",
    "GeodeticShape",
    "Location",
    "LocationReference",
    "Marking",
    "Measure",
    "MimePart",
    "MsExtension",
    "PartSummary",
    "PidfDocument",
    "ProvidedBy",
    "Report",
    "UsageRules",
    "Verdict",
    "compare_conveyance",
    "read_document",
    "validate_conveyance",
    "validate_document",
    "validate_response",
]
