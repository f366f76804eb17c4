"""SIP over TLS on loopback with a certificate made for the test (RFC 3261 §26.2.1)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from b2bua.sip import Response, make_response
from b2bua.transport import Peer, TlsPeerConfig, Transport, client_context, server_context
from b2bua.transport.testing import Recorder

LOOP = "127.0.0.1"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 / ::1: `cryptography` when
    installed, else the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither cryptography nor openssl available to make a certificate")
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def request_bytes(call_id: str = "tls-1@test") -> bytes:
    return (
        "INVITE sips:ecrc@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKtls1\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sips:caller@127.0.0.1>;tag=abc\r\n"
        "To: <sips:ecrc@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    ).encode()


async def tls_server(certificate) -> tuple[Transport, Recorder, object]:
    cert, key = certificate
    recorder = Recorder()
    transport = Transport(recorder.on_message, recorder.on_transport_error)
    listener = await transport.listen("tls", LOOP, 0, server_context(str(cert), str(key)))
    return transport, recorder, listener


async def test_tls_round_trip_with_the_right_cafile(certificate):
    server, server_rec, listener = await tls_server(certificate)
    target = Peer("tls", LOOP, listener.port)
    client_rec = Recorder()
    client = Transport(
        client_rec.on_message,
        client_rec.on_transport_error,
        tls_peers={target: TlsPeerConfig(context=client_context(cafile=str(certificate[0])))},
    )
    try:
        client.send(request_bytes(), target)
        request, peer, _ = await server_rec.next_message()
        assert request.call_id == "tls-1@test" and peer.transport == "tls"
        server.send(make_response(request, 200, to_tag="t"), peer)  # back on the same TLS connection
        response, from_peer, _ = await client_rec.next_message()
        assert isinstance(response, Response) and response.status == 200
        assert from_peer == target
        assert client_rec.errors.empty() and server_rec.errors.empty()
    finally:
        await client.close()
        await server.close()


async def test_tls_verification_on_by_default_refuses_a_self_signed_certificate(certificate):
    server, server_rec, listener = await tls_server(certificate)
    client_rec = Recorder()
    client = Transport(client_rec.on_message, client_rec.on_transport_error)  # system trust store
    try:
        target = Peer("tls", LOOP, listener.port)
        client.send(request_bytes(), target)
        peer, error = await client_rec.next_error()
        assert peer == target
        assert isinstance(error, ssl.SSLCertVerificationError)
        await asyncio.sleep(0.05)
        assert server_rec.messages.empty()
    finally:
        await client.close()
        await server.close()


async def test_tls_verification_off_for_one_peer_accepts_it(certificate):
    server, server_rec, listener = await tls_server(certificate)
    target = Peer("tls", LOOP, listener.port)
    client_rec = Recorder()
    client = Transport(
        client_rec.on_message,
        client_rec.on_transport_error,
        tls_peers=lambda peer: TlsPeerConfig(verify=False) if peer == target else None,
    )
    try:
        client.send(request_bytes("lab"), target)
        request, _, _ = await server_rec.next_message()
        assert request.call_id == "lab"
    finally:
        await client.close()
        await server.close()


async def test_tls_wrong_server_name_is_refused_even_with_the_right_cafile(certificate):
    server, _, listener = await tls_server(certificate)
    target = Peer("tls", LOOP, listener.port)
    client_rec = Recorder()
    client = Transport(
        client_rec.on_message,
        client_rec.on_transport_error,
        tls_peers={
            LOOP: TlsPeerConfig(context=client_context(cafile=str(certificate[0])), server_hostname="ecrc.example.net")
        },
    )
    try:
        client.send(request_bytes(), target)
        peer, error = await client_rec.next_error()
        assert peer == target and isinstance(error, ssl.SSLCertVerificationError)
    finally:
        await client.close()
        await server.close()


def test_contexts_refuse_anything_below_tls_1_2(certificate):
    cert, key = certificate
    assert client_context().minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context(verify=False).minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_context(str(cert), str(key)).minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context().verify_mode == ssl.CERT_REQUIRED and client_context().check_hostname


async def test_tls_listener_needs_a_context():
    transport = Transport(lambda *args: None, lambda *args: None)
    try:
        with pytest.raises(ValueError):
            await transport.listen("tls", LOOP, 0)
    finally:
        await transport.close()

