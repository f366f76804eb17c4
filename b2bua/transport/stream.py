"""SIP over TCP and TLS: cutting a byte stream into messages (RFC 3261 §18.3).

On a stream the only message boundary is Content-Length: read up to the blank line that
ends the header block, read Content-Length, then exactly that many body bytes. So
Content-Length is mandatory on streams (§18.3, §20.14); a message without it cannot be
framed, gets 400, and the connection is closed because we no longer know where the next
message starts. Between messages a peer may send CRLFs: RFC 5626 §4.4.1 keep-alive
"pings" (CRLFCRLF), answered with a "pong" (CRLF), and stray line ends that RFC 3261 §7.5
says to ignore. Buffers are bounded by `Limits.max_message`: a header block or a declared
message larger than that gets 513 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from .peer import Peer

if TYPE_CHECKING:
    from .endpoint import Listener, Transport

log = structlog.get_logger("b2bua.transport")

PING = b"\r\n\r\n"  # RFC 5626 §4.4.1: double-CRLF keep-alive ping
PONG = b"\r\n"  # ... answered by a single CRLF

# A peer that does not read what we send must not make us buffer without bound.
MAX_WRITE_BUFFER = 4 * 1024 * 1024


@dataclass(frozen=True)
class Frame:
    """The exact bytes of one message (start line, headers, body)."""

    data: bytes


@dataclass(frozen=True)
class Ping:
    """A CRLFCRLF keep-alive that wants a CRLF back."""


@dataclass(frozen=True)
class FramingError:
    """The stream cannot be framed any further: answer `status` if `head` is a readable
    request, then close the connection."""

    status: int
    reason: str
    head: bytes


class StreamFramer:
    """Sans-I/O framer: `feed(bytes)` returns the frames, pings and (at most one, last)
    framing error found so far. After a framing error it returns nothing more."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self.buffer = bytearray()
        self.failed = False

    def feed(self, data: bytes) -> list[Frame | Ping | FramingError]:
        if self.failed:
            return []
        buffer = self.buffer
        buffer += data
        events: list[Frame | Ping | FramingError] = []
        while buffer:
            first = buffer[0]
            if first in (0x0D, 0x0A):  # CR or LF before a start line
                if buffer.startswith(PING):
                    events.append(Ping())
                    del buffer[:4]
                elif len(buffer) < 4 and PING.startswith(bytes(buffer)):
                    break  # maybe the start of a ping: wait for more
                elif buffer.startswith(b"\r\n"):
                    del buffer[:2]  # stray CRLF (RFC 3261 §7.5), e.g. a pong
                else:
                    del buffer[:1]  # bare LF or CR
                continue
            head_end = _head_end(buffer)
            if head_end < 0:
                if len(buffer) > self.max_message:
                    return self._fail(events, 513, "header block exceeds the message size limit")
                break
            head = bytes(buffer[:head_end])
            length, problem = content_length(head)
            if problem is not None:
                return self._fail(events, 400, problem, head)
            total = head_end + length
            if total > self.max_message:
                return self._fail(events, 513, f"message of {total} bytes exceeds {self.max_message}", head)
            if len(buffer) < total:
                break
            events.append(Frame(bytes(buffer[:total])))
            del buffer[:total]
        return events

    def _fail(self, events: list, status: int, reason: str, head: bytes | None = None) -> list:
        if head is None:
            head = bytes(self.buffer[: self.max_message])
        self.failed = True
        self.buffer.clear()
        events.append(FramingError(status, reason, head))
        return events


def _head_end(buffer: bytearray) -> int:
    """Index just past the blank line ending the header block, or -1. CRLFCRLF per RFC 3261;
    bare LFLF accepted too, like the message parser does."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 4
    if lf >= 0:
        return lf + 2
    return -1


def content_length(head: bytes) -> tuple[int, str | None]:
    """Content-Length (or compact `l`) of a header block: `(length, None)` or `(0, problem)`."""
    found: set[int] = set()
    for line in head.split(b"\n")[1:]:
        if not line or line[:1] in (b" ", b"\t", b"\r"):
            continue  # blank line or folded continuation
        name, colon, value = line.partition(b":")
        if not colon or name.strip().lower() not in (b"content-length", b"l"):
            continue
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            return 0, f"bad Content-Length {text[:20]!r}"
        found.add(int(text))
    if not found:
        return 0, "missing Content-Length on a stream transport (RFC 3261 §18.3)"
    if len(found) > 1:
        return 0, "conflicting Content-Length values"
    return found.pop(), None


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection, inbound (accepted by a listener) or outbound (opened by
    `Transport.send`). Messages written before an outbound connection is up are queued."""

    def __init__(self, owner: Transport, kind: str, listener: Listener | None, peer: Peer | None) -> None:
        self.owner = owner
        self.kind = kind  # 'tcp' or 'tls'
        self.listener = listener
        self.peer = peer  # outbound: the peer as the caller named it; inbound: set on accept
        self.outbound = peer is not None
        self.framer = StreamFramer(owner.limits.max_message)
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.closed = False
        self.key: tuple[str, str, int] | None = None  # set by the Transport's connection table

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                # Signalling is small and latency-sensitive: no Nagle delay.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if self.peer is None:
            host, port = transport.get_extra_info("peername")[:2]
            self.peer = Peer(self.kind, host, port)
        self.owner._stream_made(self)
        pending, self.pending = self.pending, []
        for data in pending:
            self.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.framer.feed(data)
            for event in events:
                if self.closed:
                    return
                if isinstance(event, Frame):
                    self.owner._deliver(event.data, self.peer, self.owner._listener_for(self), self.write)
                elif isinstance(event, Ping):
                    self.write(PONG)
                else:
                    self.owner._reject_frame(event, self.peer, self.write)
                    self.close()
        except Exception:  # never let a bug in handling one message kill the loop callback
            log.exception("stream.receive_failed", peer=_peer_text(self.peer))
            self.abort()

    def eof_received(self) -> bool:
        return False  # half-closed by the peer: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.owner._stream_lost(self, exc)

    # -- used by the Transport ------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        transport = self.transport
        if transport is None:
            self.pending.append(data)
            if sum(map(len, self.pending)) > MAX_WRITE_BUFFER:
                self.owner._report(self.peer, ConnectionError("too much queued while connecting"))
                self.pending.clear()
            return
        if transport.is_closing():
            self.owner._report(self.peer, ConnectionResetError("connection is closing"))
            return
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.owner._report(self.peer, ConnectionError("peer is not reading: write buffer over limit"))
            self.abort()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()  # flushes what is buffered (e.g. a 400) first

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _peer_text(peer: Peer | None) -> str:
    if peer is None:
        return "?"
    host = f"[{peer.host}]" if ":" in peer.host else peer.host
    return f"{peer.transport}:{host}:{peer.port}"
