"""`vllm-env-guard explain NAME=VALUE ...`: what vLLM does with each value, and which rules fire."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webhook.cli import UsageError
from webhook.registry import bundled_versions, load_registry, resolve
from webhook.rules import hooks
from webhook.rules.subjects import Target, ValueSubject


@dataclass
class Explanation:
    """One argument: the subject the value rules saw, and what they said."""

    subject: ValueSubject
    findings: list[tuple[str, str, str]]  # (rule id, message, hint)

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
                "result": self.result(), "findings": [rule for rule, _, _ in self.findings]}


def parse_settings(settings: Sequence[str]) -> list[tuple[str, str | None]]:
    parsed = []
    for item in settings:
        name, sep, value = item.partition("=")
        if not name or any(c.isspace() for c in name):
            raise UsageError(f"{item!r} is not NAME=VALUE or NAME")
        parsed.append((name, value if sep else None))
    return parsed


def explain(settings: Sequence[tuple[str, str | None]], vllm_version: str | None) -> list[Explanation]:
    """Evaluate every setting in one environment made of all of them (later arguments win)."""
    try:
        resolution = resolve(bundled_versions(), explicit=vllm_version)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = Target(load_registry(resolution.version), resolution)
    env: dict[str, str] = {}
    for name, value in settings:  # NAME alone unsets
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    explanations = []
    for name, raw in settings:
        subject = ValueSubject(name=name, raw=raw, target=target, env=env, source="argument",
                               origin="the command line")
        found = [(rule.id, hit.message, hit.hint) for rule, check in hooks("check_value")
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
        for rule, message, hint in e.findings:
            lines.append(f"  {rule}: {message}")
            if hint:
                lines.append(f"    hint: {hint}")
    return "\n".join(lines) + "\n"


def run_explain(args: argparse.Namespace) -> int:
    explanations = explain(parse_settings(args.settings), args.vllm_version)
    if args.format == "json":
        print(json.dumps([e.to_json() for e in explanations], indent=2))
    else:
        print(render_text(explanations), end="")
    return 0
