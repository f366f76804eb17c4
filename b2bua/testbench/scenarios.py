"""The lab's scenario matrix: each scenario places calls with the caller and judges them by
what the ECRC RECORDED (the call store), the B2BUA's CDR (route taken, failovers) and what
the caller saw (final status, time to answer).

    1  certified SBC: the location arrives byte-exact at the primary ECRC (several client
       layouts and transports, TLS verified against the lab certificate; urn:service:sos)
    2  non-certified SBC: the call arrives without location ("ECRC must ask")
    3  each partial-strip variant (one B2BUA profile per variant, lab.py)
    4  primary ECRC answers 503 -> secondary; primary silent -> secondary within the
       trunk's fast-failover time
    5  round-robin pair (922 + Priority: emergency): calls alternate over both ECRCs
    6  the Lync-style INVITE with Microsoft's quirks passes and validates with warnings only
    7  933 test call answered with the read-back
    8  sites: a branch's WAN link down (admin API) -> its local PSTN gateway, location lost;
       the same with an ELIN gateway (caller id = ELIN; a callback to the ELIN is redirected
       to the B2BUA's callback Contact, which rings the branch phone);
       the link restored -> back to the SIP trunk with location
    9  CAC: one call held on a branch's one-call link fills it; the next 911 call from that
       branch is refused (block), re-routed to PSTN (pstn) or admitted over the limit (exempt)

The checks (`record_problems`) are plain functions returning what is wrong, so the pytest
plugin's assertion helpers use the very same rules.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from ..sip import SipUri, parse_uri
from .caller import DEFAULT_CALLER, Caller, CallOutcome, CallSpec

log = structlog.get_logger("b2bua.lab")

ROUTABLE = "routable_by_location"
MUST_ASK = "ecrc_must_ask"
VALID = "location_by_value_valid"
DEGRADED = "by_value_degraded"
NO_LOCATION = "no_location"
FAILOVER_MARGIN_S = 1.0  # secondary answers within fast_failover_s + this


# -- checks on what an ECRC recorded ---------------------------------------------------------------


def findings_of(record: dict, severity: str) -> list[str]:
    return [str(item.get("id")) for item in record.get("findings") or [] if item.get("severity") == severity]


def record_problems(record: dict | None, outcome: CallOutcome | None = None, *, ecrc: str | None = None,
                    verdict: str | Sequence[str] | None = None, disposition: str | None = None,
                    location: str | None = None, geolocation: bool | None = None, errors: bool | None = None,
                    warnings: bool | None = None, is_test: bool | None = None,
                    readback_contains: Sequence[str] = ()) -> list[str]:
    """What in `record` (one ECRC record) differs from the expectation; [] when all is met.

    location: "byte-exact" (the PIDF-LO part the ECRC read is, byte for byte, the one the
    caller sent: sha256 compared) or "absent" (no PIDF-LO arrived). geolocation: a
    Geolocation header arrived (True) or not (False). errors / warnings: some finding of
    severity E / W exists (True) or none (False)."""
    if record is None:
        return ["the ECRC recorded no call"]
    problems: list[str] = []
    if ecrc is not None and record.get("ecrc") != ecrc:
        problems.append(f"recorded by {record.get('ecrc')}, expected {ecrc}")
    if verdict is not None:
        wanted = (verdict,) if isinstance(verdict, str) else tuple(verdict)
        if record.get("verdict") not in wanted:
            problems.append(f"verdict {record.get('verdict')}, expected {' or '.join(wanted)}")
    if disposition is not None and record.get("disposition") != disposition:
        problems.append(f"disposition {record.get('disposition')}, expected {disposition}")
    if location == "byte-exact":
        sent = outcome.pidf_sha256 if outcome is not None else None
        got = record.get("pidf_sha256")
        if sent is None:
            problems.append("the caller sent no PIDF-LO to compare with")
        elif got is None:
            problems.append("no PIDF-LO arrived")
        elif got != sent:
            problems.append(f"PIDF-LO changed on the way (sha256 {got[:12]}..., sent {sent[:12]}...)")
    elif location == "absent" and record.get("pidf") is not None:
        problems.append(f"a PIDF-LO arrived (part {record.get('pidf_part')}), expected none")
    elif location not in (None, "byte-exact", "absent"):
        raise ValueError(f"location={location!r}: byte-exact or absent")
    if geolocation is not None and bool(record.get("geolocation")) != geolocation:
        problems.append("a Geolocation header arrived, expected none" if not geolocation
                        else "no Geolocation header arrived")
    if errors is not None and bool(findings_of(record, "E")) != errors:
        problems.append(f"error findings {findings_of(record, 'E')}" if not errors else "no error finding")
    if warnings is not None and bool(findings_of(record, "W")) != warnings:
        problems.append(f"warning findings {findings_of(record, 'W')}" if not warnings else "no warning finding")
    if is_test is not None and bool(record.get("is_test")) != is_test:
        problems.append(f"is_test {record.get('is_test')}, expected {is_test}")
    readback = record.get("readback") or ""
    for text in readback_contains:
        if text not in readback:
            problems.append(f"read-back {readback!r} lacks {text!r}")
    return problems


def record_text(record: dict, outcome: CallOutcome | None = None) -> str:
    """One line for a record: `ecrc-primary: location_by_value_valid, routable_by_location,
    PIDF = sent (sha256 1a2b3c4d)`."""
    parts = [f"{record.get('verdict') or 'no verdict'}", str(record.get("disposition") or "")]
    sha = record.get("pidf_sha256")
    if sha is None:
        parts.append("no PIDF")
    elif outcome is not None and outcome.pidf_sha256 == sha:
        parts.append(f"PIDF = sent (sha256 {sha[:8]})")
    else:
        parts.append(f"PIDF changed (sha256 {sha[:8]})")
    if not record.get("geolocation"):
        parts.append("no Geolocation")
    elif record.get("pidf_selected_by") not in (None, "exact", "single-part"):
        parts.append(f"PIDF found by {record.get('pidf_selected_by')}")
    errors, warnings = findings_of(record, "E"), findings_of(record, "W")
    if errors or warnings:
        parts.append(f"E {','.join(errors) or '-'} / W {','.join(warnings) or '-'}")
    if record.get("answer") not in (None, "200"):
        parts.append(f"answered {record.get('answer')}")
    if record.get("is_test"):
        parts.append(f"read-back: {record.get('readback')}")
    return f"{record.get('ecrc')}: " + ", ".join(part for part in parts if part)


# -- one scenario's run ------------------------------------------------------------------------------


@dataclass
class PlacedCall:
    """A call placed by a scenario, with what the B2BUA and the ECRCs made of it."""

    role: str
    profile: str
    outcome: CallOutcome
    cdr: dict | None
    records: list[dict]

    @property
    def answering_record(self) -> dict | None:
        """The record of the ECRC that answered (the last attempt's), else the last record."""
        from .lab import answering_record

        return answering_record(self.records, self.cdr)

    def route_text(self) -> str:
        """`certified: ecrc-primary 503 -> ecrc-secondary 200`."""
        if self.cdr is None:
            return f"{self.profile}: no CDR"
        steps = []
        for attempt in self.cdr.get("attempts") or []:
            final = attempt.get("final")
            reason = attempt.get("failover_reason")
            if final is None or (reason and reason.startswith("no response")):
                step = f"{attempt.get('trunk')} ({reason or 'no answer'})"
            else:
                step = f"{attempt.get('trunk')} {final}"
            trunk, _, rest = step.partition(" ")
            steps.append(f"{trunk}/{attempt.get('transport')} {rest}")
        path = " -> ".join(steps) if steps else f"not routed ({self.cdr.get('route')})"
        return f"{self.profile}: {path}"

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "profile": self.profile, "caller": self.outcome.to_json(), "cdr": self.cdr,
                "records": [_record_digest(record) for record in self.records]}


def _record_digest(record: dict) -> dict:
    keys = ("id", "ecrc", "transport", "request_uri", "call_id", "priority", "geolocation", "content_type",
            "content_length_declared", "content_length_actual", "parts", "pidf_sha256", "pidf_selected_by",
            "verdict", "disposition", "findings", "address", "is_test", "readback", "answer", "caller_id")
    return {key: record.get(key) for key in keys}


@dataclass
class ScenarioResult:
    name: str
    title: str
    expected: str
    passed: bool
    route: str
    recorded: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calls: list[PlacedCall] = field(default_factory=list)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "expected": self.expected, "passed": self.passed,
                "route": self.route, "recorded": self.recorded, "problems": self.problems, "notes": self.notes,
                "duration_s": self.duration_s, "calls": [call.to_json() for call in self.calls]}


class ScenarioRun:
    """What a scenario function gets: place calls, state expectations, leave notes."""

    def __init__(self, lab: Any, caller: Caller) -> None:
        self.lab = lab
        self.caller = caller
        self.calls: list[PlacedCall] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.recorded_override: str | None = None
        self._callers: dict[str, Caller] = {}  # source address -> a caller bound there (branch phones)

    async def caller_at(self, source: str | None) -> Caller:
        """The caller placing calls from `source` (a branch's address); the lab's own caller
        when None."""
        if source is None:
            return self.caller
        if source not in self._callers:
            self._callers[source] = await Caller(host=source).start()
        return self._callers[source]

    async def close(self) -> None:
        for caller in self._callers.values():
            await caller.close()
        self._callers.clear()

    async def call(self, role: str = "certified", *, transport: str = "udp", style: str = "rfc", to: str = "911",
                   pidf: bytes | str | None = "sample", answer_timeout_s: float = 20.0, source: str | None = None,
                   hold_s: float = 0.0) -> PlacedCall:
        spec = CallSpec(to=to, style=style, pidf=pidf, answer_timeout_s=answer_timeout_s, hold_s=hold_s)
        caller = await self.caller_at(source)
        outcome = await caller.call(self.lab.address(role, transport), spec)
        cdr = await self.lab.cdr_for(outcome.call_id)
        placed = PlacedCall(role, self.lab.profile_of(role), outcome, cdr, self.lab.records_for(cdr))
        self.calls.append(placed)
        return placed

    def expect(self, condition: bool, problem: str) -> bool:
        if not condition:
            self.problems.append(problem)
        return condition

    def expect_answered(self, call: PlacedCall, by: str | None = None) -> None:
        outcome = call.outcome
        if not self.expect(outcome.ok, f"call {outcome.index}: {outcome.status} {outcome.reason}"
                                       f"{' (' + outcome.error + ')' if outcome.error else ''}, expected 200"):
            return
        if by is not None:
            taken = (call.cdr or {}).get("route_taken")
            self.expect(taken == by, f"call {outcome.index}: answered by {taken}, expected {by}")

    def expect_record(self, call: PlacedCall, **expected: Any) -> dict | None:
        record = call.answering_record
        self.problems.extend(f"call {call.outcome.index}: {problem}"
                             for problem in record_problems(record, call.outcome, **expected))
        return record


ScenarioFunction = Callable[[ScenarioRun], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    expected: str
    run: ScenarioFunction


# -- the scenarios -------------------------------------------------------------------------------------


def _certified(transport: str, style: str, to: str = "911") -> ScenarioFunction:
    async def run(ctx: ScenarioRun) -> None:
        call = await ctx.call("certified", transport=transport, style=style, to=to)
        primary = ctx.lab.roles.primary_name
        ctx.expect_answered(call, by=primary)
        record = ctx.expect_record(call, ecrc=primary, location="byte-exact", verdict=VALID, disposition=ROUTABLE,
                                   geolocation=True, errors=False)
        if record is not None and to.startswith("urn:"):
            ctx.expect(record.get("request_uri") == to, f"Request-URI {record.get('request_uri')}, expected {to}")
        if record is not None and transport != "udp":
            ctx.notes.append(f"caller -> B2BUA over {transport.upper()}"
                             + (" (server certificate verified against the lab certificate)" if transport == "tls" else ""))
    return run


async def _noncertified(ctx: ScenarioRun) -> None:
    call = await ctx.call("noncertified")
    ctx.expect_answered(call, by=ctx.lab.roles.primary_name)
    record = ctx.expect_record(call, ecrc=ctx.lab.roles.primary_name, location="absent", verdict=NO_LOCATION,
                               disposition=MUST_ASK, geolocation=False)
    if record is not None:
        ctx.expect(str(record.get("content_type") or "").startswith("application/sdp"),
                   f"Content-Type {record.get('content_type')}, expected application/sdp only")


def _variant(variant: str) -> ScenarioFunction:
    async def run(ctx: ScenarioRun) -> None:
        call = await ctx.call(variant)
        primary = ctx.lab.roles.primary_name
        if variant == "stale-content-length":
            # RFC 3261 §18.3: a UDP receiver refuses a datagram shorter than its
            # Content-Length with 400; 400 is no failover code, so the call fails.
            outcome = call.outcome
            ctx.expect(outcome.status == 400, f"caller got {outcome.status} {outcome.reason}, expected 400")
            ctx.expect(not call.records, f"the ECRC recorded {len(call.records)} call(s), expected none (refused by its transport)")
            attempts = (call.cdr or {}).get("attempts") or []
            ctx.expect(len(attempts) == 1 and attempts[0].get("final") == 400,
                       f"attempts {[(a.get('trunk'), a.get('final')) for a in attempts]}, expected one, refused 400")
            ctx.recorded_override = "nothing: the ECRC's transport refused the INVITE with 400 (body shorter than Content-Length)"
            return
        ctx.expect_answered(call, by=primary)
        if variant == "keep-geolocation":
            record = ctx.expect_record(call, ecrc=primary, location="absent", verdict=NO_LOCATION, disposition=MUST_ASK,
                                       geolocation=True)
            if record is not None:
                dangling = [entry for entry in record.get("geolocation_resolution") or [] if entry.get("part") is None]
                ctx.expect(bool(dangling), "the Geolocation cid resolved, expected it to dangle")
        elif variant == "drop-header":
            ctx.expect_record(call, ecrc=primary, location="byte-exact", verdict=DEGRADED, disposition=ROUTABLE,
                              geolocation=False)
        elif variant == "drop-part-headers":
            record = ctx.expect_record(call, ecrc=primary, location="byte-exact", geolocation=True, errors=False,
                                       disposition=ROUTABLE)
            if record is not None:
                parts = record.get("parts") or []
                ctx.expect(all(part.get("content_id") is None for part in parts),
                           "a part kept its Content-ID, expected every part header but Content-Type lost")
                ctx.expect(record.get("pidf_selected_by") == "last-pidf-part",
                           f"PIDF-LO found by {record.get('pidf_selected_by')}, expected last-pidf-part (cid dangles)")
        elif variant == "keep-multipart":
            record = ctx.expect_record(call, ecrc=primary, location="absent", verdict=NO_LOCATION, disposition=MUST_ASK,
                                       geolocation=False)
            if record is not None:
                parts = record.get("parts") or []
                ctx.expect(str(record.get("content_type") or "").startswith("multipart/mixed") and len(parts) == 1,
                           f"{record.get('content_type')} with {len(parts)} part(s), expected multipart/mixed with the SDP alone")
    return run


async def _put_control(url: str, behaviour: dict) -> None:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.put(f"{url}/control", json=behaviour) as reply:
            if reply.status != 200:
                raise RuntimeError(f"PUT {url}/control {behaviour}: HTTP {reply.status} {await reply.text()}")


async def _failover_503(ctx: ScenarioRun) -> None:
    lab = ctx.lab
    primary, secondary = lab.roles.primary_name, lab.roles.secondary_name
    url = lab.primary.api.url
    await _put_control(url, {"answer": "503"})
    try:
        call = await ctx.call("certified")
    finally:
        await _put_control(url, {"answer": "200"})
    ctx.expect_answered(call, by=secondary)
    ctx.expect_record(call, ecrc=secondary, location="byte-exact", verdict=VALID, disposition=ROUTABLE)
    at_primary = [record for record in call.records if record.get("ecrc") == primary]
    ctx.expect(len(at_primary) == 1 and at_primary[0].get("answer") == "503",
               f"primary recorded {[(r.get('ecrc'), r.get('answer')) for r in at_primary]}, expected one call it answered 503")
    attempts = (call.cdr or {}).get("attempts") or []
    ctx.expect([(a.get("trunk"), a.get("final")) for a in attempts] == [(primary, 503), (secondary, 200)],
               f"attempts {[(a.get('trunk'), a.get('final')) for a in attempts]}, expected primary 503 then secondary 200")


async def _failover_silent(ctx: ScenarioRun) -> None:
    lab = ctx.lab
    primary, secondary = lab.roles.primary_name, lab.roles.secondary_name
    limit = lab.trunk("primary").fast_failover_s
    url = lab.primary.api.url
    await _put_control(url, {"answer": "drop"})
    try:
        call = await ctx.call("certified")
        # Judge before the primary comes back: its B2BUA transaction still retransmits the
        # INVITE until Timer B (RFC 3261 §17.1.1.2), and a restored primary answers that.
        records = list(call.records)
    finally:
        await _put_control(url, {"answer": "200"})
    ctx.expect_answered(call, by=secondary)
    ctx.expect_record(call, ecrc=secondary, location="byte-exact", verdict=VALID, disposition=ROUTABLE)
    # The mock ECRC records an INVITE it drops (answer "drop"), once: it must have sent nothing.
    at_primary = [(r.get("ecrc"), r.get("answer")) for r in records if r.get("ecrc") == primary]
    ctx.expect(at_primary == [(primary, "drop")],
               f"primary recorded {at_primary}, expected the one INVITE it dropped unanswered")
    attempts = (call.cdr or {}).get("attempts") or []
    ctx.expect(bool(attempts) and attempts[0].get("trunk") == primary and attempts[0].get("first_response") is None,
               f"first attempt {attempts[:1]}, expected the primary with no response at all")
    answer_ms = call.outcome.answer_ms or 0.0
    ctx.expect(answer_ms <= (limit + FAILOVER_MARGIN_S) * 1000,
               f"answered after {answer_ms:.0f} ms, expected within {limit:g} s fast failover + {FAILOVER_MARGIN_S:g} s")
    ctx.notes.append(f"failover time measured: answered {answer_ms:.0f} ms after the INVITE (fast failover {limit:g} s)")
    ctx.recorded_override = (f"{secondary}: answered after {answer_ms / 1000:.2f} s (fast failover {limit:g} s), "
                             f"PIDF = sent; {primary}: the INVITE, dropped unanswered")


async def _round_robin(ctx: ScenarioRun, calls: int = 4) -> None:
    lab = ctx.lab
    primary, secondary = lab.roles.primary_name, lab.roles.secondary_name
    answered_by = []
    for _ in range(calls):
        call = await ctx.call("certified", to="922")
        ctx.expect_answered(call)
        ctx.expect_record(call, location="byte-exact")
        answered_by.append((call.cdr or {}).get("route_taken"))
    spread = {name: answered_by.count(name) for name in (primary, secondary)}
    ctx.expect(spread[primary] == spread[secondary] == calls // 2,
               f"spread {spread}, expected {calls // 2} each")
    ctx.expect(all(a != b for a, b in zip(answered_by, answered_by[1:])), f"order {answered_by}, expected alternating")
    ctx.recorded_override = f"{primary}: {spread[primary]} calls, {secondary}: {spread[secondary]} calls ({' '.join(str(n).split('-')[-1] for n in answered_by)})"


async def _lync(ctx: ScenarioRun) -> None:
    call = await ctx.call("certified", style="lync")
    ctx.expect_answered(call, by=ctx.lab.roles.primary_name)
    ctx.expect_record(call, ecrc=ctx.lab.roles.primary_name, location="byte-exact", verdict=VALID,
                      disposition=ROUTABLE, errors=False, warnings=True, geolocation=True)


async def _test_call(ctx: ScenarioRun) -> None:
    call = await ctx.call("certified", to="933")
    ctx.expect_answered(call, by=ctx.lab.roles.primary_name)
    ctx.expect_record(call, is_test=True, location="byte-exact",
                      readback_contains=(DEFAULT_CALLER, "3910 163rd Ave NE, Redmond WA 98052"))


# -- sites, WAN links and CAC (8, 9) -----------------------------------------------------------------
#
# Link state changes go through the B2BUA's admin API (PUT /links/{name}), as an operator's
# `b2bua link NAME down` would, or through the node's SiteMap when the configuration has
# no admin API. CAC-full is real occupancy: a first call from the branch is answered and
# held (the caller stays in it) on a link that admits one call; the next 911 call from the
# same branch meets the full link.

HOLD_S = 1.5  # how long the call filling a link stays up
USAGE_WAIT_S = 5.0


class MissingBranch(Exception):
    """The lab configuration has no branch site for a scenario (reported as its problem)."""


def _branch(ctx: ScenarioRun, role: str) -> Any:
    branch = ctx.lab.branches.get(role)
    if branch is None:
        what = {"wan": "whose emergency routes end at a plain PSTN gateway", "elin": "with an ELIN gateway",
                }.get(role, f"with CAC emergency policy {role!r} and a link with max_calls")
        raise MissingBranch(f"the lab configuration has no branch site {what} ([[site]], [[link]])")
    return branch


async def _admin(lab: Any, method: str, path: str, body: dict | None = None) -> dict:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.request(method, f"{lab.admin_url}{path}", json=body) as reply:
            if reply.status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {reply.status} {await reply.text()}")
            return await reply.json()


async def set_link(lab: Any, name: str, state: str) -> str:
    """Put a WAN link up or down as an operator does; returns how ("admin API" or "SiteMap")."""
    if lab.admin_url is not None:
        view = await _admin(lab, "PUT", f"/links/{name}", {"state": state})
        if view.get("state") != state:
            raise RuntimeError(f"PUT /links/{name} {state}: the link is {view.get('state')} (set by {view.get('set_by')})")
        return "admin API"
    lab.node.node.sites.links[name].set(state == "up", "admin", time.time())
    return "SiteMap"


async def link_usage(lab: Any, name: str) -> dict:
    """The link's CAC usage (GET /links/{name}, else the node's ledger)."""
    if lab.admin_url is not None:
        return (await _admin(lab, "GET", f"/links/{name}"))["cac"]
    return lab.node.node.cac.snapshot(name)


async def _wait_usage(lab: Any, name: str, calls: int, timeout_s: float = USAGE_WAIT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        usage = await link_usage(lab, name)
        if usage["calls"] == calls or time.monotonic() >= deadline:
            return usage
        await asyncio.sleep(0.05)


def _pstn_text(record: dict) -> str:
    caller_id = record.get("pstn_caller_id")
    elin = f"ELIN {caller_id} (caller {record.get('original_caller')})" if record.get("elin") else f"caller id {caller_id}"
    return (f"{record.get('ecrc')}: {elin}, no location ({record.get('verdict')}), site {record.get('site')}, "
            f"pstn_reason \"{record.get('pstn_reason')}\"")


def _route_text(record: dict) -> str:
    links = ",".join(record.get("links") or []) or "no link"
    return f"site {record.get('site')}, {links}, cac {record.get('cac')}"


def _expect_pstn(ctx: ScenarioRun, call: PlacedCall, branch: Any, reason: str, *, elin: bool = False) -> dict | None:
    """The call went to the branch's PSTN gateway, and the location stayed behind."""
    ctx.expect_answered(call, by=branch.pstn_trunk)
    ctx.expect(all(r.get("ecrc") == branch.pstn_trunk for r in call.records),
               f"recorded by {[r.get('ecrc') for r in call.records]}, expected only {branch.pstn_trunk}")
    record = call.answering_record
    if not ctx.expect(record is not None and record.get("ecrc") == branch.pstn_trunk,
                      f"the PSTN gateway {branch.pstn_trunk} recorded no call"):
        return None
    ctx.expect(record.get("location") is None and record.get("address") is None,
               "a location crossed the PSTN gateway, expected none")
    ctx.expect(bool(record.get("pidf_received")), "the gateway got no PIDF-LO on its SIP side (the caller sent one)")
    ctx.expect(record.get("site") == branch.site, f"recorded site {record.get('site')}, expected {branch.site}")
    ctx.expect(record.get("pstn_reason") == reason, f"pstn_reason {record.get('pstn_reason')!r}, expected {reason!r}")
    if elin:
        ctx.expect(record.get("verdict") == "elin_only" and record.get("disposition") == "routable_by_elin",
                   f"{record.get('verdict')}/{record.get('disposition')}, expected elin_only/routable_by_elin")
        candidates = record.get("elin_candidates") or []
        ctx.expect(bool(candidates) and record.get("pstn_caller_id") == record.get("elin") == candidates[0],
                   f"caller id {record.get('pstn_caller_id')}, expected the first ELIN of {candidates}")
    else:
        ctx.expect(record.get("verdict") == NO_LOCATION and record.get("disposition") == MUST_ASK,
                   f"{record.get('verdict')}/{record.get('disposition')}, expected {NO_LOCATION}/{MUST_ASK}")
        ctx.expect(record.get("pstn_caller_id") == record.get("original_caller") == DEFAULT_CALLER,
                   f"caller id {record.get('pstn_caller_id')}, expected the caller's own {DEFAULT_CALLER}")
    cdr = call.cdr or {}
    ctx.expect(cdr.get("pstn_reason") == reason and reason in (cdr.get("routes_passed_over") or []),
               f"CDR pstn_reason {cdr.get('pstn_reason')!r} / passed over {cdr.get('routes_passed_over')}")
    return record


def _expect_trunk_with_location(ctx: ScenarioRun, call: PlacedCall, branch: Any, cac: str) -> dict | None:
    primary = ctx.lab.roles.primary_name
    ctx.expect_answered(call, by=primary)
    record = ctx.expect_record(call, ecrc=primary, location="byte-exact", verdict=VALID, disposition=ROUTABLE)
    if record is not None:
        ctx.expect((record.get("site"), tuple(record.get("links") or ()), record.get("cac"), record.get("pstn_reason"))
                   == (branch.site, branch.links, cac, None),
                   f"route info {_route_text(record)} (pstn_reason {record.get('pstn_reason')!r}), "
                   f"expected site {branch.site}, {','.join(branch.links)}, cac {cac}")
    return record


async def _wan_down(ctx: ScenarioRun) -> None:
    branch = _branch(ctx, "wan")
    link = branch.links[0]
    how = await set_link(ctx.lab, link, "down")
    try:
        call = await ctx.call("certified", source=branch.source)
    finally:
        await set_link(ctx.lab, link, "up")
    record = _expect_pstn(ctx, call, branch, f"wan down: {link}")
    ctx.notes.append(f"{link} put down through the {how}, 911 placed from {branch.site} ({branch.source})")
    if record is not None:
        ctx.recorded_override = _pstn_text(record)


async def _wan_down_elin(ctx: ScenarioRun) -> None:
    branch = _branch(ctx, "elin")
    link = branch.links[0]
    how = await set_link(ctx.lab, link, "down")
    try:
        call = await ctx.call("certified", style="lync", source=branch.source)  # Lync's PIDF-LO lists ELINs in NAM
    finally:
        await set_link(ctx.lab, link, "up")
    record = _expect_pstn(ctx, call, branch, f"wan down: {link}", elin=True)
    if record is None or not record.get("elin"):
        return
    # The PSAP calls the ELIN back (after the call, within the gateway's callback window):
    # the gateway redirects it (302) to the Contact the emergency call came from.
    elin = record["elin"]
    gateway = ctx.lab.ecrc("elin").uas
    back = await ctx.caller.call(ctx.lab.address("elin"), CallSpec(to=elin, pidf=None, answer_timeout_s=5.0))
    contacts = back.response.contact if back.response is not None and back.status == 302 else []
    contact = str(contacts[0].uri) if contacts else None
    entry = gateway.elin_table.get(elin)
    leg_b_contact = str(record.get("contact") or "").strip().removeprefix("<").split(">", 1)[0]
    ctx.expect(back.status == 302, f"callback to ELIN {elin}: {back.status} {back.reason}, expected 302")
    ctx.expect(entry is not None and contact == entry.caller_contact == leg_b_contact,
               f"callback redirected to {contact}, expected the emergency call's Contact {leg_b_contact}")
    ctx.expect(entry is not None and entry.caller_uri == f"sip:{DEFAULT_CALLER}@{CallSpec().domain}",
               f"the ELIN maps to {entry.caller_uri if entry else None}, expected the caller's AoR")
    # The PSAP follows the redirect to the B2BUA's callback Contact; the B2BUA rings the
    # branch phone that made the emergency call (RFC 6881 ED-63..65).
    phone = await ctx.caller_at(branch.source)
    phone.callback_received.clear()
    answered = None
    if contact is not None and back.status == 302:
        token_uri = parse_uri(contact)
        token = token_uri.user if isinstance(token_uri, SipUri) else None
        ctx.expect(bool(token) and token.startswith("cb-"), f"302 Contact {contact} is not a B2BUA callback Contact")
        answered = await ctx.caller.call(ctx.lab.address("certified"),
                                         CallSpec(to=token or "", pidf=None, answer_timeout_s=5.0))
        ctx.expect(answered.status == 200, f"callback through the B2BUA: {answered.status} {answered.reason}, "
                                           "expected 200 from the branch phone")
        try:
            await asyncio.wait_for(phone.callback_received.wait(), 2.0)
        except asyncio.TimeoutError:
            ctx.expect(False, f"the branch phone at {branch.source} was not rung by the callback")
    ctx.notes.append(f"{link} put down through the {how}; callback INVITE to {elin} -> 302 Contact {contact}; "
                     f"INVITE to that Contact rang the branch phone ({len(phone.callbacks)} callback)")
    status = answered.status if answered is not None else None
    ctx.recorded_override = (_pstn_text(record) + f"; callback to {elin}: {back.status} -> {contact}"
                             f" -> branch phone answered {status}")


async def _wan_restored(ctx: ScenarioRun) -> None:
    branch = _branch(ctx, "wan")
    link = branch.links[0]
    await set_link(ctx.lab, link, "down")
    try:
        down = await ctx.call("certified", source=branch.source)
    finally:
        await set_link(ctx.lab, link, "up")
    restored = await ctx.call("certified", source=branch.source)
    _expect_pstn(ctx, down, branch, f"wan down: {link}")
    record = _expect_trunk_with_location(ctx, restored, branch, "counted")
    if record is not None:
        ctx.recorded_override = (f"link down: {down.answering_record.get('ecrc') if down.answering_record else 'nothing'}"
                                 f", no location; link up: {record_text(record, restored.outcome)}, {_route_text(record)}")


def _cac_full(policy: str) -> ScenarioFunction:
    async def run(ctx: ScenarioRun) -> None:
        branch = _branch(ctx, policy)
        link = branch.links[0]
        limit = branch.max_calls
        if not ctx.expect(limit == 1, f"{link} admits {limit} calls; the scenario fills a one-call link"):
            return
        holder = asyncio.create_task(ctx.call("certified", source=branch.source, hold_s=HOLD_S))
        try:
            held = await _wait_usage(ctx.lab, link, 1)
            if not ctx.expect(held["calls"] == 1, f"the first call never held {link}: {held}"):
                return
            second = asyncio.create_task(ctx.call("certified", source=branch.source, hold_s=0.5))
            expected = 2 if policy == "exempt" else 1
            peak = await _wait_usage(ctx.lab, link, expected, 2.0)
            call = await second
        finally:
            first = await holder
        ctx.calls.sort(key=lambda placed: placed.outcome.started_at)  # in the order they were placed
        after = await _wait_usage(ctx.lab, link, 0)
        why = f"cac full: {link} calls 1/1"
        _expect_trunk_with_location(ctx, first, branch, "counted")
        record = None
        if policy == "block":
            outcome = call.outcome
            reason = outcome.response.headers.get("Reason") if outcome.response is not None else None
            ctx.expect(outcome.status == 503, f"second call: {outcome.status} {outcome.reason}, expected 503")
            ctx.expect(reason == f'SIP;cause=503;text="{why}"', f"Reason {reason!r}, expected the CAC reason")
            ctx.expect(not call.records and not (call.cdr or {}).get("attempts"),
                       "the refused call reached a trunk")
        elif policy == "pstn":
            record = _expect_pstn(ctx, call, branch, why)
        else:
            record = _expect_trunk_with_location(ctx, call, branch, "over-limit")
            ctx.expect((call.cdr or {}).get("cac") == "over-limit", f"CDR cac {(call.cdr or {}).get('cac')}")
        ctx.expect((peak["calls"], peak["over_limit_calls"]) == ((2, 1) if policy == "exempt" else (1, 0)),
                   f"{link} usage while both calls were up: {peak}")
        ctx.expect((after["calls"], after["kbps"], after["over_limit_calls"]) == (0, 0, 0),
                   f"{link} usage after both calls ended: {after} (a CAC slot leaked)")
        ctx.notes.append(f"{link} filled by one held call ({HOLD_S:g} s) from {branch.site}; usage with the second "
                         f"call up: {peak['calls']} call(s), {peak['over_limit_calls']} over the limit; after: "
                         f"{after['calls']}")
        if policy == "block":
            ctx.recorded_override = (f"{ctx.lab.roles.primary_name}: the first call, PIDF = sent, cac counted; "
                                     f"second call refused by the B2BUA: 503, Reason \"{why}\"; {link} back to 0")
        elif record is not None:
            second_text = _pstn_text(record) if policy == "pstn" else (
                f"{record.get('ecrc')}: PIDF = sent, {_route_text(record)}")
            ctx.recorded_override = f"first call: cac counted; second: {second_text}; {link} back to 0"
    return run


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("1a-certified-rfc-udp", "certified SBC, RFC 6442 client, UDP",
             "200 by primary; PIDF byte-exact; location_by_value_valid; routable", _certified("udp", "rfc")),
    Scenario("1b-certified-pjsua-tcp", "certified SBC, pjsua layout, TCP",
             "200 by primary; PIDF byte-exact; location_by_value_valid; routable", _certified("tcp", "pjsua")),
    Scenario("1c-certified-linphone-tls", "certified SBC, liblinphone layout, TLS (verified)",
             "200 by primary; PIDF byte-exact; location_by_value_valid; routable", _certified("tls", "linphone")),
    Scenario("1d-certified-sos-urn", "certified SBC, urn:service:sos",
             "200 by primary; Request-URI urn:service:sos; PIDF byte-exact; routable",
             _certified("udp", "rfc", "urn:service:sos")),
    Scenario("2-noncertified-strip", "non-certified SBC (full strip)",
             "200 by primary; no PIDF, no Geolocation, SDP only; no_location; ECRC must ask", _noncertified),
    Scenario("3a-strip-keep-geolocation", "partial strip: body stripped, Geolocation kept",
             "200; no PIDF; Geolocation cid dangles; no_location; ECRC must ask", _variant("keep-geolocation")),
    Scenario("3b-strip-drop-header", "partial strip: Geolocation header dropped, body kept",
             "200; PIDF byte-exact but unreferenced; by_value_degraded; routable", _variant("drop-header")),
    Scenario("3c-strip-drop-part-headers", "partial strip: part headers (Content-ID) lost",
             "200; PIDF byte-exact, found as last PIDF part (cid dangles); no error; routable",
             _variant("drop-part-headers")),
    Scenario("3d-strip-stale-content-length", "partial strip: Content-Length left at the old value",
             "ECRC refuses the INVITE with 400 (RFC 3261 §18.3), nothing recorded; caller gets 400: the call fails",
             _variant("stale-content-length")),
    Scenario("3e-strip-keep-multipart", "partial strip: PIDF part removed, multipart kept",
             "200; multipart/mixed with the SDP alone; no_location; ECRC must ask", _variant("keep-multipart")),
    Scenario("4a-failover-503", "primary ECRC answers 503",
             "primary records and answers 503; secondary answers 200 with PIDF byte-exact; caller sees 200", _failover_503),
    Scenario("4b-failover-silent", "primary ECRC silent (drop)",
             "primary sends nothing (records the INVITE as dropped); secondary answers within the "
             "fast-failover time + 1 s with PIDF byte-exact", _failover_silent),
    Scenario("5-round-robin", "round-robin pair: 4 calls to 922 with Priority: emergency",
             "2 calls at each ECRC, alternating; PIDF byte-exact", _round_robin),
    Scenario("6-lync-quirks", "Lync-style INVITE with Microsoft's quirks",
             "200 by primary; PIDF byte-exact; location_by_value_valid with warnings only (no E)", _lync),
    Scenario("7-test-call-933", "933 test call",
             "200; recorded as a test call; read-back of caller number and address", _test_call),
    Scenario("8a-wan-down-pstn", "branch WAN link down (admin API): 911 from the branch",
             "200 by the branch's PSTN gateway; location lost (none crosses the gateway); caller id = the caller's; "
             "site recorded; pstn_reason \"wan down: <link>\"", _wan_down),
    Scenario("8b-wan-down-elin", "branch WAN link down, ELIN gateway: Lync 911 from the branch",
             "200 by the ELIN gateway; caller id = the first ELIN of the PIDF-LO's NAM; no location; elin_only; "
             "a callback to the ELIN gets 302 to the B2BUA's callback Contact, which rings the branch phone", _wan_down_elin),
    Scenario("8c-wan-restored", "branch WAN link down, then restored",
             "down: PSTN gateway, no location; restored: 200 by primary, PIDF byte-exact, site + link recorded, "
             "cac counted", _wan_restored),
    Scenario("9a-cac-full-block", "CAC full (one held call on a one-call link), policy block",
             "first call: primary, PIDF byte-exact, cac counted; second: 503 with Reason \"cac full: ...\", no trunk "
             "reached; link usage back to 0", _cac_full("block")),
    Scenario("9b-cac-full-pstn", "CAC full (one held call on a one-call link), policy pstn",
             "first call: primary, cac counted; second: the branch's PSTN gateway, no location, pstn_reason "
             "\"cac full: ...\"; link usage back to 0", _cac_full("pstn")),
    Scenario("9c-cac-full-exempt", "CAC full (one held call on a one-call link), policy exempt",
             "first call: primary, cac counted; second: primary, PIDF byte-exact, cac over-limit (2 calls, 1 over "
             "the limit on the link); usage back to 0", _cac_full("exempt")),
)


async def run_scenario(lab: Any, caller: Caller, scenario: Scenario, *, timeout_s: float = 40.0) -> ScenarioResult:
    """Run one scenario, bounded in time; an exception is a failed scenario, never a crash."""
    ctx = ScenarioRun(lab, caller)
    started = time.monotonic()
    try:
        await asyncio.wait_for(scenario.run(ctx), timeout_s)
    except asyncio.TimeoutError:
        ctx.problems.append(f"did not finish within {timeout_s:g} s")
    except Exception as error:  # noqa: BLE001 - reported as the scenario's failure
        log.exception("lab.scenario_error", scenario=scenario.name)
        ctx.problems.append(f"error: {type(error).__name__}: {error}")
    finally:
        await ctx.close()
    route = "; ".join(dict.fromkeys(call.route_text() for call in ctx.calls)) or "-"
    if ctx.recorded_override is not None:
        recorded = ctx.recorded_override
    else:
        lines = []
        for call in ctx.calls:
            lines.extend(record_text(record, call.outcome) for record in call.records)
        recorded = "; ".join(dict.fromkeys(lines)) or "nothing"
    return ScenarioResult(scenario.name, scenario.title, scenario.expected, not ctx.problems, route, recorded,
                          ctx.problems, ctx.notes, ctx.calls, round(time.monotonic() - started, 3))


async def run_scenarios(lab: Any, scenarios: Iterable[Scenario] = SCENARIOS) -> list[ScenarioResult]:
    """Every scenario in order with one caller (TLS verified against the lab certificate)."""
    results = []
    async with Caller(ca_file=lab.tls_ca_file) as caller:
        for scenario in scenarios:
            result = await run_scenario(lab, caller, scenario)
            log.info("lab.scenario", scenario=result.name, passed=result.passed, problems=result.problems)
            results.append(result)
    return results


def scenario_named(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name or scenario.name.startswith(name):
            return scenario
    raise KeyError(f"no scenario {name!r}")
