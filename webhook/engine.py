"""The analysis engine: Kubernetes objects in, findings out. No I/O.

One engine serves `lint` (objects from files), the admission webhook (one object, plus the
cluster's Services from a cache) and `audit` (everything listed from the API). Objects to report
on are `Item`s; `context` objects (e.g. the cluster's workloads when a Service is admitted) are
consulted but not reported on.
"""

from __future__ import annotations

import functools
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.detect import (
    command_line,
    fails_on_unknown,
    ignored_rules,
    is_credential,
    judge_site,
    vllm_only,
)
from webhook.findings import Finding, ObjectRef, Severity
from webhook.frameworks import CATALOG, Catalog, controller_services
from webhook.kube import (
    Environment,
    PodServiceLinks,
    Source,
    effective_environment,
    make_env_variable_name,
    pod_spec_sites,
    service_env,
    service_link_env,
)
from webhook.kube.shapes import as_str, metadata
from webhook.kube.workloads import (
    ContainerSite,
    PodSpecSite,
    containers,
    service_links_enabled,
)
from webhook.manifests import line_of
from webhook.registry import bundled_versions, load_registry, resolve
from webhook.registry.store import ever_read
from webhook.registry.versions import VERSION_ANNOTATION
from webhook.rules import hooks
from webhook.rules.base import Rule
from webhook.rules.subjects import (
    ContainerSubject,
    Hit,
    ServiceSubject,
    Target,
    ValueSubject,
)

# Shown as the cluster IP of Services that have none yet (not applied): a realistic value.
ASSUMED_CLUSTER_IP = "10.96.0.12"


@dataclass(frozen=True)
class Settings:
    """How to analyse: the vLLM version to assume, the default namespace, rule severities."""

    vllm_version: str | None = None
    version_source: str = "--vllm-version"  # where vllm_version came from, for messages
    namespace: str = "default"
    severities: Mapping[str, Severity | None] = field(default_factory=dict)  # None: rule off
    frameworks: Catalog = CATALOG  # custom resource kinds (config: frameworks)


@dataclass(frozen=True)
class Item:
    """An object to report on, and the file it came from (None outside lint)."""

    obj: Mapping[str, Any]
    file: str | None = None


class OpenWorld(dict):  # type: ignore[type-arg]
    """ConfigMaps/Secrets of a namespace where others may exist unseen (lint): a name not in
    the input is unknown rather than missing."""

    def __contains__(self, name: object) -> bool:
        return True


@dataclass
class Inventory:
    """Services, ConfigMaps and Secrets the analysis may consult.

    `complete` (cluster mode): ConfigMaps/Secrets not listed do not exist. `secrets_known`:
    False when Secrets were not read (their values stay unknown).
    """

    services: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)  # by namespace
    configmaps: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    complete: bool = False
    secrets_known: bool = True
    # Built once per namespace from the fields above; emptied whenever an object is added.
    _links: dict[tuple[str, bool], PodServiceLinks] = field(default_factory=dict, repr=False)
    _open: dict[tuple[str, str], OpenWorld] = field(default_factory=dict, repr=False)

    def add(self, obj: Mapping[str, Any], default_namespace: str) -> None:
        kind, api = obj.get("kind"), obj.get("apiVersion")
        if api != "v1" or kind not in ("Service", "ConfigMap", "Secret"):
            return
        namespace = namespace_of(obj, default_namespace)
        self._links.clear()
        self._open.clear()
        if kind == "Service":
            self.services.setdefault(namespace, []).append(_with_namespace(obj, namespace))
            return
        name = metadata(obj).get("name")
        if isinstance(name, str):
            table = self.configmaps if kind == "ConfigMap" else self.secrets
            table.setdefault(namespace, {})[name] = obj

    def links(self, namespace: str, enabled: bool) -> PodServiceLinks:
        """The service-link definitions of pods in `namespace` (built once per namespace)."""
        key = (namespace, enabled)
        if key not in self._links:
            candidates = self.services.get(namespace, []) + self.services.get("default", []) * (namespace != "default")
            self._links[key] = PodServiceLinks.build(
                service_link_env(candidates, namespace, enabled, ASSUMED_CLUSTER_IP))
        return self._links[key]

    def lookup(self, kind: str, namespace: str) -> Mapping[str, Mapping[str, Any]] | None:
        """The namespace's ConfigMaps or Secrets by name; None when Secrets were not read."""
        if kind == "Secret" and not self.secrets_known:
            return None
        known = (self.configmaps if kind == "ConfigMap" else self.secrets).get(namespace, {})
        if self.complete:
            return known
        if (kind, namespace) not in self._open:
            self._open[(kind, namespace)] = OpenWorld(known)
        return self._open[(kind, namespace)]




def _at(item: Item, node: Mapping[str, Any]) -> str:
    """`, file:line` of a manifest node, for naming the other object in cross-object findings."""
    line = line_of(node)
    return f", {item.file}:{line}" if item.file and line else (f", {item.file}" if item.file else "")


def namespace_of(obj: Mapping[str, Any], default: str) -> str:
    namespace = metadata(obj).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else default


def _with_namespace(obj: Mapping[str, Any], namespace: str) -> Mapping[str, Any]:
    """The Service as the kubelet sees it: namespaced (manifests often omit it)."""
    if metadata(obj).get("namespace") == namespace:
        return obj
    return {**obj, "metadata": {**metadata(obj), "namespace": namespace}}


def object_ref(obj: Mapping[str, Any], namespace: str | None) -> ObjectRef:
    name = metadata(obj).get("name")
    return ObjectRef(_str(obj.get("apiVersion")), _str(obj.get("kind")), namespace,
                     name if isinstance(name, str) else None)


def _str(value: Any) -> str | None:
    return as_str(value) or None


@dataclass
class _VllmContainer:
    """A vLLM container somewhere in the input, as a Service sees it."""

    label: str
    namespace: str
    links_enabled: bool
    overrides: frozenset[str]  # names its env/envFrom set explicitly
    target: Target


def analyze(items: Sequence[Item], settings: Settings = Settings(), *,
            context: Iterable[Mapping[str, Any]] = (), inventory: Inventory | None = None) -> list[Finding]:
    """Every finding on `items`; `context` objects are consulted, never reported on."""
    context = list(context)
    inventory = inventory or Inventory()
    known = [s for services in inventory.services.values() for s in services]  # frameworks hook:
    items = [*items, *(Item(service, items[i].file) for i, service in controller_services(
        [i.obj for i in items], settings.frameworks, settings.namespace, known))]  # Services CRs make
    for obj in [i.obj for i in items] + context:
        inventory.add(obj, settings.namespace)
    run = _Run(settings, inventory)
    findings: list[Finding] = []
    for item in items:
        findings += run.workload(item)
    for obj in context:
        run.workload(Item(obj))  # registers its vLLM containers for the Service checks
    for item in items:
        findings += run.service(item)
    return findings


class _Run:
    def __init__(self, settings: Settings, inventory: Inventory) -> None:
        self.settings = settings
        self.inventory = inventory
        self.bundled = bundled_versions()
        self.vllm_containers: dict[str, list[_VllmContainer]] = {}  # by namespace
        self._targets: dict[tuple[str | None, str | None, bool], Target] = {}
        self._interesting: dict[tuple[str, bool, str], list[str]] = {}

    # --- reporting -------------------------------------------------------------------------

    def _finding(self, rule: Rule, hit: Hit, item: Item, ref: ObjectRef, ignored: frozenset[str],
                 fallback_line: int | None, container: str | None, version: str | None) -> Finding | None:
        if rule.id in ignored or "all" in ignored:
            return None
        severity = hit.severity or rule.severity
        if rule.id in self.settings.severities:
            override = self.settings.severities[rule.id]
            if override is None:
                return None
            severity = override
        return Finding(
            rule=rule.id, severity=severity, message=hit.message, hint=hit.hint, object=ref,
            file=item.file, line=line_of(hit.at) or fallback_line, container=container,
            variable=hit.variable, vllm_version=version,
        )

    def target(self, obj: Mapping[str, Any], template: Mapping[str, Any] | None,
               image: str | None, arguments: Sequence[str]) -> Target:
        annotation = None
        for meta in (metadata(obj), template or {}):
            found = meta.get("annotations")
            if isinstance(found, Mapping) and VERSION_ANNOTATION in found:
                annotation = found[VERSION_ANNOTATION]
        key = (annotation if isinstance(annotation, str) else None, image, fails_on_unknown(arguments))
        if key not in self._targets:
            resolution = resolve(self.bundled, explicit=self.settings.vllm_version,
                                 explicit_source=self.settings.version_source,
                                 annotations={VERSION_ANNOTATION: key[0]} if key[0] else None, image=image)
            self._targets[key] = Target(load_registry(resolution.version), resolution, key[2])
        return self._targets[key]

    # --- workloads -------------------------------------------------------------------------

    def workload(self, item: Item) -> list[Finding]:
        namespace = namespace_of(item.obj, self.settings.namespace)
        return [finding for site in pod_spec_sites(item.obj, self.settings.frameworks) for where in containers(site)
                for finding in self._container(item, namespace, site, where)]

    def _container(self, item: Item, namespace: str, site: PodSpecSite, where: ContainerSite) -> list[Finding]:
        obj, container, name = item.obj, where.container, where.name
        ref = object_ref(obj, namespace)
        arguments = command_line(container)
        verdict = judge_site(site, container, self.settings.frameworks)
        vllm = verdict.runs is True
        image = container.get("image") if vllm and isinstance(container.get("image"), str) else None
        target = self.target(obj, site.template_metadata, image, arguments)
        links_on = service_links_enabled(site.spec)
        env = effective_environment(
            container, site.spec, namespace, self.inventory.links(namespace, links_on),
            self.inventory.lookup("ConfigMap", namespace), self.inventory.lookup("Secret", namespace),
        )
        if vllm:
            self.vllm_containers.setdefault(namespace, []).append(_VllmContainer(
                f"{ref} (container {name}{_at(item, container)})", namespace, links_on, frozenset(env.defined), target))
        subject = ContainerSubject(name, arguments, target, vllm, env.opaque)
        hits = [(rule, hit, None) for rule, check in hooks("check_container")
                for hit in check(subject)]  # type: ignore[operator]
        names = [n for n in env.defined if _interesting(n, target)] + [
            n for n in self.interesting_links(namespace, links_on, target) if n not in env.defined]
        hits += [(rule, hit, value.at) for value in _value_subjects(env, names, target, vllm)
                 for rule, check in hooks("check_value") for hit in check(value)]  # type: ignore[operator]
        ignored = ignored_rules(metadata(obj), site.template_metadata)
        fallback = line_of(container) or line_of(metadata(obj), "name") or line_of(obj)
        findings = (self._finding(rule, hit, item, ref, ignored, line_of(at) or fallback, name, target.version)
                    for rule, hit, at in hits)
        return [f for f in (vllm_only(f, verdict) for f in findings if f is not None) if f is not None]

    def interesting_links(self, namespace: str, links_on: bool, target: Target) -> list[str]:
        """The service-link names rules look at (computed once per namespace and release)."""
        key = (namespace, links_on, target.version)
        if key not in self._interesting:
            links = self.inventory.links(namespace, links_on).definitions
            self._interesting[key] = [n for n in links if _interesting(n, target)]
        return self._interesting[key]

    # --- Services --------------------------------------------------------------------------

    def service(self, item: Item) -> list[Finding]:
        obj = item.obj
        if obj.get("kind") != "Service" or obj.get("apiVersion") != "v1":
            return []
        namespace = namespace_of(obj, self.settings.namespace)
        ref = object_ref(obj, namespace)
        name = ref.name or ""
        if not _may_matter(name):
            return []
        variables = service_env(obj, assumed_cluster_ip=ASSUMED_CLUSTER_IP)
        if not variables:
            return []
        neighbours = [c for c in self.vllm_containers.get(namespace, ()) if c.links_enabled]
        targets = {c.target.version: c.target for c in neighbours} or {None: self.target(obj, None, None, ())}
        ignored = ignored_rules(metadata(obj))
        line = line_of(metadata(obj), "name") or line_of(obj)
        findings: list[Finding] = []
        for rule, check in hooks("check_service"):
            for target in targets.values():  # the first release of the namespace it hurts
                read = {v for v in variables if target.knows(v)}
                affected = [c.label for c in neighbours if read - c.overrides] if read else []
                hits = list(check(ServiceSubject(obj, name, namespace, variables, target, affected)))  # type: ignore[operator]
                found = [self._finding(rule, hit, item, ref, ignored, line, None, target.version) for hit in hits]
                if hits:
                    findings += [f for f in found if f is not None]
                    break
        return findings


@functools.cache
def _read_prefixes() -> frozenset[str]:
    """Every `_`-bounded prefix of a name some bundled vLLM release reads."""
    return frozenset(name[:i] for name in ever_read() for i, char in enumerate(name) if char == "_")


def _may_matter(service_name: str) -> bool:
    """A Service whose variables (`<NAME>_...`) could be VLLM_-prefixed or read by vLLM."""
    prefix = make_env_variable_name(service_name)
    return (prefix + "_").startswith("VLLM_") or prefix in _read_prefixes()


def _interesting(name: str, target: Target) -> bool:
    """Rules look at VLLM_* names, names vLLM reads, and credentials."""
    return name.startswith("VLLM_") or target.knows(name) or is_credential(name)


class _KnownValues(Mapping[str, str]):
    """A container's environment as getters see it: the values known for sure, read lazily."""

    def __init__(self, env: Environment) -> None:
        self._env = env

    def __getitem__(self, name: str) -> str:
        value = self._env.lookup(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._env if self._env.lookup(name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _value_subjects(env: Environment, names: Iterable[str], target: Target, vllm: bool) -> Iterator[ValueSubject]:
    """A subject per candidate value of each of `names` (one with raw=None when unknown)."""
    known = _KnownValues(env)
    for name in names:
        var = env[name]
        entry = var.entry if isinstance(var.entry, Mapping) else None
        literal = var.source == Source.ENV and entry is not None and isinstance(entry.get("value"), str)
        candidates: list[str | None] = list(var.candidates)
        if None in candidates or var.may_be_unset or not candidates:
            candidates = [None]
        for raw in candidates:
            yield ValueSubject(
                name=name, raw=raw, target=target,
                env=ChainMap({name: raw}, known) if raw is not None else known,  # type: ignore[arg-type]
                source=str(var.source), origin=var.origin, known=raw is not None, literal=literal,
                sensitive=var.sensitive, vllm_container=vllm, at=entry,
            )
