"""Regression: a UDP listener keeps receiving after an ICMP error (b2bua/transport/udp.py,
`UdpEndpoint._rearm_reader`).

With IP_RECVERR set, an ICMP port unreachable for a datagram we sent is queued on the
socket's error queue and the socket polls with POLLERR. libuv (uvloop) stops a poll
handle that reports POLLERR: before the fix, the first unreachable peer left the listener
deaf under uvloop - every later request to it was silently lost. The listener must report
the error against the peer at once (a transport failure for the transaction) and still
receive and answer the next datagram, round after round, on uvloop and on asyncio's loop.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest
import uvloop

from b2bua.sip import Headers, Request, new_call_id, new_tag, parse_message
from b2bua.sip.transaction import Peer, TransactionTerminated, TransportFailure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from core_peers import HOST, CoreUas  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="IP_RECVERR is Linux-only")

LOOPS = {
    "asyncio": lambda main: asyncio.run(main),
    "uvloop": lambda main: uvloop.run(main),
}
ROUNDS = 3


def closed_udp_port() -> int:
    """A UDP port nobody listens on (bound, read, released: a tiny race, fine on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def options_bytes(client_port: int, index: int) -> bytes:
    return (
        f"OPTIONS sip:uas@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{client_port};branch=z9hG4bK-after-icmp-{index}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{HOST}>;tag=p{index}\r\n"
        f"To: <sip:uas@{HOST}>\r\n"
        f"Call-ID: after-icmp-{index}@{HOST}\r\n"
        f"CSeq: {index + 1} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def options_request(uas: CoreUas) -> Request:
    host, port = uas.stack.local_address("udp")
    headers = Headers()
    headers.add("Via", uas.stack.via("udp"))
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<sip:uas@{host}:{port}>;tag={new_tag()}")
    headers.add("To", f"<sip:nobody@{HOST}>")
    headers.add("Call-ID", new_call_id())
    headers.add("CSeq", "1 OPTIONS")
    return Request("OPTIONS", f"sip:nobody@{HOST}", headers)


async def send_to_closed_port(uas: CoreUas) -> tuple[str, float]:
    """Send an OPTIONS from the UAS's listener to a closed port; the transaction's first
    event and how long it took."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[str] = loop.create_future()

    def on_event(event) -> None:  # noqa: ANN001
        if outcome.done():
            return
        if isinstance(event, TransportFailure):
            outcome.set_result("transport failure")
        elif not isinstance(event, TransactionTerminated):
            outcome.set_result(type(event).__name__)

    dead = Peer("udp", HOST, closed_udp_port())
    started = loop.time()
    uas.stack.send_request(options_request(uas), dead, on_event)
    result = await asyncio.wait_for(outcome, 5)
    return result, loop.time() - started


async def after_icmp_scenario(loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    assert ("uvloop" in type(loop).__module__) == (loop_name == "uvloop")
    uas = CoreUas()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    try:
        await uas.start(transports=("udp",))
        listener = uas.listeners["udp"]
        assert listener.udp is not None and listener.udp.errqueue, "IP_RECVERR not enabled"
        client.bind((HOST, 0))
        client_port = client.getsockname()[1]
        target = (HOST, uas.port("udp"))

        for index in range(ROUNDS):
            outcome, elapsed = await send_to_closed_port(uas)
            assert outcome == "transport failure", f"round {index}: {outcome}"
            assert elapsed < 1.0, f"round {index}: ICMP error took {elapsed:.3f} s"  # not Timer F
            # The same listener must still read the next datagram and answer it.
            client.sendto(options_bytes(client_port, index), target)
            data = await asyncio.wait_for(loop.sock_recv(client, 65535), 2)
            reply = parse_message(data)
            assert reply.status == 200, f"round {index}"
            assert reply.call_id == f"after-icmp-{index}@{HOST}"

        # An ICMP error still queued when a request arrives: both are handled in one wake-up.
        outcome_task = asyncio.ensure_future(send_to_closed_port(uas))
        client.sendto(options_bytes(client_port, ROUNDS), target)
        data = await asyncio.wait_for(loop.sock_recv(client, 65535), 2)
        assert parse_message(data).status == 200
        assert (await asyncio.wait_for(outcome_task, 5))[0] == "transport failure"

        assert uas.count("OPTIONS") == ROUNDS + 1
        refused = [error for _, error in uas.stack.transport_errors]
        assert len(refused) == ROUNDS + 1 and all(isinstance(error, ConnectionRefusedError) for error in refused)
    finally:
        client.close()
        await uas.close()


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_udp_listener_still_answers_after_icmp_port_unreachable(loop_name):
    LOOPS[loop_name](asyncio.wait_for(after_icmp_scenario(loop_name), 20))


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_a_listener_with_sends_queued_keeps_receiving_after_an_icmp_error(loop_name):
    # Under load the socket's send buffer fills and datagrams wait for the writer; an ICMP
    # error then comes with both reader and writer registered on the poll handle. libuv
    # stops that handle and uvloop closes it after running our reader, so a re-arm made on
    # the same handle is lost: the listener went deaf after the first overload.
    from b2bua.transport.udp import UdpEndpoint, make_udp_socket

    async def main() -> None:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()
        errors: list[tuple] = []
        endpoint = UdpEndpoint(loop, make_udp_socket(socket.AF_INET, (HOST, 0)),
                               lambda data, address: received.put_nowait(data),
                               lambda address, exc: errors.append((address, exc)))
        port = endpoint.address[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.bind((HOST, 0))
            try:
                for index in range(ROUNDS):
                    dead = (HOST, closed_udp_port())
                    endpoint.sendto(b"to nobody", dead)  # loopback: the ICMP error is queued at once
                    endpoint._enqueue(b"waiting for the writer", dead)  # as when the send buffer is full
                    await asyncio.sleep(0.05)
                    sender.sendto(b"ping %d" % index, (HOST, port))
                    assert await asyncio.wait_for(received.get(), 2) == b"ping %d" % index
            finally:
                endpoint.close()
        assert errors and all(isinstance(exc, ConnectionRefusedError) for _, exc in errors)

    LOOPS[loop_name](main())
