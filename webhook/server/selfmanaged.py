"""`serve --self-managed-tls`: a CA and a serving certificate kept in one Secret, shared by replicas.

The Secret holds
- `ca.crt`: the CAs to trust (PEM; two while a CA rolls), also set as the caBundle of every
  webhook of the ValidatingWebhookConfiguration;
- `ca.key`: the key of the CA that signed `tls.crt`;
- `ca-next.key`: while a CA rolls, the key of the new CA, already trusted, not yet signing;
- `tls.crt`, `tls.key`: the serving certificate (for `--tls-hosts`) and its key.

Lifetimes, for a validity V and a renew-before R (R < V): the serving certificate lives V and is
renewed when R is left. A CA lives 4V; when V + 2R of it is left, a new CA joins the trust
bundle without signing anything, and signs the next serving certificate R later; the old CA
leaves the bundle when it expires. So every verifier holds the CA of a new certificate R
before any replica serves it, and no request fails across a renewal or a CA roll.

Every replica runs the same loop, every R/10 (0.5 to 30 seconds): read the Secret, work out
its next state from it and the clock, and write that with the resourceVersion it read. A 409
means another replica wrote first: read again and use what it wrote, so replicas never serve
different CAs. Each replica serves the Secret's current certificate: it writes the pair to a
private directory, from which `LiveTLS` reloads it, and sets the caBundle if it differs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from webhook.cli import DURATION_UNITS
from webhook.server.logs import log, log_exception
from webhook.server.tls import BACKDATE, new_ca, new_serving_certificate, private_pem

Key = ec.EllipticCurvePrivateKey
Obj = dict[str, Any]
Clock = Callable[[], dt.datetime]

CA_LIFETIMES = 4  # a CA lives this many serving-certificate validities
CA_NAME = "vllm-env-guard self-managed CA"
ATTEMPTS = 5  # reads after a 409 before a round gives up (the next round tries again)
REQUEST_TIMEOUT = 10.0
PEM = serialization.Encoding.PEM
KEYS = ("ca.crt", "ca.key", "ca-next.key", "tls.crt", "tls.key")


class ClusterError(Exception):
    """The Secret or the webhook configuration cannot be read or written."""


class Conflict(Exception):
    """409: another writer changed the object since it was read."""


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Settings:
    namespace: str
    secret: str
    webhook_configuration: str
    hosts: tuple[str, ...]
    validity: dt.timedelta
    renew_before: dt.timedelta

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("--tls-hosts names no host")
        if self.renew_before <= dt.timedelta(0):
            raise ValueError("--renew-before must be longer than 0s")
        if self.renew_before >= self.validity:
            raise ValueError(f"--renew-before ({_span(self.renew_before)}) must be shorter than "
                             f"--certificate-validity ({_span(self.validity)})")

    @property
    def ca_validity(self) -> dt.timedelta:
        return self.validity * CA_LIFETIMES

    @property
    def interval(self) -> float:
        """Seconds between two rounds."""
        return min(30.0, max(0.5, self.renew_before.total_seconds() / 10))


def _span(delta: dt.timedelta) -> str:
    """`30d`, `36h`, `90s`: the largest unit that divides the duration."""
    seconds = int(delta.total_seconds())
    unit, size = next((u, n) for u, n in DURATION_UNITS.items() if seconds % n == 0)
    return f"{seconds // size}{unit}"


# --- what the Secret holds, and its next state -----------------------------------------------


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: Key


@dataclass(frozen=True)
class Material:
    """The Secret's certificates and keys, parsed; what is missing or unreadable is empty/None."""

    trusted: tuple[x509.Certificate, ...] = ()
    signer: Authority | None = None
    pending: Authority | None = None
    cert: x509.Certificate | None = None
    key: Key | None = None

    @classmethod
    def parse(cls, data: Mapping[str, bytes]) -> Material:
        try:
            trusted = tuple(x509.load_pem_x509_certificates(data.get("ca.crt", b"")))
        except ValueError:
            trusted = ()
        cert = None
        try:
            cert = x509.load_pem_x509_certificate(data.get("tls.crt", b""))
        except ValueError:
            pass
        return cls(trusted, _authority(trusted, _key(data.get("ca.key"))),
                   _authority(trusted, _key(data.get("ca-next.key"))), cert, _key(data.get("tls.key")))

    @property
    def bundle(self) -> bytes:
        return b"".join(ca.public_bytes(PEM) for ca in self.trusted)

    def encode(self) -> dict[str, bytes]:
        """The Secret's data keys for this state (`ca-next.key` only while a CA rolls)."""
        if self.signer is None or self.cert is None or self.key is None:
            raise ValueError("incomplete material")
        data = {"ca.crt": self.bundle, "ca.key": private_pem(self.signer.key),
                "tls.crt": self.cert.public_bytes(PEM), "tls.key": private_pem(self.key)}
        if self.pending is not None:
            data["ca-next.key"] = private_pem(self.pending.key)
        return data


def _key(pem: bytes | None) -> Key | None:
    try:
        key = serialization.load_pem_private_key(pem or b"", None)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _public(key: Any) -> bytes:
    return bytes(key.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _authority(trusted: tuple[x509.Certificate, ...], key: Key | None) -> Authority | None:
    """The trusted CA whose public key is `key`'s."""
    if key is None:
        return None
    public = _public(key.public_key())
    return next((Authority(ca, key) for ca in trusted if _public(ca.public_key()) == public), None)


def _left(cert: x509.Certificate, now: dt.datetime) -> dt.timedelta:
    return cert.not_valid_after_utc - now


def _hosts(cert: x509.Certificate | None) -> tuple[str, ...]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value if cert else ()
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(name.value) for name in sans)


def _serves(material: Material, signer: Authority, settings: Settings, now: dt.datetime) -> bool:
    """Whether the serving certificate can stay: signed by `signer`, for (at least) the hosts, not due."""
    cert, key = material.cert, material.key
    if cert is None or key is None or _public(cert.public_key()) != _public(key.public_key()):
        return False
    try:
        cert.verify_directly_issued_by(signer.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (set(settings.hosts) <= set(_hosts(cert)) and _left(cert, now) > settings.renew_before
            and cert.not_valid_after_utc <= signer.cert.not_valid_after_utc)


def _new_authority(settings: Settings, now: dt.datetime) -> Authority:
    """A new CA, named for when it was made (two CAs in a bundle never share a subject)."""
    return Authority(*new_ca(f"{CA_NAME} {now:%Y-%m-%dT%H:%M:%SZ}", now, now + settings.ca_validity))


def _ready_to_sign(pending: Authority, signer: Authority, renew: dt.timedelta, now: dt.datetime) -> bool:
    """A new CA signs once it has been trusted for `renew`, or sooner if the current CA is expiring."""
    trusted_for = now - (pending.cert.not_valid_before_utc + BACKDATE)
    return trusted_for >= renew or _left(signer.cert, now) <= renew


def plan(material: Material, settings: Settings, now: dt.datetime) -> tuple[Material, list[str]]:
    """The Secret's next state at `now`, and what changed (for the log)."""
    changes = []
    trusted = [ca for ca in material.trusted if ca.not_valid_after_utc > now]
    if len(trusted) < len(material.trusted):
        changes.append("expired CA left the trust bundle")
    signer, pending = (a if a and a.cert.not_valid_after_utc > now else None
                       for a in (material.signer, material.pending))
    validity, renew = settings.validity, settings.renew_before
    if signer is None and pending is None:
        signer = _new_authority(settings, now)
        changes.append("new CA")
    elif signer is None or (pending is not None and _ready_to_sign(pending, signer, renew, now)):
        signer, pending = pending, None
        changes.append("new CA now signs")
    elif pending is None and _left(signer.cert, now) <= validity + 2 * renew:
        pending = _new_authority(settings, now)
        changes.append("new CA joined the trust bundle")
    assert signer is not None
    for ca in (signer, pending):
        if ca is not None and ca.cert not in trusted:
            trusted.append(ca.cert)
    cert, key = material.cert, material.key
    if not _serves(material, signer, settings, now):
        # Replicas whose --tls-hosts differ (a rolling upgrade) add to the names instead of taking
        # turns replacing them; a renewal comes back to this replica's own list.
        due = cert is None or _left(cert, now) <= renew
        hosts = settings.hosts if due else tuple(dict.fromkeys((*settings.hosts, *_hosts(cert))))
        cert, key = new_serving_certificate(signer.cert, signer.key, hosts, now,
                                            min(now + validity, signer.cert.not_valid_after_utc))
        changes.append("new serving certificate")
    return Material(tuple(trusted), signer, pending, cert, key), changes


# --- the API server ---------------------------------------------------------------------------


class Cluster:
    """The Secret and the ValidatingWebhookConfiguration, as raw JSON."""

    def __init__(self, api_client: k8s.ApiClient, settings: Settings) -> None:
        self.core = k8s.CoreV1Api(api_client)
        self.admission = k8s.AdmissionregistrationV1Api(api_client)
        self.settings = settings

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj | None:
        """The object, or None for 404; Conflict for 409; ClusterError for anything else."""
        try:
            response = method(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
            obj: Obj = json.loads(response.data)
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 409:
                raise Conflict(what) from None
            raise ClusterError(f"{what}: HTTP {exc.status} {_status_message(exc)}") from None
        except (TransportError, OSError, ValueError) as exc:
            raise ClusterError(f"{what}: {type(exc).__name__}: {exc}") from None

    def read_secret(self) -> Obj | None:
        s = self.settings
        return self._call(f"get Secret {s.namespace}/{s.secret}", self.core.read_namespaced_secret, s.secret,
                          s.namespace)

    def create_secret(self, body: Obj) -> None:
        s = self.settings
        self._call(f"create Secret {s.namespace}/{s.secret}", self.core.create_namespaced_secret, s.namespace, body)

    def replace_secret(self, body: Obj) -> None:
        s = self.settings
        self._call(f"update Secret {s.namespace}/{s.secret}", self.core.replace_namespaced_secret, s.secret,
                   s.namespace, body)

    def read_webhooks(self) -> Obj | None:
        name = self.settings.webhook_configuration
        return self._call(f"get ValidatingWebhookConfiguration {name}",
                          self.admission.read_validating_webhook_configuration, name)

    def replace_webhooks(self, body: Obj) -> None:
        name = self.settings.webhook_configuration
        self._call(f"update ValidatingWebhookConfiguration {name}",
                   self.admission.replace_validating_webhook_configuration, name, body)


def _status_message(exc: ApiException) -> str:
    """The API server's reason (for a Secret it names the object, never its data)."""
    try:
        message = json.loads(exc.body or b"{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or exc.reason or "")


def _decode(secret: Obj) -> dict[str, bytes]:
    data = {}
    for name, value in (secret.get("data") or {}).items():
        try:
            data[name] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            continue
    return data


def _encode(data: Mapping[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(value).decode() for name, value in data.items()}


# --- the replica's loop -----------------------------------------------------------------------


class SelfManagedTLS:
    """Keeps the Secret current, the caBundle in step with it, and its pair on disk for LiveTLS."""

    def __init__(self, cluster: Cluster, settings: Settings, clock: Clock = now_utc) -> None:
        self.cluster, self.settings, self.clock = cluster, settings, clock
        self.directory = Path(tempfile.mkdtemp(prefix="veg-self-managed-"))
        self.cert_path, self.key_path = str(self.directory / "tls.crt"), str(self.directory / "tls.key")
        self._written: tuple[bytes, bytes] | None = None
        self._last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> Material:
        """One round: update the Secret (or adopt another replica's update), write its serving
        pair for LiveTLS, set the caBundle. Raises ClusterError when the Secret is out of reach."""
        material = self._update_secret()
        self._write_pair(material)
        try:
            self._install_bundle(material.bundle)
        except ClusterError as exc:
            self._report(str(exc))
        else:
            self._last_error = ""
        return material

    def _update_secret(self) -> Material:
        s = self.settings
        for _ in range(ATTEMPTS):
            secret = self.cluster.read_secret()
            data = _decode(secret) if secret is not None else {}
            current = Material.parse(data)
            wanted, changes = plan(current, s, self.clock())
            encoded = wanted.encode()
            if encoded == {k: v for k, v in data.items() if k in KEYS}:
                return wanted
            try:
                if secret is None:
                    self.cluster.create_secret({
                        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                        "metadata": {"name": s.secret, "namespace": s.namespace,
                                     "labels": {"app.kubernetes.io/managed-by": "vllm-env-guard"}},
                        "data": _encode(encoded)})
                else:
                    others = {k: v for k, v in (secret.get("data") or {}).items() if k not in KEYS}
                    self.cluster.replace_secret({**secret, "data": {**others, **_encode(encoded)}})
            except Conflict:
                log(logging.INFO, "another replica updated the certificate Secret first; using its certificates",
                    secret=f"{s.namespace}/{s.secret}")
                continue
            assert wanted.cert is not None
            log(logging.INFO, "certificate Secret updated", secret=f"{s.namespace}/{s.secret}",
                created=secret is None, changes=changes, serial=f"{wanted.cert.serial_number:x}",
                not_after=wanted.cert.not_valid_after_utc.isoformat(), cas=len(wanted.trusted))
            return wanted
        raise ClusterError(f"Secret {s.namespace}/{s.secret} kept changing under {ATTEMPTS} attempts to update it")

    def _write_pair(self, material: Material) -> None:
        """Replace the files LiveTLS watches, key first (a mismatched pair is refused and retried)."""
        assert material.cert is not None and material.key is not None
        pair = (material.cert.public_bytes(PEM), private_pem(material.key))
        if pair == self._written:
            return
        for path, content in ((self.key_path, pair[1]), (self.cert_path, pair[0])):
            fd, scratch = tempfile.mkstemp(dir=self.directory)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(scratch, path)
        self._written = pair

    def _install_bundle(self, bundle: bytes) -> None:
        """Set every webhook's caBundle to the Secret's CAs (ClusterError if the configuration
        is missing, e.g. not installed yet, or cannot be written: the next round tries again)."""
        name = self.settings.webhook_configuration
        encoded = base64.b64encode(bundle).decode()
        for _ in range(ATTEMPTS):
            config = self.cluster.read_webhooks()
            if config is None:
                raise ClusterError(f"ValidatingWebhookConfiguration {name} not found; "
                                   "its caBundle will be set once it exists")
            webhooks = config.get("webhooks") or []
            if all((w.get("clientConfig") or {}).get("caBundle") == encoded for w in webhooks):
                return
            for webhook in webhooks:
                webhook.setdefault("clientConfig", {})["caBundle"] = encoded
            try:
                self.cluster.replace_webhooks(config)
            except Conflict:
                continue
            log(logging.INFO, "caBundle set", webhook_configuration=name, webhooks=len(webhooks),
                cas=bundle.count(b"-----BEGIN CERTIFICATE-----"))
            return
        raise ClusterError(f"ValidatingWebhookConfiguration {name} kept changing under {ATTEMPTS} attempts to update it")

    def _report(self, error: str) -> None:
        if error != self._last_error:
            self._last_error = error
            log(logging.WARNING, "self-managed certificates: will retry", error=error)

    def start(self) -> None:
        """Run a round every `settings.interval` seconds in a thread until stop()."""
        self._thread = threading.Thread(target=self._run, name="self-managed-tls", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval):
            try:
                self.sync()
            except ClusterError as exc:
                self._report(f"{exc}; serving the current certificate")
            except Exception:  # noqa: BLE001 - a bug must not stop renewals for good
                log_exception("self-managed certificates: round failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(REQUEST_TIMEOUT * 2)
        shutil.rmtree(self.directory, ignore_errors=True)
