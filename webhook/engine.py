"""The analysis engine: Kubernetes objects in, findings out. No I/O.

One engine serves `lint` (objects from files), the admission webhook (one object, plus the
cluster's Services from a cache) and `audit` (everything listed from the API). Objects to report
on are `Item`s; `context` objects (e.g. the cluster's workloads when a Service is admitted) are
consulted but not reported on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.detect import command_line, fails_on_unknown, ignored_rules, is_credential, runs_vllm
from webhook.findings import Finding, ObjectRef, Severity
from webhook.kube import Source, effective_environment, pod_spec_sites, service_env
from webhook.kube.workloads import containers, service_links_enabled
from webhook.manifests import line_of
from webhook.registry import bundled_versions, load_registry, resolve
from webhook.rules import hooks
from webhook.rules.base import Rule
from webhook.rules.subjects import ContainerSubject, Hit, ServiceSubject, Target, ValueSubject

# Shown as the cluster IP of Services that have none yet (not applied): a realistic value.
ASSUMED_CLUSTER_IP = "10.96.0.12"


@dataclass(frozen=True)
class Settings:
    """How to analyse: the vLLM version to assume, the default namespace, rule severities."""

    vllm_version: str | None = None
    version_source: str = "--vllm-version"  # where vllm_version came from, for messages
    namespace: str = "default"
    severities: Mapping[str, Severity | None] = field(default_factory=dict)  # None: rule off


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

    services: list[Mapping[str, Any]] = field(default_factory=list)
    configmaps: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    complete: bool = False
    secrets_known: bool = True

    def add(self, obj: Mapping[str, Any], default_namespace: str) -> None:
        kind, api = obj.get("kind"), obj.get("apiVersion")
        if api != "v1" or kind not in ("Service", "ConfigMap", "Secret"):
            return
        namespace = namespace_of(obj, default_namespace)
        if kind == "Service":
            self.services.append(_with_namespace(obj, namespace))
            return
        name = _metadata(obj).get("name")
        if isinstance(name, str):
            table = self.configmaps if kind == "ConfigMap" else self.secrets
            table.setdefault(namespace, {})[name] = obj

    def lookup(self, kind: str, namespace: str) -> Mapping[str, Mapping[str, Any]] | None:
        if kind == "Secret" and not self.secrets_known:
            return None
        known = (self.configmaps if kind == "ConfigMap" else self.secrets).get(namespace, {})
        return dict(known) if self.complete else OpenWorld(known)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def namespace_of(obj: Mapping[str, Any], default: str) -> str:
    namespace = _metadata(obj).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else default


def _with_namespace(obj: Mapping[str, Any], namespace: str) -> Mapping[str, Any]:
    """The Service as the kubelet sees it: namespaced (manifests often omit it)."""
    if _metadata(obj).get("namespace") == namespace:
        return obj
    return {**obj, "metadata": {**_metadata(obj), "namespace": namespace}}


def object_ref(obj: Mapping[str, Any], namespace: str | None) -> ObjectRef:
    name = _metadata(obj).get("name")
    return ObjectRef(_str(obj.get("apiVersion")), _str(obj.get("kind")), namespace,
                     name if isinstance(name, str) else None)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
        self.vllm_containers: list[_VllmContainer] = []

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
        annotations: dict[str, Any] = {}
        for metadata in (_metadata(obj), template or {}):
            found = metadata.get("annotations")
            if isinstance(found, Mapping):
                annotations.update(found)
        resolution = resolve(self.bundled, explicit=self.settings.vllm_version,
                             explicit_source=self.settings.version_source,
                             annotations=annotations, image=image)
        return Target(load_registry(resolution.version), resolution, fails_on_unknown(arguments))

    # --- workloads -------------------------------------------------------------------------

    def workload(self, item: Item) -> list[Finding]:
        obj = item.obj
        namespace = namespace_of(obj, self.settings.namespace)
        ref = object_ref(obj, namespace)
        name_line = line_of(_metadata(obj), "name") or line_of(obj)
        findings: list[Finding] = []
        for site in pod_spec_sites(obj):
            ignored = ignored_rules(_metadata(obj), site.template_metadata)
            for where in containers(site):
                container = where.container
                name = where.name
                arguments = command_line(container)
                vllm = runs_vllm(container, site.template_metadata)
                image = container.get("image") if vllm and isinstance(container.get("image"), str) else None
                target = self.target(obj, site.template_metadata, image, arguments)
                env = effective_environment(
                    container, site.spec, namespace, self.inventory.services,
                    self.inventory.lookup("ConfigMap", namespace),
                    self.inventory.lookup("Secret", namespace),
                    assumed_cluster_ip=ASSUMED_CLUSTER_IP,
                )
                label = f"{ref} (container {name})"
                if vllm:
                    self.vllm_containers.append(_VllmContainer(
                        label, namespace, service_links_enabled(site.spec), frozenset(env.defined), target))

                def report(rule: Rule, hit: Hit, at: Mapping[str, Any] | None) -> None:
                    line = line_of(at) or line_of(container) or name_line
                    found = self._finding(rule, hit, item, ref, ignored, line, name, target.version)
                    if found is not None:
                        findings.append(found)

                subject = ContainerSubject(name, container, arguments, target, vllm)
                for rule, check in hooks("check_container"):
                    for hit in check(subject):  # type: ignore[operator]
                        report(rule, hit, None)
                for value in _value_subjects(env, target, vllm):
                    for rule, check in hooks("check_value"):
                        for hit in check(value):  # type: ignore[operator]
                            report(rule, hit, value.at)
        return findings

    # --- Services --------------------------------------------------------------------------

    def service(self, item: Item) -> list[Finding]:
        obj = item.obj
        if obj.get("kind") != "Service" or obj.get("apiVersion") != "v1":
            return []
        namespace = namespace_of(obj, self.settings.namespace)
        ref = object_ref(obj, namespace)
        name = ref.name or ""
        variables = service_env(obj, assumed_cluster_ip=ASSUMED_CLUSTER_IP)
        if not variables:
            return []
        neighbours = [c for c in self.vllm_containers if c.namespace == namespace and c.links_enabled]
        targets = {c.target.version: c.target for c in neighbours} or {None: self.target(obj, None, None, ())}
        ignored = ignored_rules(_metadata(obj))
        line = line_of(_metadata(obj), "name") or line_of(obj)
        findings: list[Finding] = []
        for rule, check in hooks("check_service"):
            for target in targets.values():  # the first release of the namespace it hurts
                affected = [c.label for c in neighbours
                            if any(target.knows(v) and v not in c.overrides for v in variables)]
                hits = list(check(ServiceSubject(obj, name, namespace, variables, target, affected)))  # type: ignore[operator]
                found = [self._finding(rule, hit, item, ref, ignored, line, None, target.version) for hit in hits]
                if hits:
                    findings += [f for f in found if f is not None]
                    break
        return findings


def _value_subjects(env: Any, target: Target, vllm: bool) -> Iterable[ValueSubject]:
    """A subject per variable rules care about: VLLM_*, names vLLM reads, credentials."""
    known = {n: v for n, v in env.as_dict().items() if v is not None}
    for name in env:
        if not (name.startswith("VLLM_") or target.knows(name) or is_credential(name)):
            continue
        var = env[name]
        entry = var.entry
        literal = var.source == Source.ENV and isinstance(entry, Mapping) and isinstance(entry.get("value"), str)
        candidates = [c for c in var.candidates] if var.value is None else [var.value]
        if not candidates or None in candidates or var.may_be_unset:
            candidates = [None]
        for raw in candidates:
            yield ValueSubject(
                name=name, raw=raw, target=target,
                env={**known, name: raw} if raw is not None else known,
                source=str(var.source), origin=var.origin, known=raw is not None, literal=literal,
                vllm_container=vllm, at=entry if isinstance(entry, Mapping) else None,
                service=var.service,
            )

