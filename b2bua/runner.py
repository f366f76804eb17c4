"""`b2bua run`: start every profile of a configuration, probe the trunks, stop cleanly.

SIGTERM / SIGINT: answered calls get BYE on both legs, calls still ringing get 503, then
the sockets close and the CDR file is flushed.

With `node.workers = N > 1` the command forks N worker processes (one event loop each, so
the B2BUA uses N cores) and supervises them. Every worker binds each configured listening
address with SO_REUSEPORT, so the kernel spreads new senders over the workers, plus an
address of its own (same host, a free port) that it writes into Via and Contact: the
responses to its requests and the in-dialog requests of its calls come back to it, not to
another worker (RFC 3261 §18.2.2, §12.1).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import ssl
import sys
import traceback

import structlog

from .config import B2buaConfig, ConfigError, load_config
from .engine.bridge import Bridge, NodeState
from .engine.cdr import CdrWriter
from .engine.health import TrunkHealth
from .engine.location import configure_validation_cache
from .admin import make_admin_app
from .config import parse_host_port
from .engine.probe import link_prober, trunk_prober
from .testbench.web import ServedApp
from .testbench.web import serve as serve_app  # not `serve`: this module defines its own serve(config)
from .lifecycle import stop_event
from .logs import configure_logging
from .selfsigned import ensure_self_signed
from .sip import Limits
from .sip.timers import TimerConfig
from .stack import SipStack
from .transport import TlsPeerConfig, server_context
from .transport import run as run_loop

log = structlog.get_logger("b2bua.node")


class B2buaNode:
    """One B2BUA process: a Bridge (with its own SipStack) per profile, shared trunk health."""

    def __init__(self, config: B2buaConfig, *, worker: int | None = None) -> None:
        self.config = config
        self.worker = worker  # index among node.workers, None when the node runs alone
        configure_validation_cache(config.node.validation_cache_entries)
        self.node = NodeState(config, CdrWriter(config.node.cdr_path, worker=worker))
        self.node.health = {trunk.name: TrunkHealth(trunk.name, trunk.health) for trunk in config.trunk}
        self.bridges: list[Bridge] = []
        self._probers: list[asyncio.Task] = []
        self.admin: ServedApp | None = None

    async def start(self, *, probe: bool = True) -> None:
        config = self.config
        timers = TimerConfig(config.timers.t1_ms / 1000, config.timers.t2_ms / 1000, config.timers.t4_ms / 1000)
        limits = Limits(max_message=config.node.max_message_bytes, max_body=config.node.max_message_bytes)
        server_tls = self._server_tls()
        for profile in config.profile:
            bridge = Bridge(self.node, profile, lambda core: SipStack(
                core, timers=timers, limits=limits, tls_peers=self._tls_peer, user_agent=config.node.user_agent))
            # Known before its sockets open, so stop() closes what a failed start() opened.
            self.bridges.append(bridge)
            for spec in profile.listeners:
                tls = server_tls if spec.transport == "tls" else None
                host, port = spec.address.host, spec.address.port
                if self.worker is None:
                    advertise = (profile.advertised_host, port) if profile.advertised_host else None
                    await bridge.stack.listen(spec.transport, host, port, tls, advertise=advertise)
                    continue
                # A worker: its own port first (Via/Contact name it), then the shared one.
                own = await bridge.stack.listen(spec.transport, host, 0, tls)
                if profile.advertised_host:
                    own.advertise = (profile.advertised_host, own.port)
                await bridge.stack.listen(spec.transport, host, port, tls, shared=True)
            log.info("profile.ready", profile=profile.name, listen=profile.listen,
                     location_policy=profile.location_policy)
        if probe and self.bridges:
            stack = self.bridges[0].stack
            for trunk in config.trunk:
                if trunk.health.enabled:
                    prober = trunk_prober(stack, trunk, self.node.health[trunk.name])
                    self._probers.append(asyncio.create_task(prober.run(), name=f"probe-{trunk.name}"))
            for link in config.link:
                if link.probe is not None:
                    prober = link_prober(stack, link, self.node.sites.links[link.name])
                    self._probers.append(asyncio.create_task(prober.run(), name=f"probe-link-{link.name}"))
        if config.admin is not None:
            address = parse_host_port(config.admin, allow_zero=True)
            self.admin = await serve_app(make_admin_app(self.node), address.host, address.port)
            log.info("admin.ready", url=self.admin.url)

    def _server_tls(self) -> ssl.SSLContext | None:
        tls = self.config.tls
        if not (tls.cert_file and tls.key_file):
            return None
        if tls.self_signed_if_missing and ensure_self_signed(tls.cert_file, tls.key_file):
            log.info("tls.self_signed_created", cert_file=tls.cert_file)
        return server_context(tls.cert_file, tls.key_file)

    def _tls_peer(self, peer: object) -> TlsPeerConfig | None:
        for trunk in self.config.trunk:
            address = trunk.host_port
            if (address.host, address.port) == (getattr(peer, "host", None), getattr(peer, "port", None)):
                if not trunk.tls_verify:
                    return TlsPeerConfig(verify=False)
                if self.config.tls.ca_file:
                    from .transport import client_context

                    return TlsPeerConfig(context=client_context(cafile=self.config.tls.ca_file))
        return None

    def address(self, profile: str, transport: str = "udp") -> tuple[str, int]:
        bridge = next(bridge for bridge in self.bridges if bridge.profile.name == profile)
        return bridge.stack.local_address(transport, socket.AF_INET)

    async def stop(self, why: str = "shutdown") -> None:
        hung_up = sum(bridge.hang_up_all(why) for bridge in self.bridges)
        for task in self._probers:
            task.cancel()
        await asyncio.gather(*self._probers, return_exceptions=True)
        if hung_up:
            await asyncio.sleep(0.3)  # let the BYEs leave before the sockets close
        if self.admin is not None:
            await self.admin.close()
            self.admin = None
        for bridge in self.bridges:
            await bridge.stack.close()
        self.node.cdr.close()
        log.info("node.stopped", calls_hung_up=hung_up)


async def serve(config: B2buaConfig, worker: int | None = None) -> None:
    node = B2buaNode(config, worker=worker)
    await node.start()
    tune_garbage_collector()
    stop = stop_event()
    log.info("node.running", name=config.node.name)
    await stop.wait()
    await node.stop()


def tune_garbage_collector() -> None:
    """Every call leaves a few hundred small objects that live for its transactions' 32 s;
    with the default thresholds the cyclic collector ran every few calls and rescanned them
    (about a fifth of the CPU per call in a profile). Objects made at start-up (config,
    modules, tables) are moved out of its sight, and it runs ten times less often: the
    memory the calls use is freed by reference counting either way."""
    gc.freeze()
    gc.set_threshold(7000, 20, 20)


def add_arguments(parser) -> None:  # noqa: ANN001 - argparse.ArgumentParser
    parser.add_argument("--config", required=True, help="path of the TOML configuration")


def run(args) -> int:  # noqa: ANN001 - argparse.Namespace
    return run_from_config(args.config)


def run_from_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as error:
        more = len(error.problems) - 1
        suffix = f" (and {more} more: b2bua check-config {path} lists them)" if more else ""
        print(f"b2bua run: {error.lines()[0]}{suffix}", file=sys.stderr)
        return 2
    configure_logging(config.node.log_level)
    if config.node.workers > 1:
        return run_workers(config)
    try:
        run_loop(serve(config))
    except OSError as error:
        print(f"b2bua run: {error}", file=sys.stderr)
        return 1
    return 0


def run_workers(config: B2buaConfig) -> int:
    """Fork `node.workers` workers and wait for them. SIGTERM / SIGINT is passed on to
    every worker (each hangs up its own calls). A worker that dies while the node is not
    stopping stops the others: a node serving with fewer workers than configured would
    hash some callers onto nothing (their port is still shared), so it fails loudly."""
    workers: dict[int, int] = {}  # pid -> worker index
    for index in range(config.node.workers):
        pid = os.fork()
        if pid == 0:
            os._exit(_worker_main(config, index))
        workers[pid] = index
    log.info("node.workers_started", workers=len(workers), pids=sorted(workers))
    stopping = False
    status = 0

    def stop_all(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {signum: signal.signal(signum, stop_all) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        while workers:
            pid, wait_status = os.waitpid(-1, 0)
            index = workers.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if not stopping:
                log.error("node.worker_died", worker=index, pid=pid, exit_code=code)
                status = code if code > 0 else 1
                stop_all()
            elif code != 0 and status == 0:
                status = code if code > 0 else 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def _worker_main(config: B2buaConfig, index: int) -> int:
    """The body of one forked worker: its own event loop (uvloop), then its exit code."""
    structlog.contextvars.bind_contextvars(worker=index)
    try:
        run_loop(serve(config, worker=index))
    except OSError as error:
        print(f"b2bua run: worker {index}: {error}", file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - a worker must report, then exit by its code
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0
