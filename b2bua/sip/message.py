"""SIP requests and responses: parse from bytes, inspect, change, serialize (RFC 3261 §7).

Rules kept here:
- Header names are case-insensitive and compact forms are expanded (`Headers` looks up by
  the lower-case long name).
- Every header field remembers the exact bytes it arrived as (`HeaderField.raw`), folding
  and odd spacing included; the start line too. `to_bytes()` of an unmodified message is
  therefore the original message, and a relayed header keeps its bytes. A field that is
  set or added through the API is written canonically.
- Content-Length is written to match the body unless deliberately overridden
  (`content_length_override`, for reproducing sloppy SBCs).
- Parsing never raises anything but `MessageError`, whose `status` is the response a UAS
  owes the sender (400 / 413 / 414 / 505 / 513). When the start line and the header
  fields could be framed, the error carries the partly parsed message so a 400 can
  still be addressed to the sender.
- The typed views (`via`, `from_`, `to`, `contact`, the URI's params ...) are parsed
  once and cached. They are views: change a header through `headers.set/add/remove`
  (which rewrites that one line). From, To, Contact, Route and Record-Route views are
  even shared between messages that carry the same text (parsed once per text, not per
  message): never change one in place; `copy()` it to keep or edit it. The Request-URI
  is the exception: it is the request's own, and a change made to `request.uri` in
  place is noticed and the request line rewritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .body import MediaType, Multipart, parse_media_type, parse_multipart
from .errors import MessageError
from .grammar import TOKEN_CHARS, split_list
from .headers import (
    LIST_HEADERS,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    header_key,
    name_addr_list_view,
    name_addr_view,
    name_and_key,
    option_tags,
    parse_cseq,
    parse_via,
)
from .uri import SipUri, Uri, parse_uri

SIP_VERSION = "SIP/2.0"


@dataclass(frozen=True)
class Limits:
    """What the parser accepts. A message over a limit is refused, never half-read."""

    max_message: int = 65535  # bytes; UDP datagrams up to 65,535 bytes (RFC 3261 §18.1.1)
    max_body: int = 65535
    max_headers: int = 256  # header fields
    max_line: int = 8192  # bytes in one header field (folded lines included) or in the start line


DEFAULT_LIMITS = Limits()


def _one_line(text: str, what: str) -> str:
    """Text written into a message by us must not break the line: a CR or LF taken from
    a peer (a %0D%0A-decoded URI header, a relayed value) would inject header fields."""
    if "\r" in text or "\n" in text:
        raise MessageError(f"line break in {what} {text[:80]!r}")
    return text


class HeaderField:
    """One header field as it stands in the message. Never changed once made (the parser
    shares the field of a line it has seen before between messages)."""

    __slots__ = ("name", "key", "value", "raw")

    def __init__(self, name: str, value: str, raw: bytes | None = None, key: str | None = None) -> None:
        if raw is None:
            _one_line(name, "header name")
            _one_line(value, f"{name} value")
        self.name = name  # canonical long form, or as written when unknown
        self.key = key if key is not None else name_and_key(name)[1]
        self.value = value  # unfolded and stripped
        self.raw = raw  # exact bytes received (line end included), None when made here

    def to_bytes(self, line_end: bytes = b"\r\n") -> bytes:
        """The received bytes, or `Name: value` and `line_end` for a field made here."""
        if self.raw is not None:
            return self.raw
        return f"{self.name}: {self.value}".encode("utf-8", "surrogateescape") + line_end

    def __repr__(self) -> str:
        return f"HeaderField({self.name!r}, {self.value!r})"


class Headers:
    """The ordered header fields of a message, looked up case-insensitively."""

    __slots__ = ("fields", "_parsed")

    def __init__(self, fields: list[HeaderField] | None = None) -> None:
        self.fields: list[HeaderField] = fields if fields is not None else []
        self._parsed: dict[str, object] = {}

    @classmethod
    def of(cls, pairs: list[tuple[str, str]]) -> Headers:
        return cls([HeaderField(canonical_name(name), value) for name, value in pairs])

    def get(self, name: str) -> str | None:
        """The first field's whole value, or None."""
        key = header_key(name)
        for item in self.fields:
            if item.key == key:
                return item.value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value: all fields of that name, list headers split at their commas (§7.3.1)."""
        key = header_key(name)
        values = [item.value for item in self.fields if item.key == key]
        if key in LIST_HEADERS:
            return [element for value in values for element in split_list(value)]
        return values

    def fields_named(self, name: str) -> list[HeaderField]:
        key = header_key(name)
        return [item for item in self.fields if item.key == key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(item.key == key for item in self.fields)

    def __iter__(self) -> Iterator[HeaderField]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def items(self) -> list[tuple[str, str]]:
        return [(item.name, item.value) for item in self.fields]

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, where the first one stood (or at the end)."""
        canonical, key = name_and_key(name)
        self._parsed.pop(key, None)
        new = HeaderField(canonical, value, None, key)
        for index, item in enumerate(self.fields):
            if item.key == key:
                self.fields[index] = new
                self.fields[index + 1 :] = [other for other in self.fields[index + 1 :] if other.key != key]
                return
        self.fields.append(new)

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Add a field: at the end, or before the first field of that name (a new top Via)."""
        canonical, key = name_and_key(name)
        if self._parsed:
            self._parsed.pop(key, None)
        new = HeaderField(canonical, value, None, key)
        if first:
            for index, item in enumerate(self.fields):
                if item.key == key:
                    self.fields.insert(index, new)
                    return
            self.fields.insert(0, new)
            return
        self.fields.append(new)

    def append_field(self, item: HeaderField) -> None:
        """Append a field as is (its raw bytes kept): how a B2BUA carries a header across."""
        if self._parsed:
            self._parsed.pop(item.key, None)
        self.fields.append(item)

    def remove(self, name: str) -> int:
        key = header_key(name)
        self._parsed.pop(key, None)
        before = len(self.fields)
        self.fields = [item for item in self.fields if item.key != key]
        return before - len(self.fields)

    def remove_first_value(self, name: str) -> None:
        """Remove the first element of a list header (the top Via of a response, §18.1.2)."""
        key = header_key(name)
        self._parsed.pop(key, None)
        for index, item in enumerate(self.fields):
            if item.key == key:
                rest = split_list(item.value)[1:]
                if rest:
                    self.fields[index] = HeaderField(item.name, ", ".join(rest))
                else:
                    del self.fields[index]
                return

    def copy(self) -> Headers:
        return Headers(list(self.fields))

    def parsed(self, key: str, parse):  # noqa: ANN001 - small internal cache helper
        """Parse a header once; the cache entry goes when the header is changed."""
        value = self._parsed.get(key, _UNPARSED)
        if value is _UNPARSED:  # the first look at every message: no exception on this path
            value = self._parsed[key] = parse()
        return value


_UNPARSED = object()


class Message:
    """What requests and responses share."""

    __slots__ = (
        "headers", "body", "start_raw", "blank_line", "content_length_override", "_multipart", "_received_body",
    )

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.start_raw: bytes | None = None
        self.blank_line = b"\r\n"
        self.content_length_override: int | None = None
        self._multipart: tuple[bytes, MediaType, Multipart | None] | None = None
        self._received_body: bytes | None = None  # the body as parsed: unchanged means no Content-Length added

    # -- typed views of the headers every message has -------------------------------
    # Each is read many times per message (transaction matching, dialogs, the bridge): the
    # cached value is looked up directly, and the parse runs only on the first access.
    @property
    def via(self) -> list[Via]:
        value = self.headers._parsed.get("via", _UNPARSED)
        if value is _UNPARSED:
            value = self.headers._parsed["via"] = [parse_via(item) for item in self.headers.get_all("Via")]
        return value  # type: ignore[return-value]

    @property
    def top_via(self) -> Via | None:
        vias = self.via
        return vias[0] if vias else None

    @property
    def from_(self) -> NameAddr:
        value = self.headers._parsed.get("from", _UNPARSED)
        if value is _UNPARSED:
            value = self.headers._parsed["from"] = name_addr_view(self._required("From"))
        return value  # type: ignore[return-value]

    @property
    def to(self) -> NameAddr:
        value = self.headers._parsed.get("to", _UNPARSED)
        if value is _UNPARSED:
            value = self.headers._parsed["to"] = name_addr_view(self._required("To"))
        return value  # type: ignore[return-value]

    @property
    def call_id(self) -> str:
        value = self.headers._parsed.get("call-id", _UNPARSED)
        if value is _UNPARSED:
            value = self.headers._parsed["call-id"] = self._required("Call-ID")
        return value  # type: ignore[return-value]

    @property
    def cseq(self) -> CSeq:
        value = self.headers._parsed.get("cseq", _UNPARSED)
        if value is _UNPARSED:
            value = self.headers._parsed["cseq"] = parse_cseq(self._required("CSeq"))
        return value  # type: ignore[return-value]

    @property
    def contact(self) -> list[NameAddr]:
        value = self.headers._parsed.get("contact", _UNPARSED)
        if value is _UNPARSED:
            values = self.headers.get_all("Contact")
            value = [] if values == ["*"] else [name_addr_view(item) for item in values]
            self.headers._parsed["contact"] = value
        return value  # type: ignore[return-value]

    @property
    def record_route(self) -> list[NameAddr]:
        return self.headers.parsed("record-route", lambda: name_addr_list_view(", ".join(self.headers.get_all("Record-Route"))))

    @property
    def route(self) -> list[NameAddr]:
        return self.headers.parsed("route", lambda: name_addr_list_view(", ".join(self.headers.get_all("Route"))))

    @property
    def content_type(self) -> MediaType | None:
        def parse() -> MediaType | None:
            value = self.headers.get("Content-Type")
            return parse_media_type(value) if value else None

        return self.headers.parsed("content-type", parse)

    @property
    def supported(self) -> list[str]:
        return option_tags(self.headers.get_all("Supported"))

    @property
    def require(self) -> list[str]:
        return option_tags(self.headers.get_all("Require"))

    @property
    def multipart(self) -> Multipart | None:
        """The body split into parts when it is multipart/* (cached per body)."""
        media = self.content_type
        if media is None or not media.is_multipart:
            return None
        body = self.body
        cached = self._multipart
        # The Content-Type view is replaced whenever the header changes, so identity is enough.
        if cached is not None and cached[0] is body and cached[1] is media:
            return cached[2]
        result = parse_multipart(body, media)
        self._multipart = (body, media, result)
        return result

    @property
    def sdp(self) -> bytes | None:
        """The session description: the body when it is application/sdp, or the first
        application/sdp part of a multipart body (an emergency INVITE's SDP + PIDF-LO)."""
        media = self.content_type
        if media is None:
            return None
        if media.mime == "application/sdp":
            return self.body
        multipart = self.multipart
        if multipart is not None:
            for part in multipart.parts:
                if part.mime == "application/sdp":
                    return part.content
        return None

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise MessageError(f"missing {name} header")
        return value

    # -- serialization ----------------------------------------------------------------
    def start_line(self) -> str:
        raise NotImplementedError

    def _start_raw_if_current(self) -> bytes | None:
        return self.start_raw

    def to_bytes(self) -> bytes:
        # Lines written here end like the received message's lines (LF-only peers).
        line_end = b"\n" if self.blank_line == b"\n" else b"\r\n"
        start = self._start_raw_if_current()
        if start is None:
            start = self.start_line().encode("utf-8", "surrogateescape") + line_end
        out = [start]
        body = self.body
        wanted = self.content_length_override if self.content_length_override is not None else len(body)
        wrote_length = False
        for item in self.headers.fields:
            if item.key == "content-length":
                if wrote_length:
                    continue
                wrote_length = True
                # Kept as received (`Content-Length:  1069`, `l: 0150`) while it is right.
                if item.raw is not None and _ascii_int(item.value) == wanted:
                    out.append(item.raw)
                else:
                    out.append(b"Content-Length: %d" % wanted + line_end)
                continue
            out.append(item.raw if item.raw is not None else item.to_bytes(line_end))
        if not wrote_length and (
            self._received_body is None or body is not self._received_body or self.content_length_override is not None
        ):
            # A message made here, or whose body changed, states its length. A received
            # one that had none (legal over UDP) and is unchanged is re-emitted as it was.
            out.append(b"Content-Length: %d" % wanted + line_end)
        out.append(self.blank_line)
        out.append(body)
        return b"".join(out)

    def __bytes__(self) -> bytes:
        return self.to_bytes()


class Request(Message):
    __slots__ = ("_method", "_uri", "_uri_text")

    def __init__(self, method: str, uri: Uri | str, headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self._method = _one_line(method, "method")
        self._uri = parse_uri(uri) if isinstance(uri, str) else uri
        self._uri_text: str | None = None  # str(uri) when first handed out by `.uri`

    def _start_raw_if_current(self) -> bytes | None:
        # The received request line stands unless the URI object was changed in place
        # (`request.uri.params.set(...)`): then it is written anew. Only a URI handed out
        # by the `uri` property can have been changed, so only then is it compared.
        if self.start_raw is not None and self._uri_text is not None and str(self._uri) != self._uri_text:
            self.start_raw = None
        return self.start_raw

    @property
    def method(self) -> str:
        return self._method

    @method.setter
    def method(self, value: str) -> None:
        self._method = _one_line(value, "method")
        self.start_raw = None

    @property
    def uri(self) -> Uri:
        if self._uri_text is None and self.start_raw is not None:
            self._uri_text = str(self._uri)
        return self._uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self.start_raw = None

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards as a number; None when absent (or unreadable in a request made here)."""
        value = self.headers.get("Max-Forwards")
        return _ascii_int(value) if value is not None else None

    def start_line(self) -> str:
        return f"{self._method} {self._uri} {SIP_VERSION}"

    def __repr__(self) -> str:
        return f"<Request {self._method} {self._uri}>"


class Response(Message):
    __slots__ = ("_status", "_reason")

    def __init__(self, status: int, reason: str | None = None, headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self._status = status
        if reason is None:
            reason = REASON_PHRASES.get(status, "Unknown")
        self._reason = _one_line(reason, "reason phrase")

    @property
    def status(self) -> int:
        return self._status

    @property
    def reason(self) -> str:
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = _one_line(value, "reason phrase")
        self.start_raw = None

    @property
    def is_provisional(self) -> bool:
        return self._status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self._status < 300

    def start_line(self) -> str:
        return f"{SIP_VERSION} {self._status} {self._reason}"

    def __repr__(self) -> str:
        return f"<Response {self._status} {self._reason}>"


# -- parsing ----------------------------------------------------------------------------

# Header fields that may appear once only: a second one makes the message ambiguous
# (RFC 3261 §7.3.1 allows repetition only for comma-list headers; RFC 4475 §3.3.8, §3.3.9).
SINGLE_HEADERS = frozenset(("from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type"))
_MANDATORY = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))
_LWS = " \t\r\n"
_FOLD = (0x20, 0x09)  # a line starting with SP or HTAB continues the field before it


def _ascii_int(text: str) -> int | None:
    """A non-negative decimal number in ASCII digits, or None. (`"²".isdigit()` and
    `"١٢".isdigit()` are True in Python; neither is a SIP number.)"""
    text = text.strip(_LWS)
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one whole message (a datagram, or a frame cut by the stream framer)."""
    if len(data) > limits.max_message:
        raise MessageError(f"message of {len(data)} bytes exceeds {limits.max_message}", 513)
    # RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives, stray line ends).
    offset = 0
    length = len(data)
    while offset < length and data[offset] in (13, 10):
        offset += 1
    head_end, blank = _find_head_end(data, offset)
    head = data[offset:head_end]
    rest = data[head_end + len(blank) :] if blank else b""
    lines = head.splitlines(keepends=True)
    if not lines:
        raise MessageError("empty message")
    message = _parse_start_line(lines[0])
    last = lines[-1]
    message.blank_line = blank or (b"\n" if last.endswith(b"\n") and not last.endswith(b"\r\n") else b"\r\n")
    fields, error = _parse_header_fields(lines, limits)
    message.headers = Headers(fields)
    if error is None and not blank and not last.endswith((b"\n", b"\r")):
        # The datagram ends inside a line: it was cut short. (A last line that ends but
        # is not followed by the empty line is let through: bodiless requests from
        # sloppy phones; relaying it writes the missing empty line.)
        error = MessageError("message ends inside a header line (truncated)")
    if error is not None:
        error.message = message
        raise error
    if len(lines[0]) > limits.max_line:
        # RFC 3261 §21.4.12: 414 when the Request-URI is what is too long.
        raise MessageError(
            f"start line of {len(lines[0])} bytes exceeds {limits.max_line}",
            414 if isinstance(message, Request) else 513,
            message,
        )
    body = _cut_body(message, rest, limits)
    message.body = body
    message._received_body = body
    _check_mandatory(message)
    return message


def _find_head_end(data: bytes, offset: int) -> tuple[int, bytes]:
    crlf = data.find(b"\r\n\r\n", offset)
    if crlf >= 0 and data.find(b"\n\n", offset, crlf) < 0:
        return crlf + 2, b"\r\n"
    lf = data.find(b"\n\n", offset)
    if lf >= 0:
        return lf + 1, b"\n"
    return len(data), b""


def _parse_start_line(line: bytes) -> Request | Response:
    text = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
    if text[:4].upper() == "SIP/":
        version, _, rest = text.partition(" ")
        code, _, reason = rest.partition(" ")
        # SIP-Version is case-insensitive (RFC 3261 §7.1).
        if version.upper() != SIP_VERSION:
            raise MessageError(f"unsupported version {version!r}", 505)
        if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
            raise MessageError(f"bad status code {code!r}")
        response = Response(int(code), reason)
        response.start_raw = line
        return response
    parts = text.split(" ")
    if len(parts) != 3 or not all(parts):
        # RFC 3261 §7.1: exactly one SP between the elements (RFC 4475 §3.1.2.9, §3.1.2.10).
        raise MessageError(f"malformed request line {text[:200]!r}")
    method, uri_text, version = parts
    if not TOKEN_CHARS.issuperset(method):  # RFC 3261 §25.1: Method is a token
        raise MessageError(f"bad method {method[:100]!r}")
    if version.upper() != SIP_VERSION:
        raise MessageError(f"unsupported version {version[:100]!r}", 505)
    request = Request(method, parse_uri(uri_text))
    request.start_raw = line
    return request


# Header lines repeat: within a call (From, To, Call-ID and CSeq in every message of a
# transaction or dialog) and across calls (`Max-Forwards: 70`, a Content-Type, a phone's
# Contact or User-Agent). A line met before is not decoded and split again: its
# HeaderField is reused, shared by the messages that carry that line (a HeaderField is
# never changed once made; `Headers.set` replaces it). Bounded: emptied when full.
_LINE_FIELDS: dict[bytes, HeaderField] = {}
_LINE_FIELDS_SIZE = 4096
_LINE_LONGEST = 256  # bytes; longer lines are parsed every time


def _parse_header_fields(lines: list[bytes], limits: Limits) -> tuple[list[HeaderField], MessageError | None]:
    """Header fields from the head's lines (`lines[0]` is the start line, skipped).

    Returns the fields and the first error met. Parsing goes on past a bad line, so the
    error can carry a message complete enough to address a 400 to (RFC 3261 §8.2.6.2).
    """
    fields: list[HeaderField] = []
    error: MessageError | None = None
    max_line = limits.max_line
    max_headers = limits.max_headers
    count = len(lines)
    index = 1
    known_lines = _LINE_FIELDS
    while index < count:
        line = lines[index]
        index += 1
        known = known_lines.get(line)
        if known is not None and (index == count or lines[index][0] not in _FOLD) and len(line) <= max_line:
            fields.append(known)  # a line seen before, not folded here
            if len(fields) > max_headers:
                if error is None:
                    error = MessageError(f"more than {max_headers} header fields", 513)
                break
            continue
        if line[0] in _FOLD:
            if error is None:
                error = MessageError("continuation line before any header")
            continue
        text = line.decode("utf-8", "surrogateescape")
        name, colon, value = text.partition(":")
        if index == count or lines[index][0] not in _FOLD:
            raw = line
            value = value.strip(_LWS)
        else:
            # Folding (RFC 3261 §7.3.1): continuation lines start with SP or HTAB, and
            # each line break with the white space around it is one SP. Only the line
            # ends the framer knows count: str.splitlines would also split at U+0085,
            # U+2028, FF ... inside a value.
            first = index
            while index < count and lines[index][0] in _FOLD:
                index += 1
            raw = b"".join(lines[first - 1 : index])
            pieces = [value.strip(_LWS)]
            pieces.extend(piece.decode("utf-8", "surrogateescape").strip(_LWS) for piece in lines[first:index])
            value = " ".join(piece for piece in pieces if piece)
        if len(raw) > max_line:
            if error is None:
                error = MessageError(f"header line of {len(raw)} bytes exceeds {max_line}", 513)
            continue
        name = name.rstrip(" \t")  # `TO :` is legal (HCOLON, RFC 3261 §25.1)
        if not colon or not name or " " in name or "\t" in name:
            if error is None:
                error = MessageError(f"malformed header line {text.strip(_LWS)[:80]!r}")
            continue
        canonical, key = name_and_key(name)
        item = HeaderField(canonical, value, raw, key)
        fields.append(item)
        if raw is line and len(line) <= _LINE_LONGEST:
            if len(known_lines) >= _LINE_FIELDS_SIZE:
                known_lines.clear()
            known_lines[line] = item
        if len(fields) > max_headers:
            if error is None:
                error = MessageError(f"more than {max_headers} header fields", 513)
            break
    return fields, error


def _cut_body(message: Message, rest: bytes, limits: Limits) -> bytes:
    declared = message.headers.get("Content-Length")
    if declared is None:
        body = rest
    else:
        length = _ascii_int(declared)
        if length is None:
            raise MessageError(f"bad Content-Length {declared[:40]!r}", 400, message)
        if length > len(rest):
            raise MessageError(f"body shorter than Content-Length {length}", 400, message)
        body = rest[:length]  # octets beyond Content-Length are discarded (§18.3)
    if len(body) > limits.max_body:
        raise MessageError(f"body of {len(body)} bytes exceeds {limits.max_body}", 413, message)
    return body


def _check_mandatory(message: Message) -> None:
    """RFC 3261 §8.1.1 / §8.2: the headers every request and response must carry, once."""
    try:
        counts: dict[str, int] = {}
        call_id: str | None = None  # the first field's value, as `headers.get` gives it
        max_forwards: str | None = None
        for item in message.headers.fields:
            key = item.key
            if key in SINGLE_HEADERS or key == "via":
                if key in counts:
                    counts[key] += 1
                    continue
                counts[key] = 1
                if key == "call-id":
                    call_id = item.value
                elif key == "max-forwards":
                    max_forwards = item.value
        for key, name in _MANDATORY:
            if key not in counts:
                raise MessageError(f"missing {name} header")
        for key, seen in counts.items():
            if seen > 1 and key != "via":
                raise MessageError(f"{seen} {canonical_name(key)} header fields where one is allowed")
        if not call_id or " " in call_id or "\t" in call_id:
            raise MessageError(f"bad Call-ID {call_id!r}")  # word ["@" word] (§25.1)
        if not message.via:
            raise MessageError("empty Via header")
        message.from_, message.to  # noqa: B018 - parse now so errors surface at the edge
        cseq = message.cseq
        if isinstance(message, Request):
            if cseq.method != message.method:
                raise MessageError(f"CSeq method {cseq.method} does not match {message.method}")
            if max_forwards is not None:
                hops = _ascii_int(max_forwards)
                if hops is None or hops > 255:
                    raise MessageError(f"bad Max-Forwards {max_forwards[:40]!r}")
            uri = message._uri
            if isinstance(uri, SipUri) and uri.headers is not None:
                # §19.1.1 table: no headers component in a Request-URI (RFC 4475 §3.1.2.11).
                raise MessageError(f"headers in the Request-URI {str(uri)[:200]!r}")
            message.contact  # noqa: B018 - a request's Contact is its remote target (§8.1.1.8)
    except MessageError as error:
        error.message = message
        raise


# -- building responses -----------------------------------------------------------------


def make_response(request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None) -> Response:
    """A response to `request` per RFC 3261 §8.2.6.2: Via, From, Call-ID, CSeq copied
    byte-exact, To copied with our tag added (not on 100), Timestamp echoed in 100."""
    headers = Headers()
    for item in request.headers.fields:
        if item.key in ("via", "from", "call-id", "cseq") or (item.key == "timestamp" and status == 100):
            headers.append_field(item)
        elif item.key == "to":
            if to_tag and status != 100 and request.to.tag is None:
                headers.append_field(HeaderField("To", f"{item.value};tag={to_tag}"))
            else:
                headers.append_field(item)
        elif item.key == "record-route" and 100 < status < 300:
            headers.append_field(item)  # §12.1.1: copied into dialog-creating responses
    return Response(status, reason, headers)


REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    199: "Early Dialog Terminated", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone", 412: "Conditional Request Failed",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    424: "Bad Location Information", 428: "Use Identity Header", 429: "Provide Referrer Identity",
    433: "Anonymity Disallowed", 436: "Bad Identity-Info", 437: "Unsupported Certificate",
    438: "Invalid Identity Header", 439: "First Hop Lacks Outbound Support", 440: "Max-Breadth Exceeded",
    469: "Bad Info Package", 470: "Consent Needed", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 555: "Push Notification Service Not Supported", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
    607: "Unwanted", 608: "Rejected",
}
