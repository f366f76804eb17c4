"""Helpers for the B2BUA interop tests: an in-process B2BUA on free ports, SIPp peers that
are always stopped, and a reader of SIPp's -trace_msg log that gives back the exact bytes
each side sent or received (so a test can compare leg A with leg B).

Imported by the tests of this directory as `import b2bua_support` (pytest puts the test's
directory on sys.path; there is no package here).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from b2bua.config import config_from_dict
from b2bua.engine.cdr import read_cdrs
from b2bua.runner import B2buaNode
from b2bua.testbench.sipp import Sipp, SippResult, free_port

SCENARIOS = Path(__file__).parent / "scenarios"
HOST = "127.0.0.1"
PRIMARY, SECONDARY = "ecrc-primary", "ecrc-secondary"


def scenario(name: str) -> Path:
    path = SCENARIOS / f"{name}.xml"
    assert path.exists(), path
    return path


# -- the B2BUA -------------------------------------------------------------------------------


_PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range (32768-60999): no port the kernel
# hands out for bind(0) or an outgoing connection, nor one another suite's free_port() picked


def quiet_port() -> int:
    """A loopback port free for UDP and TCP, outside the ephemeral range, so a test run next
    to others (several suites on one machine) does not race them for the same port."""
    for _ in range(200):
        port = random.randrange(*_PORT_RANGE)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                udp.bind((HOST, port))
                tcp.bind((HOST, port))
        except OSError:
            continue
        return port
    return free_port()


@dataclass
class Ports:
    caller: int  # the B2BUA's profile (udp and tcp on the same number)
    primary: int
    secondary: int

    @classmethod
    def fresh(cls) -> Ports:
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(quiet_port())
        caller, primary, secondary = sorted(ports)
        return cls(caller, primary, secondary)


def node_config(
    tmp_path: Path,
    ports: Ports,
    *,
    trunk_transports: tuple[str, ...] = ("udp",),
    fast_failover_s: float = 1.0,
    primary_health: dict | None = None,
    secondary_health: dict | None = None,
    location_policy: str = "pass",
    strip_variant: str = "full",
    routes: list[dict] | None = None,
) -> dict:
    """A configuration like configs/lab.toml on free loopback ports, short timers, CDR in tmp_path.

    Emergency calls (911) go to group `ecrc` (primary then secondary); `922` with
    `Priority: emergency` goes to `sbc-pair` (round robin over both), as in the lab.
    Probing is off unless a health table is given.
    """
    off = {"enabled": False}
    return {
        "node": {"name": "interop", "cdr_path": str(tmp_path / "cdr.jsonl"), "log_level": "warning"},
        "timers": {"t1_ms": 500},
        "profile": [{
            "name": "certified",
            "listen": [f"udp:{HOST}:{ports.caller}", f"tcp:{HOST}:{ports.caller}"],
            "location_policy": location_policy,
            "strip_variant": strip_variant,
        }],
        "trunk": [
            {"name": PRIMARY, "address": f"{HOST}:{ports.primary}", "transports": list(trunk_transports),
             "fast_failover_s": fast_failover_s, "health": primary_health or off},
            {"name": SECONDARY, "address": f"{HOST}:{ports.secondary}", "transports": list(trunk_transports),
             "fast_failover_s": fast_failover_s, "health": secondary_health or off},
        ],
        "trunk_group": [
            {"name": "ecrc", "strategy": "priority", "trunks": [PRIMARY, SECONDARY]},
            {"name": "sbc-pair", "strategy": "round_robin", "trunks": [PRIMARY, SECONDARY]},
        ],
        "route": [{"pattern": "^922$", "trunk_group": "sbc-pair"}, *(routes or [])],
        "emergency": {"dial_strings": ["911"], "test_numbers": ["933"], "trunk_group": "ecrc"},
    }


@contextlib.asynccontextmanager
async def running_node(config: dict, *, probe: bool = False) -> AsyncIterator[B2buaNode]:
    node = B2buaNode(config_from_dict(config))
    try:
        await node.start(probe=probe)
        yield node
    finally:
        await node.stop()


def cdrs(tmp_path: Path) -> list[dict]:
    return read_cdrs(tmp_path / "cdr.jsonl")


async def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass; True when it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def wait_for_cdrs(tmp_path: Path, count: int, timeout: float = 5.0) -> list[dict]:
    await wait_until(lambda: len(cdrs(tmp_path)) >= count, timeout)
    return cdrs(tmp_path)


# -- SIPp peers ----------------------------------------------------------------------------


def uas(name: str, port: int, *, transport: str = "u1", calls: int = 1000, timeout_s: float = 30.0) -> Sipp:
    """A SIPp UAS (the ECRC side) on `port`; stopped by `peers()` when the test ends."""
    return Sipp(scenario(name), local_port=port, transport=transport, calls=calls, timeout_s=timeout_s)


def uac(name: str, port: int, *, service: str = "911", transport: str = "u1", calls: int = 1,
        rate: float | None = None, timeout_s: float = 15.0) -> Sipp:
    return Sipp(scenario(name), remote=f"{HOST}:{port}", local_port=quiet_port(), service=service,
                transport=transport, calls=calls, rate=rate, timeout_s=timeout_s)


def _port_bound(port: int, transport: str) -> bool:
    """Has some process bound `port` (UDP) or listened on it (TCP)? Read from /proc/net
    rather than by trying to bind it ourselves, which would race SIPp's own bind."""
    udp = not transport.startswith("t")
    for name in (("udp", "udp6") if udp else ("tcp", "tcp6")):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and (udp or state == "0A"):  # 0A: LISTEN
                return True
    return False


@contextlib.asynccontextmanager
async def peers(*servers: Sipp, ready_timeout_s: float = 5.0) -> AsyncIterator[None]:
    """Start SIPp UASes, wait until each has bound its port, and always stop them."""
    try:
        for server in servers:
            await server.start()
        for server in servers:
            bound = await wait_until(lambda: _port_bound(server.local_port, server.transport)
                                     or server._process.returncode is not None, ready_timeout_s, step=0.01)
            if server._process.returncode is not None or not bound:
                # SIPp exits at once when it cannot bind its port (another suite took it): say so.
                await server.stop()
                result = await server.wait(1)
                raise RuntimeError(f"SIPp UAS on {server.address} did not come up: {describe(result)}")
        yield
    finally:
        for server in servers:
            await server.stop()


async def finish(server: Sipp, timeout: float = 5.0) -> Trace:
    """Stop a UAS (if still running) and read what it saw."""
    await server.stop()
    result = await server.wait(timeout)
    return Trace.of(result)


class DropAll(asyncio.DatagramProtocol):
    """A UDP 'trunk' that reads everything and answers nothing (a silent ECRC)."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.datagrams.append(data)

    def count(self, method: str) -> int:
        return sum(1 for data in self.datagrams if data.startswith(method.encode() + b" "))


@contextlib.asynccontextmanager
async def silent_udp(port: int) -> AsyncIterator[DropAll]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(DropAll, local_addr=(HOST, port), family=socket.AF_INET)
    try:
        yield protocol
    finally:
        transport.close()  # the socket itself closes on a later loop turn: wait for it,
        await wait_until(lambda: not _port_bound(port, "u1"), 2.0)  # a UAS may take the port next


# -- SIPp's message log ----------------------------------------------------------------------

_ENTRY = re.compile(
    rb"^-{20,} (?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n"
    rb"(?P<transport>\w+) message (?:(?P<sent>sent) \((?P<slen>\d+) bytes\)|"
    rb"(?P<received>received) \[(?P<rlen>\d+)\] bytes) ?:\n\n",
    re.M,
)


@dataclass
class Traced:
    """One message as SIPp sent or received it, byte for byte."""

    direction: str  # "sent" | "received"
    transport: str
    at: float  # epoch seconds (SIPp's local-time stamp)
    raw: bytes

    @property
    def head(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[0]

    @property
    def start_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("utf-8", "replace")

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/2.0 ")

    @property
    def method(self) -> str | None:
        return self.start_line.split(" ", 1)[0] if self.is_request else None

    @property
    def status(self) -> int | None:
        return None if self.is_request else int(self.start_line.split(" ")[1])

    def headers(self, name: str) -> list[str]:
        compact = {"call-id": "i", "contact": "m", "via": "v", "from": "f", "to": "t",
                   "content-type": "c", "content-length": "l", "supported": "k"}
        names = {name.lower(), compact.get(name.lower(), name.lower())}
        values = []
        for line in self.head.split(b"\r\n")[1:]:
            key, colon, value = line.decode("utf-8", "replace").partition(":")
            if colon and key.strip().lower() in names:
                values.append(value.strip())
        return values

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None

    @property
    def call_id(self) -> str:
        return self.header("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = (self.header("CSeq") or "0 ?").split()
        return int(number), method

    @property
    def body(self) -> bytes:
        """The body as framed by Content-Length (what a parser would take)."""
        rest = self.raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.raw else b""
        length = self.header("Content-Length")
        return rest[: int(length)] if length is not None else rest

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


class Trace(list):
    """Every message of one SIPp run, in order (a list of `Traced`)."""

    @classmethod
    def of(cls, result: SippResult) -> Trace:
        entries: list[Traced] = []
        data = result.messages.encode("utf-8", "surrogateescape")  # CRLFs kept: byte-exact
        if data:
            for match in _ENTRY.finditer(data):
                length = int(match["slen"] or match["rlen"])
                raw = data[match.end(): match.end() + length]
                stamp = datetime.strptime(match["stamp"].decode(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                entries.append(Traced("sent" if match["sent"] else "received", match["transport"].decode(), stamp, raw))
        return cls(entries)

    def requests(self, method: str, direction: str | None = None) -> list[Traced]:
        return [m for m in self if m.method == method and (direction is None or m.direction == direction)]

    def responses(self, status: int | None = None, direction: str | None = None, method: str | None = None) -> list[Traced]:
        return [m for m in self if m.status is not None and (status is None or m.status == status)
                and (direction is None or m.direction == direction) and (method is None or m.cseq[1] == method)]

    def received(self) -> list[Traced]:
        return [m for m in self if m.direction == "received"]

    def statuses(self, direction: str = "received") -> list[int]:
        return [m.status for m in self if m.status is not None and m.direction == direction]

    def first(self, method: str, direction: str) -> Traced:
        found = self.requests(method, direction)
        assert found, f"no {method} {direction} in the trace: {[m.start_line for m in self]}"
        return found[0]

    def distinct_call_ids(self, method: str = "INVITE", direction: str = "received") -> set[str]:
        return {m.call_id for m in self.requests(method, direction)}


def describe(result: SippResult) -> str:
    """What to print when a SIPp run did not end as expected."""
    return (f"exit {result.returncode}\n--- errors\n{result.errors[-3000:]}\n--- stderr\n{result.stderr[-2000:]}"
            f"\n--- messages\n{result.messages[-4000:]}")
