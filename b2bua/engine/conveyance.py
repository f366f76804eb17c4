"""The bridge from a SIP message to the `pidf` package's neutral view of location conveyance.

`pidf` knows nothing of SIP; its S-checks read a `Conveyance` (headers, body, parts,
MIME defects). This module builds one from a parsed message of the SIP core.
"""

from __future__ import annotations

from pidf.conveyance import Conveyance, MimePart

from ..sip import MessageError, Request, Response, parse_message


def conveyance_from_message(message: Request | Response, *, sha256: dict[bytes, str] | None = None,
                            split: tuple | None = None) -> Conveyance:  # fmt: skip
    """``sha256``: digests of body or part bytes the caller has computed, by those bytes;
    ``split``: the message's ``(content_type, multipart)``, if the caller has read them."""
    media, multipart = split if split is not None else (message.content_type, message.multipart)
    defects: list[str] = list(media.defects) if media is not None else []
    parts = None
    if multipart is not None:
        parts = [MimePart(list(part.headers), part.content) for part in multipart.parts]
        defects = list(multipart.defects)
    elif media is not None and media.is_multipart:
        defects.append("boundary-missing" if media.boundary is None else "unsplittable")
    uri = str(message.uri) if isinstance(message, Request) else None
    return Conveyance(message.headers.items(), message.body, parts, defects, uri, sha256 if sha256 is not None else {})


def conveyance_from_bytes(data: bytes) -> Conveyance:
    """Parse a whole SIP message and view it; ValueError (MessageError) when unparseable.

    A sloppy body length is part of what is being checked (S03), so a Content-Length
    larger than the body is not fatal here: the message is re-read without it.
    """
    try:
        return conveyance_from_message(parse_message(data))
    except MessageError as error:
        if error.message is None or "Content-Length" not in error.reason:
            raise
        partial = error.message
        head_end = data.find(partial.blank_line * 2) if partial.blank_line == b"\n" else data.find(b"\r\n\r\n")
        body = data[head_end + 2 * len(partial.blank_line) :] if head_end >= 0 else b""
        partial.body = body
        return conveyance_from_message(partial)
