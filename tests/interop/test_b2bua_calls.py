"""Calls through the B2BUA with real SIPp peers on loopback: set-up over UDP and TCP,
hang-up from either side, re-INVITE relay, topology hiding and byte-exact PIDF-LO relay.

SIPp UAC (caller) -> B2BUA (in-process, free ports) -> SIPp UAS (primary ECRC).
"""

from __future__ import annotations

import pytest

import b2bua_support as bs

pytestmark = pytest.mark.sipp

SIPP_TRANSPORT = {"udp": "u1", "tcp": "t1"}


@pytest.mark.parametrize(
    "caller_transport, trunk_transport",
    [("udp", "udp"), ("tcp", "tcp"), ("tcp", "udp"), ("udp", "tcp")],
)
async def test_emergency_call_reaches_primary_and_is_answered(tmp_path, caller_transport, trunk_transport):
    ports = bs.Ports.fresh()
    config = bs.node_config(tmp_path, ports, trunk_transports=(trunk_transport,))
    sipp_t = SIPP_TRANSPORT
    primary = bs.uas("b2bua_uas_answer", ports.primary, transport=sipp_t[trunk_transport])
    secondary = bs.uas("b2bua_uas_answer", ports.secondary, transport=sipp_t[trunk_transport])
    async with bs.running_node(config) as node, bs.peers(primary, secondary):
        assert node.address("certified", caller_transport) == (bs.HOST, ports.caller)
        caller = await bs.uac("b2bua_uac_call", ports.caller, transport=sipp_t[caller_transport]).run()
        assert caller.returncode == 0, bs.describe(caller)
        records = await bs.wait_for_cdrs(tmp_path, 1)
        assert not node.node.calls
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    nothing = await bs.finish(secondary)
    assert a.statuses() == [100, 180, 200, 200]  # 100, ringing relayed, answer, BYE answered
    leg_b_invite = b.first("INVITE", "received")
    assert leg_b_invite.start_line.endswith("SIP/2.0")
    assert f"SIP/2.0/{trunk_transport.upper()}" in leg_b_invite.header("Via")
    assert b.requests("ACK", "received") and b.requests("BYE", "received")
    assert not nothing.requests("INVITE")
    (record,) = records
    assert record["route_taken"] == bs.PRIMARY
    assert record["final_status"] == 200 and record["emergency"] is True
    assert [attempt["trunk"] for attempt in record["attempts"]] == [bs.PRIMARY]
    assert record["attempts"][0]["transport"] == trunk_transport
    assert record["disconnect_side"] == "caller"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_bye_from_caller_clears_both_legs_and_cdr_says_caller(tmp_path, transport):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1, transport=SIPP_TRANSPORT[transport])
    config = bs.node_config(tmp_path, ports, trunk_transports=(transport,))
    async with bs.running_node(config) as node, bs.peers(primary):
        caller = await bs.uac("b2bua_uac_call", ports.caller, transport=SIPP_TRANSPORT[transport]).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        assert not node.node.calls
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    # leg A: the caller's BYE is answered 200; leg B: the B2BUA sent its own BYE and got 200.
    assert a.responses(200, "received", method="BYE")
    bye_b = b.first("BYE", "received")
    assert bye_b.call_id == b.first("INVITE", "received").call_id
    assert b.responses(200, "sent", method="BYE")
    assert record["disconnect_side"] == "caller"
    assert record["duration_s"] > 0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_bye_from_callee_clears_both_legs_and_cdr_says_callee(tmp_path, transport):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_bye", ports.primary, calls=1, transport=SIPP_TRANSPORT[transport])
    config = bs.node_config(tmp_path, ports, trunk_transports=(transport,))
    async with bs.running_node(config) as node, bs.peers(primary):
        caller = await bs.uac("b2bua_uac_wait_bye", ports.caller, transport=SIPP_TRANSPORT[transport]).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        assert not node.node.calls
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    bye_a = a.first("BYE", "received")
    assert bye_a.call_id == a.first("INVITE", "sent").call_id  # in the caller's own dialog
    assert a.responses(200, "sent", method="BYE")
    assert b.responses(200, "received", method="BYE")  # the B2BUA answered the ECRC's BYE
    assert 'text="call taker hung up"' in (bye_a.header("Reason") or "")  # Reason relayed (RFC 3326)
    assert record["disconnect_side"] == "callee"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_reinvite_from_caller_is_relayed_in_the_trunk_dialog(tmp_path, transport):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_reinvite", ports.primary, calls=1, transport=SIPP_TRANSPORT[transport])
    config = bs.node_config(tmp_path, ports, trunk_transports=(transport,))
    async with bs.running_node(config) as node, bs.peers(primary):
        caller = await bs.uac("b2bua_uac_reinvite", ports.caller, transport=SIPP_TRANSPORT[transport]).run()
        assert caller.returncode == 0, bs.describe(caller)
        await bs.wait_for_cdrs(tmp_path, 1)
        assert not node.node.calls
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    a_invites = a.requests("INVITE", "sent")
    b_invites = b.requests("INVITE", "received")
    assert len(a_invites) == 2 and len(b_invites) == 2
    initial, reinvite = b_invites
    # The re-INVITE arrives in the ECRC's own dialog: its Call-ID, the tags of leg B, a higher CSeq.
    assert reinvite.call_id == initial.call_id != a_invites[0].call_id
    assert reinvite.cseq[0] > initial.cseq[0]
    assert ";tag=" in reinvite.header("To")
    assert reinvite.body == a_invites[1].body and b"a=sendonly" in reinvite.body
    # The ECRC's 200 (with its answer) reaches the caller; each leg's 200 is ACKed on that leg.
    ok_a = [m for m in a.responses(200, "received", method="INVITE") if m.cseq[0] == 2]
    assert ok_a and b"a=sendonly" in ok_a[0].body
    acks_b = b.requests("ACK", "received")
    assert [ack.cseq for ack in acks_b] == [(initial.cseq[0], "ACK"), (reinvite.cseq[0], "ACK")]
    assert all(ack.call_id == initial.call_id for ack in acks_b)


async def test_leg_b_carries_nothing_of_leg_a_identity(tmp_path):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(primary):
        caller = await bs.uac("b2bua_uac_call", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    sent = a.first("INVITE", "sent")
    received = b.first("INVITE", "received")
    a_call_id = sent.call_id
    a_branch = sent.header("Via").split("branch=")[1].split(";")[0]
    a_contact = sent.header("Contact").strip("<>")
    a_from_tag = sent.header("From").split("tag=")[1]
    assert received.call_id != a_call_id
    assert a_branch not in received.header("Via")
    assert len(received.headers("Via")) == 1  # leg A's Via is not stacked under ours
    assert a_contact not in received.header("Contact")
    assert received.header("From").split("tag=")[1] != a_from_tag
    for message in b:  # nothing the ECRC saw, in any message of the call, names leg A
        text = message.raw.decode("utf-8", "replace")
        for secret in (a_call_id, a_branch, a_contact, a_from_tag):
            assert secret not in text, f"{secret!r} leaked into {message.start_line}"


async def test_pass_profile_relays_multipart_pidf_lo_body_byte_for_byte(tmp_path):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports, location_policy="pass")), bs.peers(primary):
        caller = await bs.uac("b2bua_uac_multipart", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    sent = a.first("INVITE", "sent")
    received = b.first("INVITE", "received")
    assert b"application/pidf+xml" in sent.body and len(sent.body) > 1000
    assert received.body_sha256 == sent.body_sha256
    assert received.header("Content-Type") == sent.header("Content-Type")
    assert received.header("Geolocation") == sent.header("Geolocation")
    assert received.header("Geolocation-Routing") == sent.header("Geolocation-Routing")
    assert received.header("Priority") == "emergency"
    assert "geolocation-sip" in (received.header("Supported") or "")
    location = record["location"]
    assert location["policy"] == "pass" and location["body_changed"] is False
    assert [part["sha256"] for part in location["parts_in"]] == [part["sha256"] for part in location["parts_out"]]


async def test_late_offer_answer_in_callers_ack_reaches_the_trunk(tmp_path):
    # INVITE without SDP: the ECRC's 200 carries the offer, the caller's ACK the answer;
    # leg B's ACK must carry that answer (RFC 3264 §5: an offer in a 2xx is answered in the ACK).
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)) as node, bs.peers(primary):
        caller = await bs.uac("b2bua_uac_late_offer", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        assert not node.node.calls
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    assert not b.first("INVITE", "received").body
    offer_b = b.responses(200, "sent", method="INVITE")[0].body
    assert a.responses(200, "received", method="INVITE")[0].body == offer_b
    answer_a = a.first("ACK", "sent").body
    acks_b = b.requests("ACK", "received")
    assert len(acks_b) == 1 and acks_b[0].body == answer_a and b"a=x-late-answer" in answer_a
    assert acks_b[0].header("Content-Type") == "application/sdp"
    assert record["final_status"] == 200


async def test_pidf_lo_invite_over_1300_bytes_goes_to_a_tcp_capable_trunk_over_tcp(tmp_path):
    # RFC 3261 §18.1.1: the caller's INVITE came over UDP; leg B is too big for UDP.
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1, transport="t1")  # listens on TCP only
    config = bs.node_config(tmp_path, ports, trunk_transports=("udp", "tcp"))
    async with bs.running_node(config), bs.peers(primary):
        caller = await bs.uac("b2bua_uac_multipart", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    invite = b.first("INVITE", "received")
    assert len(invite.raw) > 1300 and invite.transport == "TCP"
    assert "SIP/2.0/TCP" in invite.header("Via")
    assert invite.body_sha256 == a.first("INVITE", "sent").body_sha256
    (attempt,) = record["attempts"]
    assert attempt["transport"] == "tcp" and attempt["transport_reason"]
    assert b.requests("BYE", "received")  # later, smaller requests follow the dialog over TCP


async def test_reinvite_from_trunk_is_relayed_to_the_caller_in_the_callers_dialog(tmp_path):
    # A trunk may refresh the session itself (refresher=uas): its re-INVITE reaches the caller.
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_reinvite_out", ports.primary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)) as node, bs.peers(primary):
        caller = await bs.uac("b2bua_uac_answer_reinvite", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        await bs.wait_for_cdrs(tmp_path, 1)
        assert await bs.wait_until(lambda: primary._process.returncode is not None, timeout=3.0)
        assert not node.node.calls
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    reinvite_a = a.first("INVITE", "received")
    assert reinvite_a.call_id == a.first("INVITE", "sent").call_id  # the caller's own dialog
    assert b"a=x-ecrc-refresh" in reinvite_a.body
    ok_b = b.responses(200, "received", method="INVITE")
    assert ok_b and b"a=x-caller-refresh-answer" in ok_b[0].body
    assert a.requests("ACK", "received")  # the B2BUA ACKed the caller's 200
    assert b.requests("BYE", "received")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_stopping_the_node_hangs_up_answered_calls_on_both_legs(tmp_path, transport):
    ports = bs.Ports.fresh()
    sipp_t = SIPP_TRANSPORT[transport]
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1, transport=sipp_t)
    config = bs.node_config(tmp_path, ports, trunk_transports=(transport,))
    async with bs.peers(primary):
        caller = bs.uac("b2bua_uac_wait_bye", ports.caller, transport=sipp_t)
        async with bs.running_node(config) as node:
            await caller.start()
            assert await bs.wait_until(lambda: any(c.state == "confirmed" for c in node.node.calls.values()), 5.0)
        # node.stop() has run: BYE on both legs, then the sockets closed.
        result = await caller.wait(10)
        assert result.returncode == 0, bs.describe(result)
        (record,) = bs.cdrs(tmp_path)
    a = bs.Trace.of(result)
    b = await bs.finish(primary)
    assert "B2BUA shutting down" in (a.first("BYE", "received").header("Reason") or "")
    assert b.requests("BYE", "received")
    assert record["disconnect_side"] == "B2BUA"


async def test_a_bye_arriving_after_the_call_ended_gets_481_and_no_second_bye_to_the_caller(tmp_path):
    ports = bs.Ports.fresh()
    primary = bs.uas("b2bua_uas_bye_after_bye", ports.primary, calls=1)
    async with bs.running_node(bs.node_config(tmp_path, ports)), bs.peers(primary):
        caller = await bs.uac("b2bua_uac_call_linger", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)  # no BYE reached it after its own
        assert await bs.wait_until(lambda: primary._process.returncode is not None, timeout=3.0)
        (record,) = bs.cdrs(tmp_path)
    a = bs.Trace.of(caller)
    b = await bs.finish(primary)
    assert not a.requests("BYE", "received")
    assert b.responses(481, "received", method="BYE")
    assert record["disconnect_side"] == "caller"


async def test_a_caller_that_never_acks_the_200_is_hung_up_on_both_legs(tmp_path):
    ports = bs.Ports.fresh()
    config = bs.node_config(tmp_path, ports)
    config["timers"]["t1_ms"] = 20  # 64*T1 = 1.28 s without an ACK
    primary = bs.uas("b2bua_uas_answer", ports.primary, calls=1)
    async with bs.running_node(config) as node, bs.peers(primary):
        caller = await bs.uac("b2bua_uac_no_ack", ports.caller).run()
        assert caller.returncode == 0, bs.describe(caller)
        (record,) = await bs.wait_for_cdrs(tmp_path, 1)
        assert not node.node.calls
    b = await bs.finish(primary)
    assert b.requests("BYE", "received")
    assert record["disconnect_side"] == "B2BUA" and "ACK" in record["disconnect_reason"]
