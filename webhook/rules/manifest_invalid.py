"""manifest-invalid: a document that is not valid YAML/JSON, not a Kubernetes object, or an
object the API server would reject (checked first: an invalid object gets no other verdict)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from webhook.findings import Severity
from webhook.frameworks import CATALOG, Catalog
from webhook.kube import containers, format_path, pod_spec_sites
from webhook.kube.shapes import as_list, as_mapping, metadata
from webhook.kube.workloads import WORKLOAD_KINDS, api_group
from webhook.manifests import line_of
from webhook.rules.base import Rule

RULE = Rule(
    id="manifest-invalid",
    severity=Severity.ERROR,
    summary="A document is not valid YAML/JSON, not a Kubernetes object, or an object the API server rejects.",
    rationale=(
        "A document that does not parse cannot be checked, and `kubectl apply` would reject it "
        "too. Objects of the kinds read here are checked first the way the API server validates "
        "them: object names (DNS-1035 labels for Services, DNS-1123 subdomains elsewhere), "
        "required fields (container `name` and `image`, env `name`, Service `ports`), and env "
        "values, which must be strings (`value: 1` unquoted is rejected). An invalid object "
        "gets no other verdict: a Service named `VLLM` is invalid, not a collision. It is "
        "reported with its file and line; the other documents of the input are still checked."
    ),
    bad="apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed",
    good="apiVersion: v1\nkind: Service\nmetadata:\n  name: llm-api",
    fix="Fix the YAML or the field at the reported line; every document needs `apiVersion` and "
        "`kind`; quote env values (`value: \"1\"`).",
)

Problem = tuple[str, int | None]

_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL.pattern}(\.{_DNS1123_LABEL.pattern})*")
_BUILT_IN_GROUPS = ("", "apps", "batch", "extensions")


def _name_problem(obj: Mapping[str, Any], kind: str) -> Problem | None:
    meta = metadata(obj)
    name = meta.get("name")
    line = line_of(meta, "name") or line_of(obj)
    if name is None:
        return None if meta.get("generateName") else (f"{kind}: metadata.name: Required value", line_of(obj))
    service = kind == "Service" and api_group(obj) == ""
    pattern, limit, what = ((_DNS1035_LABEL, 63, "a DNS-1035 label (lower-case letters, digits and '-', "
                             "starting with a letter)") if service else
                            (_DNS1123_SUBDOMAIN, 253, "a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"))
    if not isinstance(name, str) or len(name) > limit or not pattern.fullmatch(name):
        return f'{kind} name {name!r} is invalid: it must be {what} of at most {limit} characters', line
    namespace = meta.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and len(namespace) <= 63
                                      and _DNS1123_LABEL.fullmatch(namespace)):
        return f"metadata.namespace {namespace!r} is not a valid namespace name", line_of(meta, "namespace") or line
    return None


def _service_problems(obj: Mapping[str, Any]) -> Iterator[Problem]:
    spec = as_mapping(obj.get("spec"))
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        return
    ports = spec.get("ports")
    if not isinstance(ports, list) or not ports:
        yield "Service spec.ports: Required value (only headless and ExternalName Services may omit ports)", \
            line_of(spec) or line_of(obj)
        return
    for index, port in enumerate(ports):
        number = as_mapping(port).get("port")
        if not (isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= 65535):
            yield f"Service spec.ports[{index}].port: {number!r} is not a port number (1-65535)", \
                line_of(port) or line_of(spec)


def _container_problems(obj: Mapping[str, Any], catalog: Catalog) -> Iterator[Problem]:
    built_in = api_group(obj) in _BUILT_IN_GROUPS
    for site in pod_spec_sites(obj, catalog):
        if site.virtual or site.shortcut:  # not pod specs: the controller fills the gaps
            continue
        for where in containers(site):
            container, at = where.container, format_path(where.path)
            if built_in and not where.name:  # custom resources' controllers may fill in the name
                yield f"{at}.name: Required value", line_of(container)
            if built_in and where.kind != "ephemeralContainers" and not container.get("image"):
                yield f"{at}.image: Required value", line_of(container)
            for index, entry in enumerate(as_list(container.get("env"))):
                entry = as_mapping(entry)
                name, value = entry.get("name"), entry.get("value")
                if not isinstance(name, str) or not name:
                    yield f"{at}.env[{index}].name: Required value", line_of(entry)
                if value is not None and not isinstance(value, str):
                    yield (f"{at}.env[{index}].value: {name} = {value!r} is not a string; the API server "
                           f'rejects it (quote it: "{value}")'), line_of(entry, "value") or line_of(entry)


def object_problems(obj: Mapping[str, Any], catalog: Catalog = CATALOG) -> list[Problem]:
    """Why the API server would reject ``obj`` (kinds read here only), each with its line."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return []
    service = kind == "Service" and api_group(obj) == ""
    if not service and (api_group(obj), kind) not in WORKLOAD_KINDS and catalog.kind_of(obj) is None:
        return []
    problems: list[Problem] = []
    name = _name_problem(obj, kind)
    if name is not None:
        problems.append(name)
    problems += _service_problems(obj) if service else _container_problems(obj, catalog)
    return problems
