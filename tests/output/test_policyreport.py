"""`audit --format policyreport`: the documents, checked against the PolicyReport CRDs' schemas
(tests/e2e/policyreport-crds.yaml; the e2e tests have the real API server accept them)."""

from __future__ import annotations

import json
import pathlib
from datetime import UTC, datetime

import jsonschema
import pytest
import yaml

from webhook.findings import Finding, ObjectRef, Severity
from webhook.output import policyreport

CRDS = pathlib.Path(__file__).parents[1] / "e2e" / "policyreport-crds.yaml"
SCHEMAS = {doc["spec"]["names"]["kind"]: doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
           for doc in yaml.safe_load_all(CRDS.read_text())}
NOW = datetime(2026, 12, 1, 12, 0, 30, 250000, tzinfo=UTC)

DEPLOYMENT = ObjectRef("apps/v1", "Deployment", "llm", "vllm")
SERVICE = ObjectRef("v1", "Service", "llm", "vllm")
OTHER = ObjectRef("apps/v1", "Deployment", "b", "x")
CLUSTER = ObjectRef("serving.kserve.io/v1alpha1", "ClusterServingRuntime", None, "vllm-runtime")

FINDINGS = [
    Finding("env-parse-error", Severity.ERROR, "VLLM_USE_V1='true': int('true') raises", hint="use 1",
            object=DEPLOYMENT, container="vllm", variable="VLLM_USE_V1", vllm_version="0.8.1"),
    Finding("service-link-prefix", Severity.WARNING, "Service vllm injects VLLM_SERVICE_HOST", object=SERVICE),
    Finding("env-unverified-source", Severity.INFO, "VLLM_API_KEY comes from a Secret", object=OTHER),
    Finding("env-parse-error", Severity.ERROR, "VLLM_PORT='x'", object=CLUSTER, variable="VLLM_PORT"),
]
UIDS = {DEPLOYMENT: "uid-deploy", SERVICE: "uid-svc"}


def test_one_report_per_namespace_and_one_for_the_cluster() -> None:
    reports = policyreport.reports(FINDINGS, UIDS, NOW)

    assert [(r["kind"], r["metadata"].get("namespace")) for r in reports] == [
        ("PolicyReport", "b"), ("PolicyReport", "llm"), ("ClusterPolicyReport", None)]
    for report in reports:
        jsonschema.validate(report, SCHEMAS[report["kind"]])
        assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
        assert report["metadata"]["name"] == "vllm-env-guard"
        assert report["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "vllm-env-guard"}


def test_results_carry_rule_severity_outcome_resource_and_properties() -> None:
    llm = policyreport.reports(FINDINGS, UIDS, NOW)[1]

    parse, prefix = llm["results"]
    assert parse == {
        "source": "vllm-env-guard", "policy": "vllm-env-guard", "rule": "env-parse-error",
        "category": "vLLM environment", "severity": "high", "result": "fail", "scored": True,
        "message": "VLLM_USE_V1='true': int('true') raises",
        "timestamp": {"seconds": int(NOW.timestamp()), "nanos": 0},
        "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "llm", "name": "vllm",
                       "uid": "uid-deploy"}],
        "properties": {"hint": "use 1", "container": "vllm", "variable": "VLLM_USE_V1", "vllmVersion": "0.8.1"},
    }
    assert (prefix["severity"], prefix["result"], prefix["scored"]) == ("medium", "warn", False)
    assert "properties" not in prefix
    assert llm["summary"] == {"pass": 0, "fail": 1, "warn": 1, "error": 0, "skip": 0}


def test_info_findings_and_objects_without_a_known_uid() -> None:
    b, _, cluster = policyreport.reports(FINDINGS, UIDS, NOW)

    (info,) = b["results"]
    assert (info["severity"], info["result"]) == ("info", "warn")
    assert info["resources"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "b", "name": "x"}]
    assert cluster["results"][0]["resources"] == [
        {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime", "name": "vllm-runtime"}]


@pytest.mark.parametrize("findings", [[], FINDINGS])
def test_render_is_a_kubectl_list(findings: list[Finding]) -> None:
    listing = json.loads(policyreport.render(policyreport.reports(findings, UIDS, NOW)))
    assert (listing["apiVersion"], listing["kind"]) == ("v1", "List")
    assert len(listing["items"]) == (3 if findings else 0)
