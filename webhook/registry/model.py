"""The registry model: one vLLM release's variables, and what a value turns into."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.memo import Memo
from webhook.registry.checks import sink_reads


@dataclass(frozen=True, slots=True)
class Variable:
    """One key of vLLM's `environment_variables`, for one release.

    `expression` is the getter as vLLM wrote it (normalised by `ast.unparse`); `reads` are the
    environment variables it can read, which need not include `name` itself.
    """

    name: str
    expression: str
    kind: str
    reads: tuple[str, ...]
    default: str | None
    choices: tuple[str, ...] | None = None
    case_sensitive: bool | None = None
    build_time: bool = False
    deprecated: str | None = None
    description: str = ""
    version: str | None = field(default=None, compare=False)  # the release it was loaded for

    @property
    def reads_own_name(self) -> bool:
        return self.name in self.reads

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "expression": self.expression, "kind": self.kind,
            "reads": list(self.reads), "default": self.default,
            "choices": list(self.choices) if self.choices is not None else None,
            "case_sensitive": self.case_sensitive, "build_time": self.build_time,
            "deprecated": self.deprecated, "description": self.description,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: str | None = None) -> Variable:
        return cls(version=version, 
            name=data["name"], expression=data["expression"], kind=data["kind"],
            reads=tuple(data["reads"]), default=data["default"],
            choices=tuple(data["choices"]) if data.get("choices") is not None else None,
            case_sensitive=data.get("case_sensitive"), build_time=data.get("build_time", False),
            deprecated=data.get("deprecated"), description=data.get("description", ""),
        )


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What a release does around its registry.

    eager_evaluation: from 0.11.1, `enable_envs_cache()` runs every getter at engine start, so
    any bad value stops the engine; before, a value fails only when something reads it.
    validates_unknown: from 0.17, unknown `VLLM_*` names are logged at start, and are fatal with
    `--fail-on-environ-validation`.
    helpers: per helper function, the variant this release uses (see helpers.py).
    torch: the torch release the wheel pins (`Requires-Dist: torch==X`), None when it pins none;
    getters that ask torch for its version are evaluated against it.
    sinks: per variable, the call its accepted value flows into and that can still raise
    (see checks.py), as found in the wheel's modules (usage.py).
    """

    version: str
    eager_evaluation: bool
    validates_unknown: bool
    helpers: Mapping[str, Any] = field(default_factory=dict)
    torch: str | None = None
    sinks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"eager_evaluation": self.eager_evaluation,
                "validates_unknown": self.validates_unknown, "helpers": dict(self.helpers),
                "torch": self.torch, "sinks": {k: dict(v) for k, v in self.sinks.items()}}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What vLLM's getter does with an environment: a value, or the exception it raises.

    `depends` names what else the result hangs on (home, tmpdir, cwd, filesystem, cpu, torch,
    platform, random): where it is not empty, the value is what a typical container gets.
    `surprise` says why an accepted value is almost certainly not what its writer meant.
    `after` is set when the error comes past the getter: the getter accepted the value and the
    call vLLM hands it to raised (see checks.py).
    """

    value: Any = None
    error: str | None = None
    message: str | None = None
    reads: tuple[str, ...] = ()
    depends: frozenset[str] = frozenset()
    surprise: str | None = None
    after: str | None = None  # where past the getter the error is raised (checks.py), if it is

    @property
    def ok(self) -> bool:
        return self.error is None



OUTCOMES_KEPT = 1024
MEMO_VALUE_LENGTH = 256


class Registry:
    """The variables of one vLLM release, by name."""

    def __init__(self, facts: VersionFacts, variables: Mapping[str, Variable]) -> None:
        self.facts = facts
        self.version = facts.version
        self._variables = dict(variables)
        self._outcomes: Memo[tuple[str, tuple[str | None, ...]], Outcome] = Memo(OUTCOMES_KEPT, MEMO_VALUE_LENGTH)
        self._readers: dict[str, list[Variable]] | None = None
        self._known: frozenset[str] | None = None

    def get(self, name: str) -> Variable | None:
        return self._variables.get(name)

    def __getitem__(self, name: str) -> Variable:
        return self._variables[name]

    def __contains__(self, name: object) -> bool:
        return name in self._variables

    def __iter__(self) -> Iterator[Variable]:
        return iter(self._variables.values())

    def __len__(self) -> int:
        return len(self._variables)

    def names(self) -> list[str]:
        return list(self._variables)

    def evaluate(self, var: Variable | str, env: Mapping[str, str]) -> Outcome:
        """What this release's getter for `var` returns (or raises) in environment `env`.

        Memoised on the values of the variables the getter reads (`var.reads`, which the
        conformance suite checks against what vLLM's own getter reads): at most
        OUTCOMES_KEPT outcomes, and none for values over MEMO_VALUE_LENGTH characters, so
        what requests send is not kept for long.
        """
        from webhook.registry.outcomes import evaluate

        var = self[var] if isinstance(var, str) else var
        values = tuple(env.get(name) for name in self.inputs(var))
        return self._outcomes.get((var.name, values), lambda: evaluate(var, env, self), values)

    def inputs(self, var: Variable) -> tuple[str, ...]:
        """Every name an outcome of `var` hangs on: its getter's reads, then its sink's."""
        sink = self.facts.sinks.get(var.name)
        return var.reads + sink_reads(sink) if sink else var.reads

    def readers(self, name: str) -> list[Variable]:
        """The variables whose getters read environment variable `name`."""
        if self._readers is None:
            self._readers = {}
            for var in self:
                for read in var.reads:
                    self._readers.setdefault(read, []).append(var)
        return self._readers.get(name, [])

    def knows(self, name: str) -> bool:
        """vLLM reads environment variable `name`: a key, or read by a key's getter."""
        if self._known is None:
            self._known = frozenset(self._variables).union(*(var.reads for var in self))
        return name in self._known

    def __repr__(self) -> str:
        return f"<Registry vllm {self.version}: {len(self)} variables>"
