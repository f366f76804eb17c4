"""OPTIONS keep-alive probing of trunks (b2bua-checklist §2.2).

Detection latency is bounded by the per-probe timeout, not by Timer F (32 s): a probe
that has no final response within `timeout_s` has failed (Kamailio's ds_ping_fr_timer).
State changes are counted by the pure `TrunkHealth` machine and logged.
"""

from __future__ import annotations

import asyncio

import structlog

from ..config import Trunk
from ..sip import Headers, Request, new_call_id, new_tag, parse_uri
from ..sip.transaction import Event, Peer, ResponseReceived, TransactionTimeout, TransportFailure
from ..stack import SipStack
from .health import TrunkHealth

log = structlog.get_logger("b2bua.health")


class TrunkProber:
    def __init__(self, stack: SipStack, trunk: Trunk, health: TrunkHealth) -> None:
        self.stack = stack
        self.trunk = trunk
        self.health = health
        self._seq = 0

    async def run(self) -> None:
        policy = self.trunk.health
        while True:
            try:
                ok, detail = await self.probe_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a probe that cannot even be sent has failed
                # One bad probe must not end the prober: the trunk would keep its last state
                # (up, say) for the life of the process.
                log.exception("trunk.probe_error", trunk=self.trunk.name)
                ok, detail = False, f"probe not sent: {error!r}"
            if self.health.record(ok, self.stack.now(), detail):
                log.warning("trunk.state", trunk=self.trunk.name, up=self.health.up, detail=detail,
                            failures=self.health.failures, successes=self.health.successes)
            await asyncio.sleep(policy.interval_s)

    async def probe_once(self) -> tuple[bool, str]:
        host_port = self.trunk.host_port
        transport = self.trunk.transports[0]
        peer = Peer(transport, host_port.host, host_port.port)
        self._seq += 1
        # A fresh Call-ID and From tag per probe: an out-of-dialog request's Call-ID is
        # unique (RFC 3261 §8.1.1.4); peers that remember finished Call-IDs (SIPp's dead
        # calls, SBC transaction caches) drop a repeated one, and the trunk would go down.
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
        try:
            return await asyncio.wait_for(outcome, self.trunk.health.timeout_s)
        except asyncio.TimeoutError:
            return False, f"no answer within {self.trunk.health.timeout_s:g} s"
