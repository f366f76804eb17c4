"""Message bodies: media types and multipart bodies (RFC 2045/2046, RFC 5621).

Bodies are bytes. A multipart body is split into parts that keep their exact bytes
(headers included), so relaying an unmodified body re-emits the original bytes, part
headers such as Content-ID and Content-Disposition included (several peers lose them;
see docs). The splitter is tolerant of what real clients send and records each thing
it had to tolerate in `defects`, for the PIDF-LO S-checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .grammar import Params, split_outside_quotes

# RFC 2045 §5.1 tspecials: a boundary containing one must be quoted.
_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')


@dataclass(eq=False)
class MediaType:
    """`type/subtype;params`; type and subtype lower-cased, params as written."""

    type: str
    subtype: str
    params: Params = field(default_factory=Params)
    defects: list[str] = field(default_factory=list)

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart"

    @property
    def boundary(self) -> str | None:
        value = self.params.get("boundary")
        if value is None:
            return None
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            return value[1:-1]
        return value

    @property
    def charset(self) -> str | None:
        value = self.params.get("charset")
        return value.strip('"').lower() if value else None

    def __str__(self) -> str:
        return f"{self.mime}{self.params}"


def parse_media_type(value: str) -> MediaType | None:
    """Parse a Content-Type value; None when it is not `type/subtype`.

    Tolerant: `application/sdp ; charset=utf-8` (space before `;`) and an unquoted boundary
    holding tspecials such as `boundary= ------=_NextPart_000` (Microsoft's E911 example)
    both parse; the second is recorded as defects.
    """
    head, _, rest = value.partition(";")
    kind, slash, sub = head.strip().partition("/")
    kind, sub = kind.strip().lower(), sub.strip().lower()
    if not slash or not kind or not sub:
        return None
    defects: list[str] = []
    items: list[tuple[str, str | None]] = []
    for chunk in split_outside_quotes(rest, ";") if rest else []:
        name, eq, raw_value = chunk.partition("=")
        name = name.strip()
        if not name:
            continue
        if not eq:
            items.append((name, None))
            continue
        if name.lower() == "boundary":
            if raw_value[:1] in (" ", "\t") or (raw_value.rstrip() != raw_value):
                defects.append("boundary-whitespace")
            stripped = raw_value.strip()
            if not (stripped.startswith('"') and stripped.endswith('"')) and not _TSPECIALS.isdisjoint(stripped):
                defects.append("boundary-unquoted-tspecials")
            boundary = stripped.strip('"')
            if len(boundary) > 70:
                defects.append("boundary-too-long")
            items.append((name, stripped))
        else:
            items.append((name, raw_value.strip()))
    return MediaType(kind, sub, Params(items), defects)


@dataclass(eq=False)
class Disposition:
    """Content-Disposition (RFC 3261 §20.11, RFC 5621 §8.1: `handling` defaults to required)."""

    type: str
    params: Params = field(default_factory=Params)

    @property
    def handling(self) -> str:
        return (self.params.get("handling") or "required").lower()


def parse_disposition(value: str) -> Disposition:
    kind, _, rest = value.partition(";")
    return Disposition(kind.strip().lower(), _parse_loose_params(rest))


def _parse_loose_params(text: str) -> Params:
    items: list[tuple[str, str | None]] = []
    for chunk in split_outside_quotes(text, ";") if text else []:
        name, eq, value = chunk.partition("=")
        if name.strip():
            items.append((name.strip(), value.strip() if eq else None))
    return Params(items)


@dataclass(eq=False)
class BodyPart:
    """One part of a multipart body. `raw` is exactly what stood between its delimiters."""

    headers: list[tuple[str, str]]  # names as written, values unfolded
    content: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        key = name.lower()
        for item_name, value in self.headers:
            if item_name.lower() == key:
                return value
        return None

    @property
    def content_type(self) -> MediaType | None:
        value = self.header("Content-Type")
        return parse_media_type(value) if value else None

    @property
    def mime(self) -> str | None:
        media = self.content_type
        return media.mime if media else None

    @property
    def content_id(self) -> str | None:
        return self.header("Content-ID")

    @property
    def disposition(self) -> Disposition | None:
        value = self.header("Content-Disposition")
        return parse_disposition(value) if value else None

    @classmethod
    def build(cls, headers: list[tuple[str, str]], content: bytes) -> BodyPart:
        head = b"".join(f"{name}: {value}\r\n".encode("utf-8", "surrogateescape") for name, value in headers)
        return cls(list(headers), content, head + b"\r\n" + content)


def parse_part(raw: bytes, defects: list[str]) -> BodyPart:
    """Split a part into header fields and content (RFC 2046 §5.1.1).

    A part that starts with an empty line has no headers; one whose first line is not a
    header field is all content. Part header lines end in CRLF or LF. Per-part
    Content-Length (pjsua, liblinphone) is honoured when it fits and recorded as a defect.
    """
    headers: list[tuple[str, str]] = []
    position = 0
    length = len(raw)
    while position < length:
        newline = raw.find(b"\n", position)
        end = length if newline < 0 else newline + 1
        stripped = raw[position:end].rstrip(b"\r\n")
        position = end
        if not stripped:
            break  # the empty line that ends the part headers
        if stripped[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {stripped.decode('utf-8', 'surrogateescape').strip()}")
            continue
        text = stripped.decode("utf-8", "surrogateescape")
        name, colon, value = text.partition(":")
        name = name.strip()
        if not colon or not name or " " in name:
            # not a header line: the part has no header block, all of it is content
            return BodyPart([], raw, raw)
        headers.append((name, value.strip()))
    content = raw[position:]
    for name, value in headers:
        if name.lower() == "content-length":
            defects.append("part-content-length")
            declared = value.strip()
            if declared.isascii() and declared.isdigit() and int(declared) <= len(content):
                content = content[: int(declared)]
    return BodyPart(headers, content, raw)


@dataclass(eq=False)
class Multipart:
    """A parsed multipart body. `to_bytes()` of an unmodified one is the original bytes."""

    boundary: str
    parts: list[BodyPart]
    preamble: bytes = b""
    epilogue: bytes = b""
    defects: list[str] = field(default_factory=list)
    raw: bytes | None = None
    line_end: bytes = b"\r\n"
    # The part list `raw` was split into: a list changed in place (`parts.remove(p)`)
    # must not be hidden behind the original bytes.
    _raw_parts: tuple[BodyPart, ...] | None = field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        if self.raw is not None and self._unchanged():
            return self.raw
        return build_multipart(self.parts, self.boundary, self.preamble, self.epilogue, self.line_end)

    def _unchanged(self) -> bool:
        parts, original = self.parts, self._raw_parts
        if original is None:
            return True  # made by a caller with its own `raw`
        return len(parts) == len(original) and all(mine is theirs for mine, theirs in zip(parts, original))

    def with_parts(self, parts: list[BodyPart]) -> Multipart:
        """The same body with another part list, re-delimited; original part bytes kept."""
        return Multipart(self.boundary, list(parts), self.preamble, self.epilogue, list(self.defects), None, self.line_end)


def build_multipart(
    parts: list[BodyPart], boundary: str, preamble: bytes = b"", epilogue: bytes = b"", line_end: bytes = b"\r\n"
) -> bytes:
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    out = [preamble]
    for index, part in enumerate(parts):
        # The line end before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        if index:
            out.append(line_end)
        out.append(delimiter + line_end + part.raw)
    out.append(line_end + delimiter + b"--" + line_end + epilogue)
    return b"".join(out)


def parse_multipart(body: bytes, media: MediaType) -> Multipart | None:
    """Split a multipart body; None when it declares no boundary or has no delimiter.

    Unknown multipart subtypes are treated as multipart/mixed (RFC 5621 §4.2).
    """
    defects = list(media.defects)
    boundary = media.boundary
    if not boundary:
        return None
    delimiters = _delimiters(body, b"--" + boundary.encode("utf-8", "surrogateescape"))
    if not delimiters:
        return None
    first_start = delimiters[0][0]
    preamble = body[:first_start]
    if preamble:
        defects.append("preamble")
    if any(line_end == b"\n" for _, _, _, line_end in delimiters):
        defects.append("lf-line-endings")
    line_end = b"\n" if delimiters[0][3] == b"\n" else b"\r\n"
    parts: list[BodyPart] = []
    epilogue = b""
    closed = False
    for index, (_, end, close, _) in enumerate(delimiters):
        if close:
            closed = True
            epilogue = body[end:]
            break
        following = index + 1 < len(delimiters)
        raw = body[end : delimiters[index + 1][0] if following else len(body)]
        if following:
            # strip the line end that belongs to the next delimiter
            if raw.endswith(b"\r\n"):
                raw = raw[:-2]
            elif raw.endswith(b"\n") or raw.endswith(b"\r"):
                raw = raw[:-1]
        parts.append(parse_part(raw, defects))
    if not closed:
        defects.append("no-close-delimiter")
    return Multipart(boundary, parts, preamble, epilogue, _unique(defects), body, line_end, tuple(parts))


def _delimiters(body: bytes, dash_boundary: bytes) -> list[tuple[int, int, bool, bytes]]:
    """Every delimiter line: (start, end past its line end, is the close delimiter, line end).

    A delimiter starts the body or a line, may be followed by `--` (close) and transport
    padding (SP/HTAB), and ends the line (RFC 2046 §5.1.1); `--boundaryX` is content.
    """
    found: list[tuple[int, int, bool, bytes]] = []
    size = len(body)
    step = len(dash_boundary)
    position = body.find(dash_boundary)
    while position >= 0:
        start = position
        position = body.find(dash_boundary, start + step)
        if start and body[start - 1] != 0x0A:  # not at the start of a line
            continue
        cursor = start + step
        close = body.startswith(b"--", cursor)
        if close:
            cursor += 2
        while cursor < size and body[cursor] in (0x20, 0x09):
            cursor += 1
        if cursor == size:
            line_end = b""
        elif body.startswith(b"\r\n", cursor):
            line_end = b"\r\n"
        elif body[cursor] in (0x0A, 0x0D):
            line_end = body[cursor : cursor + 1]
        else:
            continue  # `--boundaryX`, `--boundary--X`: content, not a delimiter
        found.append((start, cursor + len(line_end), close, line_end))
    return found


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
