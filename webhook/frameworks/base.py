"""The shape every framework module fills in: where its kinds keep pod specs and environments,
the Services its controller makes, its service-link default, the images known to embed vLLM.

A framework module defines `FRAMEWORK`, the way a rule module defines `RULE`; docs/frameworks.md
is generated from these records. Nothing here imports the rest of the package: `kube/` reads
the site patterns, the engine reads the Services and virtual pods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

VLLM_ANNOTATION = "vllm-env-guard.io/vllm"
"""Pod template annotation: "true"/"false" says whether its containers run vLLM."""

Path = tuple[str | int, ...]
ANY = "*"
"""Path wildcard: every item of a list, or every value of a mapping."""


@dataclass(frozen=True)
class Pattern:
    """A pod spec at ``spec`` (may hold ``"*"`` wildcards).

    ``role`` is formatted with one label per wildcard (a list item's ``groupName`` or ``name``,
    else its index; a mapping value's key). ``template``: the pods' metadata is the
    ``metadata`` beside the final ``spec`` key. ``shortcut``: ``spec`` is a single container.
    """

    spec: Path
    role: str = ""
    template: bool = False
    shortcut: bool = False
    vllm: tuple[str, ...] = ()  # containers here that run vLLM whatever their image (controller-supplied)

    def under(self, *prefix: str | int, role: str = "") -> Pattern:
        """This pattern below ``prefix``, its role prefixed with ``role/``."""
        joined = "/".join(part for part in (role, self.role) if part)
        return replace(self, spec=(*prefix, *self.spec), role=joined)


def template(*prefix: str | int, role: str = "") -> Pattern:
    """A ``PodTemplateSpec`` at ``prefix``: spec at ``prefix.spec``, metadata beside it."""
    return Pattern((*prefix, "spec"), role, template=True)


def under(patterns: Sequence[Pattern], *prefix: str | int, role: str = "") -> tuple[Pattern, ...]:
    return tuple(pattern.under(*prefix, role=role) for pattern in patterns)


def dotted(text: str) -> Path:
    """``"spec.roles.*.template"`` -> ``("spec", "roles", "*", "template")``."""
    return tuple(int(part) if part.isdigit() else part for part in text.split(".") if part)


@dataclass(frozen=True)
class VirtualPod:
    """A pod the controller builds from fields that are not a pod spec (an env map, a YAML
    string): ``spec`` holds one synthetic container whose ``env`` entries carry the manifest
    lines of the fields they come from. ``path`` leads to the object field it is built from."""

    path: Path
    spec: Mapping[str, Any]
    metadata: Mapping[str, Any] | None
    role: str


VirtualPods = Callable[[Mapping[str, Any]], list[VirtualPod]]
Services = Callable[[Mapping[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Kind:
    """One custom resource kind: where its pods are, and what its controller adds.

    ``links_default``: the pods' ``enableServiceLinks`` when the spec does not say (Kubernetes:
    true; Knative revisions: false). ``virtual``: pods built from env maps; ``services``: the
    Services the controller creates for an object (``headless``/``ClusterIP`` as it makes them).
    ``reads``/``makes``: one line each for the docs.
    """

    group: str
    kind: str
    sites: tuple[Pattern, ...] = ()
    virtual: VirtualPods | None = None
    services: Services | None = None
    links_default: bool = True
    reads: str = ""
    makes: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.kind


@dataclass(frozen=True)
class ImageRule:
    """Images that embed vLLM (``vllm=True``) or are known not to (``False``); ``unless``: a
    command-line pattern that reverses the verdict (``--backend=huggingface``)."""

    pattern: re.Pattern[str]
    vllm: bool = True
    unless: re.Pattern[str] | None = None
    why: str = ""

    def matches(self, image: str) -> bool:
        return self.pattern.search(image) is not None

    def verdict(self, command_line: str) -> bool:
        """For a matching image: whether it runs vLLM when started with ``command_line``."""
        return self.vllm if self.unless is None or not self.unless.search(command_line) else not self.vllm


@dataclass(frozen=True)
class Framework:
    """A serving framework: its kinds, and the images known to embed vLLM (or not)."""

    name: str
    summary: str
    kinds: tuple[Kind, ...] = ()
    images: tuple[ImageRule, ...] = ()
    notes: str = ""
    source: str = ""  # where the facts come from (upstream file or doc)
    options: Mapping[str, str] = field(default_factory=dict)  # config key -> meaning


def image(pattern: str, vllm: bool = True, why: str = "", unless: str | None = None) -> ImageRule:
    """An :class:`ImageRule` from regular expressions (searched in the image reference)."""
    return ImageRule(re.compile(pattern), vllm, re.compile(unless) if unless else None, why)
