"""Human-readable output: `path:line: severity rule-id message`, a hint line, a summary line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import IO

from webhook.findings import Finding, Severity
from webhook.output.report import Report

_SEVERITY_COLORS = {Severity.ERROR: "1;31", Severity.WARNING: "33", Severity.INFO: "36"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(text: str) -> str:
    """Control characters (escape sequences from a manifest's values) shown, not sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def where(finding: Finding) -> str:
    """`path:line` (or `path`) for a file; the object (`Deployment llm/vllm`) when there is no file."""
    if finding.file:
        return f"{finding.file}:{finding.line}" if finding.line else finding.file
    return str(finding.object) if finding.object else "<input>"


def use_color(choice: str, stream: IO[str], environ: Mapping[str, str]) -> bool:
    """`--color always|never|auto`; auto: a terminal, NO_COLOR unset or empty (no-color.org), TERM not dumb."""
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def render(report: Report, *, color: bool = False, quiet: bool = False) -> str:
    """The report as text; `color` adds ANSI colours (see use_color); `quiet`: the summary line only."""
    lines = []
    for f in () if quiet else report.findings:
        severity = _paint(str(f.severity), _SEVERITY_COLORS[f.severity], color)
        lines.append(f"{_paint(_printable(where(f)), '1', color)}: {severity} {_paint(f.rule, '2', color)} "
                     f"{_printable(f.message)}")
        if f.hint:
            lines.append(f"  hint: {_printable(f.hint)}")
    s = report.summary()
    checked = f"{_plural(s['files'], 'file')} ({_plural(s['objects'], 'object')})" if s["files"] else _plural(
        s["objects"], "object")
    lines.append(_paint(f"{_plural(s['errors'], 'error')}, {_plural(s['warnings'], 'warning')}, "
                        f"{_plural(s['infos'], 'info')} in {checked}", "1", color))
    return "\n".join(lines) + "\n"
