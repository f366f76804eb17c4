"""Call admission control ledger: limits, holds and releases, bandwidth from SDP."""

from b2bua.engine.cac import CacLedger, LinkLimits, sdp_bandwidth_kbps

G711 = b"v=0\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
G729 = b"v=0\r\nm=audio 4000 RTP/AVP 18\r\n"


def test_bandwidth_comes_from_the_first_audio_codec():
    assert sdp_bandwidth_kbps(G711) == 80
    assert sdp_bandwidth_kbps(G729) == 24
    assert sdp_bandwidth_kbps(b"v=0\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n") == 56


def test_missing_or_unknown_sdp_is_budgeted_as_g711():
    assert sdp_bandwidth_kbps(None) == 80
    assert sdp_bandwidth_kbps(b"v=0\r\n") == 80


def test_call_limit_refuses_the_call_that_would_exceed_it():
    ledger = CacLedger({"wan": LinkLimits(max_calls=2)})
    ledger.hold("a", ["wan"], 80)
    assert ledger.check(["wan"], 80).fits
    ledger.hold("b", ["wan"], 80)
    refused = ledger.check(["wan"], 80)
    assert not refused.fits and refused.full_link == "wan" and refused.why == "calls 2/2"


def test_bandwidth_limit_counts_each_calls_codec():
    ledger = CacLedger({"wan": LinkLimits(max_bandwidth_kbps=100)})
    ledger.hold("a", ["wan"], 24)
    assert ledger.check(["wan"], 24).fits
    assert not ledger.check(["wan"], 80).fits


def test_every_link_of_the_path_must_have_room():
    ledger = CacLedger({"a": LinkLimits(max_calls=5), "b": LinkLimits(max_calls=1)})
    ledger.hold("x", ["a", "b"], 80)
    verdict = ledger.check(["a", "b"], 80)
    assert not verdict.fits and verdict.full_link == "b"


def test_release_gives_slots_back_once_and_counters_return_to_zero():
    ledger = CacLedger({"wan": LinkLimits(max_calls=1)})
    ledger.hold("a", ["wan"], 80, over_limit=True)
    ledger.hold("a", ["wan"], 80)  # a second hold of the same call counts nothing
    assert ledger.snapshot("wan")["calls"] == 1
    assert ledger.release("a") is True
    assert ledger.release("a") is False
    assert ledger.snapshot("wan") == {"calls": 0, "kbps": 0, "over_limit_calls": 0, "max_calls": 1,
                                      "max_bandwidth_kbps": None}


def test_links_without_limits_always_admit():
    assert CacLedger().check(["anything"], 80).fits
