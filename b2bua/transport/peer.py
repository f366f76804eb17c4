"""The transport's `Peer` is the SIP core's: `b2bua.sip.transaction.Peer` (frozen dataclass
`Peer(transport, host, port)`, transport 'udp'|'tcp'|'tls', host without IPv6 brackets,
`reliable` property). Re-exported so transport code imports it from one place."""

from __future__ import annotations

from b2bua.sip.transaction import Peer

__all__ = ["Peer"]
