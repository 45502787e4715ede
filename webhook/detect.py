"""Recognising vLLM in a pod: which containers run it, which release, which flags, which secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.findings import Finding, Severity
from webhook.frameworks import CATALOG, Catalog
from webhook.frameworks.base import VLLM_ANNOTATION

IGNORE_ANNOTATION = "vllm-env-guard.io/ignore"
FAIL_ON_UNKNOWN_FLAG = "--fail-on-environ-validation"

_ENTRYPOINT = re.compile(r"\bvllm\s+serve\b|\bvllm\.entrypoints\b")

# Credentials that must come from a Secret. Matched by exact name, then by shape.
CREDENTIAL_NAMES = frozenset({
    "VLLM_API_KEY", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "OPENAI_API_KEY", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "WANDB_API_KEY", "NGC_API_KEY",
})
# A name that ends in a credential word: HF_TOKEN, TOS_SECRET_KEY; not ..._TOKEN_VALIDATION_ENABLED.
_CREDENTIAL_SHAPE = re.compile(r"(^|_)(TOKEN|API_KEY|APIKEY|SECRET|SECRET_KEY|PASSWORD|PASSWD|ACCESS_KEY)$")


_CREDENTIAL_ENDINGS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD")


def is_credential(name: str) -> bool:
    """A credential's name (not cached: names come from requests, and this is cheap)."""
    if name in CREDENTIAL_NAMES:
        return True
    tail = name[-16:].upper()
    return tail.endswith(_CREDENTIAL_ENDINGS) and bool(_CREDENTIAL_SHAPE.search(tail))


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def command_line(container: Mapping[str, Any]) -> list[str]:
    return _strings(container.get("command")) + _strings(container.get("args"))


def annotation_opt(metadata: Mapping[str, Any] | None) -> bool | None:
    """The pod template's explicit say: True (vLLM), False (not vLLM), None (no say)."""
    annotations = (metadata or {}).get("annotations")
    value = annotations.get(VLLM_ANNOTATION) if isinstance(annotations, Mapping) else None
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


# vLLM's own engine flags: a container started with --model and one of these runs vLLM even
# when its image does not say so (Gaudi/HPU, Neuron and vendor images pass args only).
_MODEL_FLAG = re.compile(r"^--model(=|$)")
_ENGINE_FLAGS = re.compile(r"^--(tensor-parallel-size|pipeline-parallel-size|served-model-name|"
                           r"gpu-memory-utilization|max-model-len|max-num-seqs|kv-cache-dtype|"
                           r"enable-prefix-caching|kv-transfer-config|data-parallel-size|enforce-eager)(=|$)")
# General-purpose images that never run vLLM themselves.
_NOT_VLLM = re.compile(r"(^|/)(nginx|busybox|alpine|curlimages/curl|curl|envoy|redis|memcached|"
                       r"prom/[a-z-]+|grafana|ubi-minimal|bitnami/kubectl|kubectl)([:@]|$)")


@dataclass(frozen=True)
class VllmVerdict:
    """Whether a container runs vLLM: True, False, or None (cannot be judged), and why."""

    runs: bool | None
    reason: str


def judge_vllm(container: Mapping[str, Any], template_metadata: Mapping[str, Any] | None,
               catalog: Catalog = CATALOG, *, sibling_runs_vllm: bool = False) -> VllmVerdict:
    """Annotation first, then the image (vLLM in its name, or a framework's image rule), the
    command line (`vllm serve`, `vllm.entrypoints`, `--model` with engine flags); a container
    beside one that runs vLLM, or a general-purpose image, does not; anything else is unknown."""
    opt = annotation_opt(template_metadata)
    if opt is not None:
        return VllmVerdict(opt, f'annotation {VLLM_ANNOTATION}: "{str(opt).lower()}"')
    image = container.get("image") if isinstance(container.get("image"), str) else ""
    arguments = command_line(container)
    text = " ".join(arguments)
    if image:
        known = catalog.image_verdict(image, text)
        if known is not None:
            return VllmVerdict(known[0], f"image {image}: {known[1]}")
        if "vllm" in image.lower():
            return VllmVerdict(True, f"image {image}")
    if _ENTRYPOINT.search(text):
        return VllmVerdict(True, "its command runs vllm")
    if any(_MODEL_FLAG.match(a) for a in arguments) and any(_ENGINE_FLAGS.match(a) for a in arguments):
        return VllmVerdict(True, "its arguments are vLLM engine flags (--model ...)")
    if sibling_runs_vllm:
        return VllmVerdict(False, "another container of the pod runs vLLM")
    if image and _NOT_VLLM.search(image):
        return VllmVerdict(False, f"image {image} is not a vLLM image")
    return VllmVerdict(None, f"image {image or '(none)'} and its command do not say whether it runs vLLM")


def runs_vllm(container: Mapping[str, Any], template_metadata: Mapping[str, Any] | None) -> bool:
    """A container runs vLLM: by annotation, image, or its command line (see judge_vllm)."""
    return judge_vllm(container, template_metadata).runs is True


VLLM_VERDICT_RULES = frozenset({"env-parse-error", "env-invalid-choice", "env-silent-coercion",
                                "env-unknown-variable", "env-no-effect"})
"""Rules whose findings are verdicts about what vLLM does with a value."""


def judge_in_pod(spec: Mapping[str, Any], container: Mapping[str, Any],
                 template_metadata: Mapping[str, Any] | None, catalog: Catalog = CATALOG) -> VllmVerdict:
    """:func:`judge_vllm` for one container of pod spec ``spec`` (its siblings count)."""
    verdict = judge_vllm(container, template_metadata, catalog)
    if verdict.runs is not None:
        return verdict
    siblings = [c for key in ("containers", "initContainers") for c in _list(spec.get(key))
                if isinstance(c, Mapping) and c is not container]
    sibling = any(judge_vllm(c, template_metadata, catalog).runs for c in siblings)
    return judge_vllm(container, template_metadata, catalog, sibling_runs_vllm=sibling) if sibling else verdict


def judge_site(site: Any, container: Mapping[str, Any], catalog: Catalog = CATALOG) -> VllmVerdict:
    """:func:`judge_in_pod` for a container of a ``kube.PodSpecSite``, whose framework may name
    the containers it runs vLLM in (an LLMInferenceService's ``main``)."""
    if container.get("name") in site.vllm_containers and annotation_opt(site.template_metadata) is None:
        return VllmVerdict(True, f"its controller runs vLLM in container {container.get('name')}")
    return judge_in_pod(site.spec, container, site.template_metadata, catalog)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def vllm_only(finding: Finding, verdict: VllmVerdict) -> Finding | None:
    """vLLM's verdicts on a value only where vLLM runs: dropped on a container judged not to run
    it, at most a warning (saying so) on one that cannot be judged."""
    if finding.rule not in VLLM_VERDICT_RULES or verdict.runs is True:
        return finding
    if verdict.runs is False:
        return None
    note = (f" (not judged to run vLLM: {verdict.reason}; annotate the pod template "
            f'{VLLM_ANNOTATION}: "true" or "false" to say)')
    severity = Severity.WARNING if finding.severity is Severity.ERROR else finding.severity
    return finding.with_(severity=severity, message=finding.message + note)


def fails_on_unknown(arguments: Sequence[str]) -> bool:
    """The command line passes --fail-on-environ-validation (directly or inside a shell string)."""
    return any(FAIL_ON_UNKNOWN_FLAG in a for a in arguments)


def ignored_rules(*metadatas: Mapping[str, Any] | None) -> frozenset[str]:
    """Rule ids listed in the ignore annotation of any of the given metadata blocks."""
    ids: set[str] = set()
    for metadata in metadatas:
        annotations = (metadata or {}).get("annotations")
        value = annotations.get(IGNORE_ANNOTATION) if isinstance(annotations, Mapping) else None
        if isinstance(value, str):
            ids |= {part.strip() for part in value.split(",") if part.strip()}
    return frozenset(ids)
