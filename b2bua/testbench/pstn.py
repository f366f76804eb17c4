"""The branch's local PSTN gateway (`b2bua pstn`): a UAS that records calls like the mock
ECRC, as the PSTN side sees them, and can act as an ELIN gateway (e911-reference §1.8).

What crosses a PSTN gateway is a calling number and a dialled number, never a location
object. So every record says: `location` null, verdict `no_location` and disposition
`ecrc_must_ask` (the call-taker must ask), unless the gateway is an ELIN gateway and
replaced the calling number with an ELIN: then verdict `elin_only` and disposition
`routable_by_elin` (the selective router / ALI resolve the ELIN to the ERL's address).

ELIN gateway (`elin_gateway=True`), modelled on the AudioCodes Mediant ELIN feature:
* the ELINs are the `<ca:NAM>` candidates of the PIDF-LO (up to 5, `;`-separated, hyphens
  allowed), as the `pidf` package parses them (`Location.elins`);
* among them the gateway picks the one with the fewest active calls, then the one idle
  longest (`ElinTable.pick`), and replaces the calling number with it (`pstn_caller_id`);
* it remembers ELIN -> (original caller URI and Contact, time the call ended, active
  calls) for the callback window (default 1800 s, 0..3600), in a table of at most 100
  entries (a Mediant 1000; configurable);
* a callback, an INVITE whose Request-URI number is an ELIN, within the window (or while
  the emergency call is up) is routed back to the caller: the gateway answers **302 Moved
  Temporarily** with `Contact: <the caller's Contact URI>` (its identity URI when the
  INVITE had no Contact), so the PSAP side (a SIPp UAC,
  the B2BUA) re-targets it. A real gateway would place the call itself; a redirect shows
  the same mapping on the wire without a second call leg in the mock. A callback after
  the window, or to an ELIN the gateway does not know, gets 404. In ELIN mode an INVITE
  that is no emergency call (no PIDF-LO, no `Priority: emergency`, no emergency or test
  number, no `urn:service:sos`/`test.sos`) is taken as a callback too (404 when unknown).
Callbacks are answered, logged (`pstn.callback`) and kept in `PstnGateway.callbacks`, but
not stored as call records.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog

from pidf.report import normalise_number

from ..engine.routing import dialled_number, is_sos_urn, is_test_urn, service_urn
from ..sip import Request, Response, make_response, new_tag, parse_name_addr
from ..sip.transaction import Peer
from .cli_common import BenchCommand, add_common_arguments, checked_arguments, print_calls, serve_command
from .control import AnswerBehaviour
from .ecrc import source_of
from .record import (
    DEFAULT_TEST_NUMBERS,
    ECRC_MUST_ASK,
    build_record,
    caller_id_of,
    is_test_call,
    readback_text,
    select_pidf,
    selected_location,
)
from .store import CallStore
from .uas import AnsweringUas, UasCall

log = structlog.get_logger("b2bua.pstn")

DEFAULT_CALLBACK_WINDOW_S = 1800.0  # AudioCodes default: 30 minutes
MAX_CALLBACK_WINDOW_S = 3600.0  # configurable 0..60 minutes
DEFAULT_TABLE_SIZE = 100  # Mediant 1000/2000 (a Mediant 3000 keeps 300)
ROUTABLE_BY_ELIN = "routable_by_elin"
DEFAULT_EMERGENCY_NUMBERS = ("911", "112")


# -- the ELIN table: pure, with an injectable clock ------------------------------------------


@dataclass
class ElinEntry:
    """One ELIN the gateway has used: who used it last and how busy it is."""

    elin: str  # as the NAM candidate reads (hyphens removed)
    caller_uri: str | None = None  # the last original caller (P-Asserted-Identity, else From)
    caller_contact: str | None = None  # that caller's Contact URI: where a callback goes
    caller_id: str | None = None  # the number or user the ELIN replaced
    active: int = 0  # emergency calls in progress on this ELIN
    started_at: float | None = None  # clock time the last call on it started
    ended_at: float | None = None  # clock time the last call on it ended (None: none ended yet)

    @property
    def last_change(self) -> float:
        """When the ELIN was last taken or released: it has been idle since then."""
        times = [moment for moment in (self.started_at, self.ended_at) if moment is not None]
        return max(times) if times else float("-inf")

    def to_json(self) -> dict[str, Any]:
        return {"elin": self.elin, "caller_uri": self.caller_uri, "caller_contact": self.caller_contact,
                "caller_id": self.caller_id, "active": self.active, "started_at": self.started_at,
                "ended_at": self.ended_at}


def elin_key(number: str | None) -> str | None:
    """ELINs and dialled numbers compare on digits, NANP `1` optional (`+1 425-555-0100`
    is `4255550100`): `pidf.report.normalise_number`."""
    return normalise_number(number)


class ElinTable:
    """ELIN -> last caller, for the selection rule and the callback window.

    `clock()` returns seconds (monotonic by default; a test passes a fake). Window 0:
    a callback is routed only while the emergency call is up. At most `size` entries: a
    new ELIN evicts the entry idle longest among those without an active call (any entry
    idle longest when every one is busy)."""

    def __init__(self, window_s: float = DEFAULT_CALLBACK_WINDOW_S, size: int = DEFAULT_TABLE_SIZE, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(window_s, bool) or not isinstance(window_s, (int, float)) or not 0 <= window_s <= MAX_CALLBACK_WINDOW_S:
            raise ValueError(f"callback window {window_s!r} s is outside 0..{MAX_CALLBACK_WINDOW_S:g}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"ELIN table size {size!r} is not a positive whole number")
        self.window_s = float(window_s)
        self.size = size
        self.clock = clock
        self._entries: dict[str, ElinEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[ElinEntry]:
        return list(self._entries.values())

    def get(self, number: str | None) -> ElinEntry | None:
        key = elin_key(number)
        return self._entries.get(key) if key else None

    def pick(self, candidates: Sequence[str]) -> str | None:
        """The candidate to use (e911-reference §1.8): fewest active calls, then idle
        longest (never used counts as idle forever), then the first in NAM order."""
        best: tuple[int, float, int] | None = None
        chosen: str | None = None
        seen: set[str] = set()
        for position, candidate in enumerate(candidates):
            key = elin_key(candidate)
            if not key or key in seen:
                continue
            seen.add(key)
            entry = self._entries.get(key)
            rank = (entry.active, entry.last_change, position) if entry else (0, float("-inf"), position)
            if best is None or rank < best:
                best, chosen = rank, candidate
        return chosen

    def assign(self, candidates: Sequence[str], *, caller_uri: str | None, caller_contact: str | None,
               caller_id: str | None) -> ElinEntry | None:
        """Pick an ELIN for a new emergency call and map it to this caller (None when no
        candidate is a number)."""
        elin = self.pick(candidates)
        if elin is None:
            return None
        key = elin_key(elin)
        assert key is not None
        entry = self._entries.get(key)
        if entry is None:
            self._make_room()
            entry = self._entries[key] = ElinEntry(elin)
        entry.elin = elin
        entry.caller_uri, entry.caller_contact, entry.caller_id = caller_uri, caller_contact, caller_id
        entry.active += 1
        entry.started_at = self.clock()
        return entry

    def release(self, elin: str) -> None:
        """An emergency call on `elin` ended: its callback window starts now."""
        entry = self.get(elin)
        if entry is None:
            return
        entry.active = max(0, entry.active - 1)
        entry.ended_at = self.clock()

    def callback(self, number: str | None) -> ElinEntry | None:
        """The entry a callback to `number` goes to: while its call is up, or within the
        window after it ended; None when unknown or expired."""
        entry = self.get(number)
        if entry is None or not self.in_window(entry):
            return None
        return entry

    def in_window(self, entry: ElinEntry) -> bool:
        if entry.active > 0:
            return True
        if entry.ended_at is None:
            return False
        return self.clock() - entry.ended_at < self.window_s

    def _make_room(self) -> None:
        while len(self._entries) >= self.size:
            idle = [(entry.last_change, key) for key, entry in self._entries.items() if entry.active == 0]
            pool = idle or [(entry.last_change, key) for key, entry in self._entries.items()]
            _, victim = min(pool)
            log.info("pstn.elin_evicted", elin=self._entries[victim].elin, active=self._entries[victim].active)
            del self._entries[victim]


# -- what the PSTN side carries --------------------------------------------------------------


def elin_candidates_of(record: dict[str, Any]) -> list[str]:
    """The NAM ELIN candidates of the location a record read (`pidf` `Location.elins`)."""
    chosen = selected_location(record.get("location"))
    return list((chosen or {}).get("elins") or [])


def mark_pstn(record: dict[str, Any], *, elin: str | None, candidates: Iterable[str] = ()) -> dict[str, Any]:
    """Turn an ECRC record (`build_record`) into what the PSTN side of a gateway carries:
    no location object, a calling number (the ELIN when one replaced the caller ID).
    Changes `record` in place and returns it."""
    original = record.get("caller_id")
    record["pidf_received"] = record.get("pidf") is not None
    record["elin_candidates"] = list(candidates)
    record["original_caller"] = original
    record["pstn_caller_id"] = elin or original
    record["elin"] = elin
    record["location"] = None
    record["address"] = None
    record["verdict"] = "elin_only" if elin else "no_location"
    record["disposition"] = ROUTABLE_BY_ELIN if elin else ECRC_MUST_ASK
    if record.get("is_test"):
        record["readback"] = readback_text({**record, "caller_id": record["pstn_caller_id"]})
    return record


def caller_uri_of(request: Request) -> str | None:
    """The original caller: P-Asserted-Identity's URI, else From's."""
    for value in [*request.headers.get_all("P-Asserted-Identity"), request.headers.get("From")]:
        if not value:
            continue
        try:
            return str(parse_name_addr(value).uri)
        except Exception:  # noqa: BLE001 - a malformed identity: try the next
            continue
    return None


def contact_uri_of(request: Request) -> str | None:
    try:
        contacts = request.contact
    except Exception:  # noqa: BLE001
        return None
    return str(contacts[0].uri) if contacts else None


# -- the gateway -----------------------------------------------------------------------------


@dataclass
class Callback:
    """A callback INVITE the gateway answered (kept in memory, newest last)."""

    at: datetime
    request_uri: str
    call_id: str
    status: int
    contact: str | None = None
    elin: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "request_uri": self.request_uri, "call_id": self.call_id,
                "status": self.status, "contact": self.contact, "elin": self.elin}


@dataclass
class _Active:
    elin: str | None = None
    record_id: int | None = None


class PstnGateway(AnsweringUas):
    """`PstnGateway(name, store, behaviour, elin_gateway=..., callback_window_s=...,
    table_size=..., clock=...)`: records every emergency INVITE in `store` (committed before
    any answer leaves) as the PSTN side carries it, and answers it by `behaviour`."""

    def __init__(self, name: str, store: CallStore, behaviour: AnswerBehaviour | None = None, *,
                 elin_gateway: bool = False, callback_window_s: float = DEFAULT_CALLBACK_WINDOW_S,
                 table_size: int = DEFAULT_TABLE_SIZE, clock: Callable[[], float] = time.monotonic,
                 test_numbers: tuple[str, ...] = DEFAULT_TEST_NUMBERS,
                 emergency_numbers: tuple[str, ...] = DEFAULT_EMERGENCY_NUMBERS,
                 max_callbacks: int = 1000, **stack_options: object) -> None:
        super().__init__(name, behaviour, **stack_options)
        self.store = store
        self.elin_gateway = elin_gateway
        self.elin_table = ElinTable(callback_window_s, table_size, clock=clock)
        self.test_numbers = test_numbers
        self.emergency_numbers = emergency_numbers
        self.callbacks: list[Callback] = []
        self.max_callbacks = max_callbacks
        self._active: dict[tuple[str, str | None], _Active] = {}

    # -- callbacks ---------------------------------------------------------------------------
    def is_callback(self, request: Request) -> bool:
        """ELIN mode: an INVITE to an ELIN the table knows, or any INVITE that is no
        emergency call."""
        if not self.elin_gateway:
            return False
        return self.elin_table.get(dialled_number(request.uri)) is not None or not self.is_emergency(request)

    def screen_invite(self, request: Request, peer: Peer) -> Response | None:
        if not self.is_callback(request):
            return None
        number = dialled_number(request.uri)
        entry = self.elin_table.callback(number)
        target = (entry.caller_contact or entry.caller_uri) if entry is not None else None
        if entry is not None and target:
            response = make_response(request, 302, to_tag=new_tag())
            response.headers.add("Contact", f"<{target}>")
            status, contact, elin = 302, target, entry.elin
        else:
            known = self.elin_table.get(number)
            reason = "Callback Window Expired" if known is not None else "Unknown ELIN"
            response = make_response(request, 404, reason, to_tag=new_tag())
            status, contact, elin = 404, None, known.elin if known is not None else None
        self._remember(Callback(datetime.now(timezone.utc), str(request.uri), request.call_id, status, contact, elin))
        log.info("pstn.callback", pstn=self.name, request_uri=str(request.uri), call_id=request.call_id,
                 status=status, contact=contact, elin=elin)
        return response

    def _remember(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        del self.callbacks[: max(0, len(self.callbacks) - self.max_callbacks)]

    def is_emergency(self, request: Request) -> bool:
        """An emergency call, not a callback: a PIDF-LO body, `Priority: emergency`, an
        emergency or test number, or an sos / test.sos service URN (Request-URI or To)."""
        if select_pidf(request) is not None:
            return True
        priority = request.headers.get("Priority")
        if priority is not None and priority.strip().lower() == "emergency":
            return True
        if is_test_call(request, self.test_numbers):
            return True
        uris = [request.uri]
        try:
            uris.append(request.to.uri)
        except Exception:  # noqa: BLE001
            pass
        numbers = {number.lstrip("+") for number in self.emergency_numbers}
        for uri in uris:
            urn = service_urn(uri)
            if urn is not None and (is_sos_urn(urn) or is_test_urn(urn)):
                return True
            number = dialled_number(uri)
            if number is not None and number.lstrip("+") in numbers:
                return True
        return False

    # -- emergency calls -------------------------------------------------------------------
    def make_record(self, request: Request, peer: Peer) -> dict[str, Any]:
        return build_record(
            request, ecrc=self.name, transport=peer.transport.upper(), source=source_of(peer),
            arrived_at=datetime.now(timezone.utc), test_numbers=self.test_numbers,
        )

    def invite_dropped(self, request: Request, peer: Peer) -> None:
        """`drop` (a dead gateway): an emergency call is recorded with `answer: drop`; no
        ELIN is taken. A callback is not recorded (callbacks never are)."""
        if self.is_callback(request):
            return
        record = self.make_record(request, peer)
        mark_pstn(record, elin=None, candidates=elin_candidates_of(record))
        record["answer"] = "drop"
        record["id"] = self.store.add(record)
        log.info("pstn.call", pstn=self.name, record_id=record["id"], call_id=request.call_id, answer="drop")

    def invite_received(self, request: Request, peer: Peer) -> None:
        record = self.make_record(request, peer)
        candidates = elin_candidates_of(record)
        key = (request.call_id, request.from_.tag)
        active = self._active[key] = _Active()
        entry = None
        if self.elin_gateway and candidates:
            entry = self.elin_table.assign(candidates, caller_uri=caller_uri_of(request),
                                           caller_contact=contact_uri_of(request), caller_id=caller_id_of(request))
        active.elin = entry.elin if entry is not None else None
        mark_pstn(record, elin=active.elin, candidates=candidates)
        record["answer"] = self.behaviour.answer
        active.record_id = record["id"] = self.store.add(record)  # committed before any answer leaves
        log.info("pstn.call", pstn=self.name, record_id=record["id"], call_id=request.call_id,
                 pstn_caller_id=record["pstn_caller_id"], original_caller=record["original_caller"],
                 elin=record["elin"], verdict=record["verdict"], pidf_received=record["pidf_received"])
        if record.get("is_test"):
            log.info("pstn.readback", pstn=self.name, record_id=record["id"], readback=record.get("readback"))

    def call_ended(self, call: UasCall, side: str) -> None:
        active = self._active.pop((call.invite.call_id, call.invite.from_.tag), None)
        if active is not None and active.elin is not None:
            self.elin_table.release(active.elin)
            log.info("pstn.elin_released", pstn=self.name, elin=active.elin, side=side,
                     window_s=self.elin_table.window_s)


# -- `b2bua pstn [serve] ...` and `b2bua pstn calls` ----------------------------------------

COMMAND = BenchCommand("pstn", name="pstn", listen="udp:127.0.0.1:5080", db="pstn.sqlite", http="127.0.0.1:8080")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, COMMAND, "a PSTN gateway")
    parser.add_argument("--elin-gateway", action="store_true",
                        help="replace the calling number with an ELIN from the PIDF-LO's NAM and route callbacks")
    parser.add_argument("--callback-window-s", type=float, default=DEFAULT_CALLBACK_WINDOW_S,
                        help=f"with --elin-gateway: how long a callback to an ELIN reaches the caller "
                             f"(0..{MAX_CALLBACK_WINDOW_S:g}, default {DEFAULT_CALLBACK_WINDOW_S:g})")
    parser.add_argument("--elin-table-size", type=int, default=DEFAULT_TABLE_SIZE,
                        help=f"with --elin-gateway: ELINs remembered at most (default {DEFAULT_TABLE_SIZE})")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.action == "calls":
        return print_calls(args, COMMAND)
    behaviour, listen = checked_arguments(args, COMMAND)
    try:
        ElinTable(args.callback_window_s, args.elin_table_size)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return serve_command(
        args, COMMAND, listen,
        lambda store: PstnGateway(args.name, store, behaviour, elin_gateway=args.elin_gateway,
                                  callback_window_s=args.callback_window_s, table_size=args.elin_table_size),
        elin_gateway=args.elin_gateway, callback_window_s=args.callback_window_s,
    )
