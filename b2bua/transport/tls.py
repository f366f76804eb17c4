"""TLS contexts for SIP over TLS (RFC 3261 §26.2.1, RFC 5630) with the standard `ssl` module.

- TLS 1.2 is the minimum everywhere: RFC 8996 deprecates TLS 1.0/1.1 and the NENA i3
  interfaces (ESInet, ECRC trunks) require 1.2 or later.
- Outgoing connections verify the server certificate and its name by default; a trunk
  that presents a self-signed or private-CA certificate is configured per peer
  (`TlsPeerConfig`), never by switching verification off globally.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

from .peer import Peer


@dataclass(frozen=True)
class TlsPeerConfig:
    """How to open a TLS connection to one peer.

    `context`: the client SSLContext to use as is (mutual TLS, pinned CA ...); when None a
    context is made from `verify`. `server_hostname`: the name sent as SNI and checked
    against the certificate; defaults to the peer's host. `verify`: only used when
    `context` is None; False accepts any certificate (lab use only)."""

    context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    verify: bool = True


# A function of the peer, or a mapping keyed by Peer or by host; None/missing = defaults.
TlsPolicy = Union[Callable[[Peer], "TlsPeerConfig | None"], Mapping[object, TlsPeerConfig]]


def enforce_minimum_version(context: ssl.SSLContext) -> ssl.SSLContext:
    """Raise the context's floor to TLS 1.2 if it is lower or unset (RFC 8996)."""
    floor = context.minimum_version
    if floor == ssl.TLSVersion.MINIMUM_SUPPORTED or (
        floor != ssl.TLSVersion.MAXIMUM_SUPPORTED and floor < ssl.TLSVersion.TLSv1_2
    ):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def server_context(
    certfile: str,
    keyfile: str | None = None,
    *,
    cafile: str | None = None,
    require_client_certificate: bool = False,
) -> ssl.SSLContext:
    """A server context presenting `certfile`/`keyfile`. With `cafile`, client certificates
    signed by it are verified (required when `require_client_certificate`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    enforce_minimum_version(context)
    context.load_cert_chain(certfile, keyfile)
    if cafile is not None:
        context.load_verify_locations(cafile)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    return context


def client_context(
    cafile: str | None = None,
    verify: bool = True,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> ssl.SSLContext:
    """A client context: verifies the server certificate and host name against `cafile`
    (or the system trust store when None) unless `verify` is False. `certfile`/`keyfile`
    give a client certificate for mutual TLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    enforce_minimum_version(context)
    if verify:
        if cafile is not None:
            context.load_verify_locations(cafile)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.check_hostname = False  # must go before verify_mode = CERT_NONE
        context.verify_mode = ssl.CERT_NONE
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    return context


class TlsClientContexts:
    """Resolves the client context and server name for a peer from a `TlsPolicy`.

    The two default contexts are made once: loading the system trust store is slow."""

    def __init__(self, policy: TlsPolicy | None = None) -> None:
        self._policy = policy
        self._defaults: dict[bool, ssl.SSLContext] = {}

    def for_peer(self, peer: Peer) -> tuple[ssl.SSLContext, str]:
        config = self._lookup(peer) or TlsPeerConfig()
        context = config.context
        if context is None:
            context = self._defaults.get(config.verify)
            if context is None:
                context = self._defaults[config.verify] = client_context(verify=config.verify)
        else:
            enforce_minimum_version(context)
        return context, config.server_hostname or _bare_host(peer.host)

    def _lookup(self, peer: Peer) -> TlsPeerConfig | None:
        policy = self._policy
        if policy is None:
            return None
        if isinstance(policy, Mapping):
            found = policy.get(peer)
            if found is None:
                found = policy.get(_bare_host(peer.host))
            return found
        return policy(peer)


def _bare_host(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host
