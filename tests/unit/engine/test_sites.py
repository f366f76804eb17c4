"""Site membership and paths between sites."""

from b2bua.config import config_from_dict
from b2bua.engine.sites import SiteMap
from b2bua.sip import Headers, Request, parse_uri

CONFIG = config_from_dict({
    "profile": [{"name": "p", "listen": ["udp:127.0.0.1:0"]}],
    "trunk": [{"name": "ecrc", "address": "127.0.0.1:5070"}, {"name": "gw1", "address": "127.0.0.1:5080"}],
    "trunk_group": [{"name": "ecrc", "trunks": ["ecrc"]}, {"name": "pstn-b1", "trunks": ["gw1"]}],
    "emergency": {"trunk_group": "ecrc"},
    "site": [
        {"name": "hq", "trunk_groups": ["ecrc"], "members": {"sources": ["10.0.0.0/16"]}},
        {"name": "b1", "trunk_groups": ["pstn-b1"], "emergency_routes": ["ecrc", "pstn-b1"],
         "members": {"sources": ["10.1.0.0/16"], "from_domains": ["b1.example.com"], "users": ["lobby"]}},
        {"name": "b2", "members": {"sources": ["10.2.0.0/16"]}},
    ],
    "link": [{"name": "b1-hq", "sites": ["b1", "hq"]}, {"name": "b2-b1", "sites": ["b2", "b1"], "state": "down"}],
})


def invite(from_uri: str) -> Request:
    return Request("INVITE", parse_uri("sip:911@sbc"), Headers.of([
        ("Via", "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKx"), ("From", f"<{from_uri}>;tag=1"), ("To", "<sip:911@sbc>"),
        ("Call-ID", "c"), ("CSeq", "1 INVITE"),
    ]))


def test_caller_site_is_found_by_source_address_first():
    sites = SiteMap.of(CONFIG)
    assert sites.site_of(invite("sip:alice@b1.example.com"), "10.0.3.4").name == "hq"


def test_caller_site_falls_back_to_from_domain_then_user():
    sites = SiteMap.of(CONFIG)
    assert sites.site_of(invite("sip:alice@B1.example.com"), "192.0.2.1").name == "b1"
    assert sites.site_of(invite("sip:lobby@elsewhere"), None).name == "b1"
    assert sites.site_of(invite("sip:nobody@elsewhere"), "192.0.2.1") is None


def test_path_between_sites_follows_links_and_reports_down_ones():
    sites = SiteMap.of(CONFIG)
    hq, b1, b2 = (sites.site_named(name) for name in ("hq", "b1", "b2"))
    assert [link.name for link in sites.path(b1, hq)] == ["b1-hq"]
    two_hops = sites.path(b2, hq)
    assert [link.name for link in two_hops] == ["b2-b1", "b1-hq"]
    assert sites.down_links(two_hops) == ["b2-b1"]
    assert sites.path(hq, hq) == []


def test_trunk_group_host_site():
    sites = SiteMap.of(CONFIG)
    assert sites.host_of("ecrc").name == "hq"
    assert sites.host_of("nonexistent") is None


def test_link_state_changes_are_reported_once():
    sites = SiteMap.of(CONFIG)
    state = sites.links["b1-hq"]
    assert state.set(False, "admin", 1.0) is True
    assert state.set(False, "probe", 2.0) is False
    assert (state.up, state.reason) == (False, "probe")
