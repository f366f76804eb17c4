"""`b2bua lab` as `make lab` runs it (on free ports here, so it never collides with a lab
already running), and `b2bua lab --serve`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

from b2bua.sip.transaction import Peer
from b2bua.testbench.scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]
B2BUA = [sys.executable, "-m", "b2bua.cli"]


async def test_the_lab_runs_the_matrix_prints_the_table_and_writes_the_reports(tmp_path):
    process = await asyncio.create_subprocess_exec(
        *B2BUA, "lab", "--config", str(REPO / "configs" / "lab.toml"), "--free-ports", "--report-dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    out = stdout.decode()

    assert process.returncode == 0, out + stderr.decode()
    header = [cell.strip() for cell in out.splitlines()[0].split(" | ")]
    assert header == ["scenario", "route taken", "ECRC recorded", "expected", "result"]
    for scenario in SCENARIOS:
        assert scenario.name in out
    assert f"{len(SCENARIOS)}/{len(SCENARIOS)} scenarios passed" in out
    document = json.loads((tmp_path / "lab-report.json").read_text())
    assert document["passed"] and len(document["scenarios"]) == len(SCENARIOS)
    assert document["duration_s"] < 60
    page = (tmp_path / "lab-report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<tr>") >= len(SCENARIOS)
    assert not (tmp_path / "configs").exists()  # --free-ports: CDRs and TLS pair in the report directory
    assert (tmp_path / "lab-cdr.jsonl").read_text().count("\n") >= len(SCENARIOS)


async def test_serve_prints_the_addresses_and_keeps_running_until_interrupted(tmp_path, caller):
    process = await asyncio.create_subprocess_exec(
        *B2BUA, "lab", "--serve", "--config", str(REPO / "configs" / "lab.toml"), "--free-ports",
        "--report-dir", str(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
    try:
        lines = []
        while not any(line.startswith("  ECRC call records") for line in lines):
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "lab --serve ended before printing its addresses"
            lines.append(line.decode())
        text = "".join(lines)
        certified = re.search(r"certified SBC \(pass\)\s+udp:127\.0\.0\.1:(\d+)", text)
        primary_http = re.search(r"primary ECRC \S+\s+udp/tcp 127\.0\.0\.1:\d+, (http://\S+)", text)
        assert certified and primary_http, text
        assert "PSTN gateway" in text and "strip keep-multipart" in text

        outcome = await caller.call(Peer("udp", "127.0.0.1", int(certified.group(1))), style="lync")
        assert outcome.ok, outcome.line()

        import aiohttp

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"{primary_http.group(1)}/calls") as reply:
                records = await reply.json()
        assert records[0]["verdict"] == "location_by_value_valid"
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise
    assert process.returncode == 0
