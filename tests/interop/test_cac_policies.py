"""Call admission control end to end, on real sockets: a branch's 911 call when its WAN link
is full, under each emergency policy (block, pstn, exempt); N simultaneous calls over a
link that admits K < N; and no CAC slot left behind however a call ends (BYE from either
side, CANCEL, a failure, a failover). Usage is read through the admin API (GET /links)
and the node's ledger.

    hq (127.0.0.10) hosts the ECRC trunks
    branch-pstn   (127.0.0.21) --[pstn-hq]--   hq   policy pstn,   PSTN gateway pstn-gw
    branch-exempt (127.0.0.22) --[exempt-hq]-- hq   policy exempt
    branch-block  (127.0.0.23) --[block-hq]--  hq   policy block
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from b2bua.testbench.caller import CallSpec
from b2bua.testbench.plugin import assert_recorded, start_ecrc
from b2bua.testbench.sipp import Sipp

PRIMARY, SECONDARY, PSTN = "ecrc-primary", "ecrc-secondary", "pstn-gw"
SOURCE = {"pstn": "127.0.0.21", "exempt": "127.0.0.22", "block": "127.0.0.23"}
LINK = {policy: f"{policy}-hq" for policy in SOURCE}
SCENARIOS = Path(__file__).parent / "scenarios"


def topology(max_calls: int | None = 1, max_bandwidth_kbps: int | None = None) -> dict:
    off = {"enabled": False}
    sites = [{"name": "hq", "members": {"sources": ["127.0.0.10/32"]}, "trunk_groups": ["ecrc"]}]
    links = []
    for policy, source in SOURCE.items():
        name = f"branch-{policy}"
        site = {"name": name, "members": {"sources": [f"{source}/32"]}, "emergency_routes": ["ecrc"],
                "cac_emergency_policy": policy}
        if policy == "pstn":
            site.update(trunk_groups=[PSTN], emergency_routes=["ecrc", PSTN])
        sites.append(site)
        links.append({"name": LINK[policy], "sites": [name, "hq"], "max_calls": max_calls,
                      "max_bandwidth_kbps": max_bandwidth_kbps})
    return {
        "admin": "127.0.0.1:0",
        "node": {"name": "cac-test", "route_annotation": True, "log_level": "warning"},
        "timers": {"t1_ms": 200},
        "profile": [{"name": "sbc", "listen": ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]}],
        "emergency": {"dial_strings": ["911"], "trunk_group": "ecrc"},
        "trunk": [
            {"name": PRIMARY, "address": "127.0.0.1:5070", "transports": ["udp", "tcp"], "fast_failover_s": 0.5,
             "health": off},
            {"name": SECONDARY, "address": "127.0.0.1:5072", "transports": ["udp", "tcp"], "fast_failover_s": 0.5,
             "health": off},
            {"name": PSTN, "address": "127.0.0.1:5080", "transports": ["udp", "tcp"], "kind": "pstn", "health": off},
        ],
        "trunk_group": [{"name": "ecrc", "trunks": [PRIMARY, SECONDARY]}, {"name": PSTN, "trunks": [PSTN]}],
        "site": sites,
        "link": links,
    }


class Bench:
    def __init__(self, sbc, trunks) -> None:  # noqa: ANN001
        self.sbc = sbc
        self.trunks = trunks

    @property
    def ledger(self):  # noqa: ANN201 - CacLedger
        return self.sbc.node.node.cac

    @property
    def admin_url(self) -> str:
        return self.sbc.node.admin.url

    async def links(self) -> dict[str, dict]:
        """GET /links of the admin API: link name -> its view (state, CAC usage)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"{self.admin_url}/links") as reply:
                assert reply.status == 200
                return {view["name"]: view for view in await reply.json()}

    async def usage(self, link: str) -> tuple[int, int, int]:
        cac = (await self.links())[link]["cac"]
        return cac["calls"], cac["kbps"], cac["over_limit_calls"]

    async def records(self, outcome) -> dict[str, list[dict]]:  # noqa: ANN001
        cdr = await self.sbc.cdr_for(outcome)
        assert cdr is not None, f"no CDR for {outcome.call_id}"
        found = {name: handle.records(call_id=cdr["b_call_id"]) for name, handle in self.trunks.items()}
        return {name: records for name, records in found.items() if records}


@pytest_asyncio.fixture
async def make_bench(tmp_path, ecrc_factory, b2bua_from_config):
    gateways = []

    async def make(**limits) -> Bench:  # noqa: ANN003
        trunks = {PRIMARY: await ecrc_factory(PRIMARY), SECONDARY: await ecrc_factory(SECONDARY)}
        gateway = await start_ecrc(PSTN, tmp_path / "bench" / PSTN, pstn=True)
        gateways.append(gateway)
        trunks[PSTN] = gateway
        sbc = await b2bua_from_config(topology(**limits), trunks=trunks, probe=False)
        return Bench(sbc, trunks)

    try:
        yield make
    finally:
        for gateway in gateways:
            await asyncio.wait_for(gateway.running.close(), 10)
            gateway.store.close()


async def wait_until(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return await predicate()


# -- one link full, each policy -------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["calls", "bandwidth"])
@pytest.mark.parametrize("policy", ["block", "pstn", "exempt"])
async def test_a_full_link_applies_the_branchs_emergency_policy(make_bench, caller_factory, policy, limit):
    """One call holds the link's only slot (max_calls = 1), or its bandwidth (100 kbit/s,
    one G.711 call is 80): the next 911 call from that branch is handled by its policy."""
    bench = await make_bench(**({"max_calls": 1} if limit == "calls" else {"max_calls": None,
                                                                          "max_bandwidth_kbps": 100}))
    link = LINK[policy]
    caller = await caller_factory(host=SOURCE[policy])
    holder = asyncio.create_task(caller.call(bench.sbc.address(), CallSpec(to="911", hold_s=1.0)))
    peaks: list[tuple[int, int, int]] = []
    try:
        assert await wait_until(lambda: _usage_is(bench, link, 1), 5.0), "the first call never held the link"
        async with watching(bench, link, peaks):
            outcome = await caller.call(bench.sbc.address(), CallSpec(to="911", hold_s=0.3))
    finally:
        first = await asyncio.wait_for(holder, 15)
    peak = max(peaks)
    why = f"cac full: {link} calls 1/1" if limit == "calls" else f"cac full: {link} bandwidth 80+80 > 100 kbit/s"

    assert first.ok, first.line()
    first_cdr = await bench.sbc.cdr_for(first)
    assert (first_cdr["route_taken"], first_cdr["links"], first_cdr["cac"]) == (PRIMARY, [link], "counted")
    cdr = await bench.sbc.cdr_for(outcome)
    if policy == "block":
        # Refused by the B2BUA: 503 with the reason, nothing reaches a trunk.
        assert outcome.status == 503, outcome.line()
        assert outcome.response.headers.get("Reason") == f'SIP;cause=503;text="{why}"'
        assert cdr["attempts"] == [] and cdr["final_status"] == 503 and cdr["b_call_id"] is None
        assert why in cdr["route"]
        assert peak == (1, 80, 0)
    elif policy == "pstn":
        assert outcome.ok, outcome.line()
        [record] = (await bench.records(outcome))[PSTN]
        assert record["location"] is None and record["pidf_received"] is True
        assert (record["site"], record["links"], record["cac"], record["pstn_reason"]) == \
            ("branch-pstn", [], "none", why)
        assert (cdr["route_taken"], cdr["cac"], cdr["pstn_reason"], cdr["routes_passed_over"]) == \
            (PSTN, "none", why, [why])
        assert peak == (1, 80, 0)  # the PSTN call does not cross the link
    else:
        assert outcome.ok, outcome.line()
        [record] = (await bench.records(outcome))[PRIMARY]
        assert_recorded(record, outcome, ecrc=PRIMARY, location="byte-exact")
        assert (record["site"], record["link"], record["cac"], record["pstn_reason"]) == \
            ("branch-exempt", link, "over-limit", None)
        assert (cdr["route_taken"], cdr["links"], cdr["cac"]) == (PRIMARY, [link], "over-limit")
        assert peak == (2, 160, 1)  # admitted over the limit, and counted as such
    assert await wait_until(lambda: _usage_is(bench, link, 0), 5.0)
    assert await bench.usage(link) == (0, 0, 0)


async def _usage_is(bench: Bench, link: str, calls: int) -> bool:
    return (await bench.usage(link))[0] == calls


@contextlib.asynccontextmanager
async def watching(bench: Bench, link: str, peaks: list, *, admin: bool = True):  # noqa: ANN201
    """Sample the link's usage (GET /links, or the ledger) while the block runs."""
    async def sample() -> None:
        if admin:
            peaks.append(await bench.usage(link))
        else:
            cac = bench.ledger.snapshot(link)
            peaks.append((cac["calls"], cac["kbps"], cac["over_limit_calls"]))

    async def watch() -> None:
        while True:
            await sample()
            await asyncio.sleep(0.02)

    await sample()
    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


@pytest.mark.parametrize("policy, route, cac", [("block", None, None), ("pstn", PSTN, "none"),
                                                 ("exempt", PRIMARY, "over-limit")])
async def test_a_link_that_admits_no_call_at_all(make_bench, caller_factory, policy, route, cac):
    """max_calls = 0 (the CAC budget of the link withdrawn): every 911 call from the
    branch meets a full link, with no other call needed to fill it."""
    bench = await make_bench(max_calls=0)
    caller = await caller_factory(host=SOURCE[policy])

    outcome = await caller.call(bench.sbc.address(), CallSpec(to="911"))

    cdr = await bench.sbc.cdr_for(outcome)
    if route is None:
        assert outcome.status == 503 and f"cac full: {LINK[policy]} calls 0/0" in outcome.response.headers.get("Reason")
    else:
        assert outcome.ok, outcome.line()
        assert (cdr["route_taken"], cdr["cac"]) == (route, cac)
    assert await bench.usage(LINK[policy]) == (0, 0, 0)


# -- concurrency: N calls, K slots --------------------------------------------------------------------

N, K = 6, 2


@pytest.mark.parametrize("policy", ["block", "pstn", "exempt"])
async def test_n_simultaneous_calls_over_a_link_admitting_k(make_bench, caller_factory, policy):
    bench = await make_bench(max_calls=K)
    link = LINK[policy]
    bench.trunks[PRIMARY].set_answer("200", ring_ms=700)  # all N INVITEs are in flight together
    caller = await caller_factory(host=SOURCE[policy])
    peaks: list[tuple[int, int, int]] = []
    async with watching(bench, link, peaks):
        outcomes = await asyncio.wait_for(
            caller.call_many(bench.sbc.address(), CallSpec(to="911", hold_s=0.3), count=N, rate=200), 20)
    cdrs = [await bench.sbc.cdr_for(outcome) for outcome in outcomes]

    counted = [cdr for cdr in cdrs if cdr["cac"] == "counted"]
    assert len(counted) == K
    assert all(cdr["route_taken"] == PRIMARY and cdr["links"] == [link] for cdr in counted)
    rest = [(outcome, cdr) for outcome, cdr in zip(outcomes, cdrs) if cdr["cac"] != "counted"]
    assert len(rest) == N - K
    why = f"cac full: {link} calls {K}/{K}"
    for outcome, cdr in rest:
        if policy == "block":
            assert outcome.status == 503 and why in outcome.response.headers.get("Reason")
        elif policy == "pstn":
            assert outcome.ok and (cdr["route_taken"], cdr["pstn_reason"]) == (PSTN, why)
        else:
            assert outcome.ok and (cdr["route_taken"], cdr["cac"]) == (PRIMARY, "over-limit")
    answered = [outcome for outcome in outcomes if outcome.ok]
    assert len(answered) == (K if policy == "block" else N)
    for outcome in answered:
        records = await bench.records(outcome)
        [record] = records[PSTN if policy == "pstn" and outcome in [o for o, _ in rest] else PRIMARY]
        if record["ecrc"] == PRIMARY:
            assert_recorded(record, outcome, location="byte-exact")
    top = max(peaks)
    assert top == {"block": (K, 80 * K, 0), "pstn": (K, 80 * K, 0), "exempt": (N, 80 * N, N - K)}[policy]
    assert await wait_until(lambda: _usage_is(bench, link, 0), 5.0)
    assert await bench.usage(link) == (0, 0, 0)
    assert bench.ledger._held == {}


# -- no leaked slots, however a call ends ----------------------------------------------------------------


ENDINGS = {
    # name: (how the primary answers, the caller's spec, final status the caller sees)
    "bye-from-caller": ({"answer": "200"}, {"hold_s": 0.4}, 200),
    "bye-from-ecrc": ({"answer": "bye-after", "bye_after_s": 0.3}, {"hold_s": 5.0}, 200),
    "cancel-while-ringing": ({"answer": "ring"}, {"answer_timeout_s": 0.6}, 487),
    "busy": ({"answer": "486", "ring_ms": 300}, {}, 486),
    "failover-to-secondary": ({"answer": "503"}, {"hold_s": 0.3}, 200),
    "silent-primary": ({"answer": "drop"}, {"hold_s": 0.3}, 200),
}


@pytest.mark.parametrize("ending", ENDINGS)
async def test_every_end_of_a_call_gives_its_cac_slot_back(make_bench, caller_factory, ending):
    answer, spec, status = ENDINGS[ending]
    bench = await make_bench(max_calls=1)
    link = LINK["block"]  # block: a leaked slot would refuse the next 911 call outright
    primary = bench.trunks[PRIMARY]
    primary.set_answer(answer["answer"], ring_ms=answer.get("ring_ms", 0), bye_after_s=answer.get("bye_after_s"))
    caller = await caller_factory(host=SOURCE["block"])
    peaks: list[tuple[int, int, int]] = []
    async with watching(bench, link, peaks, admin=False):
        outcome = await caller.call(bench.sbc.address(), CallSpec(to="911", **spec))

    assert outcome.status == status, outcome.line()
    assert max(peaks)[0] == 1  # the call held the slot while it lasted (one slot, even across a failover)
    cdr = await bench.sbc.cdr_for(outcome)
    assert cdr is not None and cdr["links"] == [link]
    assert await wait_until(lambda: _usage_is(bench, link, 0), 5.0), f"{ending}: slot leaked"
    assert bench.ledger._held == {}
    primary.set_answer("200")
    follow_up = await caller.call(bench.sbc.address(), CallSpec(to="911"))
    assert follow_up.ok, f"after {ending} the next 911 call got {follow_up.line()}"


# -- SIPp: a third-party UA at a branch ----------------------------------------------------------


@pytest.mark.sipp
async def test_sipp_calls_from_a_branch_share_the_link_and_end_with_no_slot_held(make_bench):
    """SIPp (bound to the branch's address) places N calls at once; K cross the link to
    the ECRC, the rest take the branch's PSTN gateway; SIPp CANCELs one more while it
    rings; the ledger is back at zero."""
    bench = await make_bench(max_calls=K)
    link = LINK["pstn"]
    bench.trunks[PRIMARY].set_answer("200", ring_ms=800)
    calls = Sipp(SCENARIOS / "b2bua_uac_call.xml", remote=str(bench.sbc.address().host) + f":{bench.sbc.address().port}",
                 local_ip=SOURCE["pstn"], service="911", calls=N, rate=100, timeout_s=20)
    try:
        result = await calls.run(25)
    finally:
        await calls.stop()
    assert result.returncode == 0, result.errors[-2000:] + result.stderr[-1000:]
    assert await wait_until(lambda: _usage_is(bench, link, 0), 5.0)
    cdrs = list(bench.sbc.cdrs)
    assert len(cdrs) == N and all(cdr["site"] == "branch-pstn" for cdr in cdrs)
    assert sorted(cdr["route_taken"] for cdr in cdrs) == sorted([PRIMARY] * K + [PSTN] * (N - K))
    assert sum(cdr["cac"] == "counted" for cdr in cdrs) == K

    bench.trunks[PRIMARY].set_answer("ring")
    cancel = Sipp(SCENARIOS / "b2bua_uac_cancel.xml", remote=f"{bench.sbc.address().host}:{bench.sbc.address().port}",
                  local_ip=SOURCE["pstn"], service="911", calls=1, timeout_s=10)
    try:
        cancelled = await cancel.run(15)
    finally:
        await cancel.stop()
    assert cancelled.returncode == 0, cancelled.errors[-2000:]
    assert await wait_until(lambda: _usage_is(bench, link, 0), 5.0)
    assert bench.ledger._held == {}
