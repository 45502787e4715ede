"""Tests of the control-plane fixture itself, against the live kube-apiserver."""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

from .controlplane import SERVICE_CLUSTER_IP_RANGE, ControlPlane, ControlPlaneError


@pytest.fixture
def core(control_plane: ControlPlane) -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(control_plane.api_client)


def test_service_gets_cluster_ip_from_range(core: k8s_client.CoreV1Api, namespace: str) -> None:
    body = {"metadata": {"name": "vllm"}, "spec": {"ports": [{"port": 8000}]}}
    core.create_namespaced_service(namespace, body)

    service = core.read_namespaced_service("vllm", namespace)

    ip = ipaddress.ip_address(service.spec.cluster_ip)
    assert ip in ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE)


def test_list_follows_continue_tokens(core: k8s_client.CoreV1Api, namespace: str) -> None:
    names = {f"cm-{i}" for i in range(3)}
    for name in names:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"e2e": "page"}}})

    pages: list[list[str]] = []
    token = None
    while True:
        page = core.list_namespaced_config_map(namespace, label_selector="e2e=page", limit=1, _continue=token)
        pages.append([cm.metadata.name for cm in page.items])
        token = page.metadata._continue
        if not token:
            break

    assert all(len(page) == 1 for page in pages)
    assert sorted(name for page in pages for name in page) == sorted(names)


def test_kubectl_helper(control_plane: ControlPlane, namespace: str) -> None:
    result = control_plane.kubectl("get", "ns", "-o", "name")

    assert result.returncode == 0, result.stderr
    assert {"namespace/default", "namespace/kube-system", f"namespace/{namespace}"} <= set(result.stdout.split())


def test_kubectl_helper_passes_input(control_plane: ControlPlane, namespace: str) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-stdin\ndata:\n  k: v\n"

    applied = control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    got = control_plane.kubectl("get", "configmap", "from-stdin", "-n", namespace, "-o", "jsonpath={.data.k}")

    assert applied.returncode == 0, applied.stderr
    assert got.stdout == "v"


@pytest.fixture
def alice(control_plane: ControlPlane) -> Iterator[k8s_client.CoreV1Api]:
    """A CoreV1Api for user alice, in group readers, with no RBAC grant yet."""
    api_client = k8s_config.new_client_from_config(control_plane.make_user("alice", groups=("readers",)))
    yield k8s_client.CoreV1Api(api_client)
    api_client.close()


def _list_services_status(api: k8s_client.CoreV1Api, namespace: str) -> int:
    try:
        return api.list_namespaced_service_with_http_info(namespace)[1]
    except ApiException as exc:
        return exc.status


@pytest.mark.parametrize("subject", [("User", "alice"), ("Group", "readers")])
def test_made_user_is_subject_to_rbac(
    control_plane: ControlPlane, alice: k8s_client.CoreV1Api, namespace: str, subject: tuple[str, str]
) -> None:
    assert _list_services_status(alice, namespace) == 403

    rbac = k8s_client.RbacAuthorizationV1Api(control_plane.api_client)
    rule = {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "list-services"}, "rules": [rule]})
    kind, name = subject
    binding = {
        "metadata": {"name": "list-services"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-services"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}],
    }
    rbac.create_namespaced_role_binding(namespace, binding)

    deadline = time.monotonic() + 10  # the RBAC authorizer sees bindings through a watch
    while (status := _list_services_status(alice, namespace)) == 403 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 200


class _DenyAll(BaseHTTPRequestHandler):
    """A validating admission webhook that denies every request."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        response = {"uid": review["request"]["uid"], "allowed": False, "status": {"message": "denied by e2e"}}
        body = json.dumps({**review, "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def deny_all_webhook(control_plane: ControlPlane) -> Iterator[str]:
    """An HTTPS server at 127.0.0.1 running _DenyAll; yields its URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*control_plane.make_serving_cert("deny-all-webhook"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DenyAll)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/validate"
    server.shutdown()
    server.server_close()


def _first_denial(core: k8s_client.CoreV1Api, namespace: str, timeout: float = 10.0) -> ApiException:
    """Create ConfigMaps until one is rejected: webhook configs reach the apiserver through a watch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "cm-"}})
        except ApiException as exc:
            return exc
        time.sleep(0.05)
    pytest.fail("the webhook was never called")


def test_admission_webhooks_are_called(
    control_plane: ControlPlane, core: k8s_client.CoreV1Api, deny_all_webhook: str, namespace: str
) -> None:
    ca_bundle = base64.b64encode(Path(control_plane.ca_cert_path).read_bytes()).decode()
    config = {
        "metadata": {"name": "e2e-deny-all"},
        "webhooks": [
            {
                "name": "deny-all.e2e.invalid",
                "clientConfig": {"url": deny_all_webhook, "caBundle": ca_bundle},
                "rules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
            }
        ],
    }
    admission = k8s_client.AdmissionregistrationV1Api(control_plane.api_client)
    admission.create_validating_webhook_configuration(config)
    try:
        denial = _first_denial(core, namespace)
    finally:
        admission.delete_validating_webhook_configuration("e2e-deny-all")

    assert denial.status == 400  # the apiserver's code for a denial that sets none
    message = json.loads(denial.body)["message"]
    assert message == 'admission webhook "deny-all.e2e.invalid" denied the request: denied by e2e'


def test_start_failure_reports_apiserver_log(assets_dir: str) -> None:
    plane = ControlPlane(assets_dir, apiserver_args=["--no-such-flag"])

    with pytest.raises(ControlPlaneError, match=r"(?s)kube-apiserver exited.*unknown flag: --no-such-flag"):
        plane.start()

    assert plane.workdir is None


def test_exit_stops_processes_and_removes_state(assets_dir: str) -> None:
    with ControlPlane(assets_dir) as plane:
        workdir, processes = plane.workdir, plane.processes
        assert workdir is not None and workdir.is_dir()
        assert list(processes) == ["etcd", "kube-apiserver"]

    assert all(p.returncode is not None for p in processes.values())
    assert not workdir.exists()
