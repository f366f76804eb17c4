"""Call admission control on WAN links (the seed's question 3), as a pure ledger.

A call that crosses links occupies one call slot and its media bandwidth on each until
it ends. `CacLedger.admit` says whether a call fits; an emergency call over the limit is
handled by its site's policy (`block`, `pstn`, `exempt`), which the routing decision
applies; `release` gives the slots back (after BYE, CANCEL or failure: a leaked slot
would block the next emergency call, so every end of a call must release).

Bandwidth per call is estimated from the SDP offer's first audio codec, counting IP/UDP/RTP
overhead at 20 ms packetisation (the way Lync's CAC budgets a session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# kbit/s per direction with 40 bytes IP/UDP/RTP header per 20 ms packet (16 kbit/s).
CODEC_KBPS = {
    "PCMU": 80, "PCMA": 80, "G722": 80, "G729": 24, "G723": 22, "GSM": 29, "ILBC": 31,
    "OPUS": 56, "SPEEX": 40, "AMR": 28, "AMR-WB": 40, "SILK": 52,
}
STATIC_PAYLOADS = {0: "PCMU", 8: "PCMA", 9: "G722", 18: "G729", 4: "G723", 3: "GSM"}
DEFAULT_KBPS = 80  # G.711: what an emergency call is required to offer (RFC 6881 ED-72)


def sdp_bandwidth_kbps(sdp: bytes | None) -> int:
    """The bandwidth a call will use, from the first codec of its first audio stream."""
    if not sdp:
        return DEFAULT_KBPS
    text = sdp.decode("utf-8", "replace")
    media = re.search(r"^m=audio \d+ \S+ (\d+)", text, re.M)
    if media is None:
        return DEFAULT_KBPS
    payload = int(media.group(1))
    rtpmap = re.search(rf"^a=rtpmap:{payload} ([A-Za-z0-9-]+)/", text, re.M)
    codec = rtpmap.group(1).upper() if rtpmap else STATIC_PAYLOADS.get(payload, "")
    return CODEC_KBPS.get(codec, DEFAULT_KBPS)


@dataclass
class LinkUsage:
    calls: int = 0
    kbps: int = 0
    over_limit_calls: int = 0  # emergency calls admitted over the limit (policy `exempt`)


@dataclass(frozen=True)
class Admission:
    fits: bool  # within every link's limits
    full_link: str | None = None  # the first link that would overflow
    why: str | None = None  # "calls 10/10" or "bandwidth 960+80 > 1000 kbit/s"


@dataclass
class LinkLimits:
    max_calls: int | None = None
    max_bandwidth_kbps: int | None = None


@dataclass
class CacLedger:
    limits: dict[str, LinkLimits] = field(default_factory=dict)
    usage: dict[str, LinkUsage] = field(default_factory=dict)
    _held: dict[str, tuple[tuple[str, ...], int, bool]] = field(default_factory=dict)

    def check(self, links: list[str], kbps: int) -> Admission:
        """Would one more call of `kbps` fit on every link of the path?"""
        for name in links:
            limits = self.limits.get(name)
            if limits is None:
                continue
            used = self.usage.get(name, LinkUsage())
            if limits.max_calls is not None and used.calls + 1 > limits.max_calls:
                return Admission(False, name, f"calls {used.calls}/{limits.max_calls}")
            if limits.max_bandwidth_kbps is not None and used.kbps + kbps > limits.max_bandwidth_kbps:
                return Admission(False, name, f"bandwidth {used.kbps}+{kbps} > {limits.max_bandwidth_kbps} kbit/s")
        return Admission(True)

    def hold(self, call_id: str, links: list[str], kbps: int, *, over_limit: bool = False) -> None:
        """Count a call on its links (once per call id)."""
        if call_id in self._held or not links:
            return
        self._held[call_id] = (tuple(links), kbps, over_limit)
        for name in links:
            used = self.usage.setdefault(name, LinkUsage())
            used.calls += 1
            used.kbps += kbps
            used.over_limit_calls += int(over_limit)

    def release(self, call_id: str) -> bool:
        """Give a call's slots back; True when it held any. Safe to call twice."""
        held = self._held.pop(call_id, None)
        if held is None:
            return False
        links, kbps, over_limit = held
        for name in links:
            used = self.usage[name]
            used.calls -= 1
            used.kbps -= kbps
            used.over_limit_calls -= int(over_limit)
        return True

    def snapshot(self, name: str) -> dict:
        used = self.usage.get(name, LinkUsage())
        limits = self.limits.get(name, LinkLimits())
        return {"calls": used.calls, "kbps": used.kbps, "over_limit_calls": used.over_limit_calls,
                "max_calls": limits.max_calls, "max_bandwidth_kbps": limits.max_bandwidth_kbps}
