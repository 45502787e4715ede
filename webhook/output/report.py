"""What a `lint` or `audit` run hands to the output formats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from webhook import __version__
from webhook.findings import Finding, Severity, Workload
from webhook.rules.base import Rule

TOOL_NAME = "vllm-env-guard"
INFORMATION_URI = "https://github.com/vllm-env-guard/vllm-env-guard"


@dataclass
class Report:
    """Findings in the order they are to be shown, with what was checked and the rule catalog."""

    findings: list[Finding]
    files: int
    objects: int
    tool_version: str = __version__
    rules: Sequence[Rule] = ()
    workloads: Sequence[Workload] = ()  # each container examined (JSON output)

    def summary(self) -> dict[str, int]:
        """The `summary` object of the JSON contract (spec/interfaces.md)."""
        counts = Counter(f.severity for f in self.findings)
        return {
            "files": self.files,
            "objects": self.objects,
            "errors": counts[Severity.ERROR],
            "warnings": counts[Severity.WARNING],
            "infos": counts[Severity.INFO],
        }
