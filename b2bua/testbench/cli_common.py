"""What `b2bua ecrc` and `b2bua pstn` share: their common options, the serve loop and the
calls printer. Each command adds its own options and builds its own UAS; the rest is here.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..config import parse_host_port, parse_listen
from ..lifecycle import until_stopped
from ..logs import configure_logging
from ..transport import run as run_loop
from .control import ANSWERS, AnswerBehaviour, BehaviourError
from .store import CallStore
from .uas import AnsweringUas

log = structlog.get_logger("b2bua.testbench")


@dataclass(frozen=True)
class BenchCommand:
    """The defaults that tell one bench command from another."""

    command: str  # "ecrc", "pstn": in messages and log events
    name: str  # default --name
    listen: str  # default --listen
    db: str  # default --db
    http: str  # default --http


def add_common_arguments(parser: argparse.ArgumentParser, command: BenchCommand, what: str) -> None:
    """`[serve|calls] --name --listen --db --http --answer --ring-ms --bye-after-s --tls-cert
    --tls-key --url --json --limit --log-level`; `what` names the thing served ("an ECRC")."""
    parser.add_argument("action", nargs="?", choices=("serve", "calls"), default="serve",
                        help=f"serve (default): run {what}; calls: list what {what} recorded")
    parser.add_argument("--name", default=command.name,
                        help=f"instance name written in every record (default: {command.name})")
    parser.add_argument("--listen", action="append", metavar="T:HOST:PORT",
                        help=f"udp:/tcp:/tls:HOST:PORT to listen on (repeatable; default {command.listen})")
    parser.add_argument("--db", default=command.db, help=f"SQLite file of the records (default: {command.db})")
    parser.add_argument("--http", default=command.http, help=f"HTTP API address (default {command.http})")
    parser.add_argument("--answer", choices=ANSWERS, default="200", help="answer behaviour (default 200)")
    parser.add_argument("--ring-ms", type=int, default=0, help="ring this long before answering")
    parser.add_argument("--bye-after-s", type=float, default=None, help="with --answer bye-after")
    parser.add_argument("--tls-cert", help="certificate for tls: listeners (made self-signed when missing)")
    parser.add_argument("--tls-key", help="key for tls: listeners")
    parser.add_argument("--url", help=f"with `calls`: the HTTP API of {what} (default http://<--http>)")
    parser.add_argument("--json", action="store_true", help="with `calls`: print JSON")
    parser.add_argument("--limit", type=int, default=20, help="with `calls`: how many (default 20)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def checked_arguments(args: argparse.Namespace, command: BenchCommand) -> tuple[AnswerBehaviour, list[str]]:
    """The answer behaviour and listen addresses, or `UsageError` (exit 2, one line)."""
    from ..cli import UsageError

    try:
        behaviour = AnswerBehaviour(args.answer, args.ring_ms, args.bye_after_s)
        listen = args.listen or [command.listen]
        for item in listen:
            parse_listen(item)
        parse_host_port(args.http, allow_zero=True)
    except (BehaviourError, ValueError) as error:
        raise UsageError(str(error)) from None
    if any(item.startswith("tls:") for item in listen) and not (args.tls_cert and args.tls_key):
        raise UsageError("a tls: listener needs --tls-cert and --tls-key")
    return behaviour, listen


def serve_command(args: argparse.Namespace, command: BenchCommand, listen: list[str],
                  make_uas: Callable[[CallStore], AnsweringUas], **ready_fields: object) -> int:
    """Run the UAS `make_uas(store)` on `listen` with its HTTP API until SIGTERM/SIGINT."""
    configure_logging(args.log_level)
    try:
        run_loop(_serve(args, command, listen, make_uas, ready_fields))
    except OSError as error:
        print(f"b2bua {command.command}: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve(args: argparse.Namespace, command: BenchCommand, listen: list[str],
                 make_uas: Callable[[CallStore], AnsweringUas], ready_fields: dict[str, object]) -> None:
    from .ecrc import start_uas

    store = CallStore(args.db)
    try:
        uas = make_uas(store)
        running = await start_uas(uas, store, listen, args.http, tls_cert=args.tls_cert, tls_key=args.tls_key)
        try:
            log.info(f"{command.command}.ready", **{command.command: args.name}, listen=listen, http=args.http,
                     db=args.db, answer=uas.behaviour.answer, **ready_fields)
            await until_stopped()
        finally:
            await running.close()
    finally:
        store.close()


def print_calls(args: argparse.Namespace, command: BenchCommand) -> int:
    """`calls`: read the records through the HTTP API (default) or, when --db names another
    file than the default and no --url is given, straight from the SQLite file."""
    from ..cli import UsageError

    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} is not a positive whole number")
    if args.url or not args.db or args.db == command.db:
        url = (args.url or f"http://{args.http}").rstrip("/") + f"/calls?limit={args.limit}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                records = json.loads(reply.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise UsageError(f"cannot read {url}: {error}") from None
    else:
        try:
            store = CallStore(args.db)
        except Exception as error:  # noqa: BLE001 - sqlite3.Error, OSError: one line, exit 2
            raise UsageError(f"cannot open {args.db}: {error}") from None
        try:
            records = store.list(limit=args.limit)
        finally:
            store.close()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    print(format_calls(records))
    return 0


def format_calls(records: list[dict]) -> str:
    """One line per record: id, arrival, instance, caller (the PSTN caller ID when the
    record has one, as the far end saw it), dialled user, verdict, disposition."""
    lines = [f"{'id':>5}  {'arrived_at':<24} {'ecrc':<10} {'caller':<16} {'to':<10} {'verdict':<24} disposition"]
    for record in records:
        caller = record.get("pstn_caller_id") or record.get("caller_id") or ""
        lines.append(
            f"{record.get('id', ''):>5}  {str(record.get('arrived_at', ''))[:24]:<24} {str(record.get('ecrc', ''))[:10]:<10} "
            f"{str(caller)[:16]:<16} {_to_user(record):<10} {str(record.get('verdict') or '-'):<24} "
            f"{record.get('disposition', '')}"
        )
    return "\n".join(lines)


def _to_user(record: dict) -> str:
    uri = str(record.get("request_uri") or "")
    return uri.split(":", 1)[-1].split("@", 1)[0][:10]
