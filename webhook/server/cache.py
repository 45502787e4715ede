"""A watch-backed, read-only cache of the cluster state admission decisions need.

What is watched (all namespaces, list then watch, like a client-go reflector):
- Services: a vLLM workload admitted into a namespace that already has a colliding Service
  is denied. Slimmed to name, namespace, clusterIP, ports, type.
- Namespaces: their labels only, for the per-namespace mode label.
- ConfigMaps (opt-in, `server.cache.configMaps`): to resolve `envFrom`/`configMapKeyRef` values.
- vLLM workloads (`server.cache.workloads`, default on): so a new Service is denied with the
  names of the workloads it would break. Deployments, StatefulSets, DaemonSets, ReplicaSets not
  owned by a Deployment, Jobs not owned by a CronJob, CronJobs, and Pods not controlled by one
  of those kinds (bare Pods, and Pods of controllers we do not watch: RayCluster, ...). Each
  workload is named once, by its top-most watched owner. Only objects with a vLLM container
  are kept, without status and managedFields, so memory follows the number of vLLM
  workloads, not the size of the cluster.

Objects are raw API JSON (dicts), never the client's models. A watch that ends is resumed
from the last resourceVersion; 410 Gone (expired) relists; any other error is retried with
backoff and reported as a problem until a list succeeds.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from webhook.detect import runs_vllm
from webhook.engine import namespace_links
from webhook.kube import NamespaceLinks, containers, pod_spec_sites
from webhook.kube.shapes import as_mapping, metadata
from webhook.server.admission import ClusterView
from webhook.server.logs import log
from webhook.server.metrics import CacheStats

PAGE_SIZE = 500
WATCH_SECONDS = (240, 360)  # server-side watch timeout, jittered (client-go: 5-10 min)
CONNECT_TIMEOUT = 10.0
BACKOFF = (0.5, 30.0)

Lister = Callable[..., Any]
Obj = Mapping[str, Any]


class Expired(Exception):
    """410 Gone: the resourceVersion is too old; list again."""


def _slim_service(obj: Obj) -> Obj:
    spec = as_mapping(obj.get("spec"))
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {k: metadata(obj).get(k) for k in ("name", "namespace")},
            "spec": {k: spec[k] for k in ("clusterIP", "ports", "type") if k in spec}}


def _slim_namespace(obj: Obj) -> Obj:
    labels = metadata(obj).get("labels")
    return {"metadata": {"name": metadata(obj).get("name"), "labels": dict(as_mapping(labels))}}


def _slim_configmap(obj: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {k: metadata(obj).get(k) for k in ("name", "namespace")},
            "data": obj.get("data") or {}}


def _controller_kind(obj: Obj) -> str | None:
    for ref in metadata(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            kind = ref.get("kind")
            return kind if isinstance(kind, str) else None
    return None


def _workload(covered_by: frozenset[str]) -> Callable[[Obj], Obj | None]:
    """Keep a vLLM workload (slimmed) unless its controller is a watched kind that names it."""

    def keep(obj: Obj) -> Obj | None:
        if _controller_kind(obj) in covered_by:
            return None
        if not any(runs_vllm(c.container, site.template_metadata)
                   for site in pod_spec_sites(obj) for c in containers(site)):
            return None
        meta = metadata(obj)
        return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                "metadata": {k: meta[k] for k in ("name", "namespace", "annotations") if k in meta},
                "spec": obj.get("spec")}

    return keep


class ObjectStore:
    """What a reflector holds: namespace ("" if cluster-scoped) -> name -> object. Callers lock."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, Obj]] = {}

    def put(self, namespace: str, name: str, obj: Obj) -> None:
        self._objects.setdefault(namespace, {})[name] = obj

    def remove(self, namespace: str, name: str) -> None:
        self._objects.get(namespace, {}).pop(name, None)

    def items(self, namespace: str) -> list[Obj]:
        return list(self._objects.get(namespace, {}).values())

    def by_name(self, namespace: str) -> Mapping[str, Obj]:
        """The namespace's objects by name: a live read-only view, not a copy (a review looks
        names up in it; it does not iterate it)."""
        return MappingProxyType(self._objects.get(namespace, {}))

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._objects.get(namespace, {}).get(name)

    def count(self) -> int:
        return sum(len(names) for names in self._objects.values())


class LinkStore(ObjectStore):
    """Services, held as the link table of each namespace (see webhook.kube.links): a review
    reads the table of its namespace as it is, and each watch event updates one Service, so
    neither costs more in a namespace of 50,000 Services than in one of 5."""

    def __init__(self) -> None:
        self._tables: dict[str, NamespaceLinks] = {}
        self._names: dict[str, set[str]] = {}  # every Service, injecting or not (for the count)

    def put(self, namespace: str, name: str, obj: Obj) -> None:
        if namespace not in self._tables:
            self._tables[namespace] = namespace_links(namespace)
        self._tables[namespace].put(obj)
        self._names.setdefault(namespace, set()).add(name)

    def remove(self, namespace: str, name: str) -> None:
        table = self._tables.get(namespace)
        if table is not None:
            table.remove(name)
        self._names.get(namespace, set()).discard(name)

    def items(self, namespace: str) -> list[Obj]:
        """The namespace's Services that inject variables, as their links see them."""
        table = self._tables.get(namespace)
        return table.services() if table is not None else []

    def get(self, namespace: str, name: str) -> Obj | None:
        table = self._tables.get(namespace)
        return table.service(name) if table is not None else None

    def count(self) -> int:
        return sum(len(names) for names in self._names.values())

    def table(self, namespace: str) -> NamespaceLinks | None:
        return self._tables.get(namespace)


@dataclass(frozen=True)
class Resource:
    name: str
    api_version: str
    kind: str
    lister: Callable[[k8s.ApiClient], Lister]  # the list_*_for_all_namespaces method
    keep: Callable[[Obj], Obj | None]
    store: Callable[[], ObjectStore] = ObjectStore


SERVICES = Resource("services", "v1", "Service",
                    lambda c: k8s.CoreV1Api(c).list_service_for_all_namespaces, _slim_service, LinkStore)
NAMESPACES = Resource("namespaces", "v1", "Namespace", lambda c: k8s.CoreV1Api(c).list_namespace, _slim_namespace)
CONFIGMAPS = Resource("configmaps", "v1", "ConfigMap",
                      lambda c: k8s.CoreV1Api(c).list_config_map_for_all_namespaces, _slim_configmap)
WORKLOADS = (
    Resource("deployments", "apps/v1", "Deployment",
             lambda c: k8s.AppsV1Api(c).list_deployment_for_all_namespaces, _workload(frozenset())),
    Resource("statefulsets", "apps/v1", "StatefulSet",
             lambda c: k8s.AppsV1Api(c).list_stateful_set_for_all_namespaces, _workload(frozenset())),
    Resource("daemonsets", "apps/v1", "DaemonSet",
             lambda c: k8s.AppsV1Api(c).list_daemon_set_for_all_namespaces, _workload(frozenset())),
    Resource("replicasets", "apps/v1", "ReplicaSet",
             lambda c: k8s.AppsV1Api(c).list_replica_set_for_all_namespaces, _workload(frozenset({"Deployment"}))),
    Resource("cronjobs", "batch/v1", "CronJob",
             lambda c: k8s.BatchV1Api(c).list_cron_job_for_all_namespaces, _workload(frozenset())),
    Resource("jobs", "batch/v1", "Job",
             lambda c: k8s.BatchV1Api(c).list_job_for_all_namespaces, _workload(frozenset({"CronJob"}))),
    Resource("pods", "v1", "Pod", lambda c: k8s.CoreV1Api(c).list_pod_for_all_namespaces,
             _workload(frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "Job"}))),
)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}".strip()
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class Reflector:
    """One resource, all namespaces: a thread that lists, then watches, into a store."""

    def __init__(self, resource: Resource, lister: Lister) -> None:
        self.resource = resource
        self._lister = lister
        self.store = resource.store()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None  # the open watch stream, closed by stop()
        self.synced = threading.Event()
        self.error: str | None = None
        self.last_heard = 0.0  # monotonic
        self.relists = 0
        self.errors = 0

    # --- reading ----------------------------------------------------------------------------

    def items(self, namespace: str) -> list[Obj]:
        with self._lock:
            return self.store.items(namespace)

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self.store.get(namespace, name)

    def stats(self) -> CacheStats:
        with self._lock:
            count = self.store.count()
        age = time.monotonic() - self.last_heard if self.last_heard else 0.0
        return CacheStats(self.resource.name, self.synced.is_set(), count, age, self.relists, self.errors)

    # --- running ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"cache-{self.resource.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()  # interrupts a blocked read (urllib3 >= 2.3)
            except Exception:  # noqa: BLE001 - older urllib3, or already released
                response.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = BACKOFF[0]
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self.list()
                version = self.watch(version)
                backoff = BACKOFF[0]
            except Expired as exc:
                log(logging.INFO, "cache watch expired; relisting", resource=self.resource.name, reason=str(exc))
                version = None
            except Exception as exc:  # noqa: BLE001 - any failure: report, back off, relist
                if self._stopping.is_set():
                    break
                self.errors += 1
                version = None
                self.error = _describe(exc)
                log(logging.WARNING, "cache list/watch failed", resource=self.resource.name, error=self.error)
                self._stopping.wait(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, BACKOFF[1])

    def _heard(self) -> None:
        self.last_heard = time.monotonic()

    def _key(self, obj: Obj) -> tuple[str, str]:
        meta = metadata(obj)
        return str(meta.get("namespace") or ""), str(meta.get("name") or "")

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("apiVersion", self.resource.api_version)
        obj.setdefault("kind", self.resource.kind)
        return obj

    def list(self) -> str:
        """Replace the store with a full (paged) list; return its resourceVersion."""
        store = self.resource.store()
        token: str | None = None
        while True:
            try:
                response = self._lister(limit=PAGE_SIZE, _continue=token, _preload_content=False,
                                        _request_timeout=(CONNECT_TIMEOUT, 60))
            except ApiException as exc:
                if exc.status == 410:
                    raise Expired(_describe(exc)) from None
                raise
            body = json.loads(response.data)
            for obj in body.get("items") or ():
                kept = self.resource.keep(self._stamp(obj))
                if kept is not None:
                    store.put(*self._key(kept), kept)
            meta = body.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
        with self._lock:
            self.store = store
        self.relists += self.synced.is_set()
        self.error = None
        self._heard()
        self.synced.set()
        return str(meta.get("resourceVersion") or "")

    def watch(self, version: str) -> str:
        """Apply watch events from `version` until the server ends the watch; the last version.
        Raises Expired on 410 Gone."""
        seconds = random.randint(*WATCH_SECONDS)
        try:
            response = self._lister(watch=True, resource_version=version, allow_watch_bookmarks=True,
                                    timeout_seconds=seconds, _preload_content=False,
                                    _request_timeout=(CONNECT_TIMEOUT, seconds + 30))
        except ApiException as exc:
            if exc.status == 410:
                raise Expired(_describe(exc)) from None
            raise
        self._response = response  # from now on stop() can interrupt it
        try:
            for event in self._events(response):
                version = self._apply(event) or version
            if not self._stopping.is_set():
                self._heard()  # a watch that times out cleanly is a sign of life too
        finally:
            self._response = None
            response.release_conn()
        return version

    def _events(self, response: Any) -> Iterator[Mapping[str, Any]]:
        if self._stopping.is_set():  # stop() came before the stream could be interrupted
            return
        for line in iter_resp_lines(response):
            if self._stopping.is_set():
                return
            if line:
                yield json.loads(line)

    def _apply(self, event: Mapping[str, Any]) -> str | None:
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            return None
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired(str(obj.get("message")))
            raise RuntimeError(f"watch error: {obj.get('code')} {obj.get('reason')}")
        self._heard()
        self.error = None
        version = metadata(obj).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            namespace, name = self._key(obj)
            kept = self.resource.keep(self._stamp(obj)) if kind != "DELETED" else None
            with self._lock:
                if kept is None:
                    self.store.remove(namespace, name)
                else:
                    self.store.put(namespace, name, kept)
        return str(version) if version else None


class ClusterCache:
    """The reflectors and the per-request view of them."""

    def __init__(self, lister_for: Callable[[Resource], Lister], *, configmaps: bool = False,
                 workloads: bool = True) -> None:
        """`lister_for(resource)`: its list function, e.g. `resource.lister(api_client)`."""

        def reflector(resource: Resource) -> Reflector:
            return Reflector(resource, lister_for(resource))

        self.services = reflector(SERVICES)
        self.namespaces = reflector(NAMESPACES)
        self.configmaps = reflector(CONFIGMAPS) if configmaps else None
        self.workloads = [reflector(r) for r in WORKLOADS] if workloads else []
        self.reflectors = [self.services, self.namespaces, *([self.configmaps] if self.configmaps else []),
                           *self.workloads]

    def start(self) -> None:
        for r in self.reflectors:
            r.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Interrupt every reflector at once, then wait for them (at most `timeout` in all)."""
        for r in self.reflectors:
            r.stop(timeout=0)
        deadline = time.monotonic() + timeout
        for r in self.reflectors:
            r.stop(timeout=max(0.0, deadline - time.monotonic()))

    @property
    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors)

    def unsynced(self) -> list[str]:
        return [r.resource.name for r in self.reflectors if not r.synced.is_set()]

    def stats(self) -> list[CacheStats]:
        return [r.stats() for r in self.reflectors]

    def view(self, namespace: str, *, service: bool, budget: float) -> ClusterView:
        """What a request for an object in `namespace` needs: for a Service, the namespace's
        vLLM workloads; for a workload, its Services (and ConfigMaps). Waits at most `budget`
        seconds for a first sync."""
        needed = [self.namespaces, *(self.workloads if service else [self.services])]
        if self.configmaps is not None and not service:
            needed.append(self.configmaps)
        deadline = time.monotonic() + budget
        problems = []
        for r in needed:
            if not r.synced.wait(max(0.0, deadline - time.monotonic())):
                problems.append(f"{r.resource.name} not listed yet" + (f" ({r.error})" if r.error else ""))
            elif r.error:
                problems.append(f"{r.resource.name}: {r.error}")
        namespace_obj = self.namespaces.get("", namespace)
        configmaps = None
        if self.configmaps is not None and self.configmaps.synced.is_set() and not self.configmaps.error:
            configmaps = self.configmaps.store.by_name(namespace)
        store = self.services.store
        return ClusterView(
            links=None if service or not isinstance(store, LinkStore) else store.table,
            configmaps=configmaps,
            workloads=[w for r in self.workloads for w in r.items(namespace)] if service else [],
            namespace_labels=metadata(namespace_obj).get("labels") if namespace_obj is not None else None,
            problem="; ".join(problems) or None,
        )
