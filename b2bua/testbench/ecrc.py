"""The mock ECRC (`b2bua ecrc`): answers emergency calls and records exactly what arrived.

Every INVITE is recorded in SQLite and committed *before* any final response leaves
(`CallStore.add` returns after the commit), so a test that sees the 200 can read the
record, even if the ECRC dies right after. A 933 / test-URN call gets its address read
back (log and record). The HTTP API (`web.make_app`) serves the records and changes the
answer behaviour at run time.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog

from ..config import parse_host_port, parse_listen
from ..selfsigned import ensure_self_signed
from ..sip import Request
from ..sip.transaction import Peer
from ..transport import server_context
from .cli_common import BenchCommand, add_common_arguments, checked_arguments, print_calls, serve_command
from .control import AnswerBehaviour
from .record import build_record
from .store import CallStore
from .uas import AnsweringUas
from .web import ServedApp, make_app, serve

log = structlog.get_logger("b2bua.ecrc")


class MockEcrc(AnsweringUas):
    def __init__(self, name: str, store: CallStore, behaviour: AnswerBehaviour | None = None, *,
                 elins: frozenset[str] = frozenset(), test_numbers: tuple[str, ...] = ("933",),
                 **stack_options: object) -> None:
        super().__init__(name, behaviour, **stack_options)
        self.store = store
        self.elins = elins
        self.test_numbers = test_numbers

    def invite_received(self, request: Request, peer: Peer) -> None:
        self.record_call(request, peer, self.behaviour.answer)

    def invite_dropped(self, request: Request, peer: Peer) -> None:
        """`drop`: the caller hears nothing, but the INVITE is recorded (`answer: drop`), so
        a test can tell "never arrived" from "arrived and went unanswered"."""
        self.record_call(request, peer, "drop")

    def record_call(self, request: Request, peer: Peer, answer: str) -> dict:
        record = self.make_record(request, peer)
        record["answer"] = answer
        record["id"] = self.store.add(record)  # committed before any answer leaves
        fields = {"ecrc": self.name, "record_id": record["id"], "call_id": request.call_id, "answer": answer,
                  "verdict": record.get("verdict"), "disposition": record.get("disposition")}
        if record.get("is_test"):
            log.info("ecrc.readback", readback=record.get("readback"), **fields)
        else:
            log.info("ecrc.call", **fields)
        return record

    def make_record(self, request: Request, peer: Peer) -> dict:
        return build_record(
            request, ecrc=self.name, transport=peer.transport.upper(), source=source_of(peer),
            arrived_at=datetime.now(timezone.utc), elins=self.elins, test_numbers=self.test_numbers,
        )


def source_of(peer: Peer) -> str:
    """The sender as a record's `source`: `host:port`, `[v6]:port`."""
    return f"[{peer.host}]:{peer.port}" if ":" in peer.host else f"{peer.host}:{peer.port}"


_source = source_of


@dataclass
class RunningUas:
    """A bench UA started by `start_uas`: its SIP side and its HTTP API."""

    uas: AnsweringUas
    api: ServedApp | None

    def sip_address(self, transport: str = "udp") -> tuple[str, int]:
        return self.uas.stack.local_address(transport)

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()
        await self.uas.stack.close()


async def start_uas(uas: AnsweringUas, store: CallStore, listen: list[str], http: str | None, *,
                    tls_cert: str | None = None, tls_key: str | None = None) -> RunningUas:
    """Listen on each `udp:HOST:PORT` / `tcp:` / `tls:` address and serve the HTTP API."""
    tls_context = None
    if any(item.startswith("tls:") for item in listen):
        if not (tls_cert and tls_key):
            raise ValueError("a tls: listener needs --tls-cert and --tls-key")
        ensure_self_signed(tls_cert, tls_key)
        tls_context = server_context(tls_cert, tls_key)
    for item in listen:
        spec = parse_listen(item)
        await uas.stack.listen(spec.transport, spec.address.host, spec.address.port,
                               tls_context if spec.transport == "tls" else None)
    api = None
    if http:
        address = parse_host_port(http, allow_zero=True)
        api = await serve(make_app(store, uas.get_behaviour, uas.set_behaviour, name=uas.name), address.host, address.port)
    return RunningUas(uas, api)


# -- `b2bua ecrc [serve] ...` and `b2bua ecrc calls` -----------------------------------------

COMMAND = BenchCommand("ecrc", name="ecrc", listen="udp:127.0.0.1:5070", db="ecrc.sqlite", http="127.0.0.1:8070")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, COMMAND, "an ECRC")
    parser.add_argument("--elin", action="append", default=[], help="an ELIN the bench knows (repeatable)")


def run(args: argparse.Namespace) -> int:
    if args.action == "calls":
        return print_calls(args, COMMAND)
    behaviour, listen = checked_arguments(args, COMMAND)
    return serve_command(
        args, COMMAND, listen,
        lambda store: MockEcrc(args.name, store, behaviour, elins=frozenset(args.elin)),
    )
