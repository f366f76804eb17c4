"""One UDP socket on the event loop: datagrams in, datagrams out, ICMP errors per destination.

Why not `loop.create_datagram_endpoint`: it reports an ICMP error as a bare
`error_received(exc)` without the address it concerns, and with IP_RECVERR set the
kernel keeps signalling EPOLLERR until the error queue is drained, which the stock
transports (asyncio's and uvloop's) never do. Owning the socket with `add_reader` lets us
read the error queue ourselves and works the same on asyncio and uvloop.

How ICMP errors reach the right peer (Linux, ip(7) and ipv6(7)):
- An unconnected UDP socket hears nothing about ICMP errors unless IP_RECVERR (IPv4) or
  IPV6_RECVERR (IPv6) is set. With it, every ICMP error for a datagram we sent is queued
  on the socket's error queue and the socket polls readable (EPOLLERR).
- `recvmsg(..., MSG_ERRQUEUE)` returns one queued error: `msg_name` is the *original
  destination* of the datagram that failed (the peer), the control message carries a
  `struct sock_extended_err` whose `ee_errno` is ECONNREFUSED for port unreachable,
  EHOSTUNREACH / ENETUNREACH for host/net unreachable.
- The same error is also latched as the socket's pending error (sk_err): the next
  `sendto` or `recvfrom` on the socket fails with it *whatever address it is for*. So
  such a failure is never blamed on the address at hand: the error queue is drained
  (which reports the right peers and clears sk_err) and the call is retried once.
RFC 3261 §18.4 asks that ICMP errors be reported to the transport user; §8.1.3.1 and
§17.1.4 turn them into an immediate 503 and failover instead of waiting for Timer B.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
import struct
import sys
import termios
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger("b2bua.transport")

MAX_DATAGRAM = 65535  # RFC 3261 §18.1.1 last sentence: be ready for datagrams up to 65,535 bytes

# linux/in.h and linux/in6.h; Python 3.11 does not export them.
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
SOL_IP = getattr(socket, "SOL_IP", 0)
SOL_IPV6 = getattr(socket, "SOL_IPV6", socket.IPPROTO_IPV6)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err (linux/errqueue.h)

# Errors that may be a latched ICMP error of *another* destination (see module docstring).
_LATCHED_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EACCES, errno.EPROTO}
)

_MAX_QUEUED_DATAGRAMS = 4096  # sends waiting for a full socket buffer to drain
_READS_PER_WAKEUP = 64  # fairness: other sockets get a turn during a burst
_READER_WATCHDOG_S = 0.5  # how often a socket with IP_RECVERR checks that it is still read

Address = tuple  # (host, port) or (host, port, flowinfo, scope_id)


class UdpEndpoint:
    """A bound, non-blocking UDP socket served by the event loop.

    `on_datagram(data, address)` gets every datagram; `on_error(address, exc)` every error
    that belongs to a destination (ICMP errors from the error queue, failed sends).
    Neither callback may raise; both are called from the loop's reader/writer callbacks."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_datagram: Callable[[bytes, Address], None],
        on_error: Callable[[Address, OSError], None],
    ) -> None:
        self._loop = loop
        self.sock = sock
        self.family = sock.family
        self._on_datagram = on_datagram
        self._on_error = on_error
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        self._queue: deque[tuple[bytes, Address]] = deque()
        self._writing = False
        self._closed = False
        self.errqueue = enable_error_queue(sock)
        loop.add_reader(sock.fileno(), self._readable)
        self._wakeups = 0  # _readable calls, for the watchdog
        self._wakeups_seen = 0
        self._watchdog = loop.call_later(_READER_WATCHDOG_S, self._check_reader) if self.errqueue else None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    # -- receiving ------------------------------------------------------------------------
    def _readable(self) -> None:
        self._wakeups += 1
        # Errors first: draining the error queue also clears the latched sk_err, so the
        # reads below do not fail with another destination's ICMP error. An ICMP error
        # that finds the receive buffer full is not queued (the error queue shares it),
        # yet it latches sk_err and raises POLLERR all the same: SO_ERROR reads and clears
        # that one (its destination is unknown). Either way the poll handle was stopped.
        drained = self._drain_errors()
        if drained | self._clear_latched_error():
            self._rearm_reader()
        for _ in range(_READS_PER_WAKEUP):
            if self._closed:
                return
            try:
                size, address = self.sock.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _LATCHED_ERRNOS and self.errqueue:
                    if self._drain_errors():
                        self._rearm_reader()
                    continue
                log.warning("udp.recv_error", local=self._local_text(), error=str(exc))
                return
            self._on_datagram(bytes(self._view[:size]), address)

    def _rearm_reader(self) -> None:
        """Register the reader (and the writer, when sends are queued) again after an
        error-queue event.

        libuv (under uvloop) stops a poll handle that reports POLLERR, which is what a
        queued ICMP error raises, and uvloop then closes that handle once our reader has
        run. Both callbacks are removed first, so uvloop drops the doomed handle and the
        new registrations go on a fresh one: re-adding the reader while the writer still
        held the old handle put it on the handle about to be closed, and the listener went
        deaf under load (tests/integration/test_udp_after_icmp.py). Harmless on asyncio."""
        if self._closed:
            return
        fd = self.sock.fileno()
        try:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
            self._loop.add_reader(fd, self._readable)
            if self._writing:
                self._loop.add_writer(fd, self._writable)
        except (ValueError, RuntimeError, OSError):
            pass

    def _clear_latched_error(self) -> bool:
        if not self.errqueue:
            return False
        try:
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError:
            return False
        if code:
            log.debug("udp.latched_error", local=self._local_text(), error=os.strerror(code))
        return code != 0

    def _check_reader(self) -> None:
        """Safety net for a reader that the loop stopped calling: when datagrams wait
        unread and the reader has not run for a whole period, register it again. (A
        POLLERR whose cause was cleared before uvloop ran our reader - by a send in the
        same loop turn - leaves nothing for the reader to see, and uvloop closes the
        handle after it.) Costs one ioctl per period."""
        if self._closed:
            return
        if self._wakeups == self._wakeups_seen and self._unread():
            log.warning("udp.reader_rearmed", local=self._local_text())
            self._rearm_reader()
        self._wakeups_seen = self._wakeups
        self._watchdog = self._loop.call_later(_READER_WATCHDOG_S, self._check_reader)

    def _unread(self) -> bool:
        try:
            waiting = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return False
        return int.from_bytes(waiting, sys.byteorder) > 0

    def _drain_errors(self) -> bool:
        """Read every queued extended error and report it against its original destination;
        True when there was at least one."""
        if not self.errqueue:
            return False
        level, kind = (SOL_IPV6, IPV6_RECVERR) if self.family == socket.AF_INET6 else (SOL_IP, IP_RECVERR)
        drained = False
        while not self._closed:
            try:
                _, ancdata, _, address = self.sock.recvmsg(512, 512, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return drained
            except OSError as exc:
                log.warning("udp.errqueue_error", local=self._local_text(), error=str(exc))
                return drained
            drained = True
            for cmsg_level, cmsg_type, data in ancdata:
                if cmsg_level != level or cmsg_type != kind or len(data) < _EXTENDED_ERR.size:
                    continue
                code = _EXTENDED_ERR.unpack_from(data)[0]
                if code == errno.EMSGSIZE:
                    # ICMP "fragmentation needed" / packet too big: the kernel lowers its
                    # path MTU and fragments the retransmission; the peer is alive.
                    log.debug("udp.path_mtu", peer=_address_text(address))
                    continue
                if code and address:
                    # OSError(errno, text) is ConnectionRefusedError for ECONNREFUSED, etc.
                    self._on_error(address, OSError(code, os.strerror(code)))

    # -- sending --------------------------------------------------------------------------
    def sendto(self, data: bytes, address: Address) -> None:
        """Send now, or queue when the socket buffer is full; a failure goes to on_error."""
        if self._closed:
            self._on_error(address, ConnectionAbortedError(errno.ECONNABORTED, "UDP socket closed"))
            return
        if self._queue or not self._send_one(data, address):
            self._enqueue(data, address)

    def _send_one(self, data: bytes, address: Address) -> bool:
        """True when the datagram is gone (sent, or failed and reported); False when the
        socket buffer is full and it must wait."""
        for attempt in (1, 2):
            try:
                self.sock.sendto(data, address)
                return True
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                if attempt == 1 and exc.errno in _LATCHED_ERRNOS and self.errqueue:
                    # Probably the latched ICMP error of an earlier destination: report it
                    # to its owner via the error queue, then try this one again.
                    if self._drain_errors():
                        self._rearm_reader()
                    continue
                self._on_error(address, exc)
                return True
        return True

    def _enqueue(self, data: bytes, address: Address) -> None:
        if len(self._queue) >= _MAX_QUEUED_DATAGRAMS:
            self._on_error(address, BlockingIOError(errno.ENOBUFS, "UDP send queue full"))
            return
        self._queue.append((data, address))
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        while self._queue and not self._closed:
            data, address = self._queue[0]
            if not self._send_one(data, address):
                return
            self._queue.popleft()
        if self._writing and not self._closed:
            self._loop.remove_writer(self.sock.fileno())
        self._writing = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        try:
            self._loop.remove_reader(self.sock.fileno())
            if self._writing:
                self._loop.remove_writer(self.sock.fileno())
        except (ValueError, RuntimeError):  # loop already closed
            pass
        self._queue.clear()
        self.sock.close()

    def _local_text(self) -> str:
        try:
            return _address_text(self.sock.getsockname())
        except OSError:
            return "?"


def enable_error_queue(sock: socket.socket) -> bool:
    """Ask Linux to queue ICMP errors on this unconnected UDP socket (ip(7) IP_RECVERR)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    except OSError as exc:
        log.warning("udp.no_recverr", error=str(exc))
        return False
    return True


def make_udp_socket(family: socket.AddressFamily, address: Address, *, reuse_port: bool = False) -> socket.socket:
    """A bound non-blocking UDP socket; `reuse_port`: one of a SO_REUSEPORT group, whose
    datagrams the kernel spreads by a hash of the sender's address and port."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # One socket per family, so "the listener of that family" is unambiguous.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            # Bursts of retransmissions during failover must not be dropped by a small buffer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError:
            pass
        sock.setblocking(False)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _address_text(address: Address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
