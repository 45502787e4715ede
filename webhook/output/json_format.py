"""`--format json`: exactly the contract of spec/interfaces.md."""

from __future__ import annotations

import json

from webhook.output.report import TOOL_NAME, Report


def render(report: Report) -> str:
    document = {
        "tool": {"name": TOOL_NAME, "version": report.tool_version},
        "findings": [f.to_json() for f in report.findings],
        "workloads": [w.to_json() for w in report.workloads],
        "summary": report.summary(),
    }
    return json.dumps(document, indent=2) + "\n"
