"""What rules look at: one variable's value, one container, one Service.

The engine builds these from Kubernetes objects; `explain` builds value subjects from command
line arguments. Rules return `Hit`s; the engine turns them into findings with object, file,
line and version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.findings import Severity
from webhook.kube import EnvVar, OpaqueSource
from webhook.registry import Outcome, Registry, Resolution, Variable


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule firing. `at` is the manifest mapping whose line the finding points at."""

    message: str
    hint: str
    variable: str | None = None
    severity: Severity | None = None  # None: the rule's default
    at: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Target:
    """The vLLM release a container (or a Service's neighbours) runs, and how it is started."""

    registry: Registry
    resolution: Resolution
    fail_on_unknown: bool = False

    @property
    def version(self) -> str:
        return self.registry.version

    @property
    def unknown(self) -> bool:
        """Nothing says which release runs: value checks hold over `resolution.candidates`."""
        return self.resolution.unknown

    def readers(self, name: str) -> list[Variable]:
        """Registry variables whose getters read environment variable `name`."""
        return self.registry.readers(name)

    def knows(self, name: str) -> bool:
        """vLLM reads `name` (as a key or through another key's getter)."""
        return self.registry.knows(name)

    def when_parsed(self, name: str) -> str:
        if self.registry.facts.eager_evaluation:
            return "at engine start (from 0.11.1 vLLM parses every registry variable when the engine starts)"
        return f"the first time vLLM reads {name}"



@dataclass
class ValueSubject:
    """One environment variable of one container (or one `explain` argument).

    `env` is everything known about the container's environment (name -> value), used to run
    the getters; `raw` is this variable's value, None when unknown or unset.
    """

    name: str
    raw: str | None
    target: Target
    env: Mapping[str, str]
    source: str = "env"  # env | envFrom | valueFrom | service-link | argument
    origin: str = ""
    known: bool = True
    literal: bool = False  # written as a literal `value:` in the manifest
    sensitive: bool = False  # the value comes (partly) from a Secret: never shown
    vllm_container: bool = True
    at: Mapping[str, Any] | None = None
    _outcomes: dict[str, Outcome] = field(default_factory=dict, repr=False)
    _explicit: tuple[tuple[Variable, Outcome], ...] | None = field(default=None, repr=False)

    @property
    def from_service_link(self) -> bool:
        return self.source == "service-link"

    def outcome(self, var: Variable) -> Outcome:
        """What `var`'s getter makes of the container's environment (memoised)."""
        if var.name not in self._outcomes:
            self._outcomes[var.name] = self.target.registry.evaluate(var, self.env)
        return self._outcomes[var.name]

    def readers(self) -> list[Variable]:
        return self.target.readers(self.name)

    def explicit_outcomes(self) -> tuple[tuple[Variable, Outcome], ...]:
        """(getter, outcome) for each getter reading this value, when the container sets it
        itself with a known value (service-link values are the collision rules' business).
        Several rules ask: computed once."""
        if self._explicit is None:
            self._explicit = () if self.from_service_link or self.raw is None else tuple(
                (var, self.outcome(var)) for var in self.readers())
        return self._explicit

    def shown(self) -> str:
        """The value as messages may show it: credentials and Secret values are never echoed."""
        if self.raw is None:
            return "<unset>"
        return '"<redacted>"' if self.secret else _quote(self.raw)

    @property
    def secret(self) -> bool:
        from webhook.detect import is_credential

        return self.sensitive or is_credential(self.name)

    def redact(self, text: str) -> str:
        """`text` with this value blanked out, in the spellings messages use, when it is a
        credential or comes from a Secret (or expands one)."""
        if not (self.secret and self.raw):
            return text
        raw = self.raw
        for spelling in sorted({raw, repr(raw)[1:-1], raw.strip(), raw.lower(), raw.upper()}, key=len, reverse=True):
            if spelling:
                text = text.replace(spelling, "<redacted>")
        return text


def _quote(value: str) -> str:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return '"' + shown.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


@dataclass
class ContainerSubject:
    """A container with its command line, and its envFrom sources whose contents are unknown."""

    name: str
    arguments: Sequence[str]
    target: Target
    vllm_container: bool
    opaque: Sequence[OpaqueSource] = ()
    oversize: Sequence[EnvVar] = ()  # values over the kernel's limit for one environment string
    incomplete: Sequence[str] = ()  # what was not checked, past a work budget
    upgrade: Target | None = None  # the release it is upgraded to (upgrade-change)
    settings: Mapping[str, EnvVar] = field(default_factory=dict)  # the VLLM_* (and read) names it sets
    new_collisions: Mapping[str, list[str]] = field(default_factory=dict)  # Service -> names `upgrade` reads


@dataclass
class LinksSubject:
    """The variables one Service (or one group of Services producing the same names) injects
    into one container, as value subjects; `origin` names the Service(s)."""

    origin: str
    values: Sequence[ValueSubject]
    target: Target
    vllm_container: bool


@dataclass
class ServiceSubject:
    """A Service, the variables it injects, and the vLLM containers of its namespace."""

    service: Mapping[str, Any]
    name: str
    namespace: str
    variables: Mapping[str, str]
    target: Target
    affected: Sequence[str] = ()  # "Deployment llm/vllm (container vllm)" for each one broken
