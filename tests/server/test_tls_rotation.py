"""Certificates: replaced on disk under traffic with no failed request; bad files refused;
client certificates required with --client-ca; --dev certificates."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support import Loops
from webhook.server.tls import LiveTLS, TLSError, make_dev_certificates

from .conftest import RunningServer, free_port, review, service, start_server, wait_until


def served_serial(running: RunningServer, context: ssl.SSLContext | None = None) -> int:
    """The serial of the certificate a new handshake gets."""
    with (socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw,
          (context or running.context()).wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def file_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


class Traffic(Loops):
    """Clients posting AdmissionReviews back to back: one opening a connection (a handshake)
    per request, one keeping its connection alive."""

    def __init__(self, running: RunningServer, cert: tuple[Path, Path] | None = None) -> None:
        self.running, self.cert = running, cert
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def loop(self, keepalive: int) -> None:
        limits = httpx.Limits(max_keepalive_connections=keepalive)
        context = self.running.context()
        if self.cert:
            context.load_cert_chain(*self.cert)
        with httpx.Client(base_url=self.running.url, verify=context, timeout=10, limits=limits) as client:
            while not self.stop.is_set():
                try:
                    response = client.post("/validate", json=review(service()))
                    assert response.status_code == 200 and response.json()["response"]["allowed"] is False
                    self.ok += 1
                except Exception as exc:  # noqa: BLE001 - every failure is recorded
                    self.failures.append(repr(exc))

    def loops(self) -> list[Callable[[], None]]:
        return [functools.partial(self.loop, keepalive) for keepalive in (0, 10)]


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
        served = [first]
        for _ in range(3):  # each rewrites key then certificate in place (not atomically)
            make_dev_certificates(running.certs.ca.parent, ("127.0.0.1",))
            newest = file_serial(running.certs.cert)
            wait_until(lambda: served_serial(running) == newest, what="the new certificate served")
            served.append(newest)
            before = traffic.ok
            wait_until(lambda: traffic.ok >= before + 10, what="requests on the new certificate")
    assert len(set(served)) == 4
    assert traffic.failures == []


def test_bad_files_are_refused_and_the_old_certificate_kept(running: RunningServer) -> None:
    serial = served_serial(running)
    running.certs.cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    with running.client() as client:
        wait_until(lambda: 'result="failure",what="certificate"} 1.0' in client.get("/metrics").text)
        assert served_serial(running) == serial
        assert client.post("/validate", json=review(service())).status_code == 200
        other = make_dev_certificates(running.certs.ca.parent.parent / "elsewhere")
        running.certs.cert.write_bytes(other.cert.read_bytes())  # a certificate without its key
        wait_until(lambda: 'result="failure",what="certificate"} 2.0' in client.get("/metrics").text)
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


# --- client CA rotation, validity, probes over plain HTTP ---------------------------------------


def _signed(ca_dir: Path, out: Path, *, server: bool, before: dt.timedelta = dt.timedelta(minutes=-1),
            after: dt.timedelta = dt.timedelta(hours=1)) -> tuple[Path, Path]:
    """A certificate signed by the dev CA in `ca_dir`, valid from now+before to now+after: a
    server certificate for 127.0.0.1, or a client one."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1" if server else "apiserver")]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + before).not_valid_after(now + after)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                        critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / "tls.crt", out / "tls.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _with_client(running: RunningServer, cert: tuple[Path, Path]) -> httpx.Client:
    context = running.context()
    context.load_cert_chain(*cert)
    return httpx.Client(base_url=running.url, verify=context, timeout=10)


def _accepted(running: RunningServer, cert: tuple[Path, Path]) -> bool:
    try:
        with _with_client(running, cert) as client:
            return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_the_client_ca_file_is_the_whole_trust_set_after_a_reload(tmp_path: Path) -> None:
    one, two = make_dev_certificates(tmp_path / "ca-one"), make_dev_certificates(tmp_path / "ca-two")
    from_one = _signed(tmp_path / "ca-one", tmp_path / "client-one", server=False)
    from_two = _signed(tmp_path / "ca-two", tmp_path / "client-two", server=False)
    trusted = tmp_path / "client-ca.crt"
    trusted.write_bytes(one.ca.read_bytes())
    (tmp_path / "server").mkdir()
    running = start_server(tmp_path / "server", "--client-ca", str(trusted))
    try:
        assert _accepted(running, from_one) and not _accepted(running, from_two)
        trusted.write_bytes(two.ca.read_bytes())
        wait_until(lambda: _accepted(running, from_two), what="the new client CA trusted")
        assert not _accepted(running, from_one)  # the old CA is gone
    finally:
        running.stop()


def _ca(directory: Path, name: str) -> Path:
    """A CA named `name` in `directory` (ca.crt, ca.key), as `_signed` expects."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True)
    (directory / "ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory / "ca.crt"


def test_client_ca_rotated_mid_traffic_with_zero_failed_requests(tmp_path: Path) -> None:
    """The usual rotation: old CA, then old + new while clients switch, then the new one only."""
    old, new = _ca(tmp_path / "old", "apiserver CA 1"), _ca(tmp_path / "new", "apiserver CA 2")
    from_old = _signed(tmp_path / "old", tmp_path / "client-old", server=False)
    from_new = _signed(tmp_path / "new", tmp_path / "client-new", server=False)
    trusted = tmp_path / "client-ca.crt"
    trusted.write_bytes(old.read_bytes())
    (tmp_path / "server").mkdir()
    running = start_server(tmp_path / "server", "--client-ca", str(trusted))
    try:
        with Traffic(running, from_old) as before:
            wait_until(lambda: before.ok >= 10)
            trusted.write_bytes(old.read_bytes() + new.read_bytes())
            wait_until(lambda: _accepted(running, from_new), what="both CAs trusted")
            count = before.ok
            wait_until(lambda: before.ok >= count + 10)
        with Traffic(running, from_new) as after:
            wait_until(lambda: after.ok >= 10)
            trusted.write_bytes(new.read_bytes())
            wait_until(lambda: not _accepted(running, from_old), what="the old CA dropped")
            count = after.ok
            wait_until(lambda: after.ok >= count + 10)
        assert before.failures == [] and after.failures == []
    finally:
        running.stop()


def test_probes_and_metrics_over_plain_http_need_no_client_certificate(tmp_path: Path) -> None:
    clients = make_dev_certificates(tmp_path / "client-ca")
    (tmp_path / "server").mkdir()
    health = free_port()
    running = start_server(tmp_path / "server", "--client-ca", str(clients.ca), "--health-port", str(health))
    try:
        with running.client() as anonymous, pytest.raises(httpx.TransportError):
            anonymous.get("/healthz")
        with httpx.Client(base_url=f"http://127.0.0.1:{health}", timeout=10) as plain:
            assert plain.get("/healthz").json() == {"status": "ok"}
            assert plain.get("/readyz").json() == {"status": "ready"}
            assert "vllm_env_guard_certificate_expiry_seconds " in plain.get("/metrics").text
            assert plain.post("/validate", json=review(service())).status_code in (404, 405)  # probes only
    finally:
        running.stop()


@pytest.mark.parametrize(("before", "after", "error"), [
    (dt.timedelta(days=-2), dt.timedelta(days=-1), "the certificate expired at"),
    (dt.timedelta(days=1), dt.timedelta(days=2), "the certificate is not valid before"),
])
def test_an_expired_or_future_certificate_is_refused_at_start(tmp_path: Path, before: dt.timedelta,
                                                               after: dt.timedelta, error: str) -> None:
    make_dev_certificates(tmp_path / "ca")
    cert, key = _signed(tmp_path / "ca", tmp_path / "bad", server=True, before=before, after=after)
    result = subprocess.run([sys.executable, "-m", "webhook", "serve", "--no-cluster", "--tls-cert", str(cert),
                             "--tls-key", str(key)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f"vllm-env-guard serve: {cert}: {error}")


def test_an_expired_certificate_is_refused_on_reload_and_readyz_fails_when_the_served_one_expires(
        running: RunningServer) -> None:
    serial = served_serial(running)
    certs = running.certs.ca.parent
    with running.client() as client:
        remaining = metric_value(client.get("/metrics").text, "vllm_env_guard_certificate_expiry_seconds")
        assert 29 * 86400 < remaining <= 30 * 86400
        expired = _signed(certs, tmp := certs.parent / "expired", server=True, before=dt.timedelta(days=-2),
                          after=dt.timedelta(days=-1))
        running.certs.key.write_bytes(expired[1].read_bytes())
        running.certs.cert.write_bytes(expired[0].read_bytes())
        wait_until(lambda: 'result="failure",what="certificate"} 1.0' in client.get("/metrics").text)
        assert served_serial(running) == serial
        assert client.get("/readyz").status_code == 200
    short = _signed(certs, tmp, server=True, after=dt.timedelta(seconds=6))
    running.certs.key.write_bytes(short[1].read_bytes())
    running.certs.cert.write_bytes(short[0].read_bytes())
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # it is about to expire
    wait_until(lambda: served_serial(running, insecure) == file_serial(running.certs.cert),
               what="the short-lived one served")
    with httpx.Client(base_url=running.url, verify=insecure, timeout=10) as client:
        readyz = wait_until(lambda: (r := client.get("/readyz")).status_code == 503 and r, what="not ready")
        assert readyz.json() == {"status": "not ready", "reasons": ["the certificate being served has expired"]}
        assert metric_value(client.get("/metrics").text, "vllm_env_guard_certificate_expiry_seconds") < 0


def metric_value(text: str, name: str) -> float:
    return next(float(line.split(" ")[1]) for line in text.splitlines() if line.startswith(name + " "))
