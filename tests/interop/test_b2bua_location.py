"""What each location policy does to a real emergency INVITE (SDP + PIDF-LO, referenced by
`geolocation: <cid:...>`), as the SIPp ECRC receives it. The `pass` profile is in
test_b2bua_calls.py (byte-identical body); here the non-certified SBC's strip variants.
"""

from __future__ import annotations

import pytest

import b2bua_support as bs

pytestmark = pytest.mark.sipp

BOUNDARY = b"--b2bua-interop-boundary"


def split_parts(body: bytes) -> list[tuple[bytes, bytes]]:
    """(part headers, part content) of the UAC's multipart body, by plain byte splitting."""
    segments = body.split(BOUNDARY)[1:-1]  # between the first delimiter and the close one
    parts = []
    for segment in segments:
        segment = segment.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = segment.partition(b"\r\n\r\n")
        parts.append((head, content))
    return parts


async def _strip_call(tmp_path, variant: str) -> tuple[bs.Traced, bs.Traced, dict]:
    ports = bs.Ports.fresh()
    config = bs.node_config(tmp_path, ports, location_policy="strip", strip_variant=variant)
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1)
    async with bs.running_node(config), bs.peers(primary):
        caller = await bs.uac("b2bua_uac_multipart", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    sent = bs.Trace.of(caller).first("INVITE", "sent")
    received = (await bs.finish(primary)).first("INVITE", "received")
    return sent, received, record


async def test_strip_full_leaves_only_the_sdp_and_no_geolocation_headers(tmp_path):
    sent, received, record = await _strip_call(tmp_path, "full")
    (sdp_head, sdp), (pidf_head, _) = split_parts(sent.body)
    assert b"application/pidf+xml" in pidf_head
    assert received.header("Content-Type") == "application/sdp"
    assert received.body == sdp
    assert received.header("Geolocation") is None and received.header("Geolocation-Routing") is None
    assert int(received.header("Content-Length")) == len(received.body)
    assert received.header("Priority") == "emergency"
    assert "geolocation" not in (received.header("Supported") or "")
    assert record["location"]["body_changed"] is True
    assert len(record["location"]["headers_removed"]) == 2


async def test_strip_keep_geolocation_leaves_the_reference_dangling(tmp_path):
    sent, received, _ = await _strip_call(tmp_path, "keep-geolocation")
    (_, sdp), _ = split_parts(sent.body)
    assert received.header("Content-Type") == "application/sdp" and received.body == sdp
    assert received.header("Geolocation") == sent.header("Geolocation")  # points at nothing now


async def test_strip_drop_header_keeps_the_body_byte_for_byte(tmp_path):
    sent, received, _ = await _strip_call(tmp_path, "drop-header")
    assert received.body_sha256 == sent.body_sha256
    assert received.header("Content-Type") == sent.header("Content-Type")
    assert received.header("Geolocation") is None
    assert received.header("Geolocation-Routing") == sent.header("Geolocation-Routing")


async def test_strip_drop_part_headers_loses_content_id_but_keeps_part_contents(tmp_path):
    sent, received, _ = await _strip_call(tmp_path, "drop-part-headers")
    assert received.header("Content-Type") == sent.header("Content-Type")
    assert received.header("Geolocation") == sent.header("Geolocation")
    sent_parts, received_parts = split_parts(sent.body), split_parts(received.body)
    assert [content for _, content in received_parts] == [content for _, content in sent_parts]
    for head, _ in received_parts:
        assert head.lower().startswith(b"content-type:") and b"\r\n" not in head  # the only part header
    assert b"Content-ID" not in received.body and b"Content-ID" in sent.body
    assert int(received.header("Content-Length")) == len(received.body)


async def test_strip_keep_multipart_wraps_the_lone_sdp_part(tmp_path):
    sent, received, _ = await _strip_call(tmp_path, "keep-multipart")
    (sdp_head, sdp), _ = split_parts(sent.body)
    assert received.header("Content-Type") == sent.header("Content-Type")
    assert split_parts(received.body) == [(sdp_head, sdp)]
    assert b"pidf" not in received.body
    assert received.header("Geolocation") is None
    assert int(received.header("Content-Length")) == len(received.body)
