"""The config file, `.vllm-env-guard.yaml`: defaults, rule severities and ignored paths.

```yaml
vllmVersion: "0.9.2"          # vLLM version for every workload, as --vllm-version (the option wins)
namespace: llm                 # default namespace for objects without one
rules:
  env-unknown-variable: error  # error | warning | info | off
  service-link-prefix: off
ignorePaths: ["charts/**/tests/**"]
registryDir: ~/.cache/vllm-env-guard/registries   # releases from `registry update`, as --registry-dir
server: {}                     # the admission server's section, validated by the server
frameworks: {}                 # custom resource kinds, Knative's link default (docs/frameworks.md)
```
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.findings import Severity
from webhook.frameworks import CATALOG, Catalog, FrameworkConfigError, catalog_from_config
from webhook.manifests import InvalidYAML, line_of, parse_yaml

__all__ = ["CONFIG_FILE", "Config", "ConfigError", "load_config"]

CONFIG_FILE = ".vllm-env-guard.yaml"
_SETTINGS = ("vllmVersion", "namespace", "rules", "ignorePaths", "registryDir", "server", "frameworks")

_VERSION = re.compile(r"\d+\.\d+[0-9A-Za-z.+-]*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LEVELS = "error, warning, info or off"


class ConfigError(Exception):
    """A config file that cannot be used; each problem reads `path:line: reason`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    """Settings from the config file; every field has a default, so `Config()` is 'no file'."""

    vllm_version: str | None = None
    namespace: str | None = None
    rules: dict[str, Severity | None] = field(default_factory=dict)  # None: the rule is off
    ignore_paths: tuple[str, ...] = ()
    server: Mapping[str, Any] = field(default_factory=dict)  # raw; the server validates it
    frameworks: Catalog = CATALOG  # custom resource kinds (see webhook/frameworks/custom.py)
    path: str | None = None  # the file it was read from
    registry_dir: str | None = None  # releases from `registry update` (registryDir)


def _suggest(word: str, choices: Collection[str]) -> str:
    """' (did you mean X?)' when one of `choices` is close to `word`, else ''."""
    folded = {c.lower().replace("_", "").replace("-", ""): c for c in choices}
    match = difflib.get_close_matches(word.lower().replace("_", "").replace("-", ""), folded, n=1)
    return f" (did you mean {folded[match[0]]!r}?)" if match else ""


def _severity(value: Any) -> Severity | None:
    """A rule level from the file: YAML 1.1 reads a bare `off` (or `no`, `false`) as False."""
    if value is False or value == "off":
        return None
    return Severity(value)  # ValueError if it is not one


def _read(path: str) -> Any:
    """The one YAML document of a config file, None when it has none."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    try:
        documents = parse_yaml(text)
    except InvalidYAML as exc:
        raise ConfigError([f"{path}:{exc.line or 1}: {exc.reason}"]) from None
    if len(documents) > 1:
        raise ConfigError([f"{path}:{line_of(documents[1]) or 1}: expected one YAML document, found {len(documents)}"])
    return documents[0] if documents else None


def load_config(path: str | None, cwd: str = ".", *, known_rules: Collection[str]) -> Config:
    """Read `path`, or `.vllm-env-guard.yaml` in `cwd` when path is None (no file: defaults).

    `known_rules` are the valid rule ids. Raises ConfigError listing every problem found.
    """
    if path is None:
        path = os.path.normpath(os.path.join(cwd, CONFIG_FILE))
        if not os.path.isfile(path):
            return Config()
    data = _read(path)
    if data is None:
        return Config(path=path)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: expected a mapping of settings, found {type(data).__name__}"])

    problems: list[str] = []

    def problem(line: int | None, reason: str) -> None:
        problems.append(f"{path}:{line or 1}: {reason}")

    def get(key: str, check: Callable[[Any], bool], expected: str) -> Any:
        value = data.get(key)
        if value is not None and not check(value):
            problem(line_of(data, key), f"{key}: expected {expected}, found {value!r}")
            return None
        return value

    for key in data:
        if key not in _SETTINGS:
            problem(line_of(data, key), f"unknown setting {key!r}{_suggest(str(key), _SETTINGS)}")
    version = get("vllmVersion", lambda v: isinstance(v, str) and bool(_VERSION.fullmatch(v)),
                  'a quoted version such as "0.9.2"')
    namespace = get("namespace", lambda v: isinstance(v, str) and bool(_DNS_LABEL.fullmatch(v)),
                    "a namespace name (lower-case letters, digits and '-')")
    ignore = get("ignorePaths", lambda v: isinstance(v, list) and all(isinstance(p, str) and p for p in v),
                 "a list of glob patterns")
    server = get("server", lambda v: isinstance(v, dict), "a mapping")
    registry_dir = get("registryDir", lambda v: isinstance(v, str) and bool(v.strip()), "a directory path")
    rules: dict[str, Severity | None] = {}
    for rule_id, level in (get("rules", lambda v: isinstance(v, dict), "a mapping of rule id to level") or {}).items():
        line = line_of(data["rules"], rule_id)
        if rule_id not in known_rules:
            problem(line, f"rules: unknown rule {rule_id!r}{_suggest(str(rule_id), known_rules)}")
            continue
        try:
            rules[rule_id] = _severity(level)
        except ValueError:
            problem(line, f"rules: {rule_id}: expected {_LEVELS}, found {level!r}")
    try:
        frameworks = catalog_from_config(data.get("frameworks"))
    except FrameworkConfigError as exc:
        frameworks = CATALOG
        for line, reason in exc.problems:
            problem(line or line_of(data, "frameworks"), reason)
    if problems:
        raise ConfigError(problems)
    return Config(vllm_version=version, namespace=namespace, rules=rules, ignore_paths=tuple(ignore or ()),
                  server=server or {}, path=path, frameworks=frameworks, registry_dir=registry_dir)

