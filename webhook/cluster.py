"""Reading a live cluster for `audit`: connection, discovery, paginated lists, API errors.

Objects come back as plain dicts in API JSON shape (`apiVersion`/`kind` set on every item).
Secrets are only ever fetched one by one through `Cluster.get`, and nothing here prints or
logs an object's content.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KubeConfigMerger

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
REQUEST_TIMEOUT = (10, 120)  # seconds: connect, read


class ClusterError(Exception):
    """The cluster could not be read: connection, credentials, RBAC, API errors."""


@dataclass(frozen=True)
class Resource:
    """A listable API resource."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        """`services`, `deployments.apps`: the name RBAC rules and `kubectl auth can-i` use."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(plural: str, kind: str) -> Resource:
    return Resource("", "v1", plural, kind)


SERVICES = _core("services", "Service")
SECRETS = _core("secrets", "Secret")  # never listed: fetched by name, with --read-secrets only

BUILTIN: tuple[Resource, ...] = (
    SERVICES,
    _core("configmaps", "ConfigMap"),
    _core("pods", "Pod"),
    _core("replicationcontrollers", "ReplicationController"),
    _core("podtemplates", "PodTemplate"),
    *(Resource("apps", "v1", plural, kind) for plural, kind in (
        ("deployments", "Deployment"), ("statefulsets", "StatefulSet"),
        ("daemonsets", "DaemonSet"), ("replicasets", "ReplicaSet"))),
    Resource("batch", "v1", "jobs", "Job"),
    Resource("batch", "v1", "cronjobs", "CronJob"),
)

# Workload CRDs, listed when the API server serves them: (group, plural).
CUSTOM: tuple[tuple[str, str], ...] = (
    ("leaderworkerset.x-k8s.io", "leaderworkersets"),
    ("ray.io", "rayclusters"),
    ("ray.io", "rayservices"),
    ("ray.io", "rayjobs"),
    ("serving.kserve.io", "inferenceservices"),
    ("serving.kserve.io", "servingruntimes"),
    ("serving.kserve.io", "clusterservingruntimes"),
    ("serving.kserve.io", "llminferenceservices"),
    ("jobset.x-k8s.io", "jobsets"),
)


# --- progress ------------------------------------------------------------------------------


class Progress:
    """Progress on stderr: live on a terminal, a line per resource with `verbose`, else quiet."""

    CLEAR = "\r\033[K"  # back to the start of the line, erase it

    def __init__(self, stream: TextIO | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.enabled = verbose or self.live

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def page(self, what: str, count: int) -> None:
        if self.live:
            self._write(f"{self.CLEAR}{_listing(what, count)}")

    def done(self, what: str, count: int) -> None:
        if self.enabled:
            self._write(f"{self.CLEAR if self.live else ''}{_listing(what, count)}\n")

    def info(self, text: str) -> None:
        if self.enabled:
            self._write(f"{text}\n")

    def warn(self, text: str) -> None:
        """Always shown: something the user should know about the result."""
        self._write(f"{self.CLEAR if self.live else ''}vllm-env-guard audit: {text}\n")


def _listing(what: str, count: int) -> str:
    return f"listing {what}... {count} object{'' if count == 1 else 's'}"


# --- the API surface -----------------------------------------------------------------------


class Api(Protocol):
    """The few API calls the audit makes (a fake stands in for it in unit tests)."""

    host: str

    def group_versions(self) -> dict[str, list[str]]:
        """API group -> its served group versions, preferred first."""

    def resources(self, group_version: str) -> list[Mapping[str, Any]]:
        """The APIResourceList entries (name, kind, namespaced, verbs) of a group version."""

    def list_page(self, resource: Resource, namespace: str | None, limit: int,
                  token: str | None) -> Mapping[str, Any]:
        """One page of a list: `namespace` None lists every namespace (or a cluster-scoped kind)."""

    def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any]:
        """One namespaced object."""

    def close(self) -> None:
        """Release connections."""


def _snake(kind: str) -> str:
    """`ReplicationController` -> `replication_controller`, as in the client's method names."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def _json(response: Any) -> dict[str, Any]:
    """The body of a raw (`_preload_content=False`) response."""
    data = json.loads(response.data)
    return data if isinstance(data, dict) else {}


class KubeApi:
    """`Api` over the official client; connection failures become `ClusterError`s."""

    def __init__(self, api_client: client.ApiClient, source: str) -> None:
        self.api_client = api_client
        self.host = api_client.configuration.host
        self.source = source
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except urllib3.exceptions.HTTPError as exc:
            reason = re.sub(r"^<[^>]*>: ", "", str(getattr(exc, "reason", None) or exc))
            raise ClusterError(f"cannot reach the API server at {self.host} ({self.source}): {reason}") from None

    def group_versions(self) -> dict[str, list[str]]:
        with self._reachable():
            groups = client.ApisApi(self.api_client).get_api_versions(_request_timeout=REQUEST_TIMEOUT).groups
        found = {}
        for group in groups or []:
            preferred = group.preferred_version.group_version if group.preferred_version else None
            versions = [v.group_version for v in group.versions or []]
            found[group.name] = sorted(versions, key=lambda v: v != preferred)
        return found

    def resources(self, group_version: str) -> list[Mapping[str, Any]]:
        group, version = group_version.split("/", 1)
        with self._reachable():
            listing = self.custom.get_api_resources(group, version, _request_timeout=REQUEST_TIMEOUT)
        return [{"name": r.name, "kind": r.kind, "namespaced": r.namespaced, "verbs": list(r.verbs or [])}
                for r in listing.resources or []]

    def list_page(self, resource: Resource, namespace: str | None, limit: int,
                  token: str | None) -> Mapping[str, Any]:
        call, args = self._lister(resource, namespace)
        options: dict[str, Any] = {"limit": limit, "_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}
        if token:
            options["_continue"] = token
        with self._reachable():
            return _json(call(*args, **options))

    def _lister(self, resource: Resource, namespace: str | None) -> tuple[Callable[..., Any], tuple[str, ...]]:
        """The client method that lists `resource`, and its positional arguments."""
        if not resource.group:
            if namespace:
                return getattr(self.core, f"list_namespaced_{_snake(resource.kind)}"), (namespace,)
            return getattr(self.core, f"list_{_snake(resource.kind)}_for_all_namespaces"), ()
        if namespace and resource.namespaced:
            return self.custom.list_namespaced_custom_object, (
                resource.group, resource.version, namespace, resource.plural)
        return self.custom.list_cluster_custom_object, (resource.group, resource.version, resource.plural)

    def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any]:
        read = getattr(self.core, f"read_namespaced_{_snake(resource.kind)}")
        with self._reachable():
            return _json(read(name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))

    def close(self) -> None:
        self.api_client.close()


# --- connecting ----------------------------------------------------------------------------


@dataclass
class Connection:
    api: Api
    namespace: str  # the context's namespace (in-cluster: the pod's), else "default"


def _kubeconfig_paths(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    listed = os.environ.get("KUBECONFIG", "")
    if listed:
        return [p for p in listed.split(os.pathsep) if p]
    return [os.path.join("~", ".kube", "config")]


def connect(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """A connection from `kubeconfig` (else $KUBECONFIG, ~/.kube/config), or in-cluster
    (service account) when no kubeconfig exists and KUBERNETES_SERVICE_HOST is set."""
    paths = _kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if os.path.isfile(os.path.expanduser(p))]
    if existing:
        return _from_kubeconfig(os.pathsep.join(existing), context)
    if kubeconfig:
        raise ClusterError(f"kubeconfig {kubeconfig} not found")
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
        return _in_cluster()
    looked = ", ".join(paths)
    raise ClusterError(f"no kubeconfig found ({looked}) and not running in a cluster "
                       "(KUBERNETES_SERVICE_HOST is not set): give --kubeconfig")


def _from_kubeconfig(path: str, context: str | None) -> Connection:
    try:
        loaded = KubeConfigMerger(path).config
        settings = loaded.value if loaded is not None else {}
        name = context or settings.get("current-context")
        contexts = [getattr(c, "value", c) for c in settings.get("contexts") or []]  # merged: ConfigNodes
        chosen = next((c for c in contexts if c.get("name") == name), None)
        if chosen is None:
            raise ClusterError(f'context "{context}" not found in kubeconfig {path}' if context
                               else f"kubeconfig {path} names no current context: give --context")
        api_client = config.new_client_from_config(config_file=path, context=context)
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
        raise ClusterError(f"cannot use kubeconfig {path}: {' '.join(str(exc).split())}") from None
    namespace = (chosen.get("context") or {}).get("namespace") or "default"
    where = f"kubeconfig {path}, context {chosen.get('name')}"
    return Connection(KubeApi(api_client, where), namespace)


def _in_cluster() -> Connection:
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise ClusterError(f"cannot use the in-cluster service account: {exc}") from None
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as stream:
            namespace = stream.read().strip() or "default"
    except OSError:
        namespace = "default"
    return Connection(KubeApi(client.ApiClient(configuration), "in-cluster service account"), namespace)


# --- reading -------------------------------------------------------------------------------


class _Expired(Exception):
    """A continue token expired (410 Gone)."""


def _status_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def _api_error(exc: ApiException, attempt: str, verb: str | None = None,
               resource: Resource | None = None) -> ClusterError:
    """`exc` as one line saying what was attempted, and on 403 which user lacks which verb."""
    status = f"({exc.status} {exc.reason})"
    if exc.status == 403 and verb:
        user = re.search(r'User "([^"]*)"', _status_message(exc))
        who = f'user "{user.group(1)}"' if user else "the current user"
        return ClusterError(f'cannot {attempt}: {who} lacks "{verb}" on "{resource}" {status}')
    if exc.status == 401:
        return ClusterError(f"cannot {attempt}: the API server rejected the credentials {status}")
    return ClusterError(f"cannot {attempt}: {_status_message(exc)} {status}")


def _attempt(verb: str, resource: Resource, namespace: str | None, name: str | None = None) -> str:
    """`list services in namespace "a"`, `get secrets "hf" in namespace "a"`."""
    what = f'{verb} {resource}' + (f' "{name}"' if name else "")
    if not resource.namespaced:
        return what
    return what + (f' in namespace "{namespace}"' if namespace else " in all namespaces")


@dataclass
class Cluster:
    """Lists and gets objects through an `Api`, following continue tokens."""

    api: Api
    page_size: int = 500
    progress: Progress = field(default_factory=Progress)

    def served(self, wanted: Iterable[tuple[str, str]] = CUSTOM) -> list[Resource]:
        """The `(group, plural)` resources the API server serves, each at the first version
        (preferred first) that can list it."""
        wanted = list(wanted)
        try:
            groups = self.api.group_versions()
        except ApiException as exc:
            raise _api_error(exc, "discover the served API groups") from None
        found: dict[tuple[str, str], Resource] = {}
        for group in dict.fromkeys(g for g, _ in wanted):
            for group_version in groups.get(group, []):
                for entry in self._resources(group_version):
                    key = (group, entry["name"])
                    if key in wanted and key not in found and "list" in entry["verbs"]:
                        found[key] = Resource(group, group_version.split("/", 1)[1], entry["name"],
                                              entry["kind"], bool(entry["namespaced"]))
        missing = [f"{plural}.{group}" for group, plural in wanted if (group, plural) not in found]
        if missing:
            self.progress.info(f"not served here, skipped: {', '.join(missing)}")
        return [found[key] for key in wanted if key in found]

    def _resources(self, group_version: str) -> list[Mapping[str, Any]]:
        try:
            return self.api.resources(group_version)
        except ApiException as exc:
            if exc.status == 404:  # the group version went away (CRD deleted) since discovery
                return []
            raise _api_error(exc, f"discover the resources of {group_version}") from None

    def list_all(self, resource: Resource, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of `resource` in `namespace` (None: all namespaces); an expired continue
        token restarts the list once."""
        scope = namespace if resource.namespaced else None
        try:
            return self._list(resource, scope)
        except _Expired:
            self.progress.warn(f"the list of {resource} expired while paging (410 Gone); "
                               f"listing {resource} again from the start")
        try:
            return self._list(resource, scope)
        except _Expired:
            raise ClusterError(f"cannot list {resource}: the list expired twice while paging (410 Gone); "
                               "try a larger --page-size") from None

    def _list(self, resource: Resource, namespace: str | None) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            try:
                page = self.api.list_page(resource, namespace, self.page_size, token)
            except ApiException as exc:
                if exc.status == 410 and token:
                    raise _Expired() from None
                raise _api_error(exc, _attempt("list", resource, namespace), "list", resource) from None
            objects += [_typed(item, resource) for item in page.get("items") or []]
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                self.progress.done(str(resource), len(objects))
                return objects
            self.progress.page(str(resource), len(objects))

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            return _typed(self.api.get(resource, namespace, name), resource)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error(exc, _attempt("get", resource, namespace, name), "get", resource) from None

    def snapshot(self, namespace: str | None) -> list[dict[str, Any]]:
        """Services, ConfigMaps and every workload kind served, in `namespace` (None: all;
        cluster-scoped kinds are only read then)."""
        resources = [*BUILTIN, *self.served()]
        return [obj for resource in resources if resource.namespaced or namespace is None
                for obj in self.list_all(resource, namespace)]

    def fetch(self, resource: Resource, names: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The existing objects among `(namespace, name)` pairs."""
        found = (self.get(resource, namespace, name) for namespace, name in names)
        return [obj for obj in found if obj is not None]


def _typed(item: Mapping[str, Any], resource: Resource) -> dict[str, Any]:
    """List items carry no apiVersion/kind: set them."""
    return {**item, "apiVersion": resource.api_version, "kind": resource.kind}
