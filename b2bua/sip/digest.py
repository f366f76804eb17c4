"""Digest access authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).

Sans-I/O: nothing here touches sockets, event loops or the wall clock.
Time comes in as ``now: float`` (seconds, any monotonic origin, as long as
the same clock is used for issuing and verifying); randomness comes from
:mod:`secrets`.

Contents
--------
* Parsing/formatting of ``WWW-Authenticate`` / ``Proxy-Authenticate`` and
  ``Authorization`` / ``Proxy-Authorization`` values.  These headers hold
  commas inside quoted strings and between auth-params, so they must never be
  split on commas at the SIP-header level; use :func:`parse_auth_header`.
* Response computation for MD5, SHA-256 and SHA-512-256 (and their ``-sess``
  variants), qop=auth or no qop (RFC 2069 compatibility).  ``auth-int`` is
  rejected with :class:`DigestError`.
* :class:`DigestChallenger` (UAS / proxy / registrar side) with stateless,
  HMAC-protected nonces and bounded nonce-count replay tracking.
* :func:`answer_challenge` / :func:`select_challenge` (UAC side).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "DigestError",
    "DigestParseError",
    "AuthParams",
    "DigestChallenge",
    "DigestCredentials",
    "HA1",
    "AuthReason",
    "AuthResult",
    "Lookup",
    "DigestChallenger",
    "parse_auth_header",
    "select_challenge",
    "answer_challenge",
    "compute_ha1",
    "compute_response",
]


class DigestError(ValueError):
    """Digest input that cannot be used (unsupported algorithm/qop, bad value)."""


class DigestParseError(DigestError):
    """A header value that does not follow the auth-param grammar."""


# --------------------------------------------------------------------------
# Algorithms (RFC 7616 §3.2 / §6.1, RFC 8760 §2.2)
# --------------------------------------------------------------------------

# Canonical algorithm name -> hashlib name.  SHA-512-256 is SHA-512/256 of
# FIPS 180-4 (distinct IVs, not a truncated SHA-512), which hashlib calls
# "sha512_256"; offered only when the local OpenSSL provides it.
_BASE_HASHES: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256"}
try:
    hashlib.new("sha512_256")
    _BASE_HASHES["SHA-512-256"] = "sha512_256"
except ValueError:  # pragma: no cover - depends on the OpenSSL build
    pass

SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(_BASE_HASHES) + tuple(
    f"{name}-sess" for name in _BASE_HASHES
)

# Preference used to order challenges, strongest first (RFC 8760 §2.4:
# "the most preferred at the top").
_STRENGTH = {"SHA-512-256": 3, "SHA-256": 2, "MD5": 1}

_CANONICAL = {name.upper(): name for name in SUPPORTED_ALGORITHMS}


def _canonical_algorithm(name: str | None) -> str | None:
    """Canonical spelling of a supported algorithm (case-insensitive match).

    An absent algorithm means MD5 (RFC 7616 §3.3)."""
    if name is None:
        return "MD5"
    return _CANONICAL.get(name.strip().upper())


def _split_algorithm(algorithm: str) -> tuple[str, bool]:
    """(hashlib name, is_session_variant) for a canonical algorithm name."""
    sess = algorithm.endswith("-sess")
    base = algorithm[: -len("-sess")] if sess else algorithm
    return _BASE_HASHES[base], sess


def _h(hash_name: str, data: str) -> str:
    # RFC 7616 §3.4: H(data) is the lowercase hex digest of the UTF-8 bytes.
    return hashlib.new(hash_name, data.encode("utf-8")).hexdigest()


class HA1(str):
    """Marks a lookup result as a precomputed H(username:realm:password).

    Return ``HA1(hexdigest)`` from the lookup callback to avoid storing
    plaintext passwords; a plain ``str`` is taken as the password itself.
    For ``-sess`` algorithms the value is still the *base* HA1; the session
    key is derived per nonce (RFC 7616 §3.4.2)."""


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> HA1:
    """H(username ":" realm ":" passwd) with the algorithm's hash (RFC 7616 §3.4.2).

    For ``-sess`` algorithms this is the base value, suitable for storing."""
    canonical = _canonical_algorithm(algorithm)
    if canonical is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    hash_name, _ = _split_algorithm(canonical)
    return HA1(_h(hash_name, f"{username}:{realm}:{password}"))


def compute_response(
    *,
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The request-digest ("response" parameter), RFC 7616 §3.4.1.

    ``ha1`` is the base H(username:realm:password).  ``qop`` is ``"auth"`` or
    ``None`` (RFC 2069 compatibility, RFC 2617 §3.2.2.1)."""
    canonical = _canonical_algorithm(algorithm)
    if canonical is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    hash_name, sess = _split_algorithm(canonical)
    if qop is not None and qop.lower() != "auth":
        # auth-int would need the message body hash (RFC 7616 §3.4.3).
        raise DigestError(f"unsupported qop {qop!r} (only 'auth' is implemented)")
    if sess:
        # RFC 7616 §3.4.2: session variants hash the nonce and cnonce into A1;
        # cnonce only exists when qop is used (RFC 2617 §3.2.2).
        if cnonce is None or qop is None:
            raise DigestError(f"{canonical} requires qop and cnonce")
        ha1 = _h(hash_name, f"{ha1}:{nonce}:{cnonce}")
    # RFC 7616 §3.4.3: A2 = Method ":" request-uri for qop=auth (or no qop).
    ha2 = _h(hash_name, f"{method}:{uri}")
    if qop is None:
        return _h(hash_name, f"{ha1}:{nonce}:{ha2}")
    if nc is None or cnonce is None:
        raise DigestError("qop=auth requires nc and cnonce")
    return _h(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop.lower()}:{ha2}")


# --------------------------------------------------------------------------
# Header value grammar (RFC 7235 §2.1, RFC 3261 §25.1 / §20.27, §20.44)
#
#   challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
#   auth-param  = token BWS "=" BWS ( token / quoted-string )
#   quoted-pair = "\" CHAR
# --------------------------------------------------------------------------

_WS = " \t\r\n"  # SIP LWS may still contain CRLF if the value was not unfolded
# Union of SIP token chars (RFC 3261 §25.1) and HTTP tchar (RFC 9110 §5.6.2).
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
# An unquoted value: be lenient (some UAs send e.g. uri=sip:x@y unquoted).
_BARE_VALUE_RE = re.compile(r'[^\s,"]+')
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class AuthParams:
    """One challenge or credentials: scheme plus auth-params (or token68).

    Parameter names are lower-cased (they are case-insensitive, RFC 7235
    §2.1); values are unescaped but otherwise verbatim."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1
        return self.pos > start

    def match(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return m.group()

    def quoted_string(self) -> str:
        # RFC 3261 §25.1 quoted-string; "\" escapes the next character.
        assert self.peek() == '"'
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                if self.pos + 1 >= len(self.text):
                    break
                ch = self.text[self.pos + 1]
                self.pos += 1
            out.append(ch)
            self.pos += 1
        raise DigestParseError("unterminated quoted-string")

    def error(self, what: str) -> DigestParseError:
        return DigestParseError(f"{what} at offset {self.pos} in {self.text!r}")


def parse_auth_header(value: str) -> list[AuthParams]:
    """Parse one header value into its challenges/credentials.

    SIP sends one challenge per header field (RFC 3261 §20.44), but the HTTP
    grammar (RFC 7235 §4.1) allows several comma-separated challenges in one
    value; both are accepted.  Raises :class:`DigestParseError`."""
    s = _Scanner(value)
    out: list[AuthParams] = []
    while True:
        # Empty list elements are allowed (RFC 7230 §7).
        while s.skip_ws() or s.peek() == ",":
            if s.peek() == ",":
                s.pos += 1
        if s.at_end():
            break
        scheme = s.match(_TOKEN_RE)
        if scheme is None:
            raise s.error("expected auth-scheme")
        if not s.at_end() and not s.skip_ws() and s.peek() != ",":
            raise s.error("expected whitespace after auth-scheme")
        params: dict[str, str] = {}
        token68: str | None = None
        # token68 form (e.g. "Basic dXNlcjpw"): alone before "," or the end.
        start = s.pos
        candidate = s.match(_TOKEN68_RE)
        if candidate is not None:
            s.skip_ws()
            if s.at_end() or s.peek() == ",":
                token68 = candidate
            else:
                s.pos = start
        if token68 is None:
            _parse_params(s, params)
        out.append(AuthParams(scheme, params, token68))
    if not out:
        raise DigestParseError("empty authentication header value")
    return out


def _parse_params(s: _Scanner, params: dict[str, str]) -> None:
    """#auth-param, stopping where the next challenge's scheme begins."""
    while True:
        while s.skip_ws() or s.peek() == ",":
            if s.peek() == ",":
                s.pos += 1
        if s.at_end():
            return
        start = s.pos
        name = s.match(_TOKEN_RE)
        if name is None:
            raise s.error("expected auth-param name")
        s.skip_ws()
        if s.peek() != "=":
            if params:  # a token not followed by "=" starts a new challenge
                s.pos = start
                return
            raise s.error(f"expected '=' after {name!r}")
        s.pos += 1
        s.skip_ws()
        if s.peek() == '"':
            val = s.quoted_string()
        else:
            bare = s.match(_BARE_VALUE_RE)
            if bare is None:
                raise s.error(f"missing value for {name!r}")
            val = bare
        key = name.lower()
        if key in params:
            # RFC 7235 §2.1: each parameter name MUST only occur once.
            raise s.error(f"duplicate parameter {name!r}")
        params[key] = val
        s.skip_ws()
        if not s.at_end() and s.peek() != ",":
            raise s.error("expected ',' between auth-params")


def _quote(value: str) -> str:
    """quoted-string with "\\" and '"' escaped (RFC 3261 §25.1)."""
    if _CTL_RE.search(value):
        raise DigestError(f"control character in header parameter {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _token(value: str) -> str:
    if not _TOKEN_RE.fullmatch(value):
        raise DigestError(f"not a token: {value!r}")
    return value


def _parse_single_digest(value: str) -> dict[str, str]:
    items = parse_auth_header(value)
    if len(items) != 1:
        raise DigestParseError(f"expected exactly one value, got {len(items)}")
    item = items[0]
    if item.scheme.lower() != "digest":  # scheme is case-insensitive
        raise DigestParseError(f"not a Digest value (scheme {item.scheme!r})")
    if item.token68 is not None:
        raise DigestParseError("Digest does not use token68 syntax")
    return item.params


def _bool_param(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


# --------------------------------------------------------------------------
# Challenge (RFC 7616 §3.3) and credentials (RFC 7616 §3.4)
# --------------------------------------------------------------------------

_CHALLENGE_KNOWN = {"realm", "nonce", "algorithm", "qop", "opaque", "stale",
                    "userhash", "domain", "charset"}


@dataclass(frozen=True)
class DigestChallenge:
    """A ``WWW-Authenticate``/``Proxy-Authenticate`` Digest challenge."""

    realm: str
    nonce: str
    algorithm: str | None = None  # None: parameter absent, meaning MD5
    qop: tuple[str, ...] = ()  # empty: no qop offered (RFC 2069 mode)
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False
    domain: str | None = None
    charset: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> "DigestChallenge":
        return cls.from_params(_parse_single_digest(value))

    @classmethod
    def from_params(cls, p: dict[str, str]) -> "DigestChallenge":
        for required in ("realm", "nonce"):
            if required not in p:
                raise DigestParseError(f"challenge lacks {required!r}")
        # RFC 7616 §3.3: qop is a quoted, comma-separated list of options.
        qop = tuple(q.strip().lower() for q in p["qop"].split(",") if q.strip()) if "qop" in p else ()
        return cls(
            realm=p["realm"],
            nonce=p["nonce"],
            algorithm=p.get("algorithm"),
            qop=qop,
            opaque=p.get("opaque"),
            stale=_bool_param(p.get("stale")),
            userhash=_bool_param(p.get("userhash")),
            domain=p.get("domain"),
            charset=p.get("charset"),
            extra={k: v for k, v in p.items() if k not in _CHALLENGE_KNOWN},
        )

    def format(self) -> str:
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain is not None:
            parts.append(f"domain={_quote(self.domain)}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        if self.algorithm is not None:
            parts.append(f"algorithm={_token(self.algorithm)}")
        parts.append(f"nonce={_quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        if self.charset is not None:
            parts.append(f"charset={_token(self.charset)}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{_token(k)}={_quote(v)}" for k, v in self.extra.items())
        return "Digest " + ", ".join(parts)


_CREDENTIALS_KNOWN = {"username", "realm", "nonce", "uri", "response",
                      "algorithm", "qop", "nc", "cnonce", "opaque", "userhash"}


@dataclass(frozen=True)
class DigestCredentials:
    """An ``Authorization``/``Proxy-Authorization`` Digest value."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    qop: str | None = None
    nc: str | None = None  # kept as sent: it is hashed verbatim
    cnonce: str | None = None
    opaque: str | None = None
    userhash: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> "DigestCredentials":
        p = _parse_single_digest(value)
        # RFC 7616 §3.4 / RFC 3261 §25.1 dig-resp: these are mandatory.
        for required in ("username", "realm", "nonce", "uri", "response"):
            if required not in p:
                raise DigestParseError(f"credentials lack {required!r}")
        return cls(
            username=p["username"],
            realm=p["realm"],
            nonce=p["nonce"],
            uri=p["uri"],
            response=p["response"],
            algorithm=p.get("algorithm"),
            qop=p.get("qop"),
            nc=p.get("nc"),
            cnonce=p.get("cnonce"),
            opaque=p.get("opaque"),
            userhash=_bool_param(p.get("userhash")),
            extra={k: v for k, v in p.items() if k not in _CREDENTIALS_KNOWN},
        )

    def format(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
        ]
        if self.algorithm is not None:
            parts.append(f"algorithm={_token(self.algorithm)}")
        if self.qop is not None:
            # RFC 3261 §25.1 message-qop and nonce-count are unquoted tokens.
            parts.append(f"qop={_token(self.qop)}")
            if self.nc is not None:
                parts.append(f"nc={_token(self.nc)}")
            if self.cnonce is not None:
                parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{_token(k)}={_quote(v)}" for k, v in self.extra.items())
        return "Digest " + ", ".join(parts)


# --------------------------------------------------------------------------
# Client (UAC) side
# --------------------------------------------------------------------------


def select_challenge(values: Iterable[str], realm: str | None = None) -> DigestChallenge | None:
    """The topmost usable Digest challenge among header values.

    RFC 8760 §2.4: the UAC uses the topmost header field whose algorithm it
    supports.  Values that are malformed, not Digest, use an unsupported
    algorithm, or only offer qop=auth-int are skipped; ``realm`` restricts the
    choice to one realm."""
    for value in values:
        try:
            items = parse_auth_header(value)
        except DigestParseError:
            continue
        for item in items:
            if item.scheme.lower() != "digest" or item.token68 is not None:
                continue
            try:
                ch = DigestChallenge.from_params(item.params)
            except DigestParseError:
                continue
            if realm is not None and ch.realm != realm:
                continue
            if _canonical_algorithm(ch.algorithm) is None:
                continue
            if ch.qop and "auth" not in ch.qop:
                continue
            return ch
    return None


def answer_challenge(
    challenge_value: str | DigestChallenge,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """Build the ``Authorization``/``Proxy-Authorization`` value for a challenge.

    Uses qop=auth when offered (RFC 7616 §3.4), RFC 2069 mode when no qop is
    offered, echoes ``opaque`` (RFC 7616 §3.3) and hashes the username when
    the challenge says ``userhash=true`` (RFC 7616 §3.4.4).  ``nc`` is the
    caller's count of requests made with this nonce.  Raises
    :class:`DigestError` for unsupported algorithms or qop=auth-int only."""
    ch = (
        challenge_value
        if isinstance(challenge_value, DigestChallenge)
        else DigestChallenge.parse(challenge_value)
    )
    algorithm = _canonical_algorithm(ch.algorithm)
    if algorithm is None:
        raise DigestError(f"unsupported digest algorithm {ch.algorithm!r}")
    hash_name, sess = _split_algorithm(algorithm)
    qop: str | None = None
    nc_text: str | None = None
    if ch.qop:
        if "auth" not in ch.qop:
            raise DigestError(f"challenge only offers qop={','.join(ch.qop)}; auth-int is not supported")
        qop = "auth"
        if not 0 < nc <= 0xFFFFFFFF:
            raise DigestError(f"nonce count out of range: {nc}")
        nc_text = f"{nc:08x}"  # RFC 7616 §3.4: 8LHEX
        cnonce = cnonce if cnonce is not None else secrets.token_hex(16)
    else:
        cnonce = None  # RFC 2617 §3.2.2: no cnonce/nc without qop
        if sess:
            raise DigestError(f"{algorithm} requires qop, but the challenge offers none")
    ha1 = compute_ha1(username, ch.realm, password, algorithm)
    response = compute_response(
        algorithm=algorithm, ha1=ha1, nonce=ch.nonce, method=method, uri=uri,
        qop=qop, nc=nc_text, cnonce=cnonce,
    )
    wire_username = _h(hash_name, f"{username}:{ch.realm}") if ch.userhash else username
    return DigestCredentials(
        username=wire_username,
        realm=ch.realm,
        nonce=ch.nonce,
        uri=uri,
        response=response,
        # Echo the algorithm as offered; omit it if the challenge did (MD5).
        algorithm=ch.algorithm.strip() if ch.algorithm is not None else None,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
        opaque=ch.opaque,
        userhash=ch.userhash,
    ).format()


# --------------------------------------------------------------------------
# Server (UAS / proxy / registrar) side
# --------------------------------------------------------------------------


class AuthReason(enum.Enum):
    OK = "ok"
    MALFORMED = "malformed"
    WRONG_REALM = "wrong-realm"
    UNSUPPORTED = "unsupported"  # algorithm not offered, qop=auth-int, userhash
    URI_MISMATCH = "uri-mismatch"
    INVALID_NONCE = "invalid-nonce"  # not issued by us (tampered / other secret)
    STALE_NONCE = "stale-nonce"
    REPLAY = "replay"  # nonce-count not above the highest already accepted
    UNKNOWN_USER = "unknown-user"
    BAD_RESPONSE = "bad-response"
    BAD_CREDENTIALS = "bad-credentials"  # wire form of UNKNOWN_USER/BAD_RESPONSE


# Lookup(username, realm, algorithm) -> password, HA1(...) or None if unknown.
Lookup = Callable[[str, str, str], "str | HA1 | None"]


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    reason: AuthReason
    username: str | None = None
    algorithm: str | None = None
    detail: str = ""

    @property
    def stale(self) -> bool:
        """Whether to re-challenge with stale=true (RFC 7616 §3.3)."""
        return self.reason is AuthReason.STALE_NONCE

    @property
    def wire_reason(self) -> AuthReason:
        """The reason that may be revealed to the client.

        Unknown user and wrong password collapse into one value so that the
        peer cannot probe which accounts exist.  ``reason`` is for logs."""
        if self.reason in (AuthReason.UNKNOWN_USER, AuthReason.BAD_RESPONSE):
            return AuthReason.BAD_CREDENTIALS
        return self.reason


_NONCE_STRUCT = struct.Struct(">q8s")  # issued-at (ms), 8 random bytes
_NONCE_MAC_LEN = 16
_NONCE_RAW_LEN = _NONCE_STRUCT.size + _NONCE_MAC_LEN
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")


class DigestChallenger:
    """Issues Digest challenges and verifies credentials (RFC 7616, RFC 8760).

    Nonces are self-validating: ``base64url(issued_ms | random | HMAC)``
    with the HMAC over the realm and the first two fields keyed with
    ``secret``, so issuing needs no state (RFC 7616 §5.5 suggests a
    timestamp plus a private key).  Nonce-count replay tracking keeps at most
    ``max_tracked_nonces`` entries; when an entry has to be dropped, every
    untracked nonce issued no later than it is answered as stale, so a replay
    never succeeds merely because memory ran short.

    With ``offer_qop=False`` the challenges carry no qop and clients answer
    in RFC 2069 compatibility mode, which has no nonce-count and therefore no
    replay protection within the nonce lifetime."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        nonce_ttl: float = 300.0,
        *,
        offer_qop: bool = True,
        max_tracked_nonces: int = 10_000,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        if nonce_ttl <= 0:
            raise ValueError("nonce_ttl must be positive")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be at least 1")
        canon: list[str] = []
        for name in algorithms:
            c = _canonical_algorithm(name)
            if c is None:
                raise ValueError(f"unsupported digest algorithm {name!r}")
            if not offer_qop and c.endswith("-sess"):
                raise ValueError(f"{c} needs qop; it cannot be offered with offer_qop=False")
            if c not in canon:
                canon.append(c)
        if not canon:
            raise ValueError("at least one algorithm is required")
        # RFC 8760 §2.4: most preferred (strongest) challenge first.
        canon.sort(key=lambda a: -_STRENGTH[a.removesuffix("-sess")])
        _quote(realm)  # reject control characters early
        self.realm = realm
        self.algorithms: tuple[str, ...] = tuple(canon)
        self.nonce_ttl = nonce_ttl
        self.offer_qop = offer_qop
        self._secret = secret
        self._max_tracked = max_tracked_nonces
        self._nc_seen: OrderedDict[str, tuple[int, int]] = OrderedDict()  # nonce -> (issued_ms, nc)
        self._evicted_floor_ms: int | None = None

    # -- nonces --------------------------------------------------------

    def _mac(self, body: bytes) -> bytes:
        msg = b"sip-digest-nonce\x00" + self.realm.encode("utf-8") + b"\x00" + body
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[:_NONCE_MAC_LEN]

    def make_nonce(self, now: float) -> str:
        body = _NONCE_STRUCT.pack(int(now * 1000), secrets.token_bytes(8))
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def _nonce_issued_ms(self, nonce: str) -> int | None:
        """Issue time of a nonce we made, or None if it is not ours."""
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii") + b"=" * (-len(nonce) % 4))
        except (ValueError, UnicodeEncodeError):
            return None
        if len(raw) != _NONCE_RAW_LEN:
            return None
        body, mac = raw[: _NONCE_STRUCT.size], raw[_NONCE_STRUCT.size :]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        issued_ms, _ = _NONCE_STRUCT.unpack(body)
        return issued_ms

    # -- challenges ----------------------------------------------------

    def challenge(self, now: float, stale: bool = False) -> list[str]:
        """One header value per algorithm, strongest first (RFC 8760 §2.4).

        All values share one fresh nonce.  Pass ``stale=result.stale`` after
        a failed :meth:`verify`."""
        nonce = self.make_nonce(now)
        return [
            DigestChallenge(
                realm=self.realm,
                nonce=nonce,
                algorithm=alg,
                qop=("auth",) if self.offer_qop else (),
                stale=stale,
            ).format()
            for alg in self.algorithms
        ]

    # -- verification --------------------------------------------------

    def verify(
        self,
        authorization_value: str,
        method: str,
        now: float,
        lookup: Lookup,
        *,
        request_uri: str | None = None,
    ) -> AuthResult:
        """Check an ``Authorization``/``Proxy-Authorization`` value.

        Never raises for bad input: every problem becomes an
        :class:`AuthResult`.  ``request_uri``, if given, must equal the
        credentials' ``uri`` exactly (RFC 7616 §3.4.6).  The nonce-count is
        recorded only after the response has been proven correct, so failed
        attempts cannot burn a legitimate client's counts."""
        try:
            cred = DigestCredentials.parse(authorization_value)
        except DigestError as exc:
            return AuthResult(False, AuthReason.MALFORMED, detail=str(exc))

        def fail(reason: AuthReason, detail: str, algorithm: str | None = None) -> AuthResult:
            return AuthResult(False, reason, cred.username, algorithm, detail)

        if cred.realm != self.realm:
            return fail(AuthReason.WRONG_REALM, f"realm {cred.realm!r} is not {self.realm!r}")
        algorithm = _canonical_algorithm(cred.algorithm)
        if algorithm is None or algorithm not in self.algorithms:
            return fail(AuthReason.UNSUPPORTED, f"algorithm {cred.algorithm or 'MD5'!r} was not offered")
        if cred.userhash:
            return fail(AuthReason.UNSUPPORTED, "userhash was not offered", algorithm)

        # RFC 7616 §3.4: with qop the client MUST send cnonce and nc.  Without
        # qop (RFC 2069) it is only acceptable if we did not offer qop.
        qop = cred.qop.strip().lower() if cred.qop is not None else None
        if qop is None:
            if self.offer_qop:
                return fail(AuthReason.UNSUPPORTED, "qop=auth was offered but not used", algorithm)
            nc_value = None
        else:
            if qop != "auth":
                return fail(AuthReason.UNSUPPORTED, f"qop={cred.qop!r} not supported", algorithm)
            if not self.offer_qop:
                return fail(AuthReason.UNSUPPORTED, "qop was not offered", algorithm)
            if cred.nc is None or cred.cnonce is None:
                return fail(AuthReason.MALFORMED, "qop=auth without nc/cnonce", algorithm)
            if not _NC_RE.fullmatch(cred.nc):
                return fail(AuthReason.MALFORMED, f"nc {cred.nc!r} is not 8 hex digits", algorithm)
            nc_value = int(cred.nc, 16)
        if request_uri is not None and cred.uri != request_uri:
            return fail(AuthReason.URI_MISMATCH, f"uri {cred.uri!r} != Request-URI {request_uri!r}", algorithm)

        issued_ms = self._nonce_issued_ms(cred.nonce)
        if issued_ms is None:
            return fail(AuthReason.INVALID_NONCE, "nonce was not issued by this server", algorithm)

        # Compute the expected response whether or not the user exists, so
        # both paths take the same work (no account probing by timing).
        secret = lookup(cred.username, cred.realm, algorithm)
        hash_name, _ = _split_algorithm(algorithm)
        if secret is None:
            ha1 = _h(hash_name, f"\x00unknown:{cred.realm}:{secrets.token_hex(8)}")
        elif isinstance(secret, HA1):
            ha1 = str(secret).lower()
        else:
            ha1 = compute_ha1(cred.username, cred.realm, secret, algorithm)
        try:
            expected = compute_response(
                algorithm=algorithm, ha1=ha1, nonce=cred.nonce, method=method, uri=cred.uri,
                qop=qop, nc=cred.nc if qop else None, cnonce=cred.cnonce if qop else None,
            )
        except DigestError as exc:  # defensive: inputs were validated above
            return fail(AuthReason.MALFORMED, str(exc), algorithm)
        # Constant-time comparison over bytes (compare_digest rejects non-ASCII str).
        matches = hmac.compare_digest(
            expected.encode("ascii"), cred.response.strip().lower().encode("utf-8", "replace")
        )
        if secret is None:
            return fail(AuthReason.UNKNOWN_USER, "no such user", algorithm)
        if not matches:
            return fail(AuthReason.BAD_RESPONSE, "response digest does not match", algorithm)

        # RFC 7616 §3.3: stale only when the digest was valid for the nonce.
        # A nonce from the "future" (clock reset, same secret) is also stale.
        age = now - issued_ms / 1000.0
        if age > self.nonce_ttl or age < -1.0:
            return fail(AuthReason.STALE_NONCE, f"nonce age {age:.1f}s", algorithm)
        if nc_value is not None:
            stale_or_replay = self._check_and_record_nc(cred.nonce, issued_ms, nc_value, now)
            if stale_or_replay is not None:
                return fail(stale_or_replay[0], stale_or_replay[1], algorithm)
        return AuthResult(True, AuthReason.OK, cred.username, algorithm)

    def _check_and_record_nc(
        self, nonce: str, issued_ms: int, nc: int, now: float
    ) -> tuple[AuthReason, str] | None:
        # RFC 7616 §3.4: "if the same nc-value is seen twice, then the request
        # is a replay".  We require strictly increasing counts per nonce.
        entry = self._nc_seen.get(nonce)
        if entry is not None:
            if nc <= entry[1]:
                return AuthReason.REPLAY, f"nc {nc:08x} not above {entry[1]:08x}"
        elif self._evicted_floor_ms is not None and issued_ms <= self._evicted_floor_ms:
            # Its history may have been dropped; make the client fetch a new one.
            return AuthReason.STALE_NONCE, "nonce no longer tracked"
        self._nc_seen[nonce] = (issued_ms, nc)
        if len(self._nc_seen) > self._max_tracked:
            self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        cutoff_ms = (now - self.nonce_ttl) * 1000.0
        for key in [k for k, (issued, _) in self._nc_seen.items() if issued < cutoff_ms]:
            del self._nc_seen[key]  # expired: rejected as stale anyway
        while len(self._nc_seen) > self._max_tracked:
            _, (issued, _) = self._nc_seen.popitem(last=False)
            if self._evicted_floor_ms is None or issued > self._evicted_floor_ms:
                self._evicted_floor_ms = issued
