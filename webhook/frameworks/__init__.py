"""Serving frameworks: where each keeps its pods and environments, and what its controller adds.

One module per framework defines ``FRAMEWORK`` (see :mod:`webhook.frameworks.base`); this
package joins them into a :class:`Catalog`, which the config file can extend (custom kinds) and
adjust (Knative's service-link default). docs/frameworks.md is generated from the modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from webhook.frameworks import (
    aibrix,
    argo,
    jobs,
    knative,
    kserve,
    kubeai,
    llmaz,
    llmd,
    lws,
    production_stack,
    ray,
)
from webhook.frameworks.base import Framework, ImageRule, Kind, VirtualPod
from webhook.frameworks.custom import FrameworkConfigError, custom_kind
from webhook.frameworks.services import CREATED_BY, created_by
from webhook.manifests import line_of
from webhook.memo import Memo

__all__ = [
    "CATALOG",
    "CREATED_BY",
    "FRAMEWORKS",
    "Catalog",
    "FrameworkConfigError",
    "Kind",
    "VirtualPod",
    "api_group",
    "catalog_from_config",
    "controller_services",
    "created_by",
]

MODULES: tuple[ModuleType, ...] = (ray, kserve, kubeai, llmaz, aibrix, production_stack, llmd, lws, knative,
                                   argo, jobs)
FRAMEWORKS: tuple[Framework, ...] = tuple(m.FRAMEWORK for m in MODULES)


def api_group(obj: Mapping[str, Any]) -> str:
    """The API group of ``obj`` from its ``apiVersion`` (``""`` for the core group)."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or "/" not in api_version:
        return ""
    return api_version.split("/", 1)[0]


@dataclass(frozen=True)
class Catalog:
    """Every custom resource kind known, by ``(API group, kind)``, and the image rules."""

    kinds: Mapping[tuple[str, str], Kind] = field(default_factory=dict)
    images: tuple[ImageRule, ...] = ()
    _matching: Memo[str, int] = field(default_factory=Memo, init=False, compare=False, repr=False)  # image -> rule

    @classmethod
    def of(cls, frameworks: tuple[Framework, ...]) -> Catalog:
        return cls({kind.key: kind for f in frameworks for kind in f.kinds},
                   tuple(rule for f in frameworks for rule in f.images))

    def kind_of(self, obj: Mapping[str, Any]) -> Kind | None:
        kind = obj.get("kind")
        return self.kinds.get((api_group(obj), kind)) if isinstance(kind, str) else None

    def virtual_pods(self, obj: Mapping[str, Any]) -> list[VirtualPod]:
        kind = self.kind_of(obj)
        return kind.virtual(obj) if kind is not None and kind.virtual is not None else []

    def services(self, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The Services ``obj``'s controller creates (none for kinds without a model of it)."""
        kind = self.kind_of(obj)
        return kind.services(obj) if kind is not None and kind.services is not None else []

    def image_verdict(self, image: str, command_line: str) -> tuple[bool, str] | None:
        """``(runs vLLM, why)`` when a framework knows the image, else None: the first rule
        whose pattern matches the image decides."""
        index = self._matching.get(image, lambda: next(
            (i for i, rule in enumerate(self.images) if rule.matches(image)), -1), (image,))
        if index < 0:
            return None
        rule = self.images[index]
        return rule.verdict(command_line), rule.why


CATALOG = Catalog.of(FRAMEWORKS)


def catalog_from_config(section: Any) -> Catalog:
    """The catalog as the config file's ``frameworks`` section changes it; raises
    FrameworkConfigError (with lines) on a section it cannot use."""
    if section is None:
        return CATALOG
    if not isinstance(section, Mapping):
        raise FrameworkConfigError([(None, "frameworks: expected a mapping with custom and knative")])
    problems: list[tuple[int | None, str]] = []
    kinds = dict(CATALOG.kinds)
    for key in section:
        if key not in ("custom", "knative"):
            problems.append((line_of(section, key), f"frameworks: unknown key {key!r} (known: custom, knative)"))
    knative_options = section.get("knative", {})
    links = knative_options.get("enableServiceLinks") if isinstance(knative_options, Mapping) else None
    if not isinstance(knative_options, Mapping) or links not in (True, False, None):
        problems.append((line_of(section, "knative"), "frameworks.knative: expected {enableServiceLinks: true|false}"))
    elif links is not None:
        kinds[knative.SERVICE.key] = replace(knative.SERVICE, links_default=links)
    custom = section.get("custom", [])
    if not isinstance(custom, list):
        problems.append((line_of(section, "custom"), "frameworks.custom: expected a list of kinds"))
        custom = []
    for index, entry in enumerate(custom):
        try:
            kind = custom_kind(entry, index)
        except FrameworkConfigError as exc:
            problems += exc.problems
            continue
        kinds[kind.key] = kind
    if problems:
        raise FrameworkConfigError(problems)
    return Catalog(kinds, CATALOG.images)


def _namespaced_name(obj: Mapping[str, Any], default_namespace: str) -> tuple[str, Any]:
    meta: Mapping[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), Mapping) else {}
    namespace = meta.get("namespace")
    return (namespace if isinstance(namespace, str) and namespace else default_namespace), meta.get("name")


def controller_services(objects: list[Mapping[str, Any]], catalog: Catalog, default_namespace: str,
                        existing: Iterable[Mapping[str, Any]] = ()) -> list[tuple[int, dict[str, Any]]]:
    """``(index of the owner in objects, Service)`` for each Service the controllers of
    ``objects`` will create, except those already present (in ``objects`` or ``existing``,
    e.g. the cluster's): the engine analyses them as if they were in the input."""
    present = {_namespaced_name(o, default_namespace) for o in [*objects, *existing]
               if o.get("kind") == "Service" and o.get("apiVersion") == "v1"}
    added = []
    for index, obj in enumerate(objects):
        for service in catalog.services(obj):
            key = _namespaced_name(service, _namespaced_name(obj, default_namespace)[0])
            if key not in present:
                present.add(key)
                added.append((index, service))
    return added
