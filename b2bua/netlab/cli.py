"""`b2bua netlab`: the lab in network namespaces, by hand (root).

    b2bua netlab up [--seconds N] [--dir DIR] [--no-sites]   build, start, wait (Ctrl-C tears down)
    b2bua netlab status                                       lab namespaces on this machine
    b2bua netlab clean                                        remove leftovers of runs that died

Kept light at import: `b2bua` imports every command module to build its parser.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("up", "status", "clean"), help="up: build and run the lab until Ctrl-C; "
                        "status: list lab namespaces; clean: remove leftovers of dead runs")
    parser.add_argument("--seconds", type=float, default=None,
                        help="with up: tear down after this many seconds (default: wait for Ctrl-C/SIGTERM)")
    parser.add_argument("--dir", help="with up: run directory for logs, stores, CDRs (default: a new temp dir)")
    parser.add_argument("--no-sites", action="store_true", help="with up: no [[site]]/[[link]] in the B2BUA config")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from .topology import NetlabError, list_namespaces, require_root, stale_tags, tag_of

    try:
        require_root()
    except NetlabError as error:
        raise UsageError(str(error)) from None
    if args.action == "status":
        names = [name for name in list_namespaces() if tag_of(name)]
        stale = set(stale_tags())
        for name in names:
            print(f"{name}{'  (stale: its run is gone)' if tag_of(name) in stale else ''}")
        if not names:
            print("no lab namespaces")
        return 0
    if args.action == "clean":
        return _clean()
    if args.seconds is not None and args.seconds <= 0:
        raise UsageError(f"--seconds {args.seconds:g}: must be above 0")
    return _up(args)


def _clean() -> int:
    from .topology import Topology, stale_tags

    tags = stale_tags()
    for tag in tags:
        topology = Topology(tag=tag)
        topology.kill_inside()  # processes of the dead run, found by their namespace
        problems = topology.remove()
        print(f"{tag}: removed" + (f" except {'; '.join(problems)}" if problems else ""))
    if not tags:
        print("nothing to clean")
    return 0


def _up(args: argparse.Namespace) -> int:
    from .lab import NetLab
    from .labconfig import Variant
    from .topology import NetlabError

    run_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="netlab-"))
    lab = NetLab(run_dir)
    try:
        try:
            lab.start(Variant(sites=not args.no_sites))
        except NetlabError as error:
            print(f"b2bua netlab: {error}", file=sys.stderr)
            return 1
        print(lab.describe())
        caller = lab.netns("caller")
        print(f"place a call:  ip netns exec {caller} {sys.executable} -m b2bua.cli call "
              f"{lab.address('b2bua')}:5060 --bind {lab.address('caller')} --style lync")
        print(f"ECRC records:  ip netns exec {caller} {sys.executable} -m b2bua.cli ecrc calls "
              f"--url http://{lab.address('ecrc-primary')}:8070")
        print("lab ready (Ctrl-C to tear down)", flush=True)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            dead = [name for name, process in lab.supervisor.processes.items()
                    if not name.startswith("calls-") and not process.alive()]
            if dead:
                print(f"b2bua netlab: {', '.join(dead)} stopped; tearing down", file=sys.stderr)
                return 1
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        left = lab.close()
        print("lab torn down" + (f"; LEFT BEHIND: {', '.join(left)}" if left else ""), flush=True)
