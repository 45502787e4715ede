"""Certificates: replaced on disk under traffic with no failed request; bad files refused;
client certificates required with --client-ca; --dev certificates."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.server.tls import LiveTLS, TLSError, make_dev_certificates

from .conftest import RunningServer, review, service, start_server, wait_until


def served_serial(running: RunningServer) -> int:
    """The serial of the certificate a new handshake gets."""
    with (socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw,
          running.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def file_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


class Traffic:
    """Clients posting AdmissionReviews back to back: one opening a connection (a handshake)
    per request, one keeping its connection alive."""

    def __init__(self, running: RunningServer) -> None:
        self.running = running
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.loop, args=(keepalive,)) for keepalive in (0, 10)]

    def loop(self, keepalive: int) -> None:
        limits = httpx.Limits(max_keepalive_connections=keepalive)
        with self.running.client(limits=limits) as client:
            while not self.stop.is_set():
                try:
                    response = client.post("/validate", json=review(service()))
                    assert response.status_code == 200 and response.json()["response"]["allowed"] is False
                    self.ok += 1
                except Exception as exc:  # noqa: BLE001 - every failure is recorded
                    self.failures.append(repr(exc))

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_certificate_rotated_mid_traffic_with_zero_failed_requests(running: RunningServer) -> None:
    first = served_serial(running)
    assert first == file_serial(running.certs.cert)
    with Traffic(running) as traffic:
        wait_until(lambda: traffic.ok >= 20)
        for _ in range(3):  # each rewrites key then certificate in place (not atomically)
            make_dev_certificates(running.certs.ca.parent, ("127.0.0.1",))
            time.sleep(0.3)
        newest = file_serial(running.certs.cert)
        wait_until(lambda: served_serial(running) == newest)
        before = traffic.ok
        wait_until(lambda: traffic.ok >= before + 20)
    assert newest != first
    assert traffic.failures == []
    assert traffic.ok > 60


def test_bad_files_are_refused_and_the_old_certificate_kept(running: RunningServer) -> None:
    serial = served_serial(running)
    running.certs.cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    with running.client() as client:
        wait_until(lambda: 'result="failure",what="certificate"} 1.0' in client.get("/metrics").text)
        assert served_serial(running) == serial
        assert client.post("/validate", json=review(service())).status_code == 200
        other = make_dev_certificates(running.certs.ca.parent.parent / "elsewhere")
        running.certs.cert.write_bytes(other.cert.read_bytes())  # a certificate without its key
        time.sleep(0.3)
        assert served_serial(running) == serial
        make_dev_certificates(running.certs.ca.parent)
        wait_until(lambda: served_serial(running) == file_serial(running.certs.cert))
        assert 'result="success",what="certificate"} 1.0' in client.get("/metrics").text


def test_live_tls_refuses_a_mismatched_pair(tmp_path: Path) -> None:
    one, two = make_dev_certificates(tmp_path / "one"), make_dev_certificates(tmp_path / "two")
    with pytest.raises(TLSError, match="cannot be served"):
        LiveTLS(str(one.cert), str(two.key))
    with pytest.raises(TLSError, match="cannot read"):
        LiveTLS(str(tmp_path / "missing.crt"), str(one.key))
    live = LiveTLS(str(one.cert), str(one.key))
    (tmp_path / "one" / "tls.key").write_bytes(two.key.read_bytes())
    with pytest.raises(TLSError):
        live.reload()
    assert live.certificate is not None and live.certificate.serial_number == file_serial(one.cert)


def _client_certificate(ca_dir: Path, out: Path) -> tuple[Path, Path]:
    """A client certificate signed by the dev CA in `ca_dir`."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = out / "client.crt", out / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_client_ca_requires_a_client_certificate(tmp_path: Path) -> None:
    clients = make_dev_certificates(tmp_path / "client-ca")  # an unrelated CA for clients
    cert, key = _client_certificate(tmp_path / "client-ca", tmp_path)
    (tmp_path / "server").mkdir()
    running = start_server(tmp_path / "server", "--client-ca", str(clients.ca))
    try:
        with running.client() as anonymous, pytest.raises(httpx.TransportError):
            anonymous.get("/healthz")
        context = running.context()
        context.load_cert_chain(cert, key)
        with httpx.Client(base_url=running.url, verify=context, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            assert client.post("/validate", json=review(service())).status_code == 200
    finally:
        running.stop()


def test_dev_certificates_reuse_the_ca_and_cover_localhost(tmp_path: Path) -> None:
    first = make_dev_certificates(tmp_path)
    ca = first.ca.read_bytes()
    second = make_dev_certificates(tmp_path)
    assert second.ca.read_bytes() == ca
    cert = x509.load_pem_x509_certificate(second.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert oct(first.key.stat().st_mode & 0o777) == "0o600"
    context = ssl.create_default_context(cafile=str(second.ca))
    context.load_verify_locations(cafile=str(second.ca))  # a usable CA file
