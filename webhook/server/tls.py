"""The serving certificate: one live `ssl.SSLContext`, reloaded in place; `--dev` certificates.

uvicorn serves every connection from the context it was given, so loading a new chain into
that same context makes the next handshakes present the new certificate, with no restart and
no dropped connection. A new pair is first copied to a private directory and loaded into a
scratch context: a half-written file or a key that does not match its certificate (cert
written, key not yet) is refused and the old pair stays in force.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEV_HOSTS = ("localhost", "127.0.0.1", "::1")
DEV_DIR = Path.home() / ".cache" / "vllm-env-guard" / "dev-certs"


class TLSError(Exception):
    """Certificate, key or client CA files that cannot be served."""


class LiveTLS:
    """The server's SSLContext and what it currently serves."""

    def __init__(self, cert: str, key: str, client_ca: str | None = None) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
        self.certificate: x509.Certificate | None = None
        self.reload()

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.cert, self.key, self.client_ca) if p)

    @property
    def loaded(self) -> bool:
        return self.certificate is not None

    def reload(self) -> None:
        """Load the files into the live context, or raise TLSError and keep serving the old pair."""
        with tempfile.TemporaryDirectory(prefix="veg-tls-") as private:
            cert, key = _copy(self.cert, private, "tls.crt"), _copy(self.key, private, "tls.key")
            ca = _copy(self.client_ca, private, "ca.crt") if self.client_ca else None
            scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                scratch.load_cert_chain(cert, key)
                if ca:
                    scratch.load_verify_locations(cafile=ca)
                certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
            except (ssl.SSLError, ValueError) as exc:
                raise TLSError(f"{self.cert} / {self.key}: cannot be served: {exc}") from None
            self.context.load_cert_chain(cert, key)
            if ca:
                self.context.load_verify_locations(cafile=ca)
        self.certificate = certificate


def _copy(path: str, directory: str, name: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TLSError(f"{path}: cannot read: {exc.strerror}") from None
    target = Path(directory) / name
    target.touch(mode=0o600)
    target.write_bytes(data)
    return str(target)


# --- issuing certificates: --dev, and --self-managed-tls (selfmanaged.py) --------------------


@dataclass(frozen=True)
class DevCertificates:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


BACKDATE = dt.timedelta(minutes=5)  # notBefore is set this far back: a verifier's clock may lag


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             now: dt.datetime, not_after: dt.datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(not_after))


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_bytes(private_pem(key))


def new_ca(common_name: str, now: dt.datetime,
           not_after: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed ECDSA P-256 CA, issued at `now`, that may sign leaf certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (_builder(name, name, key, now, not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def new_serving_certificate(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                            hosts: tuple[str, ...], now: dt.datetime, not_after: dt.datetime,
                            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A serving certificate for `hosts` (DNS names or IP addresses), issued at `now` by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (_builder(_name(hosts[0]), ca_cert.subject, key, now, not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _existing_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA already in `directory`, if it is readable and valid for at least another day."""
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    except (OSError, ValueError):
        return None
    fresh = cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    return (cert, key) if fresh and isinstance(key, ec.EllipticCurvePrivateKey) else None


def make_dev_certificates(directory: Path = DEV_DIR, hosts: tuple[str, ...] = DEV_HOSTS) -> DevCertificates:
    """A throwaway CA (kept in `directory` and reused while valid, so it can be trusted once)
    and a new serving certificate for `hosts` signed by it."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = _existing_ca(directory)
    if ca is None:
        now = dt.datetime.now(dt.UTC)
        ca = new_ca("vllm-env-guard dev CA", now, now + dt.timedelta(days=365))
        _write_key(directory / "ca.key", ca[1])
        (directory / "ca.crt").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    ca_cert, ca_key = ca
    now = dt.datetime.now(dt.UTC)
    cert, key = new_serving_certificate(ca_cert, ca_key, hosts, now, now + dt.timedelta(days=30))
    paths = DevCertificates(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    _write_key(paths.key, key)
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    return paths
