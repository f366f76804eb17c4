"""SIPp (Debian `sip-tester`) as a protocol peer: started, bounded in time, judged by exit code.

SIPp is a real peer for tests and benchmarks, never a fuzz target (interop notes). Its
exit code is what matters for a UAC: 0 all calls succeeded, 1 some failed, 97/99 no call
or stopped early; a UAS's exit code is not meaningful for mocks (receive timeouts count
as failed calls), so callers judge a UAS by what the other side saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SIPP = "sipp"


def sipp_available() -> bool:
    return shutil.which(SIPP) is not None


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP right now (tests only: a small race is acceptable)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                    tcp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    messages: str = ""  # the -trace_msg log, when asked for (line ends kept as SIPp wrote them)
    errors: str = ""  # the -trace_err log

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Sipp:
    """One SIPp process.

    `scenario`: a path to an XML scenario, or a built-in name (`uac`, `uas`) passed as -sn.
    `remote`: `host:port` to call (UAC); None for a UAS. `transport`: `u1` (UDP, one socket)
    or `t1` (TCP, one connection). `keys`: -key NAME VALUE pairs for `[NAME]` in scenarios.
    """

    scenario: str | Path
    remote: str | None = None
    local_port: int = 0
    local_ip: str = "127.0.0.1"
    transport: str = "u1"
    calls: int = 1
    rate: float | None = None
    rate_period_ms: int | None = None
    service: str | None = None  # -s: the user part of the Request-URI
    keys: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    timeout_s: float = 30.0
    trace_messages: bool = True
    inf_files: list[str | Path] = field(default_factory=list)
    workdir: Path | None = None
    _process: asyncio.subprocess.Process | None = None
    _own_workdir: bool = False

    def __post_init__(self) -> None:
        if not self.local_port:
            self.local_port = free_port()
        self._own_workdir = self.workdir is None  # removed once the logs are read
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="sipp-"))

    @property
    def address(self) -> str:
        return f"{self.local_ip}:{self.local_port}"

    def argv(self) -> list[str]:
        argv = [SIPP]
        scenario = str(self.scenario)
        if scenario in ("uac", "uas", "regexp", "branchc", "branchs", "uac_pcap", "3pcc-A", "3pcc-B"):
            argv += ["-sn", scenario]
        else:
            argv += ["-sf", str(Path(scenario).resolve())]
        if self.remote:
            argv.append(self.remote)
        argv += ["-i", self.local_ip, "-p", str(self.local_port), "-t", self.transport, "-m", str(self.calls),
                 "-nostdin", "-timeout", f"{int(self.timeout_s)}s", "-timeout_error", "-trace_err",
                 "-deadcall_wait", "0", "-max_socket", "64"]
        if self.rate is not None:
            argv += ["-r", f"{self.rate:g}"]
            if self.rate_period_ms:
                argv += ["-rp", str(self.rate_period_ms)]
        if self.service:
            argv += ["-s", self.service]
        if self.trace_messages:
            argv.append("-trace_msg")
        for name, value in self.keys.items():
            argv += ["-key", name, str(value)]
        for inf in self.inf_files:
            argv += ["-inf", str(Path(inf).resolve())]
        return argv + list(self.extra)

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self.argv(), cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )

    async def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to end (bounded); kill it when the bound passes."""
        assert self._process is not None, "start() first"
        limit = timeout if timeout is not None else self.timeout_s + 10
        try:
            stdout, stderr = await asyncio.wait_for(self._process.communicate(), limit)
        except asyncio.TimeoutError:
            await self.stop()
            stdout, stderr = await self._process.communicate()
        return self._result(stdout, stderr)

    async def stop(self) -> None:
        """End SIPp (its own process group only): SIGUSR1 asks it to quit, SIGKILL if it won't."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        # One SIGUSR1 asks SIPp to stop once its calls end; a second one forces the exit
        # (with its logs written), which a plain SIGKILL would lose.
        for _ in range(2):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGUSR1)
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(process.wait(), 3)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def run(self, timeout: float | None = None) -> SippResult:
        await self.start()
        return await self.wait(timeout)

    def _result(self, stdout: bytes, stderr: bytes) -> SippResult:
        assert self._process is not None and self.workdir is not None
        messages = "".join(_read(path) for path in self.workdir.glob("*_messages.log"))
        errors = "".join(_read(path) for path in self.workdir.glob("*_errors.log"))
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return SippResult(self._process.returncode if self._process.returncode is not None else -1,
                          stdout.decode(errors="replace"), stderr.decode(errors="replace"), self.workdir,
                          messages, errors)


def _read(path: Path) -> str:
    """A SIPp log as text with its CRLFs kept, so bodies in it stay byte-comparable."""
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as file:
        return file.read()
