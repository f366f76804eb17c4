"""The SIP core against SIPp, a real peer: calls in both directions over UDP and TCP,
retransmissions absorbed, malformed input refused without harm.

The core side is `core_peers` (a UAS and a UAC that are `Core`s on a `SipStack`). SIPp is
judged as the interop notes say: a SIPp UAC by its exit code (0 = every call completed),
a SIPp UAS by what it logged (-trace_msg) and by what our UAC saw; its own exit code is
not meaningful. These tests need /usr/bin/sipp (Debian sip-tester, `make sipp`): they run
in CI and never skip.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest
from core_peers import HOST, CoreUac, CoreUas

from b2bua.sip import parse_message
from b2bua.sip.transaction import Peer, TimerConfig
from b2bua.testbench.sipp import Sipp, SippResult

pytestmark = pytest.mark.sipp

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_TRANSPORT = {"udp": "u1", "tcp": "t1"}


@pytest.fixture
async def make_uas():
    """make_uas(**options) -> a started CoreUas on UDP and TCP, port 0; closed at teardown."""
    started: list[CoreUas] = []

    async def make(**options) -> CoreUas:
        uas = CoreUas(**options)
        started.append(uas)
        await uas.start(transports=("udp", "tcp"))
        return uas

    yield make
    for uas in started:
        await uas.close()


@pytest.fixture
async def uac():
    peer = CoreUac()
    await peer.start(transports=("udp", "tcp"))
    yield peer
    await peer.close()


async def run_sipp(sipp: Sipp, timeout: float) -> SippResult:
    try:
        return await sipp.run(timeout=timeout)
    finally:
        await sipp.stop()


def explain(result: SippResult) -> str:
    """What to print when SIPp did not do what was expected."""
    return f"exit {result.returncode}\nerrors:\n{result.errors[-3000:]}\nstderr:\n{result.stderr[-1000:]}"


def sipp_uac(uas: CoreUas, transport: str, scenario: str | Path = "uac", **options) -> Sipp:
    port = uas.port(transport)
    return Sipp(scenario, remote=f"{HOST}:{port}", transport=SIPP_TRANSPORT[transport], service="ecrc", **options)


def logged(result: SippResult, direction: str, start: str) -> int:
    """How many messages SIPp logged as `direction` ('received' | 'sent') whose first line
    starts with `start` (e.g. 'ACK ', 'SIP/2.0 200')."""
    pattern = re.compile(rf"^(?:UDP|TCP) message {direction}[^\n]*\n\s*{re.escape(start)}", re.MULTILINE)
    return len(pattern.findall(result.messages))


# -- SIPp calls the core UAS ------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_uac_call_completes_and_bye_is_answered(make_uas, transport, tmp_path):
    uas = await make_uas()
    result = await run_sipp(sipp_uac(uas, transport, timeout_s=15, workdir=tmp_path), timeout=25)

    assert result.returncode == 0, explain(result)
    assert [item.method for item in uas.received] == ["INVITE", "ACK", "BYE"]
    assert {item.message.call_id for item in uas.received} == {uas.received[0].message.call_id}
    # The stack hands an ACK for a 2xx up without a peer (it has no transaction).
    assert [item.peer.transport for item in uas.received if item.method != "ACK"] == [transport, transport]
    assert [response.status for response in uas.finals] == [200]
    assert len(uas.dialogs) == 0  # the BYE ended the dialog it was sent in
    assert logged(result, "received", "SIP/2.0 180") == 1
    assert logged(result, "received", "SIP/2.0 200") == 2  # the INVITE's and the BYE's
    assert uas.ack_timeouts == 0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_uac_twenty_calls_at_ten_per_second_all_complete(make_uas, transport, tmp_path):
    uas = await make_uas()
    sipp = sipp_uac(uas, transport, calls=20, rate=10, timeout_s=20, workdir=tmp_path)
    result = await run_sipp(sipp, timeout=30)

    assert result.returncode == 0, explain(result)
    for method in ("INVITE", "ACK", "BYE"):
        assert uas.count(method) == 20, method
    call_ids = [item.message.call_id for item in uas.received if item.method == "INVITE"]
    assert len(set(call_ids)) == 20
    assert len(uas.dialogs) == 0
    # Every call got its 200 once on the wire (no 2xx retransmission: every ACK came in time).
    assert logged(result, "received", "SIP/2.0 200") == 40
    assert uas.ack_timeouts == 0


# -- the core UAC calls a SIPp UAS ------------------------------------------------------------


async def call_when_listening(uac: CoreUac, target: Peer, uri: str, *, deadline: float = 5.0):
    """SIPp binds its socket a moment after it starts: until then a call fails at once with
    a transport error (ICMP port unreachable / connection refused). Retry those only."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        result = await uac.call(target, uri, hold=0.1, timeout=40)
        if result.failure != "transport" or loop.time() > end:
            return result
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_core_uac_calls_sipp_uas_acks_200_and_hangs_up(uac, transport, tmp_path):
    sipp = Sipp("uas", transport=SIPP_TRANSPORT[transport], calls=1, timeout_s=15, workdir=tmp_path)
    await sipp.start()
    try:
        target = Peer(transport, HOST, sipp.local_port)
        call = await call_when_listening(uac, target, f"sip:ecrc@{HOST}:{sipp.local_port}")
        # The built-in uas waits 4 s after the BYE (its timewait), then exits: -m 1.
        result = await sipp.wait(timeout=15)
    finally:
        await sipp.stop()

    assert call.failure is None and call.final == 200, explain(result)
    assert call.provisionals == [180]
    assert call.acks_sent == 1 and call.bye_status == 200
    assert call.final_after is not None and call.final_after < 2.0
    assert logged(result, "received", "INVITE ") == 1
    assert logged(result, "received", "ACK ") == 1
    assert logged(result, "received", "BYE ") == 1
    assert logged(result, "sent", "SIP/2.0 200") == 2
    assert f"Call-ID: {call.invite.call_id}" in result.messages
    assert "Unexpected" not in result.messages, explain(result)


# -- retransmissions over UDP -------------------------------------------------------------------


async def test_invite_retransmitted_after_180_gets_the_180_again_and_one_call(make_uas, tmp_path):
    # The scenario sends its INVITE a second time (same branch) once it has the 180, and
    # requires a second 180 before the 200: the INVITE server transaction answers the
    # retransmission with its last provisional (RFC 3261 §17.2.1) instead of starting a call.
    uas = await make_uas(answer_delay=0.5)
    scenario = SCENARIOS / "core_invite_retransmitted.xml"
    sipp = sipp_uac(uas, "udp", scenario, timeout_s=15, extra=["-nr"], workdir=tmp_path)
    result = await run_sipp(sipp, timeout=25)

    assert result.returncode == 0, explain(result)
    assert [item.method for item in uas.wire if item.method == "INVITE"] == ["INVITE", "INVITE"]
    assert [item.method for item in uas.received] == ["INVITE", "ACK", "BYE"]
    assert [response.status for response in uas.finals] == [200]
    assert logged(result, "received", "SIP/2.0 180") == 2
    assert logged(result, "received", "SIP/2.0 200") == 2  # INVITE's (once) and BYE's


async def test_invite_retransmitted_by_sipp_timer_a_is_absorbed(make_uas, tmp_path):
    # SIPp retransmits an unanswered INVITE after T1 = 500 ms (its built-in uac). The UAS
    # answers only after 1 s and holds its 100 Trying past T1, so at least one
    # retransmission reaches it before any response: the transaction absorbs it.
    uas = await make_uas(ring=False, answer_delay=1.0, timers=TimerConfig(trying_delay=2.0))
    result = await run_sipp(sipp_uac(uas, "udp", timeout_s=15, workdir=tmp_path), timeout=25)

    assert result.returncode == 0, explain(result)
    assert sum(1 for item in uas.wire if item.method == "INVITE") >= 2
    assert uas.count("INVITE") == 1
    assert [item.method for item in uas.received] == ["INVITE", "ACK", "BYE"]
    assert [response.status for response in uas.finals] == [200]
    assert logged(result, "received", "SIP/2.0 200") == 2


async def test_uas_retransmits_its_200_until_the_late_ack_then_stops(make_uas, tmp_path):
    # The scenario ACKs 1 s after the 200. The UAS core's 2xx goes out again after T1 (0.5 s)
    # and would again at 1.5 s; the ACK at ~1 s must stop it (RFC 3261 §13.3.1.4).
    uas = await make_uas()
    sipp = sipp_uac(uas, "udp", SCENARIOS / "core_late_ack.xml", timeout_s=15, workdir=tmp_path)
    result = await run_sipp(sipp, timeout=25)
    assert result.returncode == 0, explain(result)
    ack_at = next(item.at for item in uas.wire if item.method == "ACK")

    def sent_200s() -> list:
        return [item for item in uas.stack.sent if item.method == "INVITE" and item.message.status == 200]

    # Stay until past the slot of the next retransmission (1.5 s after the first 200).
    await asyncio.sleep(max(0.0, sent_200s()[0].at + 2.0 - time.monotonic()))
    copies = sent_200s()

    assert len(copies) == 2, [round(item.at - copies[0].at, 3) for item in copies]
    assert 0.4 < copies[1].at - copies[0].at < 0.8  # T1
    assert all(item.at < ack_at for item in copies)
    assert logged(result, "received", "SIP/2.0 200") == 3  # the INVITE's twice, the BYE's once
    assert [item.method for item in uas.received] == ["INVITE", "ACK", "BYE"]
    assert uas.ack_timeouts == 0


# -- malformed input ----------------------------------------------------------------------------

MALFORMED = {
    "CSeq method differs from the request method": "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n",
    "Content-Length not a number": "CSeq: 1 INVITE\r\nContent-Length: twelve\r\n",
    "Max-Forwards not a number": "CSeq: 1 INVITE\r\nMax-Forwards: many\r\nContent-Length: 0\r\n",
}


def malformed_invite(port: int, index: int, tail: str) -> bytes:
    return (
        f"INVITE sip:ecrc@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-malformed-{index}\r\n"
        f"From: <sip:fuzz@{HOST}>;tag=m{index}\r\n"
        f"To: <sip:ecrc@{HOST}>\r\n"
        f"Call-ID: malformed-{index}@{HOST}\r\n"
        f"{tail}\r\n"
    ).encode()


def options(port: int) -> bytes:
    return (
        f"OPTIONS sip:ecrc@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-options-1\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{HOST}>;tag=o1\r\n"
        f"To: <sip:ecrc@{HOST}>\r\n"
        f"Call-ID: options-1@{HOST}\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_malformed_requests_get_400_and_the_uas_serves_the_next_sipp_call(make_uas, tmp_path):
    uas = await make_uas()
    target = (HOST, uas.port("udp"))
    loop = asyncio.get_running_loop()
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.setblocking(False)
    try:
        raw.bind((HOST, 0))
        port = raw.getsockname()[1]

        async def exchange(data: bytes) -> bytes:
            raw.sendto(data, target)
            return await asyncio.wait_for(loop.sock_recv(raw, 65535), 2)

        for index, (what, tail) in enumerate(MALFORMED.items()):
            reply = parse_message(await exchange(malformed_invite(port, index, tail)))
            assert reply.status == 400, what
            assert reply.call_id == f"malformed-{index}@{HOST}", what
            assert reply.to.tag, what  # §8.2.6.2: a UAS adds its To tag
        # Unparseable beyond answering: dropped without a reply, the socket keeps serving.
        raw.sendto(b"\x16\x03\x01 not sip at all \xff\xfe\r\n\r\n", target)
        raw.sendto(b"GARBAGE\r\n\r\n", target)
        reply = parse_message(await exchange(options(port)))
        assert reply.status == 200 and reply.cseq.method == "OPTIONS"
    finally:
        raw.close()
    assert [item.method for item in uas.received] == ["OPTIONS"]  # nothing malformed reached the core

    result = await run_sipp(sipp_uac(uas, "udp", timeout_s=15, workdir=tmp_path), timeout=25)
    assert result.returncode == 0, explain(result)
    assert [item.method for item in uas.received] == ["OPTIONS", "INVITE", "ACK", "BYE"]
