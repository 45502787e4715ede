"""A throwaway etcd + kube-apiserver on loopback, for end-to-end tests and scripts.

Binaries come from a KUBEBUILDER_ASSETS directory (see scripts/envtest-assets).
No controllers run: objects are stored and validated, admission webhooks are
called, RBAC is enforced, but nothing reconciles (no pods start).

    with ControlPlane(os.environ["KUBEBUILDER_ASSETS"]) as cp:
        cp.kubectl("get", "ns")

Run `python -m tests.e2e.controlplane` to keep one up for manual poking.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import http.client
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/12"
LOG_TAIL_LINES = 40

Key = ec.EllipticCurvePrivateKey


class ControlPlaneError(RuntimeError):
    """The control plane could not be started."""


# --- PKI --------------------------------------------------------------------


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert_builder(subject: x509.Name, issuer: x509.Name, key: Key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _new_ca() -> tuple[x509.Certificate, Key]:
    key = _new_key()
    name = _name("vllm-env-guard-e2e-ca")
    cert = (
        _cert_builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca: tuple[x509.Certificate, Key],
    common_name: str,
    orgs: Iterable[str] = (),
    *,
    server: bool = False,
) -> tuple[x509.Certificate, Key]:
    """A leaf certificate signed by `ca`: a loopback serving cert, or a client cert."""
    ca_cert, ca_key = ca
    key = _new_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = _cert_builder(_name(common_name, orgs), ca_cert.subject, key).add_extension(
        x509.ExtendedKeyUsage([usage]), critical=False
    )
    if server:
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: Key) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return path


def _write_public_key(path: Path, key: Key) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# --- processes --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Ask Linux to kill the child if the test process dies without cleaning up.

    SIGKILL, not SIGTERM: a kube-apiserver whose etcd died with it hangs in graceful shutdown.
    """
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# --- control plane ----------------------------------------------------------


class ControlPlane:
    """etcd + kube-apiserver with generated PKI, an admin kubeconfig and helpers.

    Path attributes are `str` so they can go straight into env vars, argv and
    `kubernetes.config`. Use as a context manager, or call `start()`/`stop()`.
    """

    def __init__(
        self,
        assets_dir: str | os.PathLike[str],
        *,
        apiserver_args: Sequence[str] = (),
        ready_timeout: float = 60.0,
    ) -> None:
        self.assets = Path(assets_dir)
        self.apiserver_args = list(apiserver_args)
        self.ready_timeout = ready_timeout
        self.workdir: Path | None = None
        self.url = ""
        self.kubeconfig = ""
        self.ca_cert_path = ""
        self._api_client: k8s_client.ApiClient | None = None
        self._ca: tuple[x509.Certificate, Key] | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # lifecycle

    def start(self) -> ControlPlane:
        """Start etcd and kube-apiserver; return once /readyz answers ok."""
        if self.workdir is not None:
            raise ControlPlaneError("control plane is already started")
        self._check_assets()
        self.workdir = Path(tempfile.mkdtemp(prefix="veg-controlplane-"))
        try:
            self._ca = _new_ca()
            self.ca_cert_path = str(_write_cert(self.workdir / "ca.crt", self._ca[0]))
            etcd_url = self._start_etcd()
            port = _free_port()
            self.url = f"https://127.0.0.1:{port}"
            self._start_apiserver(etcd_url, port)
            self.kubeconfig = self._client_kubeconfig("admin", "admin", ("system:masters",))
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the processes (apiserver first) and delete all state, keys included."""
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
        for proc in reversed(self._procs.values()):
            _stop_process(proc)
        self._procs.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # helpers

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        """The etcd and kube-apiserver processes by name, in start order."""
        return dict(self._procs)

    @property
    def api_client(self) -> k8s_client.ApiClient:
        """An admin `kubernetes.client.ApiClient` (created on first use, closed by stop())."""
        if self._api_client is None:
            self._api_client = k8s_config.new_client_from_config(config_file=self.kubeconfig)
        return self._api_client

    def kubectl(
        self, *args: str, input: str | None = None, kubeconfig: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as admin (or with `kubeconfig`); never raises on a non-zero exit."""
        argv = [str(self.assets / "kubectl"), "--kubeconfig", kubeconfig or self.kubeconfig, *args]
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)

    def make_user(self, name: str, groups: Iterable[str] = ()) -> str:
        """Issue a client cert for user `name` in `groups`; return the path of its kubeconfig."""
        return self._client_kubeconfig("user-" + _file_stem(name), name, groups)

    def make_serving_cert(self, name: str) -> tuple[str, str]:
        """Issue a serving cert for 127.0.0.1/localhost signed by the cluster CA, e.g. for a
        webhook server (its caBundle is `ca_cert_path`); return (cert path, key path)."""
        workdir, ca = self._require_started()
        cert, key = _issue(ca, name, server=True)
        stem = "serving-" + _file_stem(name)
        return str(_write_cert(workdir / f"{stem}.crt", cert)), str(_write_key(workdir / f"{stem}.key", key))

    # internals

    def _client_kubeconfig(self, stem: str, name: str, groups: Iterable[str]) -> str:
        workdir, ca = self._require_started()
        cert, key = _issue(ca, name, groups)
        cert_path = _write_cert(workdir / f"{stem}.crt", cert)
        key_path = _write_key(workdir / f"{stem}.key", key)
        return str(self._write_kubeconfig(workdir / f"{stem}.kubeconfig", name, cert_path, key_path))

    def _require_started(self) -> tuple[Path, tuple[x509.Certificate, Key]]:
        if self.workdir is None or self._ca is None:
            raise ControlPlaneError("control plane is not started")
        return self.workdir, self._ca

    def _check_assets(self) -> None:
        missing = [b for b in ("etcd", "kube-apiserver", "kubectl") if not (self.assets / b).is_file()]
        if missing:
            raise ControlPlaneError(f"{self.assets} lacks {', '.join(missing)}; run scripts/envtest-assets")

    def _start_etcd(self) -> str:
        workdir, _ = self._require_started()
        client_url = f"http://127.0.0.1:{_free_port()}"
        peer_url = f"http://127.0.0.1:{_free_port()}"
        argv = [
            str(self.assets / "etcd"),
            "--name=e2e",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=e2e={peer_url}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
        self._procs["etcd"] = _spawn(argv, workdir / "etcd.log")
        return client_url

    def _start_apiserver(self, etcd_url: str, port: int) -> None:
        workdir, _ = self._require_started()
        serving_cert, serving_key = self.make_serving_cert("kube-apiserver")
        sa_key = _new_key()
        argv = [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",  # it refuses a loopback advertise address
            f"--secure-port={port}",
            f"--cert-dir={workdir / 'apiserver-certs'}",
            f"--tls-cert-file={serving_cert}",
            f"--tls-private-key-file={serving_key}",
            f"--client-ca-file={self.ca_cert_path}",
            f"--service-account-key-file={_write_public_key(workdir / 'sa.pub', sa_key)}",
            f"--service-account-signing-key-file={_write_key(workdir / 'sa.key', sa_key)}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            *self.apiserver_args,
        ]
        self._procs["kube-apiserver"] = _spawn(argv, workdir / "kube-apiserver.log")

    def _write_kubeconfig(self, path: Path, user: str, cert: Path, key: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": {"server": self.url, "certificate-authority": self.ca_cert_path}}],
            "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
            "current-context": "e2e",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _readyz_ok(self, context: ssl.SSLContext) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", context=context, timeout=2) as resp:
                status: int = resp.status
                return status == 200
        except (OSError, http.client.HTTPException):
            return False

    def _wait_ready(self) -> None:
        workdir, _ = self._require_started()
        context = ssl.create_default_context(cafile=self.ca_cert_path)
        context.load_cert_chain(workdir / "admin.crt", workdir / "admin.key")
        deadline = time.monotonic() + self.ready_timeout
        while not self._readyz_ok(context):
            reason = self._exited()
            if not reason and time.monotonic() > deadline:
                reason = f"/readyz not ok after {self.ready_timeout:.0f}s"
            if reason:
                raise ControlPlaneError(self._failure_report(reason))
            time.sleep(0.1)

    def _exited(self) -> str:
        """Which process has exited, if any."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                return f"{name} exited with status {proc.returncode}"
        return ""

    def _failure_report(self, reason: str) -> str:
        workdir, _ = self._require_started()
        parts = [f"control plane did not become ready: {reason}"]
        for log in ("kube-apiserver.log", "etcd.log"):
            parts.append(f"--- last {LOG_TAIL_LINES} lines of {log} ---\n{_tail(workdir / log)}")
        return "\n".join(parts)


def main() -> None:
    """Start a control plane, print how to use it, and wait for SIGINT (Ctrl-C) or SIGTERM."""
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    with ControlPlane(os.environ["KUBEBUILDER_ASSETS"]) as cp:
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        print(f"export KUBECONFIG={cp.kubeconfig}  # Ctrl-C stops the control plane", flush=True)
        signal.sigwait(stop_signals)


if __name__ == "__main__":
    main()
