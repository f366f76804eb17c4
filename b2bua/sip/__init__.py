"""The sans-I/O SIP core: messages, URIs, bodies, transactions, dialogs, digest auth.

No sockets, no asyncio, no clock in here: time is a parameter (`now`), and what must be
sent comes back to the caller as data. See docs/architecture in shared docs.
"""

from .body import BodyPart, MediaType, Multipart, build_multipart, parse_media_type, parse_multipart
from .errors import MessageError
from .grammar import Params
from .headers import CSeq, NameAddr, Via, parse_name_addr, parse_via
from .ids import new_branch, new_call_id, new_tag
from .message import DEFAULT_LIMITS, HeaderField, Headers, Limits, Request, Response, make_response, parse_message
from .uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri

__all__ = [
    "AbsoluteUri", "BodyPart", "CSeq", "DEFAULT_LIMITS", "HeaderField", "Headers", "Limits", "MediaType",
    "MessageError", "Multipart", "NameAddr", "Params", "Request", "Response", "SipUri", "TelUri", "Uri", "Via",
    "build_multipart", "make_response", "new_branch", "new_call_id", "new_tag", "parse_media_type",
    "parse_message", "parse_multipart", "parse_name_addr", "parse_uri", "parse_via",
]
