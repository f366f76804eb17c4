"""The mock ECRC (`MockEcrc` on real sockets, in this process) answering SIPp callers over
UDP and TCP, its answer behaviour changed at run time through `PUT /control`, and the
core's own UAC over TLS (Debian's SIPp has no TLS).

Every record is read back through the HTTP API, as a test of the lab would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from core_peers import HOST, CoreUac

from b2bua.selfsigned import make_self_signed
from b2bua.sip.transaction import Peer
from b2bua.testbench.ecrc import MockEcrc, RunningUas, start_uas
from b2bua.testbench.sipp import Sipp, SippResult, free_port
from b2bua.testbench.store import CallStore
from b2bua.transport import TlsPeerConfig, client_context

SCENARIOS = Path(__file__).parent / "scenarios"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
RECEIVED_STATUS = re.compile(r"message received \[\d+\] bytes :\s*\nSIP/2\.0 (\d{3}) ")


def scenario(name: str) -> Path:
    path = SCENARIOS / f"{name}.xml"
    assert path.exists(), path
    return path


@dataclass
class Bench:
    ecrc: MockEcrc
    store: CallStore
    running: RunningUas
    port: int  # SIP, UDP and TCP
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        assert self.running.api is not None
        return self.running.api.url

    async def calls(self) -> list[dict]:
        async with self.http.get(f"{self.url}/calls") as response:
            assert response.status == 200
            return await response.json()

    async def only_call(self) -> dict:
        calls = await self.calls()
        assert len(calls) == 1, [call.get("call_id") for call in calls]
        async with self.http.get(f"{self.url}/calls/{calls[0]['id']}") as response:
            assert response.status == 200
            return await response.json()

    async def control(self, **behaviour: object) -> dict:
        async with self.http.put(f"{self.url}/control", json=behaviour) as response:
            body = await response.json()
            assert response.status == 200, body
            return body

    async def clear(self) -> None:
        async with self.http.delete(f"{self.url}/calls") as response:
            assert response.status == 200

    async def sipp(self, name: str, *, transport: str = "u1", service: str = "911",
                   keys: dict[str, str] | None = None, extra: list[str] | None = None, timeout_s: float = 10) -> SippResult:
        uac = Sipp(name if name in ("uac",) else scenario(name), remote=f"{HOST}:{self.port}", transport=transport,
                   service=service, keys=keys or {}, extra=extra or [], timeout_s=timeout_s)
        try:
            return await uac.run(timeout=timeout_s + 5)
        finally:
            await uac.stop()


@pytest.fixture
async def bench(tmp_path):
    store = CallStore(tmp_path / "ecrc.sqlite")
    ecrc = MockEcrc("primary", store)
    port = free_port()
    running = await start_uas(ecrc, store, [f"udp:{HOST}:{port}", f"tcp:{HOST}:{port}"], f"{HOST}:{free_port()}")
    try:
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
            yield Bench(ecrc, store, running, port, http)
    finally:
        await running.close()
        store.close()


def statuses(result: SippResult) -> list[int]:
    """The response codes SIPp received, in order (from its -trace_msg log)."""
    return [int(code) for code in RECEIVED_STATUS.findall(result.messages)]


# -- SIPp callers, UDP and TCP ---------------------------------------------------------------------


@pytest.mark.sipp
async def test_sipp_udp_caller_is_answered_200_and_recorded_as_it_arrived(bench):
    result = await bench.sipp("uac", transport="u1", service="911")
    assert result.ok, result.errors or result.stderr

    record = await bench.only_call()
    assert record["ecrc"] == "primary" and record["answer"] == "200"
    assert record["method"] == "INVITE"
    assert record["request_uri"] == f"sip:911@{HOST}:{bench.port}"
    assert record["transport"] == "UDP"
    assert record["source"].startswith(f"{HOST}:")
    assert "<sip:sipp@" in record["from"] and record["to"] == f"911 <sip:911@{HOST}:{bench.port}>"
    assert record["call_id"] and record["cseq"] == "1 INVITE"
    assert [part["content_type"] for part in record["parts"]] == ["application/sdp"]
    assert record["parts"][0]["size"] == record["content_length_actual"] > 0
    assert record["geolocation"] == [] and record["pidf"] is None and record["location"] is None
    assert record["verdict"] == "no_location" and record["disposition"] == "ecrc_must_ask"
    assert record["caller_id"] == "sipp" and record["is_test"] is False and record["readback"] is None


@pytest.mark.sipp
async def test_sipp_tcp_caller_with_a_lync_multipart_invite_is_recorded_with_its_location(bench):
    keys = {"caller": "+14255550100", "nam": "425-555-0001; 4255550002 "}
    result = await bench.sipp("pstn_uac_lync_elin", transport="t1", keys=keys, extra=["-d", "100"])
    assert result.ok, result.errors or result.stderr
    assert statuses(result)[-1] == 200  # the BYE's

    record = await bench.only_call()
    assert record["transport"] == "TCP"
    assert record["request_uri"] == f"sip:911;phone-context=Redmond@{HOST}:{bench.port};user=phone"
    assert record["priority"] == "emergency" and record["supported"] == ["geolocation"]
    assert record["geolocation"] == ['<cid:sip:lync-user@contoso.com>;inserted-by="sip:lync-user@contoso.com"']
    assert [part["content_type"] for part in record["parts"]] == ["application/sdp ; charset=utf-8", "application/pidf+xml"]
    assert record["parts"][1]["content_id"] == "<lync-user@contoso.com>"
    assert record["pidf_part"] == 1 and record["pidf_selected_by"] == "stripped-scheme"
    assert record["pidf"].startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert record["location"]["elins"] == ["4255550001", "4255550002"]
    assert record["address"] == "3910 163rd Ave NE, Redmond WA 98052, US, 40/4451"
    assert record["verdict"] in ("location_by_value_valid", "by_value_degraded")
    assert record["disposition"] == "routable_by_location"
    assert record["caller_id"] == "+14255550100"
    assert record["content_length_declared"] == record["content_length_actual"]


@pytest.mark.sipp
async def test_a_933_call_over_tcp_is_read_back_in_the_record(bench):
    keys = {"caller": "+14255550100", "nam": "Contoso"}
    result = await bench.sipp("pstn_uac_lync_elin", transport="t1", service="933", keys=keys, extra=["-d", "50"])
    assert result.ok, result.errors or result.stderr

    record = await bench.only_call()
    assert record["is_test"] is True
    assert record["readback"] == (
        "Test call from +14255550100. Address received: 3910 163rd Ave NE, Redmond WA 98052, US, 40/4451"
    )


# -- answer behaviours, changed at run time --------------------------------------------------------


@pytest.mark.sipp
async def test_answer_behaviours_changed_at_run_time_through_put_control(bench):
    # 486 and 503: that final response, ACKed; every INVITE recorded with the answer given.
    for code in ("486", "503"):
        assert (await bench.control(answer=code))["answer"] == code
        result = await bench.sipp("ecrc_uac_rejected")
        assert result.ok, result.errors or result.stderr
        assert statuses(result)[-1] == int(code) and 200 not in statuses(result)
        record = (await bench.calls())[0]
        assert record["answer"] == code and record["call_id"] in result.messages

    # ring: 180 and nothing more until the caller CANCELs; the INVITE then gets 487.
    await bench.control(answer="ring")
    result = await bench.sipp("ecrc_uac_ring_cancel", extra=["-d", "300"])
    assert result.ok, result.errors or result.stderr
    assert [code for code in statuses(result) if code != 100] == [180, 200, 487]  # 200: the CANCEL's
    assert (await bench.calls())[0]["answer"] == "ring"

    # bye-after: 200, and the ECRC hangs up by itself after the ACK.
    await bench.control(answer="bye-after", bye_after_s=0.3)
    result = await bench.sipp("ecrc_uac_wait_bye")
    assert result.ok, result.errors or result.stderr
    assert "BYE sip:caller@" in result.messages
    assert (await bench.calls())[0]["answer"] == "bye-after"

    # 200 again, ringing first.
    await bench.control(answer="200", ring_ms=100)
    result = await bench.sipp("uac")
    assert result.ok, result.errors or result.stderr
    assert 180 in statuses(result) and 200 in statuses(result)
    assert [call["answer"] for call in await bench.calls()] == ["200", "bye-after", "ring", "503", "486"]


@pytest.mark.sipp
async def test_drop_answers_nothing_to_a_sipp_caller_but_records_the_invite_once(bench):
    await bench.control(answer="drop")
    result = await bench.sipp("uac", timeout_s=2)
    assert not result.ok  # SIPp saw nothing at all and gave up
    assert statuses(result) == []
    calls = await bench.calls()
    assert len(calls) == 1 and calls[0]["answer"] == "drop"  # retransmissions are not new calls


# -- TLS: the core's UAC (SIPp from Debian has no TLS) ---------------------------------------------


async def test_tls_caller_is_answered_and_recorded_as_tls(tmp_path):
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    make_self_signed(cert, key)
    store = CallStore(tmp_path / "ecrc.sqlite")
    ecrc = MockEcrc("primary", store)
    port = free_port()
    running = await start_uas(ecrc, store, [f"tls:{HOST}:{port}"], None, tls_cert=str(cert), tls_key=str(key))
    target = Peer("tls", HOST, port)
    uac = CoreUac(tls_peers={target: TlsPeerConfig(context=client_context(cafile=str(cert)))})
    try:
        await uac.start(transports=("udp",))
        call = await uac.call(target, f"sips:911@{HOST}:{port}", hold=0.1, timeout=10)
        assert call.failure is None and call.final == 200 and call.bye_status == 200
        [record] = store.list()
        assert record["transport"] == "TLS" and record["request_uri"] == f"sips:911@{HOST}:{port}"
        assert record["call_id"] == call.invite.call_id and record["answer"] == "200"
    finally:
        await uac.close()
        await running.close()
        store.close()
