"""``pidf`` command line: validate PIDF-LO documents or whole SIP messages, build samples.

Exit status of ``pidf validate``: 0 no E finding, 1 some E finding, 2 unusable
arguments (missing or unreadable file, bad option).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from .build import SAMPLE_KINDS, sample_document
from .conveyance import Conveyance, compare_conveyance, validate_conveyance, validate_response
from .findings import ERROR, Finding, Verdict
from .parse import DEFAULT_MAX_SIZE
from .report import Report
from .validate import validate_document

_REQUEST_LINE = re.compile(rb"^[A-Za-z]+ \S+ SIP/2\.0\r?$")
_STATUS_LINE = re.compile(rb"^SIP/2\.0 (\d{3})(?: |\r?$)")


class UsageError(Exception):
    """A problem with the arguments or the environment: exit status 2."""


def _first_line(data: bytes) -> bytes:
    return data.lstrip(b"\r\n").split(b"\n", 1)[0]


def is_sip_message(data: bytes) -> bool:
    """A whole SIP message starts with a request line or a status line (RFC 3261 §7.1, §7.2)."""
    line = _first_line(data)
    return bool(_REQUEST_LINE.match(line) or _STATUS_LINE.match(line))


def _conveyance_from_bytes(data: bytes) -> Conveyance:
    try:
        from b2bua.engine.conveyance import conveyance_from_bytes  # the SIP core's splitter
    except ImportError as exc:
        raise UsageError(f"SIP messages need b2bua.engine.conveyance ({exc})") from exc
    return conveyance_from_bytes(data)


def validate_bytes(data: bytes, *, elins: frozenset[str] = frozenset(), now: datetime | None = None, strict: bool = False,
                   max_size: int = DEFAULT_MAX_SIZE) -> Report:  # fmt: skip
    """Validate a bare PIDF-LO document or a whole SIP message."""
    if not is_sip_message(data):
        return validate_document(data, now=now, strict=strict, max_size=max_size)
    try:
        conv = _conveyance_from_bytes(data)
    except UsageError:
        raise
    except ValueError as exc:
        finding = Finding("S00", ERROR, f"unparseable SIP message: {exc}")
        return Report(verdict=Verdict.NO_LOCATION, findings=[finding])
    except Exception as exc:  # noqa: BLE001 - a report for any bytes, even if the SIP core trips
        finding = Finding("S00", ERROR, f"SIP message could not be analysed: {type(exc).__name__}: {exc}")
        return Report(verdict=Verdict.NO_LOCATION, findings=[finding])
    report = validate_conveyance(conv, now=now, elins=elins, strict=strict, max_size=max_size)
    status = _STATUS_LINE.match(_first_line(data))
    if status:
        report.findings.extend(validate_response(int(status.group(1)), conv))
    return report


def _parse_now(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pidf", description="PIDF-LO validator and generator for E9-1-1 location conveyance.")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="validate PIDF-LO documents or whole SIP messages")
    v.add_argument("files", nargs="+", metavar="FILE", help="a PIDF-LO document (.xml) or a SIP message (.sip)")
    v.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    v.add_argument("--elin", action="append", default=[], metavar="NUMBER", help="a known ELIN (repeatable): a call from it without location is elin_only")
    v.add_argument("--now", type=_parse_now, metavar="ISO", help="judge timestamps against this time instead of the clock")
    v.add_argument("--strict", action="store_true", help="report tolerated schema violations (Lync quirks) as errors")
    v.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE, metavar="BYTES", help="largest document accepted (default 65536)")
    c = sub.add_parser("compare", help="S13: what an intermediary changed between two SIP messages")
    c.add_argument("incoming", metavar="INCOMING", help="the request as the intermediary received it")
    c.add_argument("outgoing", metavar="OUTGOING", help="the request as it sent it on")
    c.add_argument("--json", action="store_true", help="print JSON")
    b = sub.add_parser("build", help="write a sample PIDF-LO document")
    b.add_argument("--kind", required=True, choices=SAMPLE_KINDS)
    b.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    b.add_argument("--timestamp", type=_parse_now, metavar="ISO", help="timestamp to write (default now)")
    return parser


def _print_text(name: str, report: Report) -> None:
    print(f"{name}: {report.verdict.value}")
    for f in report.findings:
        where = f"  [{f.where}]" if f.where else ""
        print(f"  {f.severity} {f.id} {f.message}{where}")


def _cmd_validate(args: argparse.Namespace) -> int:
    inputs = [(name, _read(name)) for name in args.files]
    elins = frozenset(args.elin)
    results = []
    for name, data in inputs:
        report = validate_bytes(data, elins=elins, now=args.now, strict=args.strict, max_size=args.max_size)
        results.append((name, report))
    if args.json:
        out = []
        for name, r in results:
            entry = {"file": name, **r.to_dict()}
            out.append(entry)
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for name, r in results:
            _print_text(name, r)
    return 1 if any(not r.ok for _, r in results) else 0


def _read(name: str) -> bytes:
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from exc


def _cmd_compare(args: argparse.Namespace) -> int:
    views = []
    for name in (args.incoming, args.outgoing):
        data = _read(name)
        if not is_sip_message(data):
            raise UsageError(f"{name} is not a SIP message")
        try:
            views.append(_conveyance_from_bytes(data))
        except ValueError as exc:
            raise UsageError(f"{name}: unparseable SIP message: {exc}") from exc
    findings = compare_conveyance(*views)
    if args.json:
        doc = {"incoming": args.incoming, "outgoing": args.outgoing, "findings": [f.to_dict() for f in findings]}
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(f"{args.incoming} -> {args.outgoing}: {len(findings)} change(s)")
        for f in findings:
            print(f"  {f.severity} {f.id} {f.message}")
    return 1 if any(f.severity == ERROR for f in findings) else 0


def _cmd_build(args: argparse.Namespace) -> int:
    data = sample_document(args.kind, timestamp=args.timestamp)
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # exits 2 on bad arguments
    try:
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "compare":
            return _cmd_compare(args)
        return _cmd_build(args)
    except UsageError as exc:
        print(f"pidf: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
