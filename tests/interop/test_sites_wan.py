"""Sites and WAN links end to end, on real sockets: a branch's 911 call when its WAN link
is down (by the operator or by failed probes), with a plain and with an ELIN PSTN gateway,
and after the link comes back. Judged by what the ECRC or the PSTN gateway RECORDED
(location, caller id, and the B2BUA's `E911-Route-Info`: site, link, pstn_reason) and by
the B2BUA's CDR.

    hq (127.0.0.10) hosts the ECRC trunks (primary, secondary)
    branch1 (127.0.0.11) --[branch1-hq]-- hq;  local PSTN gateway pstn-branch1
    branch2 (127.0.0.12) --[branch2-hq]-- hq;  local ELIN gateway pstn-branch2
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest_asyncio

from b2bua.testbench.caller import CallSpec
from b2bua.testbench.plugin import EcrcUnderTest, assert_recorded, start_ecrc

BRANCH1, BRANCH2, HQ = "127.0.0.11", "127.0.0.12", "127.0.0.10"
PRIMARY, SECONDARY, PSTN1, PSTN2 = "ecrc-primary", "ecrc-secondary", "pstn-branch1", "pstn-branch2"


def topology(*, probe: dict | None = None) -> dict:
    off = {"enabled": False}
    branch1_hq = {"name": "branch1-hq", "sites": ["branch1", "hq"], "max_calls": 4}
    if probe is not None:
        branch1_hq["probe"] = probe
    return {
        "admin": "127.0.0.1:0",
        "node": {"name": "sites-test", "route_annotation": True, "log_level": "warning"},
        "profile": [{"name": "sbc", "listen": ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]}],
        "emergency": {"dial_strings": ["911"], "test_numbers": ["933"], "trunk_group": "ecrc"},
        "trunk": [
            {"name": PRIMARY, "address": "127.0.0.1:5070", "transports": ["udp", "tcp"], "fast_failover_s": 1.0,
             "health": off},
            {"name": SECONDARY, "address": "127.0.0.1:5072", "transports": ["udp", "tcp"], "fast_failover_s": 1.0,
             "health": off},
            {"name": PSTN1, "address": "127.0.0.1:5080", "transports": ["udp", "tcp"], "kind": "pstn", "health": off},
            {"name": PSTN2, "address": "127.0.0.1:5082", "transports": ["udp", "tcp"], "kind": "pstn", "health": off},
        ],
        "trunk_group": [{"name": "ecrc", "trunks": [PRIMARY, SECONDARY]}, {"name": PSTN1, "trunks": [PSTN1]},
                        {"name": PSTN2, "trunks": [PSTN2]}],
        "site": [
            {"name": "hq", "members": {"sources": [f"{HQ}/32"]}, "trunk_groups": ["ecrc"]},
            {"name": "branch1", "members": {"sources": [f"{BRANCH1}/32"]}, "trunk_groups": [PSTN1],
             "emergency_routes": ["ecrc", PSTN1], "cac_emergency_policy": "pstn"},
            {"name": "branch2", "members": {"sources": [f"{BRANCH2}/32"]}, "trunk_groups": [PSTN2],
             "emergency_routes": ["ecrc", PSTN2], "cac_emergency_policy": "exempt", "elin_gateway": True},
        ],
        "link": [branch1_hq, {"name": "branch2-hq", "sites": ["branch2", "hq"], "max_calls": 4}],
    }


async def start_elin_gateway(name: str, directory: Path) -> EcrcUnderTest:
    """A PSTN gateway in ELIN mode (the plugin's `pstn_gateway` is a plain one)."""
    from b2bua.testbench.ecrc import start_uas
    from b2bua.testbench.pstn import PstnGateway
    from b2bua.testbench.sipp import free_port
    from b2bua.testbench.store import CallStore

    directory.mkdir(parents=True, exist_ok=True)
    store = CallStore(directory / f"{name}.sqlite")
    for _ in range(10):
        gateway = PstnGateway(name, store, elin_gateway=True)
        port = free_port()
        try:
            running = await start_uas(gateway, store, [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}"],
                                      f"127.0.0.1:{free_port()}")
        except OSError:
            await gateway.stack.close()
            continue
        return EcrcUnderTest(name, running, store)
    store.close()
    raise OSError("no free port for the ELIN gateway")


class Bench:
    def __init__(self, sbc, trunks: dict[str, EcrcUnderTest]) -> None:
        self.sbc = sbc
        self.trunks = trunks

    @property
    def node(self):  # noqa: ANN201 - NodeState
        return self.sbc.node.node

    def link(self, name: str):  # noqa: ANN201 - LinkState
        return self.node.sites.links[name]

    async def records(self, outcome) -> dict[str, list[dict]]:  # noqa: ANN001
        """trunk name -> what that bench UA recorded of this call."""
        cdr = await self.sbc.cdr_for(outcome)
        assert cdr is not None, f"no CDR for {outcome.call_id}"
        return {name: handle.records(call_id=cdr["b_call_id"]) for name, handle in self.trunks.items()
                if handle.records(call_id=cdr["b_call_id"])}


@pytest_asyncio.fixture
async def bench(tmp_path, ecrc_factory, b2bua_from_config):
    started: list[EcrcUnderTest] = []
    try:
        trunks = {PRIMARY: await ecrc_factory(PRIMARY), SECONDARY: await ecrc_factory(SECONDARY)}
        started.append(await start_ecrc(PSTN1, tmp_path / "bench" / PSTN1, pstn=True))
        started.append(await start_elin_gateway(PSTN2, tmp_path / "bench" / PSTN2))
        trunks[PSTN1], trunks[PSTN2] = started
        sbc = await b2bua_from_config(topology(), trunks=trunks, probe=False)
        yield Bench(sbc, trunks)
    finally:
        for handle in started:
            await asyncio.wait_for(handle.running.close(), 10)
            handle.store.close()


async def wait_until(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


# -- WAN down -> the branch's PSTN gateway ---------------------------------------------------------


async def test_wan_down_at_a_branch_sends_911_to_its_pstn_gateway_and_the_location_is_lost(bench, caller_factory):
    caller = await caller_factory(host=BRANCH1)
    bench.link("branch1-hq").set(False, "admin", time.time())

    outcome = await caller.call(bench.sbc.address(), CallSpec(to="911"))

    assert outcome.ok, outcome.line()
    records = await bench.records(outcome)
    assert list(records) == [PSTN1]  # the ECRCs never saw it
    [record] = records[PSTN1]
    assert record["pidf_received"] is True  # the gateway got the PIDF-LO on its SIP side...
    assert record["location"] is None and record["address"] is None  # ...and nothing of it crosses to the PSTN
    assert_recorded(record, verdict="no_location", disposition="ecrc_must_ask")
    assert record["pstn_caller_id"] == record["original_caller"] == "+14255550100"  # no ELIN here
    assert (record["site"], record["link"], record["links"], record["cac"]) == ("branch1", None, [], "none")
    assert record["pstn_reason"] == "wan down: branch1-hq"
    cdr = await bench.sbc.cdr_for(outcome)
    assert (cdr["site"], cdr["route_taken"], cdr["links"], cdr["cac"]) == ("branch1", PSTN1, [], "none")
    assert cdr["pstn_reason"] == "wan down: branch1-hq"
    assert cdr["routes_passed_over"] == ["wan down: branch1-hq"]
    assert [attempt["trunk"] for attempt in cdr["attempts"]] == [PSTN1]


async def test_wan_down_with_an_elin_gateway_the_caller_id_is_the_elin_and_a_callback_is_redirected(
        bench, caller_factory):
    branch = await caller_factory(host=BRANCH2)
    psap = await caller_factory()
    bench.link("branch2-hq").set(False, "admin", time.time())
    call = asyncio.create_task(branch.call(bench.sbc.address(), CallSpec(to="911", style="lync", hold_s=1.5)))
    try:
        gateway = bench.trunks[PSTN2]
        assert await wait_until(lambda: bool(gateway.records()), 5.0), "the ELIN gateway got no call"
        [record] = gateway.records()
        # The PIDF-LO's <ca:NAM> lists "1111-222-333; 1234567890": the first is taken.
        assert record["elin_candidates"] == ["1111222333", "1234567890"]
        assert record["pstn_caller_id"] == record["elin"] == "1111222333"
        assert record["original_caller"] == "+14255550100"
        assert_recorded(record, verdict="elin_only", disposition="routable_by_elin")
        assert record["location"] is None
        assert (record["site"], record["cac"], record["pstn_reason"]) == ("branch2", "none", "wan down: branch2-hq")

        # The PSAP calls the ELIN back while the emergency call is up: the gateway routes it
        # back toward the caller with a 302 to the Contact the emergency call came from.
        back = await psap.call(gateway.address(), CallSpec(to="1111222333", pidf=None, answer_timeout_s=5))
        assert back.status == 302, back.line()
        [contact] = back.response.contact
        entry = gateway.uas.elin_table.get("1111222333")
        assert str(contact.uri) == entry.caller_contact == _uri_of(record["contact"])
        # That Contact is the B2BUA's callback Contact for this call (topology hiding: the
        # caller's own Contact never crosses the B2BUA); the caller's identity is kept beside it.
        b2bua = bench.sbc.address()
        assert contact.uri.user.startswith("cb-")
        assert (contact.uri.host, contact.uri.port) == (b2bua.host, b2bua.port)
        assert entry.caller_uri == "sip:+14255550100@caller.example.com"
    finally:
        outcome = await asyncio.wait_for(call, 15)
    assert outcome.ok and outcome.held_s >= 1.4, outcome.line()
    cdr = await bench.sbc.cdr_for(outcome)
    assert (cdr["route_taken"], cdr["pstn_reason"], cdr["site"]) == (PSTN2, "wan down: branch2-hq", "branch2")


def _uri_of(contact: str) -> str:
    return contact.strip().removeprefix("<").split(">", 1)[0]


async def test_restored_link_sends_calls_back_to_the_sip_trunk_with_location(bench, caller_factory):
    caller = await caller_factory(host=BRANCH1)
    link = bench.link("branch1-hq")

    link.set(False, "admin", time.time())
    during = await caller.call(bench.sbc.address(), CallSpec(to="911"))
    link.set(True, "admin", time.time())
    after = await caller.call(bench.sbc.address(), CallSpec(to="911"))

    assert during.ok and after.ok
    assert list(await bench.records(during)) == [PSTN1]
    records = await bench.records(after)
    assert list(records) == [PRIMARY]
    [record] = records[PRIMARY]
    assert_recorded(record, after, ecrc=PRIMARY, location="byte-exact", verdict="location_by_value_valid",
                    disposition="routable_by_location")
    assert (record["site"], record["link"], record["links"], record["cac"], record["pstn_reason"]) == \
        ("branch1", "branch1-hq", ["branch1-hq"], "counted", None)
    cdr = await bench.sbc.cdr_for(after)
    assert (cdr["route_taken"], cdr["links"], cdr["cac"], cdr["routes_passed_over"]) == \
        (PRIMARY, ["branch1-hq"], "counted", [])
    assert bench.node.cac.snapshot("branch1-hq")["calls"] == 0


async def test_hq_callers_are_not_affected_by_a_branch_link(bench, caller_factory):
    caller = await caller_factory(host=HQ)
    bench.link("branch1-hq").set(False, "admin", time.time())

    outcome = await caller.call(bench.sbc.address(), CallSpec(to="911"))

    assert outcome.ok
    [record] = (await bench.records(outcome))[PRIMARY]
    assert_recorded(record, outcome, location="byte-exact")
    assert (record["site"], record["links"], record["cac"], record["pstn_reason"]) == ("hq", [], "none", None)


async def test_a_failed_sip_trunk_after_the_wan_still_hunts_to_the_pstn_gateway(bench, caller_factory):
    """Both ECRCs refuse (503): the branch's next emergency route, its PSTN gateway, takes
    the call; the CAC slot held while the ECRC trunks were tried is given back."""
    caller = await caller_factory(host=BRANCH1)
    bench.trunks[PRIMARY].set_answer("503")
    bench.trunks[SECONDARY].set_answer("503")

    outcome = await caller.call(bench.sbc.address(), CallSpec(to="911"))

    assert outcome.ok, outcome.line()
    cdr = await bench.sbc.cdr_for(outcome)
    assert [(a["trunk"], a["final"], a["links"], a["cac"]) for a in cdr["attempts"]] == [
        (PRIMARY, 503, ["branch1-hq"], "counted"), (SECONDARY, 503, ["branch1-hq"], "counted"),
        (PSTN1, 200, [], "none")]
    assert (cdr["route_taken"], cdr["links"], cdr["cac"]) == (PSTN1, [], "none")
    assert bench.node.cac.snapshot("branch1-hq")["calls"] == 0


# -- link probes ------------------------------------------------------------------------------------


async def test_failed_probes_declare_the_link_down_and_answered_probes_bring_it_back(
        tmp_path, ecrc_factory, b2bua_from_config, caller_factory):
    far_side = await ecrc_factory("hq-edge")  # an element on hq's side of the WAN, answering OPTIONS
    primary = await ecrc_factory(PRIMARY)
    pstn = await start_ecrc(PSTN1, tmp_path / "bench" / PSTN1, pstn=True)
    try:
        probe = {"target": far_side.host_port, "interval_s": 0.2, "timeout_s": 0.3, "failures_to_down": 2,
                 "successes_to_up": 2}
        sbc = await b2bua_from_config(topology(probe=probe), trunks={PRIMARY: primary, PSTN1: pstn}, probe=True)
        state = sbc.node.node.sites.links["branch1-hq"]
        caller = await caller_factory(host=BRANCH1)
        assert state.up

        far_side.set_answer("drop")  # the WAN fails: OPTIONS go unanswered
        assert await wait_until(lambda: not state.up, 5.0), "the link was not declared down"
        assert (state.reason, state.probe_up, state.admin_up) == ("probe", False, True)
        down_call = await caller.call(sbc.address(), CallSpec(to="911"))
        # An operator's "up" does not override what the probes see.
        state.set(True, "admin", time.time())
        assert not state.up

        far_side.set_answer("200")  # the WAN is back
        assert await wait_until(lambda: state.up, 5.0), "the link was not brought back up"
        assert state.reason == "probe"
        up_call = await caller.call(sbc.address(), CallSpec(to="911"))
    finally:
        await asyncio.wait_for(pstn.running.close(), 10)
        pstn.store.close()

    assert down_call.ok and up_call.ok
    down_cdr, up_cdr = await sbc.cdr_for(down_call), await sbc.cdr_for(up_call)
    assert (down_cdr["route_taken"], down_cdr["pstn_reason"]) == (PSTN1, "wan down: branch1-hq")
    assert (up_cdr["route_taken"], up_cdr["links"], up_cdr["cac"]) == (PRIMARY, ["branch1-hq"], "counted")
    assert_recorded(primary.records(call_id=up_cdr["b_call_id"])[0], up_call, location="byte-exact")
    # An operator's "down" is not undone by answered probes.
    state.set(False, "admin", time.time())
    await asyncio.sleep(0.5)
    assert not state.up and state.probe_up
