"""`vllm-env-guard explain NAME=VALUE ...`: what vLLM does with each value, and which rules fire."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webhook.cli import UsageError, write_stdout
from webhook.findings import Severity
from webhook.registry import bundled_versions, load_registry, resolve
from webhook.rules import hooks
from webhook.rules.subjects import Target, ValueSubject


@dataclass
class Explanation:
    """One argument: the subject the value rules saw, and what they said."""

    subject: ValueSubject
    findings: list[tuple[str, Severity, str, str]]  # (rule id, severity, message, hint)

    def result(self) -> dict[str, Any] | None:
        """vLLM's value (repr and type) or exception; None for a name that is not a registry key."""
        subject = self.subject
        var = subject.target.registry.get(subject.name)
        if var is None:
            return None
        outcome = subject.outcome(var)
        if outcome.error:
            return {"error": outcome.error, "message": subject.redact(outcome.message or "")}
        return {"value": subject.redact(repr(outcome.value)), "type": type(outcome.value).__name__}

    def to_json(self) -> dict[str, Any]:
        subject = self.subject
        raw = "<redacted>" if subject.raw is not None and subject.secret else subject.raw
        return {"name": subject.name, "raw": raw, "vllm_version": subject.target.version,
                "result": self.result(), "findings": [rule for rule, _, _, _ in self.findings]}

    @property
    def failed(self) -> bool:
        """Whether an error-level rule fired (vLLM raises on the value, or rejects it)."""
        return any(severity is Severity.ERROR for _, severity, _, _ in self.findings)


def parse_settings(settings: Sequence[str]) -> list[tuple[str, str | None]]:
    """`NAME=VALUE` and `NAME` (unset) arguments; each NAME once, as they form one environment."""
    parsed: dict[str, str | None] = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not name or any(c.isspace() for c in name):
            raise UsageError(f"{item!r} is not NAME=VALUE or NAME")
        if name in parsed:
            raise UsageError(f"{name} is given twice: its arguments form one environment, so each NAME "
                             "may appear once (run explain again for another value)")
        parsed[name] = value if sep else None
    return list(parsed.items())


def explain(settings: Sequence[tuple[str, str | None]], vllm_version: str | None) -> list[Explanation]:
    """Evaluate every setting in the one environment they form (NAME alone: unset)."""
    try:
        resolution = resolve(bundled_versions(), explicit=vllm_version)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = Target(load_registry(resolution.version), resolution)
    env = {name: value for name, value in settings if value is not None}
    explanations = []
    for name, raw in settings:
        subject = ValueSubject(name=name, raw=raw, target=target, env=env, source="argument",
                               origin="the command line")
        found = [(rule.id, hit.severity or rule.severity, hit.message, hit.hint) for rule, check in hooks("check_value")
                 for hit in check(subject)]  # type: ignore[operator]
        explanations.append(Explanation(subject, found))
    return explanations


def render_text(explanations: Sequence[Explanation]) -> str:
    lines = []
    for e in explanations:
        subject, target = e.subject, e.subject.target
        lines.append(f"{subject.name}={subject.shown()}  (vLLM {target.version}: {target.resolution.reason})")
        var, result = target.registry.get(subject.name), e.result()
        if var is None:
            readers = target.readers(subject.name)
            lines.append("  not a registry variable"
                         + (f"; read by {', '.join(v.name for v in readers)}" if readers else ""))
        else:
            lines.append(f"  parser: {var.expression}")
            if result and "error" in result:
                lines.append(f"  vLLM raises {result['error']}: {result['message']}")
            elif result:
                lines.append(f"  vLLM gets {result['value']} ({result['type']})")
        for rule, _, message, hint in e.findings:
            lines.append(f"  {rule}: {message}")
            if hint:
                lines.append(f"    hint: {hint}")
    return "\n".join(lines) + "\n"


def run_explain(args: argparse.Namespace) -> int:
    """Exit 1 when vLLM would fail on any of the values (an error-level finding), else 0."""
    explanations = explain(parse_settings(args.settings), args.vllm_version)
    if args.format == "json":
        write_stdout(json.dumps([e.to_json() for e in explanations], indent=2) + "\n")
    else:
        write_stdout(render_text(explanations))
    return 1 if any(e.failed for e in explanations) else 0
