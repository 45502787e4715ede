"""`vllm-env-guard explain NAME=VALUE ...`: what vLLM does with each value, and which rules fire."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webhook.cli import UsageError
from webhook.detect import is_credential
from webhook.registry import bundled_versions, load_registry, resolve
from webhook.rules import hooks
from webhook.rules.subjects import Target, ValueSubject


@dataclass
class Explanation:
    name: str
    raw: str | None
    target: Target
    findings: list[tuple[str, str, str]]  # (rule id, message, hint)

    @property
    def var(self):  # noqa: ANN201 - Variable | None
        return self.target.registry.get(self.name)

    def result(self) -> dict[str, Any] | None:
        var = self.var
        if var is None:
            return None
        outcome = self.target.registry.evaluate(var, self._env)
        if outcome.error:
            return {"error": outcome.error, "message": self._redact(outcome.message or "")}
        return {"value": self._redact(repr(outcome.value)), "type": type(outcome.value).__name__}

    _env: dict[str, str] = None  # type: ignore[assignment]

    def _redact(self, text: str) -> str:
        if self.raw and is_credential(self.name):
            return text.replace(self.raw, "<redacted>")
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "raw": "<redacted>" if self.raw is not None and is_credential(self.name) else self.raw,
            "vllm_version": self.target.version,
            "result": self.result(),
            "findings": [rule for rule, _, _ in self.findings],
        }


def parse_settings(settings: Sequence[str]) -> list[tuple[str, str | None]]:
    parsed = []
    for item in settings:
        name, sep, value = item.partition("=")
        if not name or any(c.isspace() for c in name):
            raise UsageError(f"{item!r} is not NAME=VALUE or NAME")
        parsed.append((name, value if sep else None))
    return parsed


def explain(settings: Sequence[tuple[str, str | None]], vllm_version: str | None) -> list[Explanation]:
    """Evaluate every setting in one environment made of all of them."""
    try:
        resolution = resolve(bundled_versions(), explicit=vllm_version)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = Target(load_registry(resolution.version), resolution)
    env: dict[str, str] = {}
    for name, value in settings:  # later arguments win; NAME alone unsets
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
        explanation = Explanation(name, raw, target, found)
        explanation._env = env
        explanations.append(explanation)
    return explanations


def render_text(explanations: Sequence[Explanation]) -> str:
    lines = []
    for e in explanations:
        shown = "<unset>" if e.raw is None else ("<redacted>" if is_credential(e.name) else repr(e.raw))
        lines.append(f"{e.name}={shown}  (vLLM {e.target.version}: {e.target.resolution.reason})")
        var, result = e.var, e.result()
        if var is None:
            readers = e.target.readers(e.name)
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
