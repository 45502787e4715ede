"""`vllm-env-guard serve` behind a real kube-apiserver, driven with kubectl.

The server runs as a subprocess (the real CLI) on 127.0.0.1 with a serving certificate signed
by the control plane's CA, watches the cluster as a user holding only the RBAC the chart must
grant, and is registered through a ValidatingWebhookConfiguration in url mode. The webhook
only matches namespaces carrying the test's label, so other e2e tests are not affected.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.support import wait_until
from webhook.server.cache import SERVICES, Expired, Reflector

from .controlplane import ControlPlane

WAIT = 60  # seconds for a condition: a start or a kubectl round trip can take long on a loaded machine

pytestmark = pytest.mark.e2e

WEBHOOK = "vllm-guard.vllm-env-guard.io"
OLD_IMAGE = "vllm/vllm-openai:v0.8.1"
MODE_LABEL = "vllm-env-guard.io/mode"

# What `serve` needs with `cache: {configMaps: true}` (the chart's ClusterRole must grant it).
RBAC_RULES = [
    {"apiGroups": [""], "resources": ["services", "namespaces", "configmaps", "pods"], "verbs": ["list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
     "verbs": ["list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["list", "watch"]},
]
RULES = [
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services"]},
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
    {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"]},
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs", "cronjobs"]},
]


@dataclass
class Server:
    """One `vllm-env-guard serve` process."""

    proc: subprocess.Popen[bytes]
    url: str
    ca: str
    log: Path

    def get(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
        """GET `path`, or POST `body` as JSON."""
        context = ssl.create_default_context(cafile=self.ca)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def start_server(cp: ControlPlane, tmp: Path, kubeconfig: str, config: str, ready: bool = True) -> Server:
    cert, key = cp.make_serving_cert(f"vllm-env-guard-{tmp.name}")
    config_path = tmp / "config.yaml"
    config_path.write_text(config)
    port = free_port()
    log = tmp / "serve.log"
    argv = [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--tls-cert", cert, "--tls-key", key, "--config", str(config_path), "--kubeconfig", kubeconfig]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, f"https://127.0.0.1:{port}", cp.ca_cert_path, log)
    expected = 200 if ready else 503
    try:
        wait_until(lambda: server.proc.poll() is not None or server.get("/readyz")[0] == expected, timeout=WAIT, what="/readyz")
    except BaseException:
        server.stop()
        raise
    assert proc.poll() is None, log.read_text()
    return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register(cp: ControlPlane, name: str, url: str, label: str, failure_policy: str = "Fail") -> None:
    ca_bundle = base64.b64encode(Path(cp.ca_cert_path).read_bytes()).decode()
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": WEBHOOK,
            "clientConfig": {"url": f"{url}/validate", "caBundle": ca_bundle},
            "rules": [{**rule, "scope": "Namespaced"} for rule in RULES],
            "namespaceSelector": {"matchLabels": {label: "true"}},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": failure_policy,
            "timeoutSeconds": 5,
        }],
    }
    result = cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    assert result.returncode == 0, result.stderr


def grant(cp: ControlPlane, user: str) -> None:
    objects = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": user},
         "rules": RBAC_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
    ]
    result = cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    assert result.returncode == 0, result.stderr


@dataclass
class Guard:
    cp: ControlPlane
    server: Server
    label: str

    def namespace(self, mode: str | None = None) -> str:
        labels = {self.label: "true", **({MODE_LABEL: mode} if mode else {})}
        body = {"metadata": {"generateName": "guard-", "labels": labels}}
        return str(k8s.CoreV1Api(self.cp.api_client).create_namespace(body).metadata.name)

    def apply(self, obj: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
        return self.cp.kubectl("apply", *args, "-f", "-", input=yaml.safe_dump(obj))

    def label_namespace(self, namespace: str, mode: str) -> None:
        result = self.cp.kubectl("label", "namespace", namespace, f"{MODE_LABEL}={mode}", "--overwrite")
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def guard(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guard]:
    tmp = tmp_path_factory.mktemp("guard")
    user = "vllm-env-guard"
    grant(control_plane, user)
    kubeconfig = control_plane.make_user(user)
    server = start_server(control_plane, tmp, kubeconfig,
                          "server:\n  mode: enforce\n  cache:\n    configMaps: true\n")
    label = "vllm-env-guard-e2e"
    register(control_plane, "vllm-env-guard-e2e", server.url, label)
    guard = Guard(control_plane, server, label)
    probe = guard.namespace()
    wait_until(lambda: "denied the request" in guard.apply(service("vllm", probe), "--dry-run=server").stderr,
             timeout=WAIT, what="the webhook configuration to take effect")
    yield guard
    control_plane.kubectl("delete", "validatingwebhookconfiguration", "vllm-env-guard-e2e", "--ignore-not-found")
    server.stop()


def service(name: str, namespace: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, **({"annotations": annotations} if annotations else {})}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {"app": "llm"}, "ports": [{"name": "http", "port": 8000}]}}


def container(env: dict[str, str] | None = None, env_from: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "vllm", "image": OLD_IMAGE,
                         "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    if env_from:
        c["envFrom"] = [{"configMapRef": {"name": env_from}}]
    return c


def deployment(name: str, namespace: str, env: dict[str, str] | None = None, replicas: int = 1,
               env_from: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "llm"}},
                     "template": {"metadata": {"labels": {"app": "llm"}},
                                  "spec": {"containers": [container(env, env_from)]}}}}


def pod(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [container()], **spec}}


DENIED = f'admission webhook "{WEBHOOK}" denied the request: '


def test_a_service_named_vllm_is_denied_on_server_side_dry_run(guard: Guard) -> None:
    namespace = guard.namespace()
    result = guard.apply(service("vllm", namespace), "--dry-run=server")
    assert result.returncode != 0
    assert f"Error from server (Forbidden): error when creating \"STDIN\": {DENIED}" \
           f"Service {namespace}/vllm would break vLLM (1 error):" in result.stderr
    assert "- [service-link-collision] Rename Service \"vllm\": it injects VLLM_PORT=tcp://" in result.stderr
    assert "Fix: rename the Service" in result.stderr
    assert guard.cp.kubectl("get", "service", "vllm", "-n", namespace).returncode != 0  # nothing persisted
    status, metrics = guard.server.get("/metrics")
    assert status == 200
    assert 'vllm_env_guard_admission_requests_total{allowed="false",dry_run="true",kind="Service",operation="CREATE"}' \
           in metrics
    assert 'vllm_env_guard_cache_synced{resource="services"} 1.0' in metrics
    assert 'vllm_env_guard_cache_age_seconds{resource="services"}' in metrics


def test_a_deployment_with_a_bad_value_is_denied(guard: Guard) -> None:
    namespace = guard.namespace()
    result = guard.apply(deployment("llm", namespace, {"VLLM_USE_V1": "true"}))
    assert result.returncode != 0
    assert f"{DENIED}Deployment {namespace}/llm would break vLLM (1 error):" in result.stderr
    assert "[env-parse-error] container vllm: VLLM_USE_V1=\"true\": vLLM 0.8.1 raises ValueError" in result.stderr
    assert 'vllm-env-guard.io/ignore: "env-parse-error"' in result.stderr


def test_a_warning_level_finding_is_admitted_and_kubectl_prints_it(guard: Guard) -> None:
    namespace = guard.namespace()
    result = guard.apply(deployment("llm", namespace, {"VLLM_LOGGING_LEVL": "DEBUG"}))
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/llm created" in result.stdout
    assert "Warning: [env-unknown-variable] VLLM_LOGGING_LEVL is not a variable vLLM 0.8.1 reads " \
           "(did you mean VLLM_LOGGING_LEVEL?)" in result.stderr


def test_a_pod_is_denied_where_a_colliding_service_exists(guard: Guard) -> None:
    namespace = guard.namespace(mode="warn")
    created = guard.apply(service("vllm", namespace))
    assert created.returncode == 0, created.stderr
    assert "Warning: [service-link-collision, error, warn mode] VLLM_PORT: Rename Service \"vllm\"" in created.stderr
    guard.label_namespace(namespace, "enforce")
    denied = wait_until(lambda: (r := guard.apply(pod("p", namespace))).returncode != 0 and r,
                      timeout=WAIT, what="the cache to see the namespace label")
    assert f"{DENIED}Pod {namespace}/p would break vLLM (1 error):" in denied.stderr
    assert f"- [service-link-collision] container vllm: Service {namespace}/vllm injects VLLM_PORT=tcp://" \
           in denied.stderr
    admitted = guard.apply(pod("p", namespace, enableServiceLinks=False))
    assert admitted.returncode == 0, admitted.stderr
    assert "pod/p created" in admitted.stdout


def test_a_colliding_service_is_denied_with_the_workloads_it_would_break(guard: Guard) -> None:
    namespace = guard.namespace()
    assert guard.apply(deployment("llm", namespace)).returncode == 0
    denied = wait_until(lambda: "it breaks" in (r := guard.apply(service("vllm", namespace), "--dry-run=server")).stderr
                      and r, timeout=WAIT, what="the cache to see the Deployment")
    assert f"it breaks Deployment {namespace}/llm (container vllm)" in denied.stderr


def test_updates_keep_old_errors_as_warnings_and_deny_new_ones(guard: Guard) -> None:
    namespace = guard.namespace(mode="warn")
    assert guard.apply(deployment("llm", namespace, {"VLLM_USE_V1": "true"})).returncode == 0
    guard.label_namespace(namespace, "enforce")
    wait_until(lambda: guard.apply(deployment("other", namespace, {"VLLM_USE_V1": "true"}),
                                 "--dry-run=server").returncode != 0, timeout=WAIT, what="the cache to see the label")
    scaled = guard.apply(deployment("llm", namespace, {"VLLM_USE_V1": "true"}, replicas=2))
    assert scaled.returncode == 0, scaled.stderr
    assert "Warning: [env-parse-error, error, pre-existing] VLLM_USE_V1" in scaled.stderr
    worse = guard.apply(deployment("llm", namespace, {"VLLM_USE_V1": "true", "VLLM_PORT": "tcp://x:1"}))
    assert worse.returncode != 0
    denial = worse.stderr.split("denied the request: ")[1]
    assert denial.startswith(f"Deployment {namespace}/llm would break vLLM (1 error):")
    assert 'VLLM_PORT="tcp://x:1"' in denial and "VLLM_USE_V1" not in denial


def test_configmap_values_are_checked_and_the_ignore_annotation_applies(guard: Guard) -> None:
    namespace = guard.namespace()
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vllm-env", "namespace": namespace},
                 "data": {"VLLM_USE_V1": "true"}}
    assert guard.apply(configmap).returncode == 0
    denied = wait_until(lambda: (r := guard.apply(deployment("llm", namespace, env_from="vllm-env"),
                                                "--dry-run=server")).returncode != 0 and r,
                      timeout=WAIT, what="the cache to see the ConfigMap")
    assert "[env-parse-error]" in denied.stderr
    ignored = guard.apply(service("vllm", namespace, {"vllm-env-guard.io/ignore": "service-link-collision"}))
    assert ignored.returncode == 0, ignored.stderr
    assert "Warning: [service-link-prefix]" in ignored.stderr


def test_without_rbac_the_server_is_not_ready_and_the_failure_mode_applies(control_plane: ControlPlane,
                                                                         tmp_path: Path) -> None:
    kubeconfig = control_plane.make_user("nobody")
    server = start_server(control_plane, tmp_path, kubeconfig, "server: {}\n", ready=False)
    try:
        status, body = server.get("/readyz")
        assert status == 503
        assert json.loads(body)["reasons"][0].startswith("cluster cache not synced: services, namespaces, ")
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
            "namespace": "llm", "name": "p", "object": pod("p", "llm")}}
        started = time.monotonic()
        status, body = server.get("/validate?timeout=5s", review)
        assert status == 200 and time.monotonic() - started < 3  # waited at most the 1 s lookup budget
        response = json.loads(body)["response"]
        assert response["allowed"] is True
        assert response["warnings"][0].startswith(
            "vllm-env-guard: checked without cluster state (namespaces not listed yet (HTTP 403 Forbidden)")
        assert server.stop() == 0
    finally:
        server.stop()


def test_a_watch_expired_by_compaction_is_detected_and_relisted(assets_dir: str) -> None:
    """410 Gone from a real API server: the watch cache is off and etcd compacts every second."""
    with ControlPlane(assets_dir, apiserver_args=["--watch-cache=false", "--etcd-compaction-interval=1s"]) as cp:
        core = k8s.CoreV1Api(cp.api_client)
        reflector = Reflector(SERVICES, SERVICES.lister(cp.api_client))
        old = reflector.list()
        core.create_namespaced_service("default", {"metadata": {"name": "vllm"}, "spec": {"ports": [{"port": 80}]}})

        def compacted() -> bool:
            try:
                core.list_service_for_all_namespaces(resource_version=old, resource_version_match="Exact", limit=1)
            except ApiException as exc:
                return exc.status == 410
            return False

        wait_until(compacted, timeout=WAIT, what="etcd to compact `old` away")
        with pytest.raises(Expired):
            reflector.watch(old)
        reflector.list()
        assert reflector.get("default", "vllm") is not None
        assert reflector.stats().relists == 1
        reflector.start()  # and the running loop keeps up from the new list
        core.create_namespaced_service("default", {"metadata": {"name": "vllm-dp-master"},
                                                   "spec": {"ports": [{"port": 80}]}})
        wait_until(lambda: reflector.get("default", "vllm-dp-master") is not None, timeout=WAIT, what="the watch event")
        stopping = time.monotonic()
        reflector.stop()
        assert time.monotonic() - stopping < 2  # stop() interrupts the blocked watch


def test_with_the_server_stopped_ignore_admits_and_fail_rejects(control_plane: ControlPlane, guard: Guard,
                                                                tmp_path: Path) -> None:
    label = f"vllm-env-guard-down-{uuid.uuid4().hex[:6]}"
    server = start_server(control_plane, tmp_path, control_plane.make_user("vllm-env-guard"), "server: {}\n")
    name = f"vllm-env-guard-{label}"
    register(control_plane, name, server.url, label)
    try:
        body = {"metadata": {"generateName": "down-", "labels": {label: "true"}}}
        namespace = k8s.CoreV1Api(control_plane.api_client).create_namespace(body).metadata.name

        def attempt() -> subprocess.CompletedProcess[str]:
            return guard.apply(service("vllm", namespace), "--dry-run=server")

        wait_until(lambda: DENIED in attempt().stderr, timeout=WAIT, what="the second webhook")
        assert server.stop() == 0  # graceful SIGTERM
        register(control_plane, name, server.url, label, failure_policy="Ignore")
        admitted = wait_until(lambda: (r := attempt()).returncode == 0 and r, timeout=WAIT, what="failurePolicy Ignore")
        assert "service/vllm created (server dry run)" in admitted.stdout
        register(control_plane, name, server.url, label, failure_policy="Fail")
        rejected = wait_until(lambda: (r := attempt()).returncode != 0 and r, timeout=WAIT, what="failurePolicy Fail")
        assert f'failed calling webhook "{WEBHOOK}"' in rejected.stderr
        assert "connection refused" in rejected.stderr
    finally:
        control_plane.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
        server.stop()

