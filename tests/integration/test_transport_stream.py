"""The transport over TCP on loopback: Content-Length framing (RFC 3261 §18.3), keep-alives
(RFC 5626 §4.4.1), connection reuse, failures. Real sockets, port 0, every wait bounded."""

from __future__ import annotations

import asyncio
import socket

from b2bua.sip import Limits, Response, make_response, parse_message
from b2bua.transport import Peer, Transport
from b2bua.transport.stream import StreamFramer
from b2bua.transport.testing import Recorder

LOOP = "127.0.0.1"


def request_bytes(
    method: str = "OPTIONS",
    *,
    call_id: str = "call-1@test",
    via: str = "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKtcp1",
    body: bytes = b"",
    length: bool = True,
    cseq_method: str | None = None,
) -> bytes:
    head = (
        f"{method} sip:ecrc@127.0.0.1;transport=tcp SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=abc\r\n"
        "To: <sip:ecrc@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {cseq_method or method}\r\n"
        + (f"Content-Length: {len(body)}\r\n" if length else "")
        + "\r\n"
    )
    return head.encode() + body


class RawStream:
    """A plain TCP client that reads back whole SIP messages with the transport's framer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer(65535)
        self.frames: list[bytes] = []

    @classmethod
    async def connect(cls, port: int, host: str = LOOP) -> RawStream:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    @property
    def local_port(self) -> int:
        return self.writer.get_extra_info("sockname")[1]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), 2)

    async def read_message(self, timeout: float = 2.0):
        async def read():
            while not self.frames:
                data = await self.reader.read(65535)
                if not data:
                    raise EOFError("connection closed")
                self.frames.extend(event.data for event in self.framer.feed(data))
            return parse_message(self.frames.pop(0))

        return await asyncio.wait_for(read(), timeout)

    async def read_raw(self, timeout: float = 2.0) -> bytes:
        return await asyncio.wait_for(self.reader.read(65535), timeout)

    async def closed_by_peer(self, timeout: float = 2.0) -> bool:
        data = await asyncio.wait_for(self.reader.read(65535), timeout)
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass


def closed_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOP, 0))
        return probe.getsockname()[1]  # bound, never listening, then closed: connect gets RST


async def server(limits: Limits | None = None) -> tuple[Transport, Recorder, object]:
    recorder = Recorder()
    kwargs = {"limits": limits} if limits else {}
    transport = Transport(recorder.on_message, recorder.on_transport_error, **kwargs)
    listener = await transport.listen("tcp", LOOP, 0)
    return transport, recorder, listener


async def test_tcp_round_trip_between_two_transports_reuses_one_connection():
    uas, uas_rec, uas_l = await server()
    uac_rec = Recorder()
    uac = Transport(uac_rec.on_message, uac_rec.on_transport_error)  # no listener: outbound only
    try:
        target = Peer("tcp", LOOP, uas_l.port)
        uac.send(parse_message(request_bytes("INVITE", call_id="one")), target)
        uac.send(request_bytes("OPTIONS", call_id="two"), target)
        first, peer_one, listener = await uas_rec.next_message()
        second, peer_two, _ = await uas_rec.next_message()
        assert (first.call_id, second.call_id) == ("one", "two")
        assert peer_one == peer_two  # one connection, same source port
        assert peer_one.transport == "tcp" and peer_one.host == LOOP
        assert listener is uas_l

        # The response goes back over the connection the request came on (§18.2.2).
        uas.send(make_response(first, 180, to_tag="x"), peer_one)
        response, from_peer, uac_listener = await uac_rec.next_message()
        assert isinstance(response, Response) and response.status == 180
        assert from_peer == target  # named as the UAC named it
        assert uac_listener.transport == "tcp" and not uac_listener.listening
        assert uac_rec.errors.empty() and uas_rec.errors.empty()
    finally:
        await uac.close()
        await uas.close()


async def test_tcp_response_goes_back_on_the_inbound_connection():
    transport, recorder, listener = await server()
    client = await RawStream.connect(listener.port)
    try:
        await client.send(request_bytes("INVITE", call_id="inbound"))
        request, peer, _ = await recorder.next_message()
        assert peer == Peer("tcp", LOOP, client.local_port)
        transport.send(make_response(request, 200, to_tag="t"), peer)
        response = await client.read_message()
        assert response.status == 200 and response.call_id == "inbound"
    finally:
        await client.close()
        await transport.close()


async def test_tcp_two_messages_in_one_segment_are_both_delivered():
    transport, recorder, listener = await server()
    client = await RawStream.connect(listener.port)
    try:
        body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"
        await client.send(request_bytes("INVITE", call_id="a", body=body) + request_bytes("OPTIONS", call_id="b"))
        first, _, _ = await recorder.next_message()
        second, _, _ = await recorder.next_message()
        assert (first.call_id, first.body) == ("a", body)
        assert second.call_id == "b"
    finally:
        await client.close()
        await transport.close()


async def test_tcp_message_split_over_many_writes_is_reassembled():
    transport, recorder, listener = await server()
    client = await RawStream.connect(listener.port)
    try:
        body = b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n" * 40
        data = request_bytes("INVITE", call_id="split", body=body)
        for start in range(0, len(data), 37):
            await client.send(data[start : start + 37])
            await asyncio.sleep(0.001)  # separate segments (TCP_NODELAY on the client)
        received, _, _ = await recorder.next_message()
        assert received.call_id == "split" and received.body == body
        assert recorder.messages.empty()
    finally:
        await client.close()
        await transport.close()


async def test_tcp_request_without_content_length_gets_400_and_is_closed():
    transport, recorder, listener = await server()
    client = await RawStream.connect(listener.port)
    try:
        await client.send(request_bytes("INVITE", call_id="nolength", length=False))
        response = await client.read_message()
        assert response.status == 400 and response.call_id == "nolength"
        assert await client.closed_by_peer()
        assert recorder.messages.empty()
    finally:
        await client.close()
        await transport.close()


async def test_tcp_oversize_message_gets_513_and_is_closed():
    transport, recorder, listener = await server(Limits(max_message=4000))
    client = await RawStream.connect(listener.port)
    try:
        await client.send(request_bytes("INVITE", call_id="huge", body=b"x" * 5000))
        response = await client.read_message()
        assert response.status == 513
        assert await client.closed_by_peer()
        assert recorder.messages.empty()
    finally:
        await client.close()
        await transport.close()


async def test_tcp_endless_header_block_is_cut_at_the_limit():
    transport, recorder, listener = await server(Limits(max_message=4000))
    client = await RawStream.connect(listener.port)
    try:
        await client.send(b"INVITE sip:x@y SIP/2.0\r\n" + b"X-Junk: " + b"j" * 5000)
        assert await client.closed_by_peer()  # nothing readable to answer: just closed
    finally:
        await client.close()
        await transport.close()


async def test_crlf_ping_gets_a_pong_and_stray_crlfs_are_ignored():
    transport, recorder, listener = await server()
    client = await RawStream.connect(listener.port)
    try:
        await client.send(b"\r\n\r\n")  # RFC 5626 §4.4.1 ping
        assert await client.read_raw() == b"\r\n"  # pong
        await client.send(request_bytes(call_id="x1") + b"\r\n" + request_bytes(call_id="x2") + b"\r\n")
        first, _, _ = await recorder.next_message()
        second, _, _ = await recorder.next_message()
        assert (first.call_id, second.call_id) == ("x1", "x2")
        await client.send(b"\r\n\r\n")
        assert await client.read_raw() == b"\r\n"  # no pong was owed for the single CRLFs
    finally:
        await client.close()
        await transport.close()


async def test_tcp_malformed_but_framed_request_gets_400_and_the_connection_keeps_serving():
    transport, recorder, listener = await server()
    client = await RawStream.connect(listener.port)
    try:
        await client.send(request_bytes("INVITE", call_id="bad", cseq_method="BYE"))
        response = await client.read_message()
        assert response.status == 400 and response.call_id == "bad"
        await client.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")  # unparsable response: dropped
        await client.send(request_bytes("OPTIONS", call_id="good"))
        received, peer, _ = await recorder.next_message()
        assert received.call_id == "good"
        transport.send(make_response(received, 200), peer)
        assert (await client.read_message()).status == 200
    finally:
        await client.close()
        await transport.close()


async def test_tcp_connect_to_closed_port_is_reported_fast():
    recorder = Recorder()
    transport = Transport(recorder.on_message, recorder.on_transport_error)
    loop = asyncio.get_running_loop()
    try:
        dead = Peer("tcp", LOOP, closed_tcp_port())
        started = loop.time()
        transport.send(request_bytes(), dead)
        transport.send(request_bytes(call_id="queued"), dead)  # queued on the same attempt
        peer, error = await recorder.next_error(timeout=1.0)
        elapsed = loop.time() - started
        assert peer == dead and isinstance(error, ConnectionRefusedError)
        assert elapsed < 0.1, f"refused connect reported after {elapsed * 1000:.1f} ms"
        await asyncio.sleep(0.05)
        assert recorder.errors.empty()  # one attempt, one report
    finally:
        await transport.close()


async def test_tcp_received_and_rport_on_stream():
    transport, recorder, listener = await server()
    client = await RawStream.connect(listener.port)
    try:
        await client.send(request_bytes(via="SIP/2.0/TCP phone.invalid;branch=z9hG4bKs;rport"))
        request, _, _ = await recorder.next_message()
        assert request.top_via.params.get("received") == LOOP
        assert request.top_via.params.get("rport") == str(client.local_port)
    finally:
        await client.close()
        await transport.close()


async def test_connection_reset_by_peer_is_reported():
    recorder = Recorder()
    transport = Transport(recorder.on_message, recorder.on_transport_error)
    listener = await transport.listen("tcp", LOOP, 0)
    client = await RawStream.connect(listener.port)
    try:
        await client.send(request_bytes(call_id="before-reset"))
        _, peer, _ = await recorder.next_message()
        sock = client.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.writer.transport.abort()  # RST
        error_peer, error = await recorder.next_error()
        assert error_peer == peer and isinstance(error, ConnectionError)
    finally:
        await client.close()
        await transport.close()



async def test_outbound_connection_closed_by_the_peer_is_reopened_on_next_send():
    accepted: asyncio.Queue[bytes] = asyncio.Queue()

    async def hang_up_after_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readuntil(b"\r\n\r\n")
        await accepted.put(data)
        writer.close()  # a clean close: not an error, just gone

    peer_server = await asyncio.start_server(hang_up_after_one, LOOP, 0)
    port = peer_server.sockets[0].getsockname()[1]
    recorder = Recorder()
    transport = Transport(recorder.on_message, recorder.on_transport_error)
    try:
        target = Peer("tcp", LOOP, port)
        transport.send(request_bytes(call_id="first"), target)
        assert b"first" in await asyncio.wait_for(accepted.get(), 2)
        for _ in range(100):  # until the transport has seen the close
            if not transport._connections:
                break
            await asyncio.sleep(0.01)
        transport.send(request_bytes(call_id="second"), target)
        assert b"second" in await asyncio.wait_for(accepted.get(), 2)
        assert recorder.errors.empty()
    finally:
        await transport.close()
        peer_server.close()
        await asyncio.wait_for(peer_server.wait_closed(), 2)
