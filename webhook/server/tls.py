"""The serving certificate: reloaded under traffic with no restart; `--dev` certificates.

uvicorn serves every connection from the one context it was given at start (`front`). Each
load builds a fresh `ssl.SSLContext` from the files, and the front context's SNI callback
(OpenSSL calls it for every handshake, with or without a server name) hands the handshake to
the newest one: new connections get the new certificate and exactly the new client CAs (a
CA removed from the file is no longer trusted), connections already open are untouched.
A new pair is first copied to a private directory and loaded into its context: a half-written
file, a key that does not match its certificate (cert written, key not yet), or a certificate
that is expired or not yet valid is refused and the old context stays in force.
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
        self.certificate: x509.Certificate | None = None
        self.current = self.context = self._load()  # `context`: the front one uvicorn holds
        self.context.sni_callback = self._handshake

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.cert, self.key, self.client_ca) if p)

    @property
    def loaded(self) -> bool:
        return self.certificate is not None

    @property
    def expired(self) -> bool:
        """Whether the certificate being served is past its notAfter (clients will refuse it)."""
        return self.certificate is not None and self.certificate.not_valid_after_utc <= dt.datetime.now(dt.UTC)

    def reload(self) -> None:
        """Serve the files from the next handshake on, or raise TLSError and keep the old ones."""
        self.current = self._load()

    def _handshake(self, connection: ssl.SSLObject, server_name: str | None, front: ssl.SSLContext) -> None:
        connection.context = self.current

    def _load(self) -> ssl.SSLContext:
        """A new context from the files; sets `certificate` once it is known to be servable."""
        with tempfile.TemporaryDirectory(prefix="veg-tls-") as private:
            cert, key = _copy(self.cert, private, "tls.crt"), _copy(self.key, private, "tls.key")
            ca = _copy(self.client_ca, private, "ca.crt") if self.client_ca else None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                context.load_cert_chain(cert, key)
                if ca:
                    context.load_verify_locations(cafile=ca)
                    context.verify_mode = ssl.CERT_REQUIRED
                certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
            except (ssl.SSLError, ValueError) as exc:
                raise TLSError(f"{self.cert} / {self.key}: cannot be served: {exc}") from None
        _check_validity(self.cert, certificate)
        self.certificate = certificate
        return context


def _check_validity(path: str, certificate: x509.Certificate) -> None:
    now = dt.datetime.now(dt.UTC)
    if certificate.not_valid_after_utc <= now:
        raise TLSError(f"{path}: the certificate expired at {certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    if certificate.not_valid_before_utc > now:
        raise TLSError(f"{path}: the certificate is not valid before "
                       f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")


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
