"""The ECRC's record is on disk before its 200 leaves: `b2bua ecrc` runs as a process, one
INVITE comes from a raw UDP socket, and the moment the 200 arrives the ECRC gets SIGKILL
(no shutdown, no checkpoint). The SQLite file must then hold the record.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from b2bua.testbench.sipp import free_port

HOST = "127.0.0.1"


def invite(port: int, local_port: int, call_id: str, *, target: str = "911") -> bytes:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()
    head = (
        f"INVITE sip:{target}@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK-{call_id}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:+14255550100@{HOST}>;tag=dur1\r\n"
        f"To: <sip:{target}@{HOST}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:caller@{HOST}:{local_port}>\r\n"
        "Priority: emergency\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    )
    return head.encode() + sdp


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"b2bua ecrc exited early: {process.stderr.read().decode() if process.stderr else ''}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """Only the process this test started, by its PID."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    if process.stderr is not None:
        process.stderr.close()


def read_status(sock: socket.socket, deadline: float) -> tuple[int, bytes]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no final response in time")
    sock.settimeout(remaining)
    data, _ = sock.recvfrom(65535)
    return int(data.split(b" ", 2)[1]), data


def test_the_record_is_in_the_sqlite_file_when_the_200_arrives_even_if_the_ecrc_dies_at_once(tmp_path: Path):
    db = tmp_path / "ecrc.sqlite"
    sip_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "b2bua.cli", "ecrc", "--name", "primary", "--listen", f"udp:{HOST}:{sip_port}",
         "--db", str(db), "--http", f"{HOST}:{http_port}", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    call_id = "durable-1@test"
    try:
        wait_healthy(f"http://{HOST}:{http_port}", process)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            sock.sendto(invite(sip_port, sock.getsockname()[1], call_id), (HOST, sip_port))
            deadline = time.monotonic() + 10
            status, response = read_status(sock, deadline)
            while status < 200:
                status, response = read_status(sock, deadline)
            os.kill(process.pid, signal.SIGKILL)  # the moment the 200 is here: no clean shutdown
        assert status == 200, response
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    finally:
        stop(process)

    # The writer died without checkpointing: the committed record sits in the WAL.
    assert Path(f"{db}-wal").exists()
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT ecrc, verdict, call_id, record FROM calls").fetchall()
    assert [(ecrc, verdict, found) for ecrc, verdict, found, _ in rows] == [("primary", "no_location", call_id)]
    record = json.loads(rows[0][3])
    assert record["answer"] == "200" and record["transport"] == "UDP" and record["caller_id"] == "+14255550100"

    # `b2bua ecrc calls --db` reads the same file.
    listed = subprocess.run([sys.executable, "-m", "b2bua.cli", "ecrc", "calls", "--db", str(db), "--json"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert [item["call_id"] for item in json.loads(listed.stdout)] == [call_id]


def test_a_933_call_from_a_raw_socket_is_read_back_in_the_record(tmp_path: Path):
    db = tmp_path / "ecrc.sqlite"
    sip_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "b2bua.cli", "ecrc", "--listen", f"udp:{HOST}:{sip_port}", "--db", str(db),
         "--http", f"{HOST}:{http_port}", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(f"http://{HOST}:{http_port}", process)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            sock.sendto(invite(sip_port, sock.getsockname()[1], "t933@test", target="933"), (HOST, sip_port))
            deadline = time.monotonic() + 10
            status, _ = read_status(sock, deadline)
            while status < 200:
                status, _ = read_status(sock, deadline)
        assert status == 200
        with urllib.request.urlopen(f"http://{HOST}:{http_port}/calls", timeout=5) as reply:
            [record] = json.loads(reply.read())
        assert record["is_test"] is True
        assert record["readback"] == "Test call from +14255550100: no location received"
    finally:
        stop(process)
