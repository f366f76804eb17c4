"""`b2bua run` with `node.workers = 2`: two forked workers share the listening port
(SO_REUSEPORT), each names its own port in Via and Contact, so every message of a call
reaches the worker that holds the call. Real processes, SIPp peers, loopback only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

import b2bua_support as bs

pytestmark = pytest.mark.sipp

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, ports: bs.Ports, workers: int = 2) -> Path:
    config = bs.node_config(tmp_path, ports)
    config["node"]["workers"] = workers
    config["node"]["log_level"] = "info"
    config["profile"][0]["listen"] = [f"udp:{bs.HOST}:{ports.caller}"]
    lines = []
    for key, value in config.items():  # a small TOML writer: tables and arrays of tables
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{name} = {json.dumps(item)}" for name, item in value.items()]
        else:
            for entry in value:
                lines.append(f"[[{key}]]")
                for name, item in entry.items():
                    if isinstance(item, dict):
                        inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in item.items())
                        lines.append(f"{name} = {{ {inner} }}")
                    else:
                        lines.append(f"{name} = {json.dumps(item)}")
    path = tmp_path / "workers.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Node:
    """`b2bua run --config PATH` as a child process, started and stopped by its PID."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Node:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import sys; from b2bua.cli import main; sys.exit(main())",
                "run", "--config", str(self.config), stdout=log, stderr=log, env=env)
        ready = await bs.wait_until(lambda: self.log_text().count('"node.running"') >= 2
                                    or self.process.returncode is not None, 15)
        assert ready and self.process.returncode is None, self.log_text()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, name: str) -> list[dict]:
        found = []
        for line in self.log_text().splitlines():
            if f'"{name}"' in line:
                found.append(json.loads(line))
        return found


def worker_ports(node: Node) -> dict[int, set[int]]:
    ports: dict[int, set[int]] = {}
    for event in node.events("transport.listening"):
        ports.setdefault(event["worker"], set()).add(event["port"])
    return ports


async def test_two_workers_share_the_port_and_each_completes_its_own_calls(tmp_path):
    ports = bs.Ports.fresh()
    config = write_config(tmp_path, ports)
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=40)
    async with Node(config, tmp_path / "node.log") as node, bs.peers(primary):
        # `-t un`: every call from its own source port, as many phones would: the kernel
        # hashes each sender to one worker.
        caller = await bs.uac("b2bua_uac_call", ports.caller, transport="un", calls=40, rate=20).run()
        assert caller.returncode == 0, bs.describe(caller)
        records = await bs.wait_for_cdrs(tmp_path, 40)
        assert node.process.returncode is None
    assert node.process.returncode == 0, node.log_text()
    assert len(records) == 40
    assert all(record["final_status"] == 200 and record["disconnect_side"] == "caller" for record in records)
    by_worker = {worker: sum(record["worker"] == worker for record in records) for worker in (0, 1)}
    assert by_worker[0] > 0 and by_worker[1] > 0, by_worker
    # Each worker bound the shared port and one of its own.
    shared = {worker: ports_seen for worker, ports_seen in worker_ports(node).items()}
    assert all(ports.caller in seen and len(seen) == 2 for seen in shared.values()), shared


async def test_a_callee_hang_up_reaches_the_worker_that_holds_the_call(tmp_path):
    # The ECRC's BYE goes to the Contact leg B carried: the worker's own port, not the
    # shared one (where the kernel could hand it to the other worker, which knows no call).
    ports = bs.Ports.fresh()
    config = write_config(tmp_path, ports)
    primary = bs.uas("b2bua_uas_bye", ports.primary, calls=12)
    async with Node(config, tmp_path / "node.log") as node, bs.peers(primary):
        caller = await bs.uac("b2bua_uac_wait_bye", ports.caller, transport="un", calls=12, rate=10).run()
        assert caller.returncode == 0, bs.describe(caller)
        records = await bs.wait_for_cdrs(tmp_path, 12)
        own_ports = {port for seen in worker_ports(node).values() for port in seen} - {ports.caller}
    trace = await bs.finish(primary)
    assert len(records) == 12
    assert all(record["disconnect_side"] == "callee" for record in records), [r["disconnect_reason"] for r in records]
    assert {record["worker"] for record in records} == {0, 1}
    contacts = {invite.header("Contact") for invite in trace.requests("INVITE", "received")}
    assert all(any(f":{port}" in contact for port in own_ports) for contact in contacts), (contacts, own_ports)
    assert not any(f":{ports.caller}" in contact for contact in contacts)


async def test_responses_leave_from_the_shared_port_the_request_was_sent_to(tmp_path):
    # RFC 3581 §4: the response goes out from the address and port the request arrived
    # on; a NAT in front of the caller only lets that back in.
    ports = bs.Ports.fresh()
    config = write_config(tmp_path, ports)
    async with Node(config, tmp_path / "node.log"):
        loop = asyncio.get_running_loop()
        for attempt in range(8):  # several source ports, so both workers answer some
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind((bs.HOST, 0))
                probe.setblocking(False)
                port = probe.getsockname()[1]
                await loop.sock_sendto(probe, (
                    f"OPTIONS sip:{bs.HOST}:{ports.caller} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {bs.HOST}:{port};branch=z9hG4bKw{attempt};rport\r\n"
                    f"From: <sip:ms@{bs.HOST}:{port}>;tag=w{attempt}\r\nTo: <sip:{bs.HOST}:{ports.caller}>\r\n"
                    f"Call-ID: workers-{attempt}@{bs.HOST}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n").encode(), (bs.HOST, ports.caller))
                answer, source = await asyncio.wait_for(loop.sock_recvfrom(probe, 65535), 3)
            assert answer.startswith(b"SIP/2.0 200 ")
            assert source == (bs.HOST, ports.caller)


async def test_a_worker_that_dies_stops_the_node_with_an_error(tmp_path):
    ports = bs.Ports.fresh()
    config = write_config(tmp_path, ports)
    async with Node(config, tmp_path / "node.log") as node:
        pids = node.events("node.workers_started")[0]["pids"]
        os.kill(pids[0], signal.SIGKILL)
        await asyncio.wait_for(node.process.wait(), 10)
        assert node.process.returncode not in (0, None)
        assert node.events("node.worker_died")
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


async def test_sigterm_stops_every_worker_cleanly(tmp_path):
    ports = bs.Ports.fresh()
    config = write_config(tmp_path, ports, workers=3)
    log = tmp_path / "node.log"
    node = Node(config, log)
    async with node:
        assert node.log_text().count('"node.running"') >= 2
        await bs.wait_until(lambda: node.log_text().count('"node.running"') == 3, 10)
        pids = node.events("node.workers_started")[0]["pids"]
        node.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(node.process.wait(), 10)
    assert node.process.returncode == 0, node.log_text()
    assert len(node.events("node.stopped")) == 3
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
