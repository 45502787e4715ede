"""env-unverified-source: a VLLM_* value that could not be checked."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.subjects import ContainerSubject, Hit, ValueSubject

RULE = Rule(
    id="env-unverified-source",
    severity=Severity.INFO,
    summary="A VLLM_* value comes from a ConfigMap, Secret, fieldRef or file that is not available to the check.",
    rationale=(
        "Values from `configMapKeyRef`, `secretKeyRef`, `envFrom`, `fieldRef` or `fileKeyRef` are "
        "only known where the object is: give the ConfigMap in the same input (lint), or let "
        "`audit` and the webhook read it from the cluster. Until then, the value is unchecked."
    ),
    bad='env:\n- name: VLLM_USE_V1\n  valueFrom:\n    configMapKeyRef: {name: not-in-input, key: v1}',
    good="# lint the ConfigMap together with the Deployment: helm template ... | vllm-env-guard lint -",
    fix="Lint the referenced ConfigMap together with the workload, or run `vllm-env-guard audit` against the cluster.",
)


# Getters that accept any string: an unknown value cannot make them fail or misread.
_ANY_STRING = frozenset({"str", "path", "generated_default"})


def check_value(subject: ValueSubject) -> Iterator[Hit]:
    if subject.known or subject.from_service_link:
        return
    readers = subject.readers()
    if not readers or all(var.kind in _ANY_STRING for var in readers):
        return
    yield Hit(
        message=f"{subject.name} comes from {subject.origin or 'a source'} that is not available here, so its value was not checked",
        hint="lint the referenced object together with the workload, or use `vllm-env-guard audit`",
        variable=subject.name,
    )


def check_container(subject: ContainerSubject) -> Iterator[Hit]:
    """envFrom sources that are not available may set any VLLM_* variable of a vLLM container."""
    if not subject.vllm_container:
        return
    for source in subject.opaque:
        if "VLLM_".startswith(source.prefix) or source.prefix.startswith("VLLM_"):
            yield Hit(
                message=(f"{source.origin} is not available here, so the VLLM_* variables it may "
                         "set were not checked"),
                hint="lint the referenced object together with the workload, or use `vllm-env-guard audit`",
                at=source.entry,
            )
