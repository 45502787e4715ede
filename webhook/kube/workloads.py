"""Where pod specs and containers live in workload objects (research doc §3).

Objects are plain parsed YAML/JSON; malformed shapes are skipped, never raised on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

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

Path = tuple[str | int, ...]
ContainerList = Literal["containers", "initContainers", "ephemeralContainers"]
CONTAINER_LISTS: tuple[ContainerList, ...] = ("containers", "initContainers", "ephemeralContainers")

_ANY = "*"
"""Path wildcard: every item of a list, or every value of a mapping."""


@dataclass(frozen=True)
class PodSpecSite:
    """One pod spec inside an object.

    ``path`` leads from the object root to ``spec``. ``template_metadata`` is the metadata
    the pods get (a Pod's own, a template's ``metadata``), ``None`` where the kind has none.
    For a KServe single-container shortcut (``spec.predictor.model``, ...) ``shortcut`` is
    true, ``path`` leads to that container, and ``spec`` is a synthetic
    ``{"containers": [it]}`` that carries the pod's ``enableServiceLinks``.
    """

    path: Path
    spec: Mapping[str, Any]
    template_metadata: Mapping[str, Any] | None = None
    role: str = ""
    shortcut: bool = False


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


@dataclass(frozen=True)
class _Pattern:
    """A table entry: a pod spec at ``spec`` (may hold ``"*"`` wildcards).

    ``role`` is formatted with one label per wildcard (a list item's ``groupName`` or
    ``name``, else its index; a mapping value's key). ``template``: the pods' metadata is
    the ``metadata`` beside the final ``spec`` key. ``shortcut``: a single container.
    """

    spec: Path
    role: str = ""
    template: bool = False
    shortcut: bool = False

    def under(self, *prefix: str | int, role: str = "") -> _Pattern:
        """This pattern below ``prefix``, its role prefixed with ``role/``."""
        joined = "/".join(part for part in (role, self.role) if part)
        return replace(self, spec=(*prefix, *self.spec), role=joined)


def _template(*prefix: str | int, role: str = "") -> _Pattern:
    """A ``PodTemplateSpec`` at ``prefix``: spec at ``prefix.spec``, metadata beside it."""
    return _Pattern((*prefix, "spec"), role, template=True)


def _under(
    patterns: tuple[_Pattern, ...], *prefix: str | int, role: str = ""
) -> tuple[_Pattern, ...]:
    return tuple(pattern.under(*prefix, role=role) for pattern in patterns)


_POD_TEMPLATE = (_template("spec", "template"),)

_LWS_TEMPLATE = (
    _template("leaderWorkerTemplate", "leaderTemplate", role="leader"),
    _template("leaderWorkerTemplate", "workerTemplate", role="worker"),
)

_RAY_CLUSTER = (
    _template("headGroupSpec", "template", role="head"),
    _template("workerGroupSpecs", _ANY, "template", role="workerGroup[{}]"),
)
_RAY_JOB = (  # a RayJobSpec
    *_under(_RAY_CLUSTER, "rayClusterSpec"),
    _template("submitterPodTemplate", role="submitter"),
)

# KServe: a component is an inline PodSpec; frameworks are single containers within it.
_KSERVE_FRAMEWORKS = (
    "model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton",
    "onnx", "huggingface", "pmml", "lightgbm", "paddle",
)  # fmt: skip
_KSERVE_PREDICTOR = (
    _Pattern((), role="predictor"),
    _Pattern(("workerSpec",), role="predictor/worker"),
    *(_Pattern((name,), role=f"predictor/{name}", shortcut=True) for name in _KSERVE_FRAMEWORKS),
)
_INFERENCE_SERVICE = (
    *_under(_KSERVE_PREDICTOR, "spec", "predictor"),
    _Pattern(("spec", "transformer"), role="transformer"),
    _Pattern(("spec", "explainer"), role="explainer"),
    _Pattern(("spec", "explainer", "art"), role="explainer/art", shortcut=True),
    *_under(_KSERVE_PREDICTOR, "spec", "canary", _ANY, "predictor", role="canary[{}]"),
)

_SERVING_RUNTIME = (_Pattern(("spec",)), _Pattern(("spec", "workerSpec"), role="worker"))

_LLM_INFERENCE_SERVICE = (
    _Pattern(("spec", "template")),
    _Pattern(("spec", "worker"), role="worker"),
    _Pattern(("spec", "prefill", "template"), role="prefill"),
    _Pattern(("spec", "prefill", "worker"), role="prefill/worker"),
    _Pattern(("spec", "router", "scheduler", "template"), role="scheduler"),
    _Pattern(("spec", "router", "scheduler", "tokenizer", "template"), role="scheduler/tokenizer"),
)

_APPS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")

# (API group, kind) -> where its pod specs are.
_SITES: dict[tuple[str, str], tuple[_Pattern, ...]] = {
    ("", "Pod"): (_Pattern(("spec",), template=True),),
    ("", "PodTemplate"): (_template("template"),),
    ("", "ReplicationController"): _POD_TEMPLATE,
    **{(group, kind): _POD_TEMPLATE for group in ("apps", "extensions") for kind in _APPS},
    ("batch", "Job"): _POD_TEMPLATE,
    ("batch", "CronJob"): (_template("spec", "jobTemplate", "spec", "template"),),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): _under(_LWS_TEMPLATE, "spec"),
    ("disaggregatedset.x-k8s.io", "DisaggregatedSet"): _under(
        _LWS_TEMPLATE, "spec", "roles", _ANY, "spec", role="{}"
    ),
    ("ray.io", "RayCluster"): _under(_RAY_CLUSTER, "spec"),
    ("ray.io", "RayService"): _under(_RAY_CLUSTER, "spec", "rayClusterConfig"),
    ("ray.io", "RayJob"): _under(_RAY_JOB, "spec"),
    ("ray.io", "RayCronJob"): _under(_RAY_JOB, "spec", "jobTemplate"),
    ("serving.kserve.io", "InferenceService"): _INFERENCE_SERVICE,
    ("serving.kserve.io", "ServingRuntime"): _SERVING_RUNTIME,
    ("serving.kserve.io", "ClusterServingRuntime"): _SERVING_RUNTIME,
    ("serving.kserve.io", "LLMInferenceService"): _LLM_INFERENCE_SERVICE,
    ("serving.kserve.io", "LLMInferenceServiceConfig"): _LLM_INFERENCE_SERVICE,
    ("jobset.x-k8s.io", "JobSet"): (
        _template("spec", "replicatedJobs", _ANY, "template", "spec", "template", role="{}"),
    ),
    ("kubeflow.org", "PyTorchJob"): (
        _template("spec", "pytorchReplicaSpecs", _ANY, "template", role="{}"),
    ),
    ("serving.knative.dev", "Service"): _POD_TEMPLATE,
    ("argoproj.io", "Rollout"): _POD_TEMPLATE,
}

WORKLOAD_KINDS: frozenset[tuple[str, str]] = frozenset(_SITES)
"""``(API group, kind)`` of every kind in the table (Knative ``Service``, not core ``Service``)."""


def api_group(obj: Mapping[str, Any]) -> str:
    """The API group of ``obj`` from its ``apiVersion`` (``""`` for the core group)."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or "/" not in api_version:
        return ""
    return api_version.split("/", 1)[0]


def _patterns(obj: Mapping[str, Any]) -> tuple[_Pattern, ...] | None:
    kind = obj.get("kind")
    return _SITES.get((api_group(obj), kind)) if isinstance(kind, str) else None


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
    if step != _ANY:
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


def _site(obj: Mapping[str, Any], pattern: _Pattern, match: _Match) -> PodSpecSite | None:
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


def pod_spec_sites(obj: Any) -> list[PodSpecSite]:
    """Every pod spec in ``obj``: from the kind table for known kinds, else by walking it.

    For walked objects, a pod spec under a ``spec`` key gets its sibling ``metadata`` as
    ``template_metadata``.
    """
    if not isinstance(obj, Mapping):
        return []
    patterns = _patterns(obj)
    if patterns is None:
        if obj.get("apiVersion") == "v1":  # every core kind is known
            return []
        return [replace(s, template_metadata=_sibling_metadata(obj, s.path)) for s in _walk(obj)]
    sites = []
    for pattern in patterns:
        for match in _resolve(obj, pattern.spec):
            site = _site(obj, pattern, match)
            if site is not None:
                sites.append(site)
    return sites


def is_workload(obj: Any) -> bool:
    """Whether ``obj`` is a kind that holds pod specs, or an unknown kind that has one."""
    return isinstance(obj, Mapping) and (_patterns(obj) is not None or bool(pod_spec_sites(obj)))


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
