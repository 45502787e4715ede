"""`--format github`: GitHub Actions workflow commands (`::error file=...,line=...::message`)."""

from __future__ import annotations

from webhook.findings import Severity
from webhook.output.report import Report

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """A command's message: `%`, CR and LF encoded as GitHub's runner decodes them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value: as data, plus `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(report: Report) -> str:
    lines = []
    for f in report.findings:
        properties = {}
        if f.file:
            properties["file"] = f.file
            if f.line:
                properties["line"] = str(f.line)
        properties["title"] = f.rule
        message = f.message if f.file or not f.object else f"{f.object}: {f.message}"
        if f.hint:
            message += f"\nhint: {f.hint}"
        props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
        lines.append(f"::{_COMMANDS[f.severity]} {props}::{escape_data(message)}\n")
    return "".join(lines)
