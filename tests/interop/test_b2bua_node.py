"""The B2BUA node's life cycle on real sockets (no SIPp needed)."""

from __future__ import annotations

import asyncio
import socket

import pytest

import b2bua_support as bs
from b2bua.config import config_from_dict
from b2bua.runner import B2buaNode


async def test_a_start_that_fails_on_a_busy_port_leaves_no_socket_open(tmp_path):
    ports = bs.Ports.fresh()
    config = bs.node_config(tmp_path, ports)  # udp and tcp on ports.caller
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((bs.HOST, ports.caller))
        squatter.listen()
        node = B2buaNode(config_from_dict(config))
        with pytest.raises(OSError):
            await node.start(probe=False)
        await node.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((bs.HOST, ports.caller))  # the UDP listener opened before the failure is closed


async def test_the_node_answers_options_with_200_and_what_it_accepts(tmp_path):
    # Upstream Mediation Servers and SBCs probe us too (b2bua-checklist §0 item 4: never 501).
    ports = bs.Ports.fresh()
    async with bs.running_node(bs.node_config(tmp_path, ports)):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((bs.HOST, 0))
            probe.setblocking(False)
            port = probe.getsockname()[1]
            loop = asyncio.get_running_loop()
            await loop.sock_sendto(probe, (
                f"OPTIONS sip:{bs.HOST}:{ports.caller} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {bs.HOST}:{port};branch=z9hG4bKoptions1;rport\r\n"
                f"From: <sip:ms@{bs.HOST}:{port}>;tag=ms1\r\nTo: <sip:{bs.HOST}:{ports.caller}>\r\n"
                f"Call-ID: options-1@{bs.HOST}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode(), (bs.HOST, ports.caller))
            answer = await asyncio.wait_for(loop.sock_recv(probe, 65535), 3)
    head = answer.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("SIP/2.0 200 ")
    assert "multipart/mixed" in head and "application/pidf+xml" in head
    assert "OPTIONS" in head.split("Allow:")[1].split("\r\n")[0]
