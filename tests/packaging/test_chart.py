"""The Helm chart: `helm lint`, and real properties of what `helm template` renders.

helm comes from $KUBEBUILDER_ASSETS/helm (scripts/envtest-assets builds it). Without it these
tests skip, unless VEG_REQUIRE_E2E=1 (CI), which makes a missing helm a failure.
"""

from __future__ import annotations

import base64
import datetime
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


def template(helm: str, *sets: str, release: str = RELEASE, namespace: str = NAMESPACE) -> subprocess.CompletedProcess[str]:
    argv = ["template", release, str(CHART), "--namespace", namespace]
    for item in sets:
        argv += ["--set", item]
    return run_helm(helm, *argv)


def render(helm: str, *sets: str, release: str = RELEASE, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    result = template(helm, *sets, release=release, namespace=namespace)
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
    assert (args.command, args.port, args.tls_cert, args.tls_key, args.config, args.health_port) == (
        "serve", 8443, "/tls/tls.crt", "/tls/tls.key", "/config/config.yaml", 8080)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tls"]]["secret"]["secretName"] == only(docs, "Secret")["metadata"]["name"]
    assert volumes[mounts["/config"]]["configMap"]["name"] == only(docs, "ConfigMap")["metadata"]["name"]
    assert "subPath" not in json.dumps(container["volumeMounts"]), "subPath mounts never see ConfigMap updates"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443, "health": 8080}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == (path, "health", "HTTP")
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in only(docs, "Service")["spec"]["ports"]}
    assert service_ports["health"] == (8080, "health"), "Prometheus scrapes /metrics through the Service"
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


# --- values.schema.json ---------------------------------------------------------------------------

SCHEMA_ERROR = "values don't meet the specifications of the schema"


@pytest.mark.parametrize(("setting", "where", "message"), [
    ("replicas=two", "/replicas", "want integer"),
    ("replica=3", "", "'replica' not allowed"),
    ("replicas=0", "/replicas", "minimum"),
    ("webhook.namespaceSelector.excludeNamespaces=null", "/webhook/namespaceSelector", "excludeNamespaces"),
    ("webhook.namespaceSelector.excludeNamespace={a}", "/webhook/namespaceSelector", "'excludeNamespace' not allowed"),
    ("webhook.timeoutSeconds=0", "/webhook/timeoutSeconds", "minimum"),
    ("webhook.timeoutSeconds=31", "/webhook/timeoutSeconds", "maximum"),
    ("mode=block", "/mode", "'warn', 'enforce'"),
    ("webhook.failurePolicy=Maybe", "/webhook/failurePolicy", "'Ignore', 'Fail'"),
    ("webhook.name=vllm.io", "/webhook/name", "does not match pattern"),
    ("certificates.mode=manual", "/certificates/mode", "'helm', 'cert-manager', 'self-managed'"),
    ("certificates.selfManaged.certificateValidity=1y", "/certificates/selfManaged/certificateValidity", "pattern"),
    ("certManager.enabled=true", "", "'certManager' not allowed"),  # the old key says so instead of being ignored
    ("healthPort=80000", "/healthPort", "maximum"),
    ("validatingAdmissionPolicy.validationActions={Block}", "/validatingAdmissionPolicy/validationActions/0",
     "'Deny', 'Warn', 'Audit'"),
    ("image.digest=latest", "/image/digest", "pattern"),
])
def test_schema_refuses_bad_values(helm: str, setting: str, where: str, message: str) -> None:
    result = template(helm, setting)
    assert result.returncode != 0, f"{setting} rendered"
    assert SCHEMA_ERROR in result.stderr, result.stderr  # Helm's schema check, not a template crash
    assert f"at '{where}'" in result.stderr and message in result.stderr, result.stderr


@pytest.mark.parametrize(("setting", "message"), [
    ("healthPort=8443", "healthPort must differ from 8443"),
    ("validatingAdmissionPolicy.validationActions={Deny,Warn}", "Deny and Warn cannot be combined"),
])
def test_relations_between_values_fail_clearly(helm: str, setting: str, message: str) -> None:
    result = template(helm, setting)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_schema_is_draft_07_and_closes_our_objects() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    import jsonschema

    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(values)  # the defaults are valid
    assert set(schema["properties"]) - {"global"} == set(values), "every value is described, and only those"

    def closed(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path or '/'} is open"
            for key, child in node["properties"].items():
                closed(child, f"{path}/{key}")

    closed(schema, "")


def test_extra_excluded_namespaces(helm: str) -> None:
    docs = render(helm, "webhook.namespaceSelector.excludeNamespaces={kube-system,gpu-operator}")
    webhook = only(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert {"kube-system", "gpu-operator", NAMESPACE} <= _excluded_namespaces(webhook)


# --- certificates ----------------------------------------------------------------------------------


def _by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_cert_manager_mode_is_a_ca_issuer_chain(helm: str) -> None:
    docs = render(helm, "certificates.mode=cert-manager")
    assert not [d for d in docs if d["kind"] == "Secret"], "cert-manager writes the Secrets"
    issuers = _by_name(docs, "Issuer")
    certificates = _by_name(docs, "Certificate")
    fullname = f"{RELEASE}-env-guard"
    # self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate
    assert issuers[f"{fullname}-selfsigned"]["spec"] == {"selfSigned": {}}
    ca = certificates[f"{fullname}-ca"]["spec"]
    assert ca["isCA"] is True and ca["issuerRef"] == {"name": f"{fullname}-selfsigned", "kind": "Issuer"}
    assert ca["privateKey"]["rotationPolicy"] == "Never", "a renewed CA keeps its key: old leaves still verify"
    assert issuers[f"{fullname}-ca"]["spec"] == {"ca": {"secretName": ca["secretName"]}}
    serving = certificates[fullname]["spec"]
    assert serving["issuerRef"] == {"name": f"{fullname}-ca", "kind": "Issuer"}
    assert "isCA" not in serving
    # The caBundle comes from the CA, so renewing the serving certificate leaves it unchanged.
    config = only(docs, "ValidatingWebhookConfiguration")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{fullname}-ca"
    assert "caBundle" not in config["webhooks"][0]["clientConfig"]
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == serving["secretName"]
    service = only(docs, "Service")["metadata"]["name"]
    assert f"{service}.{NAMESPACE}.svc" in serving["dnsNames"]
    assert (serving["duration"], serving["renewBefore"]) == ("2160h", "720h")


def test_cert_manager_mode_with_your_own_issuer(helm: str) -> None:
    docs = render(helm, "certificates.mode=cert-manager", "certificates.certManager.issuerRef.name=corp-ca",
                  "certificates.certManager.issuerRef.kind=ClusterIssuer")
    assert not [d for d in docs if d["kind"] == "Issuer"]
    serving = only(docs, "Certificate")
    assert serving["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}
    annotation = only(docs, "ValidatingWebhookConfiguration")["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/{serving['metadata']['name']}"


@pytest.fixture(scope="module")
def self_managed(helm: str) -> list[dict[str, Any]]:
    return render(helm, "certificates.mode=self-managed", "certificates.selfManaged.certificateValidity=30d",
                  "certificates.selfManaged.renewBefore=10d")


def test_self_managed_mode_runs_the_server_with_its_flags(self_managed: list[dict[str, Any]]) -> None:
    pod = only(self_managed, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = build_parser().parse_args(container["args"])  # the real CLI accepts them
    fullname = f"{RELEASE}-env-guard"
    assert args.self_managed_tls == (NAMESPACE, f"{fullname}-tls")
    assert args.webhook_configuration == only(self_managed, "ValidatingWebhookConfiguration")["metadata"]["name"]
    assert args.tls_hosts == (fullname, f"{fullname}.{NAMESPACE}", f"{fullname}.{NAMESPACE}.svc",
                              f"{fullname}.{NAMESPACE}.svc.cluster.local")
    assert (args.certificate_validity, args.renew_before) == (datetime.timedelta(days=30), datetime.timedelta(days=10))
    assert args.tls_cert is None and args.tls_key is None
    assert "tls" not in {v["name"] for v in pod["volumes"]}, "certificates come from the API, not a mount"
    assert pod["automountServiceAccountToken"] is True
    config = only(self_managed, "ValidatingWebhookConfiguration")
    assert "caBundle" not in config["webhooks"][0]["clientConfig"], "the server fills it in"
    assert "annotations" not in config["metadata"]
    assert not [d for d in self_managed if d["apiVersion"].startswith("cert-manager.io/")]


def test_self_managed_secret_is_created_empty(self_managed: list[dict[str, Any]]) -> None:
    secret = only(self_managed, "Secret")
    assert secret["metadata"]["name"] == f"{RELEASE}-env-guard-tls"
    assert secret["type"] == "Opaque" and "data" not in secret, "the chart never writes key material"


def _rules(docs: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return _by_name(docs, kind)[name]["rules"]


def test_self_managed_rbac_is_limited_to_its_secret_and_webhook(self_managed: list[dict[str, Any]],
                                                                helm: str) -> None:
    fullname = f"{RELEASE}-env-guard"
    (secret_rule,) = _rules(self_managed, "Role", f"{fullname}-tls")
    assert secret_rule == {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [f"{fullname}-tls"],
                           "verbs": ["get", "update", "patch"]}
    (webhook_rule,) = _rules(self_managed, "ClusterRole", f"{fullname}-tls")
    assert webhook_rule == {"apiGroups": ["admissionregistration.k8s.io"],
                            "resources": ["validatingwebhookconfigurations"], "resourceNames": [fullname],
                            "verbs": ["get", "update", "patch"]}
    account = only(self_managed, "ServiceAccount")["metadata"]["name"]
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        binding = _by_name(self_managed, kind)[f"{fullname}-tls"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    # Without the chart's Secret the server must create it: `create` cannot be limited by name.
    docs = render(helm, "certificates.mode=self-managed", "certificates.selfManaged.createSecret=false")
    assert not [d for d in docs if d["kind"] == "Secret"]
    rules = _rules(docs, "Role", f"{fullname}-tls")
    assert rules[1] == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    # Cluster awareness off: still a token, for the certificate; still no read access to the cluster.
    docs = render(helm, "certificates.mode=self-managed", "clusterAwareness.enabled=false")
    assert only(docs, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert set(_by_name(docs, "ClusterRole")) == {f"{fullname}-tls"}


# --- options: monitoring, network policy, scheduling ---------------------------------------------------


def test_service_monitor_scrapes_the_health_port(helm: str, docs: list[dict[str, Any]]) -> None:
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"], "off by default"
    rendered = render(helm, "serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom")
    monitor = only(rendered, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    service = only(rendered, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == ("health", "/metrics", "http")
    assert "health" in {p["name"] for p in service["spec"]["ports"]}


def test_network_policy_admits_the_webhook_and_health_ports(helm: str, docs: list[dict[str, Any]]) -> None:
    assert not [d for d in docs if d["kind"] == "NetworkPolicy"], "off by default"
    rendered = render(helm, "networkPolicy.enabled=true",
                      "networkPolicy.healthFrom[0].namespaceSelector.matchLabels.name=monitoring")
    policy = only(rendered, "NetworkPolicy")["spec"]
    labels = only(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    webhook_rule, health_rule = policy["ingress"]
    assert webhook_rule == {"ports": [{"port": "https", "protocol": "TCP"}]}, "any source may call the webhook"
    assert health_rule["ports"] == [{"port": "health", "protocol": "TCP"}]
    assert health_rule["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]


def test_scheduling_options(helm: str) -> None:
    rendered = render(helm, "priorityClassName=system-cluster-critical", "nodeSelector.pool=system",
                      "tolerations[0].key=dedicated", "tolerations[0].operator=Exists",
                      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                      ".nodeSelectorTerms[0].matchExpressions[0].key=pool",
                      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                      ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists")
    pod = only(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "pool", "operator": "Exists"}]}]


# --- our own linter on our own chart -------------------------------------------------------------


def _lint_stdin(text: str) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run([sys.executable, "-m", "webhook", "lint", "-", "--format", "json"],
                            input=text, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"lint printed no JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.returncode, report, result.stderr


@pytest.mark.parametrize("sets", [(), ("certificates.mode=cert-manager",), ("certificates.mode=self-managed",),
                                  ("clusterAwareness.enabled=false",),
                                  ("serviceMonitor.enabled=true", "networkPolicy.enabled=true",
                                   "validatingAdmissionPolicy.enabled=true")])
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


def test_install_yaml_is_self_managed_and_holds_no_key() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace"
    assert not [d for d in docs if d["apiVersion"].startswith("cert-manager.io/")], "no cert-manager needed"
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert len(secrets) == 1 and "data" not in secrets[0], "a private key in git would be shared by every installation"
    args = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--self-managed-tls" in args
    namespace = docs[0]["metadata"]["name"]
    assert all(d["metadata"].get("namespace") in (None, namespace) for d in docs)
    assert not [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].startswith("vllm")]


def test_install_yaml_passes_our_linter() -> None:
    code, report, stderr = _lint_stdin((ROOT / "manifests" / "install.yaml").read_text())
    assert code == 0 and report["summary"]["errors"] == 0, report["findings"] or stderr


def _vap_docs() -> list[dict[str, Any]]:
    """manifests/validating-admission-policy.yaml: the policy and its binding."""
    return [d for d in yaml.safe_load_all(VAP.read_text()) if d]


def test_validating_admission_policy_shape(helm: str, docs: list[dict[str, Any]]) -> None:
    assert not [d for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")], "off in the chart by default"
    policy, binding = _vap_docs()
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert policy["kind"] == "ValidatingAdmissionPolicy"
    assert binding["kind"] == "ValidatingAdmissionPolicyBinding"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Warn", "Audit"], "warn first, as the webhook does"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"]) == ([""], ["services"])
    assert rule["operations"] == ["CREATE"], "existing Services stay editable and deletable"
    chart = render(helm, "validatingAdmissionPolicy.enabled=true", "validatingAdmissionPolicy.validationActions={Deny}")
    assert only(chart, "ValidatingAdmissionPolicy")["spec"] == policy["spec"], "manifests/ is the chart's policy"
    assert only(chart, "ValidatingAdmissionPolicyBinding")["spec"]["validationActions"] == ["Deny"]


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
