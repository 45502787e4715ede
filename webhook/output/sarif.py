"""`--format sarif`: SARIF 2.1.0 (GitHub code scanning and other SARIF viewers)."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import urllib.parse
from typing import Any

from webhook.findings import Finding, ObjectRef, Severity
from webhook.output.report import INFORMATION_URI, TOOL_NAME, Report
from webhook.rules.base import Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": rule.fix},
        "helpUri": rule.help_uri,
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
    }


def _uri(path: str) -> str:
    """A file path as a URI reference: relative paths stay relative (to the repository root)."""
    if os.path.isabs(path):
        return pathlib.Path(path).as_uri()
    return urllib.parse.quote(path.replace(os.sep, "/"))


def _fingerprint(f: Finding) -> str:
    """Stable across runs and line shifts: rule, file, object, container and variable."""
    obj = f.object or ObjectRef(None, None, None, None)
    parts = (f.rule, f.file, obj.api_version, obj.kind, obj.namespace, obj.name, f.container, f.variable)
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()[:32]


def _location(f: Finding) -> dict[str, Any] | None:
    location: dict[str, Any] = {}
    if f.file:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file)}}
        if f.line:
            physical["region"] = {"startLine": f.line}
        location["physicalLocation"] = physical
    if f.object:
        qualified = "/".join(p for p in (f.object.namespace, f.object.kind, f.object.name) if p)
        logical = [{"name": f.object.name or "", "fullyQualifiedName": qualified, "kind": "resource"}]
        if f.container:
            logical.append({"name": f.container, "fullyQualifiedName": f"{qualified}/{f.container}",
                            "kind": "member"})
        location["logicalLocations"] = logical
    return location or None


def _result(f: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": f.rule}
    if f.rule in rule_index:
        result["ruleIndex"] = rule_index[f.rule]
    result["level"] = _LEVELS[f.severity]
    result["message"] = {"text": f"{f.message}\nhint: {f.hint}" if f.hint else f.message}
    location = _location(f)
    if location:
        result["locations"] = [location]
    result["partialFingerprints"] = {"vllmEnvGuard/v1": _fingerprint(f)}
    return result


def render(report: Report) -> str:
    rule_index = {rule.id: i for i, rule in enumerate(report.rules)}
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "version": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(rule) for rule in report.rules],
            }},
            "results": [_result(f, rule_index) for f in report.findings],
        }],
    }
    return json.dumps(log, indent=2) + "\n"
