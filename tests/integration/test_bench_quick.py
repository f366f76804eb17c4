"""`benchmarks/cps.py --quick` runs end to end and writes a well-formed JSON file.

Only the shape of the result is checked, never a rate or a time: the machine is shared and
noisy, so a number is a measurement, not an assertion. Three targets keep it short and need
nothing beyond SIPp and this project: SIPp straight to SIPp, and our B2BUA (policy pass)
with one worker and with two.
Kamailio and Sippy are left to `make bench` (they may need installing).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.sipp

ROOT = Path(__file__).resolve().parents[2]
CPS = ROOT / "benchmarks" / "cps.py"
TARGETS = ["direct", "ours-pass", "ours-pass-w2"]
VARIANTS = ["plain", "emergency"]
STEP_KEYS = {
    "rate", "calls", "ok", "reason", "successful", "failed", "retransmissions", "unexpected",
    "late_provisionals", "out_of_call", "elapsed_s", "box_cpu_s", "box_cpu_ms_per_call",
    "invite_180_ms", "no_180",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cps") / "cps.json"
    argv = [sys.executable, str(CPS), "--quick", "--no-install", "--targets", ",".join(TARGETS),
            "--max-rate", "800", "--json", str(out)]
    completed = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return completed, out


def test_quick_run_exits_0_and_prints_table_and_ratios(quick_run):
    completed, _ = quick_run
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert any(line.startswith("target") and "sustained" in line for line in lines)
    assert lines[-2].startswith("ratio ours/Sippy")
    assert lines[-1].startswith("ratio ours/Kamailio")


def test_quick_run_writes_one_ladder_per_target_and_body(quick_run):
    completed, out = quick_run
    assert out.exists(), completed.stdout[-3000:]
    result = json.loads(out.read_text())
    assert result["benchmark"] == "cps" and result["quick"] is True
    assert result["targets"] == TARGETS and result["variants"] == VARIANTS
    assert {"python", "sipp"} <= set(result["versions"])
    ladders = {(item["target"], item["variant"]): item for item in result["results"]}
    assert set(ladders) == {(target, variant) for target in TARGETS for variant in VARIANTS}
    for (target, variant), ladder in ladders.items():
        where = f"{target}/{variant}: {ladder.get('error')}"
        assert ladder["error"] is None, where
        assert isinstance(ladder["sustained_cps"], (int, float)) and ladder["sustained_cps"] >= 0, where
        assert ladder["steps"], where
        for step in ladder["steps"]:
            assert STEP_KEYS <= set(step), where
            assert step["calls"] >= 1 and 0 <= step["successful"] <= step["calls"], where
            if step["invite_180_ms"]:
                assert set(step["invite_180_ms"]) == {"n", "p50", "p99", "max"}, where
        passed = [step["rate"] for step in ladder["steps"] if step["ok"]]
        assert ladder["sustained_cps"] == (max(passed) if passed else 0), where
        if target == "direct":
            assert ladder["box_peak_rss_kib"] is None, where
        else:
            assert ladder["box_peak_rss_kib"] and ladder["box_startup_s"] is not None, where
            assert all(step["box_cpu_s"] is not None for step in ladder["steps"]), where
    assert isinstance(result["ratios"], dict)  # no peer ran: no ratio, but the key is there


def _descendants(pid: int) -> set[int]:
    sys.path.insert(0, str(CPS.parent))
    try:
        from cps import descendants
    finally:
        sys.path.remove(str(CPS.parent))
    return set(descendants(pid)) - {pid}


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has ended; its parent has not reaped it


def test_a_terminated_run_leaves_no_sipp_or_box_running(tmp_path):
    argv = [sys.executable, str(CPS), "--quick", "--no-install", "--targets", "ours-pass-w2",
            "--variants", "emergency", "--json", str(tmp_path / "cps.json")]
    run = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(started) < 4:  # SIPp UAS, the node, 2 workers
            started |= _descendants(run.pid)
            time.sleep(0.05)
        assert len(started) >= 4, f"the run started only {sorted(started)}"
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) != 0
        assert [pid for pid in started if _running(pid)] == []
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in started:  # what a failing run left behind (started by this test)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
