"""What only a real network shows: the lab in network namespaces (docs/netlab.md).

Hosts on 198.18.0.0/24 joined by veth pairs with a 1500-byte MTU: caller, B2BUA, branch
phone and PSTN gateway on the branch bridge; the two ECRCs behind the WAN veth pair.
Each test restarts the B2BUA with its variant of the configuration and asserts what the
ECRCs or the PSTN gateway recorded (their SQLite stores), mapped to the caller's calls
through the B2BUA's CDRs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from pathlib import Path

import pytest

import netlab_support as support
from b2bua.netlab.labconfig import WAN_LINK, Variant
from b2bua.netlab.topology import run_ip

pytestmark = pytest.mark.netns

DOCKER_SIPP = Path(__file__).resolve().parents[2] / "docker" / "sipp"


def test_every_host_has_a_1500_byte_link_on_the_test_range_and_no_default_route(netlab):
    for role in ("caller", "b2bua", "ecrc-primary", "ecrc-secondary", "pstn", "branch"):
        link = run_ip(["-n", netlab.netns(role), "link", "show", netlab.topology.host_if(role)]).stdout
        assert re.search(r"\bmtu 1500\b", link), link
        routes = run_ip(["-n", netlab.netns(role), "route", "show"]).stdout
        assert routes.strip() == f"198.18.0.0/24 dev {netlab.topology.host_if(role)} proto kernel scope link src {netlab.address(role)}", routes
        assert not run_ip(["-n", netlab.netns(role), "route", "show", "default"]).stdout.strip()


# -- 1. a PIDF-LO INVITE above 1300 bytes: TCP when the trunk allows it, IP fragments when not --


def test_large_invite_goes_to_the_ecrc_over_tcp_when_the_trunk_allows_tcp(netlab):
    netlab.start_b2bua(Variant(ecrc_transports=("udp", "tcp")))
    since = support.last_ids(netlab)

    outcomes = netlab.call("caller", count=2, rate=4, style="lync", transport="udp")

    assert all(o["ok"] for o in outcomes), support.outcome_lines(outcomes)
    records = support.new_records(netlab, since)
    for outcome in outcomes:
        call_id = support.leg_b_call_id(netlab, outcome)
        [record] = [r for r in records["ecrc-primary"] if r["call_id"] == call_id]
        assert record["transport"] == "TCP"
        assert record["content_length_actual"] > 1300
        assert record["pidf_sha256"] == outcome["pidf_sha256"]  # the location, byte for byte
        assert record["verdict"] in ("location_by_value_valid", "by_value_degraded")
        assert record["disposition"] == "routable_by_location"
    attempts = netlab.b2bua_events("call.attempt")
    assert attempts and all(a["peer"].startswith("tcp:198.18.0.31") for a in attempts), attempts
    assert all("RFC 3261 §18.1.1" in (a.get("transport_reason") or "") and "over tcp" in a["transport_reason"]
               for a in attempts), attempts


def test_large_invite_over_a_udp_only_trunk_is_ip_fragmented_and_still_arrives(netlab):
    netlab.start_b2bua(Variant(ecrc_transports=("udp",)))
    since = support.last_ids(netlab)
    ecrc_before = netlab.topology.ip_counters("ecrc-primary")
    b2bua_before = netlab.topology.ip_counters("b2bua")

    outcomes = netlab.call("caller", count=2, rate=4, style="pjsua", transport="udp")

    assert all(o["ok"] for o in outcomes), support.outcome_lines(outcomes)
    records = support.new_records(netlab, since)
    for outcome in outcomes:
        call_id = support.leg_b_call_id(netlab, outcome)
        [record] = [r for r in records["ecrc-primary"] if r["call_id"] == call_id]
        assert record["transport"] == "UDP"
        assert record["content_length_actual"] > 1300
        assert record["pidf_sha256"] == outcome["pidf_sha256"]
    # The datagrams really were cut in fragments on the 1500-byte link and put together again.
    ecrc_after = netlab.topology.ip_counters("ecrc-primary")
    b2bua_after = netlab.topology.ip_counters("b2bua")
    assert b2bua_after["FragOKs"] - b2bua_before["FragOKs"] >= len(outcomes)
    assert ecrc_after["ReasmOKs"] - ecrc_before["ReasmOKs"] >= len(outcomes)
    # And the B2BUA said so when it sent them.
    attempts = netlab.b2bua_events("call.attempt")
    assert attempts and all(a["peer"].startswith("udp:198.18.0.31") for a in attempts), attempts
    assert all("UDP-only" in (a.get("transport_reason") or "") and "IP-fragmented" in a["transport_reason"]
               for a in attempts), attempts


@pytest.mark.parametrize("scenario", ["uac_emergency_rfc.xml", "uac_emergency_lync.xml"])
def test_the_compose_callers_sipp_scenario_delivers_its_location_over_udp_fragments(netlab, scenario):
    """The SIPp scenarios of docker/sipp (the compose lab's caller) on a real 1500-byte path."""
    sipp = shutil.which("sipp")
    assert sipp, "SIPp is missing: `make sipp` installs Debian's sip-tester"
    netlab.start_b2bua(Variant(ecrc_transports=("udp",)))
    since = support.last_ids(netlab)
    path = DOCKER_SIPP / scenario

    done = netlab.supervisor.run(f"sipp-{scenario}", netlab.netns("caller"), [
        sipp, "-sf", str(path), "-s", "911", "-m", "1", "-d", "200", "-t", "u1",
        "-i", netlab.address("caller"), "-p", "5062", "-timeout", "20", "-timeout_error", "-nostdin",
        "-trace_err", "-error_file", str(netlab.run_dir / f"sipp-{scenario}.err"),
        f"{netlab.address('b2bua')}:5060",
    ], timeout=40)

    assert done.returncode == 0, f"SIPp exit {done.returncode}:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    [record] = support.new_records(netlab, since)["ecrc-primary"]
    assert record["transport"] == "UDP" and record["content_length_actual"] > 1300
    assert record["pidf_sha256"] == _sipp_pidf_sha256(path)
    assert record["disposition"] == "routable_by_location", record["findings"]


def _sipp_pidf_sha256(path: Path) -> str:
    """The PIDF-LO part as SIPp sends it: lines stripped of leading blanks, CRLF line ends."""
    text = path.read_text(encoding="iso-8859-1")
    invite = text.split("<![CDATA[", 1)[1].split("]]>", 1)[0]
    body = invite.split("application/pidf+xml", 1)[1]
    lines = [line.lstrip() for line in body.splitlines()]
    start = lines.index("", 1) + 1  # the part headers end at the first empty line (line 0: rest of Content-Type)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("--"))
    return hashlib.sha256("\r\n".join(lines[start:end]).encode()).hexdigest()


# -- 2. the branch's WAN link is cut: emergency calls from the branch go to its PSTN gateway --

DETECTION_S = 2 * (1.0 + 0.5) + 1.0 + 2.0  # failures_to_down x (interval + timeout) + interval + margin


def test_branch_calls_use_the_local_pstn_gateway_while_the_wan_is_down_and_return_after(netlab):
    netlab.start_b2bua(Variant())  # sites: branch -> [ecrc, pstn-branch]; link wan-branch probed each 1 s
    since = support.last_ids(netlab)

    [before] = netlab.call("branch", count=1, style="rfc", timeout=15)
    assert before["ok"], support.outcome_lines([before])
    first = support.leg_b_call_id(netlab, before)
    assert support.where_recorded(support.new_records(netlab, since), first) == ["ecrc-primary"]

    netlab.set_wan(False)  # the cable, not a flag: ip link set <tag>-wanb down
    try:
        support.wait_until(lambda: support.link_events(netlab, WAN_LINK, up=False), DETECTION_S)
        [during] = netlab.call("branch", count=1, style="rfc", timeout=15)
    finally:
        netlab.set_wan(True)
    cdr = netlab.cdr_of(during) or {}
    seen = support.link_events(netlab, WAN_LINK, up=False)
    assert during["ok"], (
        f"the branch call during the WAN cut failed: {support.outcome_lines([during])}; B2BUA route "
        f"{cdr.get('route')!r}, attempts {[(a['trunk'], a['final'], a['failover_reason']) for a in cdr.get('attempts', [])]}; "
        f"link-down events in the B2BUA log: {len(seen)}")
    cut = support.leg_b_call_id(netlab, during)
    records = support.new_records(netlab, since)
    assert support.where_recorded(records, cut) == ["pstn"], (
        f"the branch call during the WAN cut was recorded at {support.where_recorded(records, cut)}, "
        f"not at the branch PSTN gateway")
    [pstn_record] = [r for r in records["pstn"] if r["call_id"] == cut]
    assert pstn_record["pidf_received"] is True  # the PIDF-LO reached the gateway
    assert pstn_record["pidf_sha256"] == during["pidf_sha256"]
    # Why, as the B2BUA annotated leg B (node.route_annotation): the branch's WAN was down.
    assert pstn_record["site"] == "branch" and WAN_LINK in (pstn_record["pstn_reason"] or ""), pstn_record["pstn_reason"]

    support.wait_until(lambda: support.link_events(netlab, WAN_LINK, up=True), DETECTION_S)
    [after] = netlab.call("branch", count=1, style="rfc", timeout=15)
    assert after["ok"], support.outcome_lines([after])
    back = support.leg_b_call_id(netlab, after)
    # Back on the SIP trunk: an ECRC (the secondary if trunk probing has not yet seen the
    # primary come back), never the PSTN gateway.
    assert support.where_recorded(support.new_records(netlab, since), back) in (["ecrc-primary"], ["ecrc-secondary"]), (
        "after the WAN came back (and the probes said so) the branch call did not return to the SIP trunk")


# -- 3. the primary ECRC host disappears in the middle of a run of calls ------------------------


def test_every_call_after_the_primary_ecrc_disappears_lands_on_the_secondary(netlab):
    netlab.start_b2bua(Variant(fast_failover_s=1.0, health_interval_s=1.0, health_timeout_s=0.5))
    since = support.last_ids(netlab)

    job = netlab.start_calls("caller", count=40, rate=5, style="rfc", timeout=20)
    time.sleep(2.5)
    netlab.set_link("ecrc-primary", False)  # no ICMP, no RST: the host is just gone
    cut_at = time.time()  # `ip link set ... down` has returned: nothing reaches the primary now
    try:
        outcomes = netlab.finish_calls(job, timeout=90)
    finally:
        netlab.set_link("ecrc-primary", True)

    assert len(outcomes) == 40
    assert all(o["ok"] for o in outcomes), support.outcome_lines(o for o in outcomes if not o["ok"])
    later = [o for o in outcomes if o["started_at"] > cut_at]
    assert len(later) >= 20, f"only {len(later)} calls started after the cut"
    records = support.new_records(netlab, since)
    assert records["ecrc-primary"], "no call reached the primary before the cut"
    after_cut = [r["arrived_at"] for r in records["ecrc-primary"] if r["arrived_at"] > _iso(cut_at)]
    assert not after_cut, f"the primary recorded calls after it was gone (cut at {_iso(cut_at)}): {after_cut}"
    for outcome in later:
        call_id = support.leg_b_call_id(netlab, outcome)
        assert support.where_recorded(records, call_id) == ["ecrc-secondary"], outcome
    # OPTIONS probing noticed the primary was gone, so later calls did not wait for it.
    downs = [e for e in netlab.b2bua_events("trunk.state") if e.get("trunk") == "ecrc-primary" and e.get("up") is False]
    assert downs, "the trunk prober never declared ecrc-primary down"
    detected = _epoch(downs[0]["timestamp"])
    after_detection = [o for o in later if o["started_at"] > detected + 0.1]
    assert after_detection, "no call started after the prober declared the primary down"
    for outcome in after_detection:
        cdr = netlab.cdr_of(outcome)
        assert cdr["attempts"][0]["trunk"] == "ecrc-secondary", cdr["attempts"]
        assert "ecrc-primary" in cdr["skipped_trunks"]


# -- 4. 10% loss and 50 ms delay on the trunk link: 200 calls, each location recorded once -----


def test_200_calls_through_a_lossy_slow_trunk_link_are_each_recorded_once(netlab):
    # UDP-only trunk, so SIP's own retransmissions (not TCP's) must cope with the loss; a
    # fast-failover time above the retransmissions' usual reach (T1 0.5 s: 0, 0.5, 1.5, 3.5 s).
    netlab.start_b2bua(Variant(ecrc_transports=("udp",), fast_failover_s=5.0, health_timeout_s=1.0,
                               health_failures_to_down=3))
    since = support.last_ids(netlab)
    impairment = netlab.topology.impair("ecrc-primary", loss=0.10, delay_ms=50, seed=911)
    try:
        outcomes = netlab.call("caller", count=200, rate=10, style="rfc", timeout=30)
    finally:
        shaped = netlab.topology.clear_impairment("ecrc-primary")

    completed = [o for o in outcomes if o["ok"]]
    assert len(outcomes) == 200
    assert len(completed) >= 198, support.outcome_lines(o for o in outcomes if not o["ok"])
    if impairment.backend == "shaper":
        assert shaped["dropped"] > 0 and shaped["delayed"] > 0, shaped  # the link really was bad
    records = support.new_records(netlab, since)
    # Retransmitted INVITEs are absorbed: no ECRC recorded a Call-ID twice.
    for role in ("ecrc-primary", "ecrc-secondary"):
        assert not support.duplicates(records[role]), (role, support.duplicates(records[role]))
    failed_over = []
    for outcome in completed:
        cdr = netlab.cdr_of(outcome)
        assert cdr is not None, outcome
        where = support.where_recorded(records, cdr["b_call_id"])
        if len(cdr["attempts"]) > 1:
            failed_over.append((outcome["index"], where))  # also reached the secondary: reported below
            assert cdr["route_taken"] in where
            continue
        assert where == [cdr["route_taken"]], (outcome["index"], where, cdr["attempts"])
        [record] = [r for r in records[where[0]] if r["call_id"] == cdr["b_call_id"]]
        assert record["pidf_sha256"] == outcome["pidf_sha256"], outcome["index"]
    assert len(failed_over) <= 2, f"calls that failed over despite the 5 s fast-failover time: {failed_over}"


def _iso(epoch: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="microseconds")


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
