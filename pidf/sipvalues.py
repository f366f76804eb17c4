"""Reading SIP/MIME header *values* (never whole messages: the SIP core does that).

Media types and parameters (RFC 2045 §5.1), URI lists such as Geolocation and
Call-Info (RFC 6442 §4.1, RFC 3261 §20.9), Content-ID (RFC 2392), and the user
part of a SIP/tel URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# RFC 2045 §5.1 tspecials: an unquoted parameter value must not contain them.
TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
# RFC 2046 §5.1.1 bchars (plus space, which must not be last).
_BCHARS = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$")
MAX_BOUNDARY = 70
_CONTENT_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")


@dataclass(slots=True)
class Param:
    name: str  # lower-cased
    value: str | None  # unquoted
    quoted: bool = False
    space_after_equals: bool = False


@dataclass(slots=True)
class MediaType:
    type: str
    subtype: str
    params: list[Param] = field(default_factory=list)

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def value(self, name: str) -> str | None:
        p = self.param(name)
        return p.value if p is not None else None


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings and angle brackets."""
    if sep not in text:
        return [text]
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts, buf = [], []
    quoted = angle = False
    escape = False
    for ch in text:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if ch == "\\" and quoted:
            escape = True
        elif ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch == sep and not quoted and not angle:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def parse_params(pieces: list[str]) -> list[Param]:
    params = []
    for piece in pieces:
        if not piece.strip():
            continue
        name, eq, value = piece.partition("=")
        if not eq:
            params.append(Param(name.strip().lower(), None))
            continue
        space = value[:1].isspace()
        value = value.strip()
        quoted = len(value) >= 2 and value[0] == '"' and value[-1] == '"'
        if quoted:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.append(Param(name.strip().lower(), value, quoted, space))
    return params


def parse_media_type(value: str | None) -> MediaType | None:
    """``type/subtype *(; param)``; None when there is no type/subtype at all."""
    if value is None:
        return None
    pieces = split_outside_quotes(value, ";")
    mime = pieces[0].strip().lower()
    type_, slash, subtype = mime.partition("/")
    if not slash or not type_ or not subtype:
        return None
    return MediaType(type_.strip(), subtype.strip(), parse_params(pieces[1:]))


def boundary_defects(media: MediaType) -> set[str]:
    """The SIP core's ``body_defects`` codes that the Content-Type value alone reveals."""
    p = media.param("boundary")
    if p is None or not p.value:
        return {"boundary-missing"}
    defects = set()
    if p.space_after_equals or p.value != p.value.rstrip():
        defects.add("boundary-whitespace")
    if not p.quoted and any(ch in TSPECIALS for ch in p.value):
        defects.add("boundary-unquoted-tspecials")
    if len(p.value) > MAX_BOUNDARY:
        defects.add("boundary-too-long")
    elif not _BCHARS.match(p.value):
        defects.add("boundary-invalid-chars")
    return defects


@dataclass(slots=True)
class UriItem:
    """One ``<uri>;params`` value of a list header (Geolocation, Call-Info)."""

    uri: str | None  # None when the value is not in angle brackets
    params: list[Param] = field(default_factory=list)
    raw: str = ""

    def param(self, name: str) -> str | None:
        for p in self.params:
            if p.name == name:
                return p.value
        return None

    def has_param(self, name: str) -> bool:
        return any(p.name == name for p in self.params)


def parse_uri_list(value: str) -> tuple[list[UriItem], bool]:
    """Parse ``<a>;p=1, <b>;p=2``. Returns (items, missing_comma): a ``<`` that starts
    a new value without a separating comma (RFC 7852 Fig. 17 error) is still split."""
    items: list[UriItem] = []
    missing_comma = False
    for chunk in split_outside_quotes(value, ","):
        text = chunk.strip()
        if not text:
            continue
        while text:
            if not text.startswith("<"):
                items.append(UriItem(None, [], text))
                break
            end = text.find(">")
            if end < 0:
                items.append(UriItem(None, [], text))
                break
            uri = text[1:end].strip()
            rest = text[end + 1 :]
            # A second "<" outside quotes in the parameter part means a missing comma.
            nxt = _next_open_angle(rest)
            params_text, text = (rest[:nxt], rest[nxt:].strip()) if nxt >= 0 else (rest, "")
            if nxt >= 0:
                missing_comma = True
            params = parse_params(split_outside_quotes(params_text, ";"))
            items.append(UriItem(uri, params, ("<" + uri + ">" + params_text).strip()))
    return items, missing_comma


def _next_open_angle(text: str) -> int:
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            return i
    return -1


def scheme_of(uri: str) -> str:
    head, colon, _ = uri.partition(":")
    return head.strip().lower() if colon else ""


def name_addr_uri(value: str | None) -> str | None:
    """URI of a From / To / P-Asserted-Identity value (name-addr or addr-spec)."""
    if not value:
        return None
    start = value.find("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1 : end if end > 0 else None].strip()
    return value.split(";", 1)[0].strip()


def uri_user(uri: str | None) -> str | None:
    """User part of a sip:/sips: URI, the number of a tel: URI, or a whole urn:."""
    if not uri:
        return None
    scheme = scheme_of(uri)
    rest = uri.partition(":")[2]
    if scheme in ("sip", "sips"):
        if "@" not in rest:
            return None
        user = rest.rsplit("@", 1)[0]
        if user.startswith("urn:"):  # baresip: sip:urn:service:sos@host
            return user
        return user.split(";", 1)[0].split(":", 1)[0] or None
    if scheme == "tel":
        return rest.split(";", 1)[0] or None
    if scheme == "urn":
        return uri.strip()
    return None


def content_id_valid(value: str) -> bool:
    """RFC 2045 / RFC 8262 §3.2 msg-id syntax ``<id-left@id-right>``."""
    return bool(_CONTENT_ID.match(value.strip()))


def content_id_addr(value: str | None) -> str | None:
    """The addr-spec inside a Content-ID, for comparison with a cid: URL (RFC 2392)."""
    if value is None:
        return None
    v = value.strip()
    if v.startswith("<") and v.endswith(">"):
        v = v[1:-1]
    return v.strip() or None
