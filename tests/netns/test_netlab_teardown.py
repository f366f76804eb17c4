"""Nothing of the lab survives it: not after the suite, a Ctrl-C, a SIGTERM, an exception, a
failed start, nor (with `b2bua netlab clean`) a SIGKILL.

Each lab here but the session's runs in a child process, so its tag (`e9l<child pid>`) and
its processes can be checked from outside after it ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from b2bua.netlab.topology import list_links, list_namespaces, namespace_pids
from netlab_support import root_or_skip

pytestmark = pytest.mark.netns

START_S = 60.0  # building the lab and starting its processes takes a few seconds
END_S = 30.0


def lab_namespaces(tag: str) -> list[str]:
    return [name for name in list_namespaces() if name.startswith(tag + "-")]


def lab_links(tag: str) -> list[str]:
    return [name for name in list_links() if name.startswith(tag)]


def running(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions `text` (the run directory is in every lab command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and running(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_the_suite_leaves_nothing_behind(netlab):
    """Runs right after the last scenario (conftest moves it): close the session's lab and look."""
    tag, run_dir = netlab.tag, str(netlab.run_dir)
    pids = list(netlab.supervisor.started_pids)
    assert pids, "the lab started no process?"

    left = netlab.close()

    assert left == []
    assert lab_namespaces(tag) == []
    assert lab_links(tag) == []  # veths are made inside the namespaces; none in the root one either
    assert [pid for pid in pids if running(pid)] == []
    assert processes_mentioning(run_dir) == []


def _wait_for(path: Path, text: str, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        if process.poll() is not None:
            pytest.fail(f"the lab process exited with {process.returncode} before {text!r}:\n{content[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"no {text!r} within {timeout:g} s:\n{path.read_text(errors='replace')[-3000:] if path.exists() else ''}")


def _lab_pids(tag: str) -> list[int]:
    return [pid for name in lab_namespaces(tag) for pid in namespace_pids(name)]


def _start_lab_cli(run_dir: Path) -> tuple[subprocess.Popen, Path]:
    out = run_dir / "netlab-up.out"
    with open(out, "wb") as stream:
        process = subprocess.Popen([sys.executable, "-m", "b2bua.cli", "netlab", "up", "--dir", str(run_dir / "lab")],
                                   stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return process, out


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_tears_the_lab_down(tmp_path, signum):
    root_or_skip()
    process, out = _start_lab_cli(tmp_path)
    tag = f"e9l{process.pid}"
    try:
        _wait_for(out, "lab ready", process, START_S)
        pids = _lab_pids(tag)
        assert len(pids) >= 4, f"expected the ECRCs, the PSTN gateway and the B2BUA inside the lab: {pids}"

        process.send_signal(signum)
        code = process.wait(END_S)
    finally:
        _end(process)

    text = out.read_text()
    assert code == 130, text[-2000:]
    assert "lab torn down" in text and "LEFT BEHIND" not in text, text[-2000:]
    assert lab_namespaces(tag) == [] and lab_links(tag) == []
    assert [pid for pid in pids if running(pid)] == []


SCRIPT_EXCEPTION = """
    from b2bua.netlab.lab import NetLab
    with NetLab({run_dir!r}) as lab:
        print("started", lab.tag, flush=True)
        raise RuntimeError("a scenario blew up")
"""

SCRIPT_FAILED_START = """
    from b2bua.netlab.lab import NetLab
    from b2bua.netlab.labconfig import Variant
    lab = NetLab({run_dir!r})
    # Topology and bench come up; the B2BUA's configuration is refused: start() must undo it all.
    lab.start(Variant(extra={{"node": {{"name": "broken", "no_such_key": 1}}}}))
"""


@pytest.mark.parametrize("script", [SCRIPT_EXCEPTION, SCRIPT_FAILED_START], ids=["exception", "failed-start"])
def test_a_failure_tears_the_lab_down(tmp_path, script):
    root_or_skip()
    run_dir = tmp_path / "lab"
    code = textwrap.dedent(script.format(run_dir=str(run_dir)))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    tag = f"e9l{process.pid}"
    try:
        output, _ = process.communicate(timeout=START_S)
    finally:
        _end(process)

    text = output.decode(errors="replace")
    assert process.returncode == 1, text[-3000:]
    assert "RuntimeError" in text or "ConfigError" in text, text[-3000:]
    assert (run_dir / "ecrc-primary.log").exists(), "the lab never got as far as starting its processes"
    assert lab_namespaces(tag) == [] and lab_links(tag) == []
    assert processes_mentioning(str(run_dir)) == []


def test_after_a_sigkill_the_processes_die_and_netlab_clean_removes_the_namespaces(tmp_path):
    root_or_skip()
    process, out = _start_lab_cli(tmp_path)
    tag = f"e9l{process.pid}"
    try:
        _wait_for(out, "lab ready", process, START_S)
        pids = _lab_pids(tag)
        assert pids

        process.kill()  # no handler runs: only the kernel's PR_SET_PDEATHSIG and `netlab clean` help
        process.wait(10)
        deadline = time.monotonic() + 15
        while any(running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in pids if running(pid)] == [], "lab processes outlived their parent"
        assert lab_namespaces(tag), "expected the namespaces of the killed run to be left over"

        cleaned = subprocess.run([sys.executable, "-m", "b2bua.cli", "netlab", "clean"], capture_output=True,
                                 text=True, timeout=END_S)
    finally:
        _end(process)
        if lab_namespaces(tag):  # do not leave them for the next run if the check above failed
            subprocess.run([sys.executable, "-m", "b2bua.cli", "netlab", "clean"], capture_output=True, timeout=END_S)

    assert cleaned.returncode == 0, cleaned.stderr
    assert f"{tag}: removed" in cleaned.stdout, cleaned.stdout
    assert lab_namespaces(tag) == [] and lab_links(tag) == []
