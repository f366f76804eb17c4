"""Tests for b2bua.sip.digest (RFC 7616 / RFC 8760 Digest for SIP)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.sip.digest import (
    SUPPORTED_ALGORITHMS,
    AuthReason,
    DigestChallenge,
    DigestChallenger,
    DigestCredentials,
    DigestError,
    DigestParseError,
    answer_challenge,
    compute_ha1,
    compute_response,
    parse_auth_header,
    select_challenge,
)

# --- RFC 7616 §3.9.1 worked example --------------------------------------
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


def rfc_challenge(algorithm: str) -> str:
    return (
        f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_worked_example_response_matches_published_value(algorithm):
    value = answer_challenge(
        rfc_challenge(algorithm), "GET", "/dir/index.html", "Mufasa", "Circle of Life",
        cnonce=RFC_CNONCE, nc=1,
    )
    cred = DigestCredentials.parse(value)
    assert cred.response == RFC_RESPONSES[algorithm]
    assert (cred.username, cred.realm, cred.nonce, cred.uri) == (
        "Mufasa", RFC_REALM, RFC_NONCE, "/dir/index.html")
    assert (cred.algorithm, cred.qop, cred.nc, cred.cnonce) == (algorithm, "auth", "00000001", RFC_CNONCE)
    assert cred.opaque == RFC_OPAQUE  # RFC 7616 §3.4: opaque is echoed unchanged


def test_rfc2617_section_3_5_example_md5_without_algorithm_param():
    # RFC 2617 §3.5 (the example RFC 3261 inherits): no algorithm => MD5.
    ch = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
          'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    cred = DigestCredentials.parse(answer_challenge(
        ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b"))
    assert cred.response == "6629fae49393a05397450978507c4ef1"
    assert cred.algorithm is None


# --- challenger <-> client round trips ------------------------------------
SECRET = b"0123456789abcdef-test-secret"
T0 = 1000.0
USERS = {"alice": "correct horse"}


def lookup(username, realm, algorithm):
    return USERS.get(username)


def make(algorithms=("SHA-256", "MD5"), **kw) -> DigestChallenger:
    return DigestChallenger("psap.example.net", SECRET, algorithms, **kw)


def answer(ch_value, user="alice", password="correct horse", nc=1, method="INVITE",
           uri="sip:911@psap.example.net"):
    return answer_challenge(ch_value, method, uri, user, password, nc=nc)


@pytest.mark.parametrize("algorithm", SUPPORTED_ALGORITHMS)
def test_round_trip_succeeds_for_each_algorithm(algorithm):
    server = make((algorithm,))
    [ch] = server.challenge(T0)
    assert DigestChallenge.parse(ch).algorithm == algorithm
    result = server.verify(answer(ch), "INVITE", T0 + 1, lookup)
    assert result.ok and result.reason is AuthReason.OK
    assert (result.username, result.algorithm) == ("alice", algorithm)


def test_sha512_256_is_supported():
    assert {"MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256"} <= set(SUPPORTED_ALGORITHMS)


def test_challenge_lists_sha256_before_md5_whatever_the_configured_order():
    values = make(("MD5", "SHA-256")).challenge(T0)
    assert [DigestChallenge.parse(v).algorithm for v in values] == ["SHA-256", "MD5"]
    assert len({DigestChallenge.parse(v).nonce for v in values}) == 1
    assert all(DigestChallenge.parse(v).qop == ("auth",) for v in values)


def test_client_picks_topmost_supported_challenge():
    values = ['Digest realm="r", nonce="n1", algorithm=SHA-3-FUTURE, qop="auth"',
              'Basic realm="r"',
              'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"',
              'Digest realm="r", nonce="n3", algorithm=MD5, qop="auth"']
    chosen = select_challenge(values)
    assert chosen is not None and (chosen.nonce, chosen.algorithm) == ("n2", "SHA-256")
    assert select_challenge(['Digest realm="r", nonce="n", qop="auth-int"']) is None


def test_lookup_may_return_precomputed_ha1_instead_of_password():
    for algorithm in ("SHA-256", "MD5-sess"):
        server = make((algorithm,))
        [ch] = server.challenge(T0)

        def ha1_lookup(username, realm, alg):
            return compute_ha1(username, realm, "correct horse", alg)

        result = server.verify(answer(ch), "INVITE", T0, ha1_lookup)
        assert result.ok, result


def test_wrong_password_is_refused():
    server = make()
    result = server.verify(answer(server.challenge(T0)[0], password="wrong"), "INVITE", T0, lookup)
    assert not result.ok and result.reason is AuthReason.BAD_RESPONSE
    assert not result.stale


def test_unknown_user_is_indistinguishable_on_the_wire_from_bad_password():
    server = make()
    ch = server.challenge(T0)[0]
    unknown = server.verify(answer(ch, user="mallory"), "INVITE", T0, lookup)
    bad_pw = server.verify(answer(ch, password="nope"), "INVITE", T0, lookup)
    assert unknown.reason is AuthReason.UNKNOWN_USER and unknown.username == "mallory"
    assert unknown.wire_reason is bad_pw.wire_reason is AuthReason.BAD_CREDENTIALS
    assert unknown.stale == bad_pw.stale is False


def test_method_is_part_of_the_digest():
    server = make()
    value = answer(server.challenge(T0)[0], method="INVITE")
    assert server.verify(value, "BYE", T0, lookup).reason is AuthReason.BAD_RESPONSE


def test_expired_nonce_with_valid_digest_is_reported_stale():
    server = make(nonce_ttl=30.0)
    value = answer(server.challenge(T0)[0])
    result = server.verify(value, "INVITE", T0 + 31, lookup)
    assert not result.ok and result.reason is AuthReason.STALE_NONCE and result.stale
    assert all(DigestChallenge.parse(v).stale for v in server.challenge(T0 + 31, stale=result.stale))


def test_expired_nonce_with_wrong_password_is_not_reported_stale():
    # RFC 7616 §3.3: stale=true only if the digest is valid for the nonce.
    server = make(nonce_ttl=30.0)
    value = answer(server.challenge(T0)[0], password="guess")
    result = server.verify(value, "INVITE", T0 + 31, lookup)
    assert result.reason is AuthReason.BAD_RESPONSE and not result.stale


def test_replayed_nonce_count_is_refused_and_higher_count_accepted():
    server = make()
    ch = server.challenge(T0)[0]
    first = answer(ch, nc=1)
    assert server.verify(first, "INVITE", T0, lookup).ok
    replay = server.verify(first, "INVITE", T0 + 1, lookup)
    assert not replay.ok and replay.reason is AuthReason.REPLAY
    assert server.verify(answer(ch, nc=2), "INVITE", T0 + 2, lookup).ok
    assert server.verify(answer(ch, nc=2), "INVITE", T0 + 3, lookup).reason is AuthReason.REPLAY


def test_failed_attempt_does_not_consume_nonce_counts():
    server = make()
    ch = server.challenge(T0)[0]
    assert not server.verify(answer(ch, nc=9, password="x"), "INVITE", T0, lookup).ok
    assert server.verify(answer(ch, nc=2), "INVITE", T0, lookup).ok


def test_replay_tracking_memory_is_bounded_and_evicted_nonces_turn_stale():
    server = make(max_tracked_nonces=2)
    chs = [server.challenge(T0 + i)[0] for i in range(3)]
    values = [answer(c) for c in chs]
    assert all(server.verify(v, "INVITE", T0 + 5, lookup).ok for v in values)
    assert len(server._nc_seen) <= 2
    # The evicted first nonce must not become replayable: it is stale now.
    assert server.verify(values[0], "INVITE", T0 + 6, lookup).reason is AuthReason.STALE_NONCE
    assert server.verify(values[2], "INVITE", T0 + 6, lookup).reason is AuthReason.REPLAY


def _tamper(nonce: str) -> str:
    i = len(nonce) // 2
    return nonce[:i] + ("A" if nonce[i] != "A" else "B") + nonce[i + 1:]


def test_tampered_nonce_is_refused_even_with_matching_digest():
    server = make()
    good = DigestChallenge.parse(server.challenge(T0)[0])
    forged = DigestChallenge(realm=good.realm, nonce=_tamper(good.nonce),
                             algorithm=good.algorithm, qop=good.qop)
    result = server.verify(answer(forged), "INVITE", T0, lookup)
    assert not result.ok and result.reason is AuthReason.INVALID_NONCE and not result.stale


def test_nonce_from_another_secret_is_refused():
    other = DigestChallenger("psap.example.net", b"another-secret-0123456789")
    value = answer(other.challenge(T0)[0])
    assert make().verify(value, "INVITE", T0, lookup).reason is AuthReason.INVALID_NONCE


def test_wrong_realm_is_refused():
    other = DigestChallenger("elsewhere.example", SECRET)
    value = answer(other.challenge(T0)[0])
    assert make().verify(value, "INVITE", T0, lookup).reason is AuthReason.WRONG_REALM


def test_algorithm_not_offered_is_refused():
    md5_value = answer(make(("MD5",)).challenge(T0)[0])
    assert make(("SHA-256",)).verify(md5_value, "INVITE", T0, lookup).reason is AuthReason.UNSUPPORTED


def test_request_uri_must_match_digest_uri_when_given():
    server = make()
    value = answer(server.challenge(T0)[0], uri="sip:911@psap.example.net")
    result = server.verify(value, "INVITE", T0, lookup, request_uri="sip:other@psap.example.net")
    assert result.reason is AuthReason.URI_MISMATCH


# --- qop handling ----------------------------------------------------------

def test_rfc2069_mode_without_qop_round_trips_when_no_qop_was_offered():
    server = make(offer_qop=False)
    ch = server.challenge(T0)[0]
    assert DigestChallenge.parse(ch).qop == ()
    value = answer(ch)
    cred = DigestCredentials.parse(value)
    assert (cred.qop, cred.nc, cred.cnonce) == (None, None, None)
    assert server.verify(value, "INVITE", T0, lookup).ok


def test_missing_qop_is_refused_when_qop_was_offered():
    server = make(("MD5",))
    cred = DigestCredentials.parse(answer(server.challenge(T0)[0]))
    ha1 = compute_ha1("alice", cred.realm, "correct horse", "MD5")
    no_qop = DigestCredentials(
        username="alice", realm=cred.realm, nonce=cred.nonce, uri=cred.uri, algorithm="MD5",
        response=compute_response(algorithm="MD5", ha1=ha1, nonce=cred.nonce,
                                  method="INVITE", uri=cred.uri))
    assert server.verify(no_qop.format(), "INVITE", T0, lookup).reason is AuthReason.UNSUPPORTED


def test_auth_int_is_rejected_clearly_on_both_sides():
    with pytest.raises(DigestError, match="auth-int"):
        answer_challenge('Digest realm="r", nonce="n", qop="auth-int"', "INVITE", "sip:x", "u", "p")
    server = make()
    value = answer(server.challenge(T0)[0]).replace("qop=auth", "qop=auth-int")
    assert server.verify(value, "INVITE", T0, lookup).reason is AuthReason.UNSUPPORTED


def test_client_rejects_unsupported_algorithm_and_sess_without_qop():
    with pytest.raises(DigestError, match="unsupported"):
        answer_challenge('Digest realm="r", nonce="n", algorithm=SHA-1', "INVITE", "sip:x", "u", "p")
    with pytest.raises(DigestError, match="requires qop"):
        answer_challenge('Digest realm="r", nonce="n", algorithm=MD5-sess', "INVITE", "sip:x", "u", "p")


def test_client_hashes_username_when_challenge_asks_for_userhash():
    # RFC 7616 §3.4.4: username = H(username ":" realm).
    ch = 'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256, userhash=true'
    cred = DigestCredentials.parse(answer_challenge(ch, "REGISTER", "sip:r", "bob", "pw", cnonce="c"))
    assert cred.userhash is True
    assert cred.username == hashlib.sha256(b"bob:r").hexdigest()


# --- parsing -----------------------------------------------------------------

def test_quoted_string_escapes_are_unescaped_and_commas_inside_quotes_kept():
    ch = DigestChallenge.parse(
        r'Digest realm="say \"hi\", back\\slash", nonce="a,b", qop="auth"')
    assert ch.realm == 'say "hi", back\\slash'
    assert ch.nonce == "a,b"


def test_parser_tolerates_whitespace_case_and_folded_lines():
    ch = DigestChallenge.parse(
        'dIgEsT   REALM = "r" ,\r\n\tnonce="n"  ,, qop = "auth , auth-int",ALGORITHM=sha-256')
    assert (ch.realm, ch.nonce, ch.qop, ch.algorithm) == ("r", "n", ("auth", "auth-int"), "sha-256")


def test_several_challenges_in_one_value_are_separated():
    items = parse_auth_header('Basic abc==, Digest realm="r", nonce="n", Newauth realm="x"')
    assert [i.scheme for i in items] == ["Basic", "Digest", "Newauth"]
    assert items[0].token68 == "abc=="
    assert items[1].params == {"realm": "r", "nonce": "n"}


@pytest.mark.parametrize("bad", [
    'Digest realm="unterminated',
    'Digest realm="a", realm="b", nonce="n"',
    'Digest realm="a" nonce="n"',
    'Digest realm=',
    '"Digest" realm="r"',
    "",
])
def test_parser_raises_digest_parse_error_on_bad_syntax(bad):
    with pytest.raises(DigestParseError):
        DigestChallenge.parse(bad)


@settings(max_examples=200)
@given(realm=st.text().filter(lambda s: not any(c in s for c in "\x00\r\n"))
       .map(lambda s: "".join(c for c in s if c == "\t" or not (ord(c) < 32 or ord(c) == 127))),
       nonce=st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",))))
def test_challenge_format_then_parse_round_trips(realm, nonce):
    original = DigestChallenge(realm=realm, nonce=nonce, algorithm="SHA-256", qop=("auth",), opaque="o")
    assert DigestChallenge.parse(original.format()) == original


def test_formatting_refuses_header_injection():
    with pytest.raises(DigestError):
        DigestChallenge(realm="r\r\nVia: evil", nonce="n").format()


# --- verify() never raises on malformed input ----------------------------------

@pytest.mark.parametrize("bad", [
    "",
    "Digest",
    "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    'Digest username="alice", realm="psap.example.net"',  # missing nonce/uri/response
    'Digest username="alice, realm="psap.example.net"',  # unterminated quote
    'Digest username="a", username="b", realm="psap.example.net", nonce="n", uri="u", response="r"',
    'Digest username="alice", realm="psap.example.net", nonce="n", uri="u", response="r", '
    'qop=auth, nc=xyz, cnonce="c"',
    'Digest username="alice", realm="psap.example.net", nonce="n", uri="u", response="r", qop=auth',
    "\x00\xff garbage ,,, ===",
])
def test_malformed_credentials_give_a_malformed_result_not_an_exception(bad):
    result = make().verify(bad, "INVITE", T0, lookup)
    assert not result.ok and result.reason is AuthReason.MALFORMED and result.detail


def test_non_ascii_response_and_nonce_are_refused_cleanly():
    server = make()
    ch = DigestChallenge.parse(server.challenge(T0)[0])
    cred = DigestCredentials.parse(answer(ch))
    bad_resp = DigestCredentials(**{**cred.__dict__, "response": "é" * 64}).format()
    assert server.verify(bad_resp, "INVITE", T0, lookup).reason is AuthReason.BAD_RESPONSE
    bad_nonce = DigestCredentials(**{**cred.__dict__, "nonce": "ñønce"}).format()
    assert server.verify(bad_nonce, "INVITE", T0, lookup).reason is AuthReason.INVALID_NONCE


@settings(max_examples=300)
@given(st.text())
def test_verify_never_raises_on_arbitrary_input(value):
    result = make().verify(value, "INVITE", T0, lookup)
    assert not result.ok


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["username", "realm", "nonce", "uri", "response", "qop",
                                        "nc", "cnonce", "algorithm", "opaque", "userhash"]),
                       st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")))))
def test_verify_never_raises_on_arbitrary_digest_params(params):
    value = "Digest " + ", ".join(f'{k}="{v.replace(chr(92), "").replace(chr(34), "")}"'
                                  for k, v in params.items())
    result = make().verify(value, "INVITE", T0, lookup)
    assert not result.ok


def test_constructor_rejects_weak_secret_and_unknown_algorithm():
    with pytest.raises(ValueError):
        DigestChallenger("r", b"short")
    with pytest.raises(ValueError):
        DigestChallenger("r", SECRET, ("SHA-1",))
