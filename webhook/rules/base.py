"""The shape every rule module fills in: identity, documentation and the check itself."""

from __future__ import annotations

from dataclasses import dataclass

from webhook.findings import Severity


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's stable id and its documentation; docs/rules.md is generated from these."""

    id: str
    severity: Severity
    summary: str
    rationale: str
    bad: str
    good: str
    fix: str

    @property
    def help_uri(self) -> str:
        return f"https://github.com/vllm-env-guard/vllm-env-guard/blob/main/docs/rules.md#{self.id}"
