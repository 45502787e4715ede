"""Where pod specs and containers live in workload objects (research doc §3).

Built-in kinds are described here; custom resources by their framework module
(:mod:`webhook.frameworks`), whose catalog may be extended from the config file. Objects are
plain parsed YAML/JSON; malformed shapes are skipped, never raised on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from webhook.frameworks import CATALOG, Catalog, Kind, api_group
from webhook.frameworks.base import ANY, Path, Pattern, template

__all__ = [
    "CONTAINER_LISTS",
    "WORKLOAD_KINDS",
    "ContainerSite",
    "PodSpecSite",
    "api_group",
    "containers",
    "format_path",
    "is_workload",
    "pod_spec_sites",
    "service_links_enabled",
]

ContainerList = Literal["containers", "initContainers", "ephemeralContainers"]
CONTAINER_LISTS: tuple[ContainerList, ...] = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True)
class PodSpecSite:
    """One pod spec inside an object.

    ``path`` leads from the object root to ``spec``. ``template_metadata`` is the metadata
    the pods get (a Pod's own, a template's ``metadata``), ``None`` where the kind has none.
    For a KServe single-container shortcut (``spec.predictor.model``, ...) ``shortcut`` is
    true, ``path`` leads to that container, and ``spec`` is a synthetic
    ``{"containers": [it]}`` that carries the pod's ``enableServiceLinks``. A ``virtual`` site
    (a shortcut too) is a pod a framework's controller builds from fields that are not a pod
    spec (an env map, a YAML string); ``path`` leads to that field.
    """

    path: Path
    spec: Mapping[str, Any]
    template_metadata: Mapping[str, Any] | None = None
    role: str = ""
    shortcut: bool = False
    virtual: bool = False
    vllm_containers: tuple[str, ...] = ()  # containers the framework says run vLLM


@dataclass(frozen=True)
class ContainerSite:
    """One container of a :class:`PodSpecSite`; ``path`` leads from the object root to it."""

    kind: ContainerList
    index: int
    container: Mapping[str, Any]
    path: Path

    @property
    def name(self) -> str:
        name = self.container.get("name")
        return name if isinstance(name, str) else ""


_POD_TEMPLATE = (template("spec", "template"),)
_APPS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")

# Built-in kinds: (API group, kind) -> where their pod specs are.
_BUILT_IN: dict[tuple[str, str], tuple[Pattern, ...]] = {
    ("", "Pod"): (Pattern(("spec",), template=True),),
    ("", "PodTemplate"): (template("template"),),
    ("", "ReplicationController"): _POD_TEMPLATE,
    **{(group, kind): _POD_TEMPLATE for group in ("apps", "extensions") for kind in _APPS},
    ("batch", "Job"): _POD_TEMPLATE,
    ("batch", "CronJob"): (template("spec", "jobTemplate", "spec", "template"),),
}

WORKLOAD_KINDS: frozenset[tuple[str, str]] = frozenset(_BUILT_IN) | frozenset(CATALOG.kinds)
"""``(API group, kind)`` of every kind known (Knative ``Service``, not core ``Service``)."""


def _kind(obj: Mapping[str, Any], catalog: Catalog) -> tuple[tuple[Pattern, ...], Kind | None] | None:
    """The kind's site patterns and its framework entry; None for a kind nobody describes."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None
    key = (api_group(obj), kind)
    if key in _BUILT_IN:
        return _BUILT_IN[key], None
    described = catalog.kinds.get(key)
    return None if described is None else (described.sites, described)


def _label(container: Any, key: str | int) -> str:
    if isinstance(key, str):
        return key
    for field in ("groupName", "name"):
        value = container.get(field) if isinstance(container, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return str(key)


_Match = tuple[Path, Any, tuple[str, ...]]


def _resolve(
    node: Any, pattern: Path, path: Path = (), labels: tuple[str, ...] = ()
) -> Iterator[_Match]:
    """Every ``(path, value, wildcard labels)`` that ``pattern`` reaches from ``node``."""
    if not pattern:
        yield path, node, labels
        return
    step, rest = pattern[0], pattern[1:]
    if step != ANY:
        if isinstance(node, Mapping) and step in node:
            yield from _resolve(node[step], rest, (*path, step), labels)
        return
    items: Iterable[tuple[str | int, Any]] = ()
    if isinstance(node, Mapping):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    for key, child in items:
        yield from _resolve(child, rest, (*path, key), (*labels, _label(child, key)))


def _get(node: Any, path: Path) -> Any:
    """The value at ``path`` (no wildcards), or ``None``."""
    for step in path:
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and -len(node) <= step < len(node):
            node = node[step]
        else:
            return None
    return node


def _sibling_metadata(obj: Mapping[str, Any], path: Path) -> Mapping[str, Any] | None:
    """The ``metadata`` beside the ``spec`` at ``path`` (a template's or a Pod's own)."""
    if not path or path[-1] != "spec":
        return None
    metadata = _get(obj, (*path[:-1], "metadata"))
    return metadata if isinstance(metadata, Mapping) else None


def _site(obj: Mapping[str, Any], pattern: Pattern, match: _Match) -> PodSpecSite | None:
    path, value, labels = match
    if not isinstance(value, Mapping):
        return None
    role = pattern.role.format(*labels)
    if not pattern.shortcut:
        metadata = _sibling_metadata(obj, path) if pattern.template else None
        return PodSpecSite(path, value, metadata, role)
    # A single container: its component (one level up) is the pod spec with enableServiceLinks.
    component = _get(obj, path[:-1])
    spec: dict[str, Any] = {"containers": [value]}
    if isinstance(component, Mapping) and "enableServiceLinks" in component:
        spec["enableServiceLinks"] = component["enableServiceLinks"]
    return PodSpecSite(path, spec, None, role, shortcut=True)


def _is_pod_spec(node: Mapping[str, Any]) -> bool:
    listed = node.get("containers")
    return isinstance(listed, list) and any(
        isinstance(container, Mapping) and "name" in container for container in listed
    )


def _walk(node: Any, path: Path = ()) -> Iterator[PodSpecSite]:
    """Generic fallback: every mapping holding a ``containers`` list of named mappings."""
    if isinstance(node, Mapping):
        if _is_pod_spec(node):
            yield PodSpecSite(path, node, None, "")
        for key, child in node.items():
            if key not in CONTAINER_LISTS:
                yield from _walk(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _walk(child, (*path, index))


def _links_default(site: PodSpecSite, kind: Kind | None) -> PodSpecSite:
    """Knative-style kinds whose controller turns service links off unless the spec says."""
    if kind is None or kind.links_default or "enableServiceLinks" in site.spec:
        return site
    return replace(site, spec={**site.spec, "enableServiceLinks": False})


def pod_spec_sites(obj: Any, catalog: Catalog = CATALOG) -> list[PodSpecSite]:
    """Every pod spec in ``obj``: from the kind tables for known kinds, else by walking it;
    then the virtual pods its framework builds from env maps.

    For walked objects, a pod spec under a ``spec`` key gets its sibling ``metadata`` as
    ``template_metadata``.
    """
    if not isinstance(obj, Mapping):
        return []
    known = _kind(obj, catalog)
    if known is None:
        if obj.get("apiVersion") == "v1":  # every core kind is known
            return []
        return [replace(s, template_metadata=_sibling_metadata(obj, s.path)) for s in _walk(obj)]
    patterns, kind = known
    sites = []
    for pattern in patterns:
        for match in _resolve(obj, pattern.spec):
            site = _site(obj, pattern, match)
            if site is not None:
                sites.append(_links_default(replace(site, vllm_containers=pattern.vllm), kind))
    sites += [PodSpecSite(pod.path, pod.spec, pod.metadata, pod.role, shortcut=True, virtual=True)
              for pod in catalog.virtual_pods(obj)]
    return sites


def is_workload(obj: Any, catalog: Catalog = CATALOG) -> bool:
    """Whether ``obj`` is a kind that holds pod specs, or an unknown kind that has one."""
    return isinstance(obj, Mapping) and (_kind(obj, catalog) is not None or bool(pod_spec_sites(obj, catalog)))


def containers(site: PodSpecSite) -> Iterator[ContainerSite]:
    """The containers, then init containers, then ephemeral containers of ``site``."""
    for kind in CONTAINER_LISTS:
        listed = site.spec.get(kind)
        if not isinstance(listed, list):
            continue
        for index, container in enumerate(listed):
            if isinstance(container, Mapping):
                path = site.path if site.shortcut else (*site.path, kind, index)
                yield ContainerSite(kind, index, container, path)


def service_links_enabled(spec: Any) -> bool:
    """``enableServiceLinks``, which defaults to true: only a literal ``false`` turns it off."""
    return not (isinstance(spec, Mapping) and spec.get("enableServiceLinks") is False)


def format_path(path: Path) -> str:
    """``("spec", "containers", 0, "env")`` -> ``"spec.containers[0].env"``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else str(step)
    return text
