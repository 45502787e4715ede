"""Kinds added through the config file (``frameworks.custom``), for CRDs not built in.

```yaml
frameworks:
  custom:
  - apiVersion: example.com/v1       # group/version; the version is not compared
    kind: InferenceEngine
    podTemplates: [spec.engine.template, "spec.workers.*.template"]   # PodTemplateSpec (metadata + spec)
    podSpecs: [spec.router]          # inline PodSpecs
    envMaps:                         # NAME: value maps the controller turns into container env
    - path: spec.engineEnv
      runsVllm: true                 # true | false | omitted (judge by image)
      image: spec.engineImage        # optional: where the container's image is
  knative:
    enableServiceLinks: true
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import Kind, Path, Pattern, VirtualPod, dotted, template
from webhook.frameworks.envmaps import env_entries, virtual_pod
from webhook.manifests import line_of

_KEYS = ("apiVersion", "kind", "podTemplates", "podSpecs", "envMaps")
_MAP_KEYS = ("path", "runsVllm", "image")


class FrameworkConfigError(ValueError):
    """Problems in the ``frameworks`` section: ``(line, reason)`` pairs."""

    def __init__(self, problems: list[tuple[int | None, str]]) -> None:
        super().__init__("; ".join(reason for _, reason in problems))
        self.problems = problems


def _at(node: Any, path: Path) -> Any:
    for step in path:
        node = node.get(step) if isinstance(node, Mapping) else None
    return node


def _env_map_pods(maps: list[tuple[Path, bool | None, Path | None]]):  # noqa: ANN202
    def pods(obj: Mapping[str, Any]) -> list[VirtualPod]:
        result = []
        for path, vllm, image in maps:
            env = _at(obj, path)
            if isinstance(env, Mapping):
                result.append(virtual_pod(path, str(path[-1]), env_entries(env), vllm=vllm,
                                          image=_at(obj, image) if image else None, at=env))
        return result
    return pods


def _paths(entry: Mapping[str, Any], key: str, problem) -> list[Path]:  # noqa: ANN001
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip(".") for v in value):
        problem(line_of(entry, key), f"{key}: expected a list of dotted paths such as spec.template")
        return []
    return [dotted(v) for v in value]


def custom_kind(entry: Any, index: int) -> Kind:
    """One ``frameworks.custom`` entry as a :class:`Kind`; raises FrameworkConfigError."""
    problems: list[tuple[int | None, str]] = []

    def problem(line: int | None, reason: str) -> None:
        problems.append((line, f"frameworks.custom[{index}]: {reason}"))

    if not isinstance(entry, Mapping):
        raise FrameworkConfigError([(None, f"frameworks.custom[{index}]: expected a mapping")])
    for key in entry:
        if key not in _KEYS:
            problem(line_of(entry, key), f"unknown key {key!r} (known: {', '.join(_KEYS)})")
    api_version, kind = entry.get("apiVersion"), entry.get("kind")
    if not isinstance(api_version, str) or "/" not in api_version:
        problem(line_of(entry, "apiVersion") or line_of(entry), "apiVersion: expected group/version")
    if not isinstance(kind, str) or not kind:
        problem(line_of(entry, "kind") or line_of(entry), "kind: expected a kind name")
    sites = [template(*p[:-1]) if p[-1] == "spec" else template(*p) for p in _paths(entry, "podTemplates", problem)]
    sites += [Pattern(p) for p in _paths(entry, "podSpecs", problem)]
    maps: list[tuple[Path, bool | None, Path | None]] = []
    raw_maps = entry.get("envMaps", [])
    for item in raw_maps if isinstance(raw_maps, list) else [None]:
        path, vllm, image = (item.get(k) for k in _MAP_KEYS) if isinstance(item, Mapping) else (None, None, None)
        if not isinstance(path, str) or vllm not in (True, False, None) or not isinstance(image, str | None):
            problem(line_of(item) or line_of(entry, "envMaps"),
                    "envMaps: expected entries {path: dotted.path, runsVllm: true|false, image: dotted.path}")
            continue
        maps.append((dotted(path), vllm, dotted(image) if image else None))
    if problems:
        raise FrameworkConfigError(problems)
    group = str(api_version).split("/", 1)[0]
    return Kind(group, str(kind), tuple(sites), _env_map_pods(maps) if maps else None,
                reads="from the config file")
