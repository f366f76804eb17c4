"""The site-aware routing decision, without sockets: every combination of WAN link state,
CAC usage, the branch's CAC emergency policy, trunk health and call kind, then multi-hop
paths, the example topologies and per-site dial strings.

The expectation of the big matrix is written out independently of `routing.py` (the
`expected_*` functions below): what the seed design says must happen, case by case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.config import config_from_dict, load_config
from b2bua.engine.cac import CacLedger, LinkLimits
from b2bua.engine.routing import RoutePlan, SiteContext, plan_route
from b2bua.engine.sites import SiteMap
from b2bua.sip import Headers, Request, parse_uri

CONFIGS = Path(__file__).resolve().parents[3] / "configs"

HQ, B1, B2, B3, NOWHERE = "10.0.0.5", "10.1.0.5", "10.2.0.5", "10.3.0.5", "192.0.2.7"
CALLS_FULL = "cac full: b1-hq calls 2/2"
BANDWIDTH_FULL = "cac full: b1-hq bandwidth 150+80 > 200 kbit/s"


def topology(policy: str = "pstn", **site_b1: object) -> dict:
    """hq hosts the ECRC trunks and the PBX; b1 hangs off hq, b2 off b1 (two hops to hq),
    b3 off hq with its own dial plan and no PSTN route."""
    return {
        "profile": [{"name": "sbc", "listen": ["udp:127.0.0.1:0"]}],
        "trunk": [
            {"name": "ecrc-1", "address": "127.0.0.1:5070"},
            {"name": "ecrc-2", "address": "127.0.0.1:5072"},
            {"name": "pstn-b1", "address": "127.0.0.1:5080", "kind": "pstn"},
            {"name": "pstn-b2", "address": "127.0.0.1:5082", "kind": "pstn"},
            {"name": "hq-pbx", "address": "127.0.0.1:5090", "kind": "sip"},
        ],
        "trunk_group": [
            {"name": "ecrc", "trunks": ["ecrc-1", "ecrc-2"]},
            {"name": "pstn-b1", "trunks": ["pstn-b1"]},
            {"name": "pstn-b2", "trunks": ["pstn-b2"]},
            {"name": "hq-pbx", "trunks": ["hq-pbx"]},
        ],
        "route": [{"pattern": "^[0-9]{4}$", "trunk_group": "hq-pbx"}],
        "emergency": {"dial_strings": ["911"], "dial_masks": {"112": "911"}, "test_numbers": ["933"],
                      "trunk_group": "ecrc"},
        "site": [
            {"name": "hq", "members": {"sources": ["10.0.0.0/16"]}, "trunk_groups": ["ecrc", "hq-pbx"]},
            {"name": "b1", "members": {"sources": ["10.1.0.0/16"], "from_domains": ["b1.example.com"],
                                       "users": ["lobby"]},
             "trunk_groups": ["pstn-b1"], "emergency_routes": ["ecrc", "pstn-b1"], "cac_emergency_policy": policy,
             **site_b1},
            {"name": "b2", "members": {"sources": ["10.2.0.0/16"]}, "trunk_groups": ["pstn-b2"],
             "emergency_routes": ["ecrc", "pstn-b2"], "cac_emergency_policy": policy},
            {"name": "b3", "members": {"sources": ["10.3.0.0/16"]}, "emergency_routes": ["ecrc"],
             "dial_strings": ["911", "999"], "dial_masks": {"0118": "911"}, "test_numbers": ["9933"],
             "cac_emergency_policy": policy},
        ],
        "link": [
            {"name": "b1-hq", "sites": ["b1", "hq"], "max_calls": 2, "max_bandwidth_kbps": 200},
            {"name": "b2-b1", "sites": ["b2", "b1"], "max_calls": 1},
            {"name": "b3-hq", "sites": ["b3", "hq"]},
        ],
    }


def invite(to: str = "911", *, from_uri: str = "sip:alice@example.com", priority: str | None = None) -> Request:
    pairs = [("Via", "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKsites"), ("From", f"<{from_uri}>;tag=a1"),
             ("To", f"<sip:{to}@sbc.example.com>"), ("Call-ID", "sites@test"), ("CSeq", "1 INVITE")]
    if priority:
        pairs.append(("Priority", priority))
    return Request("INVITE", parse_uri(f"sip:{to}@sbc.example.com;user=phone"), Headers.of(pairs))


class World:
    """A configuration with its run-time state: link flags, CAC usage, trunk health."""

    def __init__(self, data: dict | str) -> None:
        self.config = load_config(CONFIGS / data) if isinstance(data, str) else config_from_dict(data)
        self.sites = SiteMap.of(self.config)
        self.cac = CacLedger({link.name: LinkLimits(link.max_calls, link.max_bandwidth_kbps)
                              for link in self.config.link})
        self.health: dict[str, bool] = {}

    def plan(self, request: Request, source: str | None, kbps: int = 80, turn: int = 0) -> RoutePlan:
        return plan_route(request, self.config, self.health, turn, SiteContext(self.sites, self.cac, source, kbps))


def targets(plan: RoutePlan) -> list[tuple[str, tuple[str, ...], str, str | None]]:
    """(trunk, links, cac, pstn_reason) of every target, in order."""
    assert [target.trunk for target in plan.targets] == plan.trunks
    return [(t.trunk.name, t.links, t.cac, t.pstn_reason) for t in plan.targets]


# -- the matrix ----------------------------------------------------------------------------------

LINK_STATES = {
    "up": [],
    "admin-down": [("admin", False)],  # `b2bua link b1-hq down` / PUT /links/b1-hq
    "probe-down": [("probe", False)],  # OPTIONS across the link unanswered
    "probe-down-admin-up": [("probe", False), ("admin", True)],  # an operator's "up" does not undo the probes
    "restored": [("admin", False), ("probe", False), ("probe", True), ("admin", True)],
}
CAC_STATES = {
    "under": [("held-1", 80)],  # 1/2 calls, 80/200 kbit/s: one more fits
    "calls-full": [("held-1", 24), ("held-2", 24)],  # 2/2 calls (48 kbit/s): the call limit is reached
    "bandwidth-full": [("held-1", 150)],  # 1/2 calls but 150+80 > 200 kbit/s
}
HEALTH = {
    "up": {},
    "primary-down": {"ecrc-1": False},
    "all-down": {"ecrc-1": False, "ecrc-2": False, "hq-pbx": False},  # every SIP trunk probed down
}
POLICIES = ("block", "pstn", "exempt")


def expected_emergency(link: str, cac: str, policy: str, health: str):
    """(reject, targets) for a 911 call from b1 (one hop to hq)."""
    down = HEALTH[health]
    healthy = [name for name in ("ecrc-1", "ecrc-2") if down.get(name, True)]
    sick = [name for name in ("ecrc-1", "ecrc-2") if not down.get(name, True)]
    if link not in ("up", "restored"):
        # WAN down: the SIP trunk's route is passed over whatever the CAC and the policy.
        return None, [("pstn-b1", (), "none", "wan down: b1-hq")]
    full = {"calls-full": CALLS_FULL, "bandwidth-full": BANDWIDTH_FULL}.get(cac)
    if full is None:
        ecrc = "counted"
    elif policy == "block":
        return (503, full), []
    elif policy == "pstn":
        return None, [("pstn-b1", (), "none", full)]
    else:  # exempt: admitted over the limit, counted as such
        ecrc = "over-limit"
    # Healthy trunks of every route first, in route order; trunks probed down last.
    return None, ([(name, ("b1-hq",), ecrc, None) for name in healthy] + [("pstn-b1", (), "none", None)]
                  + [(name, ("b1-hq",), ecrc, None) for name in sick])


def expected_ordinary(link: str, cac: str, health: str):
    """(reject, targets) for a call from b1 to an hq extension: never over a down or full path."""
    if not HEALTH[health].get("hq-pbx", True):
        return None, []  # nothing to try: the B2BUA answers 503 "no trunk up"
    if link not in ("up", "restored"):
        return (503, "wan down: b1-hq"), []
    full = {"calls-full": CALLS_FULL, "bandwidth-full": BANDWIDTH_FULL}.get(cac)
    if full is not None:
        return (503, full), []
    return None, [("hq-pbx", ("b1-hq",), "counted", None)]


def world_in(policy: str, link: str, cac: str, health: str) -> World:
    world = World(topology(policy))
    state = world.sites.links["b1-hq"]
    for moment, (who, up) in enumerate(LINK_STATES[link]):
        state.set(up, who, float(moment))
    for call_id, kbps in CAC_STATES[cac]:
        world.cac.hold(call_id, ["b1-hq"], kbps)
    world.health = dict(HEALTH[health])
    return world


@pytest.mark.parametrize("health", HEALTH)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("cac", CAC_STATES)
@pytest.mark.parametrize("link", LINK_STATES)
@pytest.mark.parametrize("kind", ["emergency", "ordinary"])
def test_routing_decision_matrix(kind, link, cac, policy, health):
    world = world_in(policy, link, cac, health)
    usage_before = world.cac.snapshot("b1-hq")

    plan = world.plan(invite("911" if kind == "emergency" else "4711"), B1)

    reject, wanted = expected_emergency(link, cac, policy, health) if kind == "emergency" \
        else expected_ordinary(link, cac, health)
    assert plan.site == "b1"
    assert (plan.emergency is not None) == (kind == "emergency")
    assert plan.reject == reject, plan.reason
    assert targets(plan) == wanted, plan.reason
    if reject is not None:
        assert not plan.routable
    assert world.cac.snapshot("b1-hq") == usage_before  # planning holds nothing: the bridge does
    if kind == "emergency" and reject is None:
        assert plan.routable  # an emergency call is refused only by the `block` policy


@pytest.mark.parametrize("link", ["admin-down", "probe-down"])
def test_passed_over_routes_are_named_once_in_the_plan(link):
    world = world_in("pstn", link, "under", "up")

    plan = world.plan(invite("911"), B1)

    assert plan.passed_over == ["wan down: b1-hq"]  # both ECRC trunks, one reason
    assert plan.reason == "emergency (dial-string) -> ecrc then pstn-b1"


def test_the_call_limit_and_the_bandwidth_limit_count_the_new_calls_codec():
    world = world_in("pstn", "up", "under", "up")
    world.cac.hold("held-2", ["b1-hq"], 24)  # 2/2 calls now

    assert targets(world.plan(invite("911"), B1, kbps=24))[0] == ("pstn-b1", (), "none", CALLS_FULL)
    world.cac.release("held-2")
    # 80 + 120 = 200: exactly at the bandwidth limit still fits; 80 + 121 does not.
    assert targets(world.plan(invite("911"), B1, kbps=120))[0][0] == "ecrc-1"
    refused = targets(world.plan(invite("911"), B1, kbps=121))
    assert refused == [("pstn-b1", (), "none", "cac full: b1-hq bandwidth 80+121 > 200 kbit/s")]


def test_released_slots_let_the_next_call_cross_the_link_again():
    world = world_in("pstn", "up", "calls-full", "up")
    assert targets(world.plan(invite("911"), B1))[0][0] == "pstn-b1"

    world.cac.release("held-1")

    assert targets(world.plan(invite("911"), B1))[0] == ("ecrc-1", ("b1-hq",), "counted", None)


# -- multi-hop paths -----------------------------------------------------------------------------


@pytest.mark.parametrize("down, reason", [("b2-b1", "wan down: b2-b1"), ("b1-hq", "wan down: b1-hq")])
def test_a_down_link_on_either_hop_sends_a_two_hop_branch_to_its_own_pstn_gateway(down, reason):
    world = World(topology())
    world.sites.links[down].set(False, "admin", 1.0)

    plan = world.plan(invite("911"), B2)

    assert plan.site == "b2"
    assert targets(plan) == [("pstn-b2", (), "none", reason)]


def test_a_two_hop_path_crosses_and_counts_both_links():
    world = World(topology())

    plan = world.plan(invite("911"), B2)

    assert targets(plan) == [("ecrc-1", ("b2-b1", "b1-hq"), "counted", None),
                             ("ecrc-2", ("b2-b1", "b1-hq"), "counted", None),
                             ("pstn-b2", (), "none", None)]


@pytest.mark.parametrize("policy, expected", [
    ("pstn", [("pstn-b2", (), "none", CALLS_FULL)]),
    ("exempt", [("ecrc-1", ("b2-b1", "b1-hq"), "over-limit", None), ("ecrc-2", ("b2-b1", "b1-hq"), "over-limit", None),
                ("pstn-b2", (), "none", None)]),
    ("block", None),
])
def test_cac_on_the_far_hop_applies_the_callers_site_policy(policy, expected):
    world = World(topology(policy))
    world.cac.hold("a", ["b1-hq"], 24)
    world.cac.hold("b", ["b1-hq"], 24)  # b1-hq full; b2-b1 (1 call) still free

    plan = world.plan(invite("911"), B2)

    if expected is None:
        assert plan.reject == (503, CALLS_FULL) and not plan.routable
    else:
        assert targets(plan) == expected


def test_an_ordinary_call_over_two_hops_is_refused_when_the_first_hop_is_full():
    world = World(topology())
    world.cac.hold("a", ["b2-b1"], 80)

    plan = world.plan(invite("4711"), B2)

    assert plan.reject == (503, "cac full: b2-b1 calls 1/1")


def test_sites_without_any_path_pass_the_route_over_and_refuse_ordinary_calls():
    data = topology()
    data["link"] = [link for link in data["link"] if link["name"] != "b1-hq"]  # b1 and b2 cut off from hq
    world = World(data)

    emergency = world.plan(invite("911"), B1)
    ordinary = world.plan(invite("4711"), B1)

    assert targets(emergency) == [("pstn-b1", (), "none", "no link from b1 to hq")]
    assert ordinary.reject == (503, "no link from b1 to hq")


def test_an_emergency_call_with_every_route_passed_over_is_still_tried_over_the_wan():
    """b3 has no PSTN route: with its link down its 911 calls still go to the ECRC trunks
    (the B2BUA never refuses an emergency call for routing), marked with the reason."""
    world = World(topology())
    world.sites.links["b3-hq"].set(False, "probe", 1.0)

    plan = world.plan(invite("911"), B3)

    assert plan.reject is None and plan.passed_over == ["wan down: b3-hq"]
    assert [t.trunk.name for t in plan.targets] == ["ecrc-1", "ecrc-2"]
    assert all(t.pstn_reason == "wan down: b3-hq" for t in plan.targets)


def test_an_emergency_call_over_a_full_link_without_a_pstn_route_is_counted_over_the_limit():
    """Policy pstn, no PSTN route: the call crosses the full link anyway, so it must be
    counted there (over the limit), or ordinary calls would be admitted past the limit."""
    data = topology()
    data["link"][2]["max_calls"] = 1
    world = World(data)
    world.cac.hold("held", ["b3-hq"], 80)

    plan = world.plan(invite("911"), B3)

    assert targets(plan) == [("ecrc-1", ("b3-hq",), "over-limit", "cac full: b3-hq calls 1/1"),
                             ("ecrc-2", ("b3-hq",), "over-limit", "cac full: b3-hq calls 1/1")]


# -- membership, dial plans, example topologies ----------------------------------------------------------


@pytest.mark.parametrize("source, from_uri, site", [
    (B1, "sip:alice@example.com", "b1"),
    (HQ, "sip:alice@b1.example.com", "hq"),  # the source address wins over the From domain
    (NOWHERE, "sip:alice@B1.Example.com", "b1"),
    (None, "sip:lobby@elsewhere.example.com", "b1"),
    (NOWHERE, "sip:alice@example.com", None),
])
def test_the_callers_site_decides_the_routes(source, from_uri, site):
    world = World(topology())
    world.sites.links["b1-hq"].set(False, "admin", 1.0)

    plan = world.plan(invite("911", from_uri=from_uri), source)

    assert plan.site == site
    first = targets(plan)[0]
    if site == "b1":
        assert first == ("pstn-b1", (), "none", "wan down: b1-hq")
    else:  # hq is local to the ECRC trunks; no site: no site rules at all
        assert first == ("ecrc-1", (), "none", None)


@pytest.mark.parametrize("dialled, emergency, reason, number", [
    ("999", True, "dial-string", "999"),
    ("911", True, "dial-string", "911"),
    ("0118", True, "dial-mask", "911"),
    ("112", False, None, None),  # b3's dial_masks replace the global ones: 112 is no emergency number there
    ("9933", True, "test-call", "9933"),
    ("933", False, None, None),  # the site's own test number replaces the global one
])
def test_per_site_dial_strings_masks_and_test_numbers(dialled, emergency, reason, number):
    world = World(topology())

    plan = world.plan(invite(dialled), B3)

    assert (plan.emergency is not None) == emergency
    if emergency:
        assert (plan.emergency.reason, plan.emergency.number) == (reason, number)
        assert [t.trunk.name for t in plan.targets] == ["ecrc-1", "ecrc-2"]
        assert all(t.links == ("b3-hq",) for t in plan.targets)


def test_a_site_without_its_own_dial_plan_keeps_the_global_one():
    world = World(topology())

    assert world.plan(invite("999"), B1).emergency is None
    assert world.plan(invite("999"), B3).emergency is not None
    masked = world.plan(invite("112"), B1)
    assert masked.emergency is not None and masked.emergency.number == "911"
    # Site dial strings only add keys that are set: b1 overriding dial_strings keeps the masks.
    override = World(topology(dial_strings=["911", "000"]))
    assert override.plan(invite("000"), B1).emergency is not None
    assert override.plan(invite("112"), B1).emergency.reason == "dial-mask"


def test_priority_emergency_and_a_test_call_from_a_branch_follow_the_emergency_routes():
    world = World(topology())
    world.sites.links["b1-hq"].set(False, "admin", 1.0)

    test_call = world.plan(invite("933"), B1)
    marked = world.plan(invite("12025550100", priority="emergency"), B1)

    assert test_call.emergency.is_test
    assert targets(test_call) == [("pstn-b1", (), "none", "wan down: b1-hq")]
    assert marked.emergency.reason == "priority"
    assert targets(marked) == [("pstn-b1", (), "none", "wan down: b1-hq")]


def test_a_trunks_own_site_overrides_the_site_hosting_its_group():
    data = topology()
    data["trunk"][1]["site"] = "b1"  # ecrc-2 sits in b1's machine room
    world = World(data)

    plan = world.plan(invite("911"), B1)

    assert targets(plan)[:2] == [("ecrc-1", ("b1-hq",), "counted", None), ("ecrc-2", (), "none", None)]
    assert plan.targets[1].site == "b1" and plan.targets[0].site == "hq"


def test_central_site_example():
    world = World("central-site.toml")

    assert targets(world.plan(invite("911"), "127.0.0.11")) == [
        ("ecrc-primary", ("branch1-hq",), "counted", None), ("ecrc-secondary", ("branch1-hq",), "counted", None),
        ("pstn-branch1", (), "none", None)]
    world.cac.hold("x", ["branch2-hq"], 80)  # branch2-hq: 1 call, full; branch2 is `exempt`
    assert targets(world.plan(invite("911"), "127.0.0.12"))[0] == ("ecrc-primary", ("branch2-hq",), "over-limit", None)
    assert world.plan(invite("4711"), "127.0.0.12").reject == (503, "cac full: branch2-hq calls 1/1")
    world.sites.links["branch1-hq"].set(False, "admin", 1.0)
    assert targets(world.plan(invite("112"), "127.0.0.11")) == [("pstn-branch1", (), "none", "wan down: branch1-hq")]
    assert targets(world.plan(invite("911"), "127.0.0.10"))[0] == ("ecrc-primary", (), "none", None)


@pytest.mark.parametrize("down, branch1", [
    ([], [("ecrc-east", ("b1-east",), "counted", None), ("ecrc-west", ("b1-east", "east-west"), "counted", None),
          ("pstn-branch1", (), "none", None)]),
    (["east-west"], [("ecrc-east", ("b1-east",), "counted", None),
                     ("pstn-branch1", (), "none", "wan down: east-west")]),
    (["b1-east"], [("pstn-branch1", (), "none", "wan down: b1-east")]),
])
def test_multi_central_example(down, branch1):
    world = World("multi-central.toml")
    for name in down:
        world.sites.links[name].set(False, "probe", 1.0)

    assert targets(world.plan(invite("911"), "127.0.0.21")) == branch1


def test_branch_trunks_example_keeps_emergency_calls_local_when_the_wan_is_down():
    world = World("branch-trunks.toml")
    world.sites.links["branch1-hq"].set(False, "admin", 1.0)

    assert targets(world.plan(invite("911"), "127.0.0.31")) == [("ecrc-branch1", (), "none", None),
                                                                ("pstn-branch1", (), "none", None)]
    assert world.plan(invite("4711"), "127.0.0.31").reject == (503, "wan down: branch1-hq")
