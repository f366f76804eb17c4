"""A userspace netem: copies Ethernet frames between two interfaces, losing and delaying some.

`python -m b2bua.netlab.shaper IF_A IF_B --loss 0.1 --delay-ms 50 --seed 1 --stats FILE`

Used by the lab when the kernel has no `sch_netem` (CONFIG_NET_SCH_NETEM unset): the host's
bridge port is taken out of the bridge and this process stands between it and a new bridge
port, in the switch namespace. Each IPv4 frame, in either direction, is dropped with
probability `loss` (fragments one by one, as on a real link) or sent on after `delay_ms`
(the order of frames is kept: the delay is constant). ARP and other frames pass at once,
as they would on a routed WAN where only the IP path is bad.

Sockets are AF_PACKET with PACKET_VNET_HDR, so segmentation offload metadata (a TCP
super-frame from a veth with TSO, a checksum left to the hardware) travels with the frame
and the kernel finishes it on the other side: no frame is larger than the MTU on the wire
of the receiving host. Frames this process sent itself (PACKET_OUTGOING) are skipped.

SIGTERM / SIGINT: stop, write the counters as JSON to `--stats`, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
from pathlib import Path

from b2bua.lifecycle import stop_event

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
VNET_HDR_LEN = 10  # struct virtio_net_hdr
MAX_FRAME = 65536 + VNET_HDR_LEN + 64


def open_interface(name: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.bind((name, ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Shaper:
    def __init__(self, a: str, b: str, loss: float, delay_s: float, seed: int) -> None:
        self.names = (a, b)
        self.loss = loss
        self.delay_s = delay_s
        self.random = random.Random(seed)
        self.stats = {"interfaces": [a, b], "loss": loss, "delay_ms": delay_s * 1000, "seed": seed,
                      "frames": 0, "ip_frames": 0, "dropped": 0, "delayed": 0, "send_errors": 0}
        self.sockets: tuple[socket.socket, socket.socket] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        first, second = open_interface(self.names[0]), open_interface(self.names[1])
        self.sockets = (first, second)
        loop.add_reader(first.fileno(), self._pump, first, second, loop)
        loop.add_reader(second.fileno(), self._pump, second, first, loop)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.sockets is None:
            return
        for sock in self.sockets:
            loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets = None

    def _pump(self, source: socket.socket, target: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        for _ in range(256):  # bounded batch: the other direction gets its turn
            try:
                data, address = source.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if address[2] == PACKET_OUTGOING:
                continue
            self.stats["frames"] += 1
            ethertype = int.from_bytes(data[VNET_HDR_LEN + 12:VNET_HDR_LEN + 14], "big")
            if ethertype != ETH_P_IP:
                self._send(target, data)
                continue
            self.stats["ip_frames"] += 1
            if self.random.random() < self.loss:
                self.stats["dropped"] += 1
                continue
            if self.delay_s > 0:
                self.stats["delayed"] += 1
                loop.call_later(self.delay_s, self._send, target, data)
            else:
                self._send(target, data)

    def _send(self, target: socket.socket, data: bytes) -> None:
        if self.sockets is None:
            return
        try:
            target.send(data)
        except OSError:
            self.stats["send_errors"] += 1


async def _main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    shaper = Shaper(args.a, args.b, args.loss, args.delay_ms / 1000, args.seed)
    stop = stop_event()
    shaper.start(loop)
    print(json.dumps({"event": "shaper.ready", "interfaces": [args.a, args.b], "loss": args.loss,
                      "delay_ms": args.delay_ms, "seed": args.seed}), file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        shaper.close(loop)
        if args.stats:
            Path(args.stats).write_text(json.dumps(shaper.stats))
        print(json.dumps({"event": "shaper.stopped", **shaper.stats}), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m b2bua.netlab.shaper", description=__doc__.splitlines()[0])
    parser.add_argument("a", help="first interface")
    parser.add_argument("b", help="second interface")
    parser.add_argument("--loss", type=float, default=0.0, help="probability of dropping an IPv4 frame (0..1)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="constant delay of every IPv4 frame")
    parser.add_argument("--seed", type=int, default=1, help="random seed (a run can be repeated)")
    parser.add_argument("--stats", help="write the counters here as JSON on exit")
    args = parser.parse_args(argv)
    if not 0 <= args.loss < 1 or args.delay_ms < 0:
        parser.error("--loss must be in [0, 1) and --delay-ms >= 0")
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
