"""The caller on real sockets: against mock ECRCs directly and through the lab's B2BUA."""

from __future__ import annotations

import hashlib
import io
import time

import pytest

from b2bua.sip import parse_message
from b2bua.sip.transaction import Peer
from b2bua.testbench.caller import (
    Caller,
    CallerError,
    CallSpec,
    Progress,
    civic_pidf,
    default_pidf,
    parse_target,
    shape_pidf,
    summary,
)
from b2bua.testbench.plugin import assert_location_received, assert_no_location, assert_recorded
from b2bua.testbench.sipp import free_port

STYLES = ("lync", "rfc", "pjsua", "linphone")


@pytest.mark.parametrize("style", STYLES)
async def test_each_client_layout_arrives_byte_exact_at_an_ecrc(ecrc, caller, style):
    outcome = await caller.call(ecrc.address("tcp"), to="911", style=style)

    assert outcome.ok, outcome.line()
    record = ecrc.record_of(outcome)
    assert_location_received(record, outcome)
    assert record["pidf_sha256"] == hashlib.sha256(outcome.pidf).hexdigest()
    assert record["priority"].lower() == "emergency"


async def test_the_lync_layout_has_microsofts_quirks(ecrc, caller):
    outcome = await caller.call(ecrc.address("tcp"), style="lync")
    head = outcome.invite.split(b"\r\n\r\n", 1)[0].decode()

    assert "INVITE sip:911;phone-context=Redmond@" in head
    assert "\r\nPRIORITY: emergency" in head and "\r\nCONTENT-TYPE: multipart/mixed; boundary=----=_NextPart_" in head
    assert "\r\ngeolocation: <cid:sip:+14255550100@caller.example.com>;inserted-by=" in head
    assert b'<tuple id="0">' in outcome.pidf  # an xs:ID that starts with a digit
    record = ecrc.record_of(outcome)
    assert_recorded(record, outcome, location="byte-exact", verdict="location_by_value_valid", errors=False, warnings=True)
    assert record["pidf_selected_by"] == "stripped-scheme"


async def test_the_pjsua_and_linphone_layouts(ecrc, caller):
    pjsua = await caller.call(ecrc.address("tcp"), style="pjsua")
    linphone = await caller.call(ecrc.address("tcp"), style="linphone")

    pjsua_request = parse_message(pjsua.invite)
    assert pjsua_request.body.startswith(b"\r\n--")  # CRLF before the first boundary
    assert [part.mime for part in pjsua_request.multipart.parts] == ["application/pidf+xml", "application/sdp"]
    assert pjsua_request.headers.get("To").startswith("sip:911@")  # no angle brackets
    linphone_request = parse_message(linphone.invite)
    assert all(part.content_id is None for part in linphone_request.multipart.parts)  # the cid dangles
    for outcome in (pjsua, linphone):
        assert_location_received(ecrc.record_of(outcome), outcome)


async def test_civic_and_shape_locations_and_no_location(ecrc, caller):
    civic = civic_pidf(["country=US", "A1=TX", "A3=Austin", "RD=Congress", "STS=Ave", "HNO=100"])
    shape = shape_pidf("circle:30.2672,-97.7431,40")

    by_civic = await caller.call(ecrc.address(), pidf=civic)
    by_shape = await caller.call(ecrc.address(), pidf=shape)
    without = await caller.call(ecrc.address(), pidf=None)

    assert "100 Congress Ave, Austin TX" in assert_location_received(ecrc.record_of(by_civic), by_civic)["address"]
    assert "circle" in assert_location_received(ecrc.record_of(by_shape), by_shape)["address"].lower()
    assert_no_location(ecrc.record_of(without))
    assert without.pidf_sha256 is None


async def test_urn_service_sos_is_the_request_uri(ecrc, caller):
    outcome = await caller.call(ecrc.address(), to="urn:service:sos")

    assert outcome.ok
    assert ecrc.record_of(outcome)["request_uri"] == "urn:service:sos"


async def test_tls_to_an_ecrc_insecure_verified_and_refused(ecrc_factory, caller_factory):
    ecrc = await ecrc_factory("tls-ecrc", tls=True)
    ca_file = str(ecrc.store.path).rsplit("/", 1)[0] + "/tls/cert.pem"

    insecure = await (await caller_factory(tls_verify=False)).call(ecrc.address("tls"))
    verified = await (await caller_factory(ca_file=ca_file)).call(ecrc.address("tls"))
    refused = await (await caller_factory()).call(ecrc.address("tls"))

    assert insecure.ok and verified.ok, (insecure.line(), verified.line())
    assert ecrc.record_of(verified)["transport"] == "TLS"
    assert_location_received(ecrc.record_of(verified), verified)
    assert not refused.ok and "CERTIFICATE_VERIFY_FAILED" in refused.error
    assert ecrc.record_of(refused) is None


async def test_tls_through_the_b2bua(lab, caller_factory):
    caller = await caller_factory(ca_file=lab.tls_ca_file)

    outcome = await caller.call(lab.address("certified", "tls"), style="linphone")

    assert outcome.ok, outcome.line()
    assert outcome.invite.startswith(b"INVITE sips:911@127.0.0.1:")
    assert_recorded(await lab.record_of(outcome), outcome, ecrc="ecrc-primary", location="byte-exact")


async def test_hold_then_hang_up_and_far_end_bye(ecrc, caller):
    held = await caller.call(ecrc.address(), hold_s=0.3)
    ecrc.set_answer("bye-after", bye_after_s=0.2)
    started = time.monotonic()
    hung_up = await caller.call(ecrc.address(), hold_s=10)

    assert held.ok and held.ended_by == "caller" and held.held_s >= 0.3 and held.bye_status == 200
    assert hung_up.ok and hung_up.ended_by == "far end" and time.monotonic() - started < 3


async def test_no_answer_is_cancelled_within_the_timeout(ecrc, caller):
    ecrc.set_answer("ring")

    outcome = await caller.call(ecrc.address(), answer_timeout_s=0.5)

    assert not outcome.ok
    assert outcome.status == 487 and outcome.provisional == [180]
    assert "cancelled" in outcome.error and outcome.answer_ms < 3000


async def test_a_rejected_and_an_unreachable_call_fail(ecrc, caller):
    ecrc.set_answer("486")
    busy = await caller.call(ecrc.address())
    unreachable = await caller.call(Peer("udp", "127.0.0.1", free_port()), answer_timeout_s=5)

    assert not busy.ok and busy.status == 486 and "FAILED" in busy.line()
    assert not unreachable.ok and unreachable.status is None and "FAILED" in unreachable.line()


async def test_many_calls_at_a_rate(ecrc, caller):
    done = []
    started = time.monotonic()

    outcomes = await caller.call_many(ecrc.address(), CallSpec(), count=10, rate=50, on_done=done.append)

    assert all(outcome.ok for outcome in outcomes) and len(done) == 10
    assert len({outcome.call_id for outcome in outcomes}) == 10
    assert len(ecrc.records()) == 10
    assert time.monotonic() - started >= 9 / 50
    assert summary(outcomes).startswith("10 calls: 10 answered, 0 failed; time to answer")


def test_progress_redraws_one_line_on_a_terminal_and_prints_lines_elsewhere():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from b2bua.testbench.caller import CallOutcome

    ok = CallOutcome(1, "udp:127.0.0.1:5060", "udp", "911", "rfc", "x", status=200, reason="OK", answer_ms=12.5)
    failed = CallOutcome(2, "udp:127.0.0.1:5060", "udp", "911", "rfc", "y", status=503, reason="Service Unavailable",
                         answer_ms=20.0)
    tty, plain = Terminal(), io.StringIO()
    for stream in (tty, plain):
        progress = Progress(3, stream)
        progress.update(ok)
        progress.update(failed)
        progress.finish()

    assert "\r" in tty.getvalue() and "2/3 calls, 1 failed" in tty.getvalue()
    assert "\r" not in plain.getvalue()
    assert plain.getvalue().splitlines() == ["call 1/3  200 OK  answered in 12.5 ms  held 0.0 s",
                                             "call 2/3  503 Service Unavailable  after 20.0 ms  FAILED"]


def test_bad_call_descriptions_are_refused():
    with pytest.raises(CallerError):
        parse_target("127.0.0.1:99999")
    with pytest.raises(CallerError):
        parse_target("not an address")
    with pytest.raises(CallerError):
        CallSpec(to="nine one one!")
    assert CallSpec(to="cb-0e459131783d4c64").to == "cb-0e459131783d4c64"  # a callback Contact's user
    with pytest.raises(CallerError):
        civic_pidf(["A3"])
    with pytest.raises(CallerError):
        shape_pidf("circle:95,0,10")
    with pytest.raises(CallerError):
        shape_pidf("blob:1,2")
    assert parse_target("127.0.0.1", "tls") == Peer("tls", "127.0.0.1", 5061)
    assert default_pidf("lync", "sip:a@b").count(b'id="0"') == 1


async def test_caller_as_a_context_manager():
    async with Caller() as caller:
        udp = caller.stack.local_address("udp")
        tcp = caller.stack.local_address("tcp")
    assert udp == tcp  # a far-end BYE over TCP reaches the Contact's port
