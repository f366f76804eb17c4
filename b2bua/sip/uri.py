"""SIP, SIPS and TEL URIs (RFC 3261 §19.1, RFC 3966) and any other absolute URI.

A URI remembers its parts as written, so `str(parse_uri(s)) == s` for every URI that
parses, except that the scheme is lower-cased (`SIP:` is written `sip:`). Comparison
follows RFC 3261 §19.1.4. The message keeps the received bytes of the start line and
header fields, so a relayed URI keeps its spelling regardless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote as percent_decode

from .errors import MessageError
from .grammar import Params, ParsedTexts, parse_params


@dataclass(eq=False)
class SipUri:
    scheme: str = "sip"  # "sip" or "sips", lower-case
    user: str | None = None
    password: str | None = None
    host: str = ""  # as written; an IPv6 reference keeps its brackets (RFC 3261 §25.1)
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: str | None = None  # the `?a=b&c=d` part, without the `?`

    @property
    def host_address(self) -> str:
        """The host without IPv6 brackets, for socket calls."""
        if self.host.startswith("[") and self.host.endswith("]"):
            return self.host[1:-1]
        return self.host

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def is_secure(self) -> bool:
        return self.scheme == "sips"

    def copy(self) -> SipUri:
        return SipUri(self.scheme, self.user, self.password, self.host, self.port, self.params.copy(), self.headers)

    def __str__(self) -> str:
        user = self.user
        if user is None:
            userinfo = ""
        elif self.password is None:
            userinfo = user + "@"
        else:
            userinfo = f"{user}:{self.password}@"
        port = "" if self.port is None else f":{self.port}"
        headers = "" if self.headers is None else "?" + self.headers
        return f"{self.scheme}:{userinfo}{self.host}{port}{self.params}{headers}"

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        # RFC 3261 §19.1.4: user/password case-sensitive (after unescaping), host
        # case-insensitive, port must match (absent != 5060), and the parameters
        # user/ttl/method/maddr/transport must match whenever either side has them.
        if not isinstance(other, SipUri):
            return NotImplemented
        if self.scheme != other.scheme or self.port != other.port:
            return False
        if percent_decode(self.user or "") != percent_decode(other.user or ""):
            return False
        if (self.password or "") != (other.password or ""):
            return False
        if self.host.lower() != other.host.lower():
            return False
        for name in ("user", "ttl", "method", "maddr", "transport"):
            mine, theirs = self.params.get(name), other.params.get(name)
            if (name in self.params or name in other.params) and (mine or "").lower() != (theirs or "").lower():
                return False
        for name, _ in self.params.items():
            # the first value of a name on both sides (a repeated name must not make a URI
            # unequal to itself)
            if name in other.params and (self.params.get(name) or "").lower() != (other.params.get(name) or "").lower():
                return False
        return (self.headers or "") == (other.headers or "")

    __hash__ = None  # type: ignore[assignment]


@dataclass(eq=False)
class TelUri:
    """RFC 3966 `tel:` URI: a number and its parameters (phone-context, ext, isub...)."""

    number: str
    params: Params = field(default_factory=Params)
    scheme: str = "tel"

    @property
    def digits(self) -> str:
        """The number without visual separators (RFC 3966 §5.1.1)."""
        return "".join(char for char in self.number if char not in "-.() ")

    def copy(self) -> TelUri:
        return TelUri(self.number, self.params.copy())

    def __str__(self) -> str:
        return f"tel:{self.number}{self.params}"

    def __repr__(self) -> str:
        return f"TelUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelUri):
            return NotImplemented
        return self.digits == other.digits and self.params == other.params

    __hash__ = None  # type: ignore[assignment]


@dataclass(eq=False)
class AbsoluteUri:
    """Any other URI (`urn:service:sos`, `cid:...`, `https://...`), kept as written."""

    scheme: str
    rest: str

    def copy(self) -> AbsoluteUri:
        return AbsoluteUri(self.scheme, self.rest)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme == other.scheme and self.rest.lower() == other.rest.lower()

    __hash__ = None  # type: ignore[assignment]


Uri = SipUri | TelUri | AbsoluteUri

_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+-.")


def parse_uri(text: str) -> Uri:
    """Parse a URI; raise MessageError when it is not one."""
    return _URIS.parse(text)


def uri_view(text: str) -> Uri:
    """`parse_uri` without the copy: shared, never to be changed (see `ParsedTexts.shared`)."""
    return _URIS.shared(text)


def _parse_uri(text: str) -> Uri:
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme_lower = scheme.lower()
    if not colon or (
        scheme_lower not in _KNOWN_SCHEMES
        and (not scheme or not set(scheme_lower) <= _SCHEME_CHARS or not scheme_lower[0].isalpha())
    ):
        raise MessageError(f"not a URI: {text!r}")
    if " " in text or "\t" in text or "\r" in text or "\n" in text:
        raise MessageError(f"white space inside URI {text!r}")
    if scheme_lower in ("sip", "sips"):
        return _parse_sip_uri(scheme_lower, rest, text)
    if scheme_lower == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise MessageError(f"tel URI without a number: {text!r}")
        return TelUri(number, parse_params(params))
    if not rest:
        raise MessageError(f"empty URI after scheme: {text!r}")
    return AbsoluteUri(scheme_lower, rest)


_KNOWN_SCHEMES = frozenset(("sip", "sips", "tel"))


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """Split `userinfo@hostport;params?headers` at the `@` that ends the userinfo.

    Neither user nor password may hold a literal `@` (RFC 3261 §25.1), but the user part
    may hold `?`, `;`, `/` and `,` (user-unreserved), so the `@` is looked for before the
    first `?` and, failing that, after it (RFC 4475 §3.1.1.2). So an unescaped `@` in the
    headers of a URI that has a user (`sip:bob@host?Replaces=a@b`, seen in the wild) does
    not move the host; without a user part the grammar leaves only one reading
    (`sip:host?x=a@b` has the user `host?x=a`). When several `@` come before the
    headers, the last one ends the userinfo.
    """
    question = rest.find("?")
    if question < 0:
        at = rest.rfind("@")
    else:
        at = rest.rfind("@", 0, question)
        if at < 0:
            at = rest.find("@", question)
    if at < 0:
        return None, rest
    return rest[:at], rest[at + 1 :]


def _parse_sip_uri(scheme: str, rest: str, text: str) -> SipUri:
    userinfo, hostpart = _split_userinfo(rest)
    user = password = None
    if userinfo is not None:
        if not userinfo:
            raise MessageError(f"empty user part in {text!r}")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    hostpart, question, headers = hostpart.partition("?")
    hostport, semicolon, params_text = hostpart.partition(";")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise MessageError(f"unterminated IPv6 reference in {text!r}")
        host = hostport[: end + 1]
        port_text = hostport[end + 1 :]
        if port_text and not port_text.startswith(":"):
            raise MessageError(f"garbage after IPv6 reference in {text!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host or not _valid_host(host):
        raise MessageError(f"bad host in {text!r}")
    port = None
    if port_text:
        port = parse_port(port_text)
        if port is None:
            raise MessageError(f"bad port in {text!r}")
    params = parse_params(params_text) if semicolon else Params()
    return SipUri(scheme, user, password, host, port, params, headers if question else None)


def parse_port(text: str) -> int | None:
    """A port number 1..65535 written in ASCII digits, or None (`"²".isdigit()` is True)."""
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        inner = host[1:-1]
        return bool(inner) and host.endswith("]") and _IPV6_CHARS.issuperset(inner) and ":" in inner
    return _HOST_CHARS.issuperset(host)  # no set built from the host (every URI of every message)


# The same URIs come again and again (a trunk's Contact, a caller's address in the
# Request-URI of every in-dialog request).
_URIS: ParsedTexts[Uri] = ParsedTexts(_parse_uri)

