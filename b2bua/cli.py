"""`b2bua`: one command line for the B2BUA and its test bench (wiring only).

Each subcommand lives in the module that owns its job and registers itself through two
functions: `add_arguments(parser)` and `run(args) -> int`. Exit status everywhere:
0 success, 1 the job failed (a call failed, a scenario missed its expectation),
2 unusable arguments or configuration (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (command, module, help). A module is imported only when its command runs.
COMMANDS: list[tuple[str, str, str]] = [
    ("run", "b2bua.runner", "run the B2BUA from a TOML configuration"),
    ("check-config", "b2bua.config", "validate a configuration and list every problem"),
    ("link", "b2bua.admin", "show a WAN link, or set it up or down, through the B2BUA's admin API"),
    ("ecrc", "b2bua.testbench.ecrc", "run a mock ECRC that records what location arrived (or list its calls)"),
    ("call", "b2bua.testbench.caller", "place emergency calls through a B2BUA and report each outcome"),
    ("lab", "b2bua.testbench.lab", "run the embedded lab and its scenario matrix (or --serve it)"),
    ("pstn", "b2bua.testbench.pstn", "run a mock PSTN gateway, optionally an ELIN gateway (or list its calls)"),
    ("netlab", "b2bua.netlab.cli", "build the multi-host lab in network namespaces (root): up, status, clean"),
]


class UsageError(Exception):
    """Unusable arguments: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep it to one line
        self.exit(2, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="b2bua", description="SIP B2BUA and test bench for E9-1-1 calls")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, module, help_text in COMMANDS:
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code in (0, None) else 2
    try:
        return int(importlib.import_module(args._module).run(args))
    except UsageError as error:
        print(f"b2bua {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
