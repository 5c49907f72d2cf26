"""The serving certificate is reloaded in place: new connections see a renewed Secret, no restart,
and a bad renewal keeps the last good certificate serving."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.servingcert import REJECTED, RELOADED, ServingCertificate
from tests.extender.helpers import eventually
from tests.tlsfiles import Pair, SecretVolume, client_context, https_get, self_signed

A = self_signed("jitnode-a")
B = self_signed("jitnode-b")
BAD_KEY = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"


async def _ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[SecretVolume, ServingCertificate, int, list[str]]]:
    """A TLS server on the certificate's live context, serving pair A."""
    volume = SecretVolume(tmp_path / "tls")
    volume.write(A.cert_pem, A.key_pem)
    outcomes: list[str] = []
    certificate = ServingCertificate(volume.cert_file, volume.key_file, interval=0, on_reload=outcomes.append)
    await certificate.load()
    server = await asyncio.start_server(_ok, "127.0.0.1", 0, ssl=certificate.context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield volume, certificate, port, outcomes
    finally:
        server.close()
        await server.wait_closed()


async def peer_of(port: int, *trusted: Pair) -> bytes:
    peer, response = await https_get(port, "/", client_context(*trusted))
    assert response.endswith(b"ok")
    return peer


async def test_renewal_is_served_to_new_connections(
    served: tuple[SecretVolume, ServingCertificate, int, list[str]],
) -> None:
    volume, certificate, port, outcomes = served
    assert await peer_of(port, A) == A.der
    assert not await certificate.reload_if_changed()  # unchanged files: nothing to do

    volume.write(B.cert_pem, B.key_pem)
    assert await certificate.reload_if_changed()
    assert await peer_of(port, A, B) == B.der
    with pytest.raises(ssl.SSLCertVerificationError):
        await peer_of(port, A)  # a client trusting only A now refuses: B really is served
    assert outcomes == [RELOADED]


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param((b"not a certificate\n", B.key_pem), id="garbage-cert"),
        pytest.param(
            (B.cert_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), id="bad-key"
        ),
        pytest.param((B.cert_pem, A.key_pem), id="key-of-another-cert"),
        pytest.param((b"", b""), id="empty"),
    ],
)
async def test_bad_renewal_keeps_the_old_certificate(
    served: tuple[SecretVolume, ServingCertificate, int, list[str]], broken: tuple[bytes, bytes]
) -> None:
    volume, certificate, port, outcomes = served
    volume.write(*broken)
    assert not await certificate.reload_if_changed()
    assert not await certificate.reload_if_changed()  # the same bad files: rejected once, logged once
    assert outcomes == [REJECTED]
    assert await peer_of(port, A) == A.der

    volume.write(B.cert_pem, B.key_pem)  # the next good renewal is picked up
    assert await certificate.reload_if_changed()
    assert await peer_of(port, B) == B.der
    assert outcomes == [REJECTED, RELOADED]


async def test_vanished_files_keep_serving(
    served: tuple[SecretVolume, ServingCertificate, int, list[str]],
) -> None:
    volume, certificate, port, outcomes = served
    (volume.root / "..data").unlink()
    assert not await certificate.reload_if_changed()
    assert outcomes == [REJECTED]
    assert await peer_of(port, A) == A.der


async def test_in_place_rewrite_is_seen(tmp_path: Path) -> None:
    """Plain files rewritten in place (no symlink swap) are reloaded too: content, not inode."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(A.cert_pem)
    key.write_bytes(A.key_pem)
    certificate = ServingCertificate(str(cert), str(key), interval=0)
    await certificate.load()
    cert.write_bytes(B.cert_pem)
    key.write_bytes(B.key_pem)
    assert await certificate.reload_if_changed()
    assert certificate.reloads == 1


async def test_key_inside_the_certificate_file(tmp_path: Path) -> None:
    combined = tmp_path / "tls.pem"
    combined.write_bytes(A.key_pem + A.cert_pem)
    certificate = ServingCertificate(str(combined), "", interval=0)
    await certificate.load()
    combined.write_bytes(B.key_pem + B.cert_pem)
    assert await certificate.reload_if_changed()


async def test_bad_files_at_start_fail_loudly(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(b"garbage")
    key.write_bytes(A.key_pem)
    with pytest.raises(ssl.SSLError):
        await ServingCertificate(str(cert), str(key)).load()
    with pytest.raises(FileNotFoundError):
        await ServingCertificate(str(tmp_path / "missing.crt"), str(key)).load()


async def test_poller_reloads_in_the_background(
    served: tuple[SecretVolume, ServingCertificate, int, list[str]],
) -> None:
    volume, certificate, port, outcomes = served
    certificate.interval = 0.02
    certificate.start()
    try:
        volume.write(B.cert_pem, B.key_pem)
        await eventually(lambda: outcomes == [RELOADED])
        assert await peer_of(port, B) == B.der
    finally:
        await certificate.stop()
    await certificate.stop()  # twice is fine
