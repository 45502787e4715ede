"""The admission server's policy: the `server:` section of the config file.

```yaml
server:
  mode: enforce                   # enforce: errors deny, warnings warn | warn: never deny
  namespaceLabel: vllm-env-guard.io/mode   # a Namespace label overriding mode: enforce|warn|off;
                                           # "" turns the override off
  failureMode: allow              # cluster state unknown, internal error or timeout:
                                  # allow (with a warning saying why) | deny
  updates: warn                   # UPDATE: a finding the old object already had only warns;
                                  # enforce: it denies like a new one
  maxBodyBytes: 3145728           # larger AdmissionReviews get 413
  lookupBudgetSeconds: 1.0        # longest wait for the cluster cache per request
  cache:                          # what to watch (read at start; changes need a restart)
    configMaps: false             # resolve envFrom/configMapKeyRef values
    workloads: true               # vLLM workloads, to name what a new Service would break
```
The file is reloaded when it changes; a file that does not validate is reported and the
previous policy stays in force.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from webhook.config import Config, ConfigError, load_config
from webhook.engine import Settings
from webhook.manifests import line_of
from webhook.rules import CATALOG
from webhook.server.logs import log

MODES = ("enforce", "warn")
NAMESPACE_MODES = (*MODES, "off")
FAILURE_MODES = ("allow", "deny")
UPDATE_MODES = ("warn", "enforce")
DEFAULT_NAMESPACE_LABEL = "vllm-env-guard.io/mode"
MAX_BODY_CEILING = 64 * 1024 * 1024
_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class CacheOptions:
    """What the cluster cache watches besides Services and Namespaces."""

    configmaps: bool = False
    workloads: bool = True


@dataclass(frozen=True)
class ServerPolicy:
    mode: str = "enforce"
    namespace_label: str | None = DEFAULT_NAMESPACE_LABEL
    failure_mode: str = "allow"
    updates: str = "warn"
    max_body_bytes: int = 3 * 1024 * 1024
    lookup_budget: float = 1.0
    cache: CacheOptions = field(default_factory=CacheOptions)

    def mode_for(self, namespace_labels: Mapping[str, str] | None) -> str:
        """enforce, warn or off: the namespace's label when it holds a valid mode, else `mode`."""
        if self.namespace_label and namespace_labels:
            value = namespace_labels.get(self.namespace_label)
            if value in NAMESPACE_MODES:
                return value
        return self.mode


@dataclass(frozen=True)
class Snapshot:
    """One consistent reading of the config file: the policy and the engine's base settings."""

    policy: ServerPolicy
    settings: Settings


class _Reader:
    """Checks one `server:` mapping, collecting `path:line: reason` problems."""

    def __init__(self, raw: Mapping[str, Any], where: str) -> None:
        self.raw, self.where = raw, where
        self.problems: list[str] = []

    def problem(self, mapping: Mapping[str, Any], key: str, prefix: str, reason: str) -> None:
        self.problems.append(f"{self.where}:{line_of(mapping, key) or 1}: {prefix}{key}: {reason}")

    def keys(self, mapping: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
        for key in mapping:
            if key not in known:
                self.problem(mapping, str(key), prefix, f"unknown setting (known: {', '.join(known)})")

    def get(self, mapping: Mapping[str, Any], key: str, default: Any, check: Callable[[Any], bool],
            expected: str, prefix: str = "server.") -> Any:
        if key not in mapping:
            return default
        value = mapping[key]
        if check(value):
            return value
        self.problem(mapping, key, prefix, f"expected {expected}, found {value!r}")
        return default

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        result: str = self.get(self.raw, key, default, lambda v: v in choices, " or ".join(choices))
        return result


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def parse_policy(raw: Mapping[str, Any], where: str = "config") -> ServerPolicy:
    """The policy from a `server:` mapping; ConfigError lists every problem."""
    reader = _Reader(raw, where)
    default = ServerPolicy()
    reader.keys(raw, ("mode", "namespaceLabel", "failureMode", "updates", "maxBodyBytes",
                      "lookupBudgetSeconds", "cache"), "server.")
    label = reader.get(raw, "namespaceLabel", default.namespace_label,
                       lambda v: isinstance(v, str) and (not v or bool(_LABEL_KEY.fullmatch(v))),
                       'a label key such as vllm-env-guard.io/mode, or "" to disable')
    body = reader.get(raw, "maxBodyBytes", default.max_body_bytes,
                      lambda v: type(v) is int and 1024 <= v <= MAX_BODY_CEILING,
                      f"a byte count from 1024 to {MAX_BODY_CEILING}")
    budget = reader.get(raw, "lookupBudgetSeconds", default.lookup_budget,
                        lambda v: type(v) in (int, float) and 0 < v <= 10, "seconds, more than 0 and at most 10")
    cache_raw = reader.get(raw, "cache", {}, lambda v: isinstance(v, Mapping), "a mapping")
    reader.keys(cache_raw, ("configMaps", "workloads"), "server.cache.")
    cache = CacheOptions(
        configmaps=reader.get(cache_raw, "configMaps", False, _is_bool, "true or false", "server.cache."),
        workloads=reader.get(cache_raw, "workloads", True, _is_bool, "true or false", "server.cache."),
    )
    policy = ServerPolicy(
        mode=reader.choice("mode", MODES, default.mode),
        namespace_label=label or None,
        failure_mode=reader.choice("failureMode", FAILURE_MODES, default.failure_mode),
        updates=reader.choice("updates", UPDATE_MODES, default.updates),
        max_body_bytes=body,
        lookup_budget=float(budget),
        cache=cache,
    )
    if reader.problems:
        raise ConfigError(reader.problems)
    return policy


def read_snapshot(path: str | None) -> Snapshot:
    """Load and check the config file (None: defaults, no file). Raises ConfigError."""
    config = load_config(path, known_rules=CATALOG) if path else Config()
    policy = parse_policy(config.server, config.path or "config")
    settings = Settings(vllm_version=config.vllm_version,
                        version_source=f"vllmVersion in {config.path}",
                        severities=config.rules, frameworks=config.frameworks)
    return Snapshot(policy, settings)


class PolicyStore:
    """The current snapshot; `reload()` swaps in a new one atomically, or raises and keeps the old."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._current = read_snapshot(path)

    @property
    def current(self) -> Snapshot:
        return self._current

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,) if self.path else ()

    def reload(self) -> Snapshot:
        """Read the file again. The cache options keep their start-up values (they need a restart)."""
        new = read_snapshot(self.path)
        with self._lock:
            kept = replace(new.policy, cache=self._current.policy.cache)
            if new.policy.cache != kept.cache:
                log(logging.WARNING, "server.cache changed; it takes effect at the next restart", path=self.path)
            self._current = replace(new, policy=kept)
            return self._current
