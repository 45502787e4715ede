"""vLLM's environment-variable registry, per release: what each variable's parser does."""

from __future__ import annotations

from collections.abc import Mapping

from webhook.registry.model import Outcome, Registry, Variable, VersionFacts
from webhook.registry.store import bundled_versions, load_registry, resolve_known
from webhook.registry.versions import Resolution, Version, resolve

__all__ = [
    "Outcome", "Registry", "Resolution", "Variable", "Version", "VersionFacts",
    "bundled_versions", "evaluate", "load_registry", "resolve", "resolve_known",
]


def evaluate(var: Variable, env: Mapping[str, str]) -> Outcome:
    """What vLLM's getter for a bundled `var` returns (or raises) in environment `env`."""
    if var.version is None:
        raise ValueError(f"{var.name} is not from a bundled registry; use Registry.evaluate")
    return load_registry(var.version).evaluate(var, env)
