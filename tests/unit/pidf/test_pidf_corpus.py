"""The fixture corpus (reference §7, T01-T36) through ``pidf validate --json``.

``tests/fixtures/pidf/expected.json`` maps each file to the verdict it must get and
the check ids it must raise (``clean``: no E or W at all; ``elins``: passed as
--elin; ``marking``: the call kind; ``compare_with``/``compare_checks``: run
``pidf compare`` against that file). ``.sip`` files need the SIP core's
``conveyance_from_bytes``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pidf.cli import main

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "pidf"
MANIFEST = json.loads((FIXTURES / "expected.json").read_text())
NOW = "2025-06-01T12:00:00Z"
XML = sorted(n for n in MANIFEST if n.endswith(".xml"))
SIP = sorted(n for n in MANIFEST if n.endswith(".sip"))


def _validate(name: str, capsys) -> dict:
    entry = MANIFEST[name]
    argv = ["validate", "--json", "--now", NOW, str(FIXTURES / name)]
    for elin in entry.get("elins", []):
        argv += ["--elin", elin]
    code = main(argv)
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1
    result = out[0]
    has_error = any(f["severity"] == "E" for f in result["findings"])
    assert code == (1 if has_error else 0)
    return result


def _assert_expected(name: str, result: dict) -> None:
    entry = MANIFEST[name]
    raised = {f["id"] for f in result["findings"]}
    assert result["verdict"] == entry["verdict"], f"{name}: {entry['note']}"
    assert set(entry["checks"]) <= raised, f"{name}: missing {set(entry['checks']) - raised}"
    if entry.get("clean"):
        assert [f for f in result["findings"] if f["severity"] in ("E", "W")] == []
    if "marking" in entry:
        assert result["marking"]["kind"] == entry["marking"]
    assert {"file", "verdict", "findings", "location"} <= set(result)
    assert all({"id", "severity", "message"} <= set(f) for f in result["findings"])


def test_manifest_covers_every_item_and_every_file():
    assert {e["item"] for e in MANIFEST.values()} == {f"T{i:02d}" for i in range(1, 37)}
    on_disk = {p.name for p in FIXTURES.iterdir() if p.suffix in (".xml", ".sip")}
    assert on_disk == set(MANIFEST)


@pytest.mark.parametrize("name", XML)
def test_document_fixture(name, capsys):
    _assert_expected(name, _validate(name, capsys))


@pytest.mark.parametrize("name", SIP)
def test_sip_fixture(name, capsys):
    pytest.importorskip("b2bua.engine.conveyance")
    _assert_expected(name, _validate(name, capsys))
    entry = MANIFEST[name]
    if "compare_with" in entry:
        main(["compare", "--json", str(FIXTURES / entry["compare_with"]), str(FIXTURES / name)])
        ids = {f["id"] for f in json.loads(capsys.readouterr().out)["findings"]}
        assert set(entry["compare_checks"]) <= ids


def test_sip_fixtures_have_crlf_line_ends_and_the_length_the_item_says():
    for name in SIP:
        data = (FIXTURES / name).read_bytes()
        if "lf_line_endings" in name:
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"\n" not in head.replace(b"\r\n", b""), name
        declared = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[1])
        assert (declared == len(body)) != (name == "t06_content_length_stale.sip"), name


def test_command_line_entry_point_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "pidf.cli", "validate", "--json", "--now", NOW, str(FIXTURES / "t10_usage_rules_gp_namespace.xml")],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["verdict"] == "location_by_value_valid"
