"""What the server transport does to a received request before the core sees it, and how it
answers a request the core will never see (pure functions, no sockets)."""

from __future__ import annotations

import functools
import ipaddress

from b2bua.sip import MessageError, Request, Response, make_response, new_tag
from b2bua.sip.grammar import split_list


def stamp_via(request: Request, source_host: str, source_port: int) -> bool:
    """Add `received` and fill `rport` in the top Via from the packet's source address.

    RFC 3261 §18.2.1: "the server transport MUST add a received parameter" when the host
    in sent-by differs from the source address (a name, or another address: NAT).
    RFC 3581 §4: a request with an empty `rport` gets `rport=<source port>`, and then
    `received` is added even when the address is the same. Only the top Via element is
    rewritten; the other elements of its header field are kept. Returns True if changed.
    """
    vias = request.via  # parsed (and checked) by the parser already
    if not vias:
        return False
    top = vias[0]
    source = _bare(source_host)
    rport_asked = "rport" in top.params and not top.params.get("rport")
    # RFC 5118 §4.5: an IPv6 received value is written without brackets.
    add_received = (rport_asked or not same_address(top.host_address, source)) and top.params.get("received") != source
    if not (rport_asked or add_received):
        return False  # the common case: the message is left exactly as it came
    top = top.copy()
    if rport_asked:
        top.params.set("rport", str(source_port))
    if add_received:
        top.params.set("received", source)
    value = str(top)
    fields = request.headers.fields_named("Via")
    elements = split_list(fields[0].value)
    if len(fields) == 1 and len(elements) == 1:
        request.headers.set("Via", value)  # replaced where it stood
    else:
        # The top element shares its field with others, or more Via fields follow: take
        # the first element out and put the new one just before the remaining Vias.
        request.headers.remove_first_value("Via")
        request.headers.add("Via", value, first=True)
    return True


@functools.lru_cache(maxsize=4096)  # per request received; a handful of peers (pure function)
def same_address(host: str, other: str) -> bool:
    """Whether two host texts name the same IP address (`::1` == `0::1`); names compare
    as text, case-insensitively, so a name never equals an address (§18.2.1)."""
    host, other = _bare(host), _bare(other)
    try:
        first, second = ipaddress.ip_address(host), ipaddress.ip_address(other)
    except ValueError:
        return host.lower() == other.lower()
    if isinstance(first, ipaddress.IPv6Address) and first.ipv4_mapped is not None:
        first = first.ipv4_mapped
    if isinstance(second, ipaddress.IPv6Address) and second.ipv4_mapped is not None:
        second = second.ipv4_mapped
    return first == second


def answerable_request(message: Request | Response | None) -> Request | None:
    """The request if a response can be addressed to it: Via, From, To, Call-ID and CSeq
    all readable (RFC 3261 §8.2.6.2 copies them), and not an ACK (§17.2.1: never answered)."""
    if not isinstance(message, Request) or message.method == "ACK":
        return None
    try:
        if message.top_via is None:
            return None
        message.from_, message.to, message.call_id, message.cseq  # noqa: B018 - readability check
    except MessageError:
        return None
    return message


def error_response(request: Request, status: int, source_host: str, source_port: int) -> Response:
    """The transport's own answer (400/413/505/513) to a request it could not accept."""
    try:
        stamp_via(request, source_host, source_port)
    except MessageError:
        pass  # the response still goes to the source address the Peer carries
    # RFC 3261 §8.2.6.2: a UAS adds a To tag to every response but 100.
    return make_response(request, status, to_tag=new_tag())


def _bare(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host
