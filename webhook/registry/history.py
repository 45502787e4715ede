"""What a setting does across several releases: for an image whose release is unknown (check it
over a range) and for an upgrade (what changes meaning between two releases).

`across()` evaluates one environment for one name on each release and groups consecutive
releases that agree; `differences()` lists what changes for a name between two releases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.registry.model import Outcome
from webhook.registry.store import load_registry


@dataclass(frozen=True, slots=True)
class Span:
    """Consecutive releases (in the order given) on which a name behaves the same.

    `outcome` is None where the release has no such key; `known` says whether the release
    reads the name at all (a key, or read by another key's getter)."""

    versions: tuple[str, ...]
    outcome: Outcome | None
    known: bool

    @property
    def label(self) -> str:
        """`vLLM 0.6.4` or `vLLM 0.6.4-0.11.0`."""
        first, last = self.versions[0], self.versions[-1]
        return f"vLLM {first}" if first == last else f"vLLM {first}-{last}"

    @property
    def crashes(self) -> bool:
        return self.outcome is not None and self.outcome.error is not None


def _key(outcome: Outcome | None, known: bool) -> tuple[Any, ...]:
    if outcome is None:
        return ("absent", known)
    if outcome.error is not None:
        return ("error", outcome.error, outcome.message, outcome.after)
    return ("value", type(outcome.value).__name__, repr(outcome.value), outcome.surprise)


def across(name: str, env: Mapping[str, str], versions: Sequence[str]) -> list[Span]:
    """What `name`'s getter does with `env` on each of `versions`, consecutive equal outcomes
    grouped (equal: the same exception and message, or the same value, type and surprise)."""
    spans: list[Span] = []
    last_key: tuple[Any, ...] | None = None
    for version in versions:
        registry = load_registry(version)
        var = registry.get(name)
        outcome = registry.evaluate(var, env) if var is not None else None
        known = registry.knows(name)
        key = _key(outcome, known)
        if spans and key == last_key:
            spans[-1] = Span(spans[-1].versions + (version,), spans[-1].outcome, known)
        else:
            spans.append(Span((version,), outcome, known))
        last_key = key
    return spans


def crashing(spans: Sequence[Span]) -> list[Span]:
    """The spans on which the value raises."""
    return [s for s in spans if s.crashes]


@dataclass(frozen=True, slots=True)
class Difference:
    """One way `name` changes meaning from release `old` to release `new`."""

    name: str
    what: str  # "removed", "added", "default", "outcome", "deprecated"
    before: str
    after: str

    def describe(self) -> str:
        return f"{self.name}: {self.what} ({self.before} -> {self.after})"


def _shown(outcome: Outcome | None) -> str:
    if outcome is None:
        return "not a variable"
    if outcome.error is not None:
        return f"raises {outcome.error}: {outcome.message}"
    return repr(outcome.value)


def differences(name: str, raw: str | None, old: str, new: str) -> list[Difference]:
    """How `name` set to `raw` (None: unset) changes meaning from release `old` to `new`:
    the key disappears or appears, its default changes, the value starts or stops crashing or
    gives another value, or it becomes deprecated."""
    before, after = load_registry(old), load_registry(new)
    old_var, new_var = before.get(name), after.get(name)
    if old_var is None and new_var is None:
        return []
    if new_var is None:
        return [Difference(name, "removed", f"read by vLLM {old}", f"not read by vLLM {new}"
                           if not after.knows(name) else f"read only by other variables in vLLM {new}")]
    if old_var is None:
        return [Difference(name, "added", f"not a variable of vLLM {old}", f"read by vLLM {new}")]
    found: list[Difference] = []
    unset_old, unset_new = before.evaluate(old_var, {}), after.evaluate(new_var, {})
    if _key(unset_old, True) != _key(unset_new, True):
        found.append(Difference(name, "default", _shown(unset_old), _shown(unset_new)))
    if raw is not None:
        set_old, set_new = before.evaluate(old_var, {name: raw}), after.evaluate(new_var, {name: raw})
        if _key(set_old, True) != _key(set_new, True):
            found.append(Difference(name, "outcome", _shown(set_old), _shown(set_new)))
    if new_var.deprecated and new_var.deprecated != old_var.deprecated:
        found.append(Difference(name, "deprecated", old_var.deprecated or "not deprecated", new_var.deprecated))
    return found
