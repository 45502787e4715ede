"""The service links of a namespace, kept current one Service at a time.

`NamespaceLinks` holds a namespace's Services by name plus an index of the injected variables
whose names matter to the caller (`matters(name)`, e.g. ``VLLM_*`` and names vLLM reads). Any
other variable is computed on demand from the few Services whose variable prefix its name
starts with. Adding, changing or removing a Service, and looking a name up,
cost O(one Service), whatever the size of the namespace; memory follows the Services, not the
variables they inject. `PodLinks` is what one pod sees (``getServiceEnvVarMap``): its
namespace's links when ``enableServiceLinks`` is on, plus the master ``default/kubernetes``.

Updates and reads may come from different threads (a watch and the reviews): a lock guards
the index, and readers only ever see whole updates.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .services import (
    MASTER_NAMESPACE,
    ServiceLinkValue,
    link_fields,
    link_variables,
    make_env_variable_name,
)
from .shapes import as_mapping, as_str

__all__ = ["NamespaceLinks", "PodLinks", "everything"]

MASTER_SERVICE = "kubernetes"


class _Service(NamedTuple):
    """All service links need of a Service (a few hundred bytes, whatever the object held)."""

    cluster_ip: str
    ports: tuple[tuple[str, int, str], ...]
    where: str = ""  # file:line in lint

    def variables(self, name: str) -> dict[str, str]:
        return link_variables(name, self.cluster_ip, self.ports)

    def as_object(self, namespace: str, name: str) -> dict[str, Any]:
        """A Service object with these fields (what ServiceLinkValue refers to)."""
        ports = [{"name": n, "port": p, "protocol": proto} if n else {"port": p, "protocol": proto}
                 for n, p, proto in self.ports]
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                "spec": {"clusterIP": self.cluster_ip, "ports": ports}}


def could_be_injected(name: str) -> bool:
    """Every service-link name ends in ``_SERVICE_HOST`` or holds ``_PORT`` (see
    ``services._SUFFIX``): a cheap test that spares most lookups."""
    return "_PORT" in name or name.endswith("_SERVICE_HOST")


def everything(_: str) -> bool:
    """A `matters` predicate that indexes every injected name (exact iteration, small inputs)."""
    return True


class NamespaceLinks:
    """The Services of one namespace that inject variables, and the variables that matter."""

    def __init__(self, namespace: str, matters: Callable[[str], bool] = everything,
                 assumed_cluster_ip: str | None = None) -> None:
        self.namespace = namespace
        self._matters = matters
        self._assumed = assumed_cluster_ip
        self._services: dict[str, _Service] = {}  # only Services that inject something
        self._index: dict[str, dict[str, str]] = {}  # variable -> service name -> value
        self._prefixes: dict[str, set[str]] = {}  # makeEnvVariableName(name) -> service names
        self._order: dict[str, int] = {}  # service name -> when added (candidates keep this order)
        self._added = 0
        self._lock = threading.Lock()
        self._derived: dict[Any, tuple[int, Any]] = {}  # see derived()
        self.version = 0  # bumped by every change to the index

    def __len__(self) -> int:
        return len(self._services)

    def __contains__(self, service_name: object) -> bool:
        return service_name in self._services

    def put(self, service: Mapping[str, Any], where: str = "") -> None:
        """Add or replace a Service (by name, keeping its place); one that injects nothing is
        dropped. `where` says where it is defined (``file:line``), for messages."""
        name = as_str(as_mapping(as_mapping(service).get("metadata")).get("name"))
        if not name:
            return
        entry = _Service(*link_fields(service, self._assumed), sys.intern(where))
        env = entry.variables(name)
        with self._lock:
            previous = self._services.get(name)
            if not env:
                self._drop(name)
            else:
                stale = set(previous.variables(name)) - set(env) if previous is not None else set()
                self._unindex(name, stale)
                self._services[name] = entry
                if name not in self._order:
                    self._added += 1
                    self._order[name] = self._added
                self._prefixes.setdefault(make_env_variable_name(name), set()).add(name)
                for variable, value in env.items():
                    if self._matters(variable):
                        self._index.setdefault(variable, {})[name] = value
            self.version += 1

    def remove(self, name: str) -> None:
        with self._lock:
            if self._drop(name):
                self.version += 1

    def _drop(self, name: str) -> bool:
        service = self._services.pop(name, None)
        if service is None:
            return False
        self._unindex(name, service.variables(name))
        del self._order[name]
        prefix = make_env_variable_name(name)
        self._prefixes[prefix].discard(name)
        if not self._prefixes[prefix]:
            del self._prefixes[prefix]
        return True

    def _unindex(self, name: str, variables: Iterable[str]) -> None:
        for variable in variables:
            producers = self._index.get(variable)
            if producers is not None:
                producers.pop(name, None)
                if not producers:
                    del self._index[variable]

    def service(self, name: str) -> dict[str, Any] | None:
        """The Service `name` as its links see it (name, cluster IP, ports), if it injects any."""
        entry = self._services.get(name)
        return None if entry is None else entry.as_object(self.namespace, name)

    def services(self) -> list[dict[str, Any]]:
        with self._lock:
            return [entry.as_object(self.namespace, name) for name, entry in self._services.items()]

    def values(self, variable: str, only: str | None = None) -> list[ServiceLinkValue]:
        """Each Service's value for `variable`, in the order the Services were added; with
        `only`, just that Service's."""
        with self._lock:
            return self._values(variable, only)

    def _values(self, variable: str, only: str | None) -> list[ServiceLinkValue]:
        producers = self._index.get(variable)
        if producers is not None or self._matters(variable):
            pairs = list((producers or {}).items())
        else:  # each variable is <PREFIX>_<suffix>: look the prefixes up (a few, not a scan)
            names = sorted((n for i, char in enumerate(variable) if char == "_"
                            for n in self._prefixes.get(variable[:i], ())), key=self._order.__getitem__)
            pairs = [(n, self._services[n].variables(n).get(variable)) for n in names if n in self._services]
        found = []
        for name, value in pairs:
            entry = self._services.get(name)
            if value is not None and entry is not None and (only is None or name == only):
                found.append(ServiceLinkValue(value, entry.as_object(self.namespace, name), self.namespace, name,
                                              entry.where))
        return found

    def names(self) -> list[str]:
        """The indexed variable names (a snapshot)."""
        with self._lock:
            return list(self._index)

    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()`, memoised under `key` until the index changes (callers keep a few keys:
        one per vLLM release in use, say)."""
        cached = self._derived.get(key)
        version = self.version
        if cached is not None and cached[0] == version:
            return cached[1]
        result = compute()
        if len(self._derived) >= 64:
            self._derived.clear()
        self._derived[key] = (version, result)
        return result


@dataclass(frozen=True)
class PodLinks:
    """The service-link variables of one pod: `own` (its namespace, None when links are off)
    and the master Service from `master` (the ``default`` namespace's links)."""

    own: NamespaceLinks | None
    master: NamespaceLinks | None

    def _master_counts(self) -> bool:
        """``default/kubernetes`` is used unless the pod's namespace selected its own."""
        if self.master is None or self.master is self.own:
            return False
        return self.own is None or MASTER_SERVICE not in self.own

    def values(self, name: str) -> list[ServiceLinkValue]:
        if not could_be_injected(name):
            return []
        found = self.own.values(name) if self.own is not None else []
        if self._master_counts():
            assert self.master is not None
            found += self.master.values(name, only=MASTER_SERVICE)
        return found

    def names(self) -> Iterator[str]:
        """Indexed names this pod gets (each once)."""
        own = self.own.names() if self.own is not None else []
        yield from own
        if self._master_counts():
            assert self.master is not None
            seen = set(own)
            yield from (n for n in self.master.names() if n not in seen and self.master.values(n, MASTER_SERVICE))



def links_for(namespace: str, enabled: bool, table: Callable[[str], NamespaceLinks | None]) -> PodLinks:
    """The PodLinks of a pod in `namespace` given a namespace -> NamespaceLinks lookup."""
    return PodLinks(table(namespace) if enabled else None, table(MASTER_NAMESPACE))
