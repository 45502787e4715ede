"""Kubernetes semantics as pure functions: where pod specs live, service links, ``$(VAR)``
expansion, and the environment the kubelet gives each container.

Everything here works on plain parsed YAML/JSON and never raises on malformed shapes.
"""

from __future__ import annotations

from .environment import (
    EnvError,
    Environment,
    EnvVar,
    OpaqueSource,
    Source,
    effective_environment,
    expanded_args,
    expanded_command,
    pod_links,
)
from .expansion import expand, references, syntax_wrap
from .links import NamespaceLinks, PodLinks, links_for
from .services import (
    ServiceLinkEnv,
    ServiceLinkValue,
    is_service_ip_set,
    kubernetes_service,
    make_env_variable_name,
    service_env,
    service_link_env,
    services_that_produce,
)
from .workloads import (
    WORKLOAD_KINDS,
    ContainerSite,
    PodSpecSite,
    api_group,
    containers,
    format_path,
    is_workload,
    pod_spec_sites,
    service_links_enabled,
)

__all__ = [
    "WORKLOAD_KINDS",
    "ContainerSite",
    "EnvError",
    "EnvVar",
    "Environment",
    "NamespaceLinks",
    "OpaqueSource",
    "PodLinks",
    "PodSpecSite",
    "ServiceLinkEnv",
    "ServiceLinkValue",
    "Source",
    "api_group",
    "containers",
    "effective_environment",
    "expand",
    "expanded_args",
    "expanded_command",
    "format_path",
    "is_service_ip_set",
    "is_workload",
    "kubernetes_service",
    "links_for",
    "make_env_variable_name",
    "pod_links",
    "pod_spec_sites",
    "references",
    "service_env",
    "service_link_env",
    "service_links_enabled",
    "services_that_produce",
    "syntax_wrap",
]
