"""The same calls on uvloop, which `b2bua run` uses in production when it is installed.

An ICMP error under libuv once left a UDP listener deaf (tests/integration/test_udp_after_icmp.py):
here the B2BUA fails over on ICMP and must still take the next calls on the same sockets.
"""

from __future__ import annotations

import asyncio

import pytest

import b2bua_support as bs

uvloop = pytest.importorskip("uvloop")

pytestmark = pytest.mark.sipp


def run_on_uvloop(coroutine) -> None:  # noqa: ANN001
    async def bounded() -> None:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        await asyncio.wait_for(coroutine, 60)

    uvloop.run(bounded())


def test_on_uvloop_icmp_failover_then_the_next_calls_still_work(tmp_path):
    async def scenario() -> None:
        ports = bs.Ports.fresh()  # nothing on the primary: every call fails over on ICMP
        secondary = bs.uas("b2bua_uas_answer", ports.secondary)
        async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(secondary):
            for number in range(1, 4):
                caller = await bs.uac("b2bua_uac_call", ports.caller).run()
                assert caller.returncode == 0, bs.describe(caller)
                records = await bs.wait_for_cdrs(tmp_path, number)
                assert records[-1]["route_taken"] == bs.SECONDARY
                assert records[-1]["attempts"][0]["failover_reason"] == "transport error"
                assert records[-1]["setup_ms"] < 500

    run_on_uvloop(scenario())


def test_on_uvloop_round_robin_calls_go_through_both_trunks(tmp_path):
    async def scenario() -> None:
        ports = bs.Ports.fresh()
        primary = bs.uas("b2bua_uas_answer", ports.primary)
        secondary = bs.uas("b2bua_uas_answer", ports.secondary)
        async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(primary, secondary):
            caller = await bs.uac("b2bua_uac_call", ports.caller, service="922", calls=40, rate=40).run()
            assert caller.returncode == 0, bs.describe(caller)
            records = await bs.wait_for_cdrs(tmp_path, 40)
        taken = [record["route_taken"] for record in records]
        assert taken.count(bs.PRIMARY) == taken.count(bs.SECONDARY) == 20

    run_on_uvloop(scenario())


def test_on_uvloop_silent_primary_fails_over_within_fast_failover_time(tmp_path):
    async def scenario() -> None:
        ports = bs.Ports.fresh()
        secondary = bs.uas("b2bua_uas_answer", ports.secondary)
        async with bs.silent_udp(ports.primary), bs.running_node(bs.node_config(tmp_path, ports)), \
                bs.peers(secondary):
            caller = await bs.uac("b2bua_uac_call", ports.caller).run()
            assert caller.returncode == 0, bs.describe(caller)
            (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        assert record["route_taken"] == bs.SECONDARY
        assert 900 <= record["setup_ms"] < 2000

    run_on_uvloop(scenario())
