"""The SIP pieces around a PIDF-LO: multipart/mixed bodies and Geolocation values,
in the byte layouts real clients produce (docs/interop-notes.md, reference §1.3).

This writes bytes for the caller tool; it does not parse SIP.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

STYLES = ("lync", "rfc", "pjsua", "linphone")

# [MS-SIPRE] §4.14 style boundary: Outlook-like, with "=" (a tspecial) and unquoted.
LYNC_BOUNDARY = "----=_NextPart_000_4A6D_01CAB3D6.7519F890"
# belle-sip (liblinphone) uses one fixed multipart boundary on every message.
LINPHONE_BOUNDARY = "---------------------------14737809831466499882746641449"
_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass
class EmergencyBody:
    """What a client puts in an emergency INVITE besides the usual headers."""

    content_type: str  # value of the top-level Content-Type header
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)  # names spelt as that client writes them
    boundary: str = ""
    content_id: str | None = None  # the PIDF part's Content-ID value, if any


def crlf(data: bytes) -> bytes:
    """Bare LF -> CRLF (bodies in SIP use CRLF line ends)."""
    return _BARE_LF.sub(b"\r\n", data)


def multipart_body(parts: list[tuple[list[tuple[str, str]], bytes]], boundary: str, *, preamble: bytes = b"") -> bytes:
    """RFC 2046 §5.1.1 multipart body: each part's headers, a blank line, its content.
    The CRLF before each delimiter belongs to the delimiter."""
    out = [preamble]
    for headers, content in parts:
        out.append(f"--{boundary}\r\n".encode())
        out.extend(f"{name}: {value}\r\n".encode() for name, value in headers)
        out.append(b"\r\n")
        out.append(content)
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def geolocation_value(uri: str, **params: str) -> str:
    """``<uri>;name=value`` (RFC 6442 §4.1); values are written as given."""
    return "<" + uri + ">" + "".join(f";{k.replace('_', '-')}={v}" for k, v in params.items())


def _addr(aor: str) -> str:
    """user@host of an AoR given as ``sip:user@host``, ``<sip:user@host>`` or ``user@host``."""
    aor = aor.strip().strip("<>")
    return re.sub(r"^sips?:", "", aor, flags=re.IGNORECASE)


def _derived_cid(pidf: bytes, aor: str) -> str:
    host = _addr(aor).rpartition("@")[2] or "localhost"
    return f"pidf-lo-{hashlib.sha1(pidf).hexdigest()[:12]}@{host}"


def emergency_body(style: str, sdp: bytes, pidf: bytes, aor: str, *, boundary: str | None = None) -> EmergencyBody:
    """The multipart body and location headers of an emergency INVITE, laid out like ``style``:

    * ``lync``: SDP first with ``application/sdp ; charset=utf-8``, PIDF with
      ``Content-ID: <user@host>`` while Geolocation says ``cid:sip:user@host``,
      unquoted boundary containing ``=``, ``Supported: geolocation``, ``inserted-by``.
    * ``rfc``: RFC 6442 / RFC 5621 clean: SDP first, PIDF with Content-ID and
      ``Content-Disposition: by-reference;handling=optional``, ``Geolocation-Routing: yes``.
    * ``pjsua``: PIDF first, SDP second, CRLF preamble, per-part Content-Length,
      ``Supported: replaces, 100rel, timer``.
    * ``linphone``: no Content-ID on the PIDF part (the cid dangles), belle-sip's fixed
      boundary, per-part Content-Length.
    """
    sdp, pidf = crlf(sdp), crlf(pidf)
    addr = _addr(aor)
    sip_aor = "sip:" + addr
    if style == "lync":
        b = boundary or LYNC_BOUNDARY
        cid = f"<{addr}>"
        body = multipart_body(
            [
                ([("Content-Type", "application/sdp ; charset=utf-8")], sdp),
                ([("Content-Type", "application/pidf+xml"), ("Content-ID", cid)], pidf),
            ],
            b,
        )
        headers = [
            ("PRIORITY", "emergency"),
            ("Supported", "geolocation"),
            ("geolocation", geolocation_value("cid:" + sip_aor, inserted_by=f'"{sip_aor}"')),
        ]
        return EmergencyBody(f"multipart/mixed; boundary={b}", body, headers, b, cid)
    if style == "rfc":
        b = boundary or "e911-rfc5621-" + hashlib.sha1(sdp + pidf).hexdigest()[:16]
        cid_addr = _derived_cid(pidf, aor)
        body = multipart_body(
            [
                ([("Content-Type", "application/sdp")], sdp),
                (
                    [
                        ("Content-Type", "application/pidf+xml"),
                        ("Content-ID", f"<{cid_addr}>"),
                        ("Content-Disposition", "by-reference;handling=optional"),
                    ],
                    pidf,
                ),
            ],
            b,
        )
        headers = [
            ("Geolocation", geolocation_value("cid:" + cid_addr)),
            ("Geolocation-Routing", "yes"),
            ("Priority", "emergency"),
        ]
        return EmergencyBody(f'multipart/mixed;boundary="{b}"', body, headers, b, f"<{cid_addr}>")
    if style == "pjsua":
        b = boundary or "pjsua-" + hashlib.sha1(sdp + pidf).hexdigest()[:24]
        cid_addr = _derived_cid(pidf, aor)
        body = multipart_body(
            [
                (
                    [
                        ("Content-Type", "application/pidf+xml"),
                        ("Content-ID", f"<{cid_addr}>"),
                        ("Content-Length", str(len(pidf))),
                    ],
                    pidf,
                ),
                ([("Content-Type", "application/sdp"), ("Content-Length", str(len(sdp)))], sdp),
            ],
            b,
            preamble=b"\r\n",
        )
        headers = [
            ("Geolocation", geolocation_value("cid:" + cid_addr)),
            ("Geolocation-Routing", "yes"),
            ("Priority", "emergency"),
            ("Supported", "replaces, 100rel, timer"),
        ]
        return EmergencyBody(f"multipart/mixed;boundary={b}", body, headers, b, f"<{cid_addr}>")
    if style == "linphone":
        b = boundary or LINPHONE_BOUNDARY
        cid_addr = _derived_cid(pidf, aor)
        body = multipart_body(
            [
                ([("Content-Type", "application/sdp"), ("Content-Length", str(len(sdp)))], sdp),
                ([("Content-Type", "application/pidf+xml"), ("Content-Length", str(len(pidf)))], pidf),
            ],
            b,
        )
        headers = [
            ("Geolocation", geolocation_value("cid:" + cid_addr)),
            ("Geolocation-Routing", "yes"),
            ("Priority", "emergency"),
            # [recall] liblinphone's default option tags.
            ("Supported", "replaces, outbound, gruu"),
        ]
        return EmergencyBody(f"multipart/mixed;boundary={b}", body, headers, b, None)
    raise ValueError(f"unknown style {style!r}; one of {', '.join(STYLES)}")


__all__ = ["EmergencyBody", "STYLES", "crlf", "emergency_body", "geolocation_value", "multipart_body"]
