"""The embedded lab on free ports (the plugin's `lab` fixture): its topology, every
scenario of the matrix, and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b2bua.testbench import report
from b2bua.testbench.lab import VARIANTS, LabPorts, lab_config, load_lab_data
from b2bua.testbench.plugin import assert_no_location, assert_recorded
from b2bua.testbench.scenarios import SCENARIOS, ScenarioResult, run_scenario

LAB_TOML = Path(__file__).resolve().parents[2] / "configs" / "lab.toml"


def test_the_fixed_ports_are_the_configurations():
    ports = LabPorts.fixed(load_lab_data(LAB_TOML))

    assert (ports.certified, ports.certified_tls, ports.noncertified) == (5060, 5061, 5062)
    assert (ports.primary, ports.secondary, ports.pstn) == (5070, 5072, 5080)
    assert (ports.primary_http, ports.secondary_http, ports.pstn_http) == (8070, 8072, 8080)
    assert sorted(ports.variants.values()) == [5063, 5064, 5065, 5066, 5067]


def test_the_lab_configuration_is_the_file_with_ports_substituted(tmp_path):
    data = load_lab_data(LAB_TOML)
    ports = LabPorts.free()

    config = lab_config(data, ports, workdir=tmp_path, files_in_workdir=True)

    certified = config.profile[0]
    assert certified.listen == [f"udp:127.0.0.1:{ports.certified}", f"tcp:127.0.0.1:{ports.certified}",
                                f"tls:127.0.0.1:{ports.certified_tls}"]
    assert config.trunk_named("ecrc-primary").address == f"127.0.0.1:{ports.primary}"
    assert config.trunk_named("pstn-branch").address == f"127.0.0.1:{ports.pstn}"
    variants = {p.strip_variant: p for p in config.profile if p.name.startswith("noncertified-")}
    assert set(variants) == set(VARIANTS)
    assert all(p.location_policy == "strip" for p in variants.values())
    assert config.node.cdr_path == str(tmp_path / "lab-cdr.jsonl")
    assert len(set(ports.all().values())) == len(ports.all())
    assert data["profile"][0]["listen"][0] == "udp:127.0.0.1:5060"  # the file's data is left alone


async def test_the_lab_serves_every_part(lab):
    parts = dict(lab.describe())

    assert any(what.startswith("PSTN gateway") for what in parts)
    assert lab.primary.api.url == f"http://127.0.0.1:{lab.ports.primary_http}"
    assert lab.pstn.api.url == f"http://127.0.0.1:{lab.ports.pstn_http}"
    for role in ("certified", "noncertified", *VARIANTS):
        assert lab.address(role).port != lab.address("primary").port


async def test_a_number_with_its_own_route_goes_to_the_pstn_gateway(lab, caller):
    outcome = await caller.call(lab.address("certified"), to="+12025550100", pidf=None)

    assert outcome.ok, outcome.line()
    cdr = await lab.cdr_for(outcome.call_id)
    assert cdr["route_taken"] == "pstn-branch"  # an emergency-marked call to a number with its own route
    [record] = lab.pstn_store.list(call_id=cdr["b_call_id"])
    assert record["ecrc"] == "pstn-branch" and record["verdict"] == "no_location"


async def test_the_lab_helpers_find_what_the_ecrc_recorded(lab, caller):
    stripped = await caller.call(lab.address("noncertified"))
    passed = await caller.call(lab.address("certified"), style="pjsua")

    assert_no_location(await lab.record_of(stripped))
    assert_recorded(await lab.record_of(passed), passed, ecrc="ecrc-primary", location="byte-exact")
    assert [r["ecrc"] for r in await lab.records_of(passed)] == ["ecrc-primary"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
async def test_scenario(lab, caller_factory, scenario):
    caller = await caller_factory(ca_file=lab.tls_ca_file)

    result = await run_scenario(lab, caller, scenario)

    assert result.passed, f"{result.name}: {result.problems}\nroute: {result.route}\nrecorded: {result.recorded}"
    assert result.calls and result.route != "-"


def _result(name: str, passed: bool, text: str) -> ScenarioResult:
    return ScenarioResult(name, "a title", "expected <b>bold</b>", passed, "route & co", text,
                          [] if passed else ["went <wrong>"])


def test_the_table_and_the_html_report():
    results = [_result("1-ok", True, "recorded"), _result("2-bad", False, "<script>alert(1)</script>")]
    document = {"generated_at": "now", "passed": False, "scenarios_passed": 1, "duration_s": 1.0,
                "scenarios": [r.to_json() for r in results],
                "lab": {"config": "configs/lab.toml", "parts": [{"what": "primary <ECRC>", "where": "127.0.0.1:5070"}]}}

    table = report.render_table(results, width=120)
    page = report.render_html(document)

    assert "1-ok" in table and "PASS" in table and "FAIL" in table and "!! went <wrong>" in table
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "expected &lt;b&gt;bold&lt;/b&gt;" in page and "primary &lt;ECRC&gt;" in page
    assert "src=" not in page and "<link" not in page  # self-contained
    json.dumps(document)
