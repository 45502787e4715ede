"""Service-link environment variables, as the kubelet builds them.

Ports of ``pkg/kubelet/envvars/envvars.go`` (``FromServices``, ``makeEnvVariableName``,
``makeLinkVariables``) and ``(*Kubelet).getServiceEnvVarMap`` from ``pkg/kubelet/kubelet_pods.go``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .shapes import as_mapping, as_str

__all__ = [
    "MASTER_NAMESPACE",
    "MASTER_SERVICES",
    "ServiceLinkEnv",
    "ServiceLinkValue",
    "is_service_ip_set",
    "kubernetes_service",
    "link_fields",
    "link_variables",
    "make_env_variable_name",
    "service_env",
    "service_link_env",
    "services_that_produce",
]

MASTER_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})






def make_env_variable_name(name: str) -> str:
    """``makeEnvVariableName``: upper-case, ``-`` becomes ``_`` (nothing else changes)."""
    return name.replace("-", "_").upper()


def is_service_ip_set(service: Mapping[str, Any]) -> bool:
    """``IsServiceIPSet``: ``spec.clusterIP`` is neither ``"None"`` nor empty."""
    cluster_ip = as_str(as_mapping(as_mapping(service).get("spec")).get("clusterIP"))
    return cluster_ip not in ("", "None")


def _cluster_ip(service: Mapping[str, Any], assumed_cluster_ip: str | None) -> str:
    """The ClusterIP the kubelet would see; ``""`` when it would skip the Service."""
    spec = as_mapping(as_mapping(service).get("spec"))
    if spec.get("type") == "ExternalName":
        return ""
    cluster_ip = as_str(spec.get("clusterIP"))
    if cluster_ip == "None":
        return ""
    return cluster_ip or (assumed_cluster_ip or "")


def _join_host_port(host: str, port: str) -> str:
    """``net.JoinHostPort``: brackets a host that contains a colon (IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ports(spec: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """``(name, port, protocol)`` of each understandable entry of ``spec.ports``."""
    ports = spec.get("ports")
    result = []
    for port in ports if isinstance(ports, list) else ():
        port = as_mapping(port)
        number = port.get("port")
        if isinstance(number, int) and not isinstance(number, bool):
            protocol = sys.intern(as_str(port.get("protocol")) or "TCP")
            result.append((sys.intern(as_str(port.get("name"))), number, protocol))
    return result


def service_env(
    service: Mapping[str, Any], assumed_cluster_ip: str | None = None
) -> dict[str, str]:
    """The variables ``FromServices`` emits for one Service, in the kubelet's order.

    Headless (``clusterIP: None``) and ``ExternalName`` Services give ``{}``. A missing or empty
    ``clusterIP`` (a manifest not applied yet) gives ``{}`` too, unless ``assumed_cluster_ip``
    is given: then that address stands in for the one the API server would allocate. A Service
    without a usable port cannot pass API validation and gives ``{}``.
    """
    name = as_str(as_mapping(as_mapping(service).get("metadata")).get("name"))
    return link_variables(name, *link_fields(service, assumed_cluster_ip))


def link_fields(
    service: Mapping[str, Any], assumed_cluster_ip: str | None = None
) -> tuple[str, tuple[tuple[str, int, str], ...]]:
    """What service links are made of: the cluster IP the kubelet would see (``""``: none)
    and ``(name, port, protocol)`` of each port."""
    ports = _ports(as_mapping(as_mapping(service).get("spec")))
    return _cluster_ip(service, assumed_cluster_ip), tuple(ports)


def link_variables(name: str, cluster_ip: str, ports: tuple[tuple[str, int, str], ...]) -> dict[str, str]:
    """:func:`service_env` from a Service's name and :func:`link_fields`."""
    if not cluster_ip or not ports or not name:
        return {}
    prefix = make_env_variable_name(name)
    env = {
        f"{prefix}_SERVICE_HOST": cluster_ip,
        f"{prefix}_SERVICE_PORT": str(ports[0][1]),
    }
    for port_name, number, _ in ports:
        if port_name:
            env[f"{prefix}_SERVICE_PORT_{make_env_variable_name(port_name)}"] = str(number)
    # makeLinkVariables: the Docker-compatible variables.
    for index, (_, number, protocol) in enumerate(ports):
        url = f"{protocol.lower()}://{_join_host_port(cluster_ip, str(number))}"
        if index == 0:
            env[f"{prefix}_PORT"] = url
        port_prefix = f"{prefix}_PORT_{number}_{protocol.upper()}"
        env[port_prefix] = url
        env[f"{port_prefix}_PROTO"] = protocol.lower()
        env[f"{port_prefix}_PORT"] = str(number)
        env[f"{port_prefix}_ADDR"] = cluster_ip
    return env


@dataclass(frozen=True)
class ServiceLinkValue:
    """One value a service link may give a variable, and the Service it comes from."""

    value: str
    service: Mapping[str, Any]
    namespace: str
    name: str
    where: str = ""  # where the Service is defined (``file:line`` in lint), if known

    @property
    def ref(self) -> str:
        """``namespace/name`` of the Service."""
        return f"{self.namespace}/{self.name}"

    @property
    def described(self) -> str:
        """``Service namespace/name`` and where it is defined."""
        return f"Service {self.ref}" + (f" ({self.where})" if self.where else "")


class ServiceLinkEnv(dict[str, tuple[ServiceLinkValue, ...]]):
    """Variable name -> every value the kubelet may give it (one per producing Service).

    Two Services can produce the same name (``vllm`` and ``vllm-service`` both make
    ``VLLM_SERVICE_PORT``); the kubelet's winner then depends on Go map order, so all
    candidates are kept, in input order.
    """

    def flat(self) -> dict[str, str]:
        """One value per name: the first candidate (see :meth:`ambiguous`)."""
        return {name: values[0].value for name, values in self.items()}

    def ambiguous(self) -> dict[str, tuple[ServiceLinkValue, ...]]:
        """The names with candidates that differ in value."""
        return {
            name: values
            for name, values in self.items()
            if len({value.value for value in values}) > 1
        }


def _namespace(service: Mapping[str, Any], default: str) -> str:
    return as_str(as_mapping(as_mapping(service).get("metadata")).get("namespace")) or default


def service_link_env(
    services: Iterable[Mapping[str, Any]],
    namespace: str,
    enable_service_links: bool,
    assumed_cluster_ip: str | None = None,
) -> ServiceLinkEnv:
    """The service-link variables of a pod in ``namespace`` (``getServiceEnvVarMap``).

    ``services`` may span namespaces; a Service without ``metadata.namespace`` counts as being
    in the pod's namespace. ``default/kubernetes`` is used even with links off, unless a Service
    of that name is already selected; a Service of the pod's namespace replaces any selected one
    of the same name (so ``<ns>/kubernetes`` wins); other namespaces never count.
    """
    selected: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for service in services:
        if not isinstance(service, Mapping) or not _cluster_ip(service, assumed_cluster_ip):
            continue
        name = as_str(as_mapping(service.get("metadata")).get("name"))
        service_namespace = _namespace(service, namespace)
        if service_namespace == MASTER_NAMESPACE and name in MASTER_SERVICES:
            selected.setdefault(name, (service_namespace, service))
        elif service_namespace == namespace and enable_service_links:
            selected[name] = (service_namespace, service)

    result = ServiceLinkEnv()
    for name, (service_namespace, service) in selected.items():
        for variable, value in service_env(service, assumed_cluster_ip).items():
            candidate = ServiceLinkValue(value, service, service_namespace, name)
            result[variable] = (*result.get(variable, ()), candidate)
    return result


def kubernetes_service(cluster_ip: str = "10.96.0.1") -> dict[str, Any]:
    """A stand-in for the API server's ``default/kubernetes`` Service (port ``https``/443)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": MASTER_NAMESPACE, "name": "kubernetes"},
        "spec": {
            "clusterIP": cluster_ip,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
        },
    }


# §1.3: the suffixes FromServices appends to N = makeEnvVariableName(service name).
_PORT_NAME = r"(?=[A-Z0-9_]{1,15}$)(?=.*[A-Z])[A-Z0-9]+(?:_[A-Z0-9]+)*"
_PORT_NUMBER = (  # 1-65535, as strconv.Itoa writes it
    r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
_SUFFIX = re.compile(
    rf"_SERVICE_HOST|_SERVICE_PORT|_SERVICE_PORT_(?:{_PORT_NAME})|_PORT"
    rf"|_PORT_{_PORT_NUMBER}_(?:TCP|UDP|SCTP)(?:_PROTO|_PORT|_ADDR)?"
)
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")


def services_that_produce(variable: str) -> list[str]:
    """Names of the Services whose service links would define ``variable`` (§1.3).

    Every split of ``variable`` into ``N + suffix`` whose ``N`` maps back to a valid
    DNS-1035 label (at most 63 characters), shortest name first:
    ``VLLM_SERVICE_PORT`` -> ``["vllm", "vllm-service"]``.
    """
    names = []
    for split in range(1, len(variable)):
        if _SUFFIX.fullmatch(variable, split) is None:
            continue
        prefix = variable[:split]
        candidate = prefix.lower().replace("_", "-")
        valid = len(candidate) <= 63 and _DNS1035_LABEL.fullmatch(candidate)
        if valid and make_env_variable_name(candidate) == prefix:
            names.append(candidate)
    return names
