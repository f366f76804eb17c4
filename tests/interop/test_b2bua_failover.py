"""Hunting over trunks with real SIPp peers: failover on 503, on a dead or a silent primary,
no failover on 486 or after CANCEL, round robin over a pair, and OPTIONS health probing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

import b2bua_support as bs

pytestmark = pytest.mark.sipp

FAST_FAILOVER_S = 1.0


async def test_503_from_primary_lands_the_call_on_secondary_and_caller_never_sees_503(tmp_path):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_503", ports.primary, calls=1)
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(primary, secondary):
        caller = await bs.uac("b2bua_uac_call", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    p = await bs.finish(primary)
    s = await bs.finish(secondary)
    assert 503 not in a.statuses() and a.responses(200, "received", method="INVITE")
    assert p.requests("ACK", "received")  # the 503 was ACKed on leg B
    assert s.requests("INVITE", "received") and s.requests("BYE", "received")
    # One leg-B dialog for the call: the secondary gets the same Call-ID, a fresh branch.
    assert s.first("INVITE", "received").call_id == p.first("INVITE", "received").call_id
    assert [(x["trunk"], x["final"]) for x in record["attempts"]] == [(bs.PRIMARY, 503), (bs.SECONDARY, 200)]
    assert record["route_taken"] == bs.SECONDARY and record["final_status"] == 200


async def _failover_to_secondary(tmp_path, ports: bs.Ports, transport: str = "udp") -> tuple[float, dict, bs.Trace]:
    """Place one call whose primary does not answer; return (seconds from the caller's
    INVITE to the secondary receiving its INVITE, the CDR, the caller's trace)."""
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=1, transport={"udp": "u1", "tcp": "t1"}[transport])
    config = bs.node_config(tmp_path, ports, fast_failover_s=FAST_FAILOVER_S, trunk_transports=(transport,))
    async with bs.running_node(config), bs.peers(secondary):
        caller = await bs.uac("b2bua_uac_call", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    s = await bs.finish(secondary)
    delay = s.first("INVITE", "received").at - a.first("INVITE", "sent").at
    assert record["route_taken"] == bs.SECONDARY
    assert [x["trunk"] for x in record["attempts"]] == [bs.PRIMARY, bs.SECONDARY]
    return delay, record, a


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_primary_with_no_listener_fails_over_in_milliseconds(tmp_path, transport):
    ports = bs.Ports.fresh()  # nothing listens on ports.primary: ICMP port unreachable / RST
    delay, record, a = await _failover_to_secondary(tmp_path, ports, transport)
    print(f"failover ({transport}, no listener): {delay * 1000:.1f} ms")
    assert delay < 0.25 * FAST_FAILOVER_S
    assert record["attempts"][0]["failover_reason"] == "transport error"
    assert 503 not in a.statuses()


async def test_silent_primary_fails_over_within_fast_failover_time(tmp_path):
    ports = bs.Ports.fresh()
    async with bs.silent_udp(ports.primary) as silent:
        delay, record, a = await _failover_to_secondary(tmp_path, ports)
    print(f"failover (silent primary, fast_failover_s={FAST_FAILOVER_S}): {delay * 1000:.1f} ms")
    assert FAST_FAILOVER_S * 0.9 <= delay < 2 * FAST_FAILOVER_S
    assert silent.count("INVITE") >= 1
    assert record["attempts"][0]["failover_reason"].startswith("no response within")
    assert 408 not in a.statuses() and 503 not in a.statuses()


async def test_486_from_primary_is_final_and_secondary_never_sees_an_invite(tmp_path):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_486", ports.primary, calls=1)
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(primary, secondary):
        caller = await bs.uac("b2bua_uac_486", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    p = await bs.finish(primary)
    s = await bs.finish(secondary)
    assert a.statuses()[-1] == 486
    assert p.requests("ACK", "received")
    assert not s.received()
    assert [x["trunk"] for x in record["attempts"]] == [bs.PRIMARY]
    assert record["final_status"] == 486 and record["route_taken"] is None
    assert record["disconnect_side"] == "callee"  # the ECRC refused, not the B2BUA


async def test_cancel_while_primary_rings_reaches_it_and_no_further_trunk_is_tried(tmp_path):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_ring_cancel", ports.primary, calls=1)
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)) as node, bs.peers(primary, secondary):
        caller = await bs.uac("b2bua_uac_cancel", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        await asyncio.sleep(FAST_FAILOVER_S + 0.3)  # longer than a failover would take
        assert not node.node.calls
    a = bs.Trace.of(caller)
    p = await bs.finish(primary)
    s = await bs.finish(secondary)
    assert a.responses(487, "received", method="INVITE")
    assert a.responses(200, "received", method="CANCEL")
    cancel = p.first("CANCEL", "received")
    invite = p.first("INVITE", "received")
    assert cancel.header("Via") == invite.header("Via")  # §9.1: the branch of the INVITE it cancels
    assert p.requests("ACK", "received")  # the 487 was ACKed on leg B
    assert not s.received()
    assert [x["trunk"] for x in record["attempts"]] == [bs.PRIMARY]
    assert record["final_status"] == 487 and record["disconnect_side"] == "caller"


async def test_round_robin_spreads_200_calls_evenly_over_the_pair(tmp_path):
    ports = bs.Ports.fresh()
    calls = 200
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=10 * calls)
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=10 * calls)
    async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(primary, secondary):
        caller = await bs.uac("b2bua_uac_call", ports.caller, service="922", calls=calls, rate=50,
                              timeout_s=40).run()
        assert caller.returncode == 0, bs.describe(caller)
        records = await bs.wait_for_cdrs(tmp_path, calls)
    p = await bs.finish(primary)
    s = await bs.finish(secondary)
    on_primary = len(p.distinct_call_ids())
    on_secondary = len(s.distinct_call_ids())
    assert on_primary + on_secondary == calls
    for count in (on_primary, on_secondary):
        assert abs(count - calls / 2) <= 0.1 * calls / 2, (on_primary, on_secondary)
    taken = [record["route_taken"] for record in records]
    assert taken.count(bs.PRIMARY) == on_primary and taken.count(bs.SECONDARY) == on_secondary
    assert all(record["trunk_group"] == "sbc-pair" for record in records)


@pytest.mark.parametrize("dead", ["no-listener", "silent"])
async def test_options_probing_marks_dead_trunk_down_skips_it_and_brings_it_back(tmp_path, dead):
    ports = bs.Ports.fresh()
    probe = {"interval_s": 0.2, "timeout_s": 0.3, "failures_to_down": 2, "successes_to_up": 1}
    config = bs.node_config(tmp_path, ports, primary_health=probe)
    secondary = bs.uas("b2bua_uas_answer", ports.secondary)
    back = bs.uas("b2bua_uas_options", ports.primary)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(bs.peers(secondary))
        dead_primary = contextlib.AsyncExitStack()
        await stack.enter_async_context(dead_primary)
        if dead == "silent":  # a socket that reads OPTIONS and never answers: probes time out
            await dead_primary.enter_async_context(bs.silent_udp(ports.primary))
        started = time.monotonic()
        node = await stack.enter_async_context(bs.running_node(config, probe=True))
        health = node.node.health[bs.PRIMARY]
        assert health.up  # presumed up until probes say otherwise
        assert await bs.wait_until(lambda: not health.up, timeout=3.0), health.to_dict()
        down_after = time.monotonic() - started
        print(f"primary marked down ({dead}) {down_after:.2f} s after start: {health.last_probe['detail']}")
        if dead == "silent":  # two probes each unanswered for timeout_s, one interval between
            assert down_after >= 2 * probe["timeout_s"]
        assert node.node.health[bs.SECONDARY].up

        caller = await bs.uac("b2bua_uac_call", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (first,) = await bs.wait_for_cdrs(tmp_path, 1)
        assert first["skipped_trunks"] == [bs.PRIMARY]
        assert [x["trunk"] for x in first["attempts"]] == [bs.SECONDARY]  # not even tried
        assert first["setup_ms"] < 500  # no fast-failover wait spent on the dead primary

        await dead_primary.aclose()
        started = time.monotonic()
        await stack.enter_async_context(bs.peers(back))
        assert await bs.wait_until(lambda: health.up, timeout=3.0), health.to_dict()
        print(f"primary back up {time.monotonic() - started:.2f} s after its UAS started")
        caller = await bs.uac("b2bua_uac_call", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        second = (await bs.wait_for_cdrs(tmp_path, 2))[1]
    b = await bs.finish(back)
    assert second["skipped_trunks"] == []
    assert second["route_taken"] == bs.PRIMARY
    assert b.requests("OPTIONS", "received") and b.responses(200, "sent", method="OPTIONS")
    assert b.requests("INVITE", "received")


async def test_primary_that_only_sends_100_trying_is_cancelled_and_call_fails_over(tmp_path):
    # A 100 is hop by hop: it says the next hop got the INVITE, not that the call progresses.
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_trying_only", ports.primary, calls=1)
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports, fast_failover_s=FAST_FAILOVER_S)), \
            bs.peers(primary, secondary):
        caller = await bs.uac("b2bua_uac_call", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    p = await bs.finish(primary)
    s = await bs.finish(secondary)
    delay = s.first("INVITE", "received").at - a.first("INVITE", "sent").at
    print(f"failover (primary sends only 100): {delay * 1000:.1f} ms")
    assert FAST_FAILOVER_S * 0.9 <= delay < 2 * FAST_FAILOVER_S
    assert p.requests("CANCEL", "received") and p.requests("ACK", "received")
    assert record["route_taken"] == bs.SECONDARY
    assert record["attempts"][0]["first_response"] == 100


async def test_last_trunk_slower_than_fast_failover_still_gets_the_call(tmp_path):
    # Fast failover moves on to the next trunk; when there is none left, giving up would
    # refuse an emergency call that a slow but working ECRC is about to take.
    ports = bs.Ports.fresh()  # the primary has no listener: ICMP, failover at once
    secondary = bs.uas("b2bua_uas_slow_answer", ports.secondary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports, fast_failover_s=FAST_FAILOVER_S)), \
            bs.peers(secondary):
        caller = await bs.uac("b2bua_uac_call", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    assert record["route_taken"] == bs.SECONDARY and record["final_status"] == 200
    assert record["setup_ms"] > FAST_FAILOVER_S * 1000


async def test_answer_crossing_cancel_is_acked_and_released_with_bye(tmp_path):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_answer_on_cancel", ports.primary, calls=1)
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)) as node, bs.peers(primary, secondary):
        caller = await bs.uac("b2bua_uac_cancel", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        p_done = await bs.wait_until(lambda: primary._process.returncode is not None, timeout=3.0)
        assert not node.node.calls
    a = bs.Trace.of(caller)
    p = await bs.finish(primary)
    s = await bs.finish(secondary)
    assert p_done, "the ECRC never got its ACK and BYE"
    assert a.responses(487, "received", method="INVITE")
    assert not a.responses(200, "received", method="INVITE")  # the caller never sees the late answer
    ack = p.first("ACK", "received")
    bye = p.first("BYE", "received")
    assert ack.call_id == bye.call_id == p.first("INVITE", "received").call_id
    assert not s.received()
    assert record["final_status"] == 487 and record["route_taken"] is None


async def test_route_with_strip_plus_sends_the_number_without_plus(tmp_path):
    ports = bs.Ports.fresh()
    route = {"pattern": r"^\+1[0-9]{10}$", "trunk_group": "ecrc", "strip_plus": True}
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports, routes=[route])), bs.peers(primary):
        caller = await bs.uac("b2bua_uac_call", ports.caller, service="+14255550123").run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    invite = (await bs.finish(primary)).first("INVITE", "received")
    assert invite.start_line.startswith(f"INVITE sip:14255550123@{bs.HOST}:{ports.primary}")
    assert record["number"] == "+14255550123"  # the CDR keeps what the caller dialled


async def test_when_every_trunk_fails_the_caller_gets_the_b2buas_own_503(tmp_path):
    # So that an upstream Mediation Server fails over in turn (e911-reference §1.7).
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_503", ports.primary, calls=1)
    secondary = bs.uas("b2bua_uas_503", ports.secondary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(primary, secondary):
        caller = await bs.uac("b2bua_uac_503", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    final = a.responses(503, "received", method="INVITE")[0]
    assert "all trunks failed" in (final.header("Reason") or "")
    assert [(x["trunk"], x["final"]) for x in record["attempts"]] == [(bs.PRIMARY, 503), (bs.SECONDARY, 503)]
    assert record["final_status"] == 503 and record["disconnect_side"] == "B2BUA"


async def test_cancel_before_any_ringing_stops_the_hunt_before_fast_failover(tmp_path):
    ports = bs.Ports.fresh()
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, calls=1)
    async with bs.silent_udp(ports.primary) as silent, bs.running_node(bs.node_config(tmp_path, ports)) as node, \
            bs.peers(secondary):
        caller = await bs.uac("b2bua_uac_cancel_early", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        await asyncio.sleep(FAST_FAILOVER_S + 0.5)  # past the moment a failover would have happened
        assert not node.node.calls
        assert silent.count("CANCEL") == 0  # §9.1: no CANCEL before a provisional
    s = await bs.finish(secondary)
    assert not s.received()
    assert [x["trunk"] for x in record["attempts"]] == [bs.PRIMARY]
    assert record["final_status"] == 487


async def test_probing_a_peer_that_remembers_finished_call_ids_keeps_the_trunk_up(tmp_path):
    # SIPp by default keeps a finished call's Call-ID for 33 s and drops what arrives on it,
    # as SBCs with transaction caches do: a prober reusing one Call-ID would mark it down.
    ports = bs.Ports.fresh()
    probe = {"interval_s": 0.1, "timeout_s": 0.3, "failures_to_down": 1, "successes_to_up": 1}
    primary = bs.uas("b2bua_uas_options", ports.primary)
    primary.extra = ["-deadcall_wait", "33000"]  # SIPp's default, after the wrapper's 0
    async with bs.peers(primary), bs.running_node(bs.node_config(tmp_path, ports, primary_health=probe),
                                                 probe=True) as node:
        health = node.node.health[bs.PRIMARY]
        states = []
        for _ in range(15):
            await asyncio.sleep(0.1)
            states.append((health.up, health.failures))
        assert all(up and failures == 0 for up, failures in states), (states, health.to_dict())
    trace = await bs.finish(primary)
    options = trace.requests("OPTIONS", "received")
    assert len(options) >= 5
    assert len(trace.responses(200, "sent", method="OPTIONS")) == len(options)
    assert len({message.call_id for message in options}) == len(options)
