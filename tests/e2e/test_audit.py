"""`vllm-env-guard audit` against a real kube-apiserver.

The module runs its own control plane, so `--all-namespaces` sees only what is seeded here.
No controllers run: ReplicaSets, Jobs and Pods are created by hand, with ownerReferences, and
Pod status is set through the status subresource.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client

from webhook import cluster as cluster_module
from webhook.cli import main

from .controlplane import ControlPlane

OLD_IMAGE = "vllm/vllm-openai:v0.8.1"
IMAGE = "vllm/vllm-openai:v0.9.2"
SECRET_VALUE = "on-7f3a9"  # int() raises on it; must never be printed

# Every problem seeded below: (rule, kind, namespace, name).
SEEDED = {
    ("service-link-collision", "Service", "a", "vllm"),
    ("service-link-prefix", "Service", "a", "vllm"),  # VLLM_SERVICE_HOST, ...: read by no vLLM
    ("service-link-collision", "Deployment", "a", "llm"),
    ("service-link-collision", "CronJob", "a", "bench"),
    ("service-link-collision", "Pod", "a", "debug"),
    ("service-link-collision", "LeaderWorkerSet", "a", "multi"),
    ("env-parse-error", "Deployment", "cfg", "keyref"),
    ("env-parse-error", "Deployment", "cfg", "envfrom"),
}

# What the audit needs (documented in docs): list on every kind it reads, get on Secrets.
AUDIT_RULES = [
    {"apiGroups": [""], "resources": ["services", "configmaps", "pods", "replicationcontrollers", "podtemplates"],
     "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
     "verbs": ["list"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["list"]},
    {"apiGroups": ["leaderworkerset.x-k8s.io"], "resources": ["leaderworkersets"], "verbs": ["list"]},
    {"apiGroups": ["ray.io"], "resources": ["rayclusters", "rayservices", "rayjobs"], "verbs": ["list"]},
    {"apiGroups": ["serving.kserve.io"], "verbs": ["list"], "resources": [
        "inferenceservices", "servingruntimes", "clusterservingruntimes", "llminferenceservices"]},
    {"apiGroups": ["jobset.x-k8s.io"], "resources": ["jobsets"], "verbs": ["list"]},
]


# --- seeding -------------------------------------------------------------------------------


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _created(obj: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(obj["metadata"]["creationTimestamp"])


class Seeder:
    """Creates objects as admin with kubectl, so any kind (CRs included) goes in as written."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result = self.cp.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(obj))
        assert result.returncode == 0, result.stderr
        created: dict[str, Any] = json.loads(result.stdout)
        return created

    def namespace(self, name: str) -> None:
        self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def running(self, pod: Mapping[str, Any], started: dt.datetime, restarted: dt.datetime | None = None) -> None:
        """Mark the Pod running since `started`, its containers since `restarted` (as a kubelet would)."""
        since = _stamp(restarted or started)
        statuses = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True,
                     "restartCount": int(restarted is not None), "state": {"running": {"startedAt": since}}}
                    for c in pod["spec"]["containers"]]
        status = {"phase": "Running", "startTime": _stamp(started), "containerStatuses": statuses}
        k8s_client.CoreV1Api(self.cp.api_client).patch_namespaced_pod_status(
            pod["metadata"]["name"], pod["metadata"]["namespace"], {"status": status})


def _owner(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _meta(name: str, namespace: str, owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    if owner is not None:
        meta["ownerReferences"] = [_owner(owner)]
    return meta


def _pod_spec(image: str = IMAGE, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "vllm", "image": image, "args": ["--model", "m"]}
    container.update(extra.pop("container", {}))
    return {"containers": [container], **extra}


def _template(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": name}}, "spec": _pod_spec(**spec)}


def deployment(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace),
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": _template(name, **spec)}}


def replicaset(name: str, owner: Mapping[str, Any]) -> dict[str, Any]:
    app = owner["metadata"]["name"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": _meta(name, owner["metadata"]["namespace"], owner),
            "spec": {"selector": {"matchLabels": {"app": app}}, "template": _template(app)}}


def pod(name: str, namespace: str, owner: Mapping[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, owner), "spec": _pod_spec(**spec)}


def service(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace),
            "spec": {"selector": {"app": "llm"}, "ports": [{"port": 8000}]}}


def configmap(name: str, namespace: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace), "data": dict(data)}


LWS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"},
    "spec": {
        "group": "leaderworkerset.x-k8s.io",
        "scope": "Namespaced",
        "names": {"plural": "leaderworkersets", "singular": "leaderworkerset", "kind": "LeaderWorkerSet",
                  "listKind": "LeaderWorkerSetList"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


def _wait_served(cp: ControlPlane, resource: str) -> None:
    deadline = time.monotonic() + 30
    while cp.kubectl("get", resource, "-A").returncode != 0:
        assert time.monotonic() < deadline, f"{resource} never served"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cp(assets_dir: str) -> Iterator[ControlPlane]:
    with ControlPlane(assets_dir) as plane:
        yield plane


@pytest.fixture(scope="module")
def seed(cp: ControlPlane) -> Seeder:
    return Seeder(cp)


@pytest.fixture(scope="module")
def seeded(cp: ControlPlane, seed: Seeder) -> dict[str, Any]:
    """The seeded cluster; returns what tests need to know about it."""
    for name in ("a", "b", "cfg", "paged", "locked"):
        seed.namespace(name)
    seed.create(LWS_CRD)
    _wait_served(cp, "leaderworkersets.leaderworkerset.x-k8s.io")

    # a: the vllm Service and the workloads it breaks; one pod runs since before it existed.
    llm = seed.create(deployment("llm", "a"))
    rs = seed.create(replicaset("llm-5d8f", llm))
    before = seed.create(pod("llm-5d8f-old", "a", owner=rs))
    restarted = seed.create(pod("llm-5d8f-restarted", "a", owner=rs))
    after = seed.create(pod("llm-5d8f-new", "a", owner=rs))
    seed.create(deployment("llm-nolinks", "a", enableServiceLinks=False))
    bench = seed.create({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta("bench", "a"),
                         "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": _template(
                             "bench", restartPolicy="Never")}}}})
    seed.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta("bench-29000", "a", bench),
                 "spec": {"template": _template("bench", restartPolicy="Never")}})
    seed.create(pod("debug", "a"))
    multi = seed.create({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                         "metadata": _meta("multi", "a"),
                         "spec": {"leaderWorkerTemplate": {"size": 2, "workerTemplate": _template("multi")}}})
    seed.create({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta("multi", "a", multi),
                 "spec": {"selector": {"matchLabels": {"app": "multi"}}, "serviceName": "multi",
                          "template": _template("multi")}})
    vllm = seed.create(service("vllm", "a"))
    since = _created(vllm)
    seed.running(before, since - dt.timedelta(hours=3))
    seed.running(restarted, since - dt.timedelta(hours=3), restarted=since + dt.timedelta(minutes=1))
    seed.running(after, since + dt.timedelta(minutes=1))

    # b: a vLLM Deployment and no Service.
    seed.create(deployment("llm", "b"))

    # cfg: VLLM_USE_V1=true (int("true") raises) from a ConfigMap, by key and by envFrom.
    seed.create(configmap("vllm-flags", "cfg", {"VLLM_USE_V1": "true"}))
    key_ref = {"configMapKeyRef": {"name": "vllm-flags", "key": "VLLM_USE_V1"}}
    seed.create(deployment("keyref", "cfg", image=OLD_IMAGE,
                           container={"env": [{"name": "VLLM_USE_V1", "valueFrom": key_ref}]}))
    seed.create(deployment("envfrom", "cfg", image=OLD_IMAGE,
                           container={"envFrom": [{"configMapRef": {"name": "vllm-flags"}}]}))
    seed.create({"apiVersion": "v1", "kind": "Secret", "metadata": _meta("vllm-secret-flags", "cfg"),
                 "stringData": {"VLLM_USE_V1": SECRET_VALUE}})
    secret_ref = {"secretKeyRef": {"name": "vllm-secret-flags", "key": "VLLM_USE_V1"}}
    seed.create(deployment("secretref", "cfg", image=OLD_IMAGE,
                           container={"env": [{"name": "VLLM_USE_V1", "valueFrom": secret_ref}]}))

    # paged: more ConfigMaps than a page holds.
    for index in range(23):
        seed.create(configmap(f"settings-{index:02d}", "paged", {"k": str(index)}))
    return {"service": vllm}


# --- running the CLI -----------------------------------------------------------------------


def audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def audit_json(capsys: pytest.CaptureFixture[str], cp: ControlPlane, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = audit(capsys, "--kubeconfig", cp.kubeconfig, "--format", "json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def problems(report: Mapping[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(f["rule"], f["object"]["kind"], f["object"]["namespace"], f["object"]["name"])
            for f in report["findings"]}


def messages(report: Mapping[str, Any], kind: str, namespace: str, name: str) -> list[str]:
    return [f["message"] for f in report["findings"]
            if (f["object"]["kind"], f["object"]["namespace"], f["object"]["name"]) == (kind, namespace, name)]


# --- tests ---------------------------------------------------------------------------------


def test_whole_cluster_reports_every_seeded_problem_and_nothing_else(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, report = audit_json(capsys, cp, "--all-namespaces")

    assert problems(report) == SEEDED
    assert code == 1
    assert all(f["file"] is None and f["line"] is None for f in report["findings"])


def test_collision_reported_on_service_and_workloads_of_its_namespace_only(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _, report = audit_json(capsys, cp, "--all-namespaces")

    collisions = {p[1:] for p in problems(report) if p[0] == "service-link-collision"}
    assert {("Service", "a", "vllm"), ("Deployment", "a", "llm")} <= collisions
    assert not any(namespace == "b" for _, namespace, _ in collisions)
    assert ("Deployment", "a", "llm-nolinks") not in collisions
    # Controlled objects are consulted, not reported: no ReplicaSet, Job, StatefulSet, owned Pod.
    assert {kind for kind, _, _ in collisions} == {"Service", "Deployment", "CronJob", "Pod", "LeaderWorkerSet"}
    assert ("Pod", "a", "llm-5d8f-old") not in collisions


def test_collision_with_pods_running_since_before_the_service_is_latent(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _, report = audit_json(capsys, cp, "--namespace", "a")

    created = seeded["service"]["metadata"]["creationTimestamp"]
    latent = (f"latent: 1 running pod started before Service a/vllm was created at {created}; "
              "nothing has crashed yet, every restart, drain or rollout will")
    assert any(m.endswith(latent) for m in messages(report, "Deployment", "a", "llm"))
    others = [m for f in report["findings"] if f["object"]["name"] != "llm" for m in [f["message"]]]
    assert not any("latent" in m for m in others)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "github"])
def test_every_report_format_to_a_file(
        cp: ControlPlane, seeded: dict[str, Any], fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / f"report.{fmt}"

    code, out, err = audit(capsys, "--kubeconfig", cp.kubeconfig, "-n", "a", "-f", fmt, "-o", str(target))

    assert (code, out, err) == (1, "", "")
    assert "service-link-collision" in target.read_text()


def test_pagination_finds_every_object(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, report = audit_json(capsys, cp, "--namespace", "paged", "--page-size", "5")

    assert code == 0
    assert report["summary"]["objects"] == 23
    assert report["summary"]["files"] == 0


def test_configmap_values_are_checked(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, report = audit_json(capsys, cp, "--namespace", "cfg")

    assert problems(report) == {("env-parse-error", "Deployment", "cfg", name) for name in ("keyref", "envfrom")}
    assert code == 1


def test_secrets_are_read_only_when_asked(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _, unread = audit_json(capsys, cp, "--namespace", "cfg", "--show-info")
    _, read = audit_json(capsys, cp, "--namespace", "cfg", "--read-secrets")

    assert ("env-unverified-source", "Deployment", "cfg", "secretref") in problems(unread)
    assert ("env-parse-error", "Deployment", "cfg", "secretref") in problems(read)


def test_secret_values_are_never_printed(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("text", "json"):
        code, out, err = audit(capsys, "--kubeconfig", cp.kubeconfig, "-n", "cfg", "--read-secrets", "-f", fmt)
        assert code == 1, err
        assert SECRET_VALUE not in out + err


def role(kind: str, name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": rules}


def binding(role: Mapping[str, Any], subject: Mapping[str, str]) -> dict[str, Any]:
    """A (Cluster)RoleBinding of `role` to `subject`."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": f"{role['kind']}Binding",
            "metadata": dict(role["metadata"]), "subjects": [dict(subject)],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role["kind"], "name": role["metadata"]["name"]}}


@pytest.fixture(scope="module")
def carol(cp: ControlPlane, seed: Seeder) -> str:
    """A kubeconfig for user carol, who may only get pods in namespace locked."""
    get_pods = role("Role", "get-pods", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], "locked")
    seed.create(get_pods)
    seed.create(binding(get_pods, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}))
    return cp.make_user("carol")


@pytest.mark.parametrize(("scope", "where"), [
    (("--namespace", "locked"), 'in namespace "locked"'),
    (("--all-namespaces",), "in all namespaces"),
])
def test_restricted_user_gets_the_missing_verb_and_resource(
        carol: str, scope: tuple[str, ...], where: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = audit(capsys, "--kubeconfig", carol, *scope)

    assert (code, out) == (2, "")
    assert err == (f'vllm-env-guard audit: cannot list services {where}: '
                   'user "carol" lacks "list" on "services" (403 Forbidden)\n')


def test_rejected_credentials_are_a_clear_error(
        cp: ControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = yaml.safe_load(Path(cp.kubeconfig).read_text())
    config["users"][0]["user"] = {"token": "not-a-token"}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))

    code, out, err = audit(capsys, "--kubeconfig", str(tmp_path / "kubeconfig"), "-n", "a")

    assert (code, out) == (2, "")
    assert err == ("vllm-env-guard audit: cannot discover the served API groups: "
                   "the API server rejected the credentials (401 Unauthorized)\n")


def test_unreachable_api_server_is_a_clear_error(
        cp: ControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(cp.kubeconfig).read_text().replace(cp.url, "https://127.0.0.1:1")
    (tmp_path / "kubeconfig").write_text(config)

    code, out, err = audit(capsys, "--kubeconfig", str(tmp_path / "kubeconfig"))

    assert (code, out) == (2, "")
    assert err.startswith("vllm-env-guard audit: cannot reach the API server at https://127.0.0.1:1 (kubeconfig ")
    assert "Traceback" not in err


def test_in_cluster_service_account_with_the_documented_rbac(
        cp: ControlPlane, seed: Seeder, seeded: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    seed.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "auditor", "namespace": "default"}})
    auditor = role("ClusterRole", "vllm-env-guard-audit", AUDIT_RULES)
    seed.create(auditor)
    seed.create(binding(auditor, {"kind": "ServiceAccount", "name": "auditor", "namespace": "default"}))
    token = cp.kubectl("create", "token", "auditor", "--namespace", "default")
    assert token.returncode == 0, token.stderr
    (tmp_path / "token").write_text(token.stdout.strip())
    (tmp_path / "namespace").write_text("a")
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_CERT_FILENAME", cp.ca_cert_path)
    monkeypatch.setattr(cluster_module, "SERVICE_ACCOUNT_NAMESPACE", str(tmp_path / "namespace"))
    host, port = cp.url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)

    deadline = time.monotonic() + 10  # the RBAC authorizer sees new bindings through a watch
    while (result := audit(capsys, "--all-namespaces", "--read-secrets", "--format", "json"))[0] == 2:
        assert time.monotonic() < deadline, result[2]
        time.sleep(0.2)
    assert problems(json.loads(result[1])) == SEEDED | {("env-parse-error", "Deployment", "cfg", "secretref")}
    # Without --namespace, the namespace comes from the service account's.
    _, out, _ = audit(capsys, "--format", "json")
    assert {f["object"]["namespace"] for f in json.loads(out)["findings"]} == {"a"}


# --- PolicyReports ---------------------------------------------------------------------------

REPORT_CRDS = Path(__file__).with_name("policyreport-crds.yaml")
MANAGED_BY = {"app.kubernetes.io/managed-by": "vllm-env-guard"}


def test_write_reports_without_the_crds_is_a_clear_error(
        cp: ControlPlane, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = audit(capsys, "--kubeconfig", cp.kubeconfig, "-n", "a", "--write-reports")

    assert (code, out) == (2, "")
    assert err == ("vllm-env-guard audit: the API server does not serve policyreports.wgpolicyk8s.io/v1alpha2: "
                   "install the PolicyReport CRDs (Kyverno and Policy Reporter ship them) or leave out "
                   "--write-reports\n")


@pytest.fixture(scope="module")
def report_crds(cp: ControlPlane) -> None:
    applied = cp.kubectl("apply", "-f", str(REPORT_CRDS))
    assert applied.returncode == 0, applied.stderr
    for resource in ("policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"):
        _wait_served(cp, resource)


def get_json(cp: ControlPlane, *args: str) -> dict[str, Any]:
    result = cp.kubectl("get", "-o", "json", *args)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def reported(report: Mapping[str, Any]) -> set[tuple[str, str, str, str]]:
    """(rule, kind, namespace, name) of each result of a PolicyReport."""
    return {(r["rule"], res["kind"], res["namespace"], res["name"]) for r in report["results"] for res in r["resources"]}


def test_policyreport_format_is_one_report_per_namespace_that_the_api_server_accepts(
        cp: ControlPlane, seeded: dict[str, Any], report_crds: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "reports.json"
    code, out, err = audit(capsys, "--kubeconfig", cp.kubeconfig, "-A", "-f", "policyreport", "-o", str(target))

    assert (code, out, err) == (1, "", "")
    listing = json.loads(target.read_text())
    reports = {r["metadata"]["namespace"]: r for r in listing["items"]}
    assert listing["kind"] == "List" and set(reports) == {"a", "cfg"}
    assert reported(reports["a"]) | reported(reports["cfg"]) == SEEDED
    for report in reports.values():
        assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and report["kind"] == "PolicyReport"
        assert report["metadata"]["name"] == "vllm-env-guard" and report["metadata"]["labels"] == MANAGED_BY
        results = report["results"]
        assert {r["policy"] for r in results} == {"vllm-env-guard"}
        assert report["summary"] == {"pass": 0, "fail": sum(r["result"] == "fail" for r in results),
                                     "warn": sum(r["result"] == "warn" for r in results), "error": 0, "skip": 0}
    prefix = next(r for r in reports["a"]["results"] if r["rule"] == "service-link-prefix")
    assert (prefix["severity"], prefix["result"], prefix["scored"]) == ("medium", "warn", False)
    collision = next(r for r in reports["a"]["results"]
                     if r["rule"] == "service-link-collision" and r["resources"][0]["kind"] == "Service")
    assert (collision["severity"], collision["result"], collision["scored"]) == ("high", "fail", True)
    assert collision["resources"] == [{"apiVersion": "v1", "kind": "Service", "namespace": "a", "name": "vllm",
                                       "uid": seeded["service"]["metadata"]["uid"]}]
    assert collision["properties"]["variable"] == "VLLM_PORT"
    # The API server validates them against the CRD's schema.
    accepted = cp.kubectl("create", "--dry-run=server", "-o", "name", "-f", str(target))
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.split() == ["policyreport.wgpolicyk8s.io/vllm-env-guard"] * 2


def test_write_reports_creates_updates_and_removes_stale_reports(
        cp: ControlPlane, seed: Seeder, report_crds: None, capsys: pytest.CaptureFixture[str]) -> None:
    seed.namespace("rep")
    vllm = seed.create(service("vllm", "rep"))
    seed.create(deployment("llm", "rep"))
    args = ("--kubeconfig", cp.kubeconfig, "-n", "rep", "--write-reports", "-f", "json")

    code, out, err = audit(capsys, *args)
    assert code == 1 and err == "vllm-env-guard audit: PolicyReports: 1 created, 0 updated, 0 deleted\n"
    report = get_json(cp, "policyreport", "vllm-env-guard", "-n", "rep")
    assert reported(report) == problems(json.loads(out))
    assert report["metadata"]["labels"] == MANAGED_BY
    service_result = next(r for r in report["results"] if r["resources"][0]["kind"] == "Service")
    assert service_result["resources"][0]["uid"] == vllm["metadata"]["uid"]

    # A new problem: the same report, updated.
    flags = seed.create(deployment("flags", "rep", image=OLD_IMAGE,
                                   container={"env": [{"name": "VLLM_USE_V1", "value": "true"}]}))
    code, out, err = audit(capsys, *args)
    assert code == 1 and err == "vllm-env-guard audit: PolicyReports: 0 created, 1 updated, 0 deleted\n"
    updated = get_json(cp, "policyreport", "vllm-env-guard", "-n", "rep")
    assert ("env-parse-error", "Deployment", "rep", "flags") in reported(updated) == problems(json.loads(out))
    assert updated["metadata"]["uid"] == report["metadata"]["uid"]

    # Every problem fixed: the report goes.
    for kind, name in (("service", vllm["metadata"]["name"]), ("deployment", flags["metadata"]["name"])):
        deleted = cp.kubectl("delete", kind, name, "-n", "rep", "--wait=false")
        assert deleted.returncode == 0, deleted.stderr
    code, out, err = audit(capsys, *args)
    assert code == 0 and json.loads(out)["findings"] == []
    assert err == "vllm-env-guard audit: PolicyReports: 0 created, 0 updated, 1 deleted\n"
    gone = cp.kubectl("get", "policyreport", "vllm-env-guard", "-n", "rep")
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_write_reports_leaves_a_report_that_is_not_ours_alone(
        cp: ControlPlane, seed: Seeder, report_crds: None, capsys: pytest.CaptureFixture[str]) -> None:
    seed.namespace("foreign")
    seed.create(service("vllm", "foreign"))
    theirs = seed.create({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
                          "metadata": {"name": "vllm-env-guard", "namespace": "foreign"},
                          "results": [{"policy": "someone-else", "result": "pass"}]})

    code, out, err = audit(capsys, "--kubeconfig", cp.kubeconfig, "-n", "foreign", "--write-reports")

    assert (code, out) == (2, "")
    assert err == ("vllm-env-guard audit: PolicyReport vllm-env-guard in namespace foreign exists and is not ours "
                   "(no label app.kubernetes.io/managed-by=vllm-env-guard): not overwritten\n")
    after = get_json(cp, "policyreport", "vllm-env-guard", "-n", "foreign")
    assert after["metadata"]["resourceVersion"] == theirs["metadata"]["resourceVersion"]
