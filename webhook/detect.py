"""Recognising vLLM in a pod: which containers run it, which release, which flags, which secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

VLLM_ANNOTATION = "vllm-env-guard.io/vllm"
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


def runs_vllm(container: Mapping[str, Any], template_metadata: Mapping[str, Any] | None) -> bool:
    """A container runs vLLM: by annotation, image name, or its command line."""
    opt = annotation_opt(template_metadata)
    if opt is not None:
        return opt
    image = container.get("image")
    if isinstance(image, str) and "vllm" in image.lower():
        return True
    return bool(_ENTRYPOINT.search(" ".join(command_line(container))))


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
