"""The Services a controller creates for a custom resource, as the objects it would write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.manifests import Node, line_of

CREATED_BY = "vllm-env-guard.io/created-by"
"""Annotation on a modelled Service: the kind and name of the object whose controller makes it."""


def _meta(owner: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = owner.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def owner_name(owner: Mapping[str, Any]) -> str | None:
    name = _meta(owner).get("name")
    return name if isinstance(name, str) and name else None


def controller_service(owner: Mapping[str, Any], name: str, ports: Sequence[tuple[str, int]], *,
                       headless: bool = False, external: bool = False) -> dict[str, Any]:
    """A ``v1`` Service named ``name`` in ``owner``'s namespace, located at ``owner``'s name line.

    ``headless``: ``clusterIP: None``; ``external``: ``type: ExternalName`` (neither injects
    service-link variables). ``ports``: ``(name, port)``, name may be empty.
    """
    line = line_of(_meta(owner), "name") or line_of(owner)
    metadata = Node(name=name, annotations={CREATED_BY: f"{owner.get('kind')} {owner_name(owner)}"})
    metadata.line = line or 0
    metadata.key_lines = {"name": line or 0}
    namespace = _meta(owner).get("namespace")
    if isinstance(namespace, str) and namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {"ports": [{"name": n, "port": p} if n else {"port": p} for n, p in ports]}
    if headless:
        spec["clusterIP"] = "None"
    if external:
        spec = {"type": "ExternalName", "externalName": f"{name}.invalid"}
    service = Node(apiVersion="v1", kind="Service", metadata=metadata, spec=spec)
    service.line = line_of(owner) or 0
    service.key_lines = {}
    return service


def created_by(service: Mapping[str, Any]) -> str | None:
    """The ``Kind name`` of the object whose controller makes this Service, if it is modelled."""
    annotations = _meta(service).get("annotations")
    value = annotations.get(CREATED_BY) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) else None
