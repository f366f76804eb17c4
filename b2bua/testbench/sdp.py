"""A real SDP answer (RFC 3264) for the bench's UAs: G.711 so a real phone can talk to them.

Only the audio stream is accepted: the first offered codec among PCMU (0) and PCMA (8),
plus telephone-event when offered; other streams are refused with port 0 (RFC 3264 §6).
"""

from __future__ import annotations

import itertools
import time

from ..sip.message import Message

G711 = {0: "PCMU/8000", 8: "PCMA/8000"}
_session_ids = itertools.count(int(time.time()))


def sdp_of(message: Message) -> bytes | None:
    """The SDP of a message (see `Message.sdp`)."""
    return message.sdp


def offer(address: str, port: int) -> bytes:
    """An offer of G.711 audio (for callers)."""
    session = next(_session_ids)
    family = "IP6" if ":" in address else "IP4"
    return (
        f"v=0\r\no=- {session} {session} IN {family} {address}\r\ns=e911-b2bua\r\nc=IN {family} {address}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
    ).encode()


def answer(offer_sdp: bytes | None, address: str, port: int) -> bytes:
    """Answer an offer (or make an offer, for an offerless INVITE)."""
    if not offer_sdp:
        return offer(address, port)
    session = next(_session_ids)
    family = "IP6" if ":" in address else "IP4"
    lines = ["v=0", f"o=- {session} {session} IN {family} {address}", "s=e911-b2bua", f"c=IN {family} {address}", "t=0 0"]
    audio_done = False
    for line in offer_sdp.decode("utf-8", "replace").splitlines():
        if not line.startswith("m="):
            continue
        fields = line[2:].split()
        if len(fields) < 4:
            continue
        media, proto, formats = fields[0], fields[2], fields[3:]
        chosen = next((int(f) for f in formats if f.isascii() and f.isdigit() and int(f) in G711), None)
        if media != "audio" or audio_done or chosen is None:
            lines.append(f"m={media} 0 {proto} {' '.join(formats)}")  # RFC 3264 §6: refuse
            continue
        audio_done = True
        events = [f for f in formats if f == "101"]
        lines.append(f"m=audio {port} {proto} {' '.join([str(chosen), *events])}")
        lines.append(f"a=rtpmap:{chosen} {G711[chosen]}")
        if events:
            lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"]
        lines.append("a=sendrecv")
    return ("\r\n".join(lines) + "\r\n").encode()
