"""The ECRC HTTP API through aiohttp's test client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer

from b2bua.testbench.control import AnswerBehaviour
from b2bua.testbench.record import build_record
from b2bua.testbench.store import CallStore
from b2bua.testbench.web import make_app

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


class BehaviourBox:
    def __init__(self) -> None:
        self.value = AnswerBehaviour()
        self.changes: list[AnswerBehaviour] = []

    def get(self) -> AnswerBehaviour:
        return self.value

    def set(self, behaviour: AnswerBehaviour) -> None:
        self.value = behaviour
        self.changes.append(behaviour)


@pytest.fixture
def store(tmp_path):
    calls = CallStore(tmp_path / "calls.db")
    yield calls
    calls.close()


@pytest.fixture
def box():
    return BehaviourBox()


@pytest.fixture
async def client(store, box):
    app = make_app(store, box.get, box.set, name="primary")
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    yield test_client
    await test_client.close()


def add(store, n, verdict="no_location"):
    return store.add(
        {"arrived_at": (T0 + timedelta(minutes=n)).isoformat(), "ecrc": "primary", "verdict": verdict, "call_id": f"c{n}"}
    )


async def test_health_is_200_with_the_instance_name(client, store):
    add(store, 1)
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["ecrc"] == "primary" and body["calls"] == 1
    assert body["answer"]["answer"] == "200"


async def test_health_is_503_when_the_store_is_broken(client, store):
    store.close()
    response = await client.get("/health")
    assert response.status == 503
    assert (await response.json())["status"] == "error"


async def test_calls_is_an_empty_list_at_first(client):
    response = await client.get("/calls")
    assert response.status == 200
    assert await response.json() == []


async def test_calls_are_listed_newest_first(client, store):
    ids = [add(store, n) for n in range(3)]
    body = await (await client.get("/calls")).json()
    assert [record["id"] for record in body] == ids[::-1]


async def test_a_real_record_comes_back_whole(client, store, invite, arrived_at):
    _, request = invite("lync")
    record = build_record(request, ecrc="primary", transport="TLS", source="192.168.1.5:5061", arrived_at=arrived_at)
    record_id = store.add(record)
    response = await client.get(f"/calls/{record_id}")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {**record, "id": record_id}


async def test_calls_filter_by_verdict_limit_and_since(client, store):
    ids = [add(store, n, "no_location" if n % 2 else "location_by_value_valid") for n in range(6)]
    valid = await (await client.get("/calls", params={"verdict": "location_by_value_valid"})).json()
    assert [r["id"] for r in valid] == [ids[4], ids[2], ids[0]]
    both = await (await client.get("/calls?verdict=no_location,location_by_value_valid&limit=2")).json()
    assert [r["id"] for r in both] == [ids[5], ids[4]]
    after = await (await client.get("/calls", params={"since": str(ids[3])})).json()
    assert [r["id"] for r in after] == [ids[5], ids[4]]
    timed = await (await client.get("/calls", params={"since": "2024-05-01T14:04:00+02:00"})).json()
    assert [r["id"] for r in timed] == [ids[5], ids[4]]


async def test_an_unencoded_plus_in_a_since_time_still_works(client, store):
    ids = [add(store, n) for n in range(3)]
    response = await client.get("/calls?since=2024-05-01T14:02:00+02:00")  # '+' arrives as a space
    assert [r["id"] for r in await response.json()] == [ids[2]]


@pytest.mark.parametrize(
    "query, field",
    [
        ("verdict=valid", "verdict"),
        ("verdict=", "verdict"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=10001", "limit"),
        ("since=yesterday", "since"),
        ("verdicts=no_location", "verdicts"),
    ],
)
async def test_bad_calls_query_is_400_naming_the_field(client, query, field):
    response = await client.get(f"/calls?{query}")
    assert response.status == 400
    body = await response.json()
    assert body["field"] == field and body["error"]


async def test_unknown_call_id_is_404(client):
    response = await client.get("/calls/4242")
    assert response.status == 404
    assert (await response.json())["field"] == "id"


async def test_non_numeric_call_id_is_400(client):
    response = await client.get("/calls/abc")
    assert response.status == 400
    assert (await response.json())["field"] == "id"


async def test_delete_calls_clears_the_store(client, store):
    add(store, 1)
    add(store, 2)
    response = await client.delete("/calls")
    assert response.status == 200
    assert await response.json() == {"deleted": 2}
    assert await (await client.get("/calls")).json() == []


async def test_get_control_returns_the_current_behaviour(client):
    response = await client.get("/control")
    assert response.status == 200
    assert await response.json() == {"answer": "200", "ring_ms": 0, "bye_after_s": None}


async def test_put_control_changes_the_behaviour(client, box):
    response = await client.put("/control", json={"answer": "503", "ring_ms": 250})
    assert response.status == 200
    assert await response.json() == {"answer": "503", "ring_ms": 250, "bye_after_s": None}
    assert box.changes == [AnswerBehaviour("503", 250)]
    assert (await (await client.get("/control")).json())["answer"] == "503"


async def test_put_control_bye_after_gets_its_default_delay(client):
    response = await client.put("/control", json={"answer": "bye-after"})
    assert await response.json() == {"answer": "bye-after", "ring_ms": 0, "bye_after_s": 5.0}


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"answer": "404"}', "answer"),
        ('{"answer": "200", "ring_ms": -5}', "ring_ms"),
        ('{"answer": "bye-after", "bye_after_s": -1}', "bye_after_s"),
        ('{"answer": "200", "colour": "red"}', "colour"),
        ('{"answer": ', "body"),
        ("", "body"),
        ('["503"]', "body"),
    ],
)
async def test_bad_control_is_400_naming_the_field_and_changes_nothing(client, box, body, field):
    response = await client.put("/control", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["field"] == field
    assert box.changes == []


async def test_unknown_path_and_method_answer_json(client):
    missing = await client.get("/nope")
    assert missing.status == 404 and "error" in await missing.json()
    wrong = await client.post("/calls")
    assert wrong.status == 405 and "error" in await wrong.json()
