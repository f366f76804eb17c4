"""Which transport a request goes over: RFC 3261 §18.1.1, as pure functions.

§18.1.1: "If a request is within 200 bytes of the path MTU, or if it is larger than 1300
bytes and the path MTU is not known, the request MUST be sent using an RFC 2914
congestion controlled transport protocol, such as TCP." An emergency INVITE with SDP and
a PIDF-LO is 1.5-3 KB, so this rule decides the transport of most E9-1-1 calls.

The caller (who knows the target's transports, e.g. from RFC 3263 NAPTR/SRV or trunk
configuration) logs the reason when one is returned, and updates the top Via transport
of the request before sending it.
"""

from __future__ import annotations

from collections.abc import Sequence

# RFC 3261 §18.1.1: the size limit when the path MTU is unknown.
DEFAULT_THRESHOLD = 1300

# Congestion-controlled transports in order of preference for a size-forced switch: plain
# TCP first because the request would otherwise have gone in clear over UDP; TLS when the
# target offers only that.
_RELIABLE = ("tcp", "tls")


def threshold_for_mtu(path_mtu: int | None) -> int:
    """The size above which a request leaves UDP: 200 bytes below a known path MTU, else
    1300 bytes (RFC 3261 §18.1.1)."""
    if path_mtu is None:
        return DEFAULT_THRESHOLD
    return max(path_mtu - 200, 0)


def select_transport(
    request_size: int,
    allowed: Sequence[str],
    preferred: str,
    threshold: int = DEFAULT_THRESHOLD,
) -> tuple[str, str | None]:
    """The transport for a request of `request_size` bytes to a target that accepts the
    transports in `allowed` ('udp', 'tcp', 'tls'; any case), when `preferred` is the one
    configured. Returns `(transport, reason)`: `reason` is None when `preferred` is used
    unchanged, else a sentence for the log saying why it differs (or why a large request
    still goes over UDP and will be IP-fragmented).

    A request larger than `threshold` moves from UDP to TCP, or TLS, when the target
    allows one (RFC 3261 §18.1.1). §18.1.1 also says that such a size-forced switch that
    fails with a TCP reset or ICMP protocol-unsupported SHOULD be retried over UDP: that
    retry is the caller's (it knows the switch happened because `reason` is not None).
    """
    options = [name.lower() for name in allowed]
    if not options:
        raise ValueError("the target allows no transport")
    chosen = preferred.lower()
    reason: str | None = None
    if chosen not in options:
        # The configured transport is not offered: take the target's first choice.
        chosen = options[0]
        reason = f"preferred transport {preferred.lower()} not offered by the target; using {chosen}"
    if chosen != "udp" or request_size <= threshold:
        return chosen, reason
    for candidate in _RELIABLE:
        if candidate in options:
            why = (
                f"request of {request_size} bytes exceeds {threshold} bytes; "
                f"sent over {candidate} instead of udp (RFC 3261 §18.1.1)"
            )
            return candidate, why if reason is None else f"{reason}; {why}"
    why = (
        f"request of {request_size} bytes exceeds {threshold} bytes but the target is UDP-only; "
        "sending over udp, it will be IP-fragmented (RFC 3261 §18.1.1)"
    )
    return "udp", why if reason is None else f"{reason}; {why}"
