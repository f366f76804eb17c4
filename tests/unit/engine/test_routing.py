"""Routing decisions and emergency detection, without sockets."""

from pathlib import Path

import pytest

from b2bua.config import load_config
from b2bua.engine.routing import detect_emergency, dialled_number, plan_route
from b2bua.sip import Headers, Request, parse_uri

LAB = load_config(Path(__file__).parents[3] / "configs" / "lab.toml")


def invite(uri: str, to: str | None = None, priority: str | None = None) -> Request:
    pairs = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bKtest"),
        ("From", "<sip:alice@example.com>;tag=a1"),
        ("To", f"<{to or uri}>"),
        ("Call-ID", "c1@example.com"),
        ("CSeq", "1 INVITE"),
        ("Max-Forwards", "70"),
    ]
    if priority:
        pairs.append(("Priority", priority))
    return Request("INVITE", parse_uri(uri), Headers.of(pairs))


@pytest.mark.parametrize(
    "uri, reason, number",
    [
        ("sip:911@sbc.example.com", "dial-string", "911"),
        ("sip:+911@sbc.example.com;user=phone", "dial-string", "911"),
        ("sip:911;phone-context=Redmond@192.168.1.12;user=phone", "dial-string", "911"),
        ("tel:911", "dial-string", "911"),
        ("sip:112@sbc.example.com", "dial-mask", "911"),
        ("sip:999@sbc.example.com", "dial-mask", "911"),
        ("urn:service:sos", "service-urn", "urn:service:sos"),
        ("urn:service:sos.fire", "service-urn", "urn:service:sos.fire"),
        ("sip:urn:service:sos@127.0.0.1", "service-urn", "urn:service:sos"),
        ("sip:933@sbc.example.com", "test-call", "933"),
        ("urn:service:test.sos.police", "test-call", "urn:service:test.sos.police"),
    ],
)
def test_emergency_numbers_and_urns_are_recognised(uri, reason, number):
    match = detect_emergency(invite(uri), LAB.emergency)
    assert match is not None
    assert (match.reason, match.number) == (reason, number)
    assert match.is_test == (reason == "test-call")


def test_emergency_dial_string_in_to_is_recognised_when_request_uri_is_a_gateway():
    match = detect_emergency(invite("sip:gw@10.0.0.1", to="sip:911@example.com"), LAB.emergency)
    assert match is not None and match.reason == "dial-string"


def test_priority_emergency_marks_a_call_to_an_ordinary_number():
    match = detect_emergency(invite("sip:+14255550100@example.com", priority="Emergency"), LAB.emergency)
    assert match is not None and match.reason == "priority"


def test_ordinary_number_without_priority_is_not_an_emergency():
    assert detect_emergency(invite("sip:+14255550100@example.com", priority="urgent"), LAB.emergency) is None
    assert detect_emergency(invite("sip:9110@example.com"), LAB.emergency) is None


def test_dialled_number_drops_visual_separators_and_user_parameters():
    assert dialled_number(parse_uri("tel:+1-201-555-0123")) == "+12015550123"
    assert dialled_number(parse_uri("sip:911;phone-context=x@h")) == "911"
    assert dialled_number(parse_uri("sip:alice@h")) is None


def test_emergency_call_goes_to_primary_then_secondary():
    plan = plan_route(invite("sip:911@lab"), LAB)
    assert [trunk.name for trunk in plan.trunks] == ["ecrc-primary", "ecrc-secondary"]
    assert plan.emergency is not None


def test_down_primary_is_tried_last_for_an_emergency_call():
    plan = plan_route(invite("sip:911@lab"), LAB, health={"ecrc-primary": False})
    assert [trunk.name for trunk in plan.trunks] == ["ecrc-secondary", "ecrc-primary"]
    assert plan.skipped == ["ecrc-primary"]


def test_emergency_call_is_attempted_in_order_when_every_trunk_is_down():
    plan = plan_route(invite("sip:911@lab"), LAB, health={"ecrc-primary": False, "ecrc-secondary": False})
    assert [trunk.name for trunk in plan.trunks] == ["ecrc-primary", "ecrc-secondary"]


def test_round_robin_pair_alternates_with_the_turn():
    first = plan_route(invite("sip:922@lab", priority="emergency"), LAB, turn=0)
    second = plan_route(invite("sip:922@lab", priority="emergency"), LAB, turn=1)
    assert [t.name for t in first.trunks] == ["ecrc-primary", "ecrc-secondary"]
    assert [t.name for t in second.trunks] == ["ecrc-secondary", "ecrc-primary"]


def test_ordinary_call_uses_its_route_and_skips_down_trunks():
    plan = plan_route(invite("sip:+14255550100@lab"), LAB)
    assert plan.emergency is None and [t.name for t in plan.trunks] == ["pstn-branch"]
    down = plan_route(invite("sip:+14255550100@lab"), LAB, health={"pstn-branch": False})
    assert down.trunks == []


def test_call_with_no_matching_route_has_no_targets():
    plan = plan_route(invite("sip:alice@lab"), LAB)
    assert not plan.routable
