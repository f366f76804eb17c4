"""The pytest plugin: registered through the `pytest11` entry point, usable from a project
that has no conftest.py and runs pytest-asyncio in strict mode."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from b2bua.testbench.plugin import (
    EcrcUnderTest,
    assert_location_received,
    assert_no_location,
    assert_recorded,
    config_on_free_ports,
)

SITE = {
    "profile": [{"name": "edge", "listen": ["udp:10.0.0.1:5060", "tcp:10.0.0.1:5060"], "location_policy": "pass"}],
    "emergency": {"trunk_group": "ecrcs"},
    "trunk": [{"name": "a", "address": "192.0.2.1:5060", "transports": ["udp", "tcp"], "fast_failover_s": 1.0},
              {"name": "b", "address": "192.0.2.2:5060", "transports": ["udp", "tcp"]}],
    "trunk_group": [{"name": "ecrcs", "trunks": ["a", "b"]}],
}


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("e911_b2bua") == "b2bua.testbench.plugin"


async def test_b2bua_from_a_dict_with_a_silent_first_ecrc(b2bua_from_config, ecrc_factory, caller):
    first, second = await ecrc_factory("a"), await ecrc_factory("b")
    first.set_answer("drop")
    sbc = await b2bua_from_config(SITE, trunks={"a": first, "b": second})

    outcome = await caller.call(sbc.address("edge"))

    assert outcome.ok and 1000 <= outcome.answer_ms < 2500, outcome.line()
    record = assert_recorded(await sbc.record_of(outcome), outcome, ecrc="b", location="byte-exact")
    assert [r["ecrc"] for r in await sbc.records_of(outcome)] == ["a", "b"]
    assert record["verdict"] == "location_by_value_valid"
    assert sbc.address("edge").host == "127.0.0.1" and sbc.address("edge", "tcp").port == sbc.address("edge").port
    assert (await sbc.cdr_for(outcome))["route_taken"] == "b"


async def test_the_pstn_gateway_fixture(pstn_gateway, caller):
    outcome = await caller.call(pstn_gateway.address(), to="911")

    assert outcome.ok
    record = pstn_gateway.record_of(outcome)
    assert record["ecrc"] == "pstn" and record["pidf_received"] is True
    # It received the PIDF-LO on its SIP side, but no location object crosses to the PSTN.
    assert_recorded(record, verdict="no_location", disposition="ecrc_must_ask")
    assert record["location"] is None


async def test_the_ecrc_fixture_and_its_handle(ecrc, caller):
    outcome = await caller.call(ecrc.address("tcp"))

    assert isinstance(ecrc, EcrcUnderTest) and ecrc.url.startswith("http://127.0.0.1:")
    assert_location_received(ecrc.record_of(outcome), outcome)
    assert ecrc.records()[-1]["call_id"] == outcome.call_id


def test_the_assertion_helpers_name_every_difference():
    record = {"ecrc": "a", "verdict": "no_location", "disposition": "ecrc_must_ask", "pidf": None, "pidf_sha256": None,
              "geolocation": [], "findings": [{"id": "S01", "severity": "E"}], "is_test": False, "readback": None}

    with pytest.raises(AssertionError) as failure:
        assert_recorded(record, None, ecrc="b", verdict="location_by_value_valid", errors=False, is_test=True)
    message = str(failure.value)
    for text in ("recorded by a, expected b", "verdict no_location", "error findings ['S01']", "is_test False"):
        assert text in message
    with pytest.raises(AssertionError, match="the ECRC recorded no call"):
        assert_recorded(None)
    assert assert_no_location(record) is record


def test_a_trunk_the_configuration_lacks_is_refused(tmp_path):
    with pytest.raises(KeyError, match="no trunk named c"):
        config_on_free_ports(SITE, {"c": "127.0.0.1:5070"}, tmp_path)


FOREIGN_TEST = '''
import pytest

SITE = {site!r}


@pytest.mark.asyncio
async def test_fixtures_from_the_entry_point(ecrc_factory, b2bua_from_config, caller, lab, pstn_gateway):
    from b2bua.testbench.plugin import assert_recorded

    a, b = await ecrc_factory("a"), await ecrc_factory("b")
    sbc = await b2bua_from_config(SITE, trunks={{"a": a, "b": b}})
    outcome = await caller.call(sbc.address(), style="pjsua")
    assert_recorded(await sbc.record_of(outcome), outcome, ecrc="a", location="byte-exact")

    through_lab = await caller.call(lab.address("noncertified"))
    assert_recorded(await lab.record_of(through_lab), through_lab, location="absent", verdict="no_location")
'''


async def test_a_foreign_project_in_strict_mode_gets_the_fixtures(tmp_path):
    (tmp_path / "test_foreign.py").write_text(textwrap.dedent(FOREIGN_TEST.format(site=SITE)))
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_foreign.py", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 90)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, output.decode()[-3000:]
    assert "1 passed" in output.decode()


def test_the_documented_example_is_the_one_the_suite_runs():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    doc = (repo / "docs" / "testbench.md").read_text()
    section = doc.split("## Testing your SBC configuration with pytest", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == (repo / "tests" / "examples" / "test_sbc_config.py").read_text()
