"""The transport of one UA process: listeners, connections, send, and the two callbacks.

The transport is thin (docs/architecture.md rule 5): bytes in -> `parse_message` ->
`on_message(message, peer, listener)`; `send(message, peer)` -> bytes out. What it does
on its own is only what RFC 3261 §18 gives the transport layer:
- received/rport on received requests (§18.2.1, RFC 3581);
- answering a request it cannot parse with the status the parser names, when the
  request is readable enough to address a response (§8.2.6.2, §21.4), else dropping it;
- dropping unparsable responses (§18.1.2);
- framing streams by Content-Length (§18.3) and keep-alive pongs (RFC 5626 §4.4.1);
- reporting transport failures (ICMP errors, refused or failed connections) to the user
  at once, so the core can answer 503 and fail over (§8.1.3.1, §17.1.4, §18.4).
It never raises out of a socket callback: failures become `on_transport_error` or a log
line, and listeners keep serving.

Callbacks are plain functions called from the event loop; a callback that returns an
awaitable is run as a task. `on_transport_error` is always called from a fresh loop
iteration (never from inside `send()`), so the core is not re-entered while it sends.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Union

import structlog

from b2bua.sip import DEFAULT_LIMITS, Limits, MessageError, Request, Response, parse_message
from b2bua.sip.message import Message

from .inbound import answerable_request, error_response, stamp_via
from .peer import Peer
from .stream import FramingError, StreamConnection, _peer_text
from .tls import TlsClientContexts, TlsPolicy, enforce_minimum_version
from .udp import UdpEndpoint, make_udp_socket

log = structlog.get_logger("b2bua.transport")

OnMessage = Callable[[Union[Request, Response], Peer, "Listener"], Union[None, Awaitable[None]]]
OnTransportError = Callable[[Peer, Exception], Union[None, Awaitable[None]]]

TRANSPORTS = ("udp", "tcp", "tls")
_NAME_MEMORY = 4096  # peers named by host name, remembered to name their ICMP errors
_ROUTE_MEMORY = 4096
_ANSWER_MEMORY = 65536  # UDP senders whose responses leave from the shared port


class Listener:
    """One listening socket: a UDP socket or a TCP/TLS server.

    `host`/`port` are what the socket is bound to (port 0 at `listen` becomes the port
    picked). `advertise` overrides what `local_address()` tells for Via/Contact, for a
    host behind NAT or in a container (interop notes).

    A `shared` listener is bound with SO_REUSEPORT, its port shared by several worker
    processes: the kernel hands each new sender to one of them. It takes requests in and
    answers them, but is never written into Via or Contact and never sends a request: a
    response or in-dialog request must come back to this process, through its own
    (unshared) listener."""

    def __init__(
        self,
        owner: Transport,
        transport: str,
        host: str,
        port: int,
        family: socket.AddressFamily,
        ssl_context=None,  # noqa: ANN001 - ssl.SSLContext | None
        advertise: tuple[str, int] | None = None,
        listening: bool = True,
        shared: bool = False,
    ) -> None:
        self.owner = owner
        self.transport = transport
        self.host = host
        self.port = port
        self.family = family
        self.ssl_context = ssl_context
        self.advertise = advertise
        self.listening = listening  # False for the stand-in of an outbound-only connection
        self.shared = shared
        self.udp: UdpEndpoint | None = None
        self.server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def local_address(self) -> tuple[str, int]:
        """(host, port) to put in Via sent-by and Contact; an IPv6 host comes without
        brackets (the caller writes `[...]`, RFC 5118 §4)."""
        if self.advertise is not None:
            return self.advertise
        if _is_wildcard(self.host):
            return guess_local_ip(self.family), self.port
        return self.host, self.port

    async def close(self) -> None:
        """Stop this listener (connections it accepted stay until closed)."""
        self._shutdown()
        if self in self.owner._listeners:
            self.owner._listeners.remove(self)
        if self.server is not None:
            await _bounded(self.server.wait_closed(), 1.0)

    def _shutdown(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.server is not None:
            self.server.close()

    def __repr__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"<Listener {self.transport} {host}:{self.port}>"


class Transport:
    """All the sockets of one UA process.

    `on_message(message, peer, listener)` gets every parsed message; `peer` is where it came
    from (the packet source, or the connection's remote end), which is where responses
    go. `on_transport_error(peer, error)` gets every failure to reach a peer."""

    def __init__(
        self,
        on_message: OnMessage,
        on_transport_error: OnTransportError,
        *,
        limits: Limits = DEFAULT_LIMITS,
        tls_peers: TlsPolicy | None = None,
        connect_timeout: float = 4.0,
        tls_handshake_timeout: float = 4.0,
    ) -> None:
        self.limits = limits
        self.connect_timeout = connect_timeout
        self.tls_handshake_timeout = tls_handshake_timeout
        self._on_message = on_message
        self._on_transport_error = on_transport_error
        self._tls = TlsClientContexts(tls_peers)
        self._listeners: list[Listener] = []
        self._connections: dict[tuple[str, str, int], StreamConnection] = {}
        self._streams: set[StreamConnection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._udp_names: OrderedDict[tuple[str, int], Peer] = OrderedDict()
        self._routes: dict[tuple[int, str], str | None] = {}
        # UDP sender (host, port) -> the shared listener its last request came in on: the
        # response leaves from the address the request was sent to (RFC 3581 §4), which a
        # NAT in front of the sender needs.
        self._answer_from: dict[tuple[str, int], Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- public API -----------------------------------------------------------------------
    @property
    def listeners(self) -> list[Listener]:
        return list(self._listeners)

    async def listen(
        self,
        transport: str,
        host: str,
        port: int,
        ssl_context=None,  # noqa: ANN001 - ssl.SSLContext | None
        *,
        advertise: tuple[str, int] | None = None,
        shared: bool = False,
    ) -> Listener:
        """Listen on `host:port` ('udp', 'tcp' or 'tls'; IPv4 or IPv6; port 0 = any free
        port, see `Listener.port`). TLS needs a server `ssl_context` (`server_context`).
        `shared`: bind with SO_REUSEPORT, one of several workers on that port (`Listener`)."""
        kind = transport.lower()
        if kind not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        if self._closed:
            raise RuntimeError("transport is closed")
        if kind == "tls":
            if ssl_context is None:
                raise ValueError("a TLS listener needs a server ssl_context")
            enforce_minimum_version(ssl_context)
        loop = self._running_loop()
        family, address = await _bind_address(loop, host, port, kind)
        listener = Listener(self, kind, address[0], address[1], family, ssl_context if kind == "tls" else None, advertise,
                            shared=shared)
        if kind == "udp":
            sock = make_udp_socket(family, address, reuse_port=shared)
            try:
                listener.udp = UdpEndpoint(
                    loop,
                    sock,
                    lambda data, source: self._udp_datagram(listener, data, source),
                    lambda destination, exc: self._udp_error(destination, exc),
                )
            except BaseException:
                sock.close()
                raise
        else:
            sock = _make_stream_socket(family, address, reuse_port=shared)
            try:
                listener.server = await loop.create_server(
                    lambda: StreamConnection(self, kind, listener, None),
                    sock=sock,
                    backlog=256,
                    ssl=listener.ssl_context,
                    ssl_handshake_timeout=self.tls_handshake_timeout if kind == "tls" else None,
                )
            except BaseException:
                sock.close()
                raise
        listener.host, listener.port = sock.getsockname()[:2]
        if shared:
            self._listeners.append(listener)
        else:  # before any shared one: the first match names us in Via/Contact
            first_shared = next((i for i, item in enumerate(self._listeners) if item.shared), len(self._listeners))
            self._listeners.insert(first_shared, listener)
        log.info("transport.listening", transport=kind, host=listener.host, port=listener.port)
        return listener

    def send(self, message: Message | bytes, peer: Peer, *, listener: Listener | None = None) -> None:
        """Send without waiting. UDP: from `listener` if given, else from the UDP listener of
        the destination's family (chosen by route when there are several). TCP/TLS: over
        the open connection to that peer (an inbound one too: responses go back on the
        connection the request came on, §18.2.2), else over a new connection opened in a
        task, the message queued until it is up. Any failure -> `on_transport_error`."""
        if self._closed:
            log.debug("transport.send_after_close", peer=_peer_text(peer))
            return
        try:
            data = message if isinstance(message, bytes) else bytes(message)
            kind = peer.transport.lower()
            if kind == "udp":
                if listener is None and self._answer_from and isinstance(message, Response):
                    listener = self._answer_from.get((peer.host, peer.port))
                self._send_udp(data, peer, listener)
            elif kind in ("tcp", "tls"):
                self._send_stream(data, peer, kind)
            else:
                self._report(peer, ValueError(f"unsupported transport {peer.transport!r}"))
        except Exception as exc:  # a bad peer or message must not escape into the core
            self._report(peer, exc)

    def local_address(self, transport: str, family: socket.AddressFamily | int) -> tuple[str, int]:
        """(host, port) of the first listener of that transport and family (socket.AF_INET /
        AF_INET6, or 4 / 6), for Via sent-by and Contact; an unshared one first (`Listener`).
        LookupError if there is none."""
        kind = transport.lower()
        wanted = _family(family)
        for listener in self._listeners:  # unshared ones come first (see listen)
            if listener.transport == kind and listener.family == wanted:
                return listener.local_address()
        raise LookupError(f"no {kind} listener for {wanted.name}")

    async def close(self) -> None:
        """Close every listener, connection and task. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for listener in self._listeners:
            listener._shutdown()
        for connection in list(self._streams):
            connection.close()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Let TLS close_notify and FINs go out, but never hang on a silent peer.
        for _ in range(100):
            if not self._streams:
                break
            await asyncio.sleep(0.01)
        for connection in list(self._streams):
            connection.abort()
        await asyncio.sleep(0)
        for listener in self._listeners:
            if listener.server is not None:
                await _bounded(listener.server.wait_closed(), 1.0)
        self._listeners.clear()
        self._connections.clear()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- receiving ------------------------------------------------------------------------
    def _udp_datagram(self, listener: Listener, data: bytes, source: tuple) -> None:
        try:
            if not data.strip(b"\r\n\t "):
                return  # CRLF keep-alive over UDP: nothing to answer
            start = data.lstrip(b"\r\n")
            if start[0] < 0x20:
                # Not text: e.g. a STUN keep-alive (RFC 5626 §4.4.2) that we do not serve.
                log.debug("udp.non_sip_datagram", peer=_address_text(source), size=len(data))
                return
            peer = Peer("udp", source[0], source[1])
            endpoint = listener.udp
            if listener.shared:
                self._remember_answer_from(source, listener)
            # §18.2.2 / RFC 3581: a UDP response goes to the source address and port.
            self._deliver(data, peer, listener, lambda out: endpoint.sendto(out, source))
        except Exception:
            log.exception("udp.receive_failed", peer=_address_text(source))

    def _remember_answer_from(self, source: tuple, listener: Listener) -> None:
        answer_from = self._answer_from
        key = (source[0], source[1])
        if answer_from.get(key) is not listener:
            answer_from.pop(key, None)
            answer_from[key] = listener
            if len(answer_from) > _ANSWER_MEMORY:
                del answer_from[next(iter(answer_from))]  # the oldest sender

    def _deliver(self, data: bytes, peer: Peer, listener: Listener, reply: Callable[[bytes], None]) -> None:
        """Parse one whole message and hand it to the core, or refuse it."""
        try:
            message = parse_message(data, self.limits)
        except MessageError as error:
            self._refuse(error.message, error.status, error.reason, peer, reply)
            return
        except Exception as exc:  # the parser promises MessageError only; do not trust it blindly
            log.exception("sip.parse_error", peer=_peer_text(peer), reason=f"parser failure: {exc!r}", status=None)
            return
        if isinstance(message, Request):
            try:
                stamp_via(message, peer.host, peer.port)
            except MessageError as error:
                log.warning("sip.via_error", peer=_peer_text(peer), reason=error.reason)
        self._call(self._on_message, message, peer, listener)

    def _reject_frame(self, error: FramingError, peer: Peer, reply: Callable[[bytes], None]) -> None:
        """A stream that cannot be framed: answer the request whose head we have, if we can."""
        message = None
        try:
            message = parse_message(error.head, self.limits)
        except MessageError as parse_error:
            message = parse_error.message
        except Exception:
            message = None
        self._refuse(message, error.status, error.reason, peer, reply, closing=True)

    def _refuse(
        self,
        message: Request | Response | None,
        status: int,
        reason: str,
        peer: Peer,
        reply: Callable[[bytes], None],
        *,
        closing: bool = False,
    ) -> None:
        request = answerable_request(message)
        answered = False
        if request is not None:
            try:
                reply(error_response(request, status, peer.host, peer.port).to_bytes())
                answered = True
            except Exception:
                log.exception("sip.refuse_failed", peer=_peer_text(peer))
        kind = "request" if isinstance(message, Request) else "response" if isinstance(message, Response) else "unknown"
        log.warning(
            "sip.parse_error",
            peer=_peer_text(peer),
            reason=reason,
            status=status,
            kind=kind,
            answered=answered,
            closing=closing,
        )

    # -- sending --------------------------------------------------------------------------
    def _send_udp(self, data: bytes, peer: Peer, listener: Listener | None) -> None:
        address = ip_literal(peer.host)
        if address is None:
            self._spawn(self._resolve_and_send_udp(data, peer, listener))
            return
        self._udp_sendto(data, peer, address, listener)

    async def _resolve_and_send_udp(self, data: bytes, peer: Peer, listener: Listener | None) -> None:
        try:
            infos = await self._running_loop().getaddrinfo(peer.host, peer.port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            self._report(peer, exc)
            return
        families = {item.family for item in self._listeners if item.transport == "udp"}
        for family, _, _, _, sockaddr in infos:
            if family in families:
                self._udp_sendto(data, peer, ip_literal(sockaddr[0]) or sockaddr[0], listener)
                return
        self._report(peer, ConnectionError(f"no UDP listener for any address of {peer.host}"))

    def _udp_sendto(self, data: bytes, peer: Peer, address: str, listener: Listener | None) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        endpoint = self._udp_endpoint(family, address, listener)
        if endpoint is None:
            self._report(peer, ConnectionError(f"no UDP listener for {family.name}"))
            return
        if peer.host != address:
            # Name the peer of a later ICMP error as the caller named it.
            key = (address, peer.port)
            self._udp_names[key] = peer
            self._udp_names.move_to_end(key)
            while len(self._udp_names) > _NAME_MEMORY:
                self._udp_names.popitem(last=False)
        endpoint.sendto(data, (address, peer.port))

    def _udp_endpoint(self, family: socket.AddressFamily, address: str, listener: Listener | None) -> UdpEndpoint | None:
        if listener is not None and listener.udp is not None and listener.family == family:
            return listener.udp
        candidates = [item for item in self._listeners if item.udp is not None and item.family == family]
        if len(candidates) > 1 and candidates[-1].shared:
            # Requests go out from this process's own socket, so their responses (rport,
            # RFC 3581) come back here and not to another worker on the shared port.
            candidates = [item for item in candidates if not item.shared] or candidates
        if len(candidates) <= 1:
            return candidates[0].udp if candidates else None
        # Several sockets of this family: send from the one bound to the address the
        # kernel would use as source towards this destination (sippy's local4remote).
        source = self._route_source(family, address)
        for item in candidates:
            if source is not None and ip_literal(item.host) == source:
                return item.udp
        for item in candidates:
            if _is_wildcard(item.host):
                return item.udp
        return candidates[0].udp

    def _route_source(self, family: socket.AddressFamily, address: str) -> str | None:
        key = (int(family), address)
        if key not in self._routes:
            if len(self._routes) >= _ROUTE_MEMORY:
                self._routes.clear()
            self._routes[key] = route_source(family, address)
        return self._routes[key]

    def _send_stream(self, data: bytes, peer: Peer, kind: str) -> None:
        key = _connection_key(kind, peer.host, peer.port)
        connection = self._connections.get(key)
        if connection is not None and connection.transport is not None and connection.transport.is_closing():
            # Closing but connection_lost not yet run: do not write into a dying connection.
            self._forget(connection)
            connection = None
        if connection is None or connection.closed:
            connection = StreamConnection(self, kind, None, peer)
            connection.key = key
            self._connections[key] = connection
            self._streams.add(connection)
            self._spawn(self._open(connection))
        connection.write(data)

    async def _open(self, connection: StreamConnection) -> None:
        peer = connection.peer
        loop = self._running_loop()
        host = _bare(peer.host)
        options: dict = {}
        if connection.kind == "tls":
            context, server_hostname = self._tls.for_peer(peer)
            options.update(ssl=context, server_hostname=server_hostname, ssl_handshake_timeout=self.tls_handshake_timeout)
        local = self._outbound_source(connection.kind, host)
        if local is not None:
            options["local_addr"] = (local, 0)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: connection, host, peer.port, **options),
                self.connect_timeout,
            )
        except asyncio.CancelledError:
            self._forget(connection)
            raise
        except Exception as exc:
            self._forget(connection)
            if isinstance(exc, asyncio.TimeoutError):
                exc = TimeoutError(f"no connection to {_peer_text(peer)} within {self.connect_timeout} s")
            self._report(peer, exc)
            return
        log.debug("stream.connected", peer=_peer_text(peer))

    def _outbound_source(self, kind: str, host: str) -> str | None:
        """Bind outbound connections to the address of a specific (non-wildcard) listener of
        the same family, so the source address matches the Via/Contact we advertise."""
        address = ip_literal(host)
        if address is None:
            return None
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for transport in (kind, "tcp", "udp"):
            for item in self._listeners:
                if item.listening and item.transport == transport and item.family == family and not _is_wildcard(item.host):
                    return item.host
        return None

    def _forget(self, connection: StreamConnection) -> None:
        connection.closed = True
        connection.pending.clear()
        self._streams.discard(connection)
        key = connection.key
        if key is not None and self._connections.get(key) is connection:
            del self._connections[key]

    # -- stream connection events (called by StreamConnection) ----------------------------
    def _stream_made(self, connection: StreamConnection) -> None:
        self._streams.add(connection)
        if self._closed:
            connection.abort()
            return
        if connection.key is None:
            connection.key = _connection_key(connection.kind, connection.peer.host, connection.peer.port)
            self._connections[connection.key] = connection
            log.debug("stream.accepted", peer=_peer_text(connection.peer))

    def _stream_lost(self, connection: StreamConnection, exc: Exception | None) -> None:
        self._forget(connection)
        if exc is not None:
            # Reset, TLS failure ...: transactions waiting on this peer should fail now.
            # A clean close by the peer is not an error: the next send reconnects.
            self._report(connection.peer, exc)

    def _listener_for(self, connection: StreamConnection) -> Listener:
        if connection.listener is not None:
            return connection.listener
        sockname = connection.transport.get_extra_info("sockname") if connection.transport else None
        family = socket.AF_INET6 if sockname and ":" in sockname[0] else socket.AF_INET
        for item in self._listeners:
            if item.transport == connection.kind and item.family == family:
                connection.listener = item
                return item
        # Outbound-only: a stand-in naming the connection's local end.
        host, port = (sockname[0], sockname[1]) if sockname else ("", 0)
        connection.listener = Listener(self, connection.kind, host, port, family, listening=False)
        return connection.listener

    # -- callbacks ------------------------------------------------------------------------
    def _report(self, peer: Peer, exc: Exception) -> None:
        if self._closed:
            return
        log.warning("transport.error", peer=_peer_text(peer), error=f"{type(exc).__name__}: {exc}")
        self._running_loop().call_soon(self._emit_error, peer, exc)

    def _emit_error(self, peer: Peer, exc: Exception) -> None:
        if not self._closed:
            self._call(self._on_transport_error, peer, exc)

    def _udp_error(self, destination: tuple, exc: OSError) -> None:
        address = ip_literal(destination[0]) or destination[0]
        peer = self._udp_names.get((address, destination[1])) or Peer("udp", destination[0], destination[1])
        self._report(peer, exc)

    def _call(self, callback: Callable, *args: object) -> None:
        try:
            result = callback(*args)
            # Most callbacks are plain functions returning None: skip the inspect call.
            if result is not None and inspect.isawaitable(result):
                self._spawn(result)
        except Exception:
            log.exception("transport.callback_failed", callback=getattr(callback, "__qualname__", repr(callback)))

    def _spawn(self, coroutine: Awaitable) -> None:
        task = self._running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("transport.task_failed", error=repr(task.exception()))

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop


# -- helpers ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # per message sent; a handful of peers (pure function)
def ip_literal(host: str) -> str | None:
    """The canonical text of an IP address literal (brackets removed), or None for a name."""
    try:
        return str(ipaddress.ip_address(_bare(host)))
    except ValueError:
        return None


def route_source(family: socket.AddressFamily, address: str) -> str | None:
    """The source address the kernel picks towards `address`: a UDP connect() only looks
    up the route, it sends nothing."""
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.connect((address, 9))
        return ip_literal(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()


def guess_local_ip(family: socket.AddressFamily) -> str:
    """For a wildcard listener without `advertise`: the address of the default route, else
    loopback. Set `advertise` on hosts where this guess is wrong."""
    probe = "192.0.2.1" if family == socket.AF_INET else "2001:db8::1"  # documentation ranges
    return route_source(family, probe) or ("127.0.0.1" if family == socket.AF_INET else "::1")


def _family(family: socket.AddressFamily | int) -> socket.AddressFamily:
    if family in (4, socket.AF_INET):
        return socket.AF_INET
    if family in (6, socket.AF_INET6):
        return socket.AF_INET6
    raise ValueError(f"unknown address family {family!r}")


def _connection_key(kind: str, host: str, port: int) -> tuple[str, str, int]:
    return kind, ip_literal(host) or _bare(host).lower(), port


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _address_text(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _bind_address(
    loop: asyncio.AbstractEventLoop, host: str, port: int, kind: str
) -> tuple[socket.AddressFamily, tuple[str, int]]:
    host = _bare(host or "0.0.0.0")
    address = ip_literal(host)
    if address is not None:
        return (socket.AF_INET6 if ":" in address else socket.AF_INET), (address, port)
    kind_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    infos = await loop.getaddrinfo(host, port, type=kind_type, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, sockaddr = infos[0]
    return family, (sockaddr[0], port)


def _make_stream_socket(family: socket.AddressFamily, address: tuple[str, int], *, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Restart without waiting out TIME_WAIT of the previous process's connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setblocking(False)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _bounded(awaitable: Awaitable, timeout: float) -> None:
    try:
        await asyncio.wait_for(awaitable, timeout)
    except (asyncio.TimeoutError, OSError):
        pass
