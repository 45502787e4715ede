"""The Helm chart: `helm lint`, and real properties of what `helm template` renders.

helm comes from $KUBEBUILDER_ASSETS/helm (scripts/envtest-assets builds it). Without it these
tests skip, unless VEG_REQUIRE_E2E=1 (CI), which makes a missing helm a failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from webhook.cli import build_parser
from webhook.config import load_config
from webhook.rules import CATALOG

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vllm-env-guard"
VAP = ROOT / "manifests" / "validating-admission-policy.yaml"
RELEASE = "guard"
NAMESPACE = "llm-guard"
READ_ONLY_VERBS = {"get", "list", "watch"}
WORKLOAD_RESOURCES = {
    "": {"services", "pods", "podtemplates"},
    "apps": {"deployments", "statefulsets", "daemonsets", "replicasets"},
    "batch": {"jobs", "cronjobs"},
    "leaderworkerset.x-k8s.io": {"leaderworkersets"},
    "ray.io": {"rayclusters", "rayservices", "rayjobs"},
    "serving.kserve.io": {"inferenceservices", "servingruntimes", "llminferenceservices"},
    "jobset.x-k8s.io": {"jobsets"},
}


def _helm_path() -> str:
    assets = os.environ.get("KUBEBUILDER_ASSETS", "")
    path = Path(assets) / "helm" if assets else None
    if path is None or not os.access(path, os.X_OK):
        reason = ("KUBEBUILDER_ASSETS is not set" if not assets else f"{assets}/helm is missing") + \
            "; run: export KUBEBUILDER_ASSETS=$(scripts/envtest-assets)"
        if os.environ.get("VEG_REQUIRE_E2E") == "1":
            pytest.fail(f"helm needed: {reason} (VEG_REQUIRE_E2E=1)", pytrace=False)
        pytest.skip(f"helm needed: {reason}")
    return str(path)


@pytest.fixture(scope="module")
def helm() -> str:
    return _helm_path()


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/veg-helm/cache", "HELM_CONFIG_HOME": "/tmp/veg-helm/config",
           "HELM_DATA_HOME": "/tmp/veg-helm/data"}
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, env=env, check=False)


def render(helm: str, *sets: str, release: str = RELEASE, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    argv = ["template", release, str(CHART), "--namespace", namespace]
    for item in sets:
        argv += ["--set", item]
    result = run_helm(helm, *argv)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


@pytest.fixture(scope="module")
def docs(helm: str) -> list[dict[str, Any]]:
    return render(helm)


@pytest.fixture(scope="module")
def webhook(docs: list[dict[str, Any]]) -> dict[str, Any]:
    config = only(docs, "ValidatingWebhookConfiguration")
    assert len(config["webhooks"]) == 1
    return config["webhooks"][0]


# --- lint ----------------------------------------------------------------------------------------


def test_helm_lint_strict(helm: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == "0.1.0" and str(chart["appVersion"]) == "0.1.0"


# --- the webhook configuration -------------------------------------------------------------------


def test_webhook_name_has_three_segments(webhook: dict[str, Any]) -> None:
    name = webhook["name"]
    assert len(name.split(".")) >= 3
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name)


def test_webhook_contract_fields(webhook: dict[str, Any]) -> None:
    assert webhook["sideEffects"] == "None"  # otherwise `kubectl --dry-run=server` breaks
    assert "v1" in webhook["admissionReviewVersions"]
    assert 1 <= webhook["timeoutSeconds"] <= 30
    assert webhook["timeoutSeconds"] == 5
    assert webhook["failurePolicy"] == "Ignore"  # safe default: an outage never blocks the cluster
    assert webhook["matchPolicy"] == "Equivalent"


def _excluded_namespaces(webhook: Mapping[str, Any]) -> set[str]:
    excluded: set[str] = set()
    for expr in webhook["namespaceSelector"].get("matchExpressions", []):
        if expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn":
            excluded |= set(expr["values"])
    return excluded


def test_namespace_selector_excludes_kube_system_and_own_namespace(webhook: dict[str, Any]) -> None:
    assert {"kube-system", NAMESPACE} <= _excluded_namespaces(webhook)


def test_rules_cover_services_pods_workloads_and_crds(webhook: dict[str, Any]) -> None:
    covered: dict[tuple[str, str], set[str]] = {}
    for rule in webhook["rules"]:
        assert rule["scope"] == "Namespaced"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                covered.setdefault((group, resource), set()).update(rule["operations"])
    for group, resources in WORKLOAD_RESOURCES.items():
        for resource in resources:
            ops = covered.get((group, resource))
            assert ops, f"{group or 'core'}/{resource} is not sent to the webhook"
            assert "CREATE" in ops
            if resource != "pods":
                assert "UPDATE" in ops, f"{resource}: UPDATE not covered"
    assert covered[("", "pods")] == {"CREATE"}
    assert not any("DELETE" in ops or "*" in ops for ops in covered.values())
    assert not any(r.endswith("/*") or "/" in r for _, r in covered), "subresources are not checked"


def test_client_config_points_at_the_chart_service(docs: list[dict[str, Any]], webhook: dict[str, Any]) -> None:
    service = only(docs, "Service")
    ref = webhook["clientConfig"]["service"]
    assert ref["name"] == service["metadata"]["name"]
    assert ref["namespace"] == NAMESPACE == service["metadata"]["namespace"]
    assert ref["path"] == "/validate"
    port = next(p for p in service["spec"]["ports"] if p["port"] == ref["port"])
    assert port["port"] == 443
    container = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[port["targetPort"]] == 8443


def test_ca_bundle_signs_the_serving_certificate(docs: list[dict[str, Any]], webhook: dict[str, Any]) -> None:
    secret = only(docs, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    ca = x509.load_pem_x509_certificate(base64.b64decode(webhook["clientConfig"]["caBundle"]))
    assert base64.b64decode(secret["data"]["ca.crt"]) == base64.b64decode(webhook["clientConfig"]["caBundle"])
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert cert.issuer == ca.subject
    public_key = ca.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                          cert.signature_hash_algorithm)  # type: ignore[arg-type]
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    service = webhook["clientConfig"]["service"]
    assert f"{service['name']}.{service['namespace']}.svc" in names
    assert base64.b64decode(secret["data"]["tls.key"]).startswith(b"-----BEGIN")


# --- naming: the chart must never inject VLLM_* variables itself ---------------------------------


def test_no_service_is_named_vllm(docs: list[dict[str, Any]]) -> None:
    services = [d["metadata"]["name"] for d in docs if d["kind"] == "Service"]
    assert services
    assert not [n for n in services if n.lower().startswith("vllm")]


@pytest.mark.parametrize(("release", "sets"), [
    (RELEASE, ("fullnameOverride=vllm",)),
    (RELEASE, ("fullnameOverride=vllm-guard",)),
    ("vllm", ()),
    ("vllm-env-guard", ()),  # the natural release name; the chart says what to use instead
])
def test_vllm_names_refuse_to_render(helm: str, release: str, sets: tuple[str, ...]) -> None:
    argv = ["template", release, str(CHART), "--namespace", NAMESPACE]
    for item in sets:
        argv += ["--set", item]
    result = run_helm(helm, *argv)
    assert result.returncode != 0
    assert 'starts with \\"vllm\\"' in result.stderr or 'starts with "vllm"' in result.stderr, result.stderr
    assert "fullnameOverride" in result.stderr


def test_release_name_containing_env_guard_is_used_as_is(helm: str) -> None:
    docs = render(helm, release="env-guard")
    assert only(docs, "Service")["metadata"]["name"] == "env-guard"


# --- RBAC ----------------------------------------------------------------------------------------


def test_rbac_is_read_only(docs: list[dict[str, Any]]) -> None:
    roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= READ_ONLY_VERBS, rule
            assert "*" not in rule.get("resources", []) and "*" not in rule.get("apiGroups", []), rule
            assert "secrets" not in rule.get("resources", []), "no access to Secrets"
    granted = {(g, r) for role in roles for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    for group, resources in WORKLOAD_RESOURCES.items():
        assert {(group, r) for r in resources} <= granted
    assert {("", "configmaps"), ("", "namespaces")} <= granted
    binding = only(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
    account = only(docs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]


def test_without_cluster_awareness_no_rbac_and_no_token(helm: str) -> None:
    docs = render(helm, "clusterAwareness.enabled=false")
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "--no-cluster" in pod["containers"][0]["args"]


# --- the Deployment ------------------------------------------------------------------------------


def test_deployment_runs_serve_with_tls_and_config(docs: list[dict[str, Any]]) -> None:
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = build_parser().parse_args(container["args"])  # the real CLI accepts them
    assert (args.command, args.port, args.tls_cert, args.tls_key, args.config) == (
        "serve", 8443, "/tls/tls.crt", "/tls/tls.key", "/config/config.yaml")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tls"]]["secret"]["secretName"] == only(docs, "Secret")["metadata"]["name"]
    assert volumes[mounts["/config"]]["configMap"]["name"] == only(docs, "ConfigMap")["metadata"]["name"]
    assert "subPath" not in json.dumps(container["volumeMounts"]), "subPath mounts never see ConfigMap updates"
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["scheme"]) == (path, "HTTPS")
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["vllm-env-guard.io/vllm"] == "false"


def test_config_map_is_a_valid_config_file(docs: list[dict[str, Any]], helm: str, tmp_path: Path) -> None:
    from webhook.server.policy import read_snapshot

    path = tmp_path / "config.yaml"
    path.write_text(only(docs, "ConfigMap")["data"]["config.yaml"])
    config = load_config(str(path), known_rules=CATALOG)
    assert config.server.get("mode") == "warn"
    assert read_snapshot(str(path)).policy.mode == "warn"  # what the server itself reads
    custom = render(helm, "mode=enforce", "config.vllmVersion=0.9.2", "config.rules.service-link-prefix=off",
                    "config.server.failureMode=deny", "config.server.mode=warn")
    path.write_text(only(custom, "ConfigMap")["data"]["config.yaml"])
    config = load_config(str(path), known_rules=CATALOG)
    assert config.vllm_version == "0.9.2"
    assert config.rules == {"service-link-prefix": None}
    policy = read_snapshot(str(path)).policy
    assert policy.mode == "enforce", "the chart's mode value wins over config.server.mode"
    assert policy.failure_mode == "deny"


def test_pod_disruption_budget_selects_the_pods(docs: list[dict[str, Any]]) -> None:
    pdb = only(docs, "PodDisruptionBudget")
    labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


# --- values --------------------------------------------------------------------------------------


def test_enforce_and_fail_closed_are_opt_in(helm: str) -> None:
    docs = render(helm, "mode=enforce", "webhook.failurePolicy=Fail", "webhook.timeoutSeconds=10")
    webhook = only(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert (webhook["failurePolicy"], webhook["timeoutSeconds"]) == ("Fail", 10)


@pytest.mark.parametrize(("setting", "message"), [
    ("webhook.timeoutSeconds=0", "between 1 and 30"),
    ("webhook.timeoutSeconds=31", "between 1 and 30"),
    ("mode=block", "enforce or warn"),
    ("webhook.failurePolicy=Maybe", "Fail or Ignore"),
    ("webhook.name=vllm.io", "three dot-separated segments"),
])
def test_invalid_values_fail_to_render(helm: str, setting: str, message: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", setting)
    assert result.returncode != 0
    assert message in result.stderr


def test_extra_excluded_namespaces(helm: str) -> None:
    docs = render(helm, "webhook.namespaceSelector.excludeNamespaces={kube-system,gpu-operator}")
    webhook = only(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert {"kube-system", "gpu-operator", NAMESPACE} <= _excluded_namespaces(webhook)


def test_cert_manager_mode(helm: str) -> None:
    cm_docs = render(helm, "certManager.enabled=true")
    assert not [d for d in cm_docs if d["kind"] == "Secret"], "cert-manager writes the Secret"
    certificate = only(cm_docs, "Certificate")
    issuer = only(cm_docs, "Issuer")
    config = only(cm_docs, "ValidatingWebhookConfiguration")
    annotation = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    assert "caBundle" not in config["webhooks"][0]["clientConfig"]
    assert certificate["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    pod = only(cm_docs, "Deployment")["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == certificate["spec"]["secretName"]
    service = only(cm_docs, "Service")["metadata"]["name"]
    assert f"{service}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    external = render(helm, "certManager.enabled=true", "certManager.issuerRef.name=corp-ca",
                      "certManager.issuerRef.kind=ClusterIssuer")
    assert not [d for d in external if d["kind"] == "Issuer"]
    assert only(external, "Certificate")["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}


# --- our own linter on our own chart -------------------------------------------------------------


def _lint_stdin(text: str) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run([sys.executable, "-m", "webhook", "lint", "-", "--format", "json"],
                            input=text, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"lint printed no JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.returncode, report, result.stderr


@pytest.mark.parametrize("sets", [(), ("certManager.enabled=true",), ("clusterAwareness.enabled=false",)])
def test_rendered_chart_passes_our_linter(helm: str, sets: tuple[str, ...]) -> None:
    argv = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for item in sets:
        argv += ["--set", item]
    rendered = run_helm(helm, *argv)
    assert rendered.returncode == 0, rendered.stderr
    code, report, stderr = _lint_stdin(rendered.stdout)
    problems = [f"{f['rule']} ({f['severity']}): {f['message']}" for f in report["findings"]]
    assert report["summary"]["errors"] == 0, problems
    assert code == 0, stderr
    assert problems == [], "the chart should give no warnings either"
    assert report["summary"]["objects"] >= 7


# --- manifests/ ----------------------------------------------------------------------------------


def test_install_yaml_is_current(helm: str) -> None:
    result = subprocess.run([str(ROOT / "scripts" / "render-manifests"), "--check"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "HELM": helm}, check=False)
    assert result.returncode == 0, f"run scripts/render-manifests\n{result.stdout[-4000:]}{result.stderr}"


def test_install_yaml_uses_cert_manager_and_holds_no_key() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace"
    assert "Certificate" in kinds
    assert "Secret" not in kinds, "a private key in git would be shared by every installation"
    namespace = docs[0]["metadata"]["name"]
    assert all(d["metadata"].get("namespace") in (None, namespace) for d in docs)
    assert not [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].startswith("vllm")]


def test_install_yaml_passes_our_linter() -> None:
    code, report, stderr = _lint_stdin((ROOT / "manifests" / "install.yaml").read_text())
    assert code == 0 and report["summary"]["errors"] == 0, report["findings"] or stderr


def _vap_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(VAP.read_text()) if d]


def test_validating_admission_policy_shape() -> None:
    policy, binding = _vap_docs()
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert policy["kind"] == "ValidatingAdmissionPolicy"
    assert binding["kind"] == "ValidatingAdmissionPolicyBinding"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"]) == ([""], ["services"])
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}


@pytest.mark.parametrize(("name", "allowed"), [
    ("vllm", False), ("vllm-dp-master", False), ("vllm-router", False),
    ("llm-api", True), ("my-vllm", True), ("vllmx", True), ("env-guard", True),
])
def test_validating_admission_policy_regex(name: str, allowed: bool) -> None:
    (validation,) = _vap_docs()[0]["spec"]["validations"]
    match = re.fullmatch(r"!object\.metadata\.name\.matches\('(.+)'\)", validation["expression"])
    assert match, validation["expression"]
    # RE2 and Python's re agree on this pattern (anchors, a group, '.', '*', '?').
    assert (re.search(match.group(1), name) is None) is allowed
