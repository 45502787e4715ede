"""manifest-invalid: a document that is not valid YAML/JSON or not a Kubernetes object."""

from __future__ import annotations

from webhook.findings import Severity
from webhook.rules.base import Rule

RULE = Rule(
    id="manifest-invalid",
    severity=Severity.ERROR,
    summary="A document is not valid YAML/JSON or not a Kubernetes object.",
    rationale=(
        "A document that does not parse cannot be checked, and `kubectl apply` would reject it "
        "too. It is reported with its file and line; the other documents of the input are "
        "still checked."
    ),
    bad="apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed",
    good="apiVersion: v1\nkind: Service\nmetadata:\n  name: llm-api",
    fix="Fix the YAML at the reported line; every document needs `apiVersion` and `kind`.",
)
