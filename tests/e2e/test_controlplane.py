"""Tests of the control-plane fixture itself, against the live kube-apiserver."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

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
    assert sorted(sum(pages, [])) == sorted(names)


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


def test_start_failure_reports_apiserver_log(assets_dir: str) -> None:
    plane = ControlPlane(assets_dir, apiserver_args=["--no-such-flag"])

    with pytest.raises(ControlPlaneError, match=r"(?s)kube-apiserver exited.*unknown flag: --no-such-flag"):
        plane.start()

    assert plane.workdir is None


def test_stop_ends_processes_and_removes_state(assets_dir: str) -> None:
    plane = ControlPlane(assets_dir).start()
    workdir, procs = plane.workdir, plane.processes
    assert workdir is not None and workdir.is_dir()

    plane.stop()

    assert all(proc.returncode is not None for proc in procs)
    assert not workdir.exists()
