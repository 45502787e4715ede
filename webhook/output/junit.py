"""`--format junit`: JUnit XML, a test suite per file (per object for `audit`), a test case per
(object, rule). Errors and warnings fail their test case; infos pass it and show in system-out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from webhook.findings import Finding, Severity
from webhook.output.report import TOOL_NAME, Report

# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _detail(f: Finding) -> str:
    return f"{f.severity}: {f.message}" + (f"\n  hint: {f.hint}" if f.hint else "")


def _testcase(suite: ET.Element, findings: list[Finding]) -> bool:
    """Add one test case for findings of one (object, rule); True when it fails."""
    first = findings[0]
    attrs = {"name": first.rule, "classname": _clean(str(first.object) if first.object else first.file or TOOL_NAME)}
    if first.file:
        attrs["file"] = _clean(first.file)
        if first.line:
            attrs["line"] = str(first.line)
    case = ET.SubElement(suite, "testcase", attrs)
    details = _clean("\n".join(_detail(f) for f in findings))
    failing = [f for f in findings if f.severity is not Severity.INFO]
    if failing:
        worst = max(failing, key=lambda f: f.severity.rank)
        failure = ET.SubElement(case, "failure", {"message": _clean(worst.message), "type": str(worst.severity)})
        failure.text = details
    else:
        ET.SubElement(case, "system-out").text = details
    return bool(failing)


def render(report: Report) -> str:
    groups: dict[str, dict[tuple[object, str], list[Finding]]] = {}
    for f in report.findings:
        suite_name = f.file or (str(f.object) if f.object else TOOL_NAME)
        groups.setdefault(suite_name, {}).setdefault((f.object, f.rule), []).append(f)
    root = ET.Element("testsuites", {"name": TOOL_NAME})
    total = total_failures = 0
    for name, cases in groups.items():
        suite = ET.SubElement(root, "testsuite", {"name": _clean(name)})
        failures = sum(_testcase(suite, findings) for findings in cases.values())
        suite.attrib.update(tests=str(len(cases)), failures=str(failures), errors="0", skipped="0")
        total += len(cases)
        total_failures += failures
    root.attrib.update(tests=str(total), failures=str(total_failures), errors="0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
