"""The transport over UDP on loopback: real sockets, port 0, every wait bounded."""

from __future__ import annotations

import asyncio
import socket

import pytest

from b2bua.sip import Limits, Request, Response, make_response, parse_message
from b2bua.transport import Peer, Transport
from b2bua.transport.testing import Recorder

LOOP = "127.0.0.1"


def request_bytes(
    method: str = "OPTIONS",
    *,
    call_id: str = "call-1@test",
    via: str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest1",
    body: bytes = b"",
    extra: str = "",
    cseq_method: str | None = None,
) -> bytes:
    head = (
        f"{method} sip:ecrc@127.0.0.1 SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=abc\r\n"
        "To: <sip:ecrc@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {cseq_method or method}\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def free_udp_port(host: str = LOOP) -> int:
    """A port nobody listens on: bind, note, close (the kernel will answer port unreachable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


async def raw_udp(host: str = LOOP) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


async def raw_recv(sock: socket.socket, timeout: float = 2.0) -> tuple[bytes, tuple]:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), timeout)


async def pair(transport_kwargs: dict | None = None, host: str = LOOP):
    """Two transports, each with one UDP listener: (ua, ua_recorder, ua_listener, server, ...)."""
    kwargs = transport_kwargs or {}
    client_recorder, server_recorder = Recorder(), Recorder()
    client = Transport(client_recorder.on_message, client_recorder.on_transport_error)
    server = Transport(server_recorder.on_message, server_recorder.on_transport_error, **kwargs)
    client_listener = await client.listen("udp", host, 0)
    server_listener = await server.listen("udp", host, 0)
    return client, client_recorder, client_listener, server, server_recorder, server_listener


async def test_udp_request_and_response_round_trip():
    client, client_rec, client_l, server, server_rec, server_l = await pair()
    try:
        assert client_l.port != 0 and server_l.port != 0
        request = parse_message(request_bytes("INVITE", via=f"SIP/2.0/UDP 127.0.0.1:{client_l.port};branch=z9hG4bK1"))
        client.send(request, Peer("udp", LOOP, server_l.port))

        received, peer, listener = await server_rec.next_message()
        assert isinstance(received, Request) and received.method == "INVITE"
        assert peer == Peer("udp", LOOP, client_l.port)  # the source of the datagram
        assert listener is server_l

        server.send(make_response(received, 200, to_tag="t1"), peer)
        response, from_peer, _ = await client_rec.next_message()
        assert isinstance(response, Response) and response.status == 200
        assert response.call_id == "call-1@test"
        assert from_peer == Peer("udp", LOOP, server_l.port)
        assert client_rec.errors.empty() and server_rec.errors.empty()
    finally:
        await client.close()
        await server.close()


@pytest.mark.parametrize("body_size", [9 * 1024, 60 * 1024])
async def test_udp_large_invite_is_received_whole(body_size):
    # RFC 3261 §18.1.1: datagrams up to 65,535 bytes must be accepted (sippy reads 8,192).
    client, _, _, server, server_rec, server_l = await pair()
    try:
        line = b"a=x-pad:" + b"9" * 70 + b"\r\n"  # 80 bytes
        body = b"v=0\r\n" + line * ((body_size - 5) // 80)
        raw = request_bytes("INVITE", body=body, extra="Content-Type: application/sdp\r\n")
        assert body_size - 100 < len(raw) < 65507  # fits one IPv4 UDP datagram
        client.send(raw, Peer("udp", LOOP, server_l.port))
        received, _, _ = await server_rec.next_message()
        assert received.body == body
    finally:
        await client.close()
        await server.close()


async def test_udp_malformed_request_gets_400_and_listener_answers_next_good_one():
    server_rec = Recorder()
    server = Transport(server_rec.on_message, server_rec.on_transport_error)
    listener = await server.listen("udp", LOOP, 0)
    sock = await raw_udp()
    try:
        port = sock.getsockname()[1]
        # CSeq method differs from the request method: parseable headers, refused with 400.
        bad = request_bytes("INVITE", cseq_method="BYE", via=f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbad")
        sock.sendto(bad, (LOOP, listener.port))
        data, _ = await raw_recv(sock)
        answer = parse_message(data)
        assert isinstance(answer, Response) and answer.status == 400
        assert answer.call_id == "call-1@test"
        assert answer.to.tag  # RFC 3261 §8.2.6.2: the UAS adds a To tag
        assert server_rec.messages.empty()

        good = request_bytes("OPTIONS", call_id="good@test", via=f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKgood")
        sock.sendto(good, (LOOP, listener.port))
        received, peer, _ = await server_rec.next_message()
        assert received.call_id == "good@test"
        server.send(make_response(received, 200, to_tag="x"), peer)
        data, _ = await raw_recv(sock)
        assert parse_message(data).status == 200
    finally:
        sock.close()
        await server.close()


async def test_udp_too_large_body_gets_413():
    server_rec = Recorder()
    server = Transport(server_rec.on_message, server_rec.on_transport_error, limits=Limits(max_body=1000))
    listener = await server.listen("udp", LOOP, 0)
    sock = await raw_udp()
    try:
        sock.sendto(request_bytes("MESSAGE", body=b"x" * 2000), (LOOP, listener.port))
        data, _ = await raw_recv(sock)
        assert parse_message(data).status == 413
    finally:
        sock.close()
        await server.close()


async def test_udp_unreadable_request_and_bad_response_are_dropped_without_answer():
    server_rec = Recorder()
    server = Transport(server_rec.on_message, server_rec.on_transport_error)
    listener = await server.listen("udp", LOOP, 0)
    sock = await raw_udp()
    try:
        sock.sendto(b"INVITE this is not a request line\r\n\r\n", (LOOP, listener.port))
        sock.sendto(b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n", (LOOP, listener.port))  # no Via
        sock.sendto(b"\x00\x01\x00\x00binary", (LOOP, listener.port))
        sock.sendto(b"\r\n\r\n", (LOOP, listener.port))  # keep-alive
        with pytest.raises(asyncio.TimeoutError):
            await raw_recv(sock, timeout=0.2)
        assert server_rec.messages.empty() and server_rec.errors.empty()
        # Still serving.
        sock.sendto(request_bytes("OPTIONS", call_id="after@test"), (LOOP, listener.port))
        received, _, _ = await server_rec.next_message()
        assert received.call_id == "after@test"
    finally:
        sock.close()
        await server.close()


async def test_icmp_port_unreachable_is_reported_for_that_peer_within_100_ms():
    # RFC 3261 §18.4 / §8.1.3.1: fail over to the next ECRC in milliseconds, not Timer B.
    client, client_rec, _, server, server_rec, server_l = await pair()
    loop = asyncio.get_running_loop()
    try:
        dead = Peer("udp", LOOP, free_udp_port())
        alive = Peer("udp", LOOP, server_l.port)
        client.send(request_bytes(call_id="to-alive-1"), alive)
        started = loop.time()
        client.send(request_bytes(call_id="to-dead"), dead)
        peer, error = await client_rec.next_error(timeout=1.0)
        elapsed = loop.time() - started
        assert peer == dead
        assert isinstance(error, ConnectionRefusedError)
        assert elapsed < 0.1, f"ICMP error reported after {elapsed * 1000:.1f} ms"
        received, _, _ = await server_rec.next_message()
        assert received.call_id == "to-alive-1"
        assert client_rec.errors.empty()  # only the dead peer was reported
    finally:
        await client.close()
        await server.close()


async def test_icmp_errors_of_several_dead_peers_are_not_blamed_on_a_live_one():
    # After an ICMP error the socket latches it: the next sendto to *any* address fails with
    # ECONNREFUSED. The transport must report the dead peer and still deliver to the live one.
    client, client_rec, _, server, server_rec, server_l = await pair()
    try:
        dead_ports = [free_udp_port() for _ in range(3)]
        alive = Peer("udp", LOOP, server_l.port)
        for index, port in enumerate(dead_ports):
            client.send(request_bytes(call_id=f"dead-{index}"), Peer("udp", LOOP, port))
            client.send(request_bytes(call_id=f"alive-{index}"), alive)
        reported = set()
        for _ in dead_ports:
            peer, error = await client_rec.next_error(timeout=1.0)
            assert isinstance(error, ConnectionRefusedError)
            reported.add(peer)
        assert reported == {Peer("udp", LOOP, port) for port in dead_ports}
        arrived = {(await server_rec.next_message())[0].call_id for _ in dead_ports}
        assert arrived == {f"alive-{index}" for index in range(3)}
        await asyncio.sleep(0.05)
        assert client_rec.errors.empty()
    finally:
        await client.close()
        await server.close()


async def test_icmp_error_names_the_peer_as_the_caller_named_it():
    client_rec = Recorder()
    client = Transport(client_rec.on_message, client_rec.on_transport_error)
    await client.listen("udp", LOOP, 0)
    try:
        dead = Peer("udp", "localhost", free_udp_port())  # resolved by the transport
        client.send(request_bytes(), dead)
        peer, error = await client_rec.next_error(timeout=1.0)
        assert peer == dead and isinstance(error, ConnectionRefusedError)
    finally:
        await client.close()


async def test_received_and_rport_are_filled_from_the_source_address():
    # RFC 3261 §18.2.1 and RFC 3581 §4.
    server_rec = Recorder()
    server = Transport(server_rec.on_message, server_rec.on_transport_error)
    listener = await server.listen("udp", LOOP, 0)
    sock = await raw_udp()
    try:
        source_port = sock.getsockname()[1]
        # sent-by is a name and rport is empty; the top Via shares its field with another.
        via = "SIP/2.0/UDP phone.invalid:5999;branch=z9hG4bKtop;rport, SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKsecond"
        extra = "Via: SIP/2.0/TCP 10.2.2.2;branch=z9hG4bKthird\r\n"
        sock.sendto(request_bytes("INVITE", via=via, extra=extra), (LOOP, listener.port))
        received, peer, _ = await server_rec.next_message()
        top = received.top_via
        assert top.params.get("received") == LOOP
        assert top.params.get("rport") == str(source_port)
        assert top.branch == "z9hG4bKtop" and top.host == "phone.invalid" and top.port == 5999
        assert [via.branch for via in received.via] == ["z9hG4bKtop", "z9hG4bKsecond", "z9hG4bKthird"]
        assert peer == Peer("udp", LOOP, source_port)
        # The response built from it carries them back (§18.2.2).
        assert b"received=127.0.0.1" in make_response(received, 200).to_bytes()

        # sent-by equal to the source and no rport: nothing added.
        plain = f"SIP/2.0/UDP 127.0.0.1:{source_port};branch=z9hG4bKplain"
        sock.sendto(request_bytes("OPTIONS", via=plain), (LOOP, listener.port))
        received, _, _ = await server_rec.next_message()
        assert "received" not in received.top_via.params and "rport" not in received.top_via.params
    finally:
        sock.close()
        await server.close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_loopback_udp_round_trip_and_icmp():
    client, client_rec, client_l, server, server_rec, server_l = await pair(host="::1")
    try:
        assert client.local_address("udp", socket.AF_INET6) == ("::1", client_l.port)
        via = f"SIP/2.0/UDP [::1]:{client_l.port};branch=z9hG4bK6;rport"
        client.send(request_bytes("OPTIONS", via=via), Peer("udp", "::1", server_l.port))
        received, peer, _ = await server_rec.next_message()
        assert peer == Peer("udp", "::1", client_l.port)
        assert received.top_via.params.get("rport") == str(client_l.port)
        server.send(make_response(received, 200), peer)
        response, _, _ = await client_rec.next_message()
        assert response.status == 200

        dead = Peer("udp", "::1", free_udp_port("::1"))
        client.send(request_bytes(), dead)
        peer, error = await client_rec.next_error(timeout=1.0)
        assert peer == dead and isinstance(error, ConnectionRefusedError)
    finally:
        await client.close()
        await server.close()


async def test_send_without_a_listener_of_that_family_reports_an_error():
    recorder = Recorder()
    transport = Transport(recorder.on_message, recorder.on_transport_error)
    await transport.listen("udp", LOOP, 0)
    try:
        target = Peer("udp", "::1", 5060)
        transport.send(request_bytes(), target)
        peer, error = await recorder.next_error()
        assert peer == target and isinstance(error, ConnectionError)
    finally:
        await transport.close()


async def test_local_address_and_advertised_address():
    recorder = Recorder()
    transport = Transport(recorder.on_message, recorder.on_transport_error)
    try:
        listener = await transport.listen("udp", LOOP, 0)
        assert transport.local_address("udp", socket.AF_INET) == (LOOP, listener.port)
        assert transport.local_address("udp", 4) == (LOOP, listener.port)
        nat = await transport.listen("tcp", "0.0.0.0", 0, advertise=("198.51.100.7", 5060))
        assert transport.local_address("tcp", 4) == ("198.51.100.7", 5060)
        assert nat.port != 0
        with pytest.raises(LookupError):
            transport.local_address("tls", 4)
    finally:
        await transport.close()


async def test_a_failing_callback_does_not_stop_the_listener():
    calls = []

    def on_message(message, peer, listener):
        calls.append(message.call_id)
        raise RuntimeError("core bug")

    transport = Transport(on_message, lambda peer, error: None)
    listener = await transport.listen("udp", LOOP, 0)
    sock = await raw_udp()
    try:
        for index in range(2):
            sock.sendto(request_bytes(call_id=f"c{index}"), (LOOP, listener.port))
        for _ in range(50):
            if len(calls) == 2:
                break
            await asyncio.sleep(0.01)
        assert calls == ["c0", "c1"]
    finally:
        sock.close()
        await transport.close()
