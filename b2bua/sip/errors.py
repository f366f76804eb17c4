"""Errors of the SIP core. Parsing never raises anything else."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Message


class MessageError(ValueError):
    """A message (or a piece of one) that cannot be accepted.

    `status` is what a UAS answers to such a request (RFC 3261 §21.4): 400 malformed,
    413 body too large, 513 message too large, 505 unsupported version. A response with a
    MessageError is dropped with a log line instead (RFC 3261 §18.1.2).
    `message` carries the partly parsed message when the start line and header fields
    could be framed, so the transport can still address a 400 to the sender.
    """

    def __init__(self, reason: str, status: int = 400, message: Message | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message = message
