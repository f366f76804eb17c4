"""The mock ECRC (`b2bua ecrc`): answers emergency calls and records exactly what arrived.

Every INVITE is recorded in SQLite and committed *before* any final response leaves
(`CallStore.add` returns after the commit), so a test that sees the 200 can read the
record, even if the ECRC dies right after. A 933 / test-URN call gets its address read
back (log and record). The HTTP API (`web.make_app`) serves the records and changes the
answer behaviour at run time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog

from ..config import parse_host_port, parse_listen
from ..logs import configure_logging
from ..selfsigned import ensure_self_signed
from ..sip import Request
from ..sip.transaction import Peer
from ..transport import run as run_loop
from ..transport import server_context
from .control import ANSWERS, AnswerBehaviour, BehaviourError
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
        record = self.make_record(request, peer)
        record["answer"] = self.behaviour.answer
        record["id"] = self.store.add(record)  # committed before any answer leaves
        fields = {"ecrc": self.name, "record_id": record["id"], "call_id": request.call_id,
                  "verdict": record.get("verdict"), "disposition": record.get("disposition")}
        if record.get("is_test"):
            log.info("ecrc.readback", readback=record.get("readback"), **fields)
        else:
            log.info("ecrc.call", **fields)

    def make_record(self, request: Request, peer: Peer) -> dict:
        return build_record(
            request, ecrc=self.name, transport=peer.transport.upper(), source=_source(peer),
            arrived_at=datetime.now(timezone.utc), elins=self.elins, test_numbers=self.test_numbers,
        )


def _source(peer: Peer) -> str:
    return f"[{peer.host}]:{peer.port}" if ":" in peer.host else f"{peer.host}:{peer.port}"


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
        address = parse_host_port(http)
        api = await serve(make_app(store, uas.get_behaviour, uas.set_behaviour, name=uas.name), address.host, address.port)
    return RunningUas(uas, api)


# -- `b2bua ecrc [serve] ...` and `b2bua ecrc calls` -----------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("serve", "calls"), default="serve",
                        help="serve (default): run an ECRC; calls: list what an ECRC recorded")
    parser.add_argument("--name", default="ecrc", help="instance name written in every record (default: ecrc)")
    parser.add_argument("--listen", action="append", metavar="T:HOST:PORT",
                        help="udp:/tcp:/tls:HOST:PORT to listen on (repeatable; default udp:127.0.0.1:5070)")
    parser.add_argument("--db", default="ecrc.sqlite", help="SQLite file of the records (default: ecrc.sqlite)")
    parser.add_argument("--http", default="127.0.0.1:8070", help="HTTP API address (default 127.0.0.1:8070)")
    parser.add_argument("--answer", choices=ANSWERS, default="200", help="answer behaviour (default 200)")
    parser.add_argument("--ring-ms", type=int, default=0, help="ring this long before answering")
    parser.add_argument("--bye-after-s", type=float, default=None, help="with --answer bye-after")
    parser.add_argument("--elin", action="append", default=[], help="an ELIN the bench knows (repeatable)")
    parser.add_argument("--tls-cert", help="certificate for tls: listeners (made self-signed when missing)")
    parser.add_argument("--tls-key", help="key for tls: listeners")
    parser.add_argument("--url", help="with `calls`: the ECRC's HTTP API (default http://<--http>)")
    parser.add_argument("--json", action="store_true", help="with `calls`: print JSON")
    parser.add_argument("--limit", type=int, default=20, help="with `calls`: how many (default 20)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.action == "calls":
        return _print_calls(args)
    try:
        behaviour = AnswerBehaviour(args.answer, args.ring_ms, args.bye_after_s)
        listen = args.listen or ["udp:127.0.0.1:5070"]
        for item in listen:
            parse_listen(item)
        parse_host_port(args.http)
    except (BehaviourError, ValueError) as error:
        raise UsageError(str(error)) from None
    configure_logging(args.log_level)
    try:
        run_loop(_serve(args, behaviour, listen))
    except OSError as error:
        print(f"b2bua ecrc: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve(args: argparse.Namespace, behaviour: AnswerBehaviour, listen: list[str]) -> None:
    store = CallStore(args.db)
    ecrc = MockEcrc(args.name, store, behaviour, elins=frozenset(args.elin))
    running = await start_uas(ecrc, store, listen, args.http, tls_cert=args.tls_cert, tls_key=args.tls_key)
    log.info("ecrc.ready", ecrc=args.name, listen=listen, http=args.http, db=args.db, answer=behaviour.answer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await running.close()
    store.close()


def _print_calls(args: argparse.Namespace) -> int:
    """Read the records through the HTTP API (default) or straight from the SQLite file."""
    from ..cli import UsageError

    if args.url or not args.db or args.db == "ecrc.sqlite":
        url = (args.url or f"http://{args.http}").rstrip("/") + f"/calls?limit={args.limit}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                records = json.loads(reply.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise UsageError(f"cannot read {url}: {error}") from None
    else:
        store = CallStore(args.db)
        records = store.list(limit=args.limit)
        store.close()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    print(f"{'id':>5}  {'arrived_at':<24} {'ecrc':<10} {'caller':<16} {'to':<10} {'verdict':<24} disposition")
    for record in records:
        print(f"{record.get('id', ''):>5}  {str(record.get('arrived_at', ''))[:24]:<24} {str(record.get('ecrc', ''))[:10]:<10} "
              f"{str(record.get('caller_id') or '')[:16]:<16} {_to_user(record):<10} {str(record.get('verdict') or '-'):<24} "
              f"{record.get('disposition', '')}")
    return 0


def _to_user(record: dict) -> str:
    uri = str(record.get("request_uri") or "")
    return uri.split(":", 1)[-1].split("@", 1)[0][:10]
