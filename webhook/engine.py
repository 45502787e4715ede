"""The analysis engine: Kubernetes objects in, findings out. No I/O.

One engine serves `lint` (objects from files), the admission webhook (one object, plus the
cluster's Services from a cache) and `audit` (everything listed from the API). Objects to report
on are `Item`s; `context` objects (e.g. the cluster's workloads when a Service is admitted) are
consulted but not reported on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.budget import UNLIMITED, Budget
from webhook.detect import (
    command_line,
    fails_on_unknown,
    ignored_rules,
    is_credential,
    judge_site,
    vllm_only,
)
from webhook.findings import Finding, ObjectRef, Severity, Workload
from webhook.frameworks import CATALOG, Catalog, controller_services
from webhook.kube import (
    Environment,
    NamespaceLinks,
    PodLinks,
    Source,
    effective_environment,
    links_for,
    make_env_variable_name,
    pod_spec_sites,
    service_env,
)
from webhook.kube.shapes import as_str, metadata
from webhook.kube.workloads import (
    ContainerSite,
    PodSpecSite,
    containers,
    service_links_enabled,
)
from webhook.manifests import line_of
from webhook.registry import bundled_versions, load_registry, resolve, resolve_known
from webhook.registry.store import ever_read
from webhook.registry.versions import VERSION_ANNOTATION
from webhook.rules import hooks
from webhook.rules.base import Rule
from webhook.rules.subjects import (
    ContainerSubject,
    Hit,
    LinksSubject,
    ServiceSubject,
    Target,
    ValueSubject,
)

# Shown as the cluster IP of Services that have none yet (not applied): a realistic value.
ASSUMED_CLUSTER_IP = "10.96.0.12"
UNREAD_CHECKED = 500
"""VLLM_* names vLLM does not read that one analysis checks one by one; the rest are counted
in one finding per container (a 3 MB object may hold 40,000 of them)."""


def link_matters(name: str) -> bool:
    """Service-link names the rules may look at: VLLM_* and names some vLLM release reads.
    Namespace link tables index only these; others are computed when referenced."""
    return name.startswith("VLLM_") or name in ever_read()


def namespace_links(namespace: str) -> NamespaceLinks:
    """An empty link table for `namespace`, indexing what the rules look at."""
    return NamespaceLinks(namespace, link_matters, ASSUMED_CLUSTER_IP)


@dataclass(frozen=True)
class Settings:
    """How to analyse: the vLLM version to assume, the default namespace, rule severities."""

    vllm_version: str | None = None
    version_source: str = "--vllm-version"  # where vllm_version came from, for messages
    namespace: str = "default"
    severities: Mapping[str, Severity | None] = field(default_factory=dict)  # None: rule off
    upgrade_to: str | None = None  # report what changes for each vLLM workload in this release
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

    Services live in per-namespace link tables: those of the objects added, else the ones
    `shared` gives (the admission server's, kept current by its watch; never written here).
    `complete` (cluster mode): ConfigMaps/Secrets not listed do not exist. `secrets_known`:
    False when Secrets were not read (their values stay unknown).
    """

    shared: Callable[[str], NamespaceLinks | None] | None = None
    configmaps: dict[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    secrets: dict[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    complete: bool = False
    secrets_known: bool = True
    _links: dict[str, NamespaceLinks] = field(default_factory=dict, repr=False)
    _open: dict[tuple[str, str], OpenWorld] = field(default_factory=dict, repr=False)

    def add(self, obj: Mapping[str, Any], default_namespace: str, file: str | None = None) -> None:
        kind, api = obj.get("kind"), obj.get("apiVersion")
        if api != "v1" or kind not in ("Service", "ConfigMap", "Secret"):
            return
        namespace = namespace_of(obj, default_namespace)
        if kind == "Service":
            if namespace not in self._links:
                self._links[namespace] = namespace_links(namespace)
            line = line_of(metadata(obj), "name") or line_of(obj)
            where = f"{file}:{line}" if file and line else file or ""
            self._links[namespace].put(_with_namespace(obj, namespace), where)
            return
        self._open.pop((kind, namespace), None)
        name = metadata(obj).get("name")
        if isinstance(name, str):
            table = self.configmaps if kind == "ConfigMap" else self.secrets
            known = table.get(namespace)
            if not isinstance(known, dict):  # none yet, or a read-only view of the cluster's
                known = table[namespace] = dict(known or {})
            known[name] = obj

    def table(self, namespace: str) -> NamespaceLinks | None:
        """The link table of `namespace`: the added Services', else the shared one."""
        local = self._links.get(namespace)
        if local is not None or self.shared is None:
            return local
        return self.shared(namespace)

    def links(self, namespace: str, enabled: bool) -> PodLinks:
        """The service links of pods in `namespace`."""
        return links_for(namespace, enabled, self.table)

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


def link_tables(services: Iterable[Mapping[str, Any]], default_namespace: str = "default"
                ) -> Callable[[str], NamespaceLinks | None]:
    """Link tables by namespace for a list of Services (those naming none are in
    `default_namespace`), e.g. for a ClusterView built by hand."""
    inventory = Inventory()
    for service in services:
        inventory.add(service, default_namespace)
    return inventory.table


def _at(item: Item, node: Mapping[str, Any]) -> str:
    """`, file:line` of a manifest node, for naming the other object in cross-object findings."""
    line = line_of(node)
    return f", {item.file}:{line}" if item.file and line else (f", {item.file}" if item.file else "")


def _controller_services(items: Sequence[Item], settings: Settings, inventory: Inventory) -> list[Item]:
    """The Services the controllers of `items` will create (KServe, KubeRay, ...), analysed as
    if they were in the input, unless the input or the cluster already has them."""
    made = controller_services([i.obj for i in items], settings.frameworks, settings.namespace)
    return [Item(service, items[index].file) for index, service in made
            if not _exists(inventory, namespace_of(service, settings.namespace), metadata(service).get("name"))]


def _exists(inventory: Inventory, namespace: str, name: Any) -> bool:
    table = inventory.table(namespace)
    return table is not None and name in table


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


@dataclass(frozen=True)
class _VllmContainer:
    """A vLLM container somewhere in the input, as a Service sees it."""

    label: str
    namespace: str
    links_enabled: bool
    defined: frozenset[str]  # names its env/envFrom set explicitly
    opaque_prefixes: tuple[str, ...]  # envFrom sources with unknown keys may set these
    target: Target

    def hides(self, name: str) -> bool:
        """The container sets `name` itself (or may), so no service link reaches it."""
        return name in self.defined or name.startswith(self.opaque_prefixes)


def analyze(items: Sequence[Item], settings: Settings = Settings(), *,
            context: Iterable[Mapping[str, Any]] = (), inventory: Inventory | None = None,
            budget: Budget = UNLIMITED, workloads: list[Workload] | None = None) -> list[Finding]:
    """Every finding on `items`; `context` objects are consulted, never reported on.

    `budget` is checked between containers: past its deadline (or once cancelled) the
    analysis stops with `webhook.budget.OutOfTime`. `workloads`, when given, receives one
    record per container of `items` examined.
    """
    context = list(context)
    inventory = inventory or Inventory()
    items = [*items, *_controller_services(items, settings, inventory)]
    for item in [*items, *(Item(obj) for obj in context)]:
        inventory.add(item.obj, settings.namespace, item.file)
    run = _Run(settings, inventory, budget)
    findings: list[Finding] = []
    for item in items:
        findings += run.workload(item)
    if workloads is not None:
        workloads += run.examined
    for obj in context:
        run.workload(Item(obj))  # registers its vLLM containers for the Service checks
    for item in items:
        findings += run.service(item)
    return findings


class _Run:
    def __init__(self, settings: Settings, inventory: Inventory, budget: Budget) -> None:
        self.settings = settings
        self.inventory = inventory
        self.budget = budget
        self.bundled = bundled_versions()
        self.vllm_containers: dict[str, list[_VllmContainer]] = {}  # by namespace
        self._targets: dict[tuple[str | None, str | None, bool], Target] = {}
        self._named: dict[str, Target] = {}
        self._neighbours: dict[str, tuple[list[_VllmContainer], dict[str | None, Target]]] = {}
        self.unread_allowance = UNREAD_CHECKED
        self.examined: list[Workload] = []

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
            resolution = resolve_known(self.settings.vllm_version, self.settings.version_source, key[0], image)
            self._targets[key] = Target(load_registry(resolution.version), resolution, key[2])
        return self._targets[key]

    # --- workloads -------------------------------------------------------------------------

    def workload(self, item: Item) -> list[Finding]:
        namespace = namespace_of(item.obj, self.settings.namespace)
        findings: list[Finding] = []
        for site in pod_spec_sites(item.obj, self.settings.frameworks):
            for where in containers(site):
                self.budget.check()
                findings += self._container(item, namespace, site, where)
        return findings

    def _container(self, item: Item, namespace: str, site: PodSpecSite, where: ContainerSite) -> list[Finding]:
        obj, container, name = item.obj, where.container, where.name
        ref = object_ref(obj, namespace)
        arguments = command_line(container)
        verdict = judge_site(site, container, self.settings.frameworks)
        vllm = verdict.runs is True
        image = container.get("image") if vllm and isinstance(container.get("image"), str) else None
        target = self.target(obj, site.template_metadata, image, arguments)
        links_on = service_links_enabled(site.spec)
        links = self.inventory.links(namespace, links_on)
        env = effective_environment(
            container, site.spec, namespace, links, self.inventory.lookup("ConfigMap", namespace),
            self.inventory.lookup("Secret", namespace), sensitive_name=is_credential,
        )
        if vllm:
            self.vllm_containers.setdefault(namespace, []).append(_VllmContainer(
                f"{ref} (container {name}{_at(item, container)})", namespace, links_on, frozenset(env.defined),
                tuple(source.prefix for source in env.opaque), target))
        names, checked, unchecked = _checked_names(env, links, target, self.unread_allowance)
        self.unread_allowance -= checked
        incomplete = [reason for reason in (env.incomplete,) if reason]
        if unchecked:
            incomplete.append(f"{unchecked} VLLM_* variables that vLLM {target.version} does not read were "
                              f"not checked one by one (at most {UNREAD_CHECKED} per object are)")
        subject = ContainerSubject(name, arguments, target, vllm, env.opaque,
                                   oversize=env.oversize(), incomplete=incomplete,
                                   **self._upgrade(target, env, links) if vllm else {})
        hits = [(rule, hit, hit.at) for rule, check in hooks("check_container")
                for hit in check(subject)]  # type: ignore[operator]
        injected: dict[str, list[ValueSubject]] = {}
        for value in _value_subjects(env, names, target, vllm):
            if value.from_service_link:
                injected.setdefault(value.origin, []).append(value)
                continue
            hits += [(rule, hit, value.at) for rule, check in hooks("check_value")
                     for hit in check(value)]  # type: ignore[operator]
        for origin, values in injected.items():  # once per (container, Service)
            group = LinksSubject(origin, values, target, vllm)
            hits += [(rule, hit, None) for rule, check in hooks("check_links")
                     for hit in check(group)]  # type: ignore[operator]
        ignored = ignored_rules(metadata(obj), site.template_metadata)
        fallback = line_of(container) or line_of(metadata(obj), "name") or line_of(obj)
        candidates = target.resolution.candidates
        self.examined.append(Workload(
            ref, name, vllm, target.version if vllm and not target.unknown else None,
            target.resolution.reason if vllm else None, item.file, fallback,
            (candidates[0], candidates[-1]) if vllm and target.unknown else None))
        findings = (self._finding(rule, hit, item, ref, ignored, line_of(at) or fallback, name, target.version)
                    for rule, hit, at in hits)
        return [f for f in (vllm_only(f, verdict) for f in findings if f is not None) if f is not None]

    def _upgrade(self, target: Target, env: Environment, links: PodLinks) -> dict[str, Any]:
        """What the upgrade-change rule needs, when an upgrade is asked for."""
        if self.settings.upgrade_to is None:
            return {}
        upgrade = self.target_for(self.settings.upgrade_to, "--upgrade-to")
        settings = {n: env[n] for n in env.defined if n.startswith("VLLM_") or target.knows(n) or upgrade.knows(n)}
        collisions: dict[str, list[str]] = {}
        for name in links.names():
            if name not in env.defined and upgrade.knows(name) and not target.knows(name):
                var = env.link(name)
                if var is not None:
                    collisions.setdefault(var.origin, []).append(name)
        return {"upgrade": upgrade, "settings": settings, "new_collisions": collisions}

    def target_for(self, version: str, source: str) -> Target:
        """The Target of an explicitly named release."""
        if version not in self._named:
            resolution = resolve(self.bundled, explicit=version, explicit_source=source)
            self._named[version] = Target(load_registry(resolution.version), resolution)
        return self._named[version]

    # --- Services --------------------------------------------------------------------------

    def neighbours(self, namespace: str) -> tuple[list[_VllmContainer], dict[str | None, Target]]:
        """The namespace's vLLM containers that get service links, and their releases (once)."""
        if namespace not in self._neighbours:
            found = [c for c in self.vllm_containers.get(namespace, ()) if c.links_enabled]
            self._neighbours[namespace] = (found, {c.target.version: c.target for c in found})
        return self._neighbours[namespace]

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
        neighbours, targets = self.neighbours(namespace)
        targets = targets or {None: self.target(obj, None, None, ())}
        ignored = ignored_rules(metadata(obj))
        line = line_of(metadata(obj), "name") or line_of(obj)
        findings: list[Finding] = []
        for rule, check in hooks("check_service"):
            for target in targets.values():  # the first release of the namespace it hurts
                read = [v for v in variables if target.knows(v)]
                affected = [c.label for c in neighbours if not all(c.hides(v) for v in read)] if read else []
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


def _link_checked(name: str, target: Target) -> bool:
    """A service-link name some rule checks in a container of `target` (rules say which)."""
    return any(check(name, target) for _, check in hooks("checks_link"))  # type: ignore[operator]


def _link_names(links: PodLinks, target: Target, opaque: bool) -> list[str]:
    """The injected names to build value subjects for: those the service-link rules check,
    and with an opaque envFrom source (which may replace them by unknown values) every name
    vLLM reads. Injected names are never reported as unknown variables: the service-link
    rules report the Service. Memoised on the namespace's link table until it changes."""

    def checked(name: str) -> bool:
        return _link_checked(name, target) or (opaque and target.knows(name))

    if links.own is None:
        return [n for n in links.names() if checked(n)]
    master = links.master.version if links.master is not None and links.master is not links.own else None
    key = ("checked", opaque, target.version, target.fail_on_unknown, master)
    return links.own.derived(key, lambda: [n for n in links.names() if checked(n)])


def _checked_names(env: Environment, links: PodLinks, target: Target, allowance: int) -> tuple[list[str], int, int]:
    """The names to check in one container, in definition order, then the injected ones; how
    many VLLM_* names vLLM does not read are among them (at most `allowance`), and how many
    more were left out."""
    knows = target.registry.knows
    names: list[str] = []
    unread = skipped = 0
    for name in env.defined:
        if knows(name) or is_credential(name):
            names.append(name)
        elif name.startswith("VLLM_"):
            if unread < allowance:
                names.append(name)
                unread += 1
            else:
                skipped += 1
    defined = env.defined
    names += [n for n in _link_names(links, target, bool(env.opaque)) if n not in defined]
    return names, unread, skipped


class _KnownValues(Mapping[str, str]):
    """A container's environment as getters see it: the values known for sure, read lazily,
    with `name` set to `raw` when one is given (one candidate value of it)."""

    __slots__ = ("_env", "_name", "_raw")

    def __init__(self, env: Environment, name: str | None = None, raw: str | None = None) -> None:
        self._env, self._name, self._raw = env, name, raw

    def get(self, key: str, default: Any = None) -> Any:
        if key == self._name and self._raw is not None:
            return self._raw
        value = self._env.lookup(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        names = dict.fromkeys(name for name in self._env if self._env.lookup(name) is not None)
        if self._name is not None and self._raw is not None:
            names[self._name] = None
        return iter(names)

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
                env=_KnownValues(env, name, raw) if raw is not None else known,
                source=str(var.source), origin=var.origin, known=raw is not None, literal=literal,
                sensitive=var.sensitive, vllm_container=vllm, at=entry,
            )
