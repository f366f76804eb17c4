"""The same transport on uvloop, which production uses when installed: its add_reader,
stream and SSL implementations are not asyncio's, so the behaviours that depend on them
(ICMP error queue, framing, TLS verification) are run again here."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from b2bua.sip import make_response, parse_message
from b2bua.transport import Peer, TlsPeerConfig, Transport, client_context, server_context
from b2bua.transport.testing import Recorder

uvloop = pytest.importorskip("uvloop")

LOOP = "127.0.0.1"


def request_bytes(call_id: str, transport: str = "UDP", body: bytes = b"") -> bytes:
    return (
        (
            "INVITE sip:ecrc@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} caller.invalid;branch=z9hG4bKuv;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:c@127.0.0.1>;tag=1\r\nTo: <sip:ecrc@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((LOOP, 0))
        return probe.getsockname()[1]


def run(scenario) -> None:
    uvloop.run(asyncio.wait_for(scenario(), 10))


def test_uvloop_udp_round_trip_and_icmp_error_per_peer():
    async def scenario():
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        client_rec, server_rec = Recorder(), Recorder()
        client = Transport(client_rec.on_message, client_rec.on_transport_error)
        server = Transport(server_rec.on_message, server_rec.on_transport_error)
        try:
            await client.listen("udp", LOOP, 0)
            server_l = await server.listen("udp", LOOP, 0)
            loop = asyncio.get_running_loop()
            dead = Peer("udp", LOOP, free_port(socket.SOCK_DGRAM))
            started = loop.time()
            client.send(request_bytes("dead"), dead)
            client.send(request_bytes("alive", body=b"x" * 9000), Peer("udp", LOOP, server_l.port))
            peer, error = await client_rec.next_error(1)
            assert peer == dead and isinstance(error, ConnectionRefusedError)
            assert loop.time() - started < 0.1
            request, source, _ = await server_rec.next_message()
            assert request.call_id == "alive" and len(request.body) == 9000
            assert request.top_via.params.get("received") == LOOP
            assert request.top_via.params.get("rport") == str(source.port)
            server.send(make_response(request, 200), source)
            response, _, _ = await client_rec.next_message()
            assert response.status == 200
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_uvloop_tcp_framing_inbound_response_and_refused_connect():
    async def scenario():
        server_rec = Recorder()
        server = Transport(server_rec.on_message, server_rec.on_transport_error)
        client_rec = Recorder()
        client = Transport(client_rec.on_message, client_rec.on_transport_error)
        try:
            listener = await server.listen("tcp", LOOP, 0)
            reader, writer = await asyncio.open_connection(LOOP, listener.port)
            data = request_bytes("a", "TCP", b"body") + b"\r\n" + request_bytes("b", "TCP")
            for start in range(0, len(data), 50):
                writer.write(data[start : start + 50])
                await writer.drain()
            first, peer, _ = await server_rec.next_message()
            second, _, _ = await server_rec.next_message()
            assert (first.call_id, first.body, second.call_id) == ("a", b"body", "b")
            server.send(make_response(first, 200), peer)
            reply = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert parse_message(reply).status == 200
            writer.write(b"\r\n\r\n")
            assert await asyncio.wait_for(reader.read(10), 2) == b"\r\n"
            writer.close()

            dead = Peer("tcp", LOOP, free_port(socket.SOCK_STREAM))
            client.send(request_bytes("x", "TCP"), dead)
            peer, error = await client_rec.next_error(1)
            assert peer == dead and isinstance(error, ConnectionRefusedError)
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_uvloop_tls_verification(tmp_path):
    from test_transport_tls import make_certificate

    cert, key = make_certificate(tmp_path)

    async def scenario():
        server_rec = Recorder()
        server = Transport(server_rec.on_message, server_rec.on_transport_error)
        try:
            listener = await server.listen("tls", LOOP, 0, server_context(str(cert), str(key)))
            target = Peer("tls", LOOP, listener.port)

            strict_rec = Recorder()
            strict = Transport(strict_rec.on_message, strict_rec.on_transport_error)
            strict.send(request_bytes("strict", "TLS"), target)
            peer, error = await strict_rec.next_error()
            assert peer == target and isinstance(error, ssl.SSLCertVerificationError)
            await strict.close()

            trusting_rec = Recorder()
            config = TlsPeerConfig(context=client_context(cafile=str(cert)))
            trusting = Transport(trusting_rec.on_message, trusting_rec.on_transport_error, tls_peers={target: config})
            trusting.send(request_bytes("trusted", "TLS"), target)
            request, source, _ = await server_rec.next_message()
            assert request.call_id == "trusted"
            server.send(make_response(request, 200), source)
            response, _, _ = await trusting_rec.next_message()
            assert response.status == 200
            await trusting.close()
        finally:
            await server.close()

    run(scenario)
