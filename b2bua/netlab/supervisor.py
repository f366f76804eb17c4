"""Processes of the lab: started inside a namespace, watched, always stopped by their pid.

Each process runs as `ip netns exec <ns> <argv>` (ip execs the command, so the pid is the
program's own), in its own session (a Ctrl-C on the terminal reaches the lab, which stops
its processes in order, not every process at once), with its stdout and stderr in a log
file. When the process that started them dies, even by SIGKILL, the kernel sends them
SIGTERM (PR_SET_PDEATHSIG), so a killed test run leaves no SIP process behind.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .topology import NetlabError

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - not Linux / no libc: the lab's own teardown still stops it
        pass


def spawn(netns: str, argv: Sequence[str], log_path: Path, *, stdout_path: Path | None = None) -> subprocess.Popen:
    """Start `argv` inside namespace `netns`; stderr (and stdout unless `stdout_path`) go to
    `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    out = open(stdout_path, "wb") if stdout_path else log  # noqa: SIM115
    # PR_SET_PDEATHSIG follows the *thread* that forked: only ask for it from the main thread,
    # or a child would be killed when a worker thread ends.
    main_thread = threading.current_thread() is threading.main_thread()
    try:
        return subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=log,
            start_new_session=True, preexec_fn=_die_with_parent if main_thread else None,
        )
    finally:
        log.close()
        if out is not log:
            out.close()


def stop_process(process: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """SIGTERM to this pid, then SIGKILL after `timeout`; reaps it. Returns its exit status."""
    if process.poll() is not None:
        return process.returncode
    try:
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    except ProcessLookupError:
        return process.poll()


def log_events(path: Path) -> list[dict]:
    """The JSON objects of a structlog log file (other lines skipped)."""
    events = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return events
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_line(path: Path, event: str, timeout: float, process: subprocess.Popen | None = None,
                  predicate: Callable[[dict], bool] | None = None) -> dict:
    """Wait until the log has an event named `event` (and matching `predicate`)."""
    deadline = time.monotonic() + timeout
    while True:
        for item in log_events(path):
            if item.get("event") == event and (predicate is None or predicate(item)):
                return item
        if process is not None and process.poll() is not None:
            raise NetlabError(f"{path.name}: process exited with {process.returncode} before {event!r}:\n{tail(path)}")
        if time.monotonic() >= deadline:
            raise NetlabError(f"{path.name}: no {event!r} within {timeout:g} s:\n{tail(path)}")
        time.sleep(0.05)


@dataclass
class LabProcess:
    name: str
    netns: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def events(self, event: str | None = None) -> list[dict]:
        items = log_events(self.log_path)
        return items if event is None else [item for item in items if item.get("event") == event]


@dataclass
class Supervisor:
    """Every process the lab started, by name; stop() and stop_all() end them by pid."""

    log_dir: Path
    processes: dict[str, LabProcess] = field(default_factory=dict)
    started_pids: list[int] = field(default_factory=list)  # every pid ever started, for the leftover check

    def start(self, name: str, netns: str, argv: Sequence[str], *, ready_event: str | None = None,
              timeout: float = 15.0) -> LabProcess:
        if name in self.processes and self.processes[name].alive():
            raise NetlabError(f"{name} is already running (pid {self.processes[name].pid})")
        log_path = self.log_dir / f"{name}.log"
        if log_path.exists():  # an earlier run of the same process (the B2BUA, restarted): keep its log
            number = 1
            while (self.log_dir / f"{name}.{number}.log").exists():
                number += 1
            log_path.rename(self.log_dir / f"{name}.{number}.log")
        process = spawn(netns, argv, log_path)
        self.started_pids.append(process.pid)
        lab_process = LabProcess(name, netns, list(argv), log_path, process)
        self.processes[name] = lab_process
        if ready_event is not None:
            try:
                wait_for_line(log_path, ready_event, timeout, process)
            except BaseException:
                self.stop(name)
                raise
        return lab_process

    def run(self, name: str, netns: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
        """Run a command in a namespace to its end (bounded: killed after `timeout`)."""
        process = self.start_job(name, netns, argv)
        return self.finish_job(process, timeout)

    def start_job(self, name: str, netns: str, argv: Sequence[str]) -> LabProcess:
        """A command whose stdout matters (the caller's JSON): stdout to `<name>.out`."""
        log_path = self.log_dir / f"{name}.log"
        out_path = self.log_dir / f"{name}.out"
        process = spawn(netns, argv, log_path, stdout_path=out_path)
        self.started_pids.append(process.pid)
        job = LabProcess(name, netns, list(argv), log_path, process)
        self.processes[name] = job
        return job

    def finish_job(self, job: LabProcess, timeout: float) -> subprocess.CompletedProcess:
        try:
            code = job.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(job.process, 2.0)
            raise NetlabError(f"{job.name} did not finish within {timeout:g} s:\n{tail(job.log_path)}") from None
        out = (self.log_dir / f"{job.name}.out").read_text(errors="replace")
        return subprocess.CompletedProcess(job.argv, code, out, job.log_path.read_text(errors="replace"))

    def stop(self, name: str, timeout: float = 5.0) -> int | None:
        lab_process = self.processes.get(name)
        if lab_process is None:
            return None
        return stop_process(lab_process.process, timeout)

    def stop_all(self, timeout: float = 5.0) -> None:
        """SIGTERM to every live process at once, then wait for each (SIGKILL the stubborn)."""
        live = [item for item in self.processes.values() if item.alive()]
        for item in live:
            try:
                item.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for item in live:
            try:
                item.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                item.process.kill()
                try:
                    item.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass

    def running_pids(self) -> list[int]:
        """Pids this supervisor started that still exist (a zombie counts as gone)."""
        alive = []
        for pid in self.started_pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                alive.append(pid)
        return alive

