"""Call-rate benchmark: SIPp UAC -> middle box -> SIPp UAS on loopback, one rate ladder per target.

Each call is INVITE / 100 / 180 / 200 / ACK, a short hold, BYE / 200 (benchmarks/scenarios/).
Two INVITE bodies: `plain` (SDP) and `emergency` (multipart/mixed SDP + PIDF-LO, Geolocation
by cid, Priority: emergency). Targets, each started and stopped here, one at a time:

  direct       SIPp UAC -> SIPp UAS, nothing in between: the tools' own ceiling
  kamailio     Debian kamailio, benchmarks/kamailio.cfg (stateful tm + record_route)
  sippy        Sippy B2BUA (PyPI `sippy`, own venv benchmarks/.venv-sippy), static route
  ours-pass    this project's B2BUA, location policy pass
  ours-validate                                          validate
  ours-strip                                             strip (variant full)
  ours-pass-w2 / ours-validate-w2 / ours-strip-w2   the same with node.workers = 2
                   (two processes sharing the port with SO_REUSEPORT)
  ours-pass-info   (not run by default) ours-pass with log_level = info: what logging costs
  ours-pass-shm    (not run by default) ours-pass with its CDR file on /dev/shm: what
                   writing the CDR to a disk costs

The caller sends every call from its own UDP port (SIPp -t un), as a crowd of phones
would: the kernel spreads senders over the workers of a SO_REUSEPORT port by address and
port, so one caller on one port would load one worker only. Every target gets the same
caller.

For every target and body a ladder offers a rate for a fixed window (calls = rate x window):
up by a factor until a step fails, then bisect between the last pass and the first failure.
A step passes when >= 99.5 % of its calls complete, SIPp saw no unexpected / out-of-call
message, and SIPp could offer the whole load in time (the run ended within
window x 1.15 + hold + 1.5 s; slower means the path, or SIPp, fell behind). The sustained rate
is the highest passing rate. After a failed step that more steps follow, the box is probed
at a low rate (did it recover?) and restarted, so every step starts on a clean box.
Everything is bounded: a step's SIPp is ended once the step has failed on time, the ladder
has a fixed number of steps, every process is ended by the PID this script started.

Results: a table on the terminal (one progress line per step while it runs) and a JSON file.
The last lines print the ratios ours/Sippy and ours/Kamailio, measured in this same run;
a ratio is the only thing worth comparing across machines (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIOS = HERE / "scenarios"
KAMAILIO_CFG = HERE / "kamailio.cfg"
SIPPY_VENV = HERE / ".venv-sippy"
DEFAULT_JSON = HERE / "results" / "cps.json"
HOST = "127.0.0.1"
SERVICE = "911"  # the dialled number: an emergency call for our B2BUA in both body variants

sys.path.insert(0, str(ROOT))
from b2bua.testbench.sipp import free_port  # noqa: E402

OURS = ["ours-pass", "ours-validate", "ours-strip", "ours-pass-w2", "ours-validate-w2", "ours-strip-w2"]
TARGETS = ["direct", "kamailio", "sippy", *OURS]
OPTIONAL_TARGETS = ["ours-pass-info", "ours-pass-shm"]
VARIANTS = ["plain", "emergency"]
PEERS = ["sippy", "kamailio"]
SUCCESS_FRACTION = 0.995
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Settings:
    window_s: float = 10.0
    hold_ms: int = 200
    start_rate: float = 50.0
    factor: float = 2.0
    max_rate: float = 6400.0
    tolerance: float = 0.10  # bisect until hi/lo <= 1 + tolerance
    max_bisect: int = 4
    warmup_calls: int = 30
    warmup_rate: float = 20.0
    kamailio_children: int = 2
    settle_s: float = 1.0
    max_p99_ms: float | None = None  # optional extra pass condition on INVITE->180 p99
    quick: bool = False


def quick_settings() -> Settings:
    return Settings(window_s=1.5, hold_ms=100, start_rate=200.0, factor=2.0, max_rate=1600.0,
                    tolerance=1.0, max_bisect=0, warmup_calls=15, warmup_rate=30.0, settle_s=0.3,
                    quick=True)


# -- processes ------------------------------------------------------------------------------


def log(line: str = "") -> None:
    print(line, flush=True)


def max_sockets() -> int:
    """SIPp's -max_socket for a caller with a socket per call (-t un): what the open-file
    limit allows (SIPp refuses a value at or above it), raised to the hard limit first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 20000 if hard == resource.RLIM_INFINITY else min(hard, 20000)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # inherited by SIPp
            soft = wanted
    limit = wanted if soft == resource.RLIM_INFINITY else soft
    return max(64, min(20000, limit - 100))


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (Kamailio forks its workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / CLK_TCK


def _proc_field(path: str, name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    return 0


def memory_kib(pids: list[int]) -> int:
    """One process: its peak RSS (VmHWM). Several (Kamailio's workers share a big shm pool
    that every worker maps): the sum of their proportional set sizes (Pss) now, so shared
    pages count once; the caller keeps the largest sample."""
    if len(pids) == 1:
        return _proc_field(f"/proc/{pids[0]}/status", "VmHWM:")
    return sum(_proc_field(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in pids)


def udp_bound(port: int) -> bool:
    wanted = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                if line.split()[1].endswith(wanted):
                    return True
    return False


_LIVE: set[Process] = set()  # started here and not yet seen to end: stopped if the run is ended


class Process:
    """A process this script started (own session); ended by its PID only."""

    def __init__(self, name: str, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        output = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        if log_path:
            output.close()
        self.pid = self.popen.pid
        self.rusage = None
        self.cleanup: list[Path] = []  # directories to remove once it has stopped
        _LIVE.add(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[int]:
        return descendants(self.pid) if self.alive() else []

    def wait(self, timeout: float) -> int | None:
        """Wait (bounded) and keep the child's rusage (CPU of a finished SIPp)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.rusage = rusage
                self.popen.returncode = os.waitstatus_to_exitcode(status)
                _LIVE.discard(self)
                return self.popen.returncode
            time.sleep(0.02)
        return None

    def stop(self, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
        if self.popen.returncode is not None:
            return
        pids = descendants(self.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        if self.wait(grace) is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait(5.0)
        for pid in pids[1:]:  # workers that outlived their parent (never seen, but bounded)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    @staticmethod
    def stop_all() -> None:
        """End every process still running (the run was interrupted or failed)."""
        for process in list(_LIVE):
            process.stop(signal.SIGKILL, grace=1.0)
            _LIVE.discard(process)

    def tail(self, chars: int = 1500) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


# -- tools ----------------------------------------------------------------------------------


def sippy_b2bua() -> Path:
    return SIPPY_VENV / "bin" / "b2bua"


def ensure_tools(targets: list[str], install: bool) -> dict[str, str]:
    """Install what the chosen targets need (Kamailio from Debian, Sippy in its own venv).
    Returns target -> why it cannot run, for those that cannot."""
    missing: dict[str, str] = {}
    if not shutil.which("sipp"):
        raise SystemExit("cps: sipp not found: `make sipp` (Debian sip-tester)")
    if "kamailio" in targets and not shutil.which("kamailio"):
        if install and os.geteuid() == 0:
            log("setup: installing kamailio (apt-get)")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", "kamailio"], check=False, env=env)
        if not shutil.which("kamailio"):
            missing["kamailio"] = "kamailio not installed (apt-get install kamailio, as root)"
    if "sippy" in targets and not sippy_b2bua().exists():
        if install:
            log(f"setup: creating {SIPPY_VENV.relative_to(ROOT)} and installing sippy (pip)")
            subprocess.run([sys.executable, "-m", "venv", str(SIPPY_VENV)], check=False)
            subprocess.run([str(SIPPY_VENV / "bin" / "pip"), "install", "--quiet", "sippy"], check=False)
        if not sippy_b2bua().exists():
            missing["sippy"] = f"sippy not installed ({SIPPY_VENV}/bin/pip install sippy)"
    return missing


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    with contextlib.suppress(Exception):
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=5).stdout
        found["sipp"] = next((line.strip() for line in out.splitlines() if "SIPp" in line), "?")
    if shutil.which("kamailio"):
        with contextlib.suppress(Exception):
            out = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, timeout=5).stdout
            found["kamailio"] = out.splitlines()[0].strip()
    if sippy_b2bua().exists():
        with contextlib.suppress(Exception):
            out = subprocess.run([str(SIPPY_VENV / "bin" / "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('sippy'))"],
                                 capture_output=True, text=True, timeout=20).stdout
            found["sippy"] = out.strip()
    return found


# -- middle boxes ---------------------------------------------------------------------------


def ours_config(path: Path, port: int, uas_port: int, policy: str, log_level: str, cdr_dir: Path,
                workers: int = 1) -> None:
    path.write_text(f"""# written by benchmarks/cps.py
[node]
name = "cps-bench"
cdr_path = "{cdr_dir / 'cdr.jsonl'}"
log_level = "{log_level}"
workers = {workers}

[[profile]]
name = "bench"
listen = ["udp:{HOST}:{port}"]
location_policy = "{policy}"

[emergency]
trunk_group = "ecrc"

[[trunk]]
name = "ecrc"
address = "{HOST}:{uas_port}"
health = {{ enabled = false }}

[[trunk_group]]
name = "ecrc"
trunks = ["ecrc"]
""")


def start_box(target: str, port: int, uas_port: int, workdir: Path, settings: Settings) -> Process | None:
    """Start the middle box of `target` listening on udp HOST:port; None for `direct`."""
    if target == "direct":
        return None
    logfile = workdir / f"{target}.log"
    if target == "kamailio":
        rundir = workdir / "kamailio"
        rundir.mkdir(exist_ok=True)
        argv = ["kamailio", "-DD", "-E", "-f", str(KAMAILIO_CFG), "-l", f"udp:{HOST}:{port}",
                "-A", f'UAS_URI="sip:{HOST}:{uas_port}"', "-n", str(settings.kamailio_children),
                "-m", "256", "-M", "16", "-Y", str(rundir), "-w", str(rundir), "-P", str(rundir / "kamailio.pid")]
        return Process(target, argv, cwd=workdir, log_path=logfile)
    if target == "sippy":
        rundir = workdir / "sippy"
        rundir.mkdir(exist_ok=True)
        # -f foreground, -u auth off, -A 0 accounting off, -s static route to the UAS.
        # SIPLOG_LVL=WARN: Sippy logs every SIP message at INFO; ours runs at warning too.
        argv = [str(sippy_b2bua()), "-f", "-l", HOST, "-p", str(port), "-s", f"{HOST}:{uas_port}", "-u",
                "-A", "0", "-c", str(rundir / "b2bua.sock"), "-P", str(rundir / "b2bua.pid"),
                "-L", str(rundir / "b2bua.log")]
        env = dict(os.environ, SIPLOG_LVL="WARN", SIPLOG_BEND="stderr")
        return Process(target, argv, cwd=workdir, env=env, log_path=logfile)
    if target.startswith("ours-"):
        policy = target.split("-")[1]
        log_level = "info" if target.endswith("-info") else "warning"
        config = workdir / "ours.toml"
        cdr_dir = workdir
        if target.endswith("-shm"):
            cdr_dir = Path(tempfile.mkdtemp(prefix="cps-cdr-", dir="/dev/shm"))
        workers = 2 if target.endswith("-w2") else 1
        ours_config(config, port, uas_port, policy, log_level, cdr_dir, workers)
        # What `b2bua run --config FILE` does, called directly so the benchmark depends on the
        # runner only. PYTHONPATH: the package from this checkout even if the editable
        # install is stale.
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        argv = [sys.executable, "-c", "import sys; from b2bua.runner import run_from_config; "
                "sys.exit(run_from_config(sys.argv[1]))", str(config)]
        process = Process(target, argv, cwd=workdir, env=env, log_path=logfile)
        if cdr_dir != workdir:
            process.cleanup.append(cdr_dir)
        return process
    raise ValueError(f"unknown target {target}")


def wait_bound(process: Process | None, port: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited {process.popen.returncode}: {process.tail()}")
        if udp_bound(port):
            time.sleep(0.2)  # Kamailio binds before its workers are forked
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing bound udp {HOST}:{port} within {timeout:g} s")


# -- SIPp -----------------------------------------------------------------------------------


def start_uas(port: int, workdir: Path) -> Process:
    # -abortunexp off: a retransmitted INVITE that crosses the 200 (a box running late) must
    # not abort the call, or the UAS stops retransmitting its 200 and the call hangs.
    argv = ["sipp", "-sf", str(SCENARIOS / "uas.xml"), "-i", HOST, "-p", str(port), "-t", "u1", "-nostdin",
            "-default_behaviors", "all,-abortunexp", "-deadcall_wait", "0", "-buff_size", "4194304", "-f", "10", "-trace_err",
            "-max_log_size", "1000000"]
    return Process("sipp-uas", argv, cwd=workdir)


@dataclass
class Step:
    rate: float
    calls: int
    ok: bool = False
    reason: str = ""
    exit_code: int | None = None
    created: int = 0
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    unexpected: int = 0  # unexpected messages other than late provisionals
    late_provisionals: int = 0  # a 100/180 that came after the 200 (reordered by the box)
    out_of_call: int = 0
    dead_call: int = 0
    elapsed_s: float = 0.0
    box_cpu_s: float | None = None
    box_cpu_ms_per_call: float | None = None
    box_util: float | None = None  # box CPU seconds / elapsed seconds (1.0 = one core)
    box_memory_kib: int | None = None  # see memory_kib()
    uac_cpu_s: float | None = None
    uas_cpu_s: float | None = None
    invite_180_ms: dict[str, float] = field(default_factory=dict)
    no_180: int = 0  # completed calls in which SIPp saw no 180 at all


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def read_stats(workdir: Path) -> dict[str, str]:
    files = sorted(workdir.glob("uac_*_.csv"))
    if not files:
        return {}
    lines = [line for line in files[0].read_text(errors="replace").splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    names, values = lines[0].split(";"), lines[-1].split(";")
    return dict(zip(names, values, strict=False))


def read_ring_delays(workdir: Path) -> list[float]:
    """INVITE sent -> 180 received per call, in ms, from the scenario's "ring" log lines."""
    delays = []
    for path in workdir.glob("uac_*_logs.log"):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[0] == "ring":
                s0, us0, s1, us1 = (float(part) for part in parts[1:])
                delays.append(((s1 - s0) * 1e6 + (us1 - us0)) / 1000.0)
    return delays


EVENT = re.compile(r"^\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: ", re.MULTILINE)


def read_unexpected(workdir: Path) -> tuple[int, int]:
    """(late provisionals, other unexpected messages) from SIPp's errors log. With
    -abortunexp off SIPp logs "Continuing call on unexpected message ... received '<msg>'"
    and goes on. A 1xx to the INVITE arriving after its 200 (a multi-worker box relayed them
    out of order) is legal and benign; anything else counts against the step."""
    late = other = 0
    for path in workdir.glob("uac_*_errors.log"):
        for event in EVENT.split(path.read_text(errors="replace")):
            if "unexpected message" not in event:
                continue
            received = event.split("received '", 1)[-1]
            first = received.split("\n", 1)[0]
            if re.match(r"SIP/2\.0 1\d\d ", first) and re.search(r"^CSeq:\s*\d+ INVITE", received, re.MULTILINE):
                late += 1
            else:
                other += 1
    return late, other


def run_step(variant: str, rate: float, calls: int, remote_port: int, box: Process | None, uas: Process,
             settings: Settings, workdir: Path) -> Step:
    step = Step(rate=rate, calls=calls)
    workdir.mkdir(parents=True, exist_ok=True)
    budget = settings.window_s * 1.15 + settings.hold_ms / 1000 + 1.5
    global_timeout = math.ceil(budget + 8)
    argv = ["sipp", "-sf", str(SCENARIOS / f"uac_{variant}.xml"), f"{HOST}:{remote_port}", "-i", HOST,
            "-p", str(free_port()), "-t", "un", "-max_socket", str(max_sockets()), "-s", SERVICE, "-m", str(calls), "-r", f"{rate:g}",
            "-d", str(settings.hold_ms), "-nostdin", "-buff_size", "4194304", "-f", "10",
            "-trace_stat", "-fd", "1", "-trace_logs", "-trace_err", "-max_log_size", "50000000",
            "-default_behaviors", "all,-abortunexp", "-timeout", f"{global_timeout}s", "-timeout_error"]
    box_pids = box.tree() if box else []
    box_cpu0 = cpu_seconds(box_pids) if box else None
    uas_cpu0 = cpu_seconds([uas.pid])
    started = time.monotonic()
    uac = Process("sipp-uac", argv, cwd=workdir)
    # SIPp's own -timeout does not end a call stuck waiting for a final response that never
    # comes (seen with an overloaded box), so the bound is here: past the budget (plus a
    # short grace) the step has failed anyway. SIGUSR1 = 'q' (soft quit, writes the final
    # statistics), twice = quit now; SIGKILL if still there.
    deadline = time.monotonic() + budget + max(1.0, 0.2 * settings.window_s)
    code = None
    while code is None and time.monotonic() < deadline:
        code = uac.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        if box is not None:  # sampled while loaded: Pss is not a high-water mark
            step.box_memory_kib = max(step.box_memory_kib or 0, memory_kib(box.tree()))
    if code is None:
        for _ in range(2):
            with contextlib.suppress(ProcessLookupError):
                os.kill(uac.pid, signal.SIGUSR1)
            code = uac.wait(0.5)
            if code is not None:
                break
        if code is None:
            uac.stop(signal.SIGKILL, grace=1.0)
            code = uac.popen.returncode
    step.elapsed_s = round(time.monotonic() - started, 3)
    if box:
        box_pids = sorted(set(box_pids) | set(box.tree()))
        step.box_cpu_s = round(cpu_seconds(box_pids) - box_cpu0, 3)
        step.box_util = round(step.box_cpu_s / step.elapsed_s, 3) if step.elapsed_s else None
    step.uas_cpu_s = round(cpu_seconds([uas.pid]) - uas_cpu0, 3)
    if uac.rusage is not None:
        step.uac_cpu_s = round(uac.rusage.ru_utime + uac.rusage.ru_stime, 3)
    step.exit_code = code
    stats = read_stats(workdir)

    def number(name: str) -> int:
        try:
            return int(float(stats.get(name, "0") or 0))
        except ValueError:
            return 0

    step.created = number("TotalCallCreated")
    step.successful = number("SuccessfulCall(C)")
    step.failed = number("FailedCall(C)")
    step.retransmissions = number("Retransmissions(C)")
    step.late_provisionals, other = read_unexpected(workdir)
    step.unexpected = number("FailedUnexpectedMessage(C)") + other
    step.out_of_call = number("OutOfCallMsgs(C)")
    step.dead_call = number("DeadCallMsgs(C)")
    if step.successful and step.box_cpu_s is not None:
        step.box_cpu_ms_per_call = round(step.box_cpu_s * 1000 / step.successful, 3)
    delays = read_ring_delays(workdir)
    if delays:
        step.invite_180_ms = {"n": len(delays), "p50": round(percentile(delays, 0.50), 3),
                              "p99": round(percentile(delays, 0.99), 3), "max": round(max(delays), 3)}
    step.no_180 = max(0, step.successful - len(delays))
    reasons = []
    if not stats:
        reasons.append(f"no statistics (SIPp exit {code})")
    if step.successful < math.ceil(SUCCESS_FRACTION * calls):
        reasons.append(f"{step.successful}/{calls} completed")
    if step.unexpected or step.out_of_call:
        reasons.append(f"{step.unexpected} unexpected, {step.out_of_call} out-of-call messages")
    if settings.max_p99_ms is not None and step.invite_180_ms.get("p99", 0.0) > settings.max_p99_ms:
        reasons.append(f"INVITE->180 p99 {step.invite_180_ms['p99']:.0f} ms > {settings.max_p99_ms:g} ms")
    if step.elapsed_s > budget:
        reasons.append(f"took {step.elapsed_s:.1f} s > {budget:.1f} s (load not offered in time)")
    if box is not None and not box.alive():
        reasons.append(f"{box.name} died")
    step.ok = not reasons
    step.reason = "; ".join(reasons)
    return step


# -- ladders --------------------------------------------------------------------------------


@dataclass
class Ladder:
    target: str
    variant: str
    sustained_cps: float = 0.0
    capped: bool = False  # the highest rate tried passed: the real ceiling is higher
    at_sustained: dict | None = None
    box_peak_rss_kib: int | None = None
    box_startup_s: float | None = None
    steps: list[dict] = field(default_factory=list)
    recovery: list[dict] = field(default_factory=list)  # probes after failed steps (full mode)
    recovered_after_overload: bool | None = None  # None: not probed
    error: str | None = None


def settle(box: Process | None, limit: float) -> None:
    """After a step, let the box drain (its CPU use falls under 20 % of a core), bounded."""
    if box is None:
        time.sleep(min(limit, 0.2))
        return
    end = time.monotonic() + max(limit, 0.2) * 5
    time.sleep(limit)
    while time.monotonic() < end:
        pids = box.tree()
        before = cpu_seconds(pids)
        time.sleep(0.25)
        if cpu_seconds(pids) - before < 0.05:
            return


def step_line(target: str, variant: str, step: Step) -> str:
    ring = step.invite_180_ms
    ring_text = f"180 p50/p99 {ring['p50']:.1f}/{ring['p99']:.1f} ms" if ring else "180 n/a"
    cpu = f"box cpu {step.box_cpu_s:.2f} s ({step.box_util:.0%})" if step.box_cpu_s is not None else "box -"
    verdict = "ok  " if step.ok else "FAIL"
    text = (f"  {target:<14} {variant:<9} {step.rate:>7.0f} cps  {verdict} {step.successful:>6}/{step.calls:<6} "
            f"retr {step.retransmissions:<5} {ring_text:<26} {cpu}")
    return text + (f"  [{step.reason}]" if step.reason else "")


def run_ladder(target: str, variant: str, settings: Settings, base: Path, keep: bool = False) -> Ladder:
    ladder = Ladder(target, variant)
    workdir = base / f"{target}-{variant}"
    workdir.mkdir(parents=True)
    current: dict[str, Process | int | None] = {"uas": None, "box": None, "remote": None}
    boots = 0

    def warm_settings() -> Settings:
        return Settings(**{**asdict(settings), "window_s": settings.warmup_calls / settings.warmup_rate})

    def boot() -> None:
        """A fresh SIPp UAS and middle box on new ports, warmed up (not counted: imports,
        caches, the first call's lazy work)."""
        nonlocal boots
        boots += 1
        run_dir = workdir / f"boot{boots}"
        run_dir.mkdir()
        uas_port, box_port = free_port(), free_port()
        uas = current["uas"] = start_uas(uas_port, run_dir)
        wait_bound(uas, uas_port)
        began = time.monotonic()
        box = current["box"] = start_box(target, box_port, uas_port, run_dir, settings)
        current["remote"] = box_port if box else uas_port
        if box:
            wait_bound(box, box_port)
            if ladder.box_startup_s is None:
                ladder.box_startup_s = round(time.monotonic() - began, 2)
        warm = run_step(variant, settings.warmup_rate, settings.warmup_calls, current["remote"], box, uas,
                        warm_settings(), run_dir / "warmup")
        if warm.successful == 0:
            raise RuntimeError(f"warm-up: no call completed ({warm.reason}); {box.tail() if box else ''}")
        settle(box, settings.settle_s)

    def shutdown() -> None:
        box, uas = current["box"], current["uas"]
        if box is not None:
            ladder.box_peak_rss_kib = max(ladder.box_peak_rss_kib or 0, memory_kib(box.tree()))
            # Ours hangs up its calls on SIGTERM; Kamailio ends its workers; Sippy needs no
            # clean stop (and waits long for one).
            box.stop(signal.SIGKILL if target == "sippy" else signal.SIGTERM, grace=3.0)
            for path in box.cleanup:
                shutil.rmtree(path, ignore_errors=True)
        if uas is not None:
            uas.stop(signal.SIGKILL)
        current.update(uas=None, box=None, remote=None)

    def attempt(rate: float, more_to_come: bool) -> Step:
        box, uas = current["box"], current["uas"]
        calls = max(1, round(rate * settings.window_s))
        step_dir = workdir / f"r{rate:g}"
        step = run_step(variant, rate, calls, current["remote"], box, uas, settings, step_dir)
        if not keep:
            shutil.rmtree(step_dir, ignore_errors=True)
        ladder.steps.append(asdict(step))
        log(step_line(target, variant, step))
        if box is not None:
            ladder.box_peak_rss_kib = max(ladder.box_peak_rss_kib or 0, step.box_memory_kib or 0)
        if step.ok and rate >= ladder.sustained_cps:
            ladder.sustained_cps = rate
            ladder.at_sustained = asdict(step)
        if box is not None and not box.alive():
            raise RuntimeError(f"{box.name} exited: {box.tail()}")
        settle(box, settings.settle_s)
        if not step.ok and more_to_come:
            # Does the box still work once the overload is over? A few calls at the warm-up
            # rate tell (not in --quick); then a fresh box, so that every step starts clean.
            if box is not None and not settings.quick:
                probe = run_step(variant, settings.warmup_rate, settings.warmup_calls, current["remote"], box,
                                 uas, warm_settings(), workdir / f"probe-after-{rate:g}")
                recovered = probe.successful >= math.ceil(SUCCESS_FRACTION * probe.calls)
                ladder.recovery.append({"after_rate": rate, "probe_calls": probe.calls,
                                        "probe_completed": probe.successful, "recovered": recovered})
                if not recovered:
                    log(f"  {target:<14} {variant:<9} did not recover: {probe.successful}/{probe.calls} calls "
                        f"at {settings.warmup_rate:g} cps after the {rate:g} cps step")
            shutdown()
            boot()
        return step

    try:
        boot()
        lo, hi = 0.0, None
        rate = settings.start_rate
        while rate <= settings.max_rate * 1.0001:
            # A failure here is followed by more steps only when bisecting (or stepping down).
            if attempt(rate, more_to_come=settings.max_bisect > 0 or lo == 0).ok:
                lo = rate
                rate = rate * settings.factor
            else:
                hi = rate
                break
        down = 0
        while lo == 0 and hi is not None and down < 2:  # the first rate failed: step down
            down += 1
            rate = round(hi / settings.factor)
            if rate < 1:
                break
            if attempt(rate, more_to_come=down < 2).ok:
                lo = rate
            else:
                hi = rate
        if hi is None:
            ladder.capped = True
        else:
            for index in range(settings.max_bisect):
                if lo <= 0 or hi / lo <= 1 + settings.tolerance:
                    break
                middle = round(math.sqrt(lo * hi))
                if middle in (lo, hi):
                    break
                if attempt(middle, more_to_come=index + 1 < settings.max_bisect).ok:
                    lo = middle
                else:
                    hi = middle
    except Exception as error:  # noqa: BLE001 - one target failing must not end the run
        ladder.error = str(error)[:2000]
        log(f"  {target:<14} {variant:<9} ERROR {ladder.error[:300]}")
    finally:
        shutdown()
    if ladder.recovery:
        ladder.recovered_after_overload = all(item["recovered"] for item in ladder.recovery)
    return ladder


# -- report ---------------------------------------------------------------------------------


def table(ladders: list[Ladder]) -> list[str]:
    head = (f"{'target':<14} {'body':<9} {'sustained':>9} {'failed':>6} {'retr':>5} {'180 p50':>8} "
            f"{'180 p99':>8} {'box cpu s':>9} {'ms/call':>7} {'util':>5} {'peak RSS':>9}")
    lines = [head, "-" * len(head)]
    for ladder in ladders:
        if ladder.error and not ladder.at_sustained:
            lines.append(f"{ladder.target:<14} {ladder.variant:<9} error: {ladder.error[:80]}")
            continue
        at = ladder.at_sustained or {}
        ring = at.get("invite_180_ms") or {}

        def fmt(value, spec: str) -> str:  # noqa: ANN001
            return format(value, spec) if value is not None else "-"

        sustained = f"{ladder.sustained_cps:.0f}{'+' if ladder.capped else ''}"
        rss = f"{ladder.box_peak_rss_kib / 1024:.1f} MiB" if ladder.box_peak_rss_kib else "-"
        lines.append(
            f"{ladder.target:<14} {ladder.variant:<9} {sustained:>9} {fmt(at.get('failed'), 'd'):>6} "
            f"{fmt(at.get('retransmissions'), 'd'):>5} {fmt(ring.get('p50'), '.2f'):>8} {fmt(ring.get('p99'), '.2f'):>8} "
            f"{fmt(at.get('box_cpu_s'), '.2f'):>9} {fmt(at.get('box_cpu_ms_per_call'), '.3f'):>7} "
            f"{fmt(at.get('box_util'), '.0%'):>5} {rss:>9}")
    return lines


def ratios(ladders: list[Ladder]) -> dict[str, dict[str, dict[str, float | None]]]:
    """ours/peer for each of our policies, peer and body: sustained rate (higher is better
    for us) and CPU per call at the sustained rate (lower is better for us)."""
    by = {(ladder.target, ladder.variant): ladder for ladder in ladders}
    found: dict[str, dict[str, dict[str, float | None]]] = {}
    for ours in OURS + OPTIONAL_TARGETS:
        for peer in PEERS:
            for variant in VARIANTS:
                a, b = by.get((ours, variant)), by.get((peer, variant))
                if a is None or b is None:
                    continue
                cps = a.sustained_cps / b.sustained_cps if a.sustained_cps and b.sustained_cps else None
                cpu_a = (a.at_sustained or {}).get("box_cpu_ms_per_call")
                cpu_b = (b.at_sustained or {}).get("box_cpu_ms_per_call")
                cpu = cpu_a / cpu_b if cpu_a and cpu_b else None
                # A capped ladder only gives a lower bound of that box's rate.
                bound = None
                if a.capped and not b.capped:
                    bound = "at least"
                elif b.capped and not a.capped:
                    bound = "at most"
                elif a.capped and b.capped:
                    bound = "unknown"
                found.setdefault(f"{ours}/{peer}", {})[variant] = {
                    "cps": round(cps, 3) if cps else None, "cps_bound": bound,
                    "cpu_per_call": round(cpu, 3) if cpu else None}
    return found


def ratio_lines(found: dict) -> list[str]:
    lines = []
    for peer in PEERS:
        parts = []
        for ours in OURS:
            entry = found.get(f"{ours}/{peer}")
            if not entry:
                continue
            cells = []
            for variant in VARIANTS:
                item = entry.get(variant) or {}
                cps, cpu = item.get("cps"), item.get("cpu_per_call")
                mark = {"at least": ">=", "at most": "<=", "unknown": "?"}.get(item.get("cps_bound"), "")
                cells.append(f"{variant} {mark}{cps:.2f}x" if cps else f"{variant} n/a")
                if cpu:
                    cells[-1] += f" (cpu/call {cpu:.2f}x)"
            parts.append(f"{ours.removeprefix('ours-')}: " + ", ".join(cells))
        name = "Sippy" if peer == "sippy" else "Kamailio"
        lines.append(f"ratio ours/{name} (sustained cps): " + ("; ".join(parts) if parts else "n/a"))
    return lines


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows, a coarse ladder: under 3 minutes")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, from {','.join(TARGETS + OPTIONAL_TARGETS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="plain,emergency")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"result file ({DEFAULT_JSON.relative_to(ROOT)})")
    parser.add_argument("--window", type=float, help="seconds of offered load per step")
    parser.add_argument("--hold-ms", type=int, help="call hold between ACK and BYE")
    parser.add_argument("--start-rate", type=float)
    parser.add_argument("--max-rate", type=float)
    parser.add_argument("--factor", type=float, help="ladder step factor")
    parser.add_argument("--max-bisect", type=int, help="bisection steps after the ladder")
    parser.add_argument("--kamailio-children", type=int, help="Kamailio UDP workers (-n)")
    parser.add_argument("--max-p99-ms", type=float,
                        help="also fail a step whose INVITE->180 p99 exceeds this (default: no latency bound)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get / pip install")
    parser.add_argument("--keep", action="store_true", help="keep SIPp/box logs (path printed)")
    args = parser.parse_args(argv)
    known = TARGETS + OPTIONAL_TARGETS
    args.targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    args.variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    bad = [name for name in args.targets if name not in known] + [v for v in args.variants if v not in VARIANTS]
    if bad:
        parser.error(f"unknown target/variant: {', '.join(bad)}")
    return args


def _end_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM (and SIGHUP) end the run like Ctrl-C: the `finally` blocks stop SIPp and the
    box, which run in sessions of their own and would otherwise outlive the script."""
    signal.signal(signum, signal.SIG_IGN)  # a second one does not cut the clean-up short
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _end_on_signal)
    try:
        return _run(args)
    finally:
        Process.stop_all()


def _run(args: argparse.Namespace) -> int:
    settings = quick_settings() if args.quick else Settings()
    for option, name in (("window", "window_s"), ("hold_ms", "hold_ms"), ("start_rate", "start_rate"),
                         ("max_rate", "max_rate"), ("factor", "factor"), ("max_bisect", "max_bisect"),
                         ("kamailio_children", "kamailio_children"), ("max_p99_ms", "max_p99_ms")):
        if getattr(args, option) is not None:
            setattr(settings, name, getattr(args, option))
    unavailable = ensure_tools(args.targets, install=not args.no_install)
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    began = time.monotonic()
    load_before = os.getloadavg()
    base = Path(tempfile.mkdtemp(prefix="cps-bench-"))
    log(f"cps: targets {','.join(args.targets)}; bodies {','.join(args.variants)}; window {settings.window_s:g} s, "
        f"hold {settings.hold_ms} ms, ladder x{settings.factor:g} from {settings.start_rate:g} to "
        f"{settings.max_rate:g} cps, {settings.max_bisect} bisections; {os.cpu_count()} CPUs, "
        f"load {load_before[0]:.2f}")
    ladders: list[Ladder] = []
    try:
        for target in args.targets:
            for variant in args.variants:
                if target in unavailable:
                    ladders.append(Ladder(target, variant, error=unavailable[target]))
                    log(f"  {target:<14} {variant:<9} skipped: {unavailable[target]}")
                    continue
                log(f"== {target} / {variant}")
                ladders.append(run_ladder(target, variant, settings, base, keep=args.keep))
    finally:
        if args.keep:
            log(f"cps: logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    found = ratios(ladders)
    result = {
        "benchmark": "cps",
        "started_at": started_at,
        "duration_s": round(time.monotonic() - began, 1),
        "quick": settings.quick,
        "host": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in os.getloadavg()], "platform": platform.platform()},
        "versions": versions(),
        "settings": asdict(settings) | {"success_fraction": SUCCESS_FRACTION, "service": SERVICE},
        "targets": args.targets,
        "variants": args.variants,
        "results": [asdict(ladder) for ladder in ladders],
        "ratios": found,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    log("")
    for line in table(ladders):
        log(line)
    log(f"('+' = the highest rate tried passed; ms/call = box CPU per completed call at the sustained rate; "
        f"util = box CPU / wall time). JSON: {args.json}  ({result['duration_s']:g} s)")
    for ladder in ladders:
        if ladder.recovered_after_overload is False:
            bad = [item for item in ladder.recovery if not item["recovered"]]
            log(f"NOT RECOVERED {ladder.target}/{ladder.variant}: after an overloaded step it completed "
                + ", ".join(f"{item['probe_completed']}/{item['probe_calls']} (after {item['after_rate']:g} cps)"
                            for item in bad)
                + " probe calls; every following step ran on a restarted box")
    for line in ratio_lines(found):
        log(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
