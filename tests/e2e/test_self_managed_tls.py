"""`serve --self-managed-tls` against a real kube-apiserver, as a user holding only the RBAC that
docs/tls.md lists (resourceNames: that Secret, that webhook configuration).

Two replicas (real `serve` processes) share one Secret and are registered as the two webhooks of
one ValidatingWebhookConfiguration, so every request the API server admits calls both, verifying
each against the caBundle the replicas installed. Certificates live 16 seconds (renewed 6 before
expiry), so the CA, living 4 x 16 seconds, rolls during the test, while a client sends HTTPS
requests to both replicas verifying against the caBundle it reads from the API server, and the
API server admits dry-run Services through both webhooks: no request may fail.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from tests.support import Loops, stopped_afterwards, wait_until
from webhook.server.selfmanaged import Cluster, SelfManagedTLS, Settings

from .controlplane import ControlPlane
from .test_webhook import free_port

pytestmark = pytest.mark.e2e

VALIDITY, RENEW_BEFORE = "16s", "6s"
HOSTS = "127.0.0.1,localhost"
PACE = 0.02  # seconds between two rounds of a traffic loop (2 cores shared: leave some CPU to the servers)
ROLL_TIMEOUT = 180.0  # seconds for a full CA roll: 64 s of CA life plus slack for a loaded machine


def rbac(namespace: str, secret: str, configuration: str, user: str) -> list[dict[str, Any]]:
    """What docs/tls.md says `serve --self-managed-tls` needs, and nothing more."""
    subject = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": user, "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret],
                    "verbs": ["get", "update", "patch"]},
                   {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": user, "namespace": namespace}, "subjects": subject,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": user},
         "rules": [{"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"],
                    "resourceNames": [configuration], "verbs": ["get", "update", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
         "subjects": subject, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user}},
    ]


@dataclass
class Setup:
    """A Secret name, a webhook configuration and a user allowed exactly those."""

    cp: ControlPlane
    namespace: str
    secret: str
    configuration: str
    kubeconfig: str
    label: str = ""

    def apply(self, objects: list[dict[str, Any]]) -> None:
        result = self.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
        assert result.returncode == 0, result.stderr

    def register(self, ports: list[int]) -> None:
        """One webhook per replica, without caBundle (the replicas set it), for Services created in
        namespaces carrying this setup's label; failurePolicy Fail, so a TLS failure is a failed request."""
        self.label = f"veg-tls-{uuid.uuid4().hex[:8]}"
        webhooks = [{"name": f"replica-{i}.tls.vllm-env-guard.io",
                     "clientConfig": {"url": f"https://127.0.0.1:{port}/validate"},
                     "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                "resources": ["services"], "scope": "Namespaced"}],
                     "namespaceSelector": {"matchLabels": {self.label: "true"}}, "sideEffects": "None",
                     "admissionReviewVersions": ["v1"], "failurePolicy": "Fail", "timeoutSeconds": 5}
                    for i, port in enumerate(ports)]
        self.apply([{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                     "metadata": {"name": self.configuration}, "webhooks": webhooks}])
        patch = {"metadata": {"labels": {self.label: "true"}}}
        k8s.CoreV1Api(self.cp.api_client).patch_namespace(self.namespace, patch)

    def secret_data(self) -> dict[str, bytes]:
        secret = json.loads(k8s.CoreV1Api(self.cp.api_client).read_namespaced_secret(
            self.secret, self.namespace, _preload_content=False).data)
        return {k: base64.b64decode(v) for k, v in secret["data"].items()}

    def ca_bundles(self) -> list[str]:
        configuration = k8s.AdmissionregistrationV1Api(self.cp.api_client).read_validating_webhook_configuration(
            self.configuration, _preload_content=False)
        return [w["clientConfig"].get("caBundle", "") for w in json.loads(configuration.data)["webhooks"]]


@pytest.fixture
def setup(control_plane: ControlPlane, namespace: str) -> Iterator[Setup]:
    user = f"veg-tls-{namespace}"
    made = Setup(control_plane, namespace, "guard-tls", f"guard-{namespace}", control_plane.make_user(user))
    made.apply(rbac(namespace, made.secret, made.configuration, user))
    yield made
    control_plane.kubectl("delete", "validatingwebhookconfiguration", made.configuration, "--ignore-not-found")


@dataclass
class Replica:
    """One `vllm-env-guard serve --self-managed-tls` process."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


def start(setup: Setup, tmp: Path, port: int, *extra: str) -> Replica:
    log = tmp / f"serve-{port}.log"
    argv = [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-cluster",
            "--kubeconfig", setup.kubeconfig, "--self-managed-tls", f"{setup.namespace}/{setup.secret}",
            "--webhook-configuration", setup.configuration, "--tls-hosts", HOSTS, *extra]
    with log.open("wb") as out:
        return Replica(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT), port, log)


def wait_serving(replica: Replica) -> None:
    def up() -> bool:
        assert replica.proc.poll() is None, replica.log.read_text()
        try:
            return served(replica.port, None) is not None
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False

    wait_until(up, timeout=30, what=f"replica on port {replica.port} serving")


def served(port: int, bundle: str | None) -> x509.Certificate:
    """GET /readyz over a new connection verified against `bundle` (None: unverified); the peer's certificate."""
    if bundle is None:  # only to wait for the port
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cadata=base64.b64decode(bundle).decode())
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        response.read()
        assert connection.sock is not None
        der = connection.sock.getpeercert(binary_form=True)
    finally:
        connection.close()
    assert response.status == 200 and der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    yield from stopped_afterwards()


# --- a rotation under traffic ------------------------------------------------------------------


@dataclass
class Traffic(Loops):
    """Two loops: HTTPS to each replica, verified against the caBundle read from the API server
    for every request; and dry-run Service creations, admitted by the API server through both webhooks."""

    setup: Setup
    ports: list[int]
    stop: threading.Event = field(default_factory=threading.Event)
    direct_ok: int = 0
    admitted: int = 0
    failures: list[str] = field(default_factory=list)
    served: dict[int, list[x509.Certificate]] = field(default_factory=dict)
    bundles: list[str] = field(default_factory=list)

    def direct(self) -> None:
        while not self.stop.is_set():
            try:
                bundle = self.setup.ca_bundles()[0]
                if not self.bundles or self.bundles[-1] != bundle:
                    self.bundles.append(bundle)
                for port in self.ports:
                    cert = served(port, bundle)
                    seen = self.served.setdefault(port, [])
                    if not seen or seen[-1] != cert:
                        seen.append(cert)
                self.direct_ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                self.failures.append(f"direct: {exc!r}")
            self.stop.wait(PACE)

    def through_api_server(self) -> None:
        api = k8s.CoreV1Api(self.setup.cp.api_client)
        body = {"metadata": {"generateName": "web-"}, "spec": {"ports": [{"port": 80}]}}
        while not self.stop.is_set():
            try:
                api.create_namespaced_service(self.setup.namespace, body, dry_run="All", _preload_content=False)
                self.admitted += 1
            except ApiException as exc:
                self.failures.append(f"API server: {exc.status} {exc.body!r}")
            self.stop.wait(PACE)

    def loops(self) -> list[Callable[[], None]]:
        return [self.direct, self.through_api_server]


def cas(bundle: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(base64.b64decode(bundle))


@pytest.mark.slow
def test_rotation_and_a_ca_roll_under_traffic_with_two_replicas(setup: Setup, tmp_path: Path,
                                                                replicas: list[Replica]) -> None:
    ports = [free_port(), free_port()]
    setup.register(ports)
    for port in ports:  # the second starts once the first has made the Secret
        replicas.append(start(setup, tmp_path, port, "--certificate-validity", VALIDITY,
                              "--renew-before", RENEW_BEFORE))
        wait_serving(replicas[-1])

    data = setup.secret_data()
    assert sorted(data) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    first_ca = x509.load_pem_x509_certificate(data["ca.crt"])
    wait_until(lambda: set(setup.ca_bundles()) == {base64.b64encode(data["ca.crt"]).decode()},
               what="both webhooks' caBundle set to the Secret's CA")
    bundle = setup.ca_bundles()[0]
    one, two = (served(port, bundle) for port in ports)
    assert one.issuer == two.issuer == first_ca.subject  # the second replica serves from the same CA

    with Traffic(setup, ports) as traffic:
        def rolled() -> bool:
            assert not traffic.failures, traffic.failures[:5]
            return (any(len(cas(b)) == 2 for b in traffic.bundles) and first_ca not in cas(traffic.bundles[-1])
                    and all(len(traffic.served.get(port, [])) >= 4 for port in ports)
                    and all(traffic.served[port][-1].issuer != first_ca.subject for port in ports))

        wait_until(rolled, timeout=ROLL_TIMEOUT, interval=0.5, what="a full CA roll seen by the client")
    assert traffic.failures == []
    assert traffic.direct_ok > 50 and traffic.admitted > 50, (traffic.direct_ok, traffic.admitted)
    assert max(len(cas(b)) for b in traffic.bundles) == 2
    print(f"\nrotation: {traffic.direct_ok} direct rounds x 2 replicas, {traffic.admitted} admissions through "
          f"both webhooks, 0 failed; served certificates per replica: "
          f"{[len(traffic.served[p]) for p in ports]}; caBundles seen: {len(traffic.bundles)}")
    for replica in replicas:
        assert replica.stop() == 0
    logs = "".join(replica.log.read_text() for replica in replicas)
    for key in ("ca.key", "tls.key"):  # key material never reaches a log
        assert base64.b64encode(setup.secret_data()[key]).decode()[:32] not in logs
        assert b"".join(setup.secret_data()[key].splitlines()[1:2]).decode() not in logs


# --- concurrent writers --------------------------------------------------------------------------


def test_replicas_started_together_agree_on_one_secret(setup: Setup, tmp_path: Path,
                                                       replicas: list[Replica]) -> None:
    ports = [free_port(), free_port()]
    setup.register(ports)
    replicas.extend(start(setup, tmp_path, port) for port in ports)
    for replica in replicas:
        wait_serving(replica)
    created = [line for replica in replicas for line in replica.lines()
               if line["msg"] == "certificate Secret updated" and line["created"]]
    assert len(created) == 1, created
    bundle = base64.b64encode(setup.secret_data()["ca.crt"]).decode()
    wait_until(lambda: setup.ca_bundles() == [bundle, bundle], what="caBundle set")
    serials = {served(port, bundle).serial_number for port in ports}
    assert serials == {x509.load_pem_x509_certificate(setup.secret_data()["tls.crt"]).serial_number}


class Interleaved(Cluster):
    """Every replica reads the Secret before any of them writes it, so all but one write a stale version."""

    def __init__(self, api_client: k8s.ApiClient, settings: Settings, barrier: threading.Barrier) -> None:
        super().__init__(api_client, settings)
        self.barrier, self.reads = barrier, 0

    def read_secret(self) -> dict[str, Any] | None:
        secret = super().read_secret()
        self.reads += 1
        if self.reads == 1:
            self.barrier.wait(30)
        return secret


def test_one_writer_wins_a_real_conflict_and_both_serve_its_certificate(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    def race(hosts: tuple[str, ...]) -> list[SelfManagedTLS]:
        settings = Settings(setup.namespace, setup.secret, setup.configuration, hosts,
                            dt.timedelta(days=90), dt.timedelta(days=30))
        barrier = threading.Barrier(2)
        managers = [SelfManagedTLS(Interleaved(k8s_config.new_client_from_config(config_file=setup.kubeconfig),
                                               settings, barrier), settings) for _ in range(2)]
        threads = [threading.Thread(target=m.sync) for m in managers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return managers

    setup.register([free_port()])
    for hosts, outcome in ((("127.0.0.1",), True), (("127.0.0.1", "localhost"), False)):  # create, then update
        caplog.clear()
        with caplog.at_level("INFO", logger="vllm_env_guard.server"):
            managers = race(hosts)
        try:
            written = [r for r in caplog.records if r.getMessage() == "certificate Secret updated"]
            assert [r.fields["created"] for r in written] == [outcome]  # type: ignore[attr-defined]
            assert caplog.messages.count("another replica updated the certificate Secret first; using its "
                                         "certificates") == 1
            secret_cert = setup.secret_data()["tls.crt"]
            assert [Path(m.cert_path).read_bytes() for m in managers] == [secret_cert, secret_cert]
            sans = x509.load_pem_x509_certificate(secret_cert).extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
            assert {str(n.value) for n in sans} == set(hosts)
        finally:
            for manager in managers:
                manager.stop()


def test_without_rbac_serve_exits_2_naming_the_forbidden_request(control_plane: ControlPlane, setup: Setup,
                                                                 tmp_path: Path) -> None:
    nobody = control_plane.make_user(f"veg-nobody-{setup.namespace}")
    argv = [sys.executable, "-m", "webhook", "serve", "--no-cluster", "--kubeconfig", nobody, "--self-managed-tls",
            f"{setup.namespace}/{setup.secret}", "--webhook-configuration", setup.configuration, "--tls-hosts", HOSTS]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"vllm-env-guard serve: --self-managed-tls: get Secret {setup.namespace}/"
                                    f"{setup.secret}: HTTP 403 secrets \"{setup.secret}\" is forbidden")
    assert "Traceback" not in result.stderr
    # ... and the RBAC above is limited to its resourceNames.
    other = control_plane.kubectl("auth", "can-i", "get", "secret/other", "-n", setup.namespace,
                                  kubeconfig=setup.kubeconfig)
    assert other.stdout.strip() == "no"
