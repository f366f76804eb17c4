"""OPTIONS keep-alive probing of trunks and of the far side of WAN links (b2bua-checklist §2.2).

Detection latency is bounded by the per-probe timeout, not by Timer F (32 s): a probe
that has no final response within `timeout_s` has failed (Kamailio's ds_ping_fr_timer).
State changes are counted by the pure `TrunkHealth` machine and logged.
"""

from __future__ import annotations

import asyncio

import structlog

from collections.abc import Callable

from ..config import Health, HostPort, Link, Trunk, parse_host_port
from ..sip import Headers, Request, new_call_id, new_tag, parse_uri
from ..sip.transaction import Event, Peer, ResponseReceived, TransactionTimeout, TransportFailure
from ..stack import SipStack
from .health import TrunkHealth
from .sites import LinkState

log = structlog.get_logger("b2bua.health")


class OptionsProber:
    """Probe one address with OPTIONS for ever; feed each outcome to a `TrunkHealth` machine
    and call `on_change(up, detail)` when it changes state."""

    def __init__(self, stack: SipStack, name: str, address: HostPort, transport: str, health: TrunkHealth,
                 on_change: Callable[[bool, str], None]) -> None:
        self.stack = stack
        self.name = name
        self.address = address
        self.transport = transport
        self.health = health
        self.on_change = on_change
        self._seq = 0

    async def run(self) -> None:
        policy = self.health.policy
        while True:
            try:
                ok, detail = await self.probe_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a probe that cannot even be sent has failed
                # One bad probe must not end the prober: the target would keep its last state
                # (up, say) for the life of the process.
                log.exception("probe.error", target=self.name)
                ok, detail = False, f"probe not sent: {error!r}"
            if self.health.record(ok, self.stack.now(), detail):
                self.on_change(self.health.up, detail)
            await asyncio.sleep(policy.interval_s)

    async def probe_once(self) -> tuple[bool, str]:
        host_port, transport = self.address, self.transport
        peer = Peer(transport, host_port.host, host_port.port)
        self._seq += 1
        # A fresh Call-ID and From tag per probe: an out-of-dialog request's Call-ID is
        # unique (RFC 3261 §8.1.1.4); peers that remember finished Call-IDs (SIPp's dead
        # calls, SBC transaction caches) drop a repeated one, and the target would go down.
        call_id, tag = new_call_id(), new_tag()
        host = f"[{host_port.host}]" if ":" in host_port.host else host_port.host
        scheme = "sips" if transport == "tls" else "sip"
        target = f"{scheme}:{host}:{host_port.port}" + (";transport=tcp" if transport == "tcp" else "")
        local_host, local_port = self.stack.local_address(transport)
        local = f"[{local_host}]" if ":" in local_host else local_host
        headers = Headers.of([
            ("Via", self.stack.via(transport)),
            ("Max-Forwards", "70"),
            ("From", f"<sip:probe@{local}:{local_port}>;tag={tag}"),
            ("To", f"<{target}>"),
            ("Call-ID", call_id),
            ("CSeq", f"{self._seq} OPTIONS"),
            ("Contact", f"<{self.stack.contact_uri(transport)}>"),
            ("Accept", "application/sdp"),
        ])
        if self.stack.user_agent:
            headers.add("User-Agent", self.stack.user_agent)
        outcome: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()

        def on_event(event: Event) -> None:
            if outcome.done():
                return
            if isinstance(event, ResponseReceived) and event.response.status >= 200:
                status = event.response.status
                outcome.set_result((self.health.is_healthy_code(status), f"{status} {event.response.reason}"))
            elif isinstance(event, TransactionTimeout):
                outcome.set_result((False, "timeout"))
            elif isinstance(event, TransportFailure):
                outcome.set_result((False, "transport error"))

        self.stack.send_request(Request("OPTIONS", parse_uri(target), headers), peer, on_event)
        timeout = self.health.policy.timeout_s
        try:
            return await asyncio.wait_for(outcome, timeout)
        except asyncio.TimeoutError:
            return False, f"no answer within {timeout:g} s"


def trunk_prober(stack: SipStack, trunk: Trunk, health: TrunkHealth) -> OptionsProber:
    """Probe a trunk; its state feeds routing (a down trunk is skipped, or tried last)."""

    def changed(up: bool, detail: str) -> None:
        log.warning("trunk.state", trunk=trunk.name, up=up, detail=detail,
                    failures=health.failures, successes=health.successes)

    return OptionsProber(stack, trunk.name, trunk.host_port, trunk.transports[0], health, changed)


def link_prober(stack: SipStack, link: Link, state: LinkState) -> OptionsProber:
    """Probe an element across a WAN link; unanswered probes declare the link down (so
    a branch's emergency calls take its local PSTN route) and answers bring it back."""
    probe = link.probe
    assert probe is not None
    policy = Health(interval_s=probe.interval_s, timeout_s=probe.timeout_s, failures_to_down=probe.failures_to_down,
                    successes_to_up=probe.successes_to_up)
    health = TrunkHealth(f"link:{link.name}", policy)

    def changed(up: bool, detail: str) -> None:
        if state.set(up, "probe", stack.now()):
            log.warning("link.state", link=link.name, up=state.up, set_by="probe", detail=detail)

    return OptionsProber(stack, f"link:{link.name}", parse_host_port(probe.target, 5060), "udp", health, changed)
