"""`NetLab`: the whole lab in network namespaces (topology + processes), and its teardown.

```python
with NetLab(run_dir) as lab:           # namespaces, bridges, veths; ECRCs, PSTN gateway, B2BUA
    outcomes = lab.call("caller", count=3, style="lync")
    lab.records("ecrc-primary")        # what the ECRC recorded (its SQLite store)
    lab.set_link("ecrc-primary", up=False)
# everything is gone here, also after an exception or Ctrl-C
```

Teardown runs from `close()`, which `__exit__`, an atexit hook and a SIGTERM/SIGHUP
handler all call (it is idempotent, and signals are held off while it runs): processes
are stopped by pid (SIGTERM, then SIGKILL), shapers stopped, then the namespaces deleted,
which deletes every veth and both bridges with them.
"""

from __future__ import annotations

import atexit
import json
import signal
import sys
import threading
import time
from pathlib import Path

from ..testbench.store import CallStore
from .labconfig import ECRC_HTTP_PORT, PSTN_HTTP_PORT, SIP_PORT, Variant, write_b2bua_config
from .supervisor import LabProcess, Supervisor, log_events, tail
from .topology import HOSTS, NetlabError, Topology, host_spec

ECRC_NAMES = {"ecrc-primary": "primary", "ecrc-secondary": "secondary"}
PSTN_NAME = "branch-gw"


class NetLab:
    def __init__(self, run_dir: Path | str, *, tag: str | None = None, python: str = sys.executable) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.topology = Topology(run_dir=self.run_dir) if tag is None else Topology(tag=tag, run_dir=self.run_dir)
        self.supervisor = Supervisor(self.run_dir)
        self.python = python
        self.variant: Variant | None = None
        self.b2bua_config_path: Path | None = None
        self.closed = False
        self._jobs = 0
        self._old_handlers: dict[int, object] = {}
        self._atexit_registered = False

    @property
    def tag(self) -> str:
        return self.topology.tag

    # -- life cycle ------------------------------------------------------------------------
    def start(self, variant: Variant = Variant(), *, b2bua: bool = True) -> NetLab:
        """Build the topology and start the ECRCs, the PSTN gateway and (unless `b2bua` is
        False) the B2BUA. Any failure tears down what was made, then propagates."""
        self.closed = False
        self._install_cleanup()
        try:
            self.topology.build()
            self.start_bench()
            if b2bua:
                self.start_b2bua(variant)
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> NetLab:
        if not self.topology.built:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start_bench(self) -> None:
        """The mock ECRCs (UDP and TCP on 5060, HTTP API on 8070) and the PSTN gateway."""
        for role, name in ECRC_NAMES.items():
            address = host_spec(role).address
            self.supervisor.start(role, self.topology.netns(role), [
                *self._b2bua_cli(), "ecrc", "--name", name,
                "--listen", f"udp:{address}:{SIP_PORT}", "--listen", f"tcp:{address}:{SIP_PORT}",
                "--db", str(self.db_path(role)), "--http", f"{address}:{ECRC_HTTP_PORT}",
            ], ready_event=None)
        address = host_spec("pstn").address
        self.supervisor.start("pstn", self.topology.netns("pstn"), [
            *self._b2bua_cli(), "pstn", "--name", PSTN_NAME,
            "--listen", f"udp:{address}:{SIP_PORT}", "--listen", f"tcp:{address}:{SIP_PORT}",
            "--db", str(self.db_path("pstn")), "--http", f"{address}:{PSTN_HTTP_PORT}",
        ], ready_event=None)
        from .supervisor import wait_for_line

        for role, event in (("ecrc-primary", "ecrc.ready"), ("ecrc-secondary", "ecrc.ready"), ("pstn", "pstn.ready")):
            process = self.supervisor.processes[role]
            wait_for_line(process.log_path, event, 20.0, process.process)

    def start_b2bua(self, variant: Variant = Variant(), *, timeout: float = 20.0) -> LabProcess:
        """(Re)start the B2BUA with this variant of the lab configuration."""
        self.stop_b2bua()
        self.variant = variant
        self.b2bua_config_path = write_b2bua_config(self.run_dir / "b2bua.toml", self.run_dir, variant)
        cdr = self.run_dir / "cdr.jsonl"
        if cdr.exists():  # keep the CDRs of the previous run beside the logs (b2bua.N.log)
            number = 1
            while (self.run_dir / f"cdr.{number}.jsonl").exists():
                number += 1
            cdr.rename(self.run_dir / f"cdr.{number}.jsonl")
        return self.supervisor.start("b2bua", self.topology.netns("b2bua"), [
            *self._b2bua_cli(), "run", "--config", str(self.b2bua_config_path),
        ], ready_event="node.running", timeout=timeout)

    def stop_b2bua(self) -> None:
        if "b2bua" in self.supervisor.processes:
            self.supervisor.stop("b2bua")

    def close(self) -> list[str]:
        """Stop every process, remove every namespace. Returns what is left (should be [])."""
        if self.closed:
            return self.leftovers()
        blocked = self._block_signals()
        try:
            for role in list(self.topology.impairments):
                try:
                    self.topology.clear_impairment(role)
                except NetlabError:
                    pass
            self.supervisor.stop_all()
            # Anything still inside a lab namespace was started by this lab (nobody else
            # enters them): end it by its pid before the namespace goes.
            self.topology.kill_inside()
            self.topology.remove()
            self.closed = True
        finally:
            self._restore_handlers()
            self._unblock_signals(blocked)
        return self.leftovers()

    def leftovers(self) -> list[str]:
        found = self.topology.leftovers()
        found += [f"process {pid}" for pid in self.supervisor.running_pids()]
        return found

    # -- cleanup on exit, SIGTERM and SIGHUP -----------------------------------------------------
    def _install_cleanup(self) -> None:
        if not self._atexit_registered:
            atexit.register(self.close)
            self._atexit_registered = True
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        # Raise in the main thread: the `with`/`finally` blocks and pytest's teardown run,
        # as they do for Ctrl-C (SIGINT -> KeyboardInterrupt).
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    def _restore_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._old_handlers.clear()

    @staticmethod
    def _block_signals() -> set[int] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})

    @staticmethod
    def _unblock_signals(previous: set[int] | None) -> None:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    # -- driving the lab ---------------------------------------------------------------------------
    def _b2bua_cli(self) -> list[str]:
        return [self.python, "-m", "b2bua.cli"]

    def db_path(self, role: str) -> Path:
        return self.run_dir / f"{role}.sqlite"

    def netns(self, role: str) -> str:
        return self.topology.netns(role)

    def address(self, role: str) -> str:
        return host_spec(role).address

    def call_argv(self, *, to: str = "911", count: int = 1, rate: float = 5.0, style: str = "rfc",
                  transport: str = "udp", timeout: float = 20.0, origin: str = "caller", extra: tuple[str, ...] = ()
                  ) -> list[str]:
        return [*self._b2bua_cli(), "call", f"{self.address('b2bua')}:{SIP_PORT}", "--bind", self.address(origin),
                "--to", to, "--count", str(count), "--rate", str(rate), "--style", style,
                "--transport", transport, "--timeout", str(timeout), "--json", "--log-level", "warning", *extra]

    def start_calls(self, origin: str = "caller", **options: object) -> LabProcess:
        """Start `b2bua call --json` in the `origin` host's namespace; `finish_calls` reads it."""
        self._jobs += 1
        return self.supervisor.start_job(f"calls-{self._jobs}-{origin}", self.netns(origin),
                                         self.call_argv(origin=origin, **options))  # type: ignore[arg-type]

    def finish_calls(self, job: LabProcess, timeout: float) -> list[dict]:
        done = self.supervisor.finish_job(job, timeout)
        try:
            return json.loads(done.stdout)
        except ValueError:
            raise NetlabError(f"{job.name} printed no JSON (exit {done.returncode}):\n{done.stdout[-2000:]}\n"
                              f"{tail(job.log_path)}") from None

    def call(self, origin: str = "caller", *, timeout: float | None = None, **options: object) -> list[dict]:
        """Place calls from a host and return the caller's outcomes (`b2bua call --json`)."""
        count = int(options.get("count", 1))  # type: ignore[arg-type]
        rate = float(options.get("rate", 5.0))  # type: ignore[arg-type]
        answer_timeout = float(options.get("timeout", 20.0))  # type: ignore[arg-type]
        bound = timeout if timeout is not None else count / rate + answer_timeout + 20.0
        return self.finish_calls(self.start_calls(origin, **options), bound)

    def records(self, role: str) -> list[dict]:
        """Every record of an ECRC (`ecrc-primary`, `ecrc-secondary`) or of the PSTN gateway
        (`pstn`), oldest first, read from its SQLite store."""
        path = self.db_path(role)
        if not path.exists():
            return []
        store = CallStore(path)
        try:
            return list(reversed(store.list(limit=10_000)))
        finally:
            store.close()

    def cdrs(self) -> list[dict]:
        path = self.run_dir / "cdr.jsonl"
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except OSError:
            return []

    def cdr_of(self, outcome: dict, wait_s: float = 5.0) -> dict | None:
        """The B2BUA's CDR of a caller outcome (by the caller's Call-ID); CDRs are written
        when a call ends, so wait a little for it."""
        deadline = time.monotonic() + wait_s
        while True:
            for record in self.cdrs():
                if record.get("a_call_id") == outcome["call_id"]:
                    return record
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def b2bua_events(self, event: str | None = None) -> list[dict]:
        process = self.supervisor.processes.get("b2bua")
        if process is None:
            return []
        items = log_events(process.log_path)
        return items if event is None else [item for item in items if item.get("event") == event]

    def set_link(self, role: str, up: bool) -> None:
        self.topology.set_link(role, up)

    def set_wan(self, up: bool) -> None:
        self.topology.set_wan(up)

    def describe(self) -> str:
        lines = [f"lab {self.tag}: run directory {self.run_dir}"]
        for host in HOSTS:
            lines.append(f"  {host.role:<15} {host.address:<12} netns {self.netns(host.role)}")
        lines.append(f"  WAN link: ip -n {self.netns('sw')} link set {self.topology.wan_if} down|up")
        return "\n".join(lines)
