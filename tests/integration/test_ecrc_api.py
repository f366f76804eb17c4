"""The ECRC HTTP API on real sockets: two ECRC instances sharing one call store file."""

from __future__ import annotations

from datetime import datetime, timezone

import aiohttp
import pytest

from b2bua.sip import parse_message
from b2bua.testbench.control import AnswerBehaviour
from b2bua.testbench.record import build_record
from b2bua.testbench.store import CallStore
from b2bua.testbench.web import make_app, serve

ARRIVED_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

PIDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
 xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity="sip:user@contoso.com">
 <tuple id="t1"><status><gp:geopriv><gp:location-info><ca:civicAddress>
  <ca:country>US</ca:country><ca:A1>WA</ca:A1><ca:A3>Redmond</ca:A3><ca:RD>163rd</ca:RD>
  <ca:STS>Ave</ca:STS><ca:POD>NE</ca:POD><ca:HNO>3910</ca:HNO><ca:PC>98052</ca:PC>
 </ca:civicAddress></gp:location-info><gp:usage-rules/></gp:geopriv></status>
 <timestamp>2024-05-01T11:59:00Z</timestamp></tuple></presence>"""


def invite(target: str, call_id: str, *, with_location: bool) -> bytes:
    sdp = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    head = [
        f"INVITE sip:{target}@ecrc.example.net SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK" + call_id,
        "From: <sip:+14255550100@example.com>;tag=f1",
        f"To: <sip:{target}@ecrc.example.net>",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        "Priority: emergency",
    ]
    if with_location:
        body = (
            b"--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdp
            + b"\r\n--b1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <loc@example.com>\r\n\r\n" + PIDF
            + b"\r\n--b1--\r\n"
        )  # fmt: skip
        head += ["Geolocation: <cid:loc@example.com>", "Content-Type: multipart/mixed; boundary=b1"]
    else:
        body = sdp
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Ecrc:
    """The HTTP half of one ECRC instance (its SIP half records through `store`)."""

    def __init__(self, name: str, path) -> None:
        self.name = name
        self.store = CallStore(path)
        self.behaviour = AnswerBehaviour()
        self.served = None

    async def start(self) -> None:
        app = make_app(self.store, lambda: self.behaviour, self._set, name=self.name)
        self.served = await serve(app, "127.0.0.1", 0)

    def _set(self, behaviour: AnswerBehaviour) -> None:
        self.behaviour = behaviour

    def receive(self, raw: bytes) -> int:
        record = build_record(parse_message(raw), ecrc=self.name, transport="UDP", source="192.0.2.1:5060", arrived_at=ARRIVED_AT)
        return self.store.add(record)

    async def stop(self) -> None:
        if self.served is not None:
            await self.served.close()
        self.store.close()


@pytest.fixture
async def ecrcs(tmp_path):
    pair = [Ecrc("primary", tmp_path / "ecrc.db"), Ecrc("secondary", tmp_path / "ecrc.db")]
    for ecrc in pair:
        await ecrc.start()
    yield pair
    for ecrc in pair:
        await ecrc.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_serve_on_port_zero_binds_a_free_port_and_reports_it(ecrcs, http):
    primary, secondary = ecrcs
    assert primary.served.port > 0 and primary.served.port != secondary.served.port
    runner, port = primary.served
    assert port == primary.served.port and runner.addresses[0][1] == port
    assert primary.served.url == f"http://127.0.0.1:{port}"
    async with http.get(f"{primary.served.url}/health") as response:
        assert response.status == 200
        assert (await response.json())["ecrc"] == "primary"


async def test_both_instances_serve_the_calls_either_one_recorded(ecrcs, http):
    primary, secondary = ecrcs
    test_id = primary.receive(invite("933", "call-933", with_location=True))
    stripped_id = secondary.receive(invite("911", "call-911", with_location=False))

    for ecrc in ecrcs:
        async with http.get(f"{ecrc.served.url}/calls") as response:
            calls = await response.json()
        assert [(c["id"], c["ecrc"]) for c in calls] == [(stripped_id, "secondary"), (test_id, "primary")]

    async with http.get(f"{secondary.served.url}/calls/{test_id}") as response:
        record = await response.json()
    assert record["is_test"] is True
    assert record["readback"] == "Test call from +14255550100. Address received: 3910 163rd Ave NE, Redmond WA 98052, US"
    assert record["disposition"] == "routable_by_location"
    assert record["pidf"] == PIDF.decode()

    async with http.get(f"{primary.served.url}/calls", params={"verdict": "no_location"}) as response:
        assert [c["call_id"] for c in await response.json()] == ["call-911"]
    async with http.get(f"{primary.served.url}/calls", params={"ecrc": "primary"}) as response:
        assert [c["call_id"] for c in await response.json()] == ["call-933"]


async def test_polling_with_since_id_sees_each_new_call_once(ecrcs, http):
    primary, _ = ecrcs
    first = primary.receive(invite("911", "poll-1", with_location=False))
    async with http.get(f"{primary.served.url}/calls", params={"since": str(first)}) as response:
        assert await response.json() == []
    second = primary.receive(invite("911", "poll-2", with_location=True))
    async with http.get(f"{primary.served.url}/calls", params={"since": str(first)}) as response:
        assert [c["id"] for c in await response.json()] == [second]


async def test_delete_on_one_instance_clears_the_shared_file(ecrcs, http):
    primary, secondary = ecrcs
    primary.receive(invite("911", "d-1", with_location=False))
    secondary.receive(invite("911", "d-2", with_location=False))
    async with http.delete(f"{secondary.served.url}/calls") as response:
        assert await response.json() == {"deleted": 2}
    async with http.get(f"{primary.served.url}/calls") as response:
        assert await response.json() == []


async def test_control_is_per_instance(ecrcs, http):
    primary, secondary = ecrcs
    async with http.put(f"{primary.served.url}/control", json={"answer": "503"}) as response:
        assert response.status == 200
    assert primary.behaviour.answer == "503"
    async with http.get(f"{secondary.served.url}/control") as response:
        assert (await response.json())["answer"] == "200"


async def test_bad_control_over_the_wire_is_400_with_json(ecrcs, http):
    primary, _ = ecrcs
    async with http.put(f"{primary.served.url}/control", json={"answer": "busy"}) as response:
        assert response.status == 400
        assert (await response.json())["field"] == "answer"
    assert primary.behaviour.answer == "200"


async def test_unknown_record_over_the_wire_is_404(ecrcs, http):
    primary, _ = ecrcs
    async with http.get(f"{primary.served.url}/calls/999999") as response:
        assert response.status == 404


async def test_a_stopped_server_refuses_connections(tmp_path, http):
    ecrc = Ecrc("lone", tmp_path / "lone.db")
    await ecrc.start()
    url = ecrc.served.url
    await ecrc.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{url}/health"):
            pass
