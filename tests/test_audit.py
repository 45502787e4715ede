"""Unit tests of `audit` for what a real API server cannot show cheaply: expired continue
tokens, discovery across versions, progress on a terminal, kubeconfig resolution, usage errors.
Everything else runs against a real kube-apiserver in tests/e2e/test_audit.py."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from webhook.cli import main
from webhook.cluster import SERVICES, Cluster, ClusterError, Progress, Resource, connect


class FakeApi:
    """Serves `objects` (plural -> items) in pages; the first `expire` continue requests get 410."""

    host = "https://fake"

    def __init__(self, objects: Mapping[str, list[dict[str, Any]]] | None = None, *, expire: int = 0,
                 groups: Mapping[str, list[str]] | None = None,
                 resources: Mapping[str, list[Mapping[str, Any]]] | None = None) -> None:
        self.objects = objects or {}
        self.expire = expire
        self.groups = groups or {}
        self.served = resources or {}
        self.requests: list[tuple[str, str | None]] = []

    def group_versions(self) -> dict[str, list[str]]:
        return dict(self.groups)

    def resources(self, group_version: str) -> list[Mapping[str, Any]]:
        return self.served.get(group_version, [])

    def list_page(self, resource: Resource, namespace: str | None, limit: int,
                  token: str | None) -> Mapping[str, Any]:
        self.requests.append((resource.plural, token))
        if token and self.expire:
            self.expire -= 1
            raise ApiException(status=410, reason="Gone")
        items = self.objects.get(resource.plural, [])
        start = int(token or 0)
        more = start + limit < len(items)
        return {"items": items[start:start + limit], "metadata": {"continue": str(start + limit) if more else ""}}

    def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any]:
        raise ApiException(status=404, reason="Not Found")

    def close(self) -> None:
        pass


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def services(count: int) -> list[dict[str, Any]]:
    return [{"metadata": {"name": f"svc-{i}", "namespace": "a"}} for i in range(count)]


def test_expired_continue_token_restarts_the_list_once() -> None:
    api = FakeApi({"services": services(5)}, expire=1)
    stderr = io.StringIO()

    listed = Cluster(api, page_size=2, progress=Progress(stderr)).list_all(SERVICES, "a")

    assert [o["metadata"]["name"] for o in listed] == [f"svc-{i}" for i in range(5)]
    assert all((o["apiVersion"], o["kind"]) == ("v1", "Service") for o in listed)
    assert api.requests == [("services", None), ("services", "2"),
                            ("services", None), ("services", "2"), ("services", "4")]
    assert stderr.getvalue() == ("vllm-env-guard audit: the list of services expired while paging (410 Gone); "
                                 "listing services again from the start\n")


def test_list_expiring_twice_is_an_error() -> None:
    cluster = Cluster(FakeApi({"services": services(5)}, expire=2), page_size=2, progress=Progress(io.StringIO()))

    with pytest.raises(ClusterError, match=r"^cannot list services: the list expired twice while paging \(410 Gone\)"):
        cluster.list_all(SERVICES, "a")


def test_discovery_takes_the_first_version_that_serves_a_resource() -> None:
    lis = {"name": "llminferenceservices", "kind": "LLMInferenceService", "namespaced": True, "verbs": ["list"]}
    api = FakeApi(groups={"serving.kserve.io": ["serving.kserve.io/v1beta1", "serving.kserve.io/v1alpha2",
                                                "serving.kserve.io/v1alpha1"]},
                  resources={"serving.kserve.io/v1alpha2": [lis], "serving.kserve.io/v1alpha1": [lis]})
    stderr = io.StringIO()

    served = Cluster(api, progress=Progress(stderr, verbose=True)).served(
        [("serving.kserve.io", "llminferenceservices"), ("ray.io", "rayclusters")])

    assert served == [Resource("serving.kserve.io", "v1alpha2", "llminferenceservices", "LLMInferenceService")]
    assert stderr.getvalue() == "not served here, skipped: rayclusters.ray.io\n"


@pytest.mark.parametrize(("stream", "verbose", "shown"), [
    (io.StringIO(), False, ""),
    (io.StringIO(), True, "listing services... 5 objects\n"),
    (Terminal(), False, ("\r\033[Klisting services... 2 objects\r\033[Klisting services... 4 objects"
                         "\r\033[Klisting services... 5 objects\n")),
])
def test_progress(stream: io.StringIO, verbose: bool, shown: str) -> None:
    Cluster(FakeApi({"services": services(5)}), page_size=2, progress=Progress(stream, verbose)).list_all(SERVICES, "a")

    assert stream.getvalue() == shown


KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: team
contexts:
- {name: team, context: {cluster: c, user: u, namespace: team-a}}
- {name: plain, context: {cluster: c, user: u}}
clusters: [{name: c, cluster: {server: "https://example.invalid:6443"}}]
users: [{name: u, user: {token: t}}]
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return str(path)


@pytest.fixture
def no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ~/.kube/config, no $KUBECONFIG, not in a pod."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return tmp_path


@pytest.mark.parametrize(("context", "namespace"), [(None, "team-a"), ("plain", "default")])
def test_namespace_defaults_to_the_contexts(kubeconfig: str, context: str | None, namespace: str) -> None:
    assert connect(kubeconfig, context).namespace == namespace


def test_kubeconfig_env_lists_files_and_missing_ones_are_skipped(
        kubeconfig: str, no_cluster: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{no_cluster / 'missing'}:{kubeconfig}")

    connection = connect()

    assert (connection.api.host, connection.namespace) == ("https://example.invalid:6443", "team-a")


@pytest.mark.parametrize(("args", "message"), [
    (["--page-size", "0"], "--page-size must be at least 1"),
    (["--kubeconfig", "/nonexistent/kubeconfig"], "kubeconfig /nonexistent/kubeconfig not found"),
    (["--context", "nope"], 'context "nope" not found in kubeconfig {kubeconfig}'),
    ([], ("no kubeconfig found (~/.kube/config) and not running in a cluster (KUBERNETES_SERVICE_HOST is not set): "
          "give --kubeconfig")),
])
def test_usage_errors_exit_2(args: list[str], message: str, kubeconfig: str, no_cluster: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    if "--context" in args:
        args = [*args, "--kubeconfig", kubeconfig]

    code = main(["audit", *args])

    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"vllm-env-guard audit: {message.format(kubeconfig=kubeconfig)}\n"


def test_unparsable_kubeconfig_exit_2(no_cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (no_cluster / "broken").write_text("clusters: [\n")

    code = main(["audit", "--kubeconfig", str(no_cluster / "broken")])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"vllm-env-guard audit: cannot use kubeconfig {no_cluster / 'broken'}: ")
    assert err.count("\n") == 1
