"""The chart, manifests/ and the ValidatingAdmissionPolicy against a real kube-apiserver.

Server-side dry runs for the chart as a whole (no controllers run here, and a live webhook
configuration pointing at a Service without pods would touch every other e2e test). The RBAC of
self-managed certificates is applied for real and checked with `kubectl auth can-i` as the
webhook's ServiceAccount. The ValidatingAdmissionPolicy is applied for real, because the API server
enforces it itself, and removed again at the end.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import skip_or_fail
from .controlplane import ControlPlane
from .test_webhook import free_port

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vllm-env-guard"
INSTALL = ROOT / "manifests" / "install.yaml"
VAP = ROOT / "manifests" / "validating-admission-policy.yaml"
RELEASE = "guard"
POLICY_WAIT = 60.0  # seconds for a new/removed policy to reach the API server's admission chain


def helm(assets_dir: str, control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    path = Path(assets_dir) / "helm"
    if not path.is_file():
        skip_or_fail(f"{path} is missing; run scripts/envtest-assets")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "KUBECONFIG": control_plane.kubeconfig,
           "HELM_CACHE_HOME": "/tmp/veg-helm/cache", "HELM_CONFIG_HOME": "/tmp/veg-helm/config",
           "HELM_DATA_HOME": "/tmp/veg-helm/data"}
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=120, env=env, check=False)


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def dump(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def apply_dry_run(control_plane: ControlPlane, text: str) -> subprocess.CompletedProcess[str]:
    return control_plane.kubectl("apply", "--dry-run=server", "-f", "-", input=text)


BASE_KINDS = ("deployment.apps", "service", "serviceaccount", "secret", "configmap",
              "clusterrole.rbac.authorization.k8s.io", "clusterrolebinding.rbac.authorization.k8s.io",
              "poddisruptionbudget.policy", "validatingwebhookconfiguration.admissionregistration.k8s.io")


@pytest.mark.parametrize(("sets", "kinds"), [
    ((), BASE_KINDS),
    (("certificates.mode=self-managed",), (*BASE_KINDS, "role.rbac.authorization.k8s.io",
                                           "rolebinding.rbac.authorization.k8s.io")),
    (("networkPolicy.enabled=true", "validatingAdmissionPolicy.enabled=true", "priorityClassName=system-cluster-critical",
      "nodeSelector.pool=system", "tolerations[0].operator=Exists"),
     (*BASE_KINDS, "networkpolicy.networking.k8s.io",
      "validatingadmissionpolicy.admissionregistration.k8s.io",
      "validatingadmissionpolicybinding.admissionregistration.k8s.io")),
])
def test_rendered_chart_server_dry_run(assets_dir: str, control_plane: ControlPlane, namespace: str,
                                       sets: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    argv = ["template", RELEASE, str(CHART), "--namespace", namespace]
    for item in sets:
        argv += ["--set", item]
    rendered = helm(assets_dir, control_plane, *argv)
    assert rendered.returncode == 0, rendered.stderr
    result = apply_dry_run(control_plane, rendered.stdout)
    assert result.returncode == 0, result.stderr
    for kind in kinds:
        assert f"{kind}/" in result.stdout and "(server dry run)" in result.stdout, (kind, result.stdout)


def test_rendered_chart_enforce_fail_closed_server_dry_run(assets_dir: str, control_plane: ControlPlane,
                                                           namespace: str) -> None:
    rendered = helm(assets_dir, control_plane, "template", RELEASE, str(CHART), "--namespace", namespace,
                    "--set", "mode=enforce", "--set", "webhook.failurePolicy=Fail",
                    "--set", "clusterAwareness.enabled=false")
    assert rendered.returncode == 0, rendered.stderr
    result = apply_dry_run(control_plane, rendered.stdout)
    assert result.returncode == 0, result.stderr


def test_install_yaml_server_dry_run_in_a_restricted_namespace(control_plane: ControlPlane) -> None:
    docs = documents(INSTALL.read_text())
    namespace_doc = docs[0]
    assert namespace_doc["kind"] == "Namespace"
    # The Namespace for real (namespaced objects cannot be dry-run into a namespace that does not
    # exist), labelled pod-security restricted as in the file.
    created = control_plane.kubectl("apply", "-f", "-", input=dump([namespace_doc]))
    assert created.returncode == 0, created.stderr
    # Self-managed certificates: nothing needs a CRD (no cert-manager).
    rest = docs[1:]
    assert len(rest) >= 10
    result = apply_dry_run(control_plane, dump(rest))
    assert result.returncode == 0, result.stderr
    # The Deployment's pod template meets the "restricted" Pod Security Standard.
    assert "PodSecurity" not in result.stderr, result.stderr


def _self_signed(common_name: str, dns_names: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def test_helm_install_dry_run_reuses_the_existing_certificate(assets_dir: str, control_plane: ControlPlane,
                                                              namespace: str) -> None:
    fullname = f"{RELEASE}-env-guard"
    cert, key = _self_signed(f"{fullname}.{namespace}.svc", [f"{fullname}.{namespace}.svc"])
    # As a previous install left it (with Helm's ownership marks, so Helm adopts it).
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": {"name": f"{fullname}-tls", "namespace": namespace,
                           "labels": {"app.kubernetes.io/managed-by": "Helm"},
                           "annotations": {"meta.helm.sh/release-name": RELEASE,
                                           "meta.helm.sh/release-namespace": namespace}},
              "data": {k: base64.b64encode(v).decode() for k, v in
                       (("ca.crt", cert), ("tls.crt", cert), ("tls.key", key))}}
    created = control_plane.kubectl("apply", "-f", "-", input=dump([secret]))
    assert created.returncode == 0, created.stderr
    result = helm(assets_dir, control_plane, "install", RELEASE, str(CHART), "--namespace", namespace,
                  "--dry-run=server")
    assert result.returncode == 0, result.stderr
    manifest = result.stdout.split("MANIFEST:", 1)[1].split("NOTES:", 1)[0]
    docs = documents(manifest)
    rendered_secret = next(d for d in docs if d["kind"] == "Secret")
    assert rendered_secret["data"] == secret["data"], "helm upgrade would rotate the certificate"
    webhook = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")["webhooks"][0]
    assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "mode:           warn" in notes
    assert f"kubectl delete validatingwebhookconfiguration {fullname}" in notes


# --- self-managed certificates: RBAC on the real API server ---------------------------------------


def _can_i(control_plane: ControlPlane, account: str, *args: str) -> bool:
    result = control_plane.kubectl("auth", "can-i", *args, "--as", account)
    assert result.stdout.strip() in ("yes", "no"), result.stdout + result.stderr
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize("create_secret", [True, False])
def test_self_managed_rbac_allows_only_its_secret_and_webhook(assets_dir: str, control_plane: ControlPlane,
                                                              namespace: str, create_secret: bool) -> None:
    release = f"rbac-{uuid.uuid4().hex[:6]}"  # cluster-scoped names must not clash between runs
    rendered = helm(assets_dir, control_plane, "template", release, str(CHART), "--namespace", namespace,
                    "--set", "certificates.mode=self-managed", "--set", "clusterAwareness.enabled=false",
                    "--set", f"certificates.selfManaged.createSecret={str(create_secret).lower()}")
    assert rendered.returncode == 0, rendered.stderr
    docs = documents(rendered.stdout)
    # The RBAC objects and the ServiceAccount for real (not the webhook configuration: see the top).
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                              "ClusterRoleBinding", "Secret")]
    applied = control_plane.kubectl("apply", "-f", "-", input=dump(rbac))
    assert applied.returncode == 0, applied.stderr
    try:
        fullname = f"{release}-env-guard"
        account = f"system:serviceaccount:{namespace}:{fullname}"
        secret = f"secret/{fullname}-tls"
        for verb in ("get", "update", "patch"):
            assert _can_i(control_plane, account, verb, secret, "-n", namespace), verb
            assert _can_i(control_plane, account, verb, f"validatingwebhookconfiguration/{fullname}"), verb
            assert not _can_i(control_plane, account, verb, "secret/other", "-n", namespace), verb
            assert not _can_i(control_plane, account, verb, "validatingwebhookconfiguration/other"), verb
        for verb in ("list", "watch", "delete"):
            assert not _can_i(control_plane, account, verb, "secrets", "-n", namespace), verb
        assert not _can_i(control_plane, account, "get", "secret/x", "-n", "default")
        # `create` cannot be limited by name: granted only when the server has to create the Secret.
        assert _can_i(control_plane, account, "create", "secrets", "-n", namespace) is not create_secret
        assert not _can_i(control_plane, account, "create", "validatingwebhookconfigurations")
        if create_secret:
            got = control_plane.kubectl("get", secret, "-n", namespace, "-o", "jsonpath={.type}")
            assert got.stdout == "Opaque", got.stderr
    finally:
        control_plane.kubectl("delete", "--ignore-not-found", "clusterrole,clusterrolebinding", f"{release}-env-guard-tls")


def _https_ok(port: int, host: str, ca_bundle: bytes) -> bool:
    """A TLS handshake with the server on 127.0.0.1:`port`, for `host`, verified against `ca_bundle`."""
    context = ssl.create_default_context(cadata=ca_bundle.decode())
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ssl.SSLError):
        return False


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_self_managed_server_runs_with_exactly_the_chart_rbac(assets_dir: str, control_plane: ControlPlane,
                                                              namespace: str, tmp_path: Path) -> None:
    """The server, started with the chart's own arguments as the chart's ServiceAccount (a token
    from the API server), fills the chart's empty Secret and the caBundle, and serves a certificate
    for the Service's name that the caBundle verifies."""
    release = f"sm-{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-env-guard"
    rendered = helm(assets_dir, control_plane, "template", release, str(CHART), "--namespace", namespace,
                    "--set", "certificates.mode=self-managed", "--set", "clusterAwareness.enabled=false",
                    # a live webhook configuration that no object matches: no request is ever sent to it
                    "--set", "webhook.objectSelector.matchLabels.vllm-env-guard\\.io/e2e-never=match")
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in documents(rendered.stdout) if d["kind"] not in ("Deployment", "PodDisruptionBudget")]
    applied = control_plane.kubectl("apply", "-f", "-", input=dump(docs))
    assert applied.returncode == 0, applied.stderr
    server: subprocess.Popen[bytes] | None = None
    try:
        token = control_plane.kubectl("create", "token", fullname, "-n", namespace, "--duration", "1h")
        assert token.returncode == 0, token.stderr
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "e2e", "cluster": {"server": control_plane.url,
                                                     "certificate-authority": control_plane.ca_cert_path}}],
            "users": [{"name": "sa", "user": {"token": token.stdout.strip()}}],
            "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": "sa"}}]}))
        config = tmp_path / "config.yaml"
        config.write_text(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["config.yaml"])
        deployment = next(d for d in documents(rendered.stdout) if d["kind"] == "Deployment")
        args = list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
        port, health_port = free_port(), free_port()
        for flag, value in (("--port", str(port)), ("--health-port", str(health_port)), ("--config", str(config))):
            args[args.index(flag) + 1] = value
        server = subprocess.Popen([sys.executable, "-m", "webhook", *args, "--kubeconfig", str(kubeconfig)],
                                  stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "wb"))

        def installed() -> bytes | None:
            got = control_plane.kubectl("get", "validatingwebhookconfiguration", fullname, "-o",
                                        "jsonpath={.webhooks[0].clientConfig.caBundle}")
            return base64.b64decode(got.stdout) if got.returncode == 0 and got.stdout else None

        _wait_until(lambda: server.poll() is not None or installed(), "the server set the caBundle")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        ca_bundle = installed()
        assert ca_bundle is not None
        keys = control_plane.kubectl("get", "secret", f"{fullname}-tls", "-n", namespace, "-o",
                                     "go-template={{range $k, $v := .data}}{{$k}} {{end}}")
        assert {"ca.crt", "tls.crt", "tls.key"} <= set(keys.stdout.split()), keys.stdout + keys.stderr
        _wait_until(lambda: _ready(health_port), "/readyz on the health port answers 200")
        assert _https_ok(port, f"{fullname}.{namespace}.svc", ca_bundle), "the caBundle does not verify the server"
        assert not _https_ok(port, "other.example.com", ca_bundle), "the certificate is for the Service only"
        log = (tmp_path / "serve.log").read_text()
        assert "forbidden" not in log.lower(), log[-3000:]
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        control_plane.kubectl("delete", "--ignore-not-found", "validatingwebhookconfiguration,clusterrole,clusterrolebinding",
                              fullname, f"{fullname}-tls")


def test_helm_upgrade_keeps_what_the_self_managed_server_wrote(assets_dir: str, control_plane: ControlPlane,
                                                                namespace: str) -> None:
    """The chart's Secret is empty and its webhook configuration has no caBundle: a `helm upgrade`
    must leave what the server wrote into both (Helm's three-way merge only patches what the
    chart's manifests changed)."""
    release = f"up-{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-env-guard"
    common = ["--namespace", namespace, "--set", "certificates.mode=self-managed",
              "--set", "webhook.objectSelector.matchLabels.vllm-env-guard\\.io/e2e-never=match"]
    installed = helm(assets_dir, control_plane, "install", release, str(CHART), *common)
    assert installed.returncode == 0, installed.stderr
    try:
        # What the server does (tests/e2e/test_self_managed_tls.py runs the real one).
        cert, key = _self_signed(f"{fullname}.{namespace}.svc", [f"{fullname}.{namespace}.svc"])
        data = {k: base64.b64encode(v).decode() for k, v in (("ca.crt", cert), ("tls.crt", cert), ("tls.key", key))}
        wrote = control_plane.kubectl("patch", "secret", f"{fullname}-tls", "-n", namespace, "--type", "merge",
                                      "-p", json.dumps({"data": data}))
        assert wrote.returncode == 0, wrote.stderr
        bundle = [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": data["ca.crt"]}]
        wrote = control_plane.kubectl("patch", "validatingwebhookconfiguration", fullname, "--type", "json",
                                      "-p", json.dumps(bundle))
        assert wrote.returncode == 0, wrote.stderr
        upgraded = helm(assets_dir, control_plane, "upgrade", release, str(CHART), *common, "--set", "mode=enforce",
                        "--set", "webhook.timeoutSeconds=7")
        assert upgraded.returncode == 0, upgraded.stderr
        secret = control_plane.kubectl("get", "secret", f"{fullname}-tls", "-n", namespace, "-o", "json")
        assert json.loads(secret.stdout)["data"] == data, "helm upgrade dropped the server's certificates"
        config = json.loads(control_plane.kubectl("get", "validatingwebhookconfiguration", fullname, "-o",
                                                  "json").stdout)
        webhook = config["webhooks"][0]
        assert webhook["timeoutSeconds"] == 7, "the upgrade did apply"
        assert webhook["clientConfig"]["caBundle"] == data["ca.crt"], "helm upgrade dropped the caBundle"
    finally:
        helm(assets_dir, control_plane, "uninstall", release, "--namespace", namespace)


# --- the ValidatingAdmissionPolicy ----------------------------------------------------------------


def _service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "llm"}, "ports": [{"port": 8000}]}}


def _create(control_plane: ControlPlane, namespace: str, name: str, *, dry_run: bool) -> subprocess.CompletedProcess[str]:
    args = ["create", "-n", namespace, "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    return control_plane.kubectl(*args, input=dump([_service(name)]))


def _wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + POLICY_WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {POLICY_WAIT}s waiting until {what}")


def _policy_name() -> str:
    return next(d for d in documents(VAP.read_text()) if d["kind"] == "ValidatingAdmissionPolicyBinding")["metadata"]["name"]


def _warned(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0 and "ValidatingAdmissionPolicy" in result.stderr and "Warning" in result.stderr


@contextlib.contextmanager
def _policy(control_plane: ControlPlane, namespace: str, *, deny: bool) -> Iterator[None]:
    """manifests/validating-admission-policy.yaml applied for real; with `deny`, its binding then
    switched to Deny with the command docs/install.md gives. Removed afterwards, and only then
    does this return, so no later test sees the policy."""
    dry = control_plane.kubectl("apply", "--dry-run=server", "-f", str(VAP))
    assert dry.returncode == 0, dry.stderr
    applied = control_plane.kubectl("apply", "-f", str(VAP))
    assert applied.returncode == 0, applied.stderr
    try:
        if deny:
            patched = control_plane.kubectl("patch", "validatingadmissionpolicybinding", _policy_name(),
                                            "--type", "merge", "-p", DENY_PATCH)
            assert patched.returncode == 0, patched.stderr
            _wait_until(lambda: _create(control_plane, namespace, "vllm-probe", dry_run=True).returncode != 0,
                        "the policy denies a Service named vllm-probe")
        else:
            _wait_until(lambda: _warned(_create(control_plane, namespace, "vllm-probe", dry_run=True)),
                        "the policy warns about a Service named vllm-probe")
        yield
    finally:
        control_plane.kubectl("delete", "--ignore-not-found", "-f", str(VAP))
        _wait_until(lambda: (lambda r: r.returncode == 0 and "ValidatingAdmissionPolicy" not in r.stderr)(
            _create(control_plane, namespace, "vllm-probe", dry_run=True)), "the policy is gone")


def _docs_deny_patch() -> str:
    """The `kubectl patch` payload docs/install.md gives for switching the binding to Deny."""
    text = (ROOT / "docs" / "install.md").read_text()
    match = re.search(r"kubectl patch validatingadmissionpolicybinding (\S+) --type merge -p '([^']+)'", text)
    assert match, "docs/install.md shows no switch to Deny"
    assert match.group(1) == _policy_name()
    return match.group(2)


DENY_PATCH = _docs_deny_patch()


def test_vap_warns_by_default(control_plane: ControlPlane, namespace: str) -> None:
    binding = next(d for d in documents(VAP.read_text()) if d["kind"] == "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == ["Warn", "Audit"]
    with _policy(control_plane, namespace, deny=False):
        result = _create(control_plane, namespace, "vllm", dry_run=False)
        assert _warned(result), result.stderr
        assert "VLLM_PORT=tcp://" in result.stderr and '"llm"' in result.stderr, result.stderr
        got = control_plane.kubectl("get", "service", "vllm", "-n", namespace, "-o", "name")
        assert got.stdout.strip() == "service/vllm", "Warn admits the Service"
        other = _create(control_plane, namespace, "llm-api", dry_run=False)
        assert other.returncode == 0 and "Warning" not in other.stderr, other.stderr


def test_vap_deny_refuses_new_services_named_vllm(control_plane: ControlPlane, namespace: str) -> None:
    existing = _create(control_plane, namespace, "vllm", dry_run=False)  # before the policy
    assert existing.returncode == 0, existing.stderr
    with _policy(control_plane, namespace, deny=True):
        for name in ("vllm-dp-master", "vllm-router"):
            result = _create(control_plane, namespace, name, dry_run=False)
            assert result.returncode != 0, f"Service {name} was admitted"
            assert "ValidatingAdmissionPolicy" in result.stderr and _policy_name() in result.stderr
            assert "denied request" in result.stderr or "Forbidden" in result.stderr, result.stderr
            prefix = name.upper().replace("-", "_")
            assert f"{prefix}_PORT=tcp://" in result.stderr, result.stderr  # messageExpression worked
            assert f'"llm{name[4:]}"' in result.stderr, result.stderr  # and suggests a name
        for name in ("llm-api", "my-vllm", "vllmx"):
            result = _create(control_plane, namespace, name, dry_run=False)
            assert result.returncode == 0, result.stderr
        # The Service that existed before: UPDATE and DELETE are not matched.
        labelled = control_plane.kubectl("label", "service", "vllm", "-n", namespace, "team=llm")
        assert labelled.returncode == 0, labelled.stderr
        got = control_plane.kubectl("get", "service", "vllm", "-n", namespace, "-o", "jsonpath={.metadata.labels.team}")
        assert got.stdout == "llm"
        deleted = control_plane.kubectl("delete", "service", "vllm", "-n", namespace, "--wait=false")
        assert deleted.returncode == 0, deleted.stderr
        # ... and once deleted, it cannot come back under that name.
        recreated = _create(control_plane, namespace, "vllm", dry_run=False)
        assert recreated.returncode != 0 and "ValidatingAdmissionPolicy" in recreated.stderr
