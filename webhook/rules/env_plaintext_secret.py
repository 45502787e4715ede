"""env-plaintext-secret: a credential written into the manifest as a literal value."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.detect import is_credential
from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.subjects import Hit, ValueSubject

RULE = Rule(
    id="env-plaintext-secret",
    severity=Severity.WARNING,
    summary="A credential (VLLM_API_KEY, HF_TOKEN, S3 keys, ...) is a literal `value` instead of a secretKeyRef.",
    rationale=(
        "A literal `value:` lives in git, in `kubectl get -o yaml`, in every rendered chart and "
        "in the API server's audit log. vLLM's `VLLM_API_KEY`, `S3_ACCESS_KEY_ID` and "
        "`S3_SECRET_ACCESS_KEY` are plain strings to vLLM: nothing stops them from leaking. "
        "The value is never printed by this tool."
    ),
    bad='env:\n- name: VLLM_API_KEY\n  value: sk-live-...',
    good='env:\n- name: VLLM_API_KEY\n  valueFrom:\n    secretKeyRef: {name: vllm-api, key: key}',
    fix="Store the value in a Secret and reference it with `valueFrom.secretKeyRef`.",
)


def check_value(subject: ValueSubject) -> Iterator[Hit]:
    if subject.literal and subject.raw and is_credential(subject.name):
        yield Hit(
            message=f"{subject.name} is set as a literal value in the manifest (value not shown)",
            hint=f"move it to a Secret and use valueFrom.secretKeyRef for {subject.name}",
            variable=subject.name,
        )
