"""What every check produces: findings about Kubernetes objects."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe: error 2, warning 1, info 0."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Identifies a Kubernetes object in messages and output."""

    api_version: str | None
    kind: str | None
    namespace: str | None
    name: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind or 'object'} {where}{self.name or '<unnamed>'}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found on one object (and, where it applies, one container and variable)."""

    rule: str
    severity: Severity
    message: str
    hint: str = ""
    object: ObjectRef | None = None
    file: str | None = None
    line: int | None = None
    container: str | None = None
    variable: str | None = None
    vllm_version: str | None = None

    def with_(self, **changes: Any) -> Finding:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The contract shape of `lint --format json` (spec/interfaces.md)."""
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "message": self.message,
            "hint": self.hint,
            "file": self.file,
            "line": self.line,
            "object": self.object.to_json() if self.object else None,
            "container": self.container,
            "variable": self.variable,
            "vllm_version": self.vllm_version,
        }


@dataclass(frozen=True, slots=True)
class Workload:
    """One container examined: whether it runs vLLM and which release was assumed, and why."""

    object: ObjectRef
    container: str
    runs_vllm: bool
    vllm_version: str | None  # None: not a vLLM container, or the release is unknown
    vllm_version_reason: str | None
    file: str | None = None
    line: int | None = None
    vllm_versions: tuple[str, str] | None = None  # (first, last) when the release is unknown

    def to_json(self) -> dict[str, Any]:
        found = {
            "file": self.file,
            "line": self.line,
            "object": self.object.to_json(),
            "container": self.container,
            "runs_vllm": self.runs_vllm,
            "vllm_version": self.vllm_version,
            "vllm_version_reason": self.vllm_version_reason,
        }
        if self.vllm_versions is not None:
            found["vllm_versions"] = list(self.vllm_versions)
        return found
