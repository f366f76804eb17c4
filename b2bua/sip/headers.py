"""Header names and the structured header values of RFC 3261 §20.

Names: case-insensitive, compact forms expanded (RFC 3261 §7.3.3 and the RFCs that
registered more). Values: From/To/Contact/Route style name-addr or addr-spec, Via, CSeq.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import MessageError
from .grammar import TOKEN_CHARS, Params, ParsedTexts, is_token, parse_params, split_outside_quotes
from .uri import SipUri, Uri, parse_port, uri_view

# RFC 3261 §7.3.3 (i m e l c f s k t v), RFC 3515 (r), RFC 3892 (b), RFC 4028 (x),
# RFC 6665 (o, u), RFC 3841 (a, j, d).
COMPACT_FORMS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "o": "Event",
    "u": "Allow-Events",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}

_CANONICAL = {
    name.lower(): name
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
        "Content-Disposition", "Content-Encoding", "Content-ID", "Content-Language", "Content-Length",
        "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Geolocation",
        "Geolocation-Error", "Geolocation-Routing", "History-Info", "In-Reply-To", "Max-Forwards",
        "Min-Expires", "Min-SE", "MIME-Version", "Organization", "P-Asserted-Identity",
        "P-Preferred-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
        "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
        "Referred-By", "Reject-Contact", "Reply-To", "Request-Disposition", "Require",
        "Resource-Priority", "Retry-After", "Route", "RSeq", "Server", "Service-Route",
        "Session-Expires", "Subject", "Subscription-State", "Supported", "Timestamp", "To",
        "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
    )
}

# Headers whose grammar is `#element` (comma-separated list) and may be split.
# Never the authentication headers: their values contain commas (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
        "Geolocation", "History-Info", "In-Reply-To", "P-Asserted-Identity", "P-Preferred-Identity",
        "Path", "Proxy-Require", "Reason", "Record-Route", "Reject-Contact", "Request-Disposition",
        "Require", "Route", "Service-Route", "Supported", "Unsupported", "Via", "Warning",
    )
)


def _canonical_name(name: str) -> str:
    lower = name.lower()
    if len(lower) == 1:
        expanded = COMPACT_FORMS.get(lower)
        if expanded:
            return expanded
    return _CANONICAL.get(lower, name)


def _header_key(name: str) -> str:
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower].lower()
    return lower


_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_SIZE = 1024  # names as written by peers; bounded so a hostile peer cannot grow it


def name_and_key(name: str) -> tuple[str, str]:
    """`canonical_name(name), header_key(name)` in one (cached) look-up: the parser's hot path,
    and every look-up by name (`headers.get("Call-ID")`) the code makes."""
    cached = _NAME_CACHE.get(name)
    if cached is None:
        cached = (_canonical_name(name), _header_key(name))
        if len(_NAME_CACHE) < _NAME_CACHE_SIZE:
            _NAME_CACHE[name] = cached
    return cached


def canonical_name(name: str) -> str:
    """`v` -> `Via`, `call-id` -> `Call-ID`; unknown names are returned as written."""
    return name_and_key(name)[0]


def header_key(name: str) -> str:
    """The lookup key of a header name: lower-case long form."""
    cached = _NAME_CACHE.get(name)
    return cached[1] if cached is not None else name_and_key(name)[1]


# The names this code looks headers up by, and their long and compact forms as peers write
# them, are in the cache from the start: it may fill up with a peer's odd spellings.
for _name in (*_CANONICAL.values(), *COMPACT_FORMS, *(name.upper() for name in COMPACT_FORMS)):
    name_and_key(_name)
    name_and_key(_name.lower())
del _name


@dataclass(eq=False)
class NameAddr:
    """From, To, Contact, Route, Record-Route, P-Asserted-Identity, Refer-To ... values.

    `display` is the display name as written (quotes included), or None. A value written
    as a bare addr-spec keeps `bracketed=False`: then its `;params` belong to the header,
    not to the URI (RFC 3261 §20.10).
    """

    uri: Uri
    display: str | None = None
    params: Params = field(default_factory=Params)
    bracketed: bool = True

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def sip_uri(self) -> SipUri | None:
        return self.uri if isinstance(self.uri, SipUri) else None

    def copy(self) -> NameAddr:
        return NameAddr(self.uri.copy(), self.display, self.params.copy(), self.bracketed)

    def __str__(self) -> str:
        # A URI with parameters or headers must be bracketed, or its parameters would be
        # read as header parameters (RFC 3261 §20.10).
        uri = str(self.uri)
        if self.bracketed or self.display or "?" in uri or ";" in uri or "," in uri:
            prefix = f"{self.display} " if self.display else ""
            return f"{prefix}<{uri}>{self.params}"
        return f"{uri}{self.params}"

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"


def parse_name_addr(value: str) -> NameAddr:
    """A name-addr or addr-spec (RFC 3261 §20.10, §25.1); MessageError when it is neither."""
    return _NAME_ADDRS.parse(value)


def name_addr_view(value: str) -> NameAddr:
    """`parse_name_addr` without the copy: the object is shared with every other view of
    the same text and must not be changed (a message's From/To/Contact views; whoever
    keeps or edits one takes a `copy()`, as dialogs do)."""
    return _NAME_ADDRS.shared(value)


def _parse_name_addr(value: str) -> NameAddr:
    value = value.strip()
    if not value:
        raise MessageError("empty address")
    langle = _find_unquoted(value, "<")
    if langle >= 0:
        rangle = value.find(">", langle)
        if rangle < 0:
            raise MessageError(f"missing '>' in {value!r}")
        display = value[:langle].strip() or None
        if display:
            if display.startswith('"'):
                if len(display) < 2 or not display.endswith('"'):
                    raise MessageError(f"unterminated display name in {value!r}")
            elif not _plain_display_name(display):
                raise MessageError(f"display name with separators must be quoted in {value!r}")
        uri = uri_view(value[langle + 1 : rangle])  # owned by the remembered NameAddr: not changed either
        rest = value[rangle + 1 :].strip()
        if rest and not rest.startswith(";"):
            raise MessageError(f"garbage after address in {value!r}")
        return NameAddr(uri, display, parse_params(rest), True)
    # addr-spec: parameters after the first ';' are header parameters (RFC 3261 §20.10)
    uri_text, semicolon, rest = value.partition(";")
    if " " in uri_text.strip() or '"' in uri_text:
        raise MessageError(f"display name without angle brackets in {value!r}")
    if "?" in uri_text:
        # RFC 3261 §20.10: a URI with headers must be written in angle brackets
        # (RFC 4475 §3.1.2.13).
        raise MessageError(f"URI with headers outside angle brackets in {value!r}")
    return NameAddr(uri_view(uri_text), None, parse_params(rest) if semicolon else Params(), False)


# From, To and Contact values repeat in every message of a dialog (the INVITE, its
# responses, the ACK, the BYE and its 200 carry the same From).
_NAME_ADDRS: ParsedTexts[NameAddr] = ParsedTexts(_parse_name_addr)


_DISPLAY_CHARS = TOKEN_CHARS | frozenset(" \t")


def _plain_display_name(display: str) -> bool:
    """RFC 3261 §25.1: an unquoted display name is *(token LWS), so a comma or another
    separator there is refused (RFC 4475 §3.1.2.15). Non-ASCII is let through: phones do
    send unquoted UTF-8 names, and refusing them would drop real calls."""
    return _DISPLAY_CHARS.issuperset(display) or all(char >= "\x80" for char in set(display) - _DISPLAY_CHARS)


def _find_unquoted(text: str, char: str) -> int:
    if '"' not in text:
        return text.find(char)  # nothing quoted: let str.find do it
    in_quotes = False
    escaped = False
    for index, current in enumerate(text):
        if in_quotes:
            if escaped:
                escaped = False
            elif current == "\\":
                escaped = True
            elif current == '"':
                in_quotes = False
        elif current == '"':
            in_quotes = True
        elif current == char:
            return index
    return -1


@dataclass(eq=False)
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport` (RFC 3261 §20.42)."""

    transport: str  # upper-case: UDP, TCP, TLS, SCTP, WS, WSS
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return (self.host.lower(), self.port)

    @property
    def host_address(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def is_rfc3261(self) -> bool:
        """The branch carries the magic cookie and something after it. A bare `z9hG4bK`
        identifies no transaction: such a request is matched by the RFC 2543 rules
        (RFC 4475 §3.2.1)."""
        branch = self.branch
        return bool(branch) and len(branch) > len(self.MAGIC_COOKIE) and branch.startswith(self.MAGIC_COOKIE)

    def copy(self) -> Via:
        return Via(self.transport, self.host, self.port, self.params.copy(), self.protocol)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.params}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"


_VIA_START = re.compile(r"\s*SIP\s*/\s*([^/\s]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.+)$", re.I | re.S)


def parse_via(value: str) -> Via:
    # "SIP / 2.0 / UDP host" is legal: LWS may surround the slashes (RFC 3261 §25.1).
    match = _VIA_START.match(value)
    if not match:
        raise MessageError(f"bad Via {value!r}")
    version, transport, rest = match.groups()
    hostport, semicolon, params_text = rest.partition(";")
    hostport = hostport.strip()
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise MessageError(f"bad Via host in {value!r}")
        host, port_text = hostport[: end + 1], hostport[end + 1 :].strip()
        if port_text and not port_text.startswith(":"):
            raise MessageError(f"bad Via host in {value!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
    host, port_text = host.strip(), port_text.strip()
    if not host or " " in host or "\t" in host or "," in host:
        raise MessageError(f"bad Via host in {value!r}")
    port = None
    if port_text:
        port = parse_port(port_text)
        if port is None:
            raise MessageError(f"bad Via port in {value!r}")
    params = parse_params(params_text) if semicolon else Params()
    return Via(transport.upper(), host, port, params, f"SIP/{version}")


@dataclass(frozen=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(value: str) -> CSeq:
    # Every message carries one and few texts recur ("1 INVITE", "2 BYE"); a CSeq is
    # frozen, so the remembered one is handed out as it is.
    return _CSEQS.shared(value)


def _parse_cseq(value: str) -> CSeq:
    parts = value.split()
    if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit() or not is_token(parts[1]):
        raise MessageError(f"bad CSeq {value!r}")
    seq = int(parts[0])
    if seq >= 2**31:  # RFC 3261 §8.1.1.5: less than 2**31
        raise MessageError(f"CSeq number too large in {value!r}")
    return CSeq(seq, parts[1])


_CSEQS: ParsedTexts[CSeq] = ParsedTexts(_parse_cseq)


def parse_name_addr_list(value: str) -> list[NameAddr]:
    return [parse_name_addr(piece) for piece in split_outside_quotes(value, ",") if piece.strip()]


def name_addr_list_view(value: str) -> list[NameAddr]:
    """`parse_name_addr_list` of shared, read-only values (see `name_addr_view`)."""
    return [name_addr_view(piece) for piece in split_outside_quotes(value, ",") if piece.strip()]


def option_tags(values: list[str]) -> list[str]:
    """Supported/Require/Proxy-Require values, lower-cased (option tags compare case-insensitively)."""
    return [value.strip().lower() for value in values if value.strip()]
