"""The PSTN gateway (`PstnGateway`, and `b2bua pstn` as a process) on real sockets with SIPp:
a Lync-style multipart INVITE whose PIDF-LO lists ELINs in `<ca:NAM>`, then PSAP callbacks
to the ELIN (302 to the caller within the window, 404 after it or for an unknown ELIN).

The in-process gateway runs on a fake clock, so "after the window" needs no waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from b2bua.testbench.ecrc import RunningUas, start_uas
from b2bua.testbench.pstn import PstnGateway
from b2bua.testbench.sipp import Sipp, SippResult, free_port
from b2bua.testbench.store import CallStore

pytestmark = pytest.mark.sipp

SCENARIOS = Path(__file__).parent / "scenarios"
HOST = "127.0.0.1"
CALLER = "+14255550100"
NAM = "425-555-0001; 425-555-0002 "  # hyphens, a space, a trailing blank (e911-reference §1.8)
ELIN_A, ELIN_B = "4255550001", "4255550002"
WINDOW_S = 60.0
RECEIVED_STATUS = re.compile(r"message received \[\d+\] bytes :\s*\nSIP/2\.0 (\d{3}) ")
SENT_CONTACT = re.compile(r"message sent .*?\n\s*\nINVITE .*?\nContact: (<[^>\r\n]*>)", re.S)


def scenario(name: str) -> Path:
    path = SCENARIOS / f"{name}.xml"
    assert path.exists(), path
    return path


def statuses(result: SippResult) -> list[int]:
    return [int(code) for code in RECEIVED_STATUS.findall(result.messages)]


def received_header(result: SippResult, status: int, name: str) -> str | None:
    """The `name` header of the first `status` response SIPp received."""
    for block in result.messages.split("-----------------------------------------------"):
        if "message received" in block and f"\nSIP/2.0 {status} " in block:
            for line in block.splitlines():
                if line.lower().startswith(name.lower() + ":"):
                    return line.split(":", 1)[1].strip()
    return None


def invite_contact(result: SippResult) -> str:
    match = SENT_CONTACT.search(result.messages)
    assert match, result.messages[:2000]
    return match.group(1)


async def run_sipp(port: int, name: str, *, service: str, keys: dict[str, str] | None = None,
                   extra: list[str] | None = None, calls: int = 1, timeout_s: float = 10) -> SippResult:
    uac = Sipp(name if name == "uac" else scenario(name), remote=f"{HOST}:{port}", service=service,
               keys=keys or {}, extra=extra or [], calls=calls, timeout_s=timeout_s)
    try:
        return await uac.run(timeout=timeout_s + 5)
    finally:
        await uac.stop()


async def emergency_call(port: int, *, nam: str = NAM, caller: str = CALLER, hold_ms: int = 50,
                         calls: int = 1, extra: list[str] | None = None) -> SippResult:
    return await run_sipp(port, "pstn_uac_lync_elin", service="911", keys={"caller": caller, "nam": nam},
                          extra=["-d", str(hold_ms), *(extra or [])], calls=calls)


async def callback(port: int, number: str, expect: int) -> SippResult:
    return await run_sipp(port, f"pstn_uac_callback_{expect}", service=number)


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Gateway:
    uas: PstnGateway
    store: CallStore
    running: RunningUas
    port: int
    clock: FakeClock

    async def calls(self) -> list[dict]:
        assert self.running.api is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.get(f"{self.running.api.url}/calls") as response:
                assert response.status == 200
                return await response.json()


@pytest.fixture
async def make_gateway(tmp_path):
    started: list[Gateway] = []

    async def make(*, elin_gateway: bool = True) -> Gateway:
        clock = FakeClock()
        store = CallStore(tmp_path / f"pstn{len(started)}.sqlite")
        uas = PstnGateway("pstn", store, elin_gateway=elin_gateway, callback_window_s=WINDOW_S, clock=clock)
        port = free_port()
        running = await start_uas(uas, store, [f"udp:{HOST}:{port}"], f"{HOST}:{free_port()}")
        gateway = Gateway(uas, store, running, port, clock)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        await gateway.running.close()
        gateway.store.close()


async def test_elin_gateway_replaces_the_caller_with_an_elin_and_routes_the_callback_back(make_gateway):
    gateway = await make_gateway()
    call = await emergency_call(gateway.port)
    assert call.ok, call.errors or call.stderr

    [record] = await gateway.calls()
    assert record["pidf_received"] is True and record["pidf_selected_by"] == "stripped-scheme"
    assert record["elin_candidates"] == [ELIN_A, ELIN_B]
    assert record["elin"] == ELIN_A and record["pstn_caller_id"] == ELIN_A
    assert record["original_caller"] == CALLER and record["caller_id"] == CALLER
    assert record["location"] is None and record["address"] is None
    assert record["verdict"] == "elin_only" and record["disposition"] == "routable_by_elin"
    assert record["answer"] == "200" and record["transport"] == "UDP"

    # The PSAP calls the ELIN back (E.164 form): redirected to the caller's Contact.
    back = await callback(gateway.port, "+1" + ELIN_A, 302)
    assert back.ok, back.errors or back.stderr
    assert statuses(back)[-1] == 302
    assert received_header(back, 302, "Contact") == invite_contact(call)
    assert len(await gateway.calls()) == 1  # a callback is no emergency call record

    # An ELIN the gateway never gave out: 404.
    unknown = await callback(gateway.port, "4255559999", 404)
    assert unknown.ok, unknown.errors or unknown.stderr

    # The window is over: 404 for the ELIN too.
    gateway.clock.now += WINDOW_S
    late = await callback(gateway.port, ELIN_A, 404)
    assert late.ok, late.errors or late.stderr
    assert [(item.status, item.elin) for item in gateway.uas.callbacks] == [(302, ELIN_A), (404, None), (404, ELIN_A)]


async def test_two_calls_at_once_take_the_two_elins_and_each_callback_finds_its_caller(make_gateway):
    gateway = await make_gateway()
    # Two calls 100 ms apart, each held 1.5 s: the second starts while the first is up.
    calls = await emergency_call(gateway.port, hold_ms=1500, calls=2, extra=["-r", "10"])
    assert calls.ok, calls.errors or calls.stderr

    records = await gateway.calls()
    assert sorted(record["elin"] for record in records) == [ELIN_A, ELIN_B]
    assert all(record["verdict"] == "elin_only" for record in records)
    assert {entry.active for entry in gateway.uas.elin_table.entries()} == {0}

    for elin in (ELIN_A, ELIN_B):
        back = await callback(gateway.port, elin, 302)
        assert back.ok, back.errors or back.stderr


async def test_without_elin_mode_the_gateway_records_no_location_and_the_original_caller(make_gateway):
    gateway = await make_gateway(elin_gateway=False)
    lync = await emergency_call(gateway.port)
    assert lync.ok, lync.errors or lync.stderr
    stripped = await run_sipp(gateway.port, "uac", service="911")
    assert stripped.ok, stripped.errors or stripped.stderr

    plain, with_pidf = await gateway.calls()
    assert with_pidf["pidf_received"] is True and with_pidf["elin_candidates"] == [ELIN_A, ELIN_B]
    assert with_pidf["elin"] is None and with_pidf["pstn_caller_id"] == CALLER == with_pidf["original_caller"]
    assert with_pidf["location"] is None and with_pidf["verdict"] == "no_location"
    assert with_pidf["disposition"] == "ecrc_must_ask"
    assert plain["pidf_received"] is False and plain["pstn_caller_id"] == "sipp" and plain["elin"] is None
    assert plain["verdict"] == "no_location"


async def test_a_nam_without_numbers_leaves_the_caller_id_alone(make_gateway):
    gateway = await make_gateway()
    call = await emergency_call(gateway.port, nam="Contoso Ltd")
    assert call.ok, call.errors or call.stderr
    [record] = await gateway.calls()
    assert record["elin_candidates"] == [] and record["elin"] is None
    assert record["pstn_caller_id"] == CALLER and record["verdict"] == "no_location"


# -- `b2bua pstn` as a process ----------------------------------------------------------------------


async def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while loop.time() < deadline:
            assert process.poll() is None, "b2bua pstn exited early"
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer within {timeout} s")


async def test_b2bua_pstn_command_serves_an_elin_gateway_and_lists_its_calls(tmp_path):
    sip_port, http_port = free_port(), free_port()
    http = f"{HOST}:{http_port}"
    window_s = 2.0
    command = [sys.executable, "-m", "b2bua.cli", "pstn", "--name", "branch-gw", "--listen", f"udp:{HOST}:{sip_port}",
               "--db", str(tmp_path / "pstn.sqlite"), "--http", http, "--elin-gateway",
               "--callback-window-s", str(window_s), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await wait_healthy(f"http://{http}", process)
        call = await emergency_call(sip_port)
        assert call.ok, call.errors or call.stderr
        back = await callback(sip_port, ELIN_A, 302)
        assert back.ok, back.errors or back.stderr
        await asyncio.sleep(window_s + 0.3)
        late = await callback(sip_port, ELIN_A, 404)
        assert late.ok, late.errors or late.stderr

        listed = subprocess.run([sys.executable, "-m", "b2bua.cli", "pstn", "calls", "--http", http, "--json"],
                                capture_output=True, text=True, timeout=30)
        assert listed.returncode == 0, listed.stderr
        [record] = json.loads(listed.stdout)
        assert record["ecrc"] == "branch-gw" and record["pstn_caller_id"] == ELIN_A
        table = subprocess.run([sys.executable, "-m", "b2bua.cli", "pstn", "calls", "--http", http],
                               capture_output=True, text=True, timeout=30)
        assert table.returncode == 0 and ELIN_A in table.stdout and "elin_only" in table.stdout
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == 0
