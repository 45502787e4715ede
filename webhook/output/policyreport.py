"""`audit --format policyreport`: wgpolicyk8s.io/v1alpha2 PolicyReports, as Kyverno and Policy
Reporter read them. One PolicyReport per namespace with findings, one ClusterPolicyReport for
cluster-scoped objects; all named `vllm-env-guard` and labelled as ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from webhook.findings import Finding, ObjectRef, Severity
from webhook.output.report import TOOL_NAME

API_VERSION = "wgpolicyk8s.io/v1alpha2"
REPORT_NAME = TOOL_NAME
MANAGED_BY = ("app.kubernetes.io/managed-by", TOOL_NAME)
CATEGORY = "vLLM environment"
# The CRD's enums: severity critical|high|medium|low|info, result pass|fail|warn|error|skip.
_SEVERITY = {Severity.ERROR: "high", Severity.WARNING: "medium", Severity.INFO: "info"}
_RESULT = {Severity.ERROR: "fail", Severity.WARNING: "warn", Severity.INFO: "warn"}

Report = dict[str, Any]


def reports(findings: Iterable[Finding], uids: Mapping[ObjectRef, str], now: datetime) -> list[Report]:
    """The reports for `findings`, namespaces in order, the cluster report last; `uids` gives the
    uid of each object known (a resource reference carries it)."""
    groups: dict[str | None, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.object.namespace if f.object else None, []).append(f)
    order = sorted(groups, key=lambda namespace: (namespace is None, namespace or ""))
    return [report(namespace, groups[namespace], uids, now) for namespace in order]


def report(namespace: str | None, findings: Sequence[Finding], uids: Mapping[ObjectRef, str],
           now: datetime) -> Report:
    """A PolicyReport in `namespace` (None: the ClusterPolicyReport) holding `findings`."""
    results = [_result(f, uids, now) for f in findings]
    metadata: dict[str, Any] = {"name": REPORT_NAME, "labels": dict([MANAGED_BY])}
    if namespace is not None:
        metadata["namespace"] = namespace
    summary = {outcome: sum(r["result"] == outcome for r in results) for outcome in ("pass", "fail", "warn",
                                                                                      "error", "skip")}
    return {"apiVersion": API_VERSION, "kind": "PolicyReport" if namespace is not None else "ClusterPolicyReport",
            "metadata": metadata, "summary": summary, "results": results}


def _result(f: Finding, uids: Mapping[ObjectRef, str], now: datetime) -> dict[str, Any]:
    result: dict[str, Any] = {
        "source": TOOL_NAME,
        "policy": TOOL_NAME,
        "rule": f.rule,
        "category": CATEGORY,
        "severity": _SEVERITY[f.severity],
        "result": _RESULT[f.severity],
        "scored": f.severity is Severity.ERROR,  # a warn result is "not met, not scored"
        "message": f.message,
        "timestamp": {"seconds": int(now.timestamp()), "nanos": 0},
    }
    if f.object:
        resource = {key: value for key, value in f.object.to_json().items() if value}
        if uid := uids.get(f.object):
            resource["uid"] = uid
        result["resources"] = [resource]
    properties = {"hint": f.hint, "container": f.container, "variable": f.variable, "vllmVersion": f.vllm_version}
    if kept := {key: value for key, value in properties.items() if value}:
        result["properties"] = kept
    return result


def render(items: Sequence[Report]) -> str:
    """The reports as one `kind: List` (what `kubectl apply -f` takes)."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)}, indent=2) + "\n"
