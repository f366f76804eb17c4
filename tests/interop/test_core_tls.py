"""SIP over TLS between the core's own UAC and UAS (Debian's SIPp has no TLS), with a
certificate made for the test by `b2bua.selfsigned.make_self_signed`.

Verification is on by default (b2bua.transport.tls): an untrusted certificate must fail the
call at once as a transport failure (the TU's 503, RFC 3261 §8.1.3.1 / §17.1.4), never
after Timer B; trusting the certificate's own file as the CA makes the call work.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest
from core_peers import HOST, CoreUac, CoreUas

from b2bua.selfsigned import make_self_signed
from b2bua.sip.transaction import Peer
from b2bua.transport import TlsPeerConfig, client_context, server_context


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    make_self_signed(cert, key)
    return cert, key


@pytest.fixture
async def tls_uas(certificate):
    """make(**options) -> a CoreUas listening on TLS only (port 0)."""
    started: list[CoreUas] = []

    async def make(**options) -> CoreUas:
        cert, key = certificate
        uas = CoreUas(**options)
        started.append(uas)
        await uas.start(transports=("tls",), tls_context=server_context(str(cert), str(key)))
        return uas

    yield make
    for uas in started:
        await uas.close()


@pytest.fixture
async def make_uac(certificate):
    """make(tls_peers) -> a CoreUac with a TLS listener of its own (so its Via and Contact
    name a TLS address), using `tls_peers` for the connections it opens."""
    started: list[CoreUac] = []

    async def make(tls_peers=None) -> CoreUac:  # noqa: ANN001
        cert, key = certificate
        uac = CoreUac(tls_peers=tls_peers)
        started.append(uac)
        await uac.start(transports=("tls",), tls_context=server_context(str(cert), str(key)))
        return uac

    yield make
    for uac in started:
        await uac.close()


def target_of(uas: CoreUas) -> tuple[Peer, str]:
    port = uas.port("tls")
    return Peer("tls", HOST, port), f"sips:ecrc@{HOST}:{port}"


async def test_tls_call_completes_when_the_certificate_file_is_the_cafile(tls_uas, make_uac, certificate):
    uas = await tls_uas()
    target, uri = target_of(uas)
    uac = await make_uac({target: TlsPeerConfig(context=client_context(cafile=str(certificate[0])))})

    call = await uac.call(target, uri, hold=0.1, timeout=10)

    assert call.failure is None and call.final == 200
    assert call.provisionals == [180]
    assert call.acks_sent == 1 and call.bye_status == 200
    assert [item.method for item in uas.received] == ["INVITE", "ACK", "BYE"]
    invite = uas.received[0]
    assert invite.peer is not None and invite.peer.transport == "tls"
    assert invite.message.top_via.transport.upper() == "TLS"
    assert str(invite.message.contact[0].uri).startswith("sips:")
    assert str(call.response.contact[0].uri).startswith("sips:")  # the UAS answered with a TLS Contact
    assert len(uas.dialogs) == 0


async def test_tls_untrusted_certificate_fails_the_call_at_once_as_transport_failure(tls_uas, make_uac):
    uas = await tls_uas()
    target, uri = target_of(uas)
    uac = await make_uac()  # default policy: verify against the system trust store

    started = time.monotonic()
    call = await uac.call(target, uri, timeout=10)
    elapsed = time.monotonic() - started

    assert call.failure == "transport" and call.final == 503
    assert elapsed < 3.0  # a handshake failure, not Timer B (32 s)
    assert call.bye_status is None
    assert any(peer == target and isinstance(error, ssl.SSLCertVerificationError)
               for peer, error in uac.stack.transport_errors), uac.stack.transport_errors
    assert uas.received == [] and uas.wire == []


async def test_tls_certificate_for_another_name_fails_the_call(tls_uas, make_uac, certificate):
    uas = await tls_uas()
    target, uri = target_of(uas)
    config = TlsPeerConfig(context=client_context(cafile=str(certificate[0])), server_hostname="ecrc.invalid")
    uac = await make_uac({target: config})

    call = await uac.call(target, uri, timeout=10)

    assert call.failure == "transport" and call.final == 503
    errors = [error for _, error in uac.stack.transport_errors]
    assert any(isinstance(error, ssl.SSLCertVerificationError) for error in errors), errors
    assert uas.received == []


async def test_tls_rejected_call_returns_the_code_and_the_transaction_acks_it(tls_uas, make_uac, certificate):
    uas = await tls_uas(answer_code=486)
    target, uri = target_of(uas)
    uac = await make_uac({target: TlsPeerConfig(context=client_context(cafile=str(certificate[0])))})

    call = await uac.call(target, uri, timeout=10)

    assert call.failure is None and call.final == 486
    assert call.acks_sent == 0 and call.bye_status is None  # the ACK for a non-2xx is the transaction's
    # That ACK reaches the UAS's INVITE transaction (same branch) and stops there (§17.2.1).
    await uas.wait_for_wire("ACK", timeout=2)
    ack = next(item.message for item in uas.wire if item.method == "ACK")
    assert ack.top_via.branch == call.invite.top_via.branch
    assert [item.method for item in uas.received] == ["INVITE"]
    assert [response.status for response in uas.finals] == [486]
